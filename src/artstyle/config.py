"""One typed source of truth for every parameter of a run: its name, type, default and meaning.

The CLI, the experiment files and the Python API are all built from :class:`StyleConfig`; nothing
re-declares a default. Names follow Gatys et al. (2015) and the original study
(``content_weight``, ``style_layer_weight_exp``, ``relu4_2`` ...).

Loss normalisations are chosen so that a weight means the same at every image size (see
:mod:`artstyle.model.losses`), which is what lets the study's weights be used unchanged.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import reprlib
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from artstyle.errors import ArtstyleError
from artstyle.files import check_regular_file
from artstyle.layers import NETWORKS, unknown_layers, unknown_layers_message

#: The smallest tile: the network needs 32 px, and a tile's border (where its zero padding speaks)
#: must stay small beside its interior.
MIN_TILE = 128
#: Smallest side the network reads (its five poolings need at least 32 px): a picture's, a level's.
MIN_SIDE = 32

#: Bounds that keep a typo from asking for years of work or an overflow.
MAX_SCALES = 12
MAX_ITERATIONS = 1_000_000

Network = Literal["vgg19", "vgg16"]
Pooling = Literal["max", "avg"]
Optimizer = Literal["lbfgs", "adam"]
StyleLoss = Literal["gram", "mean_cov", "sliced_wasserstein"]
PreserveColor = Literal["none", "luminance", "histogram"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "float32", "bfloat16"]
LossNormalization = Literal["absolute", "relative"]
PixelBounds = Literal["box", "free"]
TilePainting = Literal["native", "enlarged"]
AlphaMode = Literal["keep", "white"]


def setting(
    default: Any,
    doc: str,
    *,
    group: str = "run",
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    named: tuple[str, ...] = (),
) -> Any:
    """A dataclass field whose metadata carries the help text, group and bounds used by every
    interface (flags, config files, the web form's schema) and by validation. ``named``: the
    names a string field takes besides a file path (a web form offers only these)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    meta = {"doc": doc, "group": group, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}
    meta["named"] = named
    return field(default=default, metadata=meta)


def _bound_problem(name: str, v: float, m: dict[str, Any]) -> str | None:
    """The message for ``v`` outside the bounds in field metadata ``m``, or None."""
    lo, hi, lo_open, hi_open = m["lo"], m["hi"], m["lo_open"], m["hi_open"]
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if not (below or above):
        return None
    if lo is not None and hi is not None:
        span = f"{'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
        return f"{name} must be in {span} (got {v})"
    if below:
        if lo == 0:
            return f"{name} must {'be positive' if lo_open else 'not be negative'} (got {v})"
        return f"{name} must be {'above' if lo_open else 'at least'} {_num(lo)} (got {v})"
    return f"{name} must be {'below' if hi_open else 'at most'} {_num(hi)} (got {v})"


def bound_problems(obj: Any, label: Callable[[str], str] = str) -> list[str]:
    """The messages of every field of dataclass ``obj`` outside its metadata's bounds, each naming
    the field as ``label(name)`` (a flag, for the video options)."""
    out = []
    for f in fields(obj):
        if f.metadata.get("lo") is not None or f.metadata.get("hi") is not None:
            msg = _bound_problem(label(f.name), getattr(obj, f.name), f.metadata)
            if msg:
                out.append(msg)
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


#: The style strength (percent) -> the multiplier of ``style_weight`` it applies, measured by
#: ``benchmarks/strength.py`` over the 16 dev-set pairs at 256 px with the default settings and the
#: style weight times 0, 1/256, ..., 8: a multiplier's strength is 100 x the median pair's
#: *progress*, how far the picture has come from the photo (multiplier 0) towards the strongest
#: (x8) in the judge's content distance. (The judge's style distance reaches its floor by 1/16 of
#: the default weight, where by eye the picture has hardly begun to change; what one sees after is
#: the photo's structure giving way, which the content distance follows.) Between the points the
#: multiplier is interpolated in log space (linearly between 0 and the first point): each doubling
#: of the weight is about 11 points. The default weight sits at 75.6 %; half of it, 37.8 %, is
#: about 1/9 of the weight.
STRENGTH_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (1.8, 1 / 256),
    (9.7, 1 / 64),
    (18.7, 1 / 32),
    (28.8, 1 / 16),
    (39.3, 1 / 8),
    (50.5, 1 / 4),
    (62.7, 1 / 2),
    (75.6, 1.0),
    (86.5, 2.0),
    (95.4, 4.0),
    (100.0, 8.0),
)
#: The strength of ``style_weight`` as it is (multiplier 1).
DEFAULT_STRENGTH = next(s for s, m in STRENGTH_CURVE if m == 1.0)


