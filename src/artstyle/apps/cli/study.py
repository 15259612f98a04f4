"""The study from the command line: ``grid`` and ``experiment`` (locally or on Ray), with their
report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from artstyle.apps.cli.main import main
from artstyle.apps.cli.options import (
    ListCommand,
    build_config,
    config_options,
    image_lists,
    runner_options,
)
from artstyle.errors import ArtstyleError


def _run_study(exp: Any, outdir: str, quiet: bool, runner: str, address: str | None, cpus: int) -> None:
    from artstyle.apps.study.runner import run_experiment

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


@main.command(cls=ListCommand)
@image_lists(required=True)
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (created; re-running skips finished pairs).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@runner_options
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
    from artstyle.apps.study.experiment import parse_experiment

    cfg = build_config(kwargs)
    data = {"experiment": {"name": "grid"}, "base": cfg.to_dict()}
    exp = parse_experiment(data, "grid", base_dir=Path.cwd(), content=contents, style=styles)
    _run_study(exp, outdir, quiet, runner, ray_address, ray_cpus_per_run)


@main.command(cls=ListCommand)
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
@image_lists(required=False)
@click.option("--quick", is_flag=True, help="Small size, few iterations (the file's [quick] table).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a base setting, e.g. --set weights=/path/vgg16.pth.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@runner_options
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
    from artstyle.apps.study.experiment import load_experiment

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
