"""VGG16/VGG19 feature extractors with the study's layer names, cut after the deepest layer a run
needs, with the input convention of their weights built in.

Layer names: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., pool5``. The extractor takes
images in RGB 0-255 pixel units and returns a dict of the requested layers' activations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from artstyle.errors import ArtstyleError
from artstyle.layers import check_layers, deepest, shapes, vgg_layers
from artstyle.layers import layer as layer_entry
from artstyle.model.weights import LoadedWeights

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocess(nn.Module):
    """RGB 0-255 pixels to the input convention of the weights.

    ``caffe``: BGR, 0-255, minus (103.939, 116.779, 123.68). ``torchvision``: RGB / 255, minus
    ImageNet mean, divided by ImageNet std.
    """

    def __init__(self, convention: str) -> None:
        super().__init__()
        if convention == "caffe":
            scale = torch.ones(3)
            shift = torch.tensor(CAFFE_MEAN_BGR[::-1])  # as RGB
            self.bgr = True
        elif convention == "torchvision":
            scale = 1 / (255 * torch.tensor(IMAGENET_STD))
            shift = 255 * torch.tensor(IMAGENET_MEAN)
            self.bgr = False
        else:
            raise ValueError(convention)
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.register_buffer("shift", shift.view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.shift) * self.scale
        return x.flip(1) if self.bgr else x


class VGGFeatures(nn.Module):
    """The layers of a VGG network up to the deepest of ``layers``, frozen, in eval mode.

    ``forward(x)`` returns ``{name: activation}`` for every name in ``layers``. ReLUs run in place
    except after a convolution whose output is itself requested.
    """

    def __init__(
        self,
        network: str,
        weights: LoadedWeights,
        layers: Sequence[str],
        pooling: str = "max",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        check_layers(network, layers)
        if pooling not in ("max", "avg"):
            raise ArtstyleError(f"unknown pooling {pooling!r}; choose max or avg")
        self.layers = tuple(dict.fromkeys(layers))
        table = vgg_layers(network)[: deepest(network, self.layers) + 1]
        self.names = [entry.name for entry in table]
        self.network, self.pooling, self.convention = network, pooling, weights.convention
        self.preprocess = Preprocess(weights.convention)
        self.body = nn.ModuleDict()
        convs = {entry.block * 100 + entry.index: entry.name for entry in table if entry.kind == "conv"}
        for entry in table:
            name = entry.name
            if entry.kind == "conv":
                conv = nn.Conv2d(entry.in_channels, entry.channels, 3, padding=1)
                conv.weight.data.copy_(weights.state[f"{name}.weight"])
                conv.bias.data.copy_(weights.state[f"{name}.bias"])
                self.body[name] = conv
            elif entry.kind == "relu":
                # in place, unless the convolution before it is itself requested
                inplace = convs[entry.block * 100 + entry.index] not in self.layers
                self.body[name] = nn.ReLU(inplace=inplace)
            else:
                self.body[name] = pool_module(pooling)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        wanted = self.layers
        out: dict[str, torch.Tensor] = {}
        for name, module in self.body.items():
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


def pool_module(pooling: str) -> nn.Module:
    """The network's 2 x 2 pooling of kind ``pooling`` (max or avg)."""
    return nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)


def feature_shape(network: str, layer: str, height: int, width: int) -> tuple[int, int, int]:
    """(channels, height, width) of ``layer``'s activation for an input of ``height`` x ``width``."""
    for entry, h, w in shapes(network, height, width):
        if entry.name == layer:
            return entry.channels, h, w
    raise ArtstyleError(f"unknown layer {layer!r} for {network}")


def forward_flops(network: str, layers: Sequence[str], height: int, width: int) -> float:
    """Floating-point operations of one forward pass of the convolutions up to the deepest of
    ``layers`` (2 per multiply-add). A backward pass to the input costs about the same again."""
    used = shapes(network, height, width)[: deepest(network, layers) + 1]
    return sum(2.0 * e.in_channels * e.channels * 9 * h * w for e, h, w in used if e.kind == "conv")


def activation_bytes(
    network: str, layers: Sequence[str], height: int, width: int, pooling: str = "max"
) -> int:
    """Bytes autograd keeps for one forward pass up to the deepest of ``layers`` at ``height`` x
    ``width``: every convolution's output in float32 (the ReLUs run in place on it) and every
    pooling's output, plus max pooling's int64 indices."""
    total = 0
    for e, h, w in shapes(network, height, width)[: deepest(network, layers) + 1]:
        if e.kind == "conv":
            total += 4 * e.channels * h * w
        elif e.kind == "pool":
            total += (4 + (8 if pooling == "max" else 0)) * e.channels * h * w
    return total


def guide_at(
    guide: torch.Tensor, network: str, layer: str, shape: tuple[int, int], pooling: str
) -> torch.Tensor:
    """A guide (a mask, (1, 1, H, W) at the input's size) as seen at ``layer`` (whose activation is
    ``shape`` (h, w)): pooled by the network's own pooling as often as the layer table says lies
    before the layer; a size the pooling does not hit exactly (odd sizes) is then interpolated."""
    pool = pool_module(pooling)
    for _ in range(layer_entry(network, layer).pools):
        guide = pool(guide)
    if tuple(guide.shape[-2:]) != shape:
        guide = nn.functional.interpolate(guide, size=shape, mode="bilinear", align_corners=False)
    return guide
