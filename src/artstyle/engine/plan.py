"""The plan of a run, made once (:func:`plan_run`): every level's size, iterations and paintings'
sizes, and, where a level's whole-image pass would not fit the memory budget, its tiles. The
stylizer runs it; the memory estimate, preflight, the progress bar and the studio's ETA read it;
nothing else recomputes the levels. Like pystiche's ``ImagePyramid(edge_sizes, num_steps)`` a plan
can also be written out and handed to :meth:`artstyle.engine.stylizer.Stylizer.stylize`.

Tiles (:mod:`artstyle.engine.tiles`): a level is tiled when ``tile_size`` is given and the level is larger,
or when its estimated peak exceeds the budget (``max_memory``, else the default of
:func:`artstyle.engine.runtime.memory_budget`); the tile is then the largest square that fits. Its
iterations are spread over :data:`TILE_PASSES` passes with the grid moved between them; each tile
gets them all.

The painting at a tiled level is sized by ``tile_painting``: ``enlarged`` (the default) as at untiled
levels, ``style_scale`` times the level, and read in pieces of a tile's size so that its pass stays
within the budget (Gram and mean-covariance statistics add up over positions); ``native`` never
enlarges it beyond its own pixels. Measured on tubingen x Starry Night at 2048 px
(``benchmarks/poster.py``): enlarged, the picture reduced to 512 px is as far from a direct 512 px
run as the untiled 2048 px picture is (style distance 0.099 both); native, 0.222, and at 1:1 it is
strewn with small swirls (the deep layers matched at the painting's own, smaller scale).

At a detail level, ``native_blocks`` splits the layers instead: the shallow ones (texture and edges)
take their targets from the painting at no more than its own pixels (:attr:`Level.native_sizes`),
the deep ones (the strokes' layout) from the painting at ``style_scale`` times the level as above.
Every level records how many of the painting's own pixels each of its pixels gets
(:attr:`Level.painting_px`), which the progress bar, the sidecar and the studio's estimate show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from artstyle.config import MIN_TILE, StyleConfig
from artstyle.engine.pyramid import (
    is_detail_level,
    level_budgets,
    native_layers,
    painted_level,
    painting_px,
    style_size,
)
from artstyle.engine.tiles import HALO, Tile, axis, grid, overlap_for, pass_shift
from artstyle.errors import ArtstyleError, setting
from artstyle.images.geometry import MIN_SIDE
from artstyle.model.network import activation_bytes
from artstyle.model.optimizers import optimizer_for

Size = tuple[int, int]
GB = 2**30
#: Kept free when the budget is what is available.
MARGIN = int(1.5 * GB)
#: Passes of a tiled level (the grid moves between them).
TILE_PASSES = 2
#: Weights, the runtime and the interpreter, on top of what a level needs.
BASE = 600 * 2**20


@dataclass(frozen=True)
class Pass:
    """One pass over a tiled level: its tiles, each optimised for ``iterations``."""

    tiles: tuple[Tile, ...]
    iterations: int


@dataclass(frozen=True)
class Level:
    """One level of a run: the image's size (w, h), its iterations, each painting's size; for a
    tiled level the tile side, their overlap and the passes; for a detail level (see
    :mod:`artstyle.engine.pyramid`) the level whose look it keeps (``painted``, 0-based), the
    anchor's sigma (px; 0 = no anchor) and the factor from it to the painted level when the look
    term holds it (``look``; 0 = no look term: off, with masks, or a picture or tile that would be
    under 32 px reduced)."""

    size: Size
    iterations: int
    style_sizes: tuple[Size, ...] = ()
    tile: int = 0
    overlap: int = 0
    passes: tuple[Pass, ...] = ()
    painted: int | None = None
    anchor: float = 0.0
    look: float = 0.0
    #: At a detail level with ``native_blocks``: each painting's size for the shallow layers
    #: (:func:`~artstyle.engine.pyramid.native_layers`), never more than its own pixels; () when
    #: they are matched at ``style_sizes`` like the rest.
    native_sizes: tuple[Size, ...] = ()
    #: The painting's own pixels each pixel of the level gets (along a side; the least over the
    #: paintings; 1 = not enlarged): :func:`~artstyle.engine.pyramid.painting_px`.
    painting_px: float = 1.0

    @property
    def megapixels(self) -> float:
        return self.size[0] * self.size[1] / 1e6

    @property
    def steps(self) -> int:
        """Optimiser steps: the iterations, or for a tiled level every tile's in every pass."""
        if not self.passes:
            return self.iterations
        return sum(len(p.tiles) * p.iterations for p in self.passes)

    @property
    def work(self) -> float:
        """Megapixel-iterations: what the progress bar counts and the ETA divides."""
        if not self.passes:
            return self.megapixels * self.iterations
        return sum(t.size[0] * t.size[1] / 1e6 * p.iterations for p in self.passes for t in p.tiles)


