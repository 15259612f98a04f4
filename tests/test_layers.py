"""The one VGG layer table."""

import itertools

import pytest

from artstyle.errors import ArtstyleError
from artstyle.layers import check_layers, conv_layers, layer, layer_names, shapes, vgg_layers


def test_layer_names_follow_the_study():
    v19, v16 = layer_names("vgg19"), layer_names("vgg16")
    assert len(v19) == 16 * 2 + 5 and len(v16) == 13 * 2 + 5
    assert v19[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in v19 and "relu5_4" not in v16 and v16[-1] == v19[-1] == "pool5"


def test_each_layer_knows_its_block_channels_poolings_and_keys():
    relu4_2 = layer("vgg19", "relu4_2")
    assert (relu4_2.block, relu4_2.index, relu4_2.channels, relu4_2.pools) == (4, 2, 512, 3)
    assert layer("vgg19", "pool4").pools == 4 and layer("vgg19", "relu1_1").pools == 0
    # torchvision's features: conv, relu per convolution and one pool per block
    assert (
        layer("vgg19", "conv5_4").torchvision_index == 34
        and layer("vgg16", "conv5_3").torchvision_index == 28
    )
    assert layer("vgg16", "pool5").torchvision_index == 30
    assert [c.caffe_key for c in conv_layers("vgg16")][:3] == ["block1_conv1", "block1_conv2", "block2_conv1"]
    # every convolution reads the channels the one before it wrote
    convs = conv_layers("vgg19")
    assert convs[0].in_channels == 3
    assert all(b.in_channels == a.channels for a, b in itertools.pairwise(convs))
    assert len(vgg_layers("vgg19")) == len(layer_names("vgg19"))


def test_shapes_halve_at_each_pooling():
    out = {e.name: (h, w) for e, h, w in shapes("vgg19", 33, 64)}
    assert out["relu1_1"] == (33, 64) and out["relu2_1"] == (16, 32) and out["pool5"] == (1, 2)


def test_unknown_layers_and_networks_are_one_clear_error():
    with pytest.raises(ArtstyleError, match=r"unknown layer.*relu5_4 for vgg16"):
        check_layers("vgg16", ["relu1_1", "relu5_4"])
    with pytest.raises(ArtstyleError, match="unknown network"):
        vgg_layers("vgg11")
