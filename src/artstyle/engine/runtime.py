"""Runtime concerns, apart from the algorithm: the device, the weights cache, and memory (peak
measurement, the estimate of what a run needs, and what the machine has left)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

from artstyle.config import StyleConfig
from artstyle.engine.plan import GB, MARGIN, Plan, estimate_memory
from artstyle.errors import ArtstyleError, setting
from artstyle.log import Log, quiet
from artstyle.model.weights import LoadedWeights, load_weights


class WeightsCache:
    """Weights loaded once per process and source (grids, experiments and a web worker reuse
    them). ``put`` lets a test or an embedding program supply weights for a source."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], LoadedWeights] = {}

    def get(self, cfg: StyleConfig, log: Log = quiet) -> LoadedWeights:
        key = (cfg.weights, cfg.network)
        if key not in self._loaded:
            self._loaded[key] = load_weights(cfg.weights, cfg.network, log)
        return self._loaded[key]

    def put(self, weights: str, network: str, loaded: LoadedWeights) -> None:
        self._loaded[(weights, network)] = loaded

    def snapshot(self) -> dict[tuple[str, str], LoadedWeights]:
        return dict(self._loaded)

    def restore(self, snapshot: dict[tuple[str, str], LoadedWeights]) -> None:
        self._loaded = dict(snapshot)


#: The process's weights cache.
WEIGHTS = WeightsCache()


def get_weights(cfg: StyleConfig, log: Log = quiet) -> LoadedWeights:
    """The weights of ``cfg``, loaded once per process (see :class:`WeightsCache`)."""
    return WEIGHTS.get(cfg, log)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for a missing device is an ArtstyleError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArtstyleError("device cuda was asked for, but this PyTorch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ArtstyleError("device mps was asked for, but it is not available here")
    return torch.device(name)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement (CUDA allocator; on Linux the process's VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (Linux >= 4.0)
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak_memory`: CUDA's allocator peak, else the process's peak
    resident set (VmHWM on Linux; elsewhere the lifetime peak)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _meminfo(key: str) -> int | None:
    """A line of /proc/meminfo (``MemTotal``, ``MemAvailable``), in bytes; None where unread."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cgroup_memory() -> tuple[int, int] | None:
    """(limit, used) of this process's memory cgroup (v2, else v1), in bytes; None without a limit."""
    for limit, used in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            raw = Path(limit).read_text().strip()
        except OSError:
            continue
        try:
            if raw == "max" or int(raw) >= 2**60:
                return None
            return int(raw), int(Path(used).read_text().strip())
        except (OSError, ValueError):
            return None
    return None


def available_memory() -> int | None:
    """Bytes this process may still use: the least of MemAvailable, the cgroup's limit left and
    RLIMIT_AS; None where none of them can be read."""
    limits = [m for m in [_meminfo("MemAvailable")] if m is not None]
    cgroup = _cgroup_memory()
    if cgroup is not None:
        limits.append(cgroup[0] - cgroup[1])
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        rss = peak_memory_mb(torch.device("cpu")) * 2**20
        limits.append(int(soft - rss))
    return min(limits) if limits else None


#: The budget a run takes when none is given (``max_memory`` 0), on the CPU: the smallest budget
#: whose default run was within 10 % of the time of one given all the memory that was available
#: (``benchmarks/memory.py --budgets``, the README's table: at 2048 px 3 GB took 1.25 times as long,
#: 6 GB 1.12 times, and the whole picture, which this budget holds, peaked at 8.5 GB).
DEFAULT_BUDGET = 9 * GB
#: ... and never more than this share of the machine's memory (a browser, or a second studio job,
#: keeps the rest), nor more than what is available less :data:`~artstyle.engine.plan.MARGIN`.
MACHINE_SHARE = 0.5


def total_memory() -> int | None:
    """Bytes of memory the machine gives this process: MemTotal, or the cgroup's limit where lower;
    None where neither can be read."""
    sizes = [m for m in [_meminfo("MemTotal")] if m is not None]
    cgroup = _cgroup_memory()
    if cgroup is not None:
        sizes.append(cgroup[0])
    return min(sizes) if sizes else None


def memory_budget(cfg: StyleConfig, device: torch.device) -> int | None:
    """Bytes a level may use (:func:`artstyle.engine.plan.plan_run`): ``max_memory`` when given;
    else on the CPU the least of :data:`DEFAULT_BUDGET`, :data:`MACHINE_SHARE` of the machine and
    what is available less :data:`~artstyle.engine.plan.MARGIN`; None: no limit known (a GPU)."""
    if cfg.max_memory:
        return int(cfg.max_memory * GB)
    if device.type != "cpu":
        return None
    caps = [DEFAULT_BUDGET]
    total, have = total_memory(), available_memory()
    if total is not None:
        caps.append(int(MACHINE_SHARE * total))
    if have is not None:
        caps.append(max(have - MARGIN, 0))
    return min(caps)


class OverMemory(ArtstyleError):
    """A run that needs more memory than there is; ``plan``: its plan (an estimate can still show
    what it would cost)."""

    def __init__(self, message: str, plan: Plan) -> None:
        super().__init__(message)
        self.plan = plan


def check_memory(plan: Plan, cfg: StyleConfig) -> None:
    """Refuse, before any work, a run whose estimated peak exceeds the memory available (CPU)."""
    need = estimate_memory(plan, cfg)
    have = available_memory()
    if have is not None and need > have:
        raise OverMemory(
            f"this run needs about {need / GB:.1f} GB of memory and {max(have, 0) / GB:.1f} GB is "
            f"available; lower {setting('size')} (memory grows with its square), {setting('max_memory')}, "
            f"{setting('style_scale')} or {setting('iterations')}",
            plan,
        )


def out_of_memory_message(cfg: StyleConfig) -> str:
    return (
        f"out of memory at size {cfg.size}; lower {setting('size')} (memory grows with its square), "
        f"{setting('style_scale')} or the number of iterations at full size"
    )
