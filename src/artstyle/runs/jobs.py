"""What a run executes, from files to files: load the inputs, check the output before any work,
show progress, write checkpoints, keep the image on Ctrl-C or a NaN, and write the sidecar
(:func:`run_job`, for the CLI and the local runner); and the same from bytes to bytes for a worker
that does not share the driver's disk (:func:`execute_run`, for the Ray runner).

The algorithm lives in :mod:`artstyle.engine.stylizer` and knows nothing of files; the record in
:mod:`artstyle.runs.record`; the console in :mod:`artstyle.runs.console`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from artstyle.config import StyleConfig, from_dict
from artstyle.engine.stylizer import Step, StyleResult, Stylizer, TilePainter, finish_image
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.files import OutputExistsError, check_regular_file
from artstyle.images.encode import Encoding, encode_image, save_image
from artstyle.runs.console import Interrupts, Progress
from artstyle.runs.record import (
    Source,
    check_output,
    checkpoint_path,
    finished_run,
    input_paths,
    json_safe,
    sidecar_data,
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


def run_job(
    content: Source,
    styles: Sequence[Source],
    out: str | Path,
    cfg: StyleConfig,
    opts: JobOptions | None = None,
) -> StyleResult:
    """Stylise and write ``out`` and its sidecar. Ctrl-C writes the output so far and returns it
    with ``interrupted=True``; a NaN writes the last good image and raises ArtstyleError. A run
    with tiled levels keeps its state beside the output (:mod:`artstyle.runs.state`) until it is done,
    and the same command continues it after a kill or Ctrl-C."""
    opts = opts or JobOptions()
    inputs = input_paths(content, styles)
    log = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731
    stylizer = opts.stylizer or Stylizer([s.image for s in styles], cfg, log=log)
    plan = stylizer.plan(content.image.size, opts.masks is not None)  # (the one preflight of the run)
    if opts.painter is not None:
        if plan.tiled:
            stylizer.painter = opts.painter
        else:
            log("artstyle: nothing is painted in tiles at this size and memory; all of it is painted here")
    store, resume = None, None
    if plan.tiled:
        described = [s.describe() for s in (content, *styles)]
        store = RunStore(Path(out), run_key(cfg.to_dict(), described, plan.describe()))
        resume = store.load()
    ours = store is not None and resume is not None and store.owns_output()
    overwrite = opts.overwrite or ours
    n = opts.checkpoint_every
    planned = [checkpoint_path(Path(out), i) for i in range(n, plan.total_iterations, n)] if n else []
    if resume is not None:  # (checkpoints already written by the stopped run are its own)
        planned = [p for p in planned if int(p.stem.rsplit("iter", 1)[1]) > resume.iteration]
    out_path = check_output(out, overwrite, inputs, planned)
    opts.encoding.check(out_path)
    if resume is not None:
        log(
            f"artstyle: continuing the stopped run kept in {store.dir if store else ''} "
            f"(from step {resume.iteration})"
        )
    progress = Progress(
        plan, enabled=opts.progress, label=opts.label, start=resume.iteration if resume else 0
    )
    interrupts = Interrupts()
    extra = {**opts.extra, "plan": plan.describe()} if plan.tiled else opts.extra

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
        interrupts.check()

    def write(image: Image.Image, result: StyleResult | None, error: str = "", history: Any = None) -> Path:
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
        )

    try:
        with interrupts.installed():
            result = stylizer.stylize(
                content.image,
                callback=on_step,
                masks=opts.masks,
                plan=plan,
                resume=resume,
                on_state=store.save if store is not None else None,
            )
            if store is not None:
                result.history = store.history  # (the stopped runs' steps, then this one's)
            where = write(result.image, result)
    except NonFiniteLossError as e:
        progress.close()
        if isinstance(e.last_good, Image.Image):
            with interrupts.installed():
                interrupts.has_image = True
                where = write(e.last_good, None, str(e), getattr(e, "history", None))
            raise ArtstyleError(f"{e}; the last good image is in {where}") from None
        raise ArtstyleError(f"{e}; no image was written") from None
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
    """One run from bytes to bytes, for a worker that does not share the driver's disk.

    The inputs come as ``(name, sha256, file bytes)`` and are decoded exactly as files are; the
    result is ``{"status": "done" | "interrupted", "image": PNG bytes, "sidecar": dict}`` or
    ``{"status": "failed", "message": ...}`` for an error of the run's own (bad input or settings,
    a NaN): those are reported, not retried.
    """
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = from_dict(config)
        sources = [Source.from_bytes(data, name, sha) for name, sha, data in [content, *styles]]
        result = Stylizer([s.image for s in sources[1:]], cfg).stylize(sources[0].image)
    except ArtstyleError as e:
        return {"status": "failed", "message": str(e)}
    side = sidecar_data(output_name, result, cfg, sources[0], sources[1:], extra)
    return {
        "status": "interrupted" if result.interrupted else "done",
        "image": encode_image(result.image, output_name),
        "sidecar": json_safe(side),
    }


@dataclass
class BatchOutcome:
    """What became of one photo of a batch: ``done``, ``skipped`` (its picture is up to date),
    ``failed`` (with the reason; the others go on) or ``interrupted`` (Ctrl-C: the batch stops)."""

    photo: Path
    output: Path
    status: str
    message: str = ""


def batch_outputs(photos: Sequence[Path], outdir: Path, suffix: str = ".png") -> list[Path]:
    """Each photo's output in ``outdir``: its name with ``suffix`` (``a.jpg`` -> ``a.png``; a
    second ``a`` from another folder or format becomes ``a-2.png``)."""
    seen: dict[str, int] = {}
    out = []
    for p in photos:
        stem = p.stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(outdir / (f"{stem}{suffix}" if seen[stem] == 1 else f"{stem}-{seen[stem]}{suffix}"))
    return out


def run_batch(
    photos: Sequence[Path],
    styles: Sequence[Source],
    outdir: Path,
    cfg: StyleConfig,
    opts: JobOptions,
    need: int | None = None,
    report: Any = None,
) -> list[BatchOutcome]:
    """Paint every photo with the same paintings and settings into ``outdir``, one after another
    through one Stylizer: a photo whose picture there is up to date (same settings and inputs) is
    skipped, a bad one is reported and the rest go on, Ctrl-C keeps the picture so far and stops.
    ``report`` is called with each outcome."""
    outputs = batch_outputs(photos, outdir)
    style_shas = [s.sha256 for s in styles]
    stylizer = Stylizer([s.image for s in styles], cfg)
    outcomes: list[BatchOutcome] = []
    for i, (photo, out) in enumerate(zip(photos, outputs, strict=True), start=1):
        outcome = BatchOutcome(photo, out, "done")
        try:
            data = check_regular_file(photo, "image").read_bytes()  # (read once: hashed, then decoded)
            sha = hashlib.sha256(data).hexdigest()
            if not opts.overwrite and finished_run(out, cfg.to_dict(), [sha, *style_shas]):
                outcome.status, outcome.message = "skipped", "up to date"
            else:
                label = f"{i}/{len(photos)} {photo.name[:30]} "
                job = dataclasses.replace(opts, label=label, stylizer=stylizer)
                source = Source.from_bytes(data, str(photo), sha, photo, need)
                if run_job(source, styles, out, cfg, job).interrupted:
                    outcome.status = "interrupted"
        except (ArtstyleError, OSError) as e:
            outcome.status, outcome.message = "failed", str(e)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
        if outcome.status == "interrupted":
            break
    return outcomes
