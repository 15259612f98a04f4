"""Tile painters: who paints the tiles of a pass. The stylizer's one tile loop hands every pass's
remaining tiles (:class:`TileJob`) to a :class:`TilePainter` and reads back a :class:`TileStep` for
each iteration of each tile, in tile order; it blends the tiles, counts the steps, keeps the state
and stops the run, whoever painted them.

:class:`LocalPainter` paints them here, one after another, with the stylizer's network. The Ray
painter (:class:`artstyle.runs.cluster.RayPainter`) is only another painter: it sends the same jobs
to actors that hold the network, each of which paints with a :class:`LocalPainter` of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from artstyle.config import StyleConfig
from artstyle.engine.objective import Detail, Objective, StyleTargets
from artstyle.engine.tiles import Tile
from artstyle.images.geometry import to_tensor
from artstyle.model.network import VGGFeatures
from artstyle.model.optimizers import LevelRun


@dataclass
class TileJob:
    """One tile of a pass, as a painter gets it: the tile, its crop of the photo (8-bit, H x W x 3)
    and of the picture, its masks' crops, and the optimiser's carry into it."""

    index: int
    tile: Tile
    content: np.ndarray
    image: torch.Tensor
    masks: list[torch.Tensor] | None
    carried: Any


@dataclass
class TileStep:
    """One iteration of one tile: its losses (``record``). ``image``: the tile's picture so far (a
    local painter gives it at every step; a remote one with the tile's last step only); ``last``:
    the tile is made; ``carry``: with the last step, what its optimiser hands to the next level."""

    index: int
    record: dict[str, float]
    image: torch.Tensor | None = None
    last: bool = False
    carry: Any = None


class TilePainter(Protocol):
    """Paints the tiles of a pass, yielding a :class:`TileStep` per iteration, tile after tile in
    index order."""

    def paint(
        self,
        targets: StyleTargets,
        jobs: list[TileJob],
        iterations: int,
        next_size: tuple[int, int] | None,
        detail: Detail | None = None,
    ) -> Iterator[TileStep]: ...


def tile_run(
    net: VGGFeatures,
    cfg: StyleConfig,
    content: torch.Tensor,
    targets: StyleTargets,
    x: torch.Tensor,
    masks: list[torch.Tensor] | None,
    carried: Any,
    detail: Detail | None = None,
) -> LevelRun:
    """The optimisation of one tile: its own photo crop as the content target, the level's
    painting statistics, its crop of the picture as the start (at a detail level, held to that
    start and to the look of the picture painted below)."""
    objective = Objective(net, cfg, content, targets, masks=masks)
    if detail is not None:
        objective.terms += detail.terms(objective, x, cfg)
    return LevelRun(objective, x, cfg, carried)


class LocalPainter:
    """Paints tiles here, one at a time (one tile's optimisation in memory), with ``net``."""

    def __init__(self, net: VGGFeatures, cfg: StyleConfig, device: torch.device) -> None:
        self.net, self.cfg, self.device = net, cfg, device

    def paint(
        self,
        targets: StyleTargets,
        jobs: list[TileJob],
        iterations: int,
        next_size: tuple[int, int] | None,
        detail: Detail | None = None,
    ) -> Iterator[TileStep]:
        d = self.device
        for job in jobs:
            content = to_tensor(Image.fromarray(job.content, "RGB"), d)
            masks = None if job.masks is None else [m.to(d) for m in job.masks]
            run = tile_run(self.net, self.cfg, content, targets, job.image.to(d), masks, job.carried, detail)
            for i in range(iterations):
                record = run.step()
                finite = all(np.isfinite(v) for v in record.values())
                last = i == iterations - 1 or not finite
                carry = run.carry(next_size) if last and next_size else None
                yield TileStep(job.index, record, run.best_x.detach(), last, carry)
                if not finite:  # (the stylizer stops the run; a remote worker stops the tile)
                    return
            del run  # (one tile's optimisation in memory at a time)
