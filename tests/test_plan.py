"""The plan of a run: levels, tiles chosen by the memory budget, and tiled levels run, resumed and
refused as they should be (tiny random network, small images)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from artstyle import StyleConfig, Stylizer
from artstyle.engine.plan import GB, Level, Pass, Plan, level_bytes, plan_run, tile_bytes
from artstyle.engine.tiles import Tile
from artstyle.errors import ArtstyleError
from tests.conftest import gradient_image, stripes_image

pytestmark = pytest.mark.usefixtures("tiny_weights")

SMALL = dict(
    size=256,
    scales=1,
    iterations=4,
    style_layers=("relu1_1", "relu2_1", "relu3_1"),
    content_layers=("relu3_2",),
    device="cpu",
)


def test_levels_that_fit_run_whole_and_the_budget_picks_the_largest_tile_that_fits():
    cfg = StyleConfig(size=2048, scales=3, level_iterations=(10, 6, 4))
    whole = plan_run((1024, 768), [(800, 600)], cfg)
    assert not whole.tiled and [lv.size for lv in whole.levels] == [(512, 384), (1024, 768), (2048, 1536)]
    budget = int(3 * GB)
    plan = plan_run((1024, 768), [(800, 600)], cfg, budget)
    fine = plan.levels[-1]
    assert [bool(lv.passes) for lv in plan.levels] == [False, False, True]
    assert tile_bytes(fine.tile, fine.size, fine.style_sizes, 4, cfg) <= budget
    assert tile_bytes(max(fine.size), fine.size, fine.style_sizes, 4, cfg) > budget
    assert level_bytes(plan.levels[1].size, plan.levels[1].style_sizes, 6, cfg) <= budget
    assert fine.style_sizes == ((2048, 1536),)  # enlarged as at untiled levels (read in pieces)
    native = plan_run((1024, 768), [(800, 600)], cfg.replace(tile_painting="native"), budget).levels[-1]
    assert native.style_sizes == ((800, 600),)  # or at its own size
    assert len(fine.passes) == 2 and sum(p.iterations for p in fine.passes) == 4
    assert plan.total_iterations == 10 + 6 + sum(len(p.tiles) * p.iterations for p in fine.passes)


def test_a_picture_larger_than_paint_size_gets_detail_levels_with_half_the_iterations_each():
    def levels(size, **kw):
        plan = plan_run((1024, 768), [(800, 600)], StyleConfig(size=size, **kw))
        return [(max(lv.size), lv.iterations) for lv in plan.levels]

    assert levels(512) == [(256, 100), (512, 40)]  # the default run: no detail level
    assert levels(700) == [(350, 100), (700, 40)]  # within sqrt(2) of paint_size: painted at its size
    assert levels(1000) == [(256, 100), (512, 40), (1000, 20)]
    assert levels(1536) == [(256, 100), (512, 40), (1024, 20), (1536, 10)]
    assert levels(4096) == [(256, 100), (512, 40), (1024, 20), (2048, 10), (4096, 5)]
    assert levels(8192)[-1] == (8192, 3)
    assert levels(16384)[-1] == (16384, 2)  # never under two iterations
    assert levels(4096, paint_size=0) == [(2048, 100), (4096, 40)]  # as scales says, at full size
    assert levels(4096, paint_size=1024, iterations=30) == [(512, 100), (1024, 30), (2048, 15), (4096, 8)]
    explicit = levels(2048, scales=3, level_iterations=(50, 20, 4))  # a recipe: its levels only
    assert explicit == [(512, 50), (1024, 20), (2048, 4)]


def test_a_given_tile_size_tiles_every_larger_level():
    plan = plan_run((512, 384), [], StyleConfig(size=512, scales=2, coarse_min_size=128, tile_size=300))
    assert [lv.tile for lv in plan.levels] == [0, 300]
    assert plan.levels[1].overlap > 0 and all(len(p.tiles) >= 4 for p in plan.levels[1].passes)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"tile_size": 64}, "tile_size must be 0 (automatic) or at least 128 px"),
        ({"tile_size": 600}, "tile_size 600 is over the picture (512x384)"),
        ({"max_memory": 0.5}, "even one tile of 128 px at 512x384 needs about"),
        ({"max_memory": 0.7, "tile_size": 500}, "a tile of 500 px at 512x384 needs about"),
    ],
)
def test_tiles_that_cannot_work_are_one_line_before_any_work(settings, message):
    with pytest.raises(ArtstyleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cfg = StyleConfig(size=512, scales=1, **settings)
        plan_run((512, 384), [(64, 64)], cfg)


def _tiled(cfg: StyleConfig, photo) -> Plan:
    return Stylizer([stripes_image()], cfg).plan(photo)


def test_a_tiled_level_paints_the_whole_picture_and_lowers_the_loss():
    photo = gradient_image(256, 192)
    cfg = StyleConfig(**SMALL, tile_size=128)
    plan = _tiled(cfg, photo)
    level = plan.levels[0]
    assert level.tile == 128 and len(level.passes) == 2 and len(level.passes[0].tiles) >= 4
    steps = []
    r = Stylizer([stripes_image()], cfg).stylize(photo, callback=steps.append, plan=plan)
    assert r.image.size == (256, 192) and len(steps) == plan.total_iterations
    assert steps[0].tile == (1, 2, 1, len(level.passes[0].tiles)) and steps[-1].tile[:2] == (2, 2)
    first_tile = [s.losses["total"] for s in steps if s.tile[:3] == (1, 2, 1)]
    assert first_tile[-1] < first_tile[0]
    start = np.asarray(Stylizer([stripes_image()], cfg).start_image(photo), np.float64)
    assert np.abs(np.asarray(r.image, np.float64) - start).mean() > 1  # every tile was painted
    for t in level.passes[0].tiles:
        crop = np.asarray(r.image, np.float64)[t.y0 : t.y1, t.x0 : t.x1]
        assert np.abs(crop - start[t.y0 : t.y1, t.x0 : t.x1]).mean() > 0.5


def test_a_tiled_level_of_one_tile_is_the_untiled_level():
    photo = gradient_image(160, 120)
    cfg = StyleConfig(**{**SMALL, "size": 160})
    stylizer = Stylizer([stripes_image()], cfg)
    whole = stylizer.plan(photo)
    lv = whole.levels[0]
    one = Plan((Level(lv.size, lv.iterations, lv.style_sizes, 160, 20, (Pass((Tile(0, 0, 160, 120),), 4),)),))
    a = stylizer.stylize(photo, plan=whole).image
    b = Stylizer([stripes_image()], cfg).stylize(photo, plan=one).image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_stopped_tiled_run_resumes_to_the_same_picture():
    photo = gradient_image(256, 192)
    cfg = StyleConfig(
        **{**SMALL, "scales": 2, "coarse_min_size": 128, "coarse_iterations": 3, "tile_size": 128}
    )
    whole = Stylizer([stripes_image()], cfg).stylize(photo)
    states = []

    def stop_midway(step):
        if step.tile and step.tile[:3] == (1, 2, 3) and step.iteration % 2 == 0:
            raise KeyboardInterrupt

    first = Stylizer([stripes_image()], cfg).stylize(photo, callback=stop_midway, on_state=states.append)
    assert first.interrupted and states[-1].level == 2 and states[-1].pass_index == 0
    assert len(states[-1].tiles_done) == 2
    again = Stylizer([stripes_image()], cfg).stylize(photo, resume=states[-1])
    assert np.array_equal(np.asarray(again.image), np.asarray(whole.image))
    steps_before = states[-1].iteration
    assert len(again.history) == whole.history[-1]["iteration"] - steps_before


def test_a_video_term_on_a_tiled_level_is_refused():
    photo = gradient_image(256, 192)
    cfg = StyleConfig(**SMALL, tile_size=128)
    with pytest.raises(ArtstyleError, match="painted whole"):
        Stylizer([stripes_image()], cfg).stylize(photo, terms=lambda size: [])


def test_resume_carries_the_image_exactly():
    x = torch.rand(1, 3, 8, 8)
    from artstyle.engine.stylizer import RunState

    assert torch.equal(RunState(1, x, 0).image, x)


def _detail_run(anchor: float, **kw):
    cfg = StyleConfig(
        **{**SMALL, "size": 128, "paint_size": 64, "scales": 1, "iterations": 8},
        detail_anchor=anchor,
        **kw,
    )
    steps = []
    r = Stylizer([stripes_image()], cfg).stylize(gradient_image(128, 96), callback=steps.append)
    return r, steps


def test_the_detail_anchor_holds_a_detail_level_to_the_picture_below():
    from artstyle.images.geometry import upsample
    from artstyle.model.losses import gaussian_blur

    far = {}
    for anchor in (0.0, 1e4):
        _, steps = _detail_run(anchor)
        assert [s.size for s in (steps[0], steps[-1])] == [(64, 48), (128, 96)]
        below = upsample(next(s for s in reversed(steps) if s.scale == 1).output, (128, 96))
        final = steps[-1].output
        far[anchor] = float(torch.mean((gaussian_blur(final, 1.0) - gaussian_blur(below, 1.0)) ** 2))
        assert ("anchor" in steps[-1].losses) == bool(anchor) and "anchor" not in steps[0].losses
    assert far[1e4] < 0.2 * far[0.0]


def test_the_look_term_holds_a_detail_level_to_the_paintings_statistics_at_paint_size():
    from artstyle.engine.objective import ReducedStyle

    measured = {}
    for weight in (0.0, 10.0):
        cfg = StyleConfig(**{**SMALL, "size": 128, "paint_size": 64, "scales": 1, "iterations": 8})
        cfg = cfg.replace(detail_style=weight)
        s = Stylizer([stripes_image()], cfg)
        photo = gradient_image(128, 96)
        steps = []
        s.stylize(photo, callback=steps.append)
        assert ("look" in steps[-1].losses) == bool(weight)
        painted = s.plan(photo).levels[0]
        targets = s.style_targets([stripes_image()], painted, torch.Generator())
        look = ReducedStyle(s.net, targets, 2.0)
        measured[weight] = float(look(steps[-1].output))
    assert measured[10.0] < 0.8 * measured[0.0]


def test_a_tiled_detail_level_of_one_tile_is_the_untiled_level():
    cfg = StyleConfig(
        **{**SMALL, "size": 160, "paint_size": 80, "scales": 1}, detail_anchor=100.0, detail_style=1.0
    )
    photo = gradient_image(160, 120)
    stylizer = Stylizer([stripes_image()], cfg)
    whole = stylizer.plan(photo)
    first, lv = whole.levels
    tiled = dataclasses.replace(
        lv, tile=160, overlap=20, passes=(Pass((Tile(0, 0, 160, 120),), lv.iterations),)
    )
    a = stylizer.stylize(photo, plan=whole)
    b = Stylizer([stripes_image()], cfg).stylize(photo, plan=Plan((first, tiled)))
    assert "anchor" in a.history[-1] and "look" in a.history[-1]
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_detail_levels_with_masks_or_a_recipe_above_paint_size():
    cfg = StyleConfig(
        **{**SMALL, "size": 128, "paint_size": 64, "scales": 1, "iterations": 4}, detail_style=1.0
    )
    left = np.zeros((96, 128), np.uint8)
    left[:, :64] = 255
    from PIL import Image

    masks = [Image.fromarray(left), Image.fromarray(255 - left)]
    steps = []
    Stylizer([stripes_image(), gradient_image(seed=2)], cfg).stylize(
        gradient_image(128, 96), masks=masks, callback=steps.append
    )
    assert "anchor" in steps[-1].losses and "look" not in steps[-1].losses  # (each region its own)
    recipe = cfg.replace(scales=2, level_iterations=(2, 2), coarse_min_size=32, paint_size=32)
    plan = Stylizer([stripes_image()], recipe).plan(gradient_image(128, 96))
    assert [lv.size for lv in plan.levels] == [(64, 48), (128, 96)]
    assert [lv.look for lv in plan.levels] == [0.0, 2.0] and plan.levels[1].painted == 0  # the first level
    with_masks = plan_run((128, 96), [stripes_image().size], recipe, masks=True)
    assert [lv.look for lv in with_masks.levels] == [0.0, 0.0] and with_masks.levels[1].anchor > 0
    steps = []
    Stylizer([stripes_image()], recipe).stylize(gradient_image(128, 96), callback=steps.append)
    assert {"anchor", "look"} <= set(steps[-1].losses)


def test_the_plan_decides_each_detail_levels_terms():
    """Anchor and look are decided once, in the plan: no anchor at detail_anchor 0, no look at
    detail_style 0, with masks, or where a tile reduced to the painted size would be under 32 px."""
    base = StyleConfig(**{**SMALL, "size": 256, "paint_size": 64, "scales": 1, "iterations": 4})
    sizes = [stripes_image().size]
    plan = plan_run((256, 192), sizes, base.replace(detail_anchor=10.0, detail_style=1.0))
    first, *details = plan.levels
    assert first.painted is None and first.anchor == 0.0 and first.look == 0.0
    assert [lv.painted for lv in details] == [0, 0] and [lv.look for lv in details] == [2.0, 4.0]
    assert [lv.anchor for lv in details] == [1.0, 1.0]  # (half the size ratio to the level below)
    off = plan_run((256, 192), sizes, base.replace(detail_anchor=0.0, detail_style=0.0))
    assert all(lv.anchor == 0.0 and lv.look == 0.0 for lv in off.levels)
    square = base.replace(detail_style=1.0, tile_size=128)
    tiled = plan_run((256, 256), sizes, square.replace(paint_size=128))
    tile = min(tiled.levels[-1].passes[0].tiles[0].size)  # (a tile of 128 px at most)
    assert tile / 2 >= 32 and tiled.levels[-1].look == 2.0  # (its tiles reduced twice are read)
    small = plan_run((256, 256), sizes, square.replace(paint_size=32))
    assert [lv.look for lv in small.levels] == [
        0.0,
        2.0,
        4.0,
        0.0,
    ]  # (the last level's tiles / 8: under 32 px)


def test_a_wide_photo_painted_small_is_one_line_naming_paint_size():
    cfg = StyleConfig(**{**SMALL, "size": 600, "paint_size": 64})
    with pytest.raises(ArtstyleError) as info:
        plan_run((600, 100), [stripes_image().size], cfg)
    assert info.value.settings == ["paint_size", "paint_size"] and "at least 192" in str(info.value)
    assert plan_run((600, 100), [stripes_image().size], cfg.replace(paint_size=192)).levels[0].size == (
        192,
        32,
    )


def test_detail_levels_match_the_shallow_layers_to_the_painting_at_no_more_than_its_own_pixels():
    cfg = StyleConfig(size=2048, native_blocks=2)
    plan = plan_run((1024, 768), [(650, 483), (1600, 1200)], cfg)
    by_side = {max(lv.size): lv for lv in plan.levels}
    assert [max(s) for s in by_side[2048].style_sizes] == [2048, 2048]  # (the deep layers: as today)
    assert by_side[2048].native_sizes == ((650, 483), (1600, 1200))  # never enlarged
    assert by_side[1024].native_sizes == ((650, 483), (1024, 768))  # (a larger one reduced as usual)
    assert by_side[512].native_sizes == by_side[256].native_sizes == ()  # the painted levels: unchanged
    assert [round(lv.painting_px, 3) for lv in plan.levels] == [1.0, 1.0, 0.635, 0.317]
    today = plan_run((1024, 768), [(650, 483), (1600, 1200)], cfg.replace(native_blocks=0))
    assert all(lv.native_sizes == () for lv in today.levels)
    assert [dataclasses.replace(lv, native_sizes=()) for lv in plan.levels] == list(today.levels)
    assert Plan.from_dict(plan.to_dict()) == plan
    tiled = plan_run((1024, 768), [(650, 483)], cfg, int(3 * GB)).levels[-1]  # (its tiles share the targets)
    assert tiled.passes and tiled.native_sizes == ((650, 483),) and tiled.style_sizes == ((2048, 1522),)
    # a painting as large as the poster gives nothing to change
    assert all(lv.native_sizes == () for lv in plan_run((1024, 768), [(4096, 3072)], cfg).levels)
