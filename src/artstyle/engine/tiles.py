"""Tiles: a level too large for the memory budget is optimised in overlapping tiles.

A tile is a small level: its own crop of the photo (its content target) and of the current image,
matched against the painting's statistics at the level (global), with TV inside it. Within a pass
every tile starts from the same image (so a pass can be spread over many workers), and the results
are put together with feathered weights: a pixel's value is ``sum_t w_t x_t / sum_t w_t`` over the
tiles that hold it, ``w_t`` rising linearly from the tile's edge across the overlap (and flat at the
picture's own edges), so there is no step at a border. The grid moves between passes (crowsonkb's
older ``style_transfer`` shifted it every step), so no border stays in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from artstyle.config import MIN_TILE

__all__ = ["HALO", "MIN_TILE", "Blend", "Tile", "axis", "feather", "grid", "overlap_for", "pass_shift"]

#: The margin (px, a multiple of 16) read around each piece of a painting read in tiles, so that
#: the layers' zero padding at the piece's edge barely reaches the positions it counts.
HALO = 64


@dataclass(frozen=True)
class Tile:
    """A region of a level's image, ``[x0, x1) x [y0, y1)`` in its pixels."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """This tile of ``x`` (B, C, H, W), a copy."""
        return x[..., self.y0 : self.y1, self.x0 : self.x1].clone()


def overlap_for(tile: int) -> int:
    """The overlap of tiles of ``tile`` px: an eighth of the tile, at least 48 px (a few times the
    reach of the shallow layers' zero padding), and never over a third of it."""
    return min(max(48, tile // 8), tile // 3)


def axis(length: int, tile: int, overlap: int) -> tuple[int, int]:
    """(tiles, tile length) along an axis of ``length`` px for tiles of at most ``tile`` px
    overlapping by ``overlap``: as few tiles as cover it, each as short as they can be (so that
    two tiles of 1504 px on 2048 px overlap by the overlap, not by 960 px)."""
    if tile >= length:
        return 1, length
    n = math.ceil((length - overlap) / (tile - overlap))
    return n, min(tile, math.ceil((length + (n - 1) * overlap) / n))


def _starts(length: int, tile: int, overlap: int, shift: int) -> list[int]:
    """Tile starts along one axis: every ``tile - overlap`` px from 0, the grid moved back by
    ``shift`` px (0 <= shift < stride; one more tile then), each start clamped into the picture
    so that consecutive tiles overlap by at least ``overlap`` and the last ends at ``length``."""
    if tile >= length:
        return [0]
    stride = tile - overlap
    n = math.ceil((length - tile) / stride) + 2
    starts = {min(max(k * stride - shift, 0), length - tile) for k in range(n)}
    return sorted(starts)


def grid(size: tuple[int, int], tile: int, overlap: int, shift: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles of at most ``tile`` px a side covering a picture of ``size`` (w, h), overlapping by at
    least ``overlap`` px, each axis's tiles as short as cover it (:func:`axis`), the grid shifted
    by ``shift`` (x, y) px."""
    w, h = size
    _, tw = axis(w, tile, overlap)
    _, th = axis(h, tile, overlap)
    xs = _starts(w, tw, overlap, shift[0] % max(tw - overlap, 1))
    ys = _starts(h, th, overlap, shift[1] % max(th - overlap, 1))
    return [Tile(x, y, x + tw, y + th) for y in ys for x in xs]


def pass_shift(
    pass_index: int, passes: int, size: tuple[int, int], tile: int, overlap: int
) -> tuple[int, int]:
    """How far pass ``pass_index`` of ``passes`` moves the grid of a picture of ``size``: evenly
    over one stride along each axis, so that the borders of one pass lie inside the tiles of the
    next."""
    out = []
    for length in size:
        _, t = axis(length, tile, overlap)
        out.append((pass_index * max(t - overlap, 0)) // max(passes, 1))
    return out[0], out[1]


def feather(t: Tile, size: tuple[int, int], overlap: int) -> torch.Tensor:
    """The blend weight of tile ``t`` in a picture of ``size`` (w, h): (1, 1, th, tw), rising
    linearly over ``overlap`` px from each edge that lies inside the picture, 1 elsewhere, and
    above 0 everywhere (so every pixel is held by some tile)."""
    w, h = size
    tw, th = t.size

    def ramp(n: int, at_start: bool, at_end: bool) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32)
        r = torch.ones(n)
        if overlap > 0 and not at_start:
            r = torch.minimum(r, (i + 0.5) / overlap)
        if overlap > 0 and not at_end:
            r = torch.minimum(r, (n - i - 0.5) / overlap)
        return r

    rx = ramp(tw, t.x0 == 0, t.x1 == w)
    ry = ramp(th, t.y0 == 0, t.y1 == h)
    return (ry[:, None] * rx[None, :])[None, None]


class Blend:
    """Puts a pass's tiles together: ``add`` each optimised tile, then ``result()``."""

    def __init__(self, like: torch.Tensor, overlap: int) -> None:
        self.total = torch.zeros_like(like)
        self.weight = torch.zeros_like(like[:, :1])
        self.size = (like.shape[-1], like.shape[-2])
        self.overlap = overlap
        self.whole: torch.Tensor | None = None

    def add(self, t: Tile, x: torch.Tensor) -> None:
        if t.size == self.size:  # one tile holds the whole picture: it is the picture
            self.whole = x
            return
        w = feather(t, self.size, self.overlap).to(x)
        self.total[..., t.y0 : t.y1, t.x0 : t.x1] += w * x
        self.weight[..., t.y0 : t.y1, t.x0 : t.x1] += w

    def result(self, fallback: torch.Tensor) -> torch.Tensor:
        """The blended picture; pixels no tile has reached yet keep ``fallback``'s values."""
        if self.whole is not None:
            return self.whole
        held = self.weight > 0
        return torch.where(held, self.total / self.weight.clamp_min(1e-12), fallback)
