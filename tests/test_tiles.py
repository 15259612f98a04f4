"""Tiles: the grid covers the picture, moves between passes, and the feathered blend has no step."""

from __future__ import annotations

import itertools

import pytest
import torch

from artstyle.engine.tiles import Blend, Tile, axis, feather, grid, overlap_for, pass_shift


@pytest.mark.parametrize("size", [(300, 200), (128, 500), (1000, 129), (128, 128)])
@pytest.mark.parametrize("shift", [(0, 0), (37, 11)])
def test_tiles_cover_the_picture_and_overlap(size, shift):
    tile, overlap = 128, 32
    tiles = grid(size, tile, overlap, shift)
    cover = torch.zeros(size[1], size[0])
    for t in tiles:
        assert 0 <= t.x0 < t.x1 <= size[0] and 0 <= t.y0 < t.y1 <= size[1]
        assert t.size[0] <= min(tile, size[0]) and t.size[1] <= min(tile, size[1])
        cover[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert cover.min() >= 1
    xs = sorted({t.x0 for t in tiles})
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(xs))  # overlap at least


def test_the_grid_moves_between_passes():
    size, tile = (600, 400), 200
    overlap = overlap_for(tile)
    first = {t.x0 for t in grid(size, tile, overlap, pass_shift(0, 2, size, tile, overlap))}
    second = {t.x0 for t in grid(size, tile, overlap, pass_shift(1, 2, size, tile, overlap))}
    inner = lambda xs: {x for x in xs if 0 < x < size[0] - tile}  # noqa: E731
    assert inner(first) and not inner(first) & inner(second)  # no inner border stays in place


def test_tiles_are_as_short_as_cover_the_picture():
    """Two tiles of at most 1504 px on 2048 px overlap by the overlap, not by 960 px."""
    tiles = grid((2048, 1536), 1504, 188)
    assert len(tiles) == 4 and tiles[0].size == (1118, 862)
    assert tiles[1].x0 == 2048 - 1118 and tiles[0].x1 - tiles[1].x0 == 188  # overlap: 188 px
    assert axis(2048, 1504, 188) == (2, 1118) and axis(1000, 1504, 188) == (1, 1000)


def test_feather_rises_from_inner_edges_only():
    t = Tile(0, 50, 100, 150)
    w = feather(t, (300, 150), 20)[0, 0]
    assert w.min() > 0 and w.max() == 1
    assert w[60, 0] == 1  # the picture's own left edge: flat
    assert w[60, -1] < 0.05 and w[0, 50] < 0.05  # inner edges: near zero
    assert w[-1, 50] == 1  # the picture's bottom edge: flat


def test_the_blend_of_a_picture_cut_into_tiles_is_the_picture():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 150, 260, generator=g) * 255
    blend = Blend(torch.zeros_like(x), 24)
    for t in grid((260, 150), 100, 24, (13, 7)):
        blend.add(t, t.crop(x))
    assert torch.allclose(blend.result(torch.zeros_like(x)), x, atol=1e-3)


def test_the_blend_has_no_step_at_a_border():
    """Two tiles that disagree (0 and 100) meet in a ramp: no jump between neighbours is larger
    than the disagreement spread over the overlap."""
    overlap = 40
    left, right = Tile(0, 0, 120, 64), Tile(80, 0, 200, 64)
    blend = Blend(torch.zeros(1, 1, 64, 200), overlap)
    blend.add(left, torch.zeros(1, 1, 64, 120))
    blend.add(right, torch.full((1, 1, 64, 120), 100.0))
    row = blend.result(torch.zeros(1, 1, 64, 200))[0, 0, 32]
    assert row[:80].max() == 0 and row[120:].min() == 100
    assert (row[1:] - row[:-1]).abs().max() <= 100 / overlap * 2.5


def test_one_tile_holding_the_picture_is_the_picture_bit_for_bit():
    x = torch.rand(1, 3, 40, 50) * 255
    blend = Blend(torch.zeros_like(x), 16)
    blend.add(Tile(0, 0, 50, 40), x)
    assert torch.equal(blend.result(torch.zeros_like(x)), x)
