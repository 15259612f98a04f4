"""The ``artstyle`` command. Every setting of :class:`~artstyle.config.StyleConfig` becomes a flag
(``content_weight`` -> ``--content-weight``) with the field's help text; nothing is declared twice.

Settings are applied in order: ``--preset``, then ``--config FILE.toml``, then the flags.
User errors print one line ``artstyle: error: ...`` and exit 1; Ctrl-C exits 130 and SIGTERM,
which stops a run the same way, 143.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from artstyle.config import PRESETS, StyleConfig, VideoOptions, field_types, layered
from artstyle.errors import ArtstyleError
from artstyle.signals import exit_status, sigterm_as_ctrl_c
from artstyle.web import MAX_UPLOAD_MB, QUEUE_LIMIT  # (the package's root imports no web framework)

F = typing.TypeVar("F", bound=Callable[..., Any])


def _option_for(f: dataclasses.Field[Any], tp: Any) -> Callable[[F], F]:
    flag = "--" + f.name.replace("_", "-")
    default = f.default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    help_text = f"{f.metadata['doc']} [default: {shown if shown != '' else 'none'}]"
    if tp is bool:
        return click.option(flag, f.name, is_flag=True, default=None, help=f.metadata["doc"])
    origin = typing.get_origin(tp)
    if origin is Literal:
        ptype: Any = click.Choice(typing.get_args(tp))
    elif origin is tuple:
        ptype, help_text = str, help_text + " (comma-separated)"
    else:
        ptype = tp
    return click.option(
        flag,
        f.name,
        type=ptype,
        default=None,
        help=help_text,
        metavar=f.name.upper() if ptype in (int, float, str) else None,
    )


def config_options(func: F) -> F:
    """Add ``--preset``, ``--config`` and one flag per StyleConfig field to a click command."""
    types = field_types()
    for f in reversed(dataclasses.fields(StyleConfig)):
        func = _option_for(f, types[f.name])(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        help="A TOML file of settings (the same names as the flags, with underscores).",
    )(func)
    func = click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default="default",
        show_default=True,
        help="Starting point for all settings.",
    )(func)
    return func


def build_config(kwargs: dict[str, Any]) -> StyleConfig:
    """Preset, then config file, then flags (config.layered); pops those keys from ``kwargs``."""
    flags = {}
    for name in field_types():
        v = kwargs.pop(name, None)
        if v is not None:
            flags[name] = v
    return layered(kwargs.pop("preset", "default"), kwargs.pop("config_file", None), flags)


def _one_line(message: str) -> str:
    return " ".join(message.split())


class _Group(click.Group):
    """Turns user errors into one line ``artstyle: error: ...`` and a non-zero exit (1 for a
    failed run, 2 for a wrong command line, as click's usage errors); Ctrl-C into exit 130."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with sigterm_as_ctrl_c():
            return self._main(*args, **kwargs)

    def _main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
            sys.exit(2)
        except click.ClickException as e:
            hint = ""
            if isinstance(e, click.UsageError) and e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"artstyle: error: {_one_line(e.format_message())}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("artstyle: interrupted", err=True)
            sys.exit(exit_status())
        if isinstance(rv, int) and rv:  # click's standalone_mode=False returns exit codes
            sys.exit(rv)
        return rv

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArtstyleError as e:
            click.echo(f"artstyle: error: {_one_line(str(e))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while leaving is ignored
            click.echo("artstyle: interrupted", err=True)
            sys.exit(exit_status())
        except OSError as e:  # (the checks before a run name every case we know; this is the net)
            where = str(e.filename or "")
            where = f"{where[:40]}...: " if len(where) > 40 else f"{where}: " if where else ""
            click.echo(f"artstyle: error: {where}{e.strerror or e}", err=True)
            sys.exit(1)
        except MemoryError:
            click.echo(
                "artstyle: error: out of memory; lower --size (memory grows with its square)", err=True
            )
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="artstyle")
def main() -> None:
    """Paint photographs in the style of paintings (Gatys et al. neural style transfer)."""


def _job_options(func: F) -> F:
    func = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(func)
    func = click.option(
        "--checkpoint-every",
        type=click.IntRange(min=0),
        default=0,
        help="Write the image every N iterations beside the output.",
    )(func)
    func = click.option("--overwrite", is_flag=True, help="Replace an existing output.")(func)
    return func


def _encoding_options(func: F) -> F:
    """``--quality`` and ``--bit-depth``: how the output file is encoded (its format is its suffix)."""
    func = click.option(
        "--bit-depth",
        type=click.Choice(["8", "16"]),
        default="8",
        show_default=True,
        help="Bits a channel of a .png or .tif output (16: from the unrounded result; needs OpenCV).",
    )(func)
    return click.option(
        "--quality",
        type=click.IntRange(1, 100),
        default=95,
        show_default=True,
        help="Quality of a .jpg or .webp output.",
    )(func)


def _encoding(output: str, quality: int, bit_depth: str) -> Any:
    """The output's encoding, checked before any work (a 16-bit JPEG is refused now, not after it)."""
    from artstyle.images import Encoding

    encoding = Encoding(quality=quality, bits=int(bit_depth))
    encoding.check(output)
    return encoding


def _runner_options(func: F) -> F:
    """``--runner``, ``--ray-address`` and ``--ray-cpus-per-run`` for stylize and the study."""
    func = click.option(
        "--ray-cpus-per-run",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="CPUs each run (or each tile's worker) takes on the Ray cluster (its torch threads).",
    )(func)
    func = click.option(
        "--ray-address",
        default=None,
        help="Address of the Ray cluster (default: $RAY_ADDRESS; without either a local Ray is started).",
    )(func)
    return click.option(
        "--runner",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Where the work goes: here, or to a Ray cluster (a study's runs; a tiled picture's tiles).",
    )(func)


def _finish(out: Path, result: Any) -> None:
    if result.interrupted:
        from artstyle.state import state_dir

        again = "; the same command continues the run" if state_dir(out).is_dir() else ""
        click.echo(f"interrupted: the image so far is in {out}{again}", err=True)
        sys.exit(exit_status())
    click.echo(
        f"wrote {out} and {out.name}.json ({len(result.history)} iterations, "
        f"{result.timings['total_s']:.1f} s)",
        err=True,
    )


class _ListCommand(click.Command):
    """Lets ``--content``, ``--style`` and ``--style-masks`` take several values: ``--content a.jpg
    b.jpg --style x/`` is read as ``--content a.jpg --content b.jpg --style x/``."""

    greedy = ("--content", "--style", "--style-masks")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current = None
        for a in args:
            if a in self.greedy:
                current = a
                continue
            if a.startswith("-"):
                current = None
            elif current is not None:
                out += [current, a]
                continue
            out.append(a)
        return super().parse_args(ctx, out)


@main.command(cls=_ListCommand)
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
@_job_options
@_encoding_options
@_runner_options
@config_options
def stylize(
    content: str,
    styles: tuple[str, ...],
    output: str,
    style_opts: tuple[str, ...],
    style_masks: tuple[str, ...],
    style_region_map: str | None,
    region_colors: str,
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
    from artstyle.jobs import JobOptions, run_job
    from artstyle.record import Source, check_output

    cfg = build_config(kwargs)
    photos = [content, *styles] if style_opts else [content]
    styles = style_opts or styles
    if not styles:
        raise click.UsageError("give at least one painting: STYLE, or --style after several photos")
    if len(photos) > 1 or Path(content).is_dir():
        if style_masks or style_region_map:
            raise ArtstyleError("--style-masks and --style-region-map paint one photo; give one")
        _stylize_batch(
            photos, styles, output, cfg, overwrite, quiet, _encoding(output + "/x.png", quality, bit_depth)
        )
        return
    encoding = _encoding(output, quality, bit_depth)
    masks, mask_files = _masks(style_masks, style_region_map, region_colors, len(styles))
    from artstyle.state import state_dir

    check_name(Path(output))  # (before its .state folder is looked for)
    # (a stopped run's own picture may be replaced by its continuation: run_job checks that)
    stopped = state_dir(Path(output)).is_dir()
    out = check_output(output, overwrite or stopped, [content, *styles, *mask_files])
    from artstyle.pyramid import used_sides

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
    )
    if mask_files:
        opts.extra["style_masks"] = [{"path": p, "sha256": sha256_file(Path(p))} for p in mask_files]
        if style_region_map:
            opts.extra["region_colors"] = region_colors.split(",")
    started = False
    if runner == "ray":
        from artstyle.cluster import RayPainter, connect

        started = connect(ray_address)
        opts.painter = RayPainter(cfg, cpus_per_actor=ray_cpus_per_run)
        opts.extra["runner"] = "ray"
    try:
        result = run_job(sources[0], sources[1:], out, cfg, opts)
    finally:
        if started:
            import ray

            ray.shutdown()
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
    from artstyle.images import SAVE_FORMATS, image_files
    from artstyle.jobs import JobOptions, run_batch
    from artstyle.pyramid import used_sides
    from artstyle.record import Source

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
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArtstyleError(f"{outdir}: cannot make the folder ({e.strerror or e})") from None
    photo_side, painting_side = used_sides(cfg)
    sources = [Source.from_path(p, painting_side) for p in paintings]
    opts = JobOptions(overwrite=overwrite, progress=not quiet, encoding=encoding)

    def say(o: Any) -> None:
        extra = f": {o.message}" if o.status in ("failed", "skipped") else ""
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
    from artstyle.masks import as_masks, region_masks

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
@_job_options
@_encoding_options
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
    from artstyle.images import default_content, default_style, save_image
    from artstyle.jobs import JobOptions, run_job
    from artstyle.record import Source, check_output

    cfg = build_config(kwargs)
    encoding = _encoding(output, quality, bit_depth)
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


def _run_study(exp: Any, outdir: str, quiet: bool, runner: str, address: str | None, cpus: int) -> None:
    from artstyle.study.runner import run_experiment

    outcomes = run_experiment(
        exp, Path(outdir), progress=not quiet, runner=runner, ray_address=address, cpus_per_run=cpus
    )
    _report_outcomes(outcomes, Path(outdir))


def _report_outcomes(outcomes: list[Any], outdir: Path) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = sum(o.status == "skipped" for o in outcomes)
    click.echo(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} runs done ({skipped} already up to date); "
        f"report: {outdir / 'report.html'}",
        err=True,
    )
    for o in failed:
        click.echo(f"failed: {o.spec.pair} {o.spec.variant.name}: {o.message}", err=True)
    if failed:
        sys.exit(1)


