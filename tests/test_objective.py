"""The objective sums the terms it is given: a new term is one append."""

import pytest
import torch

from artstyle import StyleConfig
from artstyle.engine.objective import Objective, Term
from artstyle.engine.runtime import get_weights
from artstyle.engine.stylizer import Stylizer
from artstyle.model.network import VGGFeatures
from tests.conftest import gradient_image, stripes_image

pytestmark = pytest.mark.usefixtures("tiny_weights")


def _objective(**kw):
    from artstyle.images.geometry import to_tensor

    cfg = StyleConfig(
        size=48, scales=1, style_layers=("relu1_1", "relu2_1"), content_layers=("relu2_2",), **kw
    )
    net = VGGFeatures("vgg19", get_weights(cfg), cfg.active_layers())
    return Objective(net, cfg, to_tensor(gradient_image()), [to_tensor(stripes_image())]), cfg


def test_standard_terms_and_their_kinds():
    obj, _ = _objective()
    assert [t.kind for t in obj.terms] == ["content", "style", "style", "tv"]
    assert [t.layer for t in obj.terms] == ["relu2_2", "relu1_1", "relu2_1", None]
    x = torch.rand(1, 3, 40, 48) * 255
    total, parts = obj(x)
    assert set(parts) == {"content", "style", "tv"}
    assert float(total) == pytest.approx(float(sum(parts.values())))


def test_relative_terms_are_one_at_a_blank_feature_map():
    obj, _ = _objective(content_weight=1.0, style_weight=1.0, tv_weight=0.0)
    for t in obj.terms:
        feats = {t.layer: torch.zeros_like(t.loss.target) if t.kind == "content" else None}
        if t.kind == "content":
            assert float(t(feats, None)) == pytest.approx(1.0, rel=1e-5)
        else:  # a blank map's Gram loss is mean(A^2): the weight is its inverse times the layer share
            c = t.loss.target.shape[-1]
            blank = torch.zeros(1, c, 5, 5)
            assert float(t({t.layer: blank}, None)) == pytest.approx(0.5, rel=1e-5)  # 2 layers, equal


def test_a_new_term_is_one_append_and_is_reported_by_kind():
    obj, _ = _objective()
    x = torch.rand(1, 3, 40, 48) * 255
    before, _ = obj(x)
    target = torch.full_like(x, 128.0)
    obj.terms.append(Term("temporal", 2.0, lambda y: ((y - target) ** 2).mean()))
    total, parts = obj(x)
    assert float(parts["temporal"]) == pytest.approx(2.0 * float(((x - target) ** 2).mean()), rel=1e-6)
    assert float(total) == pytest.approx(float(before) + float(parts["temporal"]), rel=1e-6)


def test_a_run_reports_every_kind_even_with_tv_off():
    r = Stylizer(stripes_image(), size=48, scales=1, iterations=2, tv_weight=0.0).stylize(gradient_image())
    assert r.history[-1]["tv"] == 0.0 and {"content", "style", "total"} <= set(r.history[-1])


def test_the_look_term_is_the_style_terms_of_the_reduced_picture():
    from artstyle.engine.objective import Detail, ReducedStyle, StyleTargets
    from artstyle.images.geometry import to_tensor

    obj, cfg = _objective(detail_style=1.0)
    small = StyleTargets.build(obj.features, cfg, [to_tensor(stripes_image(24, 24))])
    x = (torch.rand(1, 3, 64, 80) * 255).requires_grad_()
    look = ReducedStyle(obj.features, small, 2.0)
    reduced = torch.nn.functional.interpolate(x.detach(), size=(32, 40), mode="bilinear", antialias=True)
    feats = obj.features(reduced)
    by_hand = sum(w * small.losses[s][layer](feats[layer]) for s, layer, w in small.terms)
    assert float(look(x.detach())) == pytest.approx(float(by_hand), rel=1e-5) and float(by_hand) > 0
    look(x).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    # a Detail gives the terms the plan chose for its level (the plan decides: test_plan.py)
    kinds = lambda d: [t.kind for t in d.terms(obj, x.detach(), cfg.replace(detail_anchor=10.0))]  # noqa: E731
    assert kinds(Detail(1.0, small, 2.0)) == ["anchor", "look"]
    assert kinds(Detail(0.0, small, 2.0)) == ["look"] and kinds(Detail(1.0, None, 2.0)) == ["anchor"]
    assert kinds(Detail(0.0, None, 2.0)) == []


@pytest.mark.parametrize("style_loss", ["gram", "sliced_wasserstein"])
def test_native_layers_take_their_targets_from_the_painting_at_its_own_size(style_loss):
    from artstyle.engine.objective import StyleTargets
    from artstyle.images.geometry import to_tensor

    obj, cfg = _objective(style_loss=style_loss)
    big, own = to_tensor(stripes_image(96, 96)), to_tensor(stripes_image(40, 40))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    mixed = StyleTargets.build(obj.features, cfg, [big], g(), native=[own], native_layers=["relu1_1"])
    at_big = StyleTargets.build(obj.features, cfg, [big], g())
    at_own = StyleTargets.build(obj.features, cfg, [own], g())
    x = torch.rand(1, 3, 64, 64) * 255
    feats = obj.features(x)
    loss = lambda t, layer: float(t.losses[0][layer](feats[layer]))  # noqa: E731
    assert list(mixed.losses[0]) == ["relu1_1", "relu2_1"]  # (the layers' order kept)
    assert loss(mixed, "relu1_1") == pytest.approx(loss(at_own, "relu1_1"), rel=1e-5)
    assert loss(mixed, "relu1_1") != pytest.approx(loss(at_big, "relu1_1"), rel=1e-3)
    assert mixed.terms[0][2] == pytest.approx(at_own.terms[0][2])  # (its weight: its own target's scale)
    if style_loss == "gram":  # (sliced Wasserstein's projections are drawn in another order)
        assert loss(mixed, "relu2_1") == pytest.approx(loss(at_big, "relu2_1"), rel=1e-5)
