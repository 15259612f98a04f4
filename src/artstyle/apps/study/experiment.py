"""Experiments: a base configuration, photos, paintings and axes to sweep, read from TOML, checked
whole before any work starts, run with resume, and summarised as sheets, plots, a table and a report.

File format (every key of ``[base]``, ``[axes]``, ``[quick]`` and ``[[variants]]`` is a
StyleConfig setting)::

    [experiment]
    name = "style_weight"
    description = "What it shows."
    content = ["content/car.jpg"]          # relative to --images, else to this file's folder
    style = ["style/starry_night.jpg"]

    [base]
    preset = "default"                     # optional starting preset
    size = 384

    [axes]                                 # full product of every axis
    style_weight = [5e2, 5e3]

    [[variants]]                           # and/or named variants (crossed with the axes)
    name = "Adam"
    optimizer = "adam"

    [quick]                                # applied on top of [base] with --quick
    size = 128
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artstyle.config import StyleConfig, coerce, from_dict, preset, read_toml
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes
from artstyle.images.decode import image_files, load_image

#: What ``--quick`` does where a file has no ``[quick]`` table: small and short.
DEFAULT_QUICK: dict[str, Any] = {"size": 192, "iterations": 40}

_TOP_LEVEL = {"experiment", "base", "axes", "variants", "quick"}
_EXPERIMENT_KEYS = {"name", "description", "content", "style"}


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]


@dataclass
class Experiment:
    name: str
    description: str
    contents: list[Path]
    styles: list[Path]
    variants: list[Variant]
    base: StyleConfig
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def config_for(self, variant: Variant) -> StyleConfig:
        return from_dict(variant.overrides, base=self.base)


@dataclass
class RunSpec:
    content: Path
    style: Path
    variant: Variant
    config: StyleConfig
    output: Path

    @property
    def pair(self) -> str:
        return f"{self.content.stem} × {self.style.stem}"


@dataclass
class Outcome:
    spec: RunSpec
    status: str  # "done", "skipped" (already up to date), "failed", "interrupted"
    message: str = ""
    sidecar: dict[str, Any] = field(default_factory=dict)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-")[:80] or "run"


def list_images(items: Sequence[str | Path], base: Path | None = None) -> list[Path]:
    """Files as given, and the image files (sorted) of any folder among them."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if base is not None and not p.is_absolute():
            p = base / p
        if p.is_dir():
            out += image_files(p)
        else:
            out.append(p)
    return out


