"""The studio's worker: one process that runs the queued jobs one at a time, off the web process.

It is fed by :class:`artstyle.apps.web.manager.Manager` through a queue of task dicts and answers with
the typed events of :mod:`artstyle.apps.web.events`: :class:`Started`, :class:`Progress` (every
iteration: iteration, level, losses, ETA), :class:`Preview` (every few iterations, after
``preview.png`` is written), :class:`Saved` (at every level, pass and tile, after its resumable
state ``state.pt`` is: a retry takes it up), and one :class:`Finished` (``done``, ``cancelled``,
``interrupted`` or ``failed``). The weights and the network are loaded once
for the life of the process (:data:`artstyle.engine.runtime.WEIGHTS`), and the last :class:`Stylizer` is
kept, so a job with the same paintings and settings does not even recompute their targets.

Cancel: the manager writes the task's sequence number into ``cancel[0]`` of a shared array (and 1
into ``cancel[1]`` when the server is stopping; :class:`~artstyle.apps.web.events.SharedFlags`); the
run reads it after every iteration, so it stops within one and keeps its image (the sidecar says
``interrupted``). A task on Ray reads the same flag from an actor. Ctrl-C in the
terminal reaches the whole process group: the worker ignores it and lets the manager stop it the
same way.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import json
import os
import queue
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from artstyle.apps.web.events import (
    CancelFlag,
    Finished,
    Preview,
    Progress,
    Saved,
    SharedFlags,
    Started,
    Status,
    stopped,
)
from artstyle.apps.web.settings import label
from artstyle.config import from_dict
from artstyle.engine.masks import as_masks
from artstyle.engine.plan import Plan
from artstyle.engine.pyramid import used_sides
from artstyle.engine.stylizer import RunState, Step, Stylizer, finish_image
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes
from artstyle.images.decode import load_image
from artstyle.images.encode import encode_image
from artstyle.runs.jobs import JobOptions, RunFailed, run_job
from artstyle.runs.record import Source
from artstyle.runs.state import state_bytes, state_from_bytes

#: A job's resumable state, in its folder (see :class:`~artstyle.apps.web.events.Saved`).
STATE_FILE = "state.pt"

#: A preview is written at most this often (seconds) and at least every PREVIEW_EVERY iterations.
PREVIEW_SECONDS = 1.0
PREVIEW_EVERY = 5


def main(tasks: Any, events: Any, cancel: Any, init: str | None = None) -> None:
    """The worker process: run tasks until a ``None`` arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if init:  # "module:function", called once (tests use it to install tiny weights)
        module, _, func = init.partition(":")
        getattr(importlib.import_module(module), func)()
    cache: dict[str, Stylizer] = {}
    parent = os.getppid()
    while True:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the server was killed: do not linger as an orphan
                return
            continue
        if task is None:
            return
        events.put(run_task(task, events, SharedFlags(cancel, task["seq"]), cache))


def run_task(task: dict[str, Any], events: Any, flags: CancelFlag, cache: dict[str, Stylizer]) -> Finished:
    """One job, from :class:`Started` to its :class:`Finished`: the worker process's and a Ray
    task's (:mod:`artstyle.apps.web.executors`) one way to run it. Never raises for the job's own
    problems: a bad input is ``failed`` with its message, and so is a bug (with its name)."""
    if flags.cancelled():  # (cancelled while it waited for a worker)
        status = stopped(flags)
        return Finished(task["id"], status, {"message": "cancelled before it started", "has_image": False})
    events.put(Started(task["id"]))
    try:
        if task["kind"] == "experiment":
            status, data = _experiment(task, events, flags)
        elif task["kind"] == "video":
            status, data = _video(task, events, flags)
        else:
            status, data = _stylize(task, events, flags, cache)
    except ArtstyleError as e:  # (in the page's words: a setting is its field's label)
        status, data = Status.FAILED, {"message": e.worded(label)}
    except Exception as e:  # a bug must not take the worker down: report it on the job
        traceback.print_exc()
        status, data = Status.FAILED, {"message": f"internal error: {type(e).__name__}: {e}"}
    return Finished(task["id"], status, data)


def _eta(step: Step, plan: Plan) -> tuple[float, float]:
    """(fraction of the plan's work done, seconds left): the progress bar's notion of work."""
    frac = plan.fraction_done(step.scale, step.iteration)
    left = step.seconds / frac - step.seconds if frac > 0 else float("nan")
    return frac, left


