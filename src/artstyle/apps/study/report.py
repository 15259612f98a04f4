"""The experiment's summary: contact and comparison sheets, loss plots, the table, report.md and
a self-contained report.html (images embedded, opens offline)."""

from __future__ import annotations

import base64
import functools
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from artstyle.apps.study.experiment import Experiment, Outcome, input_thumbnail, slug, write_table
from artstyle.apps.study.plots import loss_curves
from artstyle.apps.study.sheets import Cell, grid_sheet
from artstyle.files import atomic_write_bytes
from artstyle.images.encode import save_image
from artstyle.runs.record import versions


def _result_image(o: Outcome) -> Image.Image | None:
    if o.status in ("failed",) or not o.spec.output.exists():
        return None
    try:
        with Image.open(o.spec.output) as im:
            return im.convert("RGB")
    except OSError:
        return None


def _caption(o: Outcome) -> str:
    if o.status == "failed":
        return "failed"
    d = o.sidecar
    return f"{d.get('timings', {}).get('total_s', 0):.0f} s" if d else o.status


def write_report(exp: Experiment, out: Path, outcomes: list[Outcome]) -> Path:
    """Write sheets, plots, results.csv, report.md and report.html into ``out``; returns the HTML."""
    (out / "sheets").mkdir(exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    thumbs = {p: input_thumbnail(p) for p in [*exp.contents, *exp.styles]}
    by_variant: dict[str, dict[tuple[Path, Path], Outcome]] = defaultdict(dict)
    by_pair: dict[tuple[Path, Path], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_variant[o.spec.variant.name][(o.spec.content, o.spec.style)] = o
        by_pair[(o.spec.content, o.spec.style)].append(o)

    # Contact sheets: one per variant, a row per photo and a column per painting.
    grids: list[tuple[str, Path]] = []
    for v in exp.variants:
        cells = by_variant.get(v.name, {})
        if not cells:
            continue
        rows: list[list[Cell]] = [[(None, ""), *[(thumbs[s], s.stem) for s in exp.styles]]]
        for c in exp.contents:
            row: list[Cell] = [(thumbs[c], c.stem)]
            for s in exp.styles:
                o = cells.get((c, s))
                row.append((_result_image(o), _caption(o)) if o else (None, ""))
            rows.append(row)
        title = f"{exp.name}" + (f" — {v.name}" if len(exp.variants) > 1 else "")
        name = "grid.png" if len(exp.variants) == 1 else f"grid__{slug(v.name)}.png"
        save_image(grid_sheet(rows, title=title), out / "sheets" / name)
        grids.append((v.name, out / "sheets" / name))

    # Comparison sheets and loss curves: one per photo x painting, a column per variant.
    pairs: list[tuple[str, Path | None, Path]] = []
    for (c, s), items in by_pair.items():
        stem = f"{slug(c.stem)}__{slug(s.stem)}"
        sheet_path = None
        if len(exp.variants) > 1:
            row: list[Cell] = [(thumbs[c], c.stem), (thumbs[s], s.stem)]
            row += [(_result_image(o), f"{o.spec.variant.name} · {_caption(o)}") for o in items]
            sheet_path = out / "sheets" / f"compare__{stem}.png"
            save_image(grid_sheet([row], title=f"{c.stem} × {s.stem}", header_row=False), sheet_path)
        series = {
            o.spec.variant.name or "run": (o.sidecar.get("history", []), o.sidecar.get("config", {}))
            for o in items
            if o.sidecar
        }
        plot_path = out / "plots" / f"loss__{stem}.png"
        if series:
            loss_curves(series, plot_path, f"{exp.name}: {c.stem} × {s.stem}")
        pairs.append((f"{c.stem} × {s.stem}", sheet_path, plot_path if series else None))

    rows_table = write_table(outcomes, out / "results.csv")
    summary = Summary(exp, out, grids, pairs, rows_table)
    md = _markdown(summary)
    atomic_write_bytes(out / "report.md", md.encode())
    page = _html(summary)
    atomic_write_bytes(out / "report.html", page.encode())
    return out / "report.html"


def _rel(p: Path, out: Path) -> str:
    return p.relative_to(out).as_posix()


@dataclass
class Summary:
    """What the report shows: contact sheets by variant, (label, sheet, plot) per pair, table rows."""

    exp: Experiment
    out: Path
    grids: list[tuple[str, Path]]
    pairs: list[tuple[str, Path | None, Path | None]]
    rows: list[dict[str, Any]]


@functools.cache
def _templates() -> jinja2.Environment:
    """The report's templates (``templates/``): HTML escaped, Markdown as written."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("artstyle.apps.study", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _markdown(sm: Summary) -> str:
    out = sm.out
    return (
        _templates()
        .get_template("report.md.j2")
        .render(
            exp=sm.exp,
            grids=[(name, _rel(p, out)) for name, p in sm.grids],
            pairs=[
                (label, sheet and _rel(sheet, out), plot and _rel(plot, out))
                for label, sheet, plot in sm.pairs
            ],
            rows=sm.rows,
        )
    )


def _data_uri(p: Path, max_width: int = 1600) -> str:
    with Image.open(p) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _html(sm: Summary) -> str:
    """The self-contained page: every picture embedded as a data URI."""
    return (
        _templates()
        .get_template("report.html.j2")
        .render(
            exp=sm.exp,
            versions=", ".join(f"{k} {v}" for k, v in versions().items()),
            grids=[(name, _data_uri(p)) for name, p in sm.grids],
            pairs=[
                (label, sheet and _data_uri(sheet), plot and _data_uri(plot))
                for label, sheet, plot in sm.pairs
            ],
            rows=sm.rows,
        )
    )
