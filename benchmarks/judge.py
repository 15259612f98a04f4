"""The judge: one recipe that measures any program's output, shared by ``race.py`` and ``quality.py``.

For an output image ``out`` of photo ``p`` in the style of painting ``s``, with the original Caffe
VGG19 (max pooling):

* content distance: ``|F(out) - F(p)| / |F(p)|`` at ``relu4_2``, the photo resized to the
  output's size;
* style distance at layer l: ``|G_l(out) - G_l(s)| / |G_l(s)|`` (Frobenius norms of Gram
  matrices, so the Gram normalisation cancels), the painting at ``painting_size`` px on its long
  side; the style distance is the mean over ``relu1_1 ... relu5_1``.

Lower is better for both; the two pull against each other, so they are read together.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from artstyle import StyleConfig
from artstyle.engine.runtime import get_weights
from artstyle.images.decode import load_image
from artstyle.images.geometry import fit_long_side, resize, to_tensor
from artstyle.layers import layer, vgg_layers
from artstyle.model.losses import gram_matrix
from artstyle.model.network import VGGFeatures

#: The first ReLU of each block (relu1_1 ... relu5_1) and relu4_2, read from the layer table.
STYLE_LAYERS = tuple(x.name for x in vgg_layers("vgg19") if x.kind == "relu" and x.index == 1)
CONTENT_LAYER = layer("vgg19", "relu4_2").name


class Judge:
    """Distances measured the same way for every output; painting targets are cached by path."""

    def __init__(self, painting_size: int = 512) -> None:
        self.net = VGGFeatures("vgg19", get_weights(StyleConfig()), [CONTENT_LAYER, *STYLE_LAYERS], "max")
        self.painting_size = painting_size
        self._grams: dict[str, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def _style(self, painting: Path) -> dict[str, torch.Tensor]:
        key = str(painting)
        if key not in self._grams:
            s = load_image(painting)
            feats = self.net(to_tensor(resize(s, fit_long_side(s.size, self.painting_size))))
            self._grams[key] = {k: gram_matrix(feats[k]) for k in STYLE_LAYERS}
        return self._grams[key]

    @torch.no_grad()
    def measure(self, out: Path | Image.Image, photo: Path, painting: Path) -> dict[str, float]:
        """``content``, ``style`` (mean over layers) and one entry per style layer."""
        im = load_image(out) if isinstance(out, Path) else out.convert("RGB")
        f = self.net(to_tensor(im))
        p = self.net(to_tensor(resize(load_image(photo), im.size)))[CONTENT_LAYER]
        result = {"content": float((f[CONTENT_LAYER] - p).norm() / p.norm())}
        per_layer = {
            k: float((gram_matrix(f[k]) - g).norm() / g.norm()) for k, g in self._style(painting).items()
        }
        result["style"] = sum(per_layer.values()) / len(per_layer)
        result.update(per_layer)
        return result