def _stylize(
    task: dict[str, Any], events: Any, flags: CancelFlag, cache: dict[str, Stylizer]
) -> tuple[Status, dict[str, Any]]:
    job_id, folder = task["id"], Path(task["dir"])
    cfg = from_dict(task["config"])
    photo, painting = used_sides(cfg)
    content = load_image(task["content"], photo)
    styles = [load_image(p, painting) for p in task["styles"]]
    key = json.dumps([task["style_ids"], cfg.to_dict()], sort_keys=True)
    stylizer = cache.get(key)
    if stylizer is None:
        cache.clear()
        stylizer = cache[key] = Stylizer(styles, cfg)
    masks = as_masks(task["masks"], len(styles)) if task.get("masks") else None
    # planned once, by the job's route (the picture is resized to its levels); a task queued by an
    # older studio has none
    plan = Plan.from_dict(task["plan"]) if "plan" in task else stylizer.plan(content, masks is not None)
    parent = os.getppid()
    last_preview = [0.0, 0]  # time, count

    def on_step(step: Step) -> None:
        frac, left = _eta(step, plan)
        events.put(
            Progress(
                job_id,
                {
                    "iteration": step.iteration,
                    "total": step.total,
                    "scale": step.scale,
                    "scales": step.scales,
                    "size": list(step.size),
                    "losses": {k: float(v) for k, v in step.losses.items()},
                    "elapsed_s": step.seconds,
                    "fraction": frac,
                    "eta_s": left,
                },
            )
        )
        now = time.monotonic()
        due = now - last_preview[0] >= PREVIEW_SECONDS or step.iteration % PREVIEW_EVERY == 0
        if due or step.iteration == step.total:
            image = finish_image(step.output, content, cfg)
            atomic_write_bytes(folder / "preview.png", encode_image(image, "x.png"), overwrite=True)
            last_preview[0], last_preview[1] = now, last_preview[1] + 1
            events.put(Preview(job_id, last_preview[1], step.iteration))

    resume = None
    if task.get("resume"):  # (a retry after its worker was lost: its kept state, where it fits)
        try:
            resume = state_from_bytes(Path(task["resume"]).read_bytes())
        except (OSError, ArtstyleError):
            resume = None

    def on_state(state: RunState) -> None:
        atomic_write_bytes(folder / STATE_FILE, state_bytes(state), overwrite=True)
        events.put(Saved(job_id, state.iteration))

    metas = [task["content_meta"], *task["styles_meta"]]
    sources = [
        Source(im, m["name"], m.get("sha256", "")) for im, m in zip([content, *styles], metas, strict=True)
    ]
    opts = JobOptions(
        overwrite=True,  # (the job's own folder)
        progress=False,
        extra={"studio_job": task["id"], "style_masks": task.get("mask_ids", [])},
        masks=masks,
        stylizer=stylizer,
        plan=plan,
        on_step=on_step,
        cancelled=lambda: flags.cancelled() or os.getppid() != parent,
        ctrl_c=False,  # (the manager stops the worker: see the module)
        command=["artstyle serve"],
        resume=resume,
        on_state=on_state,
    )
    try:
        result = run_job(sources[0], sources[1:], folder / "result.png", cfg, opts)
    except KeyboardInterrupt:  # cancelled before the first iteration: nothing to keep
        status = stopped(flags)
        return status, {"message": "cancelled before the first iteration", "has_image": False}
    except RunFailed as e:
        return Status.FAILED, {"message": e.reason, "has_image": e.image is not None}
    final = result.history[-1] if result.history else {}
    data = {
        "has_image": True,
        "seconds": result.timings.get("total_s", 0.0),
        "losses": {k: v for k, v in final.items() if k in ("total", "content", "style", "tv")},
        "iterations": len(result.history),
    }
    if result.interrupted:
        if flags.stopping():
            return Status.INTERRUPTED, {**data, "message": "stopped when the server stopped"}
        return Status.CANCELLED, {**data, "message": "cancelled"}
    return Status.DONE, data


