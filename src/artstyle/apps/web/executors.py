"""Where the studio's jobs run: one worker process on this machine (:class:`LocalExecutor`, the
default), or Ray tasks across a cluster (:class:`RayExecutor`, ``artstyle serve --runner ray``),
several at once. The :class:`~artstyle.apps.web.manager.Manager` keeps the queue and the records and
talks to either the same way: ``run`` a task, ``cancel`` one, read ``events``.

Both run a job with :func:`artstyle.apps.web.worker.run_task` and give the same typed events
(:mod:`artstyle.apps.web.events`). A Ray task does not share the server's disk: its inputs travel as
bytes, it paints in a folder of its own, its previews come back with their PNG bytes through a Ray
queue, and its files (the result and its sidecar, an experiment's report) with its return value;
the server writes them into the job's folder. Cancel is a flag on both: the worker process reads a
shared array, a Ray task a small actor (:class:`~artstyle.apps.web.events.CancelBoard`), after every
iteration; the run stops there and keeps its image. A task whose worker or node dies is ``failed``
with Ray's reason.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing as mp
import os
import queue
import re
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from artstyle.apps.web import worker
from artstyle.apps.web.events import ActorFlags, CancelBoard, Event, Finished, Preview, Saved, Status
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes, atomic_write_files

log = logging.getLogger("artstyle.studio")

#: The task's keys that name input files (on Ray they travel as bytes).
INPUT_KEYS = ("content", "styles", "masks", "contents", "clip", "resume")


class LocalExecutor:
    """One worker process (spawned: the web process has threads), one job at a time; a worker
    that dies is replaced and its job reported lost."""

    capacity = 1
    #: The torch threads a job has (None: torch's default), part of a speed's setup key.
    threads: int | None = None
    #: Why new jobs are refused ("": they are not; see :class:`RayExecutor`).
    why = ""

    def __init__(self, worker_init: str | None = None) -> None:
        self.worker_init = worker_init
        self._ctx = mp.get_context("spawn")
        self.current: str | None = None

    def start(self) -> None:
        self.tasks = self._ctx.Queue()
        self._events = self._ctx.Queue()
        self.flags = self._ctx.Array("q", 2)  # [seq to cancel, 1 if the server is stopping]
        self.proc = self._ctx.Process(
            target=worker.main,
            args=(self.tasks, self._events, self.flags, self.worker_init),
            name="artstyle-worker",
            daemon=True,
        )
        self.proc.start()

    def run(self, task: dict[str, Any]) -> None:
        self.current = task["id"]
        self.flags[1] = 0
        self.tasks.put(task)

    def cancel(self, job_id: str, seq: int, stopping: bool = False) -> None:
        if stopping:
            self.flags[1] = 1
        self.flags[0] = seq

    def events(self, timeout: float) -> list[Event]:
        out: list[Event] = []
        with contextlib.suppress(queue.Empty, EOFError, OSError):
            out.append(self._events.get(timeout=timeout))
            while len(out) < 200:
                out.append(self._events.get_nowait())
        for event in out:
            if isinstance(event, Finished) and event.job == self.current:
                self.current = None
        return out

    def lost(self) -> list[tuple[str, str]]:
        """Jobs whose worker died (the worker is started again)."""
        if self.proc.is_alive():
            return []
        code = self.proc.exitcode
        gone = (
            [(self.current, f"the worker process stopped unexpectedly (exit code {code})")]
            if self.current
            else []
        )
        self.current = None
        self.start()
        return gone

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.tasks.put(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        for q in (self.tasks, self._events):  # (their pipes, threads and semaphores, released now)
            with contextlib.suppress(Exception):
                q.close()
                q.join_thread()


class RayDriver:
    """Jobs as Ray tasks, as many at once as the cluster has CPUs for (``cpus_per_job`` each): the
    Ray driver, in a process of its own (:func:`_driver_main`, fed by :class:`RayExecutor`)."""

    def __init__(
        self,
        data: Path,
        address: str | None = None,
        cpus_per_job: int = 1,
        worker_init: str | None = None,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        self.data, self.address, self.cpus_per_job, self.worker_init = (
            data,
            address,
            cpus_per_job,
            worker_init,
        )
        self.runtime_env = runtime_env
        self.refs: dict[str, tuple[Any, Path]] = {}  # a job -> (its task's reference, its folder)
        self._lost: list[tuple[str, str]] = []
        self.capacity = 1
        self.threads = cpus_per_job
        self.started = False
        self.gone = False  # (the cluster was lost: this driver ends, and a new one takes over)

    def start(self) -> None:
        from artstyle.runs.cluster import connect, ray_module

        ray = ray_module()
        self.started = connect(self.address, self.runtime_env)
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self.board = ray.remote(CancelBoard).options(num_cpus=0).remote()
        cpus = ray.cluster_resources().get("CPU", 1)
        self.capacity = max(1, int(cpus // self.cpus_per_job))
        self._remote = ray.remote(_studio_task).options(num_cpus=self.cpus_per_job, max_retries=0)

    def run(self, task: dict[str, Any]) -> None:
        inputs: dict[str, bytes] = {}
        for key in INPUT_KEYS:
            value = task.get(key)
            for p in [value] if isinstance(value, str) else value or []:
                inputs[p] = Path(p).read_bytes()
        ref = self._remote.remote(
            {**task, "inputs": inputs}, self.queue, self.board, self.worker_init, self.cpus_per_job
        )
        self.refs[task["id"]] = (ref, Path(task["dir"]))

    def cancel(self, job_id: str, seq: int, stopping: bool = False) -> None:
        """Raise the job's flag: the task reads it after its next iteration and stops there."""
        if job_id in self.refs:
            self.board.cancel.remote(job_id, stopping)

    def events(self, timeout: float) -> list[Event]:
        from artstyle.runs.cluster import ray_module

        ray = ray_module()
        out: list[Event] = []
        with contextlib.suppress(Exception):
            n = self.queue.qsize()
            if n:
                out += [self._preview(e) for e in self.queue.get_nowait_batch(n)]
        running = list(self.refs.items())  # (a copy: a submit on another thread may add one meanwhile)
        if running:
            refs = [r for _, (r, _) in running]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for job_id in [j for j, (r, _) in running if r in ready]:
                done = self._finish(ray, job_id)
                if done is not None:
                    out.append(done)
        if not out:
            time.sleep(timeout)
        return out

    def _preview(self, event: Event) -> Event:
        """A preview's or a state's bytes written into the job's folder, as a local worker does."""
        if isinstance(event, Preview) and event.png is not None and event.job in self.refs:
            with contextlib.suppress(ArtstyleError):
                atomic_write_bytes(self.refs[event.job][1] / "preview.png", event.png, overwrite=True)
        if isinstance(event, Saved) and event.data is not None and event.job in self.refs:
            with contextlib.suppress(ArtstyleError):
                atomic_write_bytes(self.refs[event.job][1] / worker.STATE_FILE, event.data, overwrite=True)
        if isinstance(event, Preview):
            event.png = None
        if isinstance(event, Saved):
            event.data = None
        return event

    def _finish(self, ray: Any, job_id: str) -> Finished | None:
        """The finished task's result written into its folder; None for a task whose worker or
        node was lost (:meth:`lost` reports it, and the manager tries it again)."""
        ref, folder = self.refs.pop(job_id)
        self.board.forget.remote(job_id)
        try:
            r = ray.get(ref)
        except Exception as e:  # a task whose worker or node died, or Ray's own failure
            why = _lost_why(e)
            if why is not None:
                self._lost.append((job_id, why))
                self.gone = self.gone or self._cluster_gone(e)
                return None
            last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            return Finished(job_id, Status.FAILED, {"message": f"the Ray task failed: {last[:200]}"})
        done: Finished = r["finished"]
        message = done.data.get("message")
        if isinstance(message, str):  # (the task's own folder is nobody's business)
            done.data["message"] = re.sub(r"\S*artstyle-studio-[^/\s]+/(job/)?", "", message)
        files = {folder / name: content for name, content in r["files"].items()}
        for p in files:
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_files(files, overwrite=True)
        except ArtstyleError as e:
            return Finished(job_id, Status.FAILED, {"message": str(e)})
        return done

    def lost(self) -> list[tuple[str, str]]:
        """Jobs whose Ray worker or node was lost since the last call, with why in plain words."""
        gone, self._lost = self._lost, []
        return gone

    def _cluster_gone(self, e: BaseException) -> bool:
        """Whether a node's loss took the whole cluster: the one node of the local Ray this driver
        started, or the last node with CPUs of the cluster it joined."""
        from ray import exceptions as rx

        if not isinstance(e, rx.NodeDiedError | rx.LocalRayletDiedError):
            return False
        if self.started or isinstance(e, rx.LocalRayletDiedError):
            return True
        from artstyle.runs.cluster import cluster_alive

        return not cluster_alive()

    def stop(self) -> None:
        if self.started:
            from artstyle.runs.cluster import ray_module

            with contextlib.suppress(Exception):
                ray_module().shutdown()


