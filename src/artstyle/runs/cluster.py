"""Ray: connecting to a cluster (or starting a local Ray), and painting one picture's tiles across
it (:class:`RayPainter`, ``artstyle stylize --runner ray``).

The tiles of a pass are independent (:mod:`artstyle.engine.tiles`), so they go out to long-lived actors
that hold the network (loaded once each); the painting's statistics of a level are put in Ray's
object store once and every actor reads them from there. A tile and its pixels travel (its crop of
the photo and of the picture, its masks), and come back with their losses; the driver blends them
in tile order, so the picture is the one the local run paints, writes checkpoints and the state,
and writes the output. An actor that dies (its process or its node) is replaced and its tile
given to the new actor (:data:`MAX_RETRIES` times at most, one line each); only that
tile's work is lost.

Ray is an optional extra (``pip install "artstyle[cluster]"``), imported only here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import torch

from artstyle.config import StyleConfig, from_dict
from artstyle.engine.objective import Detail, StyleTargets
from artstyle.engine.painter import LocalPainter, TileJob, TileStep
from artstyle.engine.runtime import resolve_device
from artstyle.engine.stylizer import build_network
from artstyle.errors import ArtstyleError
from artstyle.log import Log, to_terminal

#: How often Ray retries a tile (or a study's run) whose worker or node died.
MAX_RETRIES = 3


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise ArtstyleError('--runner ray needs Ray: pip install "artstyle[cluster]"') from None
    return ray


def connect(address: str | None, runtime_env: dict[str, Any] | None = None) -> bool:
    """Connect to the cluster at ``address`` (or ``$RAY_ADDRESS``); without either, start a local
    Ray. ``runtime_env``: the workers' (a driver joining another's cluster takes its). Returns
    whether this call started Ray (and so should stop it)."""
    ray = ray_module()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        probe(address)
    if ray.is_initialized():  # (a program that embeds the runner and connected itself)
        return False
    with _handlers_kept():
        return _init(ray, address, runtime_env)


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """``ray.init`` puts its own SIGTERM (and SIGINT) handler in the process that calls it: a C++
    stack dump and exit 1 on ``docker stop``. The handlers in place before it are put back, so
    every entry into Ray (tiles, study, studio, video) stops on SIGTERM as it does without Ray."""
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def _init(ray: Any, address: str | None, runtime_env: dict[str, Any] | None = None) -> bool:
    try:
        if address:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env or None)
        else:
            # a Ray of our own listens on loopback only, like every server of ours by default
            ray.init(
                address="local", include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray"
        raise ArtstyleError(f"cannot start or reach {where}: {str(e).splitlines()[0]}") from None
    return True


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[bool]:
    """Inside: connected to the cluster at ``address`` (or a local Ray of our own, stopped on the
    way out); yields whether this call started Ray. (Signals stay ours: see :func:`connect`.)"""
    started = connect(address)
    try:
        yield started
    finally:
        if started:
            ray_module().shutdown()


def probe(address: str, timeout: float = 10.0) -> None:
    """Fail in one line, within ``timeout`` seconds, when nothing listens at a ``host:port``
    address (Ray itself would retry for minutes). Other forms (``auto``, ``ray://``) go to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ArtstyleError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}); is it running?"
        ) from None


#: Seconds a tiled run waits on new workers alone before it asks whether the cluster is still there.
LOST_AFTER = 60.0


def cluster_alive() -> bool:
    """Whether the cluster this process is connected to has a live machine with CPUs (False when
    its own service does not answer either)."""
    try:
        return any(n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0 for n in ray_module().nodes())
    except Exception:  # (whatever a cluster that is gone makes Ray raise)
        return False


def _line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]


class TileWorker:
    """A Ray actor's state: the network of ``config``, loaded once, and a local painter over it."""

    def __init__(self, config: dict[str, Any], threads: int) -> None:
        if threads:
            torch.set_num_threads(threads)
        cfg = from_dict(config)
        device = resolve_device(cfg.device)
        self.painter = LocalPainter(build_network(cfg, device), cfg, device)

    def paint(
        self,
        targets: StyleTargets,
        job: TileJob,
        iterations: int,
        next_size: tuple[int, int] | None,
        detail: Detail | None = None,
    ) -> list[TileStep]:
        """``iterations`` of one tile (fewer when its loss stops being finite): a step for each,
        the tile's picture with the last."""
        device = self.painter.device
        targets.losses.to(device)  # (this process's own copies)
        if detail is not None and detail.look is not None:
            detail.look.losses.to(device)
        steps = list(self.painter.paint(targets, [job], iterations, next_size, detail))
        for step in steps:
            step.image = step.image.detach().cpu() if step.last and step.image is not None else None
        return steps

    def ready(self) -> bool:
        """Answers once the actor is up (its network loaded): a replacement joins then."""
        return True


def start_actor(remote: Any, args: tuple[Any, ...]) -> tuple[Any, Any]:
    """A new actor and the reference that resolves once it is up (Ray places it where there is
    room; until then nothing is given to it, so a run never waits on an actor that cannot start)."""
    actor = remote.remote(*args)
    return actor.ready.remote(), actor


