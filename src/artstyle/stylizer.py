"""The run: a :class:`Stylizer` paints photos in the style of its paintings, level by level.

:meth:`Stylizer.iter_stylize` is a generator of :class:`Step` (one per iteration) and does no
I/O, so the callers decide about progress bars, checkpoints and Ctrl-C. :func:`stylize` is the
one-call convenience.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

from artstyle import color
from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.images import as_image, load_image, resize, to_image, to_tensor
from artstyle.masks import as_masks, mask_tensor
from artstyle.network import VGGFeatures, check_layers
from artstyle.objective import Objective, StyleTargets, Term, network_features, use_amp
from artstyle.optimizers import LevelRun
from artstyle.pyramid import level_plan, style_size, upsample
from artstyle.runtime import (
    Log,
    check_memory,
    get_weights,
    out_of_memory_message,
    peak_memory_mb,
    reset_peak_memory,
    resolve_device,
)
from artstyle.weights import _quiet

#: More terms for the objective's last level, given its size (w, h).
ExtraTerms = Callable[[tuple[int, int]], list[Term]]


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


def prepare_images(
    content: Image.Image, styles: Sequence[Image.Image], cfg: StyleConfig
) -> tuple[Image.Image, list[Image.Image]]:
    """Apply colour preservation to the inputs (before the transfer)."""
    if cfg.preserve_color == "luminance":
        return color.luminance_image(content), [color.luminance_image(s, like=content) for s in styles]
    if cfg.preserve_color == "histogram":
        return content, [color.match_color(s, content) for s in styles]
    return content, list(styles)


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
    elif cfg.initial == "matched":  # the photo in the painting's colours: a head start for relu1_1
        x = to_tensor(color.match_color(to_image(content), style_img), content.device)
    elif cfg.initial == "transported":  # the photo in the painting's whole colour distribution
        x = to_tensor(color.transport_color(to_image(content), style_img), content.device)
    else:
        x = to_tensor(resize(load_image(cfg.initial), (w, h)), content.device)
    if cfg.initial_noiseblend > 0:
        noise = torch.rand(content.shape, generator=gen).to(content) * 255
        x = (1 - cfg.initial_noiseblend) * x + cfg.initial_noiseblend * noise
    return x


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

    #: Settings a derived Stylizer may change: they decide how long and from where it optimises,
    #: not the network or the paintings' targets, which it shares.
    DERIVABLE = frozenset(
        {"iterations", "coarse_iterations", "level_iterations", "scales", "time_limit", "initial", "seed"}
    )

    def derive(self, **changes: Any) -> Stylizer:
        """A Stylizer with some run settings changed (:data:`DERIVABLE`) that shares this one's
        network and cached targets: a video's later frames run shorter, from the previous frame."""
        wrong = set(changes) - self.DERIVABLE
        if wrong:
            raise ArtstyleError(f"a derived Stylizer cannot change {', '.join(sorted(wrong))}")
        other = Stylizer(self.styles, self.cfg.replace(**changes), log=self.log)
        other._net, other._targets = self.net, self._targets
        return other

    def start_image(self, content: Any) -> Image.Image:
        """The configured start (``initial``) for ``content``, at its size."""
        content = as_image(content, "content")
        content_in, styles_in = prepare_images(content, self.styles, self.cfg)
        c = to_tensor(content_in, self.device)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        return to_image(_initial(self.cfg, c, styles_in[0], gen))

    @property
    def net(self) -> VGGFeatures:
        if self._net is None:
            cfg = self.cfg
            weights = get_weights(cfg, self.log)
            self._net = VGGFeatures(cfg.network, weights, cfg.active_layers(), cfg.pooling).to(self.device)
        return self._net

    def iter_stylize(
        self, content: Any, initial: Any = None, masks: Any = None, terms: ExtraTerms | None = None
    ) -> Iterator[Step]:
        """Run the optimisation, yielding a :class:`Step` after every iteration. ``masks``: one
        per painting (paths, PIL images or arrays; white where it applies; see
        :mod:`artstyle.masks`), or None for every painting everywhere. ``terms``: called with the
        full size (w, h), returns more terms of the objective for the last level (a video's
        temporal term).

        Raises NonFiniteLossError (with the last good output, or None when no iteration had a finite
        loss) if the loss stops being finite, and ArtstyleError when memory runs out.
        """
        cfg = self.cfg
        content = as_image(content, "content")
        start = None if initial is None else as_image(initial, "initial")
        if masks is not None:
            masks = as_masks(masks, len(self.styles))
            if cfg.style_loss != "gram":
                raise ArtstyleError(f"style masks work with style_loss gram, not {cfg.style_loss}")
        preflight(content.size, [s.size for s in self.styles], cfg, self.device)
        try:
            yield from self._iterate(content, start, masks, terms)
        except torch.OutOfMemoryError:
            raise ArtstyleError(out_of_memory_message(cfg)) from None
        except RuntimeError as e:
            if "alloc" in str(e) and "memory" in str(e):
                raise ArtstyleError(out_of_memory_message(cfg)) from None
            raise

    def stylize(
        self,
        content: Any,
        initial: Any = None,
        callback: Callable[[Step], None] | None = None,
        masks: Any = None,
        terms: ExtraTerms | None = None,
    ) -> StyleResult:
        """Paint ``content``; see the class (``masks``, ``terms``: see :meth:`iter_stylize`). Ctrl-C ends the
        run early and returns the output so far, at full size, with ``interrupted=True``."""
        cfg, device = self.cfg, self.device
        content = as_image(content, "content")
        history: list[dict[str, Any]] = []
        last: Step | None = None
        interrupted = False
        reset_peak_memory(device)
        t0 = time.perf_counter()
        try:
            for step in self.iter_stylize(content, initial, masks, terms):
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
            output = upsample(output, full)
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

    def _start(
        self,
        c: torch.Tensor,
        styles_in: list[Image.Image],
        masks: list[torch.Tensor] | None,
        gen: torch.Generator,
    ) -> torch.Tensor:
        """The configured start; with masks, each region starts from its own painting's start and
        the rest from the photo."""
        cfg = self.cfg
        if masks is None or cfg.initial not in ("matched", "transported", "style"):
            return _initial(cfg, c, styles_in[0], gen)
        cover = torch.stack(masks).sum(0).clamp_min(1.0)  # (overlapping masks share the pixel)
        x = c * (1 - torch.stack(masks).sum(0).clamp_max(1.0))
        for m, s in zip(masks, styles_in, strict=True):
            x = x + m / cover * _initial(cfg, c, s, gen)
        return x

    def _iterate(
        self,
        content: Image.Image,
        start: Image.Image | None,
        masks: list[Image.Image] | None = None,
        terms: ExtraTerms | None = None,
    ) -> Iterator[Step]:
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
        carried: Any = None
        for level, (size, budget) in enumerate(levels, start=1):
            c = to_tensor(resize(content_in, size), device)
            targets = self._style_targets(styles_in, size, gen)
            level_masks = None if masks is None else [mask_tensor(m, size, device) for m in masks]
            objective = Objective(net, cfg, c, targets, masks=level_masks)
            if terms is not None and level == len(levels):
                objective.terms += terms(size)
            if x is None:
                x = (
                    self._start(c, styles_in, level_masks, gen)
                    if start is None
                    else to_tensor(resize(start, size), device)
                )
            else:
                x = upsample(x, size)
                ema = upsample(ema, size) if ema is not None else None
            run = LevelRun(objective, x, cfg, carried)
            for _ in range(budget):
                record = run.step()
                it += 1
                if not math.isfinite(record["total"]):
                    last = ema if ema is not None else run.best_x
                    if not math.isfinite(run.best_loss) and level == 1:
                        last = None  # no iteration had a finite loss: there is no good image
                    elif size != full:
                        last = upsample(last, full)
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
                        out = upsample(out, full)
                    yield Step(it, it, level, len(levels), full, dict(record), elapsed, out)
                    return
                yield Step(it, total, level, len(levels), size, dict(record), elapsed, out)
            if level < len(levels):
                carried = run.carry(levels[level][0])
            x = (ema if ema is not None else run.best_x).detach()
        if total == 0:
            c = to_tensor(resize(content_in, full), device)
            x = (
                _initial(cfg, c, styles_in[0], gen)
                if start is None
                else to_tensor(resize(start, full), device)
            )
            yield Step(0, 0, len(levels), len(levels), full, {}, time.perf_counter() - t0, x)


