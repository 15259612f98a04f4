"""Spatial control: masks per painting (a guide on every style loss), region maps, and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle import stylize
from artstyle.engine.masks import as_masks, region_masks
from artstyle.errors import ArtstyleError
from artstyle.model.losses import STYLE_LOSSES, Guided, SlicedWassersteinStyleLoss
from artstyle.model.network import guide_at

W, H = 64, 48


def solid_stripes(rgb: tuple[int, int, int], size: int = 64) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    a = np.zeros((size, size, 3), np.uint8)
    on = ((xx + yy) // 4) % 2 == 0
    a[on] = rgb
    a[~on] = (np.array(rgb) * 0.4).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def halves() -> tuple[Image.Image, Image.Image]:
    left = np.zeros((H, W), np.uint8)
    left[:, : W // 2] = 255
    return Image.fromarray(left, "L"), Image.fromarray(255 - left, "L")


def _loss(kind: str, target: torch.Tensor) -> torch.nn.Module:
    if kind == "sliced_wasserstein":
        return SlicedWassersteinStyleLoss(target, torch.Generator().manual_seed(1))
    return STYLE_LOSSES[kind](target)


@pytest.mark.parametrize("kind", list(STYLE_LOSSES))
def test_a_full_mask_is_the_plain_loss_and_a_region_is_the_region_cut_out(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.rand(1, 8, 6, 10, generator=g)
    loss = _loss(kind, torch.rand(1, 8, 6, 10, generator=g))
    full = Guided(loss, torch.ones(1, 1, 6, 10))
    assert torch.allclose(full(f), loss(f), rtol=1e-4, atol=1e-6)
    left = torch.zeros(1, 1, 6, 10)
    left[..., :5] = 1
    only_left = Guided(loss, left)(f)
    # the region alone, at its own size: the statistic is the region's, normalised by its area
    assert torch.allclose(only_left, loss(f[..., :5].contiguous()), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(only_left, loss(f), rtol=1e-3)
    # and the other half of the picture has no say in it
    f2 = f.clone()
    f2[..., 5:] = torch.rand(1, 8, 6, 5, generator=g) * 5
    assert torch.allclose(Guided(loss, left)(f2), only_left, rtol=1e-4, atol=1e-6)


def test_guides_follow_the_network_pooling_from_the_layer_table() -> None:
    m = torch.zeros(1, 1, 16, 16)
    m[..., :8] = 1
    assert guide_at(m, "vgg19", "relu1_1", (16, 16), "max").shape[-2:] == (16, 16)
    deep = guide_at(m, "vgg19", "relu3_1", (4, 4), "avg")
    assert deep.shape[-2:] == (4, 4) and deep[..., :2].min() == 1 and deep[..., 2:].max() == 0
    odd = guide_at(m, "vgg19", "relu2_1", (7, 9), "max")  # a size pooling does not hit: interpolated
    assert odd.shape[-2:] == (7, 9)
    assert guide_at(m, "vgg19", "pool2", (4, 4), "max").shape[-2:] == (4, 4)  # after its own pooling


@pytest.mark.usefixtures("tiny_weights")
@pytest.mark.parametrize("kind", list(STYLE_LOSSES))
def test_each_half_takes_its_own_paintings_statistics(kind: str) -> None:
    photo = Image.new("RGB", (W, H), (128, 128, 128))
    red, blue = solid_stripes((230, 40, 30)), solid_stripes((30, 50, 230))
    settings = {"size": W, "scales": 1, "iterations": 40, "initial": "content", "style_weight": 100}
    settings["style_loss"] = kind
    out = np.asarray(stylize(photo, [red, blue], masks=list(halves()), **settings).image, np.float64)
    left, right = out[:, : W // 2].reshape(-1, 3).mean(0), out[:, W // 2 :].reshape(-1, 3).mean(0)
    assert left[0] > left[2] + 20, left  # red painting on the left
    assert right[2] > right[0] + 20, right  # blue painting on the right
    swapped = stylize(photo, [blue, red], masks=list(halves()), **settings).image
    s = np.asarray(swapped, np.float64)
    assert s[:, : W // 2, 2].mean() > s[:, : W // 2, 0].mean() + 20  # the masks decide, not the order


@pytest.mark.usefixtures("tiny_weights")
def test_without_a_mask_the_photo_holds() -> None:
    photo = Image.new("RGB", (W, H), (128, 128, 128))
    left, _ = halves()
    settings = {"size": W, "scales": 1, "iterations": 30, "initial": "content", "style_weight": 100}
    out = np.asarray(stylize(photo, [solid_stripes((230, 40, 30))], masks=[left], **settings).image, float)
    assert abs(out[:, -8:].mean() - 128) < abs(out[:, :8].mean(axis=(0, 1))[0] - 128)


def test_region_map_to_masks(tmp_path: Path) -> None:
    a = np.zeros((H, W, 3), np.uint8)
    a[:, : W // 2] = (255, 0, 0)
    a[:, W // 2 :] = (0, 0, 255)
    p = tmp_path / "map.png"
    Image.fromarray(a).save(p)
    red, blue = region_masks(p, ["red", "#0000ff"], 2)
    assert np.asarray(red)[:, : W // 2].min() == 255 and np.asarray(red)[:, W // 2 :].max() == 0
    assert np.asarray(blue)[:, W // 2 :].min() == 255
    with pytest.raises(ArtstyleError, match="not a colour"):
        region_masks(p, ["red", "bluish"], 2)
    with pytest.raises(ArtstyleError, match="1 region colours for 2 paintings"):
        region_masks(p, ["red"], 2)
    with pytest.raises(ArtstyleError, match="empty"):
        region_masks(p, ["red", "green"], 2)  # no green in the map


def test_bad_masks_are_one_clear_error(tmp_path: Path) -> None:
    left, _ = halves()
    with pytest.raises(ArtstyleError, match="1 style masks for 2 paintings"):
        as_masks([left], 2)
    with pytest.raises(ArtstyleError, match="empty"):
        as_masks([Image.new("L", (W, H), 0)], 1)
    text = tmp_path / "mask.png"
    text.write_text("not an image")
    with pytest.raises(ArtstyleError, match="not an image"):
        as_masks([text], 1)


@pytest.mark.usefixtures("tiny_weights")
def test_masks_apply_with_no_iterations_too() -> None:
    """The start alone (--iterations 0) is each region's painting's start, as in a longer run."""
    photo = Image.new("RGB", (W, H), (128, 128, 128))
    red, blue = solid_stripes((230, 40, 30)), solid_stripes((30, 50, 230))
    settings = {"size": W, "scales": 1, "iterations": 0, "initial": "matched"}
    out = np.asarray(stylize(photo, [red, blue], masks=list(halves()), **settings).image, np.float64)
    left, right = out[:, : W // 2].reshape(-1, 3).mean(0), out[:, W // 2 :].reshape(-1, 3).mean(0)
    assert left[0] > left[2] + 20 and right[2] > right[0] + 20, (left, right)
