"""The run: a :class:`Stylizer` paints photos in the style of its paintings, level by level.

:meth:`Stylizer.iter_stylize` is a generator of :class:`Step` (one per iteration) and does no
I/O, so the callers decide about progress bars, checkpoints and Ctrl-C. :func:`stylize` is the
one-call convenience.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

from artstyle.config import StyleConfig
from artstyle.engine import color
from artstyle.engine.masks import (
    alpha_masks,
    as_masks,
    kept_alpha,
    kept_transparency,
    mask_tensor,
    with_alpha,
)
from artstyle.engine.objective import Detail, Objective, StyleTargets, Term, network_features, use_amp
from artstyle.engine.painter import LocalPainter, TileJob, TilePainter
from artstyle.engine.plan import Level, Plan, plan_run
from artstyle.engine.pyramid import native_layers, used_sides
from artstyle.engine.runtime import (
    check_memory,
    get_weights,
    memory_budget,
    out_of_memory_message,
    peak_memory_mb,
    reset_peak_memory,
    resolve_device,
)
from artstyle.engine.tiles import Blend
from artstyle.errors import ArtstyleError, NonFiniteLossError, setting
from artstyle.images.decode import STRAIGHT, as_image, load_image
from artstyle.images.geometry import resize, to_image, to_tensor, upsample
from artstyle.log import Log, quiet
from artstyle.model.network import VGGFeatures
from artstyle.model.optimizers import LevelRun, optimizer_for

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
    tile: tuple[int, int, int, int] | None = None  # at a tiled level: (pass, passes, tile, tiles), 1-based

    def record(self) -> dict[str, Any]:
        """The step as the sidecar's history records it."""
        return {
            "iteration": self.iteration,
            "scale": self.scale,
            "width": self.size[0],
            "height": self.size[1],
            "seconds": round(self.seconds, 4),
            **self.losses,
            **({"tile": list(self.tile)} if self.tile else {}),
        }


@dataclass
class RunState:
    """Where a run can be taken up again after a kill: level ``level`` (1-based) starts from
    ``image`` (at its size), or, at a tiled level, pass ``pass_index`` (0-based) starts from
    ``image`` with ``tiles_done`` of its tiles already made. ``iteration``: steps done before;
    ``carried``: what the optimiser carried into the level (L-BFGS's curvature scale; None for
    Adam, whose moments are not kept)."""

    level: int
    image: torch.Tensor
    iteration: int
    carried: float | None = None
    pass_index: int = 0
    tiles_done: list[torch.Tensor] = field(default_factory=list)


def state_problem(state: RunState, plan: Plan) -> str | None:
    """What makes ``state`` unusable for a run of ``plan`` (a level, pass or tile it does not have,
    a picture or tile of another size, a step count past its end), or None when it fits."""
    if not isinstance(state.level, int) or not 1 <= state.level <= len(plan.levels):
        return f"level {state.level} of a plan of {len(plan.levels)}"
    if not isinstance(state.iteration, int) or not 0 <= state.iteration <= plan.total_iterations:
        return f"step {state.iteration} of {plan.total_iterations}"
    level = plan.levels[state.level - 1]
    w, h = level.size
    if tuple(state.image.shape) != (1, 3, h, w):
        return f"a picture of shape {tuple(state.image.shape)} for a level of {w}x{h}"
    if not level.passes:
        return "tiles for a level that is not tiled" if state.tiles_done or state.pass_index else None
    if not isinstance(state.pass_index, int) or not 0 <= state.pass_index < len(level.passes):
        return f"pass {state.pass_index} of {len(level.passes)}"
    tiles = level.passes[state.pass_index].tiles
    if len(state.tiles_done) > len(tiles):
        return f"{len(state.tiles_done)} tiles of a pass of {len(tiles)}"
    for t, made in zip(tiles, state.tiles_done, strict=False):
        if made.shape[-2:] != (t.y1 - t.y0, t.x1 - t.x0) or made.numel() != 3 * (t.y1 - t.y0) * (t.x1 - t.x0):
            return f"a tile of shape {tuple(made.shape)} where the plan has {t.x1 - t.x0}x{t.y1 - t.y0}"
    return None


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
    #: the full-size result before it was rounded to 8 bits (1, 3, H, W) in 0-255 (16-bit outputs)
    output: torch.Tensor | None = field(default=None, repr=False)


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
        x = to_tensor(resize(load_image(cfg.initial, max(w, h)), (w, h)), content.device)
    if cfg.initial_noiseblend > 0:
        noise = torch.rand(content.shape, generator=gen).to(content) * 255
        x = (1 - cfg.initial_noiseblend) * x + cfg.initial_noiseblend * noise
    share = cfg.strength_share  # (under the default strength the start leans to the photo: 0 is it)
    return x if share >= 1 else content + share * (x - content)


