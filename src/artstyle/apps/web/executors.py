"""Where the studio's jobs run: one worker process on this machine (:class:`LocalExecutor`, the
default), or Ray tasks across a cluster (:class:`RayExecutor`, ``artstyle serve --runner ray``),
several at once. The :class:`~artstyle.apps.web.manager.Manager` keeps the queue and the records and
talks to either the same way: ``run`` a task, ``cancel`` one, read ``events``.

Both run a job with :func:`artstyle.apps.web.worker.run_task` and give the same events (``started``,
``progress``, ``preview``, then ``done``, ``failed``, ``cancelled`` or ``interrupted``). A Ray task
does not share the server's disk: its inputs travel as bytes, it paints in a folder of its own, its
previews come back with their PNG bytes through a Ray queue, and its files (the result and its
sidecar, an experiment's report) with its return value; the server writes them into the job's
folder. Cancel is Ray's own (it raises KeyboardInterrupt in the task, which keeps its image, as
Ctrl-C does). A task whose worker or node dies is ``failed`` with Ray's reason.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing as mp
import queue
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from artstyle.apps.web import worker
from artstyle.config import from_dict
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes, atomic_write_files
from artstyle.runs.timing import Timings, setup_key

Event = tuple[str, str, dict[str, Any]]
FINAL = ("done", "failed", "cancelled", "interrupted")


class LocalExecutor:
    """One worker process (spawned: the web process has threads), one job at a time; a worker
    that dies is replaced and its job reported lost."""

    capacity = 1

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
        for kind, job_id, _ in out:
            if kind in FINAL and job_id == self.current:
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


#: A cancelled Ray task still running is cancelled again after this many seconds, and its worker
#: killed after :data:`CANCEL_FORCE_S`.
CANCEL_AGAIN_S = 10.0
CANCEL_FORCE_S = 45.0


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
        self.refs: dict[str, tuple[Any, Path, dict[str, Any]]] = {}
        self.stopping: set[str] = set()
        self.cancelled: dict[str, tuple[float, float]] = {}  # job -> its cancel first and last sent
        self.iterating: dict[str, float] = {}  # a cancelled job -> when it last reported progress
        self.capacity = 1
        self.started = False

    def start(self) -> None:
        from artstyle.runs.cluster import connect, ray_module

        ray = ray_module()
        self.started = connect(self.address)
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        cpus = ray.cluster_resources().get("CPU", 1)
        self.capacity = max(1, int(cpus // self.cpus_per_job))
        self._remote = ray.remote(_studio_task).options(num_cpus=self.cpus_per_job, max_retries=0)

    def run(self, task: dict[str, Any]) -> None:
        inputs: dict[str, bytes] = {}
        for key in ("content", "styles", "masks", "contents"):
            value = task.get(key)
            for p in [value] if isinstance(value, str) else value or []:
                inputs[p] = Path(p).read_bytes()
        ref = self._remote.remote({**task, "inputs": inputs}, self.queue, self.worker_init, self.cpus_per_job)
        self.refs[task["id"]] = (ref, Path(task["dir"]), task)

    def cancel(self, job_id: str, seq: int, stopping: bool = False) -> None:
        from artstyle.runs.cluster import ray_module

        if job_id in self.refs:
            if stopping:
                self.stopping.add(job_id)
            now = time.monotonic()
            self.cancelled.setdefault(job_id, (now, now))
            with contextlib.suppress(Exception):
                ray_module().cancel(self.refs[job_id][0])

    def _insist(self, ray: Any, now: float) -> None:
        """Cancels again a cancelled task that still iterates. Ray's cancel is one KeyboardInterrupt
        in the task, which can land inside Ray's own calls (the task's progress events are calls to
        a queue actor) and be lost there. A task that still reports progress :data:`CANCEL_AGAIN_S`
        after the cancel was sent gets it again, and one still iterating :data:`CANCEL_FORCE_S` after
        the first has its worker killed (its last preview is its image). A task winding down (writing
        its image) reports no progress and is left to finish."""
        for job_id, (first, last) in list(self.cancelled.items()):
            if job_id not in self.refs:
                del self.cancelled[job_id]
                self.iterating.pop(job_id, None)
            elif self.iterating.get(job_id, 0.0) >= last + CANCEL_AGAIN_S:
                with contextlib.suppress(Exception):
                    ray.cancel(self.refs[job_id][0], force=now - first >= CANCEL_FORCE_S)
                self.cancelled[job_id] = (first, now)

    def events(self, timeout: float) -> list[Event]:
        from artstyle.runs.cluster import ray_module

        ray = ray_module()
        out: list[Event] = []
        with contextlib.suppress(Exception):
            n = self.queue.qsize()
            if n:
                out += [self._preview(e) for e in self.queue.get_nowait_batch(n)]
        now = time.monotonic()
        for kind, job_id, _ in out:
            if kind == "progress" and job_id in self.cancelled:
                self.iterating[job_id] = now
        self._insist(ray, now)
        running = list(self.refs.items())  # (a copy: a submit on another thread may add one meanwhile)
        if running:
            refs = [r for _, (r, _, _) in running]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for job_id in [j for j, (r, _, _) in running if r in ready]:
                out.append(self._finish(ray, job_id))
        if not out:
            time.sleep(timeout)
        return out

    def _preview(self, event: Event) -> Event:
        kind, job_id, data = event
        if kind == "preview" and "png" in data and job_id in self.refs:
            with contextlib.suppress(ArtstyleError):
                atomic_write_bytes(self.refs[job_id][1] / "preview.png", data.pop("png"), overwrite=True)
        data.pop("png", None)
        return kind, job_id, data

    def _finish(self, ray: Any, job_id: str) -> Event:
        ref, folder, task = self.refs.pop(job_id)
        stopping = job_id in self.stopping
        self.stopping.discard(job_id)
        cancelled = self.cancelled.pop(job_id, None) is not None
        self.iterating.pop(job_id, None)
        try:
            r = ray.get(ref)
        except Exception as e:
            if not (cancelled or isinstance(e, ray.exceptions.TaskCancelledError)):
                # a task whose worker or node died, or Ray's own failure
                last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                message = f"the Ray task failed: {last[:200]}"
                return "failed", job_id, {"message": message, "time": time.time()}
            # cancelled (a task ended by its cancel, however it ended, was cancelled)
            has = (folder / "preview.png").exists()
            if has:  # (its last preview is its image, as for a job that lost its worker)
                with contextlib.suppress(OSError):
                    (folder / "result.png").write_bytes((folder / "preview.png").read_bytes())
            kind = "interrupted" if stopping else "cancelled"
            message = "cancelled; its last preview is kept" if has else "cancelled before it started"
            return kind, job_id, {"message": message, "has_image": has, "time": time.time()}
        event, data = r["event"], r["data"]
        if cancelled and event == "failed":  # (Ray's interrupt landed inside Ray's own calls)
            has = "result.png" in r["files"] or (folder / "preview.png").exists()
            if "result.png" not in r["files"] and has:
                r["files"]["result.png"] = (folder / "preview.png").read_bytes()
            event, data = "cancelled", {"message": "cancelled; its last preview is kept", "has_image": has}
        if isinstance(data.get("message"), str):  # (the task's own folder is nobody's business)
            data["message"] = re.sub(r"\S*artstyle-studio-[^/\s]+/(job/)?", "", data["message"])
        files = {folder / name: content for name, content in r["files"].items()}
        for p in files:
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_files(files, overwrite=True)
        except ArtstyleError as e:
            return "failed", job_id, {"message": str(e), "time": time.time()}
        if stopping and event == "cancelled":
            event, data = "interrupted", {**data, "message": "stopped when the server stopped"}
        side = r["files"].get("result.png.json")
        if event == "done" and side and task.get("timings"):
            with contextlib.suppress(Exception):
                record = json.loads(side)
                cfg = from_dict(record["config"])
                Timings(task["timings"]).record(
                    setup_key(cfg, record.get("device", "cpu"), self.cpus_per_job),
                    record["history"],
                    record["timings"]["total_s"],
                )
        return event, job_id, data

    def lost(self) -> list[tuple[str, str]]:
        return []  # (a task that dies ends as a failed result: see events)

    def stop(self) -> None:
        if self.started:
            from artstyle.runs.cluster import ray_module

            with contextlib.suppress(Exception):
                ray_module().shutdown()


# ---- the task, in a Ray worker -------------------------------------------------------------------

_CACHE: dict[str, Any] = {}
_READY: set[str] = set()


class _Forward:
    """The worker's event queue, in a Ray task: a preview goes with its PNG's bytes."""

    def __init__(self, events: Any, folder: Path) -> None:
        self.events, self.folder = events, folder

    def put(self, event: Event) -> None:
        kind, job_id, data = event
        if kind == "preview" and (self.folder / "preview.png").exists():
            data = {**data, "png": (self.folder / "preview.png").read_bytes()}
        self.events.put((kind, job_id, data))


def _studio_task(task: dict[str, Any], events: Any, init: str | None, threads: int) -> dict[str, Any]:
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
        for key in ("content", "styles", "masks", "contents"):
            value = task.get(key)
            if isinstance(value, str):
                task[key] = local[value]
            elif value:
                task[key] = [local[p] for p in value]
        folder = here / "job"
        folder.mkdir()
        task = {**task, "dir": str(folder), "timings": None}
        event, data = worker.run_task(task, _Forward(events, folder), [0, 0], _CACHE)
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "preview.png"
        }
    return {"event": event, "data": data, "files": files}
