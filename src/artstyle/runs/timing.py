"""How long a run will take, before it starts: this machine's measured seconds per iteration by
image size, kept in a small JSON file after every run, applied to a :class:`~artstyle.engine.plan.Plan`.

A run's sidecar history holds the seconds since its start at every step, so each level gives one
sample: (the pixels one iteration optimises, seconds per iteration). Samples are kept per setup
(network, optimiser, style statistic, device, threads), the newest :data:`KEEP`; an estimate fits
``seconds/iteration = a + b x pixels`` to them (least squares, ``a >= 0``), or, with one size only,
``b`` alone. With no sample yet it uses :data:`PRIOR_S_PER_MPX` (measured on a 2-core CPU) and says
so (``basis: "prior"``). ``benchmarks/estimate.py`` measures the estimate against real runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artstyle.config import StyleConfig
from artstyle.engine.plan import Plan
from artstyle.files import atomic_write_bytes

#: Seconds per iteration per megapixel with nothing measured yet: the default settings (VGG19,
#: L-BFGS, Gram) on a 2-core CPU at 512 px (``benchmarks/speed.py``); a GPU is far faster, so the
#: first run there is over-estimated and the next ones are measured.
PRIOR_S_PER_MPX = 3.2
#: Seconds a run spends outside its iterations (network, paintings' targets, writing), a prior.
PRIOR_SETUP_S = 3.0
#: Samples kept per setup.
KEEP = 40

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # "measured" (from this machine's runs) or "prior"
    samples: int

    def describe(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "basis": self.basis, "samples": self.samples}


def setup_key(cfg: StyleConfig, device: str, threads: int | None = None) -> str:
    """The setup whose speed a sample measures."""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return f"{cfg.network}/{cfg.pooling}/{cfg.optimizer}/{cfg.style_loss}/{device}/{threads}"


def samples_of(history: Sequence[dict[str, Any]]) -> list[tuple[int, float]]:
    """(pixels, seconds per iteration) of each level of a run's history (its steps' cumulative
    ``seconds``); the first step of a level is left out (it carries the level's setup)."""
    out: list[tuple[int, float]] = []
    by_level: dict[int, list[dict[str, Any]]] = {}
    for rec in history:
        if "seconds" in rec and "tile" not in rec:
            by_level.setdefault(int(rec.get("scale", 1)), []).append(rec)
    for steps in by_level.values():
        if len(steps) >= 3:
            span = float(steps[-1]["seconds"]) - float(steps[0]["seconds"])
            n = len(steps) - 1
            if span > 0:
                out.append((int(steps[0]["width"]) * int(steps[0]["height"]), span / n))
    return out


def setup_seconds(history: Sequence[dict[str, Any]], total_s: float) -> float:
    """The run's seconds outside its iterations: its total less the iterations' own time."""
    if not history:
        return 0.0
    return max(0.0, total_s - float(history[-1].get("seconds", 0.0)))


class Timings:
    """The measured speeds of this machine, in ``path`` (a JSON file; None keeps them in memory)."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self.data: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                self.data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError, RecursionError):
                self.data = {}  # (a damaged file is measured again)

    def record(self, key: str, history: Sequence[dict[str, Any]], total_s: float) -> None:
        """Keep a finished run's samples (and its setup time), and save."""
        entry = self.data.setdefault(key, {"samples": [], "setup": []})
        entry["samples"] = (entry["samples"] + [list(s) for s in samples_of(history)])[-KEEP:]
        entry["setup"] = (entry["setup"] + [round(setup_seconds(history, total_s), 3)])[-KEEP:]
        if self.path is not None:
            # (a cache: a disk that refuses it costs only the next estimate)
            with _LOCK, contextlib.suppress(Exception):
                atomic_write_bytes(self.path, json.dumps(self.data).encode(), overwrite=True)

    def estimate(self, plan: Plan, key: str) -> Estimate:
        """The seconds ``plan`` will take with setup ``key``."""
        entry = self.data.get(key) or {}
        samples = [(float(p), float(s)) for p, s in entry.get("samples", []) if s > 0]
        setups = entry.get("setup") or []
        if not samples:
            a, b, basis = 0.0, PRIOR_S_PER_MPX / 1e6, "prior"
        else:
            a, b = _fit(samples)
            basis = "measured"
        setup = statistics.median(setups) if setups else PRIOR_SETUP_S
        # every step costs a + b * its pixels: the plan's steps and its work (megapixel-steps)
        seconds = setup + a * plan.total_iterations + b * plan.work * 1e6
        return Estimate(seconds, basis, len(samples))


def _fit(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """``s = a + b p`` by least squares with ``a >= 0``; ``b`` alone for one size."""
    ps = [p for p, _ in samples]
    if max(ps) - min(ps) < 0.1 * max(ps):
        return 0.0, statistics.median(s / p for p, s in samples)
    mp, ms = statistics.fmean(ps), statistics.fmean(s for _, s in samples)
    var = sum((p - mp) ** 2 for p in ps)
    b = sum((p - mp) * (s - ms) for p, s in samples) / var
    a = ms - b * mp
    if a < 0 or b <= 0:
        return 0.0, statistics.median(s / p for p, s in samples)
    return a, b