def as_styles(styles: Any, need: int | None = None) -> list[Image.Image]:
    """The paintings as the CLI would load them (see :func:`images.as_image`; ``need``: the longest
    side a run uses them at): one path, PIL image or numpy array, or a list of them."""
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
    return [as_image(s, n, need) for s, n in zip(styles, named, strict=True)]


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
        self, styles: Any, config: StyleConfig | None = None, *, log: Log = quiet, **settings: Any
    ) -> None:
        self.cfg = cfg = _as_config(config, settings)
        #: The longest side a run uses the photo and the paintings at: a file given as a path is
        #: decoded no larger than that, as the command line reads it (a huge file costs what it is used at)
        self.photo_side, painting_side = used_sides(cfg)
        self.styles = as_styles(styles, painting_side)
        cfg.check_paintings(len(self.styles))
        self.device = resolve_device(cfg.device)
        self.log = log
        self._net: VGGFeatures | None = None
        #: Paints a tiled level's tiles (:mod:`artstyle.engine.painter`; a Ray cluster:
        #: :mod:`artstyle.runs.cluster`); None: here, with this stylizer's network.
        self.painter: TilePainter | None = None
        self._targets: dict[tuple[Any, ...], StyleTargets] = {}

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

    def plan(self, content: Any, masks: bool = False) -> Plan:
        """The plan of a run on ``content`` (a photo or its size), with ``masks`` or not, checked
        before any work (:func:`preflight`). Pass it to :meth:`stylize` so that it is made once
        per run."""
        if not isinstance(content, tuple):
            image = as_image(content, "content", self.photo_side)
            content, masks = image.size, masks or kept_alpha(image, self.cfg) is not None
        return preflight(content, [s.size for s in self.styles], self.cfg, self.device, masks)

    def start_image(self, content: Any) -> Image.Image:
        """The configured start (``initial``) for ``content``, at its size."""
        content = as_image(content, "content", self.photo_side)
        content_in, styles_in = prepare_images(content, self.styles, self.cfg)
        c = to_tensor(content_in, self.device)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        return to_image(_initial(self.cfg, c, styles_in[0], gen))

    @property
    def net(self) -> VGGFeatures:
        if self._net is None:
            self._net = build_network(self.cfg, self.device, self.log)
        return self._net

    def iter_stylize(
        self,
        content: Any,
        initial: Any = None,
        masks: Any = None,
        terms: ExtraTerms | None = None,
        plan: Plan | None = None,
        resume: RunState | None = None,
        on_state: Callable[[RunState], None] | None = None,
    ) -> Iterator[Step]:
        """Run the optimisation, yielding a :class:`Step` after every iteration (at a tiled level,
        every iteration of every tile). ``masks``: one per painting (paths, PIL images or arrays;
        white where it applies; see :mod:`artstyle.engine.masks`), or None for every painting everywhere.
        ``terms``: called with the full size (w, h), returns more terms of the objective for the
        last level (a video's temporal term). ``plan``: the run's levels (default: :meth:`plan`,
        checked here). ``on_state`` is handed a :class:`RunState` at the start of every level and
        pass and after every tile; ``resume`` takes one up again.

        Raises NonFiniteLossError (with the last good output, or None when no iteration had a finite
        loss) if the loss stops being finite, and ArtstyleError when memory runs out.
        """
        content = as_image(content, "content", self.photo_side)
        start = None if initial is None else as_image(initial, "initial", self.photo_side)
        if masks is not None:
            masks = as_masks(masks, len(self.styles))
        alpha = kept_alpha(content, self.cfg)
        if alpha is not None:  # (its alpha guides every painting; its colours are not put on white)
            masks = alpha_masks(alpha, masks, len(self.styles))
            content = content.info[STRAIGHT]
        if plan is None:
            plan = self.plan(content.size, masks is not None)
        if terms is not None and plan.levels[-1].passes:
            raise ArtstyleError(
                f"a video's frames are painted whole, and {plan.full[0]}x{plan.full[1]} needs tiles here; "
                f"lower {setting('size')} or raise {setting('max_memory')}"
            )
        try:
            yield from _Run(self, content, plan, start, masks, terms, resume, on_state).steps()
        except torch.OutOfMemoryError:
            raise ArtstyleError(out_of_memory_message(self.cfg)) from None
        except RuntimeError as e:
            if "alloc" in str(e) and "memory" in str(e):
                raise ArtstyleError(out_of_memory_message(self.cfg)) from None
            raise

    def stylize(
        self,
        content: Any,
        initial: Any = None,
        callback: Callable[[Step], None] | None = None,
        masks: Any = None,
        terms: ExtraTerms | None = None,
        plan: Plan | None = None,
        resume: RunState | None = None,
        on_state: Callable[[RunState], None] | None = None,
    ) -> StyleResult:
        """Paint ``content``; see the class (the rest: see :meth:`iter_stylize`).
        Ctrl-C ends the run early and returns the output so far, at full size, with
        ``interrupted=True``."""
        cfg, device = self.cfg, self.device
        content = as_image(content, "content", self.photo_side)
        if plan is None:
            plan = self.plan(content.size, masks is not None or kept_alpha(content, cfg) is not None)
        history: list[dict[str, Any]] = []
        last: Step | None = None
        interrupted = False
        reset_peak_memory(device)
        t0 = time.perf_counter()
        try:
            for step in self.iter_stylize(content, initial, masks, terms, plan, resume, on_state):
                last = step
                history.append(step.record())
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
        final = at_size(last.output, plan.full)
        return StyleResult(
            image=finish_image(final, content, cfg),
            output=final.detach(),
            config=cfg,
            history=history,
            weights_id=get_weights(cfg).weights_id,
            device=str(device),
            timings={"total_s": time.perf_counter() - t0, "optimise_s": last.seconds},
            peak_memory_mb=peak_memory_mb(device),
            interrupted=interrupted,
        )

    def style_targets(self, styles_in: list[Image.Image], level: Level, gen: torch.Generator) -> StyleTargets:
        """The paintings' style terms at ``level`` (cached by size when they do not depend on the
        photo)."""
        cached = self.cfg.preserve_color == "none"
        key = (level.size, level.style_sizes, level.native_sizes)
        if cached and key in self._targets:
            return self._targets[key]
        ss, native = (
            [to_tensor(resize(s, size), self.device) for s, size in zip(styles_in, sizes, strict=True)]
            if sizes
            else []
            for sizes in (level.style_sizes, level.native_sizes)
        )
        features = partial(network_features, self.net, use_amp(self.cfg, self.device))
        targets = StyleTargets.build(
            features, self.cfg, ss, gen, tile=level.tile, native=native, native_layers=native_layers(self.cfg)
        )
        if cached:
            self._targets[key] = targets
        return targets

    def start(
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


class Average:
    """The output of a run so far: the best iterate, or with ``ema_decay`` > 0 the exponential
    moving average of the iterates (``a <- decay a + (1 - decay) x``), carried across levels."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.ema: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        if self.decay <= 0:
            return
        with torch.no_grad():
            if self.ema is None:
                self.ema = x.detach().clone()
            else:
                self.ema.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)

    def output(self, run: LevelRun) -> torch.Tensor:
        """What the run would output now."""
        return self.ema if self.ema is not None else run.best_x

    def resize(self, size: tuple[int, int]) -> None:
        """Carry the average to the next level's size."""
        if self.ema is not None:
            self.ema = upsample(self.ema, size)


def at_size(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` at ``size`` (w, h): a run stopped at a coarse level (time limit, NaN, Ctrl-C) still
    gives a full-size image. The one place an output is brought to full size."""
    return x if (x.shape[-1], x.shape[-2]) == size else upsample(x, size)


def stop_reason(record: dict[str, float], elapsed: float, cfg: StyleConfig) -> str | None:
    """The rules that end a run early, after an iteration: ``nonfinite`` (the loss is NaN or
    infinite) or ``time`` (``time_limit`` seconds have passed); None to go on."""
    if not math.isfinite(record["total"]):
        return "nonfinite"
    if cfg.time_limit and elapsed >= cfg.time_limit:
        return "time"
    return None


def build_network(cfg: StyleConfig, device: torch.device, log: Log = quiet) -> VGGFeatures:
    """The feature network of ``cfg`` on ``device``, cut after the deepest layer it reads."""
    weights = get_weights(cfg, log)
    return VGGFeatures(cfg.network, weights, cfg.active_layers(), cfg.pooling).to(device)


class _TimeUp(Exception):
    """The time limit ended the run (its last step has been yielded)."""


class _Run:
    """One run of a :class:`Stylizer` over a :class:`Plan`, level by level (:meth:`steps`)."""

    def __init__(
        self,
        stylizer: Stylizer,
        content: Image.Image,
        plan: Plan,
        start: Image.Image | None,
        masks: list[Image.Image] | None,
        terms: ExtraTerms | None,
        resume: RunState | None = None,
        on_state: Callable[[RunState], None] | None = None,
    ) -> None:
        self.stylizer, self.cfg, self.device = stylizer, stylizer.cfg, stylizer.device
        self.content, self.plan, self.start, self.masks, self.terms = content, plan, start, masks, terms
        self.resume, self.on_state = resume, on_state
        self.t0 = time.perf_counter()
        self.it = 0
        self.current: torch.Tensor | None = None  # a tiled level's picture so far

    def first_image(
        self, c: torch.Tensor, styles_in: list[Image.Image], masks: Any, gen: torch.Generator
    ) -> torch.Tensor:
        """The start at ``c``'s size: the given image, or the configured start."""
        if self.start is not None:
            return to_tensor(resize(self.start, (c.shape[-1], c.shape[-2])), self.device)
        return self.stylizer.start(c, styles_in, masks, gen)

    def level_masks(self, size: tuple[int, int]) -> list[torch.Tensor] | None:
        return None if self.masks is None else [mask_tensor(m, size, self.device) for m in self.masks]

    def save(self, state: RunState) -> None:
        if self.on_state is not None:
            self.on_state(state)

    def steps(self) -> Iterator[Step]:
        try:
            yield from self._steps()
        except _TimeUp:
            return

    def _steps(self) -> Iterator[Step]:
        cfg, plan, device = self.cfg, self.plan, self.device
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        content_in, styles_in = prepare_images(self.content, self.stylizer.styles, cfg)
        n, full = len(plan.levels), plan.full
        if plan.total_iterations == 0:  # nothing to optimise: the start, at full size
            c = to_tensor(resize(content_in, full), device)
            x = self.first_image(c, styles_in, self.level_masks(full), gen)
            yield Step(0, 0, n, n, full, {}, time.perf_counter() - self.t0, x)
            return
        resume = self.resume
        self.it = resume.iteration if resume else 0
        x: torch.Tensor | None = None
        average = Average(cfg.ema_decay)
        carried: Any = resume.carried if resume else None
        for number, level in enumerate(plan.levels, start=1):
            if resume and number < resume.level:
                continue
            size = level.size
            c_img = resize(content_in, size)
            targets = self.stylizer.style_targets(styles_in, level, gen)
            detail = self.detail(level, styles_in, gen)
            masks = self.level_masks(size)
            if resume and number == resume.level:
                x = resume.image.to(device)
            elif x is None:
                x = self.first_image(to_tensor(c_img, device), styles_in, masks, gen)
            else:
                x = upsample(x, size)
                average.resize(size)
            if level.passes:
                here = resume if resume and number == resume.level else None
                x, carried = yield from self.tiled_level(
                    number, level, c_img, targets, detail, masks, x, carried, here
                )
                average.ema = None  # (the average restarts after a tiled level)
                continue
            self.save(RunState(number, x, self.it, optimizer_for(cfg).kept(carried)))
            objective = Objective(self.stylizer.net, cfg, to_tensor(c_img, device), targets, masks=masks)
            if detail is not None:
                objective.terms += detail.terms(objective, x, cfg)
            if self.terms is not None and number == n:
                objective.terms += self.terms(size)
            run = LevelRun(objective, x, cfg, carried)
            for _ in range(level.iterations):
                record = run.step()
                self.it += 1
                reason = stop_reason(record, time.perf_counter() - self.t0, cfg)
                if reason == "nonfinite":
                    raise self.nonfinite(
                        record, average.output(run), not math.isfinite(run.best_loss) and number == 1
                    )
                average.update(run.x)
                yield from self.step(number, level, record, average.output(run), reason)
            if number < n:
                carried = run.carry(plan.levels[number].size)
            x = average.output(run).detach()
            del run, objective  # (the next level is built without this one's memory)

    def detail(self, level: Level, styles_in: list[Image.Image], gen: torch.Generator) -> Detail | None:
        """What holds ``level`` to the picture below, when it is a detail level (the plan says how:
        :class:`~artstyle.engine.plan.Level`): the anchor, and the paintings' terms at the size the
        picture was painted at."""
        if level.painted is None:
            return None
        painted = self.plan.levels[level.painted]
        held = level.look and self.masks is None  # (with masks the look of the whole is left out)
        look = self.stylizer.style_targets(styles_in, painted, gen) if held else None
        return Detail(level.anchor, look, level.look or 1.0)

    def step(
        self,
        number: int,
        level: Level,
        record: dict[str, float],
        out: torch.Tensor,
        reason: str | None,
        tile: tuple[int, int, int, int] | None = None,
    ) -> Iterator[Step]:
        """The step just made (or, when the time is up, the last one, at full size)."""
        n, full, elapsed = len(self.plan.levels), self.plan.full, time.perf_counter() - self.t0
        if reason == "time":
            yield Step(self.it, self.it, number, n, full, dict(record), elapsed, at_size(out, full), tile)
            raise _TimeUp
        yield Step(
            self.it, self.plan.total_iterations, number, n, level.size, dict(record), elapsed, out, tile
        )

    def tiled_level(
        self,
        number: int,
        level: Level,
        c_img: Image.Image,
        targets: StyleTargets,
        detail: Detail | None,
        masks: list[torch.Tensor] | None,
        x: torch.Tensor,
        carried: Any,
        resume: RunState | None,
    ) -> Generator[Step, None, tuple[torch.Tensor, Any]]:
        """A level in tiles (:mod:`artstyle.engine.tiles`): each pass's tiles start from the pass's
        picture, are painted by the stylizer's painter (:mod:`artstyle.engine.painter`: here, or on
        Ray) and are blended with feathered weights in tile order; the grid moves between passes.
        Returns the picture and what the optimiser carries to the next level."""
        device, optimizer = self.device, optimizer_for(self.cfg)
        painter = self.stylizer.painter or LocalPainter(self.stylizer.net, self.cfg, device)
        following = self.plan.levels[number].size if number < len(self.plan.levels) else None
        content = np.asarray(c_img)
        last_carry: Any = None
        first_pass = resume.pass_index if resume else 0
        for p, ps in enumerate(level.passes):
            if p < first_pass:
                continue
            done = list(resume.tiles_done) if resume and p == first_pass else []
            if not done:
                self.save(RunState(number, x, self.it, optimizer.kept(carried), p))
            blend = Blend(x, level.overlap)
            for t, made in zip(ps.tiles, done, strict=False):
                blend.add(t, made.to(device))
            self.current = blend.result(x)
            jobs = [
                TileJob(
                    k,
                    t,
                    content[t.y0 : t.y1, t.x0 : t.x1].copy(),
                    t.crop(x),
                    None if masks is None else [t.crop(m) for m in masks],
                    optimizer.for_tile(carried, level.size, t),
                )
                for k, t in enumerate(ps.tiles)
                if k >= len(done)
            ]
            for step in painter.paint(targets, jobs, ps.iterations, following, detail):
                self.it += 1
                reason = stop_reason(step.record, time.perf_counter() - self.t0, self.cfg)
                if reason == "nonfinite":
                    raise self.nonfinite(step.record, self.current, False)
                if (step.last or reason == "time") and step.image is not None:  # the tile: into the picture
                    made = step.image.to(device)
                    blend.add(ps.tiles[step.index], made)
                    done.append(made)
                    self.current = blend.result(x)
                where = (p + 1, len(level.passes), step.index + 1, len(ps.tiles))
                yield from self.step(number, level, step.record, self.current, reason, where)
                if step.last:
                    self.save(RunState(number, x, self.it, optimizer.kept(carried), p, list(done)))
                    last_carry = step.carry
            x = blend.result(x)
        return x, optimizer.from_tiles(last_carry) if following else None

    def nonfinite(
        self, record: dict[str, float], last: torch.Tensor | None, none_good: bool
    ) -> NonFiniteLossError:
        """The error of a loss that became NaN or infinite, with the last good image at full size
        (None when no iteration had a finite loss)."""
        return NonFiniteLossError(
            f"the loss became {record['total']} at iteration {self.it}; stopping (try smaller "
            "weights or learning rate)",
            last_good=None if last is None or none_good else at_size(last, self.plan.full).detach().clone(),
        )


def preflight(
    content_size: tuple[int, int],
    style_sizes: Sequence[tuple[int, int]],
    cfg: StyleConfig,
    device: torch.device,
    masks: bool = False,
) -> Plan:
    """The run's plan, made once, and what fails before any work: a photo the network cannot read
    at this size, a tile size or memory budget that cannot work (ArtstyleError), and on the CPU a
    run that needs more memory than there is (:class:`~artstyle.engine.runtime.OverMemory`, which
    carries the plan). Levels over the budget are planned in tiles."""
    plan = plan_run(content_size, style_sizes, cfg, memory_budget(cfg, device), masks)
    if device.type == "cpu":
        check_memory(plan, cfg)
    return plan


def finish_image(output: torch.Tensor, content: Image.Image, cfg: StyleConfig) -> Image.Image:
    """The output tensor as an image, with the photo's colours put back for ``luminance``, and
    the photo's alpha when the run keeps it (:func:`artstyle.engine.masks.with_alpha`)."""
    im = to_image(output)
    if cfg.preserve_color == "luminance":
        im = color.combine_luminance(im, _painted_photo(content, cfg))
    return with_alpha(im, content, cfg)


def _painted_photo(content: Image.Image, cfg: StyleConfig) -> Image.Image:
    """The photo as the run painted it: its colours not composited when it keeps the alpha."""
    found = kept_transparency(content, cfg)
    return content if found is None else found[1]


def finish_pixels(output: torch.Tensor, content: Image.Image, cfg: StyleConfig) -> np.ndarray:
    """:func:`finish_image` without rounding to 8 bits: (H, W, 3) float64 in 0-255, for 16-bit
    outputs."""
    a = output.detach().float().squeeze(0).permute(1, 2, 0).clamp(0, 255).cpu().numpy().astype(np.float64)
    if cfg.preserve_color == "luminance":
        a = color.combine_luminance_array(a, _painted_photo(content, cfg))
    return np.clip(a, 0, 255)


def iter_stylize(content: Any, styles: Any, cfg: StyleConfig, log: Log = quiet) -> Iterator[Step]:
    """:meth:`Stylizer.iter_stylize` of a new Stylizer: one run, a :class:`Step` per iteration."""
    return Stylizer(styles, cfg, log=log).iter_stylize(content)


def stylize(
    content: Any,
    styles: Any,
    config: StyleConfig | None = None,
    *,
    callback: Callable[[Step], None] | None = None,
    masks: Any = None,
    log: Log = quiet,
    **overrides: Any,
) -> StyleResult:
    """Paint ``content`` in the style of ``styles``; returns the image and its loss history.

    ``content`` and each of ``styles`` may be a path, a PIL image or a numpy array, normalised as
    the CLI loads files (EXIF orientation, 16-bit, alpha, ...); ``styles`` may be one painting or a
    list. Anything else raises ArtstyleError.

    ``config`` (default: the project's default) is updated with ``overrides`` (any StyleConfig
    field, e.g. ``style_weight=1e4``). ``callback`` sees every :class:`Step`. Ctrl-C ends the run
    early and returns the output so far with ``interrupted=True``. ``masks``: one per painting,
    white where it applies (:mod:`artstyle.engine.masks`). For many photos of the same paintings use a
    :class:`Stylizer`.
    """
    if content is None:
        raise ArtstyleError("content: a photo is needed (a path, PIL image or numpy array)")
    return Stylizer(styles, config, log=log, **overrides).stylize(content, callback=callback, masks=masks)
