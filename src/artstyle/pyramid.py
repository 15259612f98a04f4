"""Coarse-to-fine: the plan of a run (every level's size, iterations and paintings' sizes), and
carrying an image (or optimiser state) from one level to the next.

A :class:`Plan` is made once per run from the config and the photo (:func:`plan_run`). The stylizer
runs it, the memory estimate and preflight check it, the progress bar and the studio's ETA count its
work; nothing else recomputes the levels. Like pystiche's ``ImagePyramid(edge_sizes, num_steps)`` it
can also be written out explicitly and handed to :meth:`artstyle.stylizer.Stylizer.stylize`.

How the config decides the plan: the full size is the photo with its long side ``size``. With
``scales = n`` there are ``n`` levels, each ``scale_ratio`` times smaller than the next; a coarse
level whose long side would be under ``coarse_min_size`` (or short side under 32 px) is dropped.
Iterations: ``level_iterations`` (one per level, coarsest first, the dropped levels' entries
dropped with them) when given, else ``coarse_iterations`` at each coarse level and ``iterations``
at the full size. A painting's size at a level: its long side ``style_scale`` times the level's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError
from artstyle.images import MIN_SIDE, fit_long_side


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


Size = tuple[int, int]


@dataclass(frozen=True)
class Level:
    """One level of a run: the image's size (w, h), its iterations, and each painting's size."""

    size: Size
    iterations: int
    style_sizes: tuple[Size, ...] = ()

    @property
    def megapixels(self) -> float:
        """What one iteration costs here, in the unit of the progress bar and ETA."""
        return self.size[0] * self.size[1] / 1e6


@dataclass(frozen=True)
class Plan:
    """The levels of one run, coarsest first (see the module for how the config decides them)."""

    levels: tuple[Level, ...]

    @property
    def full(self) -> Size:
        """The output's size."""
        return self.levels[-1].size

    @property
    def total_iterations(self) -> int:
        return sum(level.iterations for level in self.levels)

    @property
    def work(self) -> float:
        """Megapixel-iterations of the whole run: what the progress bar counts and the ETA divides."""
        return sum(level.megapixels * level.iterations for level in self.levels)

    def work_done(self, level: int, iteration: int) -> float:
        """Work done at ``iteration`` (1-based, counted over all levels) of level ``level``
        (1-based), never more than :attr:`work`."""
        before = self.levels[: level - 1]
        done = sum(lv.megapixels * lv.iterations for lv in before)
        its = iteration - sum(lv.iterations for lv in before)
        return min(self.work, done + self.levels[level - 1].megapixels * its)

    def fraction_done(self, level: int, iteration: int) -> float:
        """:meth:`work_done` as a share of the whole (1 for a run of no work)."""
        return self.work_done(level, iteration) / self.work if self.work else 1.0


def plan_run(content_size: Size, style_sizes: Sequence[Size], cfg: StyleConfig) -> Plan:
    """The plan of a run of ``cfg`` on a photo of ``content_size`` with paintings of ``style_sizes``;
    a photo the network cannot read at this size is one ArtstyleError."""
    return Plan(
        tuple(
            Level(size, budget, tuple(style_size(s, size, cfg) for s in style_sizes))
            for size, budget in _levels(content_size, cfg)
        )
    )


def _levels(content_size: Size, cfg: StyleConfig) -> list[tuple[Size, int]]:
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


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` (1, C, H, W) resized to ``size`` (w, h), bicubic."""
    w, h = size
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
