"""The command's options, built from the settings table: every field of
:class:`~artstyle.config.StyleConfig` becomes a flag (``content_weight`` -> ``--content-weight``)
with the field's help text, and the options that several commands share (job, encoding, runner,
image lists, video).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, Literal

import click

from artstyle.config import PRESETS, StyleConfig, VideoOptions, field_types, layered

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


def job_options(func: F) -> F:
    func = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(func)
    func = click.option(
        "--checkpoint-every",
        type=click.IntRange(min=0),
        default=0,
        help="Write the image every N iterations beside the output.",
    )(func)
    func = click.option("--overwrite", is_flag=True, help="Replace an existing output.")(func)
    return func


def encoding_options(func: F) -> F:
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


def output_encoding(output: str, quality: int, bit_depth: str) -> Any:
    """The output's encoding, checked before any work (a 16-bit JPEG is refused now, not after it)."""
    from artstyle.images.encode import Encoding

    encoding = Encoding(quality=quality, bits=int(bit_depth))
    encoding.check(output)
    return encoding


def runner_options(func: F) -> F:
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


class ListCommand(click.Command):
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


def image_lists(required: bool) -> Callable[[F], F]:
    """``--content`` and ``--style``: files or folders, several after one flag (see ListCommand)."""
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


def video_options(func: F) -> F:
    """One flag per VideoOptions field (unset flags keep the field's default)."""
    types = typing.get_type_hints(VideoOptions)
    for f in reversed(dataclasses.fields(VideoOptions)):
        func = _option_for(f, types[f.name])(func)
    return func