@dataclass(frozen=True)
class Plan:
    """The levels of one run, coarsest first (see the module)."""

    levels: tuple[Level, ...]
    #: The memory budget it was planned for, in bytes (None: no limit known, as on a GPU).
    budget: int | None = None

    @property
    def full(self) -> Size:
        """The output's size."""
        return self.levels[-1].size

    @property
    def total_iterations(self) -> int:
        """Steps over all levels (each tile's count at a tiled level)."""
        return sum(level.steps for level in self.levels)

    @property
    def work(self) -> float:
        return sum(level.work for level in self.levels)

    @property
    def tiled(self) -> bool:
        return any(level.passes for level in self.levels)

    def work_done(self, level: int, iteration: int) -> float:
        """Work done at step ``iteration`` (1-based, counted over all levels) of level ``level``
        (1-based), never more than :attr:`work`."""
        before = self.levels[: level - 1]
        done = sum(lv.work for lv in before)
        here = self.levels[level - 1]
        steps = iteration - sum(lv.steps for lv in before)
        if here.steps:
            done += here.work * steps / here.steps
        return min(self.work, done)

    def fraction_done(self, level: int, iteration: int) -> float:
        """:meth:`work_done` as a share of the whole (1 for a run of no work)."""
        return self.work_done(level, iteration) / self.work if self.work else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The whole plan as JSON data (:meth:`from_dict` makes it again): handed to a worker,
        so that a run is planned once."""
        return {"levels": [dataclasses.asdict(lv) for lv in self.levels], "budget": self.budget}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        levels = []
        for lv in data["levels"]:
            passes = tuple(Pass(tuple(Tile(**t) for t in p["tiles"]), p["iterations"]) for p in lv["passes"])
            sizes = {k: tuple(tuple(s) for s in lv.get(k, ())) for k in ("style_sizes", "native_sizes")}
            levels.append(Level(**{**lv, "size": tuple(lv["size"]), **sizes, "passes": passes}))
        return cls(tuple(levels), data.get("budget"))

    def describe(self) -> list[dict[str, object]]:
        """The levels as the sidecar records them."""
        out: list[dict[str, object]] = []
        for lv in self.levels:
            entry: dict[str, object] = {"size": list(lv.size), "iterations": lv.iterations}
            entry["style_sizes"] = [list(s) for s in lv.style_sizes]
            if lv.native_sizes:
                entry["native_sizes"] = [list(s) for s in lv.native_sizes]
            if lv.passes:
                entry.update(tile=lv.tile, overlap=lv.overlap, tiles=[len(p.tiles) for p in lv.passes])
            out.append(entry)
        return out


def level_bytes(
    size: Size, style_sizes: Sequence[Size], iterations: int, cfg: StyleConfig, look: float = 0.0
) -> int:
    """Bytes a level of ``size`` needs at its peak (on the CPU): the activations autograd keeps
    for the image (1.25 times: at the peak of the backward the widest layers' gradients are held
    too; at a detail level with ``look``, the factor to the painted size, those of the picture
    reduced by it as well), or the paintings' forward passes when their targets are made, whichever
    is more; the optimiser's state (L-BFGS's curvature pairs, two images each); about a dozen
    image-sized buffers; then the weights and runtime (:data:`BASE`), and a 10 % margin. Checked
    against measured peaks by ``benchmarks/memory.py`` (the model came out at 0.94-0.99 of them
    before the margin)."""
    layers = cfg.active_layers()
    w, h = size
    act = activation_bytes(cfg.network, layers, h, w, cfg.pooling)
    if look:
        act += activation_bytes(cfg.network, layers, round(h / look), round(w / look), cfg.pooling)
    styles = max(
        (activation_bytes(cfg.network, layers, sh, sw, cfg.pooling) for sw, sh in style_sizes), default=0
    )
    image = 3 * w * h * 4
    history = optimizer_for(cfg).memory(iterations, image)
    return int(1.1 * (max(int(1.25 * act), styles) + history + 12 * image + BASE))


def tile_bytes(
    tile: int, size: Size, style_sizes: Sequence[Size], iterations: int, cfg: StyleConfig, look: float = 0.0
) -> int:
    """Bytes a level of ``size`` painted in tiles of ``tile`` px needs: one tile's level (the
    largest tile of the grid; the paintings' passes in pieces), the whole picture held eight times
    (the pass's start and the picture so far, the blend's sum, weights and quotient, the pass's
    finished tiles, the photo), and the paintings at the level's size."""
    w, h = size
    tw, th = axis(w, tile, overlap_for(tile))[1], axis(h, tile, overlap_for(tile))[1]
    paintings = sum(15 * sw * sh for sw, sh in style_sizes)  # each as a float tensor and an 8-bit image
    return (
        level_bytes((tw, th), _passes_of(style_sizes, tile, cfg), iterations, cfg, look)
        + 8 * 3 * w * h * 4
        + paintings
    )


