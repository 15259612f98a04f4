"""A painting read in pieces gives the statistics of the whole (the targets of a tiled level)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from artstyle import StyleConfig
from artstyle.engine.objective import painting_stats
from artstyle.model.losses import GramStyleLoss, MeanCovStyleLoss
from artstyle.model.network import VGGFeatures
from tests.conftest import random_weights

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@pytest.mark.parametrize("kind", [GramStyleLoss, MeanCovStyleLoss])
def test_statistics_read_in_pieces_are_those_of_the_whole(kind):
    net = VGGFeatures("vgg19", random_weights(), LAYERS)
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 30, 40, generator=g) * 255, size=(300, 410))
    whole = net(image)
    stats = painting_stats(net, image, "vgg19", LAYERS, 128)
    for layer in LAYERS:
        a, b = kind(whole[layer]), kind(stats=stats[layer])
        assert stats[layer].count == whole[layer].shape[-1] * whole[layer].shape[-2]
        assert a.blank_loss() == pytest.approx(b.blank_loss(), rel=0.02)
        for name, buf in a.named_buffers():
            ref = dict(b.named_buffers())[name]
            assert ((buf - ref).norm() / buf.norm()) < 0.03, (layer, name)


def test_a_tiled_level_reads_a_large_painting_in_pieces(monkeypatch):
    from artstyle.engine import objective

    calls = []
    real = objective.painting_stats
    monkeypatch.setattr(
        objective, "painting_stats", lambda *a, **k: calls.append(a[1].shape) or real(*a, **k)
    )
    net = VGGFeatures("vgg19", random_weights(), LAYERS)
    cfg = StyleConfig(style_layers=LAYERS, content_layers=("relu4_2",))
    features = partial(objective.network_features, net, False)
    small, big = torch.rand(1, 3, 100, 100) * 255, torch.rand(1, 3, 300, 200) * 255
    objective.StyleTargets.build(features, cfg, [small, big], tile=128)
    assert calls == [big.shape]  # only the painting larger than a tile