class RayPainter:
    """Paints tiles on Ray actors (one per ``cpus_per_actor`` CPUs of the cluster, at most
    ``actors``); see the module. ``worker``: the actors' class (a :class:`TileWorker`, made with
    the config, the threads and ``worker_args``)."""

    def __init__(
        self,
        cfg: StyleConfig,
        actors: int = 0,
        cpus_per_actor: int = 1,
        runtime_env: dict[str, Any] | None = None,
        worker: type[TileWorker] = TileWorker,
        worker_args: tuple[Any, ...] = (),
        log: Log = to_terminal,
    ) -> None:
        ray = ray_module()
        self.ray, self.log = ray, log
        n = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_actor)
        self._remote = ray.remote(worker).options(
            num_cpus=cpus_per_actor, max_restarts=0, max_task_retries=0, runtime_env=runtime_env
        )
        self._args = (cfg.to_dict(), cpus_per_actor, *worker_args)
        self.actors = [self._remote.remote(*self._args) for _ in range(n)]
        self.starting: dict[Any, Any] = {}  # replacements not up yet: their ready() -> the actor
        self._put: dict[str, tuple[Any, Any]] = {}  # key -> (the value, its object reference)

    def _once(self, key: str, value: Any) -> Any:
        """``value`` (a level's painting statistics, or its detail terms) in the object store once,
        moved to the CPU (workers may have no GPU)."""
        if value is None:
            return None
        if key not in self._put or self._put[key][0] is not value:
            cpu = copy.deepcopy(value)
            for targets in (cpu, getattr(cpu, "look", None)):
                if isinstance(targets, StyleTargets):
                    targets.losses.to("cpu")
            self._put[key] = (value, self.ray.put(cpu))
        return self._put[key][1]

    def paint(
        self,
        targets: StyleTargets,
        jobs: list[TileJob],
        iterations: int,
        next_size: tuple[int, int] | None,
        detail: Detail | None = None,
    ) -> Iterator[TileStep]:
        ray, ref, detail_ref = self.ray, self._once("targets", targets), self._once("detail", detail)
        # (pixels travel from the CPU: a worker may have no GPU)
        jobs = [
            dataclasses.replace(
                j, image=j.image.cpu(), masks=None if j.masks is None else [m.cpu() for m in j.masks]
            )
            for j in jobs
        ]
        pending = [(job, 0) for job in jobs]  # (tile, failures so far)
        running: dict[Any, tuple[Any, TileJob, int]] = {}  # a tile's future -> (actor, tile, failures)
        idle = list(self.actors)
        ready: dict[int, list[TileStep]] = {}
        order = [j.index for j in jobs]
        try:
            while order:
                while pending and idle:
                    (job, failures), actor = pending.pop(0), idle.pop(0)
                    running[actor.paint.remote(ref, job, iterations, next_size, detail_ref)] = (
                        actor,
                        job,
                        failures,
                    )
                # (with only replacements to wait for, look now and then whether a cluster is left)
                wait = None if running else LOST_AFTER
                finished, _ = ray.wait([*running, *self.starting], num_returns=1, timeout=wait)
                if not finished and not cluster_alive():
                    raise ArtstyleError(
                        "the Ray cluster was lost (no machine with CPUs is left in it); the tiles "
                        "painted so far are kept: run the same command again to continue"
                    )
                for f in finished:
                    if f in self.starting:  # a replacement is up: it takes tiles from now on
                        actor = self.starting.pop(f)
                        with contextlib.suppress(ray.exceptions.RayError):
                            ray.get(f)
                            self.actors.append(actor)
                            idle.append(actor)
                        continue
                    actor, job, failures = running.pop(f)
                    try:
                        steps: list[TileStep] = ray.get(f)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                        # the worker or its node died: only this tile is lost; it goes to another
                        self._drop(actor)
                        if failures + 1 > MAX_RETRIES:
                            raise ArtstyleError(
                                f"a tile failed {failures + 1} times on the cluster; its worker was "
                                f"lost: {_line(e)}"
                            ) from None
                        pending.append((job, failures + 1))
                        # another worker in its place, where Ray finds room (its CPU is free
                        # again after a process death; after a node's, maybe nowhere): it takes
                        # tiles once it is up, and meanwhile the others go on
                        ref_up, new = start_actor(self._remote, self._args)
                        self.starting[ref_up] = new
                        self.log(
                            f"artstyle: a tile worker was lost (its process or node died; out of "
                            f"memory?); tile {job.index + 1} goes to a new worker, try {failures + 2} "
                            f"of {MAX_RETRIES + 1}"
                        )
                        continue
                    except ray.exceptions.RayError as e:
                        raise ArtstyleError(f"a tile failed on the cluster: {_line(e)}") from None
                    idle.append(actor)
                    ready[job.index] = steps
                while order and order[0] in ready:  # (in tile order: the picture is the local one)
                    yield from ready.pop(order.pop(0))
        finally:
            for f in running:
                ray.cancel(f)

    def _drop(self, actor: Any) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
        with contextlib.suppress(Exception):  # (it is gone already, or going)
            self.ray.kill(actor, no_restart=True)

    def close(self) -> None:
        for actor in [*self.actors, *self.starting.values()]:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.actors, self.starting = [], {}