def _settings(table: Any, where: str, base: StyleConfig) -> tuple[StyleConfig, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ArtstyleError(f"{where} must be a table of settings")
    values = dict(table)
    start = base
    if "preset" in values:
        start = preset(str(values.pop("preset")))
    checked = {}
    for key, value in values.items():
        try:
            checked[key] = coerce(key, value)
        except ArtstyleError as e:
            raise ArtstyleError(f"{where}: {e}") from None
    try:
        return from_dict(checked, base=start), checked
    except ArtstyleError as e:
        raise ArtstyleError(f"{where}: {e}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, "experiment file")


def parse_experiment(
    data: dict[str, Any],
    where: str,
    *,
    base_dir: Path,
    images_dir: Path | None = None,
    content: Sequence[str | Path] = (),
    style: Sequence[str | Path] = (),
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Experiment:
    """Check an experiment completely (settings, axes, variants, images) and return it.

    Every problem raises ArtstyleError naming the file and the key; all missing images are
    listed in one message.
    """
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ArtstyleError(
            f"{where}: unknown table(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(_TOP_LEVEL))}"
        )
    meta = data.get("experiment", {})
    if not isinstance(meta, dict):
        raise ArtstyleError(f"{where}: [experiment] must be a table")
    bad = set(meta) - _EXPERIMENT_KEYS
    if bad:
        raise ArtstyleError(f"{where}: [experiment] has unknown key(s) {', '.join(sorted(bad))}")
    name = str(meta.get("name") or Path(where).stem)
    # Settings written in [base], [quick] (with --quick) and on the command line apply to every
    # variant, even one that starts from its own preset.
    base_cfg, explicit = _settings(data.get("base", {}), f"{where}: [base]", StyleConfig())
    quick_table = data.get("quick", {})
    if not isinstance(quick_table, dict):
        raise ArtstyleError(f"{where}: [quick] must be a table of settings")
    if quick:
        base_cfg, q = _settings({**DEFAULT_QUICK, **quick_table}, f"{where}: [quick]", base_cfg)
        explicit = {**explicit, **q}
    else:
        _settings(quick_table, f"{where}: [quick]", base_cfg)  # checked even when unused
    if overrides:
        base_cfg, o = _settings(overrides, "command line", base_cfg)
        explicit = {**explicit, **o}

    axes = data.get("axes", {})
    if not isinstance(axes, dict):
        raise ArtstyleError(f"{where}: [axes] must be a table of lists")
    axis_values: list[list[tuple[str, Any]]] = []
    for key, values in axes.items():
        if not isinstance(values, list):
            raise ArtstyleError(f"{where}: [axes] {key} must be a list of values")
        if not values:
            raise ArtstyleError(f"{where}: [axes] {key} is empty")
        checked = []
        for v in values:
            try:
                checked.append((key, coerce(key, v)))
            except ArtstyleError as e:
                raise ArtstyleError(f"{where}: [axes] {e}") from None
        axis_values.append(checked)

    named = data.get("variants", [])
    if not isinstance(named, list):
        raise ArtstyleError(f"{where}: variants must be an array of tables ([[variants]])")
    named_variants: list[Variant] = []
    for i, table in enumerate(named, start=1):
        if not isinstance(table, dict):
            raise ArtstyleError(f"{where}: [[variants]] #{i} must be a table")
        table = dict(table)
        vname = str(table.pop("name", f"variant {i}"))
        from_preset: dict[str, Any] = {}
        if "preset" in table:
            from_preset = {
                k: v
                for k, v in _diff(preset(str(table.pop("preset"))), base_cfg).items()
                if k not in explicit
            }
        _, checked = _settings({**from_preset, **table}, f"{where}: [[variants]] {vname!r}", base_cfg)
        named_variants.append(Variant(vname, checked))
    if not named_variants:
        named_variants = [Variant("", {})]

    variants: list[Variant] = []
    for nv in named_variants:
        for combo in itertools.product(*axis_values) if axis_values else [()]:
            label = ", ".join([nv.name] * bool(nv.name) + [f"{k}={_short(v)}" for k, v in combo])
            variants.append(Variant(label or "default", {**nv.overrides, **dict(combo)}))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ArtstyleError(
            f"{where}: variant names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    for v in variants:  # every combination must be a valid config before any work starts
        try:
            from_dict(v.overrides, base=base_cfg)
        except ArtstyleError as e:
            raise ArtstyleError(f"{where}: variant {v.name!r}: {e}") from None

    root = images_dir or base_dir
    contents = list_images(content) if content else list_images(_list(meta, "content", where), root)
    styles = list_images(style) if style else list_images(_list(meta, "style", where), root)
    if not contents:
        raise ArtstyleError(f"{where}: no content images (give [experiment] content or --content)")
    if not styles:
        raise ArtstyleError(f"{where}: no style images (give [experiment] style or --style)")
    missing = [str(p) for p in [*contents, *styles] if not p.is_file()]
    if missing:
        raise ArtstyleError(f"{len(missing)} image(s) not found: {', '.join(missing)}")
    return Experiment(
        name, str(meta.get("description", "")).strip(), contents, styles, variants, base_cfg, where, data
    )


def _list(meta: dict[str, Any], key: str, where: str) -> list[str]:
    v = meta.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ArtstyleError(f"{where}: [experiment] {key} must be a list of paths")
    return v


def _diff(cfg: StyleConfig, base: StyleConfig) -> dict[str, Any]:
    a, b = cfg.to_dict(), base.to_dict()
    return {k: v for k, v in a.items() if b[k] != v}


def _short(v: Any) -> str:
    if isinstance(v, tuple):
        return "+".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


#: The experiments shipped with the package (``artstyle experiment pooling`` finds pooling.toml).
SHIPPED = Path(__file__).resolve().parent / "experiments"


def shipped_experiments() -> dict[str, Path]:
    """The shipped experiments by name."""
    return {p.stem: p for p in sorted(SHIPPED.glob("*.toml"))}


def find_experiment(name_or_path: str | Path) -> Path:
    """A path to an experiment file, or a shipped experiment's name (``pooling``)."""
    p = Path(name_or_path)
    if p.exists() or p.is_symlink() or p.suffix or len(p.parts) > 1:
        return p
    shipped = shipped_experiments()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise ArtstyleError(
        f"{name_or_path}: no such experiment file or shipped experiment ({', '.join(shipped)})"
    )


def read_description(path: Path) -> dict[str, Any]:
    """An experiment file's name and description, for a list to choose from."""
    meta = _read_toml(path).get("experiment", {})
    return {"title": str(meta.get("name", path.stem)), "description": str(meta.get("description", ""))}


def load_experiment(path: str | Path, **kwargs: Any) -> Experiment:
    p = find_experiment(path)
    return parse_experiment(_read_toml(p), str(p), base_dir=p.resolve().parent, **kwargs)


def plan(exp: Experiment, outdir: Path) -> list[RunSpec]:
    """One run per photo x painting x variant, with its output path."""
    specs = []
    seen: set[str] = set()
    for c, s, v in itertools.product(exp.contents, exp.styles, exp.variants):
        stem = f"{slug(c.stem)}__{slug(s.stem)}"
        if len(exp.variants) > 1:
            stem += f"__{slug(v.name)}"
        if stem in seen:
            raise ArtstyleError(f"two runs would write {stem}.png: give images distinct names")
        seen.add(stem)
        specs.append(RunSpec(c, s, v, exp.config_for(v), outdir / "images" / f"{stem}.png"))
    return specs


def write_table(outcomes: list[Outcome], path: Path) -> list[dict[str, Any]]:
    """results.csv: one row per run with its final losses, iterations, seconds and peak memory."""
    rows = []
    for o in outcomes:
        d = o.sidecar
        last = (d.get("history") or [{}])[-1]
        cfg = d.get("config", {})
        rows.append(
            {
                "content": o.spec.content.stem,
                "style": o.spec.style.stem,
                "variant": o.spec.variant.name,
                "status": o.status if o.status != "skipped" else "done (cached)",
                "iterations": d.get("iterations", ""),
                "seconds": round(d.get("timings", {}).get("total_s", 0), 1) if d else "",
                "content_loss_per_weight": _per(last.get("content"), cfg.get("content_weight")),
                "style_loss_per_weight": _per(last.get("style"), cfg.get("style_weight")),
                "tv_loss": _fmt(last.get("tv")),
                "total_loss": _fmt(last.get("total")),
                "peak_memory_mb": d.get("peak_memory_mb", ""),
                "message": o.message,
            }
        )
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
    return rows


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else ""


def _per(v: Any, w: Any) -> str:
    return f"{v / w:.4g}" if isinstance(v, (int, float)) and w else ""


def input_thumbnail(path: Path) -> Any:
    try:
        return load_image(path)
    except ArtstyleError:
        return None