def _video(task: dict[str, Any], events: Any, flags: CancelFlag) -> tuple[Status, dict[str, Any]]:
    """A clip painted into ``result.mp4`` (and its sidecar), frame after frame, each frame shown as
    the preview as it is written. A cancel keeps the frames so far (``result.mp4.frames/``); the
    latest one stays the job's image."""
    from artstyle.config import VideoOptions
    from artstyle.runs.video.run import stylize_video

    job_id, folder = task["id"], Path(task["dir"])
    cfg = from_dict(task["config"])
    opts = VideoOptions(**task["video"])
    parent = os.getppid()
    t0 = time.monotonic()
    shown = [0]

    def on_frame(done: int, count: int, frame: Path) -> None:
        events.put(_counted(job_id, "frames", done, count, t0))
        atomic_write_bytes(folder / "preview.png", frame.read_bytes(), overwrite=True)
        shown[0] += 1
        events.put(Preview(job_id, shown[0], done))

    try:
        side = stylize_video(
            task["clip"],
            task["styles"],
            folder / "result.mp4",
            cfg,
            opts,
            overwrite=True,  # (the job's own folder)
            progress=False,
            extra={"studio_job": job_id, "clip": task["clip_meta"].get("name")},
            on_frame=on_frame,
            cancelled=lambda: flags.cancelled() or os.getppid() != parent,
            ctrl_c=False,
        )
    except KeyboardInterrupt:
        _keep_preview(folder)
        status = stopped(flags)
        return status, {
            "message": "stopped when the server stopped" if flags.stopping() else "cancelled",
            "has_image": (folder / "result.png").exists(),
            "frames_done": shown[0],
        }
    _keep_preview(folder)  # (the last frame: the gallery's picture of the clip)
    record = json.loads(side.read_text())
    return Status.DONE, {
        "has_image": True,
        "has_video": True,  # (its mp4; "video" is the job's options)
        "seconds": record.get("seconds", 0.0),
        "frames_done": record.get("frame_count", 0),
    }


def _counted(job_id: str, what: str, done: int, total: int, t0: float) -> Progress:
    """Progress of a job that counts things (a clip's frames, an experiment's runs): how many of
    how many, the share, the time spent and the time left at that pace."""
    spent = time.monotonic() - t0
    frac = done / total if total else 1.0
    left = spent / frac - spent if frac else float("nan")
    data = {f"{what}_done": done, what: total, "fraction": frac, "elapsed_s": spent, "eta_s": left}
    return Progress(job_id, data)


def _keep_preview(folder: Path) -> None:
    with contextlib.suppress(OSError):
        atomic_write_bytes(folder / "result.png", (folder / "preview.png").read_bytes(), overwrite=True)


def _experiment(task: dict[str, Any], events: Any, flags: CancelFlag) -> tuple[Status, dict[str, Any]]:
    """Run a shipped experiment on the chosen images into ``run/``; its report.html is the result."""
    from artstyle.apps.study.experiment import load_experiment, plan
    from artstyle.apps.study.runner import run_experiment

    job_id, out = task["id"], Path(task["dir"]) / "run"
    exp = load_experiment(
        task["experiment"], content=task["contents"], style=task["styles"], quick=task.get("quick", False)
    )
    total = len(plan(exp, out))
    stop = threading.Event()
    t0 = time.monotonic()

    def watch() -> None:  # progress from the finished runs' sidecars; cancel as one Ctrl-C
        sent = False
        while not stop.wait(0.25):
            if flags.cancelled() and not sent:
                _thread.interrupt_main()  # (once: a second would cut the report short)
                sent = True
            done = len(list((out / "images").glob("*.json"))) if (out / "images").is_dir() else 0
            events.put(_counted(job_id, "runs", done, total, t0))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the runner's Ctrl-C path stops it
    try:
        outcomes = run_experiment(exp, out, progress=False)
    except KeyboardInterrupt:
        outcomes = None
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(0)  # a last simulated Ctrl-C lands here, not in the next job
    report = (out / "report.html").is_file()
    if outcomes is None:
        status = stopped(flags)
        return status, {"message": "cancelled", "report": report, "has_image": False}
    failed = [f"{o.spec.pair} {o.spec.variant.name}: {o.message}" for o in outcomes if o.status == "failed"]
    data = {"report": report, "runs": len(outcomes), "failed": failed, "has_image": False}
    if failed:
        data["message"] = f"{len(failed)} of {len(outcomes)} runs failed; first: {failed[0]}"
    return Status.DONE, data