def _passes_of(style_sizes: Sequence[Size], tile: int, cfg: StyleConfig) -> list[Size]:
    """The largest pass a painting of each size takes at a level in tiles of ``tile`` px: a piece
    and its halo (:func:`artstyle.engine.objective.painting_stats`), or the whole for sliced Wasserstein."""
    if cfg.style_loss == "sliced_wasserstein":
        return list(style_sizes)
    piece = max(16, tile - tile % 16) + 2 * HALO
    return [(min(w, piece), min(h, piece)) for w, h in style_sizes]


def estimate_memory(plan: Plan, cfg: StyleConfig) -> int:
    """Bytes the run of ``plan`` needs at its peak: its most demanding level's."""
    return max(
        (
            tile_bytes(lv.tile, lv.size, lv.style_sizes, lv.iterations, cfg, lv.look)
            if lv.passes
            else level_bytes(lv.size, lv.style_sizes, lv.iterations, cfg, lv.look)
            for lv in plan.levels
        ),
        default=BASE,
    )


def plan_run(
    content_size: Size,
    style_sizes: Sequence[Size],
    cfg: StyleConfig,
    budget: int | None = None,
    masks: bool = False,
) -> Plan:
    """The plan of a run of ``cfg`` on a photo of ``content_size`` with paintings of
    ``style_sizes``; ``budget``: bytes a level may use (None: no limit; ``max_memory`` overrides
    it); ``masks``: whether the paintings are given masks (each then holds its own region, and the
    look of the whole is left out). A photo the network cannot read at this size, a tile size over
    the picture and a budget under one tile are each one ArtstyleError."""
    if cfg.max_memory:
        budget = int(cfg.max_memory * GB)
    budgets = level_budgets(content_size, cfg)
    full = budgets[-1][0]
    if cfg.tile_size > max(full):
        raise ArtstyleError(
            f"{setting('tile_size')} {cfg.tile_size} is over the picture ({full[0]}x{full[1]}); give a "
            f"smaller {setting('tile_size')}, or 0 to paint untiled what fits"
        )
    levels = []
    sizes = [size for size, _ in budgets]
    for i, (size, iterations) in enumerate(budgets):
        k = painted_level(sizes, i, cfg)
        detail: dict[str, Any] = {}
        look = 0.0
        if k is not None:
            anchor = max(size) / max(sizes[i - 1]) / 2 if cfg.detail_anchor else 0.0
            look = max(size) / max(sizes[k]) if cfg.detail_style and not masks else 0.0
            detail = {"painted": k, "anchor": anchor, "look": look}
        untiled = tuple(style_size(s, size, cfg) for s in style_sizes)
        tiled = tuple(style_size(s, size, cfg, native=cfg.tile_painting == "native") for s in style_sizes)
        detail["painting_px"] = min((painting_px(s, size, cfg) for s in style_sizes), default=1.0)
        native = tuple(style_size(s, size, cfg, native=True) for s in style_sizes)
        if is_detail_level(size, cfg) and native_layers(cfg) and native != untiled:
            detail["native_sizes"] = native
        tile = _tile_for(size, untiled, tiled, iterations, cfg, budget, look)
        region = (
            size
            if not tile
            else (axis(size[0], tile, overlap_for(tile))[1], axis(size[1], tile, overlap_for(tile))[1])
        )
        if look and min(region) / look < MIN_SIDE:  # (reduced under what the network reads)
            detail["look"] = 0.0
        if not tile:
            levels.append(Level(size, iterations, untiled, **detail))
            continue
        overlap = overlap_for(tile)
        n = max(1, min(iterations, TILE_PASSES))
        shares = [iterations // n + (1 if i < iterations % n else 0) for i in range(n)]
        passes = tuple(
            Pass(tuple(grid(size, tile, overlap, pass_shift(i, n, size, tile, overlap))), its)
            for i, its in enumerate(shares)
        )
        if all(len(p.tiles) == 1 for p in passes):  # one tile: nothing moves between passes
            passes = (Pass(passes[0].tiles, iterations),)
        levels.append(Level(size, iterations, tiled, tile, overlap, passes, **detail))
    return Plan(tuple(levels), budget)


def _tile_for(
    size: Size,
    untiled: Sequence[Size],
    tiled: Sequence[Size],
    iterations: int,
    cfg: StyleConfig,
    budget: int | None,
    look: float,
) -> int:
    """The tile side for a level of ``size``, or 0 to paint it whole; ``untiled`` and ``tiled``:
    the paintings' sizes at the level painted whole and in tiles (``tile_painting``); ``look``: see
    :class:`Level`."""
    if cfg.tile_size:
        if max(size) <= cfg.tile_size:
            return 0
        tile = cfg.tile_size
    elif budget is None or level_bytes(size, untiled, iterations, cfg, look) <= budget:
        return 0
    else:
        tile = 0
    if tile:
        need = tile_bytes(tile, size, tiled, iterations, cfg, look)
        if budget is not None and need > budget:
            raise ArtstyleError(
                f"a tile of {tile} px at {size[0]}x{size[1]} needs about {need / GB:.1f} GB, over the "
                f"budget of {budget / GB:.1f} GB; lower {setting('tile_size')} or raise "
                f"{setting('max_memory')}"
            )
        return tile
    assert budget is not None
    lo, hi = MIN_TILE, max(size)
    if tile_bytes(lo, size, tiled, iterations, cfg, look) > budget:
        need = tile_bytes(lo, size, tiled, iterations, cfg, look)
        raise ArtstyleError(
            f"even one tile of {MIN_TILE} px at {size[0]}x{size[1]} needs about {need / GB:.1f} GB and the "
            f"budget is {budget / GB:.1f} GB; raise {setting('max_memory')} or lower {setting('size')}"
        )
    while hi - lo > 16:  # the largest tile that fits, to 16 px
        mid = (lo + hi) // 2
        if tile_bytes(mid, size, tiled, iterations, cfg, look) <= budget:
            lo = mid
        else:
            hi = mid
    return lo - lo % 16 if lo >= MIN_TILE + 16 else lo
