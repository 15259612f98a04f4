"""The experiment's summary: contact and comparison sheets, loss plots, the table, report.md and
a self-contained report.html (images embedded, opens offline)."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
            save_image(grid_sheet([row], title=f"{c.stem} x {s.stem}", header_row=False), sheet_path)
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


def _markdown(sm: Summary) -> str:
    exp, out, grids, pairs, rows = sm.exp, sm.out, sm.grids, sm.pairs, sm.rows
    lines = [f"# {exp.name}", "", exp.description, "", f"Source: `{exp.source}`", ""]
    lines += ["## Contact sheets", ""]
    for name, p in grids:
        lines += [f"![{name}]({_rel(p, out)})", ""]
    lines += ["## Each photo × painting", ""]
    for label, sheet, plot in pairs:
        lines += [f"### {label}", ""]
        if sheet:
            lines += [f"![{label}]({_rel(sheet, out)})", ""]
        if plot:
            lines += [f"![loss curves]({_rel(plot, out)})", ""]
    lines += ["## Results", ""]
    if rows:
        keys = list(rows[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in rows]
    lines += ["", "Images with their JSON sidecars are in `images/`; the table is `results.csv`.", ""]
    return "\n".join(lines)


def _data_uri(p: Path, max_width: int = 1600) -> str:
    with Image.open(p) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _versions_line() -> str:
    return ", ".join(f"{k} {v}" for k, v in versions().items())


def _html(sm: Summary) -> str:
    exp, grids, pairs, rows = sm.exp, sm.grids, sm.pairs, sm.rows
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(exp.name)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1700px;color:#222}",
        "img{max-width:100%;border:1px solid #ddd;margin:.3em 0}",
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}",
        "th{background:#eee}tr.failed td{background:#fdd}code{background:#f4f4f4;padding:0 3px}",
        "</style></head><body>",
        f"<h1>{e(exp.name)}</h1><p>{e(exp.description)}</p>",
        f"<p>Source <code>{e(exp.source)}</code>; {e(_versions_line())}</p>",
        "<h2>Contact sheets</h2>",
    ]
    for name, p in grids:
        parts.append(
            f"<figure><img src='{_data_uri(p)}' alt='{e(name)}'><figcaption>{e(name)}</figcaption></figure>"
        )
    parts.append("<h2>Each photo × painting</h2>")
    for label, sheet, plot in pairs:
        parts.append(f"<h3>{e(label)}</h3>")
        if sheet:
            parts.append(f"<img src='{_data_uri(sheet)}' alt='{e(label)}'>")
        if plot:
            parts.append(f"<img src='{_data_uri(plot)}' alt='loss curves'>")
    parts.append("<h2>Results</h2><table>")
    if rows:
        parts.append("<tr>" + "".join(f"<th>{e(k)}</th>" for k in rows[0]) + "</tr>")
        for r in rows:
            cls = " class='failed'" if r["status"] == "failed" else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{e(str(v))}</td>" for v in r.values()) + "</tr>")
    parts.append(
        "</table><p>Images and their JSON sidecars: <code>images/</code>; table: "
        "<code>results.csv</code>.</p></body></html>"
    )
    return "\n".join(parts)