def _image_lists(required: bool) -> Callable[[F], F]:
    """``--content`` and ``--style``: files or folders, several after one flag (see _ListCommand)."""
    instead = "" if required else " (instead of the file's list)"

    def add(func: F) -> F:
        func = click.option(
            "--style",
            "styles",
            multiple=True,
            required=required,
            type=click.Path(),
            help=f"Painting files or folders{instead}.",
        )(func)
        return click.option(
            "--content",
            "contents",
            multiple=True,
            required=required,
            type=click.Path(),
            help=f"Photo files or folders{instead}; several may follow one flag.",
        )(func)

    return add


@main.command(cls=_ListCommand)
@_image_lists(required=True)
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (created; re-running skips finished pairs).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_runner_options
@config_options
def grid(
    contents: tuple[str, ...],
    styles: tuple[str, ...],
    outdir: str,
    quiet: bool,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
    **kwargs: Any,
) -> None:
    """Stylise every photo with every painting and write a contact sheet.

    \b
    artstyle grid --content photos/ --style paintings/ -o out/
    artstyle grid --content a.jpg --content b.jpg --style x.jpg -o out/ --size 256
    """
    from artstyle.study.experiment import parse_experiment

    cfg = build_config(kwargs)
    data = {"experiment": {"name": "grid"}, "base": cfg.to_dict()}
    exp = parse_experiment(data, "grid", base_dir=Path.cwd(), content=contents, style=styles)
    _run_study(exp, outdir, quiet, runner, ray_address, ray_cpus_per_run)


