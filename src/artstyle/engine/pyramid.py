"""Coarse-to-fine: the levels' sizes and iterations, the paintings' size at a level, and carrying
an image (or optimiser state) from one level to the next. :mod:`artstyle.engine.plan` turns these into a
run's :class:`~artstyle.engine.plan.Plan`.

How the config decides the levels: the full size is the photo with its long side ``size``. With
``scales = n`` there are ``n`` levels, each ``scale_ratio`` times smaller than the next; a coarse
level whose long side would be under ``coarse_min_size`` (or short side under 32 px) is dropped.
Iterations: ``level_iterations`` (one per level, coarsest first, the dropped levels' entries
dropped with them) when given, else ``coarse_iterations`` at each coarse level and ``iterations``
at the full size. A painting's size at a level: its long side ``style_scale`` times the level's
(at a detail level, for the layers of :func:`native_layers`, never more than its own pixels).

A picture larger than ``paint_size`` (by more than sqrt(scale_ratio)) is painted at ``paint_size``
first, with the levels above, and then given detail (:func:`detail_sizes`): levels ``scale_ratio``
times larger up to the full size, each with half the iterations of the one below (at least
:data:`MIN_DETAIL_ITERATIONS`), so each costs about twice the one below, and each held to the
picture below it by the detail anchor (:class:`~artstyle.model.losses.AnchorLoss`). Without this a 4096 px
run's two levels were 2048 and 4096 px, a composition painted at 2048 px (the strokes a quarter of
the 512 px picture's) and hours of work; a 1024 px picture was another picture than the 512 px one.
"""

from __future__ import annotations

import math

from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError, setting
from artstyle.images.geometry import MIN_SIDE, fit_long_side
from artstyle.layers import layer as layer_entry


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


def level_budgets(content_size: tuple[int, int], cfg: StyleConfig) -> list[tuple[tuple[int, int], int]]:
    """(size, iterations) of every level, coarsest first (see the module)."""
    full = fit_long_side(content_size, cfg.size)
    if min(full) < MIN_SIDE:
        w, h = content_size
        raise ArtstyleError(
            f"the photo is {w}x{h}: at size {cfg.size} its short side would be {min(full)} px, and the "
            f"network needs at least {MIN_SIDE}; use a larger {setting('size')} (at least "
            f"{math.ceil(MIN_SIDE * max(w, h) / min(w, h))}) or crop it"
        )
    details = detail_sizes(full, cfg)
    painted = fit_long_side(full, cfg.paint_size) if details else full
    if min(painted) < MIN_SIDE:  # (a wide photo painted small: its short side under what is read)
        w, h = content_size
        raise ArtstyleError(
            f"the photo is {w}x{h}: painted at {setting('paint_size')} {cfg.paint_size} its short side "
            f"would be {min(painted)} px, and the network needs at least {MIN_SIDE}; give a larger "
            f"{setting('paint_size')} (at least {math.ceil(MIN_SIDE * max(w, h) / min(w, h))}) or 0"
        )
    sizes = level_sizes(painted, cfg.scales, cfg.scale_ratio, cfg.coarse_min_size)
    if cfg.level_iterations:
        budgets = list(cfg.level_iterations[-len(sizes) :])
    else:
        budgets = [cfg.coarse_iterations] * (len(sizes) - 1) + [cfg.iterations]
    for k in range(1, len(details) + 1):
        budgets.append(max(MIN_DETAIL_ITERATIONS, math.ceil(cfg.iterations / 2**k)))
    return list(zip(sizes + details, budgets, strict=True))


#: The fewest iterations of a detail level.
MIN_DETAIL_ITERATIONS = 2


def detail_sizes(full: tuple[int, int], cfg: StyleConfig) -> list[tuple[int, int]]:
    """The detail levels of a picture of ``full`` size (see :attr:`StyleConfig.paint_size`):
    ``paint_size * scale_ratio^k`` for k = 1, 2, ... while a level that size is at least
    sqrt(scale_ratio) smaller than the picture, then the full size; none when the picture is
    within sqrt(scale_ratio) of ``paint_size``, or with ``level_iterations`` or ``paint_size = 0``."""
    p, r = cfg.paint_size, cfg.scale_ratio
    if not p or cfg.level_iterations or max(full) <= p * math.sqrt(r):
        return []
    sizes, k = [], 1
    while p * r**k * math.sqrt(r) < max(full):
        sizes.append(fit_long_side(full, round(p * r**k)))
        k += 1
    return [*sizes, full]


def is_detail_level(size: tuple[int, int], cfg: StyleConfig) -> bool:
    """Whether a level of ``size`` adds detail to the picture below it (longer than
    ``paint_size``), and so is held to it by the anchor."""
    return bool(cfg.paint_size) and max(size) > cfg.paint_size


def painted_level(sizes: list[tuple[int, int]], i: int, cfg: StyleConfig) -> int | None:
    """For level ``i`` of a run whose levels have ``sizes``: the level whose look it keeps, when
    it is a detail level (the last level below it within ``paint_size``, or the first level when a
    recipe starts above it); None for a level that is not a detail level, or the first."""
    if i == 0 or not is_detail_level(sizes[i], cfg):
        return None
    return next((k for k in range(i - 1, -1, -1) if not is_detail_level(sizes[k], cfg)), 0)


def style_size(
    painting: tuple[int, int], level: tuple[int, int], cfg: StyleConfig, native: bool = False
) -> tuple[int, int]:
    """The painting's size at a level: its long side ``style_scale`` times the level's, and never
    a short side under 32 px (a very long, thin painting is enlarged until the network can read it).
    ``native``: never larger than the painting itself (a level painted in tiles; see
    :mod:`artstyle.engine.plan`)."""
    long_side = round(max(level) * cfg.style_scale)
    if native:
        long_side = min(long_side, max(painting))
    w, h = fit_long_side(painting, max(MIN_SIDE, long_side))
    if min(w, h) < MIN_SIDE:
        k = MIN_SIDE / min(painting)
        w, h = max(MIN_SIDE, math.ceil(painting[0] * k)), max(MIN_SIDE, math.ceil(painting[1] * k))
    return w, h


def native_layers(cfg: StyleConfig) -> tuple[str, ...]:
    """The style layers matched to the painting at no more than its own pixels at a detail level
    (``native_blocks``: those in the network's first blocks; texture and edges)."""
    return tuple(
        name for name in cfg.style_layers if layer_entry(cfg.network, name).block <= cfg.native_blocks
    )


def painting_px(painting: tuple[int, int], level: tuple[int, int], cfg: StyleConfig) -> float:
    """How many of the painting's own pixels (along a side) each pixel of a level of ``level``
    gets at ``style_scale``: 1 when the painting has as many as the level asks for or more (it is
    then reduced), less when it is enlarged (0.32: each of its pixels spread over three)."""
    return min(1.0, max(painting) / max(1.0, max(level) * cfg.style_scale))


def used_sides(cfg: StyleConfig) -> tuple[int, int]:
    """(photo, painting): the longest side a run of ``cfg`` ever uses each input at; a huge file
    need not be decoded larger (see :func:`artstyle.images.load_image`)."""
    return cfg.size, max(MIN_SIDE, math.ceil(cfg.size * cfg.style_scale))
