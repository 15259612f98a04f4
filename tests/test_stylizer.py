"""The reusable core: a Stylizer builds the network and the paintings' targets once."""

import numpy as np
import pytest

import artstyle
from artstyle import Stylizer
from artstyle.engine import objective
from artstyle.errors import ArtstyleError
from artstyle.images.geometry import resize
from tests.conftest import gradient_image, stripes_image

pytestmark = pytest.mark.usefixtures("tiny_weights")

CFG = dict(size=64, scales=2, coarse_min_size=32, iterations=3, coarse_iterations=3)


def test_each_call_gives_what_stylize_gives():
    one = artstyle.stylize(gradient_image(64, 48), stripes_image(), **CFG)
    s = Stylizer(stripes_image(), **CFG)
    for _ in range(2):
        again = s.stylize(gradient_image(64, 48))
        assert np.array_equal(np.asarray(again.image), np.asarray(one.image))
        assert [h["total"] for h in again.history] == [h["total"] for h in one.history]


def test_targets_and_network_are_built_once(monkeypatch):
    builds = []
    real = objective.StyleTargets.build.__func__
    monkeypatch.setattr(
        objective.StyleTargets,
        "build",
        classmethod(lambda cls, *a, **k: builds.append(1) or real(cls, *a, **k)),
    )
    s = Stylizer([stripes_image()], **CFG)
    for seed in range(3):
        s.stylize(gradient_image(64, 48, seed=seed))
    assert len(builds) == 1  # one per level size (here one level: 32 px would be too small), not per photo
    net = s.net
    s.stylize(gradient_image(48, 64))  # another shape: a new level size, the same network
    assert s.net is net and len(builds) == 2


def test_colour_preservation_recomputes_targets_per_photo(monkeypatch):
    s = Stylizer(stripes_image(), preserve_color="histogram", **CFG)
    a = s.stylize(gradient_image(64, 48, seed=1))
    b = artstyle.stylize(gradient_image(64, 48, seed=1), stripes_image(), preserve_color="histogram", **CFG)
    s.stylize(gradient_image(64, 48, seed=2))
    c = s.stylize(gradient_image(64, 48, seed=1))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(np.asarray(a.image), np.asarray(c.image))


def test_initial_image_is_where_the_run_starts():
    s = Stylizer(stripes_image(), size=48, scales=1, iterations=0)
    start = stripes_image(80, 80)
    r = s.stylize(gradient_image(), initial=start)
    expected = np.asarray(resize(start, r.image.size))
    assert r.image.size == (48, 40)
    assert np.abs(np.asarray(r.image).astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(ArtstyleError, match="initial"):
        s.stylize(gradient_image(), initial=12)


def test_bad_settings_fail_at_construction():
    with pytest.raises(ArtstyleError, match="style_blend_weights"):
        Stylizer([stripes_image()], style_blend_weights=(1, 2))
    with pytest.raises(ArtstyleError, match="style"):
        Stylizer([], **CFG)


def test_a_detail_level_reads_the_shallow_layers_from_the_painting_at_its_own_pixels(monkeypatch):
    seen = []
    real = objective.StyleTargets.build.__func__

    def spy(cls, features, cfg, styles, *a, native=(), native_layers=(), **k):
        shapes = lambda xs: [tuple(x.shape[-2:]) for x in xs]  # noqa: E731
        seen.append((shapes(styles), shapes(native), native_layers))
        return real(cls, features, cfg, styles, *a, native=native, native_layers=native_layers, **k)

    monkeypatch.setattr(objective.StyleTargets, "build", classmethod(spy))
    cfg = dict(size=128, paint_size=64, coarse_min_size=32, iterations=2, coarse_iterations=2)
    painting = stripes_image(48, 40)
    out = Stylizer(painting, native_blocks=1, **cfg).stylize(gradient_image(64, 48))
    assert seen == [
        ([(53, 64)], [], ("relu1_1",)),  # the painted level: every layer at style_scale (h, w)
        ([(107, 128)], [(40, 48)], ("relu1_1",)),  # the detail level: relu1_1 at the painting's own size
    ]
    today = Stylizer(painting, native_blocks=0, **cfg).stylize(gradient_image(64, 48))
    assert out.image.size == today.image.size == (128, 96)
    assert not np.array_equal(np.asarray(out.image), np.asarray(today.image))