@main.command(cls=_ListCommand)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (created; re-running skips finished runs).",
)
@click.option(
    "--images",
    type=click.Path(file_okay=False),
    help="Folder the file's image paths are relative to (default: the file's folder).",
)
@_image_lists(required=False)
@click.option("--quick", is_flag=True, help="Small size, few iterations (the file's [quick] table).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a base setting, e.g. --set weights=/path/vgg16.pth.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_runner_options
def experiment(
    file: str,
    outdir: str,
    images: str | None,
    contents: tuple[str, ...],
    styles: tuple[str, ...],
    quick: bool,
    sets: tuple[str, ...],
    quiet: bool,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
) -> None:
    """Run the experiment described by FILE (TOML): every photo x painting x variant, then
    comparison sheets, loss curves, a table and report.html / report.md in the output folder."""
    from artstyle.study.experiment import load_experiment

    overrides = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise ArtstyleError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value.strip()
    exp = load_experiment(
        file,
        images_dir=Path(images) if images else None,
        content=contents,
        style=styles,
        quick=quick,
        overrides=overrides,
    )
    _run_study(exp, outdir, quiet, runner, ray_address, ray_cpus_per_run)


@main.command("config")
@config_options
def show_config(**kwargs: Any) -> None:
    """Print the settings that a preset, config file and flags add up to, as TOML."""
    cfg = build_config(kwargs)
    for name, value in cfg.to_dict().items():
        click.echo(f"{name} = {_toml_value(value)}")


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def video_options(func: F) -> F:
    """One flag per VideoOptions field (unset flags keep the field's default)."""
    types = typing.get_type_hints(VideoOptions)
    for f in reversed(dataclasses.fields(VideoOptions)):
        func = _option_for(f, types[f.name])(func)
    return func


@main.command(cls=_ListCommand)
@click.argument("source", type=click.Path())
@click.argument("styles", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="An .mp4 file, or a folder for PNG frames."
)
@click.option(
    "--style-masks", "style_masks", multiple=True, type=click.Path(dir_okay=False), help="One mask per STYLE."
)
@video_options
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
    **kwargs: Any,
) -> None:
    """Stylise a video file or a folder of frames without flicker (Ruder et al. 2016): each frame
    starts from the previous one warped by optical flow and is held to it where the flow is
    reliable. A phone's clip comes out upright and keeps its frames' timing. Frames are kept as
    they finish (in OUT.mp4.frames/ for an .mp4, removed once it is written unless --keep-frames);
    the same command resumes."""
    from artstyle.video import stylize_video

    names = [f.name for f in dataclasses.fields(VideoOptions)]
    given = {k: kwargs.pop(k) for k in names}
    opts = VideoOptions(**{k: v for k, v in given.items() if v is not None})
    cfg = build_config(kwargs)
    masks, _ = _masks(style_masks, None, "", len(styles))
    side = stylize_video(
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
    click.echo(f"wrote {output} (and {side})", err=True)


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but loopback needs a token.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Folder of uploads and results [default: the user's data folder].",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--token", help="Access token (generated when --host is not loopback and none is given).")
@click.option("--max-upload-mb", default=MAX_UPLOAD_MB, show_default=True, type=click.FloatRange(0.1, 2000))
@click.option("--queue-limit", default=QUEUE_LIMIT, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--runner",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where jobs run: one worker process here, or Ray tasks on a cluster (several at once).",
)
@click.option(
    "--ray-address", default=None, help="The Ray cluster (default: $RAY_ADDRESS, else a local Ray)."
)
@click.option(
    "--ray-cpus-per-run",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs each job takes on the Ray cluster (its torch threads).",
)
def serve(
    host: str,
    port: int,
    data: str | None,
    open_browser: bool,
    token: str | None,
    max_upload_mb: float,
    queue_limit: int,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
) -> None:
    """Start the studio: a local web page to stylise, watch it paint, cancel, and keep a gallery."""
    try:
        import uvicorn

        from artstyle.web.app import LOOPBACK, create_app
        from artstyle.web.store import default_data_dir
    except ImportError:
        raise ArtstyleError('artstyle serve needs the web extra: pip install "artstyle[web]"') from None
    import secrets
    import socket
    import webbrowser

    loopback = host in LOOPBACK
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    try:  # a busy port is one line, before anything starts
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise ArtstyleError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pass another --port"
        ) from None
    folder = Path(data) if data else default_data_dir()
    app = create_app(
        folder,
        token=token,
        max_upload_mb=max_upload_mb,
        queue_limit=queue_limit,
        hosts=(*LOOPBACK, host) if loopback else None,
        runner=runner,
        ray_address=ray_address,
        ray_cpus_per_job=ray_cpus_per_run,
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"artstyle studio: {url}  (data: {folder}; Ctrl-C stops)", err=True)
    if open_browser:
        threading.Timer(1.5, webbrowser.open, args=(url,)).start()
    manager = app.state.manager

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Ctrl-C or SIGTERM: the running job stops now and open event streams end, so the
            # server is gone in a second or two, however many pages watch it
            manager.begin_stop()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    Server(config).run()


@main.command("fetch-weights")
@click.option("--network", type=click.Choice(["vgg19", "vgg16"]), default="vgg19", show_default=True)
@click.option("--weights", default="auto", show_default=True)
def fetch_weights(network: str, weights: str) -> None:
    """Fetch, verify and cache network weights now (later runs are offline)."""
    from artstyle.weights import load_weights

    loaded = load_weights(weights, network, log=lambda m: click.echo(m, err=True))
    click.echo(f"ok: {loaded.weights_id}")


if __name__ == "__main__":  # pragma: no cover
    main()
