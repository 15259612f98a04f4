"""The studio's worker: one process that runs the queued jobs one at a time, off the web process.

It is fed by :class:`artstyle.apps.web.manager.Manager` through a queue of task dicts and answers with
``(event, job_id, data)`` tuples: ``started``, ``progress`` (every iteration: iteration, level,
losses, ETA), ``preview`` (every few iterations, after ``preview.png`` is written), and one of
``done``, ``cancelled``, ``interrupted`` or ``failed``. The weights and the network are loaded once
for the life of the process (:data:`artstyle.engine.runtime.WEIGHTS`), and the last :class:`Stylizer` is
kept, so a job with the same paintings and settings does not even recompute their targets.

Cancel: the manager writes the task's sequence number into ``cancel[0]`` of a shared array (and 1
into ``cancel[1]`` when the server is stopping); the worker checks it after every iteration, so a
run stops within one and keeps its image (the sidecar says ``interrupted``). Ctrl-C in the
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

from artstyle.config import StyleConfig, from_dict
from artstyle.engine.masks import as_masks
from artstyle.engine.plan import Plan
from artstyle.engine.pyramid import used_sides
from artstyle.engine.runtime import resolve_device
from artstyle.engine.stylizer import Step, Stylizer, finish_image
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.files import atomic_write_bytes, atomic_write_files
from artstyle.images.decode import load_image
from artstyle.images.encode import encode_image
from artstyle.runs.record import Source, json_bytes, sidecar_data, sidecar_path
from artstyle.runs.timing import Timings, setup_key

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
        event, data = run_task(task, events, cancel, cache)
        events.put((event, task["id"], data))


def run_task(task: dict[str, Any], events: Any, cancel: Any, cache: dict[str, Stylizer]) -> tuple[str, dict]:
    """One job, from ``started`` to its final (event, data): the worker process's and a Ray
    task's (:mod:`artstyle.apps.web.executors`) one way to run it. Never raises for the job's own
    problems: a bad input is ``failed`` with its message, and so is a bug (with its name)."""
    events.put(("started", task["id"], {"time": time.time()}))
    try:
        if task["kind"] == "experiment":
            event, data = _experiment(task, events, cancel)
        else:
            event, data = _stylize(task, events, cancel, cache)
    except ArtstyleError as e:
        event, data = "failed", {"message": str(e)}
    except Exception as e:  # a bug must not take the worker down: report it on the job
        traceback.print_exc()
        event, data = "failed", {"message": f"internal error: {type(e).__name__}: {e}"}
    data["time"] = time.time()
    return event, data


def _eta(step: Step, plan: Plan) -> tuple[float, float]:
    """(fraction of the plan's work done, seconds left): the progress bar's notion of work."""
    frac = plan.fraction_done(step.scale, step.iteration)
    left = step.seconds / frac - step.seconds if frac > 0 else float("nan")
    return frac, left


def _stylize(task: dict[str, Any], events: Any, cancel: Any, cache: dict[str, Stylizer]) -> tuple[str, dict]:
    job_id, seq, folder = task["id"], task["seq"], Path(task["dir"])
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
    plan = Plan.from_dict(task["plan"]) if "plan" in task else stylizer.plan(content.size, masks is not None)
    parent = os.getppid()
    last_preview = [0.0, 0]  # time, count

    def on_step(step: Step) -> None:
        frac, left = _eta(step, plan)
        events.put(
            (
                "progress",
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
            events.put(("preview", job_id, {"n": last_preview[1], "iteration": step.iteration}))
        if cancel[0] == seq or os.getppid() != parent:
            raise KeyboardInterrupt  # Stylizer.stylize keeps the image so far

    def sources() -> tuple[Source, list[Source]]:
        metas = [task["content_meta"], *task["styles_meta"]]
        images = [content, *styles]
        made = [Source(im, m["name"], m.get("sha256", "")) for im, m in zip(images, metas, strict=True)]
        return made[0], made[1:]

    try:
        result = stylizer.stylize(content, callback=on_step, masks=masks, plan=plan)
    except KeyboardInterrupt:  # cancelled before the first iteration: nothing to keep
        return "cancelled", {"message": "cancelled before the first iteration", "has_image": False}
    except NonFiniteLossError as e:
        if e.last_good is not None:
            _write(folder, e.last_good, None, cfg, sources(), task, str(e), getattr(e, "history", []))
        return "failed", {"message": str(e), "has_image": e.last_good is not None}
    _write(folder, result.image, result, cfg, sources(), task)
    if not result.interrupted and task.get("timings"):  # (this machine's speed, for the estimates)
        timings = Timings(task["timings"])
        timings.record(
            setup_key(cfg, resolve_device(cfg.device).type), result.history, result.timings["total_s"]
        )
    final = result.history[-1] if result.history else {}
    data = {
        "has_image": True,
        "seconds": result.timings.get("total_s", 0.0),
        "losses": {k: v for k, v in final.items() if k in ("total", "content", "style", "tv")},
        "iterations": len(result.history),
    }
    if result.interrupted:
        if cancel[1]:
            return "interrupted", {**data, "message": "stopped when the server stopped"}
        return "cancelled", {**data, "message": "cancelled"}
    return "done", data


def _write(
    folder: Path,
    image: Any,
    result: Any,
    cfg: StyleConfig,
    srcs: tuple[Source, list[Source]],
    task: dict[str, Any],
    error: str = "",
    history: list[dict[str, Any]] | None = None,
) -> None:
    content, styles = srcs
    extra = {"studio_job": task["id"], "style_masks": task.get("mask_ids", [])}
    data = sidecar_data("result.png", result, cfg, content, styles, extra, error=error, history=history)
    data["command"] = ["artstyle serve"]
    out = folder / "result.png"
    files = {out: encode_image(image, out), sidecar_path(out): json_bytes(data)}
    atomic_write_files(files, overwrite=True)  # (both or neither)


def _experiment(task: dict[str, Any], events: Any, cancel: Any) -> tuple[str, dict]:
    """Run a shipped experiment on the chosen images into ``run/``; its report.html is the result."""
    from artstyle.apps.study.experiment import load_experiment, plan
    from artstyle.apps.study.runner import run_experiment

    job_id, seq, out = task["id"], task["seq"], Path(task["dir"]) / "run"
    exp = load_experiment(
        task["experiment"], content=task["contents"], style=task["styles"], quick=task.get("quick", False)
    )
    total = len(plan(exp, out))
    stop = threading.Event()
    t0 = time.monotonic()

    def watch() -> None:  # progress from the finished runs' sidecars; cancel as one Ctrl-C
        sent = False
        while not stop.wait(0.25):
            if cancel[0] == seq and not sent:
                _thread.interrupt_main()  # (once: a second would cut the report short)
                sent = True
            done = len(list((out / "images").glob("*.json"))) if (out / "images").is_dir() else 0
            spent = time.monotonic() - t0
            frac = done / total if total else 1.0
            events.put(
                (
                    "progress",
                    job_id,
                    {
                        "runs_done": done,
                        "runs": total,
                        "fraction": frac,
                        "elapsed_s": spent,
                        "eta_s": spent / frac - spent if frac else float("nan"),
                    },
                )
            )

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
        return "cancelled", {"message": "cancelled", "report": report, "has_image": False}
    failed = [f"{o.spec.pair} {o.spec.variant.name}: {o.message}" for o in outcomes if o.status == "failed"]
    data = {"report": report, "runs": len(outcomes), "failed": failed, "has_image": False}
    if failed:
        data["message"] = f"{len(failed)} of {len(outcomes)} runs failed; first: {failed[0]}"
    return "done", data
