"""One typed source of truth for every parameter of a run: its name, type, default and meaning.

The CLI, the experiment files and the Python API are all built from :class:`StyleConfig`; nothing
re-declares a default. Names follow Gatys et al. (2015) and the original study
(``content_weight``, ``style_layer_weight_exp``, ``relu4_2`` ...).

Loss normalisations are chosen so that a weight means the same at every image size (see
:mod:`artstyle.losses`), which is what lets the study's weights be used unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from artstyle.errors import ArtstyleError

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


def _f(default: Any, doc: str, *, group: str = "run") -> Any:
    """A dataclass field whose metadata carries the help text shown by every interface."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"doc": doc, "group": group})


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of a style-transfer run. The defaults are the project's default preset.

    How the default was chosen (tubingen x starry night at 512 px, judged by eye and by the race
    script's distances, see benchmarks/race.py): L-BFGS, max pooling, content 5, style 5e3, TV 10,
    2 scales (100 iterations at 256 px, 40 at 512 px). Starting at 128 px instead (3 scales)
    re-paints the painting's composition over the photo (the deep layers' receptive fields span the
    whole image); style 1.5e4 dissolves the houses. With the project's L-BFGS (artstyle.lbfgs),
    150 + 50 iterations look the same by eye as 100 + 40 (final loss 2.25e6 against 2.47e6, style
    distance 0.134 against 0.148) for 1.4x the time; 120 + 35 is equal to 100 + 40; three levels
    a factor sqrt(2) apart (100 + 30 + 20 or 80 + 30 + 25) end at a higher loss.
    """

    # -- network -------------------------------------------------------------------------------
    network: Network = _f("vgg19", "Feature network: vgg19 (Gatys) or vgg16.", group="network")
    weights: str = _f(
        "auto",
        "Weights: auto (vgg19-caffe for vgg19, vgg16-torchvision for vgg16), vgg19-caffe, "
        "vgg19-torchvision, vgg16-torchvision, or the path of a local state dict.",
        group="network",
    )
    pooling: Pooling = _f("max", "Pooling in the network: max or avg (Gatys: avg).", group="network")
    # -- sizes ---------------------------------------------------------------------------------
    size: int = _f(512, "Long side of the output in pixels.", group="size")
    style_scale: float = _f(1.0, "Style image size relative to the output (long side ratio).", group="size")
    scales: int = _f(
        2,
        "Coarse-to-fine levels: 1 optimises at full size only; each level is the next / scale_ratio.",
        group="size",
    )
    scale_ratio: float = _f(2.0, "Size ratio between consecutive coarse-to-fine levels.", group="size")
    coarse_min_size: int = _f(
        256,
        "Coarse levels whose long side would be under this are skipped: below about 256 px the deep "
        "style layers see the whole picture and paint the painting's composition over the photo.",
        group="size",
    )
    # -- content -------------------------------------------------------------------------------
    content_layers: tuple[str, ...] = _f(
        ("relu4_2", "relu5_2"), "Content layers; the first gets content_weight_blend.", group="loss"
    )
    content_weight: float = _f(1.0, "Weight of the content loss.", group="loss")
    content_weight_blend: float = _f(
        1.0,
        "Share of the first content layer (1 = relu4_2 only, as in the study); the rest is split "
        "over the others.",
        group="loss",
    )
    # -- style ---------------------------------------------------------------------------------
    style_layers: tuple[str, ...] = _f(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "Style layers.", group="loss"
    )
    style_weight: float = _f(20.0, "Weight of the style loss.", group="loss")
    style_layer_weight_exp: float = _f(
        1.0,
        "Layer i of the style layers gets weight exp**i, normalised to sum 1 (1 = equal).",
        group="loss",
    )
    style_blend_weights: tuple[float, ...] = _f(
        (), "Weights of several style images, normalised to sum 1 (empty = equal).", group="loss"
    )
    style_loss: StyleLoss = _f(
        "gram",
        "Style statistic: gram (Gatys), mean_cov (Wasserstein-2 of Gaussians), "
        "sliced_wasserstein (Heitz et al. 2021).",
        group="loss",
    )
    tv_weight: float = _f(1e-5, "Weight of the total-variation loss (0-255 pixel units).", group="loss")
    loss_normalization: LossNormalization = _f(
        "relative",
        "How content and style terms are scaled: relative (each term divided by its target's "
        "magnitude, its loss at a blank feature map, so that every layer, photo and painting "
        "counts alike) or absolute (mean squared differences, as anishathalye/neural-style and the "
        "study).",
        group="loss",
    )
    # -- optimiser -----------------------------------------------------------------------------
    optimizer: Optimizer = _f("lbfgs", "Optimiser: lbfgs or adam.", group="optimizer")
    iterations: int = _f(40, "Iterations at the full size.", group="optimizer")
    coarse_iterations: int = _f(
        100, "Iterations at each coarser level (used when scales > 1).", group="optimizer"
    )
    level_iterations: tuple[int, ...] = _f(
        (),
        "Iterations per coarse-to-fine level, coarsest first (overrides iterations and "
        "coarse_iterations; e.g. 200,100,30,8 for a 2048 px image in 4 levels).",
        group="optimizer",
    )
    learning_rate: float = _f(
        1e1, "Step size (Adam: per-pixel step, 0-255 units; L-BFGS: lr).", group="optimizer"
    )
    beta1: float = _f(0.9, "Adam beta1.", group="optimizer")
    beta2: float = _f(0.999, "Adam beta2.", group="optimizer")
    epsilon: float = _f(1e-8, "Adam epsilon.", group="optimizer")
    time_limit: float = _f(
        0.0,
        "Stop after this many seconds of optimisation (0 = no limit); the image so far is brought "
        "to full size. For comparisons on equal wall-clock budgets.",
        group="optimizer",
    )
    ema_decay: float = _f(
        0.0,
        "Output the exponential moving average of the iterates with this decay (0 = off).",
        group="optimizer",
    )
    # -- start and colour ------------------------------------------------------------------------
    initial: str = _f(
        "content", "Initial image: content, noise, style, or the path of an image.", group="start"
    )
    initial_noiseblend: float = _f(
        0.0,
        "Share of noise blended into the initial image (0 = none, 1 = noise only).",
        group="start",
    )
    preserve_color: PreserveColor = _f(
        "none",
        "Keep the photo's colours: luminance (transfer on luminance only) or histogram "
        "(match the painting's colours to the photo first).",
        group="start",
    )
    # -- reproducibility and device ------------------------------------------------------------
    seed: int = _f(0, "Random seed (noise, sliced projections).", group="device")
    device: Device = _f("auto", "Device: auto, cpu, cuda or mps.", group="device")
    precision: Precision = _f(
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
        if not 0 <= self.seed < 2**63:
            p.append(f"seed must be between 0 and 2**63 - 1 (got {self.seed})")
        if self.scales > MAX_SCALES:
            p.append(f"scales must be at most {MAX_SCALES} (got {self.scales})")
        if self.style_scale > 16:
            p.append(f"style_scale must be at most 16 (got {self.style_scale})")
        if any(n > MAX_ITERATIONS for n in (self.iterations, self.coarse_iterations, *self.level_iterations)):
            p.append(f"iterations must be at most {MAX_ITERATIONS}")
        if self.optimizer == "adam" and not self.learning_rate > 0:
            p.append(f"learning_rate must be positive for adam (got {self.learning_rate})")
        if self.optimizer == "adam" and not self.epsilon > 0:
            p.append(f"epsilon must be positive for adam (got {self.epsilon})")
        if self.coarse_min_size < 32:
            p.append(f"coarse_min_size must be at least 32 (got {self.coarse_min_size})")
        if self.size < 32:
            p.append(f"size must be at least 32 (got {self.size})")
        if self.size > 16384:
            p.append(f"size must be at most 16384 (got {self.size})")
        for name in ("style_scale", "scale_ratio", "style_layer_weight_exp"):
            if not getattr(self, name) > 0:
                p.append(f"{name} must be positive (got {getattr(self, name)})")
        if self.scale_ratio <= 1:
            p.append(f"scale_ratio must be above 1 (got {self.scale_ratio})")
        if self.scales < 1:
            p.append(f"scales must be at least 1 (got {self.scales})")
        if self.level_iterations and len(self.level_iterations) != self.scales:
            p.append(f"level_iterations has {len(self.level_iterations)} entries for {self.scales} scales")
        if self.iterations < 0 or self.coarse_iterations < 0 or any(n < 0 for n in self.level_iterations):
            p.append("iterations must not be negative")
        for name in ("content_weight", "style_weight", "tv_weight", "learning_rate", "epsilon", "time_limit"):
            if getattr(self, name) < 0:
                p.append(f"{name} must not be negative (got {getattr(self, name)})")
        for name in ("content_weight_blend", "initial_noiseblend"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                p.append(f"{name} must be between 0 and 1 (got {v})")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                p.append(f"{name} must be at least 0 and below 1 (got {v})")
        if not 0 <= self.ema_decay < 1:
            p.append(f"ema_decay must be in [0, 1) (got {self.ema_decay})")
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
        return p

    def content_layer_shares(self) -> list[tuple[str, float]]:
        """Content layers with their share of ``content_weight``: the first gets
        ``content_weight_blend``, the rest split ``1 - blend`` equally; zero shares are dropped."""
        layers = self.content_layers
        if len(layers) == 1:
            return [(layers[0], 1.0)]
        rest = (1 - self.content_weight_blend) / (len(layers) - 1)
        shares = [(layers[0], self.content_weight_blend)] + [(name, rest) for name in layers[1:]]
        return [(name, w) for name, w in shares if w > 0]

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


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` to the type of field ``name``, or raise ArtstyleError naming the field."""
    types = field_types()
    if name not in types:
        close = [n for n in types if n.split("_")[0] == name.split("_")[0]]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ArtstyleError(f"unknown setting {name!r}{hint}")
    tp = types[name]
    origin = typing.get_origin(tp)
    try:
        if origin is tuple:
            (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
            if isinstance(value, str):
                value = [v for v in (s.strip() for s in value.split(",")) if v]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(_scalar(item, v) for v in value)
        if origin is Literal:
            if not isinstance(value, str):
                raise TypeError
            return value
        return _scalar(tp, value)
    except (TypeError, ValueError):
        raise ArtstyleError(f"setting {name!r} expects {_type_name(tp)}, got {value!r}") from None


def _scalar(tp: Any, value: Any) -> Any:
    if tp is bool or isinstance(value, bool):
        if tp is bool and isinstance(value, bool):
            return value
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


def from_dict(values: dict[str, Any], base: StyleConfig | None = None) -> StyleConfig:
    """Apply ``values`` (e.g. from TOML or the CLI) on ``base``; unknown keys and bad types are errors."""
    base = base or StyleConfig()
    coerced = {k: coerce(k, v) for k, v in values.items()}
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
    },
    "fast": {"size": 256, "scales": 2, "iterations": 60, "coarse_iterations": 100},
}


def preset(name: str) -> StyleConfig:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ArtstyleError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return from_dict(PRESETS[name])