def strength_multiplier(strength: float) -> float:
    """The multiplier of ``style_weight`` at ``strength`` percent (see :data:`STRENGTH_CURVE`)."""
    points = STRENGTH_CURVE
    if strength <= points[0][0]:
        return points[0][1]
    for (s0, m0), (s1, m1) in itertools.pairwise(points):
        if strength <= s1:
            t = (strength - s0) / (s1 - s0)
            if m0 == 0:
                return m1 * t
            return math.exp(math.log(m0) + t * (math.log(m1) - math.log(m0)))
    return points[-1][1]


def strength_of(multiplier: float) -> float:
    """The strength (percent) whose multiplier is ``multiplier`` (the inverse of the curve)."""
    points = STRENGTH_CURVE
    if multiplier <= 0:
        return 0.0
    for (s0, m0), (s1, m1) in itertools.pairwise(points):
        if multiplier <= m1:
            if m0 == 0:
                return s0 + (s1 - s0) * multiplier / m1
            return s0 + (s1 - s0) * (math.log(multiplier) - math.log(m0)) / (math.log(m1) - math.log(m0))
    return points[-1][0]


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of a style-transfer run. The defaults are the project's default preset.

    How the defaults were chosen (16 photo x painting pairs, median and worst pair, and by eye) is
    written with its numbers in the README ("How the default was chosen").
    """

    # -- network -------------------------------------------------------------------------------
    network: Network = setting("vgg19", "Feature network: vgg19 (Gatys) or vgg16.", group="network")
    weights: str = setting(
        "auto",
        "Weights: auto (vgg19-caffe for vgg19, vgg16-torchvision for vgg16), vgg19-caffe, "
        "vgg19-torchvision, vgg16-torchvision, or the path of a local state dict.",
        group="network",
        named=("auto", "vgg19-caffe", "vgg19-torchvision", "vgg16-torchvision"),
    )
    pooling: Pooling = setting("max", "Pooling in the network: max or avg (Gatys: avg).", group="network")
    # -- sizes ---------------------------------------------------------------------------------
    size: int = setting(512, "Long side of the output in pixels.", group="size", lo=MIN_SIDE, hi=16384)
    style_scale: float = setting(
        1.0,
        "Style image size relative to the output (long side ratio).",
        group="size",
        lo=0,
        lo_open=True,
        hi=16,
    )
    scales: int = setting(
        2,
        "Coarse-to-fine levels: 1 optimises at full size only; each level is the next / scale_ratio "
        "(for a picture larger than paint_size: the levels of the paint_size picture).",
        group="size",
        lo=1,
        hi=MAX_SCALES,
    )
    scale_ratio: float = setting(
        2.0, "Size ratio between consecutive coarse-to-fine levels.", group="size", lo=1, lo_open=True, hi=16
    )
    coarse_min_size: int = setting(
        256,
        "Coarse levels whose long side would be under this are skipped: below about 256 px the deep "
        "style layers see the whole picture and paint the painting's composition over the photo.",
        group="size",
        lo=MIN_SIDE,
    )
    paint_size: int = setting(
        512,
        "A larger picture is painted at this size first (the levels of a run of this size), then "
        "given detail by levels doubling up to the full size, each with half the iterations of the "
        "one below (at least 2) and held to its picture (detail_anchor): the look of the "
        "paint_size picture, with more detail. 0 = no detail levels (scales levels at full size). "
        "Not used with level_iterations (an explicit recipe).",
        group="size",
        lo=0,
        hi=16384,
    )
    max_memory: float = setting(
        0.0,
        "Memory budget in GB (0 = the default: 9 GB, at most half the machine's memory and what is "
        "available less 1.5 GB): a level whose whole-image pass would need more is painted in "
        "overlapping tiles that fit it.",
        group="size",
        lo=0,
        hi=65536,
    )
    tile_size: int = setting(
        0,
        "Side of the tiles, in px, for a level painted in tiles (0 = the largest that fits "
        "max_memory); a level larger than a given tile size is always painted in tiles.",
        group="size",
        lo=0,
        hi=16384,
    )
    tile_painting: TilePainting = setting(
        "enlarged",
        "The painting's size at a level painted in tiles: enlarged (style_scale times the level, as "
        "at untiled levels, read in pieces; the look of the smaller levels) or native (never enlarged "
        "beyond its own pixels: crisper strokes, but the deep layers then paint small swirls).",
        group="size",
    )
    native_blocks: int = setting(
        2,
        "At a level larger than paint_size, the style layers in the network's first N blocks "
        "(2: relu1_1 and relu2_1, the painting's texture and edges) are matched to the painting at "
        "no more than its own pixels, the deeper ones (the strokes' layout) at style_scale times the "
        "level as everywhere else: a poster from a smaller painting then has the painting's own "
        "detail at 1:1 rather than its pixels enlarged (measured at 2048 px: 1.2-1.3x the detail at "
        "1:1, the same look reduced). 0 = every layer at style_scale times the level.",
        group="size",
        lo=0,
        hi=5,
    )
    # -- content -------------------------------------------------------------------------------
    content_layers: tuple[str, ...] = setting(
        ("relu4_2", "relu5_2"), "Content layers; the first gets content_weight_blend.", group="loss"
    )
    content_weight: float = setting(1.0, "Weight of the content loss.", group="loss", lo=0)
    content_weight_blend: float = setting(
        1.0,
        "Share of the first content layer (1 = relu4_2 only, as in the study); the rest is split "
        "over the others.",
        group="loss",
        lo=0,
        hi=1,
    )
    # -- style ---------------------------------------------------------------------------------
    style_layers: tuple[str, ...] = setting(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "Style layers.", group="loss"
    )
    style_weight: float = setting(20.0, "Weight of the style loss.", group="loss", lo=0)
    style_strength: float = setting(
        DEFAULT_STRENGTH,
        "How strong the style is, 0-100 %: 0 keeps the photo, 100 is the strongest measured. It "
        "multiplies style_weight along a curve measured over the dev set so that equal steps "
        f"look like equal steps; {DEFAULT_STRENGTH:g} leaves style_weight as it is "
        "(see STRENGTH_CURVE).",
        group="loss",
        lo=0,
        hi=100,
    )
    style_layer_weight_exp: float = setting(
        1.0,
        "Layer i of the style layers gets weight exp**i, normalised to sum 1 (1 = equal).",
        group="loss",
        lo=0,
        lo_open=True,
    )
    style_blend_weights: tuple[float, ...] = setting(
        (), "Weights of several style images, normalised to sum 1 (empty = equal).", group="loss"
    )
    style_loss: StyleLoss = setting(
        "gram",
        "Style statistic: gram (Gatys), mean_cov (Wasserstein-2 of Gaussians), "
        "sliced_wasserstein (Heitz et al. 2021).",
        group="loss",
    )
    tv_weight: float = setting(
        1e-5, "Weight of the total-variation loss (0-255 pixel units).", group="loss", lo=0
    )
    detail_anchor: float = setting(
        3000.0,
        "Weight of the anchor that holds a level larger than paint_size to the picture of the level "
        "below it, in its low frequencies (a Gaussian of half the levels' size ratio), relative to "
        "the blurred picture's magnitude: 0 = off.",
        group="loss",
        lo=0,
    )
    detail_style: float = setting(
        0.0,
        "Weight, relative to the style terms' own, of the paintings' statistics at paint_size held "
        "by a detail level's picture (or tile) reduced to paint_size (multi-scale style): 0 = off, "
        "the default (measured: it helps some pairs and hurts others whole, and a small tile's "
        "reduced statistics pull against the whole painting's).",
        group="loss",
        lo=0,
    )
    loss_normalization: LossNormalization = setting(
        "relative",
        "How content and style terms are scaled: relative (each term divided by its target's "
        "magnitude, its loss at a blank feature map, so that every layer, photo and painting "
        "counts alike) or absolute (mean squared differences, as anishathalye/neural-style and the "
        "study).",
        group="loss",
    )
    # -- optimiser -----------------------------------------------------------------------------
    optimizer: Optimizer = setting("lbfgs", "Optimiser: lbfgs or adam.", group="optimizer")
    pixel_bounds: PixelBounds = setting(
        "box",
        "box: every step is projected back into the 0-255 pixel box, so the image optimised is the "
        "image saved (as L-BFGS-B bounds do in scipy-based ports); free: pixels are unbounded while "
        "optimising and clipped only when saved (the study).",
        group="optimizer",
    )
    iterations: int = setting(40, "Iterations at the full size.", group="optimizer", lo=0, hi=MAX_ITERATIONS)
    coarse_iterations: int = setting(
        100,
        "Iterations at each coarser level (used when scales > 1).",
        group="optimizer",
        lo=0,
        hi=MAX_ITERATIONS,
    )
    level_iterations: tuple[int, ...] = setting(
        (),
        "Iterations per coarse-to-fine level, coarsest first (overrides iterations and "
        "coarse_iterations; e.g. 200,100,30,8 for a 2048 px image in 4 levels).",
        group="optimizer",
    )
    learning_rate: float = setting(
        1e1, "Step size (Adam: per-pixel step, 0-255 units; L-BFGS: lr).", group="optimizer", lo=0
    )
    beta1: float = setting(0.9, "Adam beta1.", group="optimizer", lo=0, hi=1, hi_open=True)
    beta2: float = setting(0.999, "Adam beta2.", group="optimizer", lo=0, hi=1, hi_open=True)
    epsilon: float = setting(1e-8, "Adam epsilon.", group="optimizer", lo=0)
    time_limit: float = setting(
        0.0,
        "Stop after this many seconds of optimisation (0 = no limit); the image so far is brought "
        "to full size. For comparisons on equal wall-clock budgets.",
        group="optimizer",
        lo=0,
    )
    ema_decay: float = setting(
        0.0,
        "Output the exponential moving average of the iterates with this decay (0 = off).",
        group="optimizer",
        lo=0,
        hi=1,
        hi_open=True,
    )
    # -- start and colour ------------------------------------------------------------------------
    initial: str = setting(
        "transported",
        "Initial image: transported (the photo recoloured to the painting's whole colour "
        "distribution by sliced optimal transport), matched (recoloured to the painting's colour "
        "mean and covariance only), content (the photo), noise, style, or the path of an image.",
        group="start",
        named=("transported", "matched", "content", "noise", "style"),
    )
    initial_noiseblend: float = setting(
        0.0,
        "Share of noise blended into the initial image (0 = none, 1 = noise only).",
        group="start",
        lo=0,
        hi=1,
    )
    preserve_color: PreserveColor = setting(
        "none",
        "Keep the photo's colours: luminance (transfer on luminance only) or histogram "
        "(match the painting's colours to the photo first).",
        group="start",
    )
    alpha: AlphaMode = setting(
        "keep",
        "A photo with transparency (a logo, a cut-out subject): keep (the picture carries the "
        "photo's alpha, and transparent pixels do not drive the painting's statistics) or white "
        "(painted on white, opaque).",
        group="start",
    )
    # -- reproducibility and device ------------------------------------------------------------
    seed: int = setting(0, "Random seed (noise, sliced projections).", group="device", lo=0, hi=2**63 - 1)
    device: Device = setting("auto", "Device: auto, cpu, cuda or mps.", group="device")
    precision: Precision = setting(
        "auto",
        "Network arithmetic: auto (bfloat16 autocast on CUDA, float32 elsewhere), float32 or "
        "bfloat16. Losses and the image are always float32.",
        group="device",
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ArtstyleError("invalid configuration: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Everything wrong with the values, as messages naming the field."""
        p: list[str] = []
        for name, tp in field_types().items():
            v = getattr(self, name)
            if tp is float and not math.isfinite(v):
                p.append(f"{name} must be a finite number (got {v})")
            if typing.get_origin(tp) is tuple and any(
                isinstance(x, float) and not math.isfinite(x) for x in v
            ):
                p.append(f"{name} must hold finite numbers (got {', '.join(map(str, v))})")
        if p:
            return p  # the comparisons below are meaningless for NaN
        p += bound_problems(self)
        if 0 < self.paint_size < MIN_SIDE:
            p.append(
                f"paint_size must be 0 (no detail levels) or at least {MIN_SIDE} px (got {self.paint_size})"
            )
        if 0 < self.tile_size < MIN_TILE:
            p.append(f"tile_size must be 0 (automatic) or at least {MIN_TILE} px (got {self.tile_size})")
        if any(not 0 <= n <= MAX_ITERATIONS for n in self.level_iterations):
            p.append(f"level_iterations must each be in [0, {MAX_ITERATIONS}]")
        if self.optimizer == "adam" and not self.learning_rate > 0:
            p.append(f"learning_rate must be positive for adam (got {self.learning_rate})")
        if self.optimizer == "adam" and not self.epsilon > 0:
            p.append(f"epsilon must be positive for adam (got {self.epsilon})")
        if self.level_iterations and len(self.level_iterations) != self.scales:
            p.append(f"level_iterations has {len(self.level_iterations)} entries for {self.scales} scales")
        if any(w < 0 for w in self.style_blend_weights):
            p.append("style_blend_weights must not be negative")
        if self.style_blend_weights and sum(self.style_blend_weights) <= 0:
            p.append("style_blend_weights must not all be zero")
        if not self.content_layers:
            p.append("content_layers must not be empty")
        if not self.style_layers:
            p.append("style_layers must not be empty")
        for name, choices in literal_choices().items():
            if getattr(self, name) not in choices:
                p.append(f"{name} must be one of {', '.join(choices)} (got {getattr(self, name)!r})")
        if self.network in NETWORKS:
            bad = unknown_layers(self.network, [*self.content_layers, *self.style_layers])
            if bad:
                p.append(unknown_layers_message(self.network, bad))
        return p

    def check_paintings(self, n: int) -> None:
        """The settings fit a run with ``n`` paintings (one blend weight each, when given)."""
        if self.style_blend_weights and len(self.style_blend_weights) != n:
            raise ArtstyleError(blend_count_message(len(self.style_blend_weights), n))

    def content_layer_shares(self) -> list[tuple[str, float]]:
        """Content layers with their share of ``content_weight``: the first gets
        ``content_weight_blend``, the rest split ``1 - blend`` equally; zero shares are dropped."""
        layers = self.content_layers
        if len(layers) == 1:
            return [(layers[0], 1.0)]
        rest = (1 - self.content_weight_blend) / (len(layers) - 1)
        shares = [(layers[0], self.content_weight_blend)] + [(name, rest) for name in layers[1:]]
        return [(name, w) for name, w in shares if w > 0]

    @property
    def applied_style_weight(self) -> float:
        """The style weight the objective uses: ``style_weight`` times the multiplier of
        ``style_strength`` (exactly ``style_weight`` at the default strength)."""
        if self.style_strength == DEFAULT_STRENGTH:
            return self.style_weight
        return self.style_weight * strength_multiplier(self.style_strength)

    @property
    def strength_share(self) -> float:
        """How much of the start's departure from the photo (a recoloured start, noise) and of the
        smoothing term a run takes: ``style_strength`` over the default strength, at most 1. At
        strength 0 the start is the photo and nothing but the photo's own features pulls on it,
        so the result is the photo; it rises evenly with the strength; at the default strength
        and above it is 1 (the run as it was)."""
        return min(1.0, self.style_strength / DEFAULT_STRENGTH)

    @property
    def applied_tv_weight(self) -> float:
        """The smoothing the objective uses: ``tv_weight`` times :attr:`strength_share`."""
        return self.tv_weight * self.strength_share

    def active_layers(self) -> list[str]:
        """The layers a run reads (the network is cut after the deepest of them)."""
        return list(
            dict.fromkeys([name for name, _ in self.content_layer_shares()] + list(self.style_layers))
        )

    # -- conversions ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v, tuple) else v for f, v in _items(self)}

    def replace(self, **changes: Any) -> StyleConfig:
        """A copy with ``changes`` applied, coerced and validated like a config file."""
        return from_dict(changes, base=self)