class RayExecutor:
    """Jobs as Ray tasks, run by a Ray driver in a process of its own (:class:`RayDriver`), so that
    a lost cluster never takes the web server with it: Ray ends a driver whose raylet has died.

    When that process ends unexpectedly (the raylet, a local Ray's or the cluster's, was lost), its
    running jobs are reported lost (the manager tries them again) and a new driver is started: with
    no ``address`` it starts a new local Ray and the jobs run there; with one, until the cluster can
    be reached again (a try every :data:`RETRY_SECONDS`), :attr:`why` says so and the studio refuses
    new jobs with a 503. One log line says which."""

    #: Seconds between tries to reach a cluster that was lost.
    RETRY_SECONDS = 10.0
    #: A driver silent this long is stuck (its raylet gone, a Ray call that never returns): it is
    #: stopped and counted lost. It says it is alive every second.
    SILENT_SECONDS = 30.0

    def __init__(
        self,
        data: Path,
        address: str | None = None,
        cpus_per_job: int = 1,
        worker_init: str | None = None,
        driver: Any = None,
    ) -> None:
        self.data, self.address, self.worker_init = data, address, worker_init
        self.cpus_per_job = cpus_per_job
        self.driver = driver or _driver_main
        self.capacity = 0
        self.threads = cpus_per_job
        self.why = ""  # (why new jobs are refused: the cluster cannot be reached)
        self.proc: Any = None
        self.running: set[str] = set()
        self._lost: list[tuple[str, str]] = []
        self._join: tuple[str | None, dict[str, Any] | None] = (address, None)
        self._ready = False
        self._was_lost = False
        self._retry_at = 0.0
        self._heard = time.monotonic()

    @property
    def where(self) -> str:
        return f"the Ray cluster at {self.address}" if self.address else "the local Ray"

    def start(self) -> None:
        """Start the driver and wait until it is connected; an ArtstyleError when it cannot be."""
        from artstyle.runs.cluster import ray_module

        ray = ray_module()
        self.address = address = self.address or os.environ.get("RAY_ADDRESS") or None
        env = None
        if not address and ray.is_initialized():  # (a program, or a test, connected itself: its cluster)
            context = ray.get_runtime_context()
            address, env = context.gcs_address, dict(context.runtime_env or {})
        self._join = (address, env)
        self._spawn()
        deadline = time.monotonic() + 180
        while not self._ready and not self.why and time.monotonic() < deadline:
            self._read(0.2)
            if not self._ready and not self.why and not self.proc.is_alive():
                code = self.proc.exitcode
                self.why = f"the Ray driver stopped while it connected to {self.where} (exit code {code})"
        if not self._ready:
            self.stop()
            raise ArtstyleError(self.why or f"{self.where} did not answer within 180 s")

    def _spawn(self) -> None:
        ctx = mp.get_context("spawn")
        self._commands, self._events = ctx.Queue(), ctx.Queue()
        address, env = self._join
        args = (self._commands, self._events, str(self.data), address, env)
        args += (self.cpus_per_job, self.worker_init)
        self.proc = ctx.Process(target=self.driver, args=args, name="artstyle-ray-driver", daemon=True)
        self.proc.start()
        self._ready = False
        self._heard = time.monotonic()

    def _read(self, timeout: float) -> list[Event]:
        """The driver's messages since the last call (waiting up to ``timeout`` for the first)."""
        out: list[Event] = []
        msgs = []
        with contextlib.suppress(queue.Empty, EOFError, OSError):
            msgs.append(self._events.get(timeout=timeout))
            while len(msgs) < 500:
                msgs.append(self._events.get_nowait())
        if msgs:
            self._heard = time.monotonic()
        for msg in msgs:
            kind = msg[0]
            if kind == "ready":
                self.capacity, self._ready, self.why = msg[1], True, ""
                if self._was_lost:
                    again = "a new local Ray was started" if not self.address else f"{self.where} is back"
                    log.warning("artstyle studio: %s; jobs run again", again)
                    self._was_lost = False
            elif kind == "failed":
                self.why, self.capacity = msg[1], 0
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
            elif kind == "lost":
                self.running.discard(msg[1])
                self._lost.append((msg[1], msg[2]))
            elif kind == "event":
                if isinstance(msg[1], Finished):
                    self.running.discard(msg[1].job)
                out.append(msg[1])
        return out

    def run(self, task: dict[str, Any]) -> None:
        self.running.add(task["id"])
        self._commands.put(("run", task))

    def cancel(self, job_id: str, seq: int, stopping: bool = False) -> None:
        """Raise the job's flag: the task reads it after its next iteration and stops there."""
        if job_id in self.running:
            self._commands.put(("cancel", job_id, stopping))

    def events(self, timeout: float) -> list[Event]:
        out = self._read(timeout)
        if self._ready and self.proc.is_alive() and time.monotonic() - self._heard > self.SILENT_SECONDS:
            quiet = self.SILENT_SECONDS
            log.warning("artstyle studio: the Ray driver has said nothing for %.0f s; stopping it", quiet)
            self.proc.kill()
            self.proc.join(5)
        if self.proc is not None and not self.proc.is_alive() and self._ready:
            self._driver_lost()
        elif (self.proc is None or not self.proc.is_alive()) and time.monotonic() >= self._retry_at:
            # (not connected: try again to start the driver, or to reach the cluster)
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            self._spawn()
        return out

    def _driver_lost(self) -> None:
        """The driver ended by itself: Ray ended it (its raylet died), or it crashed."""
        self._read(0)
        code = self.proc.exitcode
        what = f"{self.where} was lost (the Ray driver ended, exit code {code})"
        then = "a new one is started" if not self.address else "reconnecting"
        log.warning("artstyle studio: %s; %s", what, then)
        for job_id in sorted(self.running):
            self._lost.append((job_id, what))
        self.running.clear()
        self.capacity, self._ready, self._was_lost = 0, False, True
        if self.address:
            self.why = f"{self.where} cannot be reached; try again when it is back"
        self._retry_at = 0.0

    def lost(self) -> list[tuple[str, str]]:
        """Jobs whose Ray worker, node or cluster was lost since the last call, with why in plain words."""
        gone, self._lost = self._lost, []
        return gone

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            self._commands.put(("stop",))
        self.proc.join(30)
        if self.proc.is_alive():  # (it ignores SIGTERM: see _driver_main)
            self.proc.kill()
            self.proc.join(5)
        for q in (self._commands, self._events):
            with contextlib.suppress(Exception):
                q.close()
                q.join_thread()