def preflight(
    content_size: tuple[int, int],
    style_sizes: Sequence[tuple[int, int]],
    cfg: StyleConfig,
    device: torch.device,
) -> None:
    """What fails before any work: a photo the network cannot read at this size, and (on the CPU)
    a run that needs more memory than there is (and layers the network does not have)."""
    check_layers(cfg.network, [*cfg.content_layers, *cfg.style_layers])
    level_plan(content_size, cfg)
    if device.type == "cpu":
        check_memory(content_size, style_sizes, cfg)


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
    masks: Any = None,
    log: Log = _quiet,
    **overrides: Any,
) -> StyleResult:
    """Paint ``content`` in the style of ``styles``; returns the image and its loss history.

    ``content`` and each of ``styles`` may be a path, a PIL image or a numpy array, normalised as
    the CLI loads files (EXIF orientation, 16-bit, alpha, ...); ``styles`` may be one painting or a
    list. Anything else raises ArtstyleError.

    ``config`` (default: the project's default) is updated with ``overrides`` (any StyleConfig
    field, e.g. ``style_weight=1e4``). ``callback`` sees every :class:`Step`. Ctrl-C ends the run
    early and returns the output so far with ``interrupted=True``. ``masks``: one per painting,
    white where it applies (:mod:`artstyle.masks`). For many photos of the same paintings use a
    :class:`Stylizer`.
    """
    if content is None:
        raise ArtstyleError("content: a photo is needed (a path, PIL image or numpy array)")
    return Stylizer(styles, config, log=log, **overrides).stylize(content, callback=callback, masks=masks)
