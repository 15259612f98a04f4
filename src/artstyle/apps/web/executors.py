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
import multiprocessing as mp
import queue
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from artstyle.apps.web import worker
from artstyle.apps.web.events import ActorFlags, CancelBoard, Event, Finished, Preview, Saved, Status
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes, atomic_write_files

#: The task's keys that name input files (on Ray they travel as bytes).
INPUT_KEYS = ("content", "styles", "masks", "contents", "clip", "resume")


class LocalExecutor:
    """One worker process (spawned: the web process has threads), one job at a time; a worker
    that dies is replaced and its job reported lost."""

    capacity = 1
    #: The torch threads a job has (None: torch's default), part of a speed's setup key.
    threads: int | None = None

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


class RayExecutor:
    """Jobs as Ray tasks, as many at once as the cluster has CPUs for (``cpus_per_job`` each)."""

    def __init__(
        self,
        data: Path,
        address: str | None = None,
        cpus_per_job: int = 1,
        worker_init: str | None = None,
    ) -> None:
        self.data, self.address, self.cpus_per_job, self.worker_init = (
            data,
            address,
            cpus_per_job,
            worker_init,
        )
        self.refs: dict[str, tuple[Any, Path]] = {}  # a job -> (its task's reference, its folder)
        self._lost: list[tuple[str, str]] = []
        self.capacity = 1
        self.threads = cpus_per_job
        self.started = False

    def start(self) -> None:
        from artstyle.runs.cluster import connect, ray_module

        ray = ray_module()
        self.started = connect(self.address)
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

    def stop(self) -> None:
        if self.started:
            from artstyle.runs.cluster import ray_module

            with contextlib.suppress(Exception):
                ray_module().shutdown()


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
