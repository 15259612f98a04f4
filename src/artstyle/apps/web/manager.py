"""The studio's queue: jobs in order, one worker process, cancel, and what survives a restart.

The manager lives in the web process. It keeps every job's record (``job.json`` in the data
folder), sends the next queued job to the worker (:mod:`artstyle.apps.web.worker`) when it is idle,
and applies the worker's events to the records; the API and the event streams read the records.
A worker that dies is replaced and its job tried again from its last kept state (three tries in
all), then marked failed with its last image kept; a job that was
running when the server stopped is ``interrupted`` on the next start, with its last preview as
its image; queued jobs are queued again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections import deque
from typing import Any

from artstyle.apps.web import QUEUE_LIMIT
from artstyle.apps.web.events import FINISHED, Event, Finished, Preview, Progress, Saved, Started, Status
from artstyle.apps.web.executors import LocalExecutor, RayExecutor
from artstyle.apps.web.store import TIMINGS, NotFound, Store, log, new_id
from artstyle.apps.web.worker import STATE_FILE
from artstyle.config import StyleConfig, from_dict
from artstyle.errors import ArtstyleError, StorageError
from artstyle.runs.record import json_safe
from artstyle.runs.timing import Timings, setup_key

#: At most this many points of a loss curve are kept (thinned evenly as it grows).
CURVE_POINTS = 600
#: Tries a job gets when its worker is lost (see :meth:`Manager._lost`).
TRIES = 3


class QueueFull(ArtstyleError):
    pass


class Unavailable(ArtstyleError):
    """Jobs cannot run now (the Ray cluster cannot be reached): a 503."""


class Manager:
    def __init__(
        self,
        store: Store,
        *,
        queue_limit: int = QUEUE_LIMIT,
        worker_init: str | None = None,
        executor: LocalExecutor | RayExecutor | None = None,
    ) -> None:
        self.store = store
        self.queue_limit = queue_limit
        self.executor = executor or LocalExecutor(worker_init)
        self.lock = threading.RLock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.queue: deque[str] = deque()
        self.running: set[str] = set()
        self.seq = 0
        self.accepting = True
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None
        self._saved_at: dict[str, float] = {}

    # ---- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        for rec in sorted(self.store.load_jobs(), key=lambda r: r.get("created", 0)):
            if rec.get("status") == Status.RUNNING:
                self._interrupted(rec, "the server stopped while this job ran")
            elif rec.get("status") == Status.QUEUED:
                self.queue.append(rec["id"])
            self.jobs[rec["id"]] = rec
        self.executor.start()
        self._pump = threading.Thread(target=self._loop, name="artstyle-queue", daemon=True)
        self._pump.start()

    def begin_stop(self) -> None:
        """The server is stopping: take no more jobs, ask the running ones to stop now (they keep
        their image: ``interrupted``), and let every event stream end (they watch :attr:`accepting`)."""
        with self.lock:
            self.accepting = False
            for job_id in self.running:
                self.executor.cancel(job_id, self.jobs[job_id]["seq"], stopping=True)

    def stop(self, wait: float = 20.0) -> None:
        """Stop taking jobs; the running ones stop within an iteration and keep their image
        (``interrupted``); queued ones stay queued for the next start."""
        self.begin_stop()
        deadline = time.monotonic() + wait
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        if self._pump:
            self._pump.join()
        self.executor.stop()
        with self.lock:
            for job_id in list(self.running):
                self._interrupted(self.jobs[job_id], "the server stopped while this job ran")
            self.running.clear()

    def _interrupted(self, rec: dict[str, Any], message: str) -> None:
        """Mark a job that lost its worker; its last preview becomes its image."""
        rec.update(status=Status.INTERRUPTED, message=message, finished=time.time())
        self._keep_preview(rec)
        self._save(rec, force=True)

    def _keep_preview(self, rec: dict[str, Any]) -> None:
        """A job that ended without its picture keeps its last preview as its image, so that its
        record (``has_image``) and its image route agree; its resumable state goes."""
        with contextlib.suppress(NotFound, OSError):
            d = self.store.job_dir(rec["id"])
            if not (d / "result.png").exists() and (d / "preview.png").exists():
                shutil.copyfile(d / "preview.png", d / "result.png")
            rec["has_image"] = (d / "result.png").exists()
            (d / STATE_FILE).unlink(missing_ok=True)

    # ---- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                events = self.executor.events(0.2)
            except Exception as e:  # (an executor's own trouble: logged, and the loop goes on)
                log.error("artstyle studio: reading events failed (%s: %s)", type(e).__name__, e)
                events = []
                time.sleep(0.2)
            with self.lock:
                try:
                    for event in events:
                        self._apply(event)
                    if not self._stop.is_set():
                        for job_id, message in self.executor.lost():
                            self._lost(job_id, message)
                    self._dispatch()
                except Exception as e:  # the queue must outlive anything one event does to it
                    log.error("artstyle studio: the queue skipped an event (%s: %s)", type(e).__name__, e)

    def _lost(self, job_id: str, message: str) -> None:
        """A job whose worker (or its machine) was lost: tried again first in the queue, from its
        last resumable state where it kept one (``state.pt``: see the worker), at most
        :data:`TRIES` times in all, each try one line in the log and in the record's ``retries``;
        then failed, saying what happened, with its last preview as its image."""
        self.running.discard(job_id)
        rec = self.jobs.get(job_id)
        if rec is None:
            return
        tries = int(rec.get("tries", 1))
        if tries < TRIES and not self._stop.is_set():
            state = self.store.job_dir(job_id) / STATE_FILE
            step = rec.get("saved_step")
            where = f"resumed from step {step}" if state.exists() and step else "started again"
            line = f"{message}; {where}, try {tries + 1} of {TRIES}"
            log.warning("artstyle studio: job %s: %s", job_id, line)
            rec["task"]["resume"] = str(state) if state.exists() else None
            rec.setdefault("retries", []).append(line)
            rec.update(status=Status.QUEUED, tries=tries + 1, message=line)
            self.queue.appendleft(job_id)
            self._save(rec, force=True)
            return
        gave_up = f"{message}; the job was tried {tries} times and failed each time" if tries > 1 else message
        self._interrupted(rec, gave_up)
        rec["status"] = Status.FAILED
        log.warning("artstyle studio: job %s failed: %s", job_id, gave_up)
        self._save(rec, force=True)

    def _dispatch(self) -> None:
        while self.queue and self.accepting and len(self.running) < self.executor.capacity:
            job_id = self.queue.popleft()
            rec = self.jobs[job_id]
            self.seq += 1
            rec["seq"] = self.seq
            self.running.add(job_id)
            task = {**rec["task"], "id": job_id, "seq": self.seq, "kind": rec["kind"]}
            task["dir"] = str(self.store.job_dir(job_id))
            self.executor.run(task)
            self._touch(rec)

    def _apply(self, event: Event) -> None:
        rec = self.jobs.get(event.job)
        if rec is None:
            return
        if isinstance(event, Started):
            rec.update(status=Status.RUNNING, started=event.time)
            self._save(rec, force=True)
        elif isinstance(event, Progress):
            data = json_safe(event.data, lambda _: None)  # (the page reads null as not known)
            rec["progress"] = data
            if "losses" in data and data["losses"].get("total") is not None:
                curve = rec.setdefault("curve", [])
                curve.append([data["iteration"], data["losses"]["total"]])
                if len(curve) > CURVE_POINTS:
                    rec["curve"] = curve[::2]
            self._save(rec)
        elif isinstance(event, Preview):
            rec["preview"] = event.n
            self._save(rec)
        elif isinstance(event, Saved):
            rec["saved_step"] = event.step
        elif isinstance(event, Finished):
            data = json_safe(event.data, lambda _: None)
            if isinstance(data.get("message"), str):
                data["message"] = self.store.public(data["message"])
            rec.update(status=event.status, finished=event.time)
            rec.update(data)
            if rec.get("kind") == "stylize":
                self._keep_preview(rec)
            self.running.discard(event.job)
            self._save(rec, force=True)
            if event.status == Status.DONE and rec.get("kind") == "stylize":
                self._record_speed(rec)

    def speed_key(self, cfg: StyleConfig, device: str) -> str:
        """The setup a run's speed is kept under (:mod:`artstyle.runs.timing`): this studio's
        executor's threads a job, so that an estimate reads what its jobs measured."""
        return setup_key(cfg, device, self.executor.threads)

    def _record_speed(self, rec: dict[str, Any]) -> None:
        """This machine's speed, from a finished job's sidecar, for the estimates before Start (the
        one place it is recorded, wherever the job ran; a cache: trouble costs one estimate)."""
        with contextlib.suppress(Exception):
            side = json.loads(self.store.job_file(rec["id"], "result.png.json").read_text())
            key = self.speed_key(from_dict(side["config"]), side.get("device", "cpu"))
            Timings(self.store.root / TIMINGS).record(key, side["history"], side["timings"]["total_s"])

    def _touch(self, rec: dict[str, Any]) -> None:
        rec["version"] = rec.get("version", 0) + 1

    def _save(self, rec: dict[str, Any], force: bool = False) -> None:
        """Keep the record on disk (at most once a second unless ``force``); when the disk refuses
        (full, read-only), the record lives on in memory and the problem is logged once per job."""
        self._touch(rec)
        now = time.monotonic()
        if force or now - self._saved_at.get(rec["id"], 0.0) > 1.0:
            self._saved_at[rec["id"]] = now
            try:
                self.store.save_job(rec)
                rec.pop("unsaved", None)
            except NotFound:
                pass
            except (StorageError, OSError) as e:
                if not rec.get("unsaved"):
                    why = self.store.public(str(e))
                    log.warning("artstyle studio: job %s is not saved: %s", rec["id"], why)
                rec["unsaved"] = True

    # ---- what the API calls -----------------------------------------------------------------------

    def submit(self, kind: str, task: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._room(1)
            job = self._add(kind, task, info)
            self._dispatch()
            return self.view(job["id"])

    def submit_group(self, kind: str, jobs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
        """A batch: one job per photo, queued together as one group, or none of them (a batch
        over the queue's room is refused whole)."""
        with self.lock:
            self._room(len(jobs))
            group = new_id()
            added = []
            try:
                for i, (task, info) in enumerate(jobs):
                    member = {"group": group, "group_index": i, "group_size": len(jobs)}
                    added.append(self._add(kind, task, {**info, **member}))
            except ArtstyleError:
                for job in added:  # (nothing queued half)
                    self._drop(job["id"])
                raise
            self._dispatch()
            return {"id": group, "jobs": [self.view(j["id"]) for j in added]}

    def group(self, group: str) -> list[str]:
        with self.lock:
            ids = [i for i, r in self.jobs.items() if r.get("group") == group]
        if not ids:
            raise NotFound(f"no group {group[:40]!r}")
        return sorted(ids, key=lambda i: self.jobs[i].get("group_index", 0))

    def cancel_group(self, group: str) -> dict[str, Any]:
        """Cancel every queued or running job of a group (finished ones stay)."""
        with self.lock:
            ids = self.group(group)
            for job_id in ids:
                if self.jobs[job_id]["status"] not in FINISHED:
                    self.cancel_or_delete(job_id)
            return {"id": group, "jobs": [self.view(i) for i in ids]}

    def _room(self, n: int) -> None:
        if self.executor.why:
            raise Unavailable(self.executor.why)
        if not self.accepting:
            raise QueueFull("the server is stopping")
        if len(self.queue) + n > self.queue_limit:
            waiting = f"{len(self.queue)} waiting" if self.queue else "none waiting"
            raise QueueFull(
                f"the queue is full: it holds {self.queue_limit} jobs ({waiting}) and {n} more do not "
                "fit; wait or cancel some"
            )

    def _drop(self, job_id: str) -> None:
        with contextlib.suppress(ValueError):
            self.queue.remove(job_id)
        self.jobs.pop(job_id, None)
        with contextlib.suppress(ArtstyleError):
            self.store.delete_job(job_id)

    def _add(self, kind: str, task: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job_id, folder = self.store.create_job_dir()
            rec = {
                "id": job_id,
                "kind": kind,
                "status": Status.QUEUED,
                "created": time.time(),
                "task": task,
                "has_image": False,
                "version": 0,
                **info,
            }
            try:  # (a job that cannot be kept is not taken: the disk's reason is the answer)
                self.store.save_job(rec)
            except ArtstyleError:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self.jobs[job_id] = rec
            self.queue.append(job_id)
            return self.view(job_id)

    def view(self, job_id: str) -> dict[str, Any]:
        """A job as the API shows it (without the worker's task, with its queue position)."""
        with self.lock:
            rec = self.jobs.get(job_id)
            if rec is None:
                raise NotFound(f"no job {job_id[:40]!r}")
            out = {k: v for k, v in rec.items() if k != "task"}
            out["position"] = self.queue.index(job_id) + 1 if job_id in self.queue else 0
            return out

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            ids = sorted(self.jobs, key=lambda i: self.jobs[i].get("created", 0), reverse=True)
            return [self.view(i) for i in ids]

    def cancel_or_delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; delete a finished one (its folder and all)."""
        with self.lock:
            rec = self.jobs.get(job_id)
            if rec is None:
                raise NotFound(f"no job {job_id[:40]!r}")
            if rec["status"] in FINISHED:
                self.store.delete_job(job_id)
                del self.jobs[job_id]
                return {"id": job_id, "deleted": True}
            if job_id in self.queue:
                self.queue.remove(job_id)
                rec.update(
                    status=Status.CANCELLED, message="cancelled before it started", finished=time.time()
                )
                self._save(rec, force=True)
            elif job_id in self.running:
                self.executor.cancel(job_id, rec["seq"])
                rec["cancelling"] = True
                self._touch(rec)
            return self.view(job_id)
