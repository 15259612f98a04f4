"""VGG16/VGG19 feature extractors with the study's layer names, cut after the deepest layer a run
needs, with the input convention of their weights built in.

Layer names: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., pool5``. The extractor takes
images in RGB 0-255 pixel units and returns a dict of the requested layers' activations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from artstyle.errors import ArtstyleError
from artstyle.weights import BLOCKS, CHANNELS, LoadedWeights

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(network: str) -> list[str]:
    """All layer names of ``network`` in forward order."""
    if network not in BLOCKS:
        raise ArtstyleError(f"unknown network {network!r}; choose vgg19 or vgg16")
    names: list[str] = []
    for b, n in enumerate(BLOCKS[network]):
        for i in range(n):
            names += [f"conv{b + 1}_{i + 1}", f"relu{b + 1}_{i + 1}"]
        names.append(f"pool{b + 1}")
    return names


def check_layers(network: str, layers: Iterable[str]) -> None:
    known = set(layer_names(network))
    bad = [name for name in layers if name not in known]
    if bad:
        raise ArtstyleError(
            f"unknown layer(s) {', '.join(bad)} for {network}; layers are named like relu4_2, "
            f"conv1_1, pool3 (blocks of {', '.join(map(str, BLOCKS[network]))} convolutions)"
        )


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
        all_names = layer_names(network)
        self.layers = tuple(dict.fromkeys(layers))
        last = max(all_names.index(name) for name in self.layers)
        self.names = all_names[: last + 1]
        self.network, self.pooling, self.convention = network, pooling, weights.convention
        self.preprocess = Preprocess(weights.convention)
        self.body = nn.ModuleDict()
        cin = 3
        for name in self.names:
            kind = name[:4]
            if kind == "conv":
                cout = CHANNELS[int(name[4]) - 1]
                conv = nn.Conv2d(cin, cout, 3, padding=1)
                conv.weight.data.copy_(weights.state[f"{name}.weight"])
                conv.bias.data.copy_(weights.state[f"{name}.bias"])
                self.body[name] = conv
                cin = cout
            elif kind == "relu":
                inplace = f"conv{name[4:]}" not in self.layers
                self.body[name] = nn.ReLU(inplace=inplace)
            else:
                self.body[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
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


def _walk(network: str, height: int, width: int) -> Iterator[tuple[str, int, int, int, int]]:
    """``(name, input channels, channels, height, width)`` of every layer's output, in order."""
    c, h, w = 3, height, width
    for name in layer_names(network):
        cin = c
        if name.startswith("conv"):
            c = CHANNELS[int(name[4]) - 1]
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        yield name, cin, c, h, w


def feature_shape(network: str, layer: str, height: int, width: int) -> tuple[int, int, int]:
    """(channels, height, width) of ``layer``'s activation for an input of ``height`` x ``width``."""
    for name, _, c, h, w in _walk(network, height, width):
        if name == layer:
            return c, h, w
    raise ArtstyleError(f"unknown layer {layer!r} for {network}")


def forward_flops(network: str, layers: Sequence[str], height: int, width: int) -> float:
    """Floating-point operations of one forward pass of the convolutions up to the deepest of
    ``layers`` (2 per multiply-add). A backward pass to the input costs about the same again."""
    last = max(layer_names(network).index(name) for name in layers)
    convs = list(_walk(network, height, width))[: last + 1]
    return sum(2.0 * cin * c * 9 * h * w for name, cin, c, h, w in convs if name.startswith("conv"))


def activation_bytes(
    network: str, layers: Sequence[str], height: int, width: int, pooling: str = "max"
) -> int:
    """Bytes autograd keeps for one forward pass up to the deepest of ``layers`` at ``height`` x
    ``width``: every convolution's output in float32 (the ReLUs run in place on it) and every
    pooling's output, plus max pooling's int64 indices."""
    deepest = max(layer_names(network).index(name) for name in layers)
    total = 0
    for i, (name, _, c, h, w) in enumerate(_walk(network, height, width)):
        if i > deepest:
            break
        if name.startswith("conv"):
            total += 4 * c * h * w
        elif name.startswith("pool"):
            total += (4 + (8 if pooling == "max" else 0)) * c * h * w
    return total
