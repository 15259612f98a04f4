"""What a run executes, from files to files, for every entry: the CLI, a batch, the studio's worker
and a Ray task (:func:`run_job`). It loads nothing twice, checks the output before any work, shows
progress, writes checkpoints, keeps the image on Ctrl-C, a cancel or a NaN, keeps a tiled run's
state, and writes the picture and its sidecar. :func:`execute_run` is the same from bytes to bytes,
for a worker that does not share the driver's disk.

The algorithm lives in :mod:`artstyle.engine.stylizer` and knows nothing of files; the record
(:mod:`artstyle.runs.record`) is handed the finished pixels; the console in
:mod:`artstyle.runs.console`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from artstyle.config import StyleConfig, from_dict
from artstyle.engine.masks import kept_alpha
from artstyle.engine.painter import TilePainter
from artstyle.engine.plan import GB, Plan
from artstyle.engine.pyramid import native_layers, painting_px
from artstyle.engine.stylizer import (
    RunState,
    Step,
    StyleResult,
    Stylizer,
    finish_image,
    finish_pixels,
    state_problem,
)
from artstyle.errors import ArtstyleError, NonFiniteLossError, flag, setting
from artstyle.files import OutputExistsError, check_regular_file
from artstyle.images.encode import Encoding, keeps_alpha, save_image
from artstyle.runs.console import Interrupts, Progress
from artstyle.runs.record import (
    Source,
    check_output,
    checkpoint_path,
    finished_run,
    input_paths,
    sidecar_path,
    write_result,
)
from artstyle.runs.state import RunStore, run_key


@dataclass
class JobOptions:
    overwrite: bool = False
    checkpoint_every: int = 0
    progress: bool = True
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the sidecar as is
    masks: list[Image.Image] | None = None  # one per painting (artstyle.engine.masks), recorded in extra
    painter: TilePainter | None = None  # paints tiled levels elsewhere (artstyle.runs.cluster.RayPainter)
    encoding: Encoding = field(default_factory=Encoding)  # JPEG/WebP quality, 8 or 16 bits
    stylizer: Stylizer | None = None  # one made before (a batch: the network and targets once)
    plan: Plan | None = None  # the run's plan, made before (the studio plans when it takes the job)
    on_step: Callable[[Step], None] | None = None  # sees every step (the studio's events and previews)
    cancelled: Callable[[], bool] | None = None  # read after every step: True stops the run, keeping it
    ctrl_c: bool = True  # this run takes Ctrl-C (a worker process leaves it to its manager)
    command: list[str] | None = None  # recorded in the sidecar (default: this process's argv)
    restart: bool = False  # a tiled run's kept state is removed, and the run starts over
    resume: RunState | None = None  # a state kept elsewhere (a studio job's), taken up where it fits
    on_state: Callable[[RunState], None] | None = None  # handed every resumable state (see RunState)


class RunFailed(ArtstyleError):
    """A run whose loss stopped being finite: ``reason`` says why, ``image`` is where its last good
    picture went (None: no iteration had a finite loss)."""

    def __init__(self, reason: str, image: Path | None) -> None:
        where = f"the last good image is in {image}" if image else "no image was written"
        super().__init__(f"{reason}; {where}")
        self.reason, self.image = reason, image


#: A painting that gives each pixel of the picture fewer of its own pixels than this (along a
#: side) is named, with the size of scan that would give the picture its own strokes at 1:1.
SCAN_HINT = 0.5


def small_painting_line(style: Source, plan: Plan, cfg: StyleConfig) -> str | None:
    """One line when ``style`` is much smaller than the picture of ``plan`` asks for, else None."""
    full = plan.full
    px = painting_px(style.image.size, full, cfg)
    if px >= SCAN_HINT:
        return None
    w, h = style.image.size
    own = " (its texture and edges are matched at its own pixels)" if native_layers(cfg) else ""
    return (
        f"artstyle: the painting {style.name} ({w}x{h}) gives each pixel of this {full[0]}x{full[1]} "
        f"picture {px:.2g} of its own pixels: it is enlarged {1 / px:.1f}x{own}; a scan of it at least "
        f"{math.ceil(max(full) * cfg.style_scale)} px long would give the picture the painting's own "
        "strokes at 1:1"
    )


def run_job(
    content: Source,
    styles: Sequence[Source],
    out: str | Path,
    cfg: StyleConfig,
    opts: JobOptions | None = None,
) -> StyleResult:
    """Stylise and write ``out`` and its sidecar. Ctrl-C (or ``opts.cancelled``) writes the output
    so far and returns it with ``interrupted=True``; a NaN writes the last good image and raises
    :class:`RunFailed`. A run with tiled levels keeps its state beside the output
    (:mod:`artstyle.runs.state`) until it is done, and the same command continues it after a kill
    or Ctrl-C."""
    opts = opts or JobOptions()
    inputs = input_paths(content, styles)
    log = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731
    stylizer = opts.stylizer or Stylizer([s.image for s in styles], cfg, log=log)
    # (the one preflight of the run, unless it was planned when the job was taken)
    alpha = kept_alpha(content.image, cfg, content.name)  # (the photo's transparency, kept)
    plan = opts.plan or stylizer.plan(content.image.size, opts.masks is not None or alpha is not None)
    if opts.painter is not None:
        if plan.tiled:
            stylizer.painter = opts.painter
        else:
            log("artstyle: nothing is painted in tiles at this size and memory; all of it is painted here")
    store, resume = None, None
    with contextlib.ExitStack() as held:  # (a tiled run's state stays locked until the run ends, however)
        if plan.tiled:
            described = [s.describe() for s in (content, *styles)]
            check_output(out, True, inputs)  # (the output may be taken: no state folder beside an input)
            store = RunStore(Path(out), run_key(cfg.to_dict(), described, plan.describe()))
            store.lock(opts.restart)
            held.callback(store.release)
            resume = store.load()
            problem = state_problem(resume, plan) if resume is not None else None
            if problem:
                raise ArtstyleError(
                    f"the state beside {out} does not match this run ({problem}); remove {store.dir} "
                    f"or pass {setting('restart')} to start over"
                )
        if resume is None and opts.resume is not None:
            problem = state_problem(opts.resume, plan)
            if problem:
                log(f"artstyle: the kept state does not fit this run ({problem}); starting over")
            else:
                resume = opts.resume
        ours = store is not None and resume is not None and store.owns_output()
        overwrite = opts.overwrite or ours
        n = opts.checkpoint_every
        planned = [checkpoint_path(Path(out), i) for i in range(n, plan.total_iterations, n)] if n else []
        if resume is not None:  # (checkpoints already written by the stopped run are its own)
            planned = [p for p in planned if int(p.stem.rsplit("iter", 1)[1]) > resume.iteration]
        out_path = check_output(out, overwrite, inputs, planned)
        opts.encoding.check(out_path)
        if alpha is not None and not keeps_alpha(out_path):
            log(
                f"artstyle: {out_path.name}: {out_path.suffix[1:].upper()} has no transparency; the picture "
                f"is put on white (write .png, .webp or .tif to keep it, or pass {flag('alpha')} white)"
            )
        if resume is not None:
            log(
                f"artstyle: continuing the stopped run kept in {store.dir if store else 'its state'} "
                f"(from step {resume.iteration})"
            )
        for style in styles:  # (one line for a painting much smaller than the picture asks for)
            line = small_painting_line(style, plan, cfg)
            if line:
                log(line)
        progress = Progress(
            plan, enabled=opts.progress, label=opts.label, start=resume.iteration if resume else 0
        )
        interrupts = Interrupts(opts.cancelled)
        extra = {**opts.extra, "plan": plan.describe()} if plan.tiled else dict(opts.extra)
        if plan.budget is not None:
            extra["memory_budget_gb"] = round(plan.budget / GB, 2)
        extra["painting_px"] = round(plan.levels[-1].painting_px, 3)
        if alpha is not None:
            extra["alpha"] = "kept" if keeps_alpha(out_path) else "put on white (the format has none)"

        def on_step(step: Step) -> None:
            progress(step)
            if store is not None:
                store.history.append(step.record())
            if n and step.iteration and step.iteration % n == 0 and step.iteration < step.total:
                ck = checkpoint_path(out_path, step.iteration)
                image = finish_image(step.output, content.image, cfg)
                try:
                    save_image(image, ck, overwrite=overwrite, protect=inputs)
                except OutputExistsError:
                    tqdm.write(f"artstyle: {ck} appeared meanwhile; kept it, skipped it", file=sys.stderr)
            if opts.on_step is not None:
                opts.on_step(step)
            interrupts.check()

        def keep_state(state: RunState) -> None:
            if store is not None:
                store.save(state)
            if opts.on_state is not None:
                opts.on_state(state)

        def write(
            image: Image.Image,
            output: torch.Tensor | None,
            result: StyleResult | None,
            error: str = "",
            history: Any = None,
        ) -> Path:
            deep = opts.encoding.bits == 16
            pixels = finish_pixels(output, content.image, cfg) if deep and output is not None else None
            return write_result(
                out_path,
                image,
                result,
                cfg,
                content,
                styles,
                overwrite=overwrite,
                extra=extra,
                error=error,
                history=history,
                encoding=opts.encoding,
                pixels=pixels,
                command=opts.command,
            )

        try:
            with interrupts.installed(opts.ctrl_c):
                result = stylizer.stylize(
                    content.image,
                    callback=on_step,
                    masks=opts.masks,
                    plan=plan,
                    resume=resume,
                    on_state=keep_state if store is not None or opts.on_state is not None else None,
                )
                if store is not None:
                    result.history = store.history  # (the stopped runs' steps, then this one's)
                where = write(result.image, result.output, result)
        except NonFiniteLossError as e:
            progress.close()
            if isinstance(e.last_good, Image.Image):
                with interrupts.installed(opts.ctrl_c):
                    interrupts.has_image = True
                    where = write(e.last_good, None, None, str(e), getattr(e, "history", None))
                raise RunFailed(str(e), where) from None
            raise RunFailed(str(e), None) from None
        finally:
            progress.close()
        if store is not None:
            if result.interrupted and where == out_path:
                store.mark_interim()
            elif not result.interrupted:
                store.clear()
        if where != out_path:
            raise ArtstyleError(
                f"{out_path} appeared while the run worked and was kept; the result is in {where}"
            )
        return result


def execute_run(
    config: dict[str, Any],
    content: tuple[str, str, bytes],
    styles: Sequence[tuple[str, str, bytes]],
    output_name: str,
    extra: dict[str, Any] | None = None,
    threads: int = 0,
) -> dict[str, Any]:
    """One run from bytes to bytes, for a worker that does not share the driver's disk: the inputs
    come as ``(name, sha256, file bytes)`` and are decoded exactly as files are; the run is
    :func:`run_job`'s, into a folder of its own; the result is ``{"status": "done" | "interrupted",
    "image": the file's bytes, "sidecar": dict}`` or ``{"status": "failed", "message": ...}`` for an
    error of the run's own (bad input or settings, a NaN): those are reported, not retried.
    """
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="artstyle-run-") as tmp:
        out = Path(tmp) / output_name
        try:
            cfg = from_dict(config)
            sources = [Source.from_bytes(data, name, sha) for name, sha, data in [content, *styles]]
            opts = JobOptions(progress=False, extra=dict(extra or {}), ctrl_c=False)
            result = run_job(sources[0], sources[1:], out, cfg, opts)
        except RunFailed as e:
            return {"status": "failed", "message": e.reason}
        except ArtstyleError as e:
            return {"status": "failed", "message": str(e)}
        return {
            "status": "interrupted" if result.interrupted else "done",
            "image": out.read_bytes(),
            "sidecar": json.loads(sidecar_path(out).read_text()),
        }


@dataclass
class BatchOutcome:
    """What became of one photo of a batch: ``done``, ``skipped`` (its picture is up to date),
    ``failed`` (with the reason; the others go on) or ``interrupted`` (Ctrl-C: the batch stops)."""

    photo: Path
    output: Path
    status: str
    message: str = ""
    error: Exception | None = None  # (a failure, for the interface to word: settings by its names)


def batch_outputs(photos: Sequence[Path], outdir: Path, suffix: str = ".png") -> list[Path]:
    """Each photo's output in ``outdir``: its whole file name with ``suffix`` (``a.jpg`` ->
    ``a.jpg.png``, ``a.png`` -> ``a.png.png``): never two photos' pictures under one name, and a
    picture keeps its name when photos are added. Two photos of the same name (from two folders)
    are refused in one line."""
    seen: dict[str, Path] = {}
    for p in photos:
        if p.name in seen and seen[p.name].resolve() != p.resolve():
            raise ArtstyleError(
                f"{seen[p.name]} and {p} would both be painted into {p.name}{suffix}; rename one, or "
                "paint the folders into different -o folders"
            )
        seen[p.name] = p
    return [outdir / f"{p.name}{suffix}" for p in photos]


def _changed(out: Path, photo: Path, config: dict[str, Any], shas: list[str]) -> str | None:
    """Why this batch's own earlier picture of ``photo`` at ``out`` (its sidecar names a photo of
    that name) is out of date, or None when ``out`` is not such a picture (someone else's file,
    or none)."""
    try:
        data = json.loads(sidecar_path(out).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    content = data.get("content") if isinstance(data, dict) else None
    if not (out.is_file() and isinstance(content, dict)) or Path(str(content.get("path"))).name != photo.name:
        return None
    if content.get("sha256") != shas[0]:
        return "the photo changed"
    if data.get("config") != config:
        return "the settings changed"
    if data.get("interrupted") or data.get("error"):
        return "it was not finished"
    return "the paintings changed"


def run_batch(
    photos: Sequence[Path],
    styles: Sequence[Source],
    outdir: Path,
    cfg: StyleConfig,
    opts: JobOptions,
    need: int | None = None,
    report: Any = None,
) -> list[BatchOutcome]:
    """Paint every photo with the same paintings and settings into ``outdir`` (names:
    :func:`batch_outputs`), one after another through one Stylizer: a photo whose picture there is
    up to date (same settings and inputs, by their sha256) is skipped; one whose photo, paintings
    or settings changed since this batch painted it is painted again; a file of the same name that
    this batch did not make is replaced only with ``overwrite``. A bad photo is reported and the
    rest go on; Ctrl-C keeps the picture so far and stops. ``report`` is called with each outcome."""
    outputs = batch_outputs(photos, outdir)
    style_shas = [s.sha256 for s in styles]
    stylizer = Stylizer([s.image for s in styles], cfg)
    outcomes: list[BatchOutcome] = []
    for i, (photo, out) in enumerate(zip(photos, outputs, strict=True), start=1):
        outcome = BatchOutcome(photo, out, "done")
        try:
            data = check_regular_file(photo, "image").read_bytes()  # (read once: hashed, then decoded)
            sha = hashlib.sha256(data).hexdigest()
            if finished_run(out, cfg.to_dict(), [sha, *style_shas]):
                outcome.status, outcome.message = "skipped", "up to date"
            else:
                label = f"{i}/{len(photos)} {photo.name[:30]} "
                why = _changed(out, photo, cfg.to_dict(), [sha, *style_shas])
                # (its own earlier picture of this photo is re-made; anything else only with --overwrite)
                job = dataclasses.replace(
                    opts, label=label, stylizer=stylizer, overwrite=opts.overwrite or why is not None
                )
                outcome.message = f"painted again: {why}" if why else ""
                source = Source.from_bytes(data, str(photo), sha, photo, need)
                if run_job(source, styles, out, cfg, job).interrupted:
                    outcome.status = "interrupted"
        except (ArtstyleError, OSError) as e:
            outcome.status, outcome.message, outcome.error = "failed", str(e), e
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
        if outcome.status == "interrupted":
            break
    return outcomes
