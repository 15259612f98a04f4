import pytest
import torch

from artstyle.errors import ArtstyleError
from artstyle.model.network import (
    CAFFE_MEAN_BGR,
    Preprocess,
    VGGFeatures,
    feature_shape,
    forward_flops,
)
from tests.conftest import random_weights


def test_truncated_after_the_deepest_requested_layer():
    net = VGGFeatures("vgg19", random_weights(), ["relu1_1", "relu3_1"])
    assert list(net.body)[-1] == "relu3_1"
    out = net(torch.rand(1, 3, 32, 40) * 255)
    assert set(out) == {"relu1_1", "relu3_1"}
    assert out["relu1_1"].shape == (1, 64, 32, 40) and out["relu3_1"].shape == (1, 256, 8, 10)
    assert all(not p.requires_grad for p in net.parameters())


def test_requested_conv_output_is_not_overwritten_by_an_inplace_relu():
    net = VGGFeatures("vgg16", random_weights("vgg16"), ["conv1_1", "relu1_1"])
    out = net(torch.rand(1, 3, 32, 32) * 255)
    assert (out["conv1_1"] < 0).any() and torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_pooling(pooling):
    net = VGGFeatures("vgg19", random_weights(), ["pool1"], pooling=pooling)
    kind = torch.nn.MaxPool2d if pooling == "max" else torch.nn.AvgPool2d
    assert isinstance(net.body["pool1"], kind)
    x = torch.rand(1, 3, 32, 32) * 255
    relu = VGGFeatures("vgg19", random_weights(), ["relu1_2"])(x)["relu1_2"]
    expected = (
        torch.nn.functional.max_pool2d(relu, 2)
        if pooling == "max"
        else torch.nn.functional.avg_pool2d(relu, 2)
    )
    assert torch.allclose(net(x)["pool1"], expected, atol=1e-4)


def test_unknown_layer_and_pooling():
    with pytest.raises(ArtstyleError, match="relu5_4 for vgg16"):
        VGGFeatures("vgg16", random_weights("vgg16"), ["relu5_4"])
    with pytest.raises(ArtstyleError, match="pooling"):
        VGGFeatures("vgg19", random_weights(), ["relu1_1"], pooling="min")


def test_caffe_preprocessing_is_bgr_minus_mean():
    x = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)
    y = Preprocess("caffe")(x).flatten().tolist()
    assert y == pytest.approx([30 - CAFFE_MEAN_BGR[0], 20 - CAFFE_MEAN_BGR[1], 10 - CAFFE_MEAN_BGR[2]])
    t = Preprocess("torchvision")(torch.full((1, 3, 1, 1), 255 * 0.485)).flatten()
    assert t[0].item() == pytest.approx(0.0, abs=1e-6)


def test_channels_last_gives_the_same_features():
    w = random_weights()
    x = torch.rand(1, 3, 40, 32) * 255
    a = VGGFeatures("vgg19", w, ["relu3_1"], channels_last=True)(x)["relu3_1"]
    b = VGGFeatures("vgg19", w, ["relu3_1"], channels_last=False)(x)["relu3_1"]
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-3)


def test_feature_shape():
    assert feature_shape("vgg19", "relu1_1", 64, 48) == (64, 64, 48)
    assert feature_shape("vgg19", "pool1", 64, 48) == (64, 32, 24)
    assert feature_shape("vgg16", "relu5_1", 65, 64) == (512, 4, 4)


def test_forward_flops_by_hand():
    # conv1_1 at 4x4: 2 * 3 * 64 * 9 * 16 ; conv1_2: 2 * 64 * 64 * 9 * 16
    assert forward_flops("vgg19", ["relu1_2"], 4, 4) == 2 * 9 * 16 * (3 * 64 + 64 * 64)
    assert forward_flops("vgg19", ["relu5_1"], 64, 64) > forward_flops("vgg16", ["relu5_1"], 64, 64)