def blend_count_message(given: int, paintings: int) -> str:
    """The one message for blend weights that do not match the paintings."""
    return f"{given} style_blend_weights given for {paintings} paintings; give one per painting"


def _items(cfg: StyleConfig) -> list[tuple[dataclasses.Field[Any], Any]]:
    return [(f, getattr(cfg, f.name)) for f in fields(cfg)]


def field_types() -> dict[str, Any]:
    """The resolved type of every field."""
    return typing.get_type_hints(StyleConfig)


def literal_choices() -> dict[str, tuple[str, ...]]:
    """Fields whose type is a ``Literal``, with their allowed values."""
    return {
        name: typing.get_args(tp) for name, tp in field_types().items() if typing.get_origin(tp) is Literal
    }


def coerce(name: str, value: Any, strict: bool = False) -> Any:
    """Convert ``value`` to the type of field ``name``, or raise ArtstyleError naming the field.
    ``strict`` (JSON from a web form): a number must be a number and a list a list; text is
    converted only where it can only be text (a flag's or a TOML's ``"300"`` is accepted)."""
    types = field_types()
    if name not in types:
        close = [n for n in types if n.split("_")[0] == name.split("_")[0]]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ArtstyleError(f"unknown setting {short_repr(name)}{hint}")
    tp = types[name]
    origin = typing.get_origin(tp)
    try:
        if origin is tuple:
            (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
            if isinstance(value, str) and not strict:
                value = [v for v in (s.strip() for s in value.split(",")) if v]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(_scalar(item, v, strict) for v in value)
        if origin is Literal:
            if not isinstance(value, str):
                raise TypeError
            return value
        return _scalar(tp, value, strict)
    except (TypeError, ValueError):
        raise ArtstyleError(f"setting {name!r} expects {_type_name(tp)}, got {short_repr(value)}") from None


def short_repr(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never echoes a huge value."""
    cut = reprlib.Repr()
    cut.maxstring = cut.maxother = limit
    cut.maxlist = cut.maxdict = 4
    cut.maxlevel = 2
    text = cut.repr(value)
    return text if len(text) <= limit + 10 else text[:limit] + "..."


def _scalar(tp: Any, value: Any, strict: bool = False) -> Any:
    if tp is bool or isinstance(value, bool):
        if tp is bool and isinstance(value, bool):
            return value
        raise TypeError
    if strict and isinstance(value, str) and tp in (int, float):
        raise TypeError
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value)
        if not isinstance(value, int):
            raise TypeError
        return value
    if tp is float:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise TypeError
    if tp is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    raise TypeError


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(typing.get_args(tp))
    if origin is tuple:
        return "a list"
    return {int: "a whole number", float: "a number", str: "a string"}.get(tp, str(tp))


def from_dict(values: dict[str, Any], base: StyleConfig | None = None, strict: bool = False) -> StyleConfig:
    """Apply ``values`` (e.g. from TOML or the CLI) on ``base``; unknown keys and bad types are
    errors (``strict``: see :func:`coerce`)."""
    base = base or StyleConfig()
    coerced = {k: coerce(k, v, strict) for k, v in values.items()}
    return dataclasses.replace(base, **coerced)


#: Named starting points. ``default`` is the dataclass defaults; the two ``study-*`` presets are the
#: two setups of the original study (VGG19 + Adam as in anishathalye/neural-style, VGG16 + L-BFGS).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "study-vgg19-adam": {
        "network": "vgg19",
        "pooling": "max",
        "optimizer": "adam",
        "content_weight": 5e0,
        "content_weight_blend": 1.0,
        "style_weight": 5e2,
        "tv_weight": 1e2,
        "style_layer_weight_exp": 1.0,
        "learning_rate": 1e1,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "style_scale": 1.0,
        "iterations": 100,
        "scales": 1,
        "ema_decay": 0.0,
        "loss_normalization": "absolute",
        "pixel_bounds": "free",
        "initial": "content",
    },
    "study-vgg16-lbfgs": {
        "network": "vgg16",
        "pooling": "max",
        "optimizer": "lbfgs",
        "content_weight": 0.05,
        "content_weight_blend": 1.0,
        "style_weight": 5.0,
        "tv_weight": 1.0,
        "style_layer_weight_exp": 1.0,
        "learning_rate": 1.0,
        "iterations": 100,
        "scales": 1,
        "ema_decay": 0.0,
        "loss_normalization": "absolute",
        "pixel_bounds": "free",
        "initial": "content",
    },
    "fast": {"size": 256, "scales": 2, "iterations": 60, "coarse_iterations": 100},
}


def read_toml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """A TOML file as a dict; a missing, non-regular, non-UTF-8 or malformed file is one ArtstyleError."""
    p = check_regular_file(path, what)
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ArtstyleError(f"{p}: not valid TOML ({e})") from None
    except UnicodeDecodeError:
        raise ArtstyleError(f"{p}: not a text file (TOML must be UTF-8)") from None
    except OSError as e:
        raise ArtstyleError(f"{p}: cannot read ({e.strerror or e})") from None


def layered(
    preset_name: str = "default",
    file: str | os.PathLike[str] | None = None,
    values: dict[str, Any] | None = None,
    strict: bool = False,
) -> StyleConfig:
    """The one place settings are layered: a preset, then a TOML file's settings (errors name the
    file), then ``values`` (flags, a web form (``strict``), an experiment's overrides)."""
    cfg = preset(preset_name or "default")
    if file is not None:
        try:
            cfg = from_dict(read_toml(file), base=cfg)
        except ArtstyleError as e:
            msg = str(e)
            raise ArtstyleError(msg if msg.startswith(str(file)) else f"{file}: {msg}") from None
    return from_dict(values or {}, base=cfg, strict=strict)


def schema() -> dict[str, Any]:
    """Every setting described for a form or another program (JSON-ready): name, type, default,
    help, group, allowed values and bounds; and the presets with their values."""
    types = field_types()
    out = []
    for f in fields(StyleConfig):
        tp = types[f.name]
        origin = typing.get_origin(tp)
        entry: dict[str, Any] = {
            "name": f.name,
            "type": _schema_type(tp),
            "default": list(f.default) if isinstance(f.default, tuple) else f.default,
            "help": f.metadata["doc"],
            "group": f.metadata["group"],
        }
        if origin is Literal:
            entry["choices"] = list(typing.get_args(tp))
        if f.metadata["named"]:
            entry["named"] = list(f.metadata["named"])  # (or a path, where the program reads files)
        if origin is tuple:
            (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
            entry["items"] = _schema_type(item)
        for key in ("lo", "hi"):
            if f.metadata.get(key) is not None:
                entry["minimum" if key == "lo" else "maximum"] = f.metadata[key]
                entry["exclusive_" + ("minimum" if key == "lo" else "maximum")] = f.metadata[f"{key}_open"]
        out.append(entry)
    return {
        "fields": out,
        "presets": {name: preset(name).to_dict() for name in PRESETS},
        # the multiplier at every half percent, so that the page looks it up (the curve is
        # interpolated in one place: strength_multiplier)
        "strength_multipliers": [strength_multiplier(k / 2) for k in range(201)],
    }


def _schema_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "choice"
    if origin is tuple:
        return "list"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(tp, "string")


def preset(name: str) -> StyleConfig:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ArtstyleError(f"unknown preset {short_repr(name)}; choose from {', '.join(PRESETS)}")
    return from_dict(PRESETS[name])


@dataclass
class VideoOptions:
    """What a video adds to :class:`StyleConfig` (each field is a flag of ``artstyle video``)."""

    temporal_weight: float = setting(
        50.0,
        "Weight of the temporal term (the previous frame, warped, where the flow is reliable).",
        group="video",
        lo=0,
    )
    flow: Literal["dis", "farneback"] = setting("dis", "Optical flow.", group="video")
    first_iterations: int = setting(
        0,
        "Iterations of the first frame at full size (0: the settings' own plan).",
        group="video",
        lo=0,
        hi=MAX_ITERATIONS,
    )
    frame_iterations: int = setting(
        20,
        "Iterations of each later frame (full size, from the previous frame warped; 20 measured "
        "against 40: half the time, the same flicker and style, benchmarks/video.py).",
        group="video",
        lo=1,
        hi=MAX_ITERATIONS,
    )
    independent: bool = setting(
        False, "Stylise each frame on its own (flickers; for comparison).", group="video"
    )
    cut_threshold: float = setting(
        27.0,
        "Shot cuts: PySceneDetect's content threshold (lower finds more cuts; 0: the clip is one shot).",
        group="video",
        lo=0,
        hi=255,
    )
    min_shot: int = setting(
        15, "Fewest frames in a shot (a cut closer to the one before is not one).", group="video", lo=1
    )
    chunk_frames: int = setting(
        48,
        "Frames in a chunk: the unit of work a worker takes, that is recorded when finished and "
        "that a lost worker loses.",
        group="video",
        lo=1,
        hi=100000,
    )
    join: Literal["warp", "crossfade"] = setting(
        "warp",
        "How a chunk continues its shot: from the chunk before's last frame warped (no seam; waits "
        "for it), or painted alone and cross-faded over --chunk-overlap frames (in parallel).",
        group="video",
    )
    chunk_overlap: int = setting(
        4, "Frames the chunks of a shot share with --join crossfade.", group="video", lo=1, hi=1000
    )
    fps: float = setting(
        24.0,
        "Frame rate of a folder of frames (a video file keeps its own).",
        group="video",
        lo=0,
        lo_open=True,
        hi=1000,
    )

    def check(self) -> None:
        """The values within their fields' bounds, or one ArtstyleError naming the flags."""
        flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
        problems = [
            f"{flag(f.name)} must be a finite number (got {getattr(self, f.name)})"
            for f in fields(self)
            if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))
        ]
        problems = problems or bound_problems(self, flag)
        if problems:
            raise ArtstyleError("; ".join(problems))
