"""Painting from the command line: ``stylize`` (one photo, a batch, masks, Ray tiles), ``demo`` and
``video``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

import click

from artstyle.apps.cli.main import main
from artstyle.apps.cli.options import (
    ListCommand,
    build_config,
    config_options,
    encoding_options,
    job_options,
    output_encoding,
    runner_options,
    video_options,
)
from artstyle.config import VideoOptions
from artstyle.errors import ArtstyleError, flag
from artstyle.runs.signals import exit_status


def _finish(out: Path, result: Any) -> None:
    if result.interrupted:
        from artstyle.runs.state import state_dir

        again = "; the same command continues the run" if state_dir(out).is_dir() else ""
        click.echo(f"interrupted: the image so far is in {out}{again}", err=True)
        sys.exit(exit_status())
    click.echo(
        f"wrote {out} and {out.name}.json ({len(result.history)} iterations, "
        f"{result.timings['total_s']:.1f} s)",
        err=True,
    )


@main.command(cls=ListCommand)
@click.argument("content", type=click.Path(dir_okay=True))
@click.argument("styles", nargs=-1, required=False, type=click.Path(dir_okay=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output image (.png, .jpg, ...); with several photos, a folder.",
)
@click.option(
    "--style",
    "style_opts",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="The paintings, after several photos: every argument is then a photo (or a folder of them).",
)
@click.option(
    "--style-masks",
    "style_masks",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="One grayscale mask per STYLE, white where that painting applies (several after one flag).",
)
@click.option(
    "--style-region-map", type=click.Path(dir_okay=False), help="A colour-coded map of the regions."
)
@click.option(
    "--region-colors",
    default="",
    help="With --style-region-map: one colour per STYLE (names or #rrggbb), comma-separated.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start a picture painted in tiles over: remove the state a stopped run kept beside it.",
)
@job_options
@encoding_options
@runner_options
@config_options
def stylize(
    content: str,
    styles: tuple[str, ...],
    output: str,
    style_opts: tuple[str, ...],
    style_masks: tuple[str, ...],
    style_region_map: str | None,
    region_colors: str,
    restart: bool,
    overwrite: bool,
    checkpoint_every: int,
    quiet: bool,
    quality: int,
    bit_depth: str,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
    **kwargs: Any,
) -> None:
    """Paint CONTENT in the style of one or more STYLE images (with --style-masks or
    --style-region-map: each painting in its own part of the picture).

    A picture too large for the memory (--max-memory) is painted in tiles; a stopped run of it
    continues with the same command. With --runner ray its tiles are spread over a Ray cluster.

    \b
    Several photos, each its own picture in the folder -o (re-running skips finished ones):
    artstyle stylize photos/ painting.jpg -o out/
    artstyle stylize a.jpg b.jpg c.jpg --style painting.jpg -o out/"""
    from artstyle.files import check_name, sha256_file
    from artstyle.runs.jobs import JobOptions, run_job
    from artstyle.runs.record import Source, check_output

    cfg = build_config(kwargs)
    photos = [content, *styles] if style_opts else [content]
    styles = style_opts or styles
    if not styles:
        raise click.UsageError("give at least one painting: STYLE, or --style after several photos")
    if len(photos) > 1 or Path(content).is_dir():
        if style_masks or style_region_map:
            raise ArtstyleError("--style-masks and --style-region-map paint one photo; give one")
        _stylize_batch(
            photos,
            styles,
            output,
            cfg,
            overwrite,
            quiet,
            output_encoding(output + "/x.png", quality, bit_depth),
        )
        return
    encoding = output_encoding(output, quality, bit_depth)
    masks, mask_files = _masks(style_masks, style_region_map, region_colors, len(styles))
    from artstyle.runs.state import state_dir

    check_name(Path(output))  # (before its .state folder is looked for)
    # (a stopped run's own picture may be replaced by its continuation: run_job checks that)
    stopped = state_dir(Path(output)).is_dir() and not restart
    out = check_output(output, overwrite or stopped, [content, *styles, *mask_files])
    from artstyle.engine.pyramid import used_sides

    problems, sources = [], []
    photo, painting = used_sides(cfg)
    for p, need in ((content, photo), *((s, painting) for s in styles)):
        try:
            sources.append(Source.from_path(p, need))
        except ArtstyleError as e:
            problems.append(str(e))
    if problems:
        raise ArtstyleError("; ".join(problems))
    opts = JobOptions(
        overwrite=overwrite,
        checkpoint_every=checkpoint_every,
        progress=not quiet,
        masks=masks,
        encoding=encoding,
        restart=restart,
    )
    if mask_files:
        opts.extra["style_masks"] = [{"path": p, "sha256": sha256_file(Path(p))} for p in mask_files]
        if style_region_map:
            opts.extra["region_colors"] = region_colors.split(",")
    if runner == "ray":
        from artstyle.runs.cluster import RayPainter, ray_session

        with ray_session(ray_address):
            opts.painter = RayPainter(cfg, cpus_per_actor=ray_cpus_per_run)
            opts.extra["runner"] = "ray"
            result = run_job(sources[0], sources[1:], out, cfg, opts)
    else:
        result = run_job(sources[0], sources[1:], out, cfg, opts)
    _finish(out, result)


def _stylize_batch(
    photos: list[str],
    paintings: tuple[str, ...],
    output: str,
    cfg: Any,
    overwrite: bool,
    quiet: bool,
    encoding: Any,
) -> None:
    """``stylize`` of several photos (files, or folders of them) into the folder ``output``."""
    from artstyle.engine.pyramid import used_sides
    from artstyle.images.decode import image_files
    from artstyle.images.encode import SAVE_FORMATS
    from artstyle.runs.jobs import JobOptions, run_batch
    from artstyle.runs.record import Source

    outdir = Path(output)
    if outdir.suffix.lower() in SAVE_FORMATS:
        raise ArtstyleError(
            f"{outdir}: with several photos, -o is a folder (each picture is named after its photo)"
        )
    files: list[Path] = []
    for p in map(Path, photos):
        if p.is_dir():
            found = image_files(p)
            if not found:
                raise ArtstyleError(f"{p}: a folder with no images ({', '.join(sorted(SAVE_FORMATS))})")
            files += found
        else:
            files.append(p)
    if outdir.exists() and not outdir.is_dir():
        raise ArtstyleError(f"{outdir}: is a file; -o is a folder with several photos")
    if outdir.resolve() in {f.resolve().parent for f in files}:
        # (the pictures would lie among the photos: a user's own a.png beside a.jpg, and the next
        # run's photos)
        raise ArtstyleError(
            f"{outdir}: holds photos of this batch; give -o another folder, so that no picture is "
            "written among the photos"
        )
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArtstyleError(f"{outdir}: cannot make the folder ({e.strerror or e})") from None
    photo_side, painting_side = used_sides(cfg)
    sources = [Source.from_path(p, painting_side) for p in paintings]
    opts = JobOptions(overwrite=overwrite, progress=not quiet, encoding=encoding)

    def say(o: Any) -> None:
        said = o.error.worded(flag) if isinstance(o.error, ArtstyleError) else o.message
        extra = f": {said}" if said else ""
        click.echo(f"{o.status}: {o.photo} -> {o.output}{extra}", err=True)

    outcomes = run_batch(files, sources, outdir, cfg, opts, need=photo_side, report=say)
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = sum(o.status == "skipped" for o in outcomes)
    done = sum(o.status == "done" for o in outcomes)
    click.echo(
        f"{done + skipped} of {len(files)} pictures in {outdir} ({skipped} already up to date)"
        + (f"; {len(failed)} failed" if failed else ""),
        err=True,
    )
    if outcomes and outcomes[-1].status == "interrupted":
        click.echo(
            f"interrupted: the picture so far is in {outcomes[-1].output}; the same command goes on", err=True
        )
        sys.exit(exit_status())
    if failed:
        sys.exit(1)


def _masks(
    files: tuple[str, ...], region_map: str | None, colors: str, n_styles: int
) -> tuple[list[Any] | None, list[str]]:
    """The masks of ``--style-masks`` or ``--style-region-map`` (checked now, before any work)
    and the files they came from."""
    from artstyle.engine.masks import as_masks, region_masks

    if files and region_map:
        raise ArtstyleError("give --style-masks or --style-region-map, not both")
    if files:
        return as_masks(list(files), n_styles), list(files)
    if region_map:
        if not colors:
            raise ArtstyleError("--style-region-map needs --region-colors: one colour per painting")
        return region_masks(region_map, colors.split(","), n_styles), [region_map]
    if colors:
        raise ArtstyleError("--region-colors needs --style-region-map")
    return None, []


@main.command()
@click.option(
    "-o", "--output", default="demo.png", show_default=True, type=click.Path(), help="Output image."
)
@job_options
@encoding_options
@config_options
def demo(
    output: str,
    overwrite: bool,
    checkpoint_every: int,
    quiet: bool,
    quality: int,
    bit_depth: str,
    **kwargs: Any,
) -> None:
    """Stylise a built-in photo (Grace Hopper, shipped with matplotlib) with a built-in painting.

    Needs no files of yours; also writes the two inputs beside the output.
    """
    from artstyle.images.demo import default_content, default_style
    from artstyle.images.encode import save_image
    from artstyle.runs.jobs import JobOptions, run_job
    from artstyle.runs.record import Source, check_output

    cfg = build_config(kwargs)
    encoding = output_encoding(output, quality, bit_depth)
    beside = {
        kind: Path(output).with_name(f"{Path(output).stem}.{kind}.png") for kind in ("content", "style")
    }
    out = check_output(output, overwrite, also=list(beside.values()))
    content = Source(default_content(), "builtin:grace_hopper")
    style = Source(default_style(), "builtin:swirls")
    for src, kind in ((content, "content"), (style, "style")):
        save_image(src.image, beside[kind], overwrite=overwrite)
    result = run_job(
        content,
        [style],
        out,
        cfg,
        JobOptions(
            overwrite=overwrite, checkpoint_every=checkpoint_every, progress=not quiet, encoding=encoding
        ),
    )
    _finish(out, result)


@main.command(cls=ListCommand)
@click.argument("source", type=click.Path())
@click.argument("styles", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="An .mp4 file, or a folder for PNG frames."
)
@click.option(
    "--style-masks", "style_masks", multiple=True, type=click.Path(dir_okay=False), help="One mask per STYLE."
)
@video_options
@runner_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--keep-frames",
    is_flag=True,
    help="Keep OUT.mp4.frames/ (the PNG frames) after the video is written; it is removed by default.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output (never one of the inputs).")
@config_options
def video(
    source: str,
    styles: tuple[str, ...],
    output: str,
    style_masks: tuple[str, ...],
    overwrite: bool,
    keep_frames: bool,
    quiet: bool,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
    **kwargs: Any,
) -> None:
    """Stylise a video file or a folder of frames without flicker (Ruder et al. 2016): each frame
    starts from the previous one warped by optical flow and is held to it where the flow is
    reliable. The clip is split at its shot cuts (each shot starts afresh) and into chunks; with
    --runner ray the chunks go to a Ray cluster's workers, side by side. A phone's clip comes out
    upright and keeps its frames' timing. Frames are kept as they finish (in OUT.mp4.frames/ for
    an .mp4, removed once it is written unless --keep-frames); the same command resumes."""
    from artstyle.runs.video.run import stylize_video

    names = [f.name for f in dataclasses.fields(VideoOptions)]
    given = {k: kwargs.pop(k) for k in names}
    opts = VideoOptions(**{k: v for k, v in given.items() if v is not None})
    cfg = build_config(kwargs)
    masks, _ = _masks(style_masks, None, "", len(styles))
    run = functools.partial(
        stylize_video,
        source,
        list(styles),
        output,
        cfg,
        opts,
        overwrite=overwrite,
        progress=not quiet,
        masks=masks,
        keep_frames=keep_frames,
    )
    if runner == "ray":
        from artstyle.runs.cluster import ray_session
        from artstyle.runs.video.on_ray import ray_workers

        with ray_session(ray_address):
            side = run(workers=ray_workers(ray_cpus_per_run), extra={"runner": "ray"})
    else:
        side = run()
    click.echo(f"wrote {output} (and {side})", err=True)