def _driver_main(
    commands: Any,
    events: Any,
    data: str,
    address: str | None,
    runtime_env: dict[str, Any] | None,
    cpus_per_job: int,
    worker_init: str | None,
) -> None:
    """The Ray driver's process: connects (or starts a local Ray), then runs the commands of
    :class:`RayExecutor` and sends back the tasks' events. Ctrl-C and SIGTERM are the server's to
    handle (it stops this process through a command, once its jobs have stopped and kept their
    pictures); a server that is gone ends it too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    driver = RayDriver(Path(data), address, cpus_per_job, worker_init, runtime_env)
    try:
        driver.start()
    except Exception as e:  # (one line for the server: it cannot be reached, or Ray failed)
        events.put(("failed", f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"))
        return
    events.put(("ready", driver.capacity))
    beat = time.monotonic()
    while True:
        if time.monotonic() - beat >= 1.0:
            events.put(("alive",))
            beat = time.monotonic()
        try:
            cmd = commands.get(timeout=0.05)
        except queue.Empty:
            cmd = None
        if cmd is not None:
            if cmd[0] == "stop":
                driver.stop()
                return
            if cmd[0] == "run":
                driver.run(cmd[1])
            elif cmd[0] == "cancel":
                driver.cancel(cmd[1], 0, cmd[2])
            continue
        if os.getppid() != parent:
            driver.stop()
            return
        for event in driver.events(0.05):
            events.put(("event", event))
        lost = driver.lost()
        if driver.gone:  # (every job of this driver is counted lost by the server, as the cluster)
            stopping = threading.Thread(target=driver.stop, daemon=True)  # (what is left of it)
            stopping.start()
            stopping.join(10)
            events.close()
            events.join_thread()
            os._exit(3)
        for job_id, why in lost:
            events.put(("lost", job_id, why))


def _lost_why(e: BaseException) -> str | None:
    """A Ray failure that lost the task's worker or node, in words a studio user can follow; None
    for any other failure (the task's own error: not worth trying again)."""
    from ray import exceptions as rx

    if isinstance(e, rx.OutOfMemoryError):
        return "the Ray worker was stopped because its machine ran out of memory"
    if isinstance(e, rx.NodeDiedError | rx.LocalRayletDiedError):
        return "the machine the job ran on left the Ray cluster"
    if isinstance(e, rx.WorkerCrashedError):
        return "the Ray worker running the job was lost (out of memory, or killed?)"
    return None


# ---- the task, in a Ray worker -------------------------------------------------------------------

_CACHE: dict[str, Any] = {}
_READY: set[str] = set()


class _Forward:
    """The worker's event queue, in a Ray task: a preview goes with its PNG's bytes."""

    def __init__(self, events: Any, folder: Path) -> None:
        self.events, self.folder = events, folder

    def put(self, event: Event) -> None:
        if isinstance(event, Preview) and (self.folder / "preview.png").exists():
            event.png = (self.folder / "preview.png").read_bytes()
        if isinstance(event, Saved) and (self.folder / worker.STATE_FILE).exists():
            event.data = (self.folder / worker.STATE_FILE).read_bytes()
        self.events.put(event)


def _studio_task(
    task: dict[str, Any], events: Any, board: Any, init: str | None, threads: int
) -> dict[str, Any]:
    """Run one studio job in this Ray worker; its files come back with the result."""
    import torch

    torch.set_num_threads(max(1, threads))
    if init and init not in _READY:  # (tests: tiny weights in the worker)
        module, _, func = init.partition(":")
        getattr(importlib.import_module(module), func)()
        _READY.add(init)
    inputs: dict[str, bytes] = task.pop("inputs")
    with tempfile.TemporaryDirectory(prefix="artstyle-studio-") as tmp:
        here = Path(tmp)
        local: dict[str, str] = {}
        for i, (path, data) in enumerate(inputs.items()):
            local[path] = str(here / f"input{i}{Path(path).suffix}")
            Path(local[path]).write_bytes(data)
        for key in INPUT_KEYS:
            value = task.get(key)
            if isinstance(value, str):
                task[key] = local[value]
            elif value:
                task[key] = [local[p] for p in value]
        folder = here / "job"
        folder.mkdir()
        task = {**task, "dir": str(folder)}
        finished = worker.run_task(task, _Forward(events, folder), ActorFlags(board, task["id"]), _CACHE)
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("preview.png", worker.STATE_FILE)
        }
    return {"finished": finished, "files": files}
