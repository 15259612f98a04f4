"""Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer"): one mask per painting, white where that painting applies.

A mask is read like any image and reduced to its luminance in [0, 1]; a colour-coded region map
becomes one mask per listed colour. At each level the masks are resized to the image, and at each
style layer they follow the network's pooling as the layer table says
(:func:`artstyle.model.network.guide_at`), so that every layer's guided statistic sees the region it
should (:class:`artstyle.model.losses.Guided`, for every style loss). Where no mask applies, only the
content and TV terms act.

A photo's transparency (``alpha`` ``keep``, :func:`kept_alpha`) goes the same way: its alpha is
every painting's mask (times the painting's own mask where one is given), so transparent pixels
do not drive the paintings' statistics; the run paints the photo's colours not composited on white
(:func:`artstyle.images.decode.transparency`), and the picture carries the alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageChops, ImageColor

from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError, setting
from artstyle.images.decode import as_image, transparency

#: How far (RGB distance) a region map's pixel may be from a listed colour and still count as it.
REGION_TOLERANCE = 48.0


def as_masks(masks: Sequence[Any], n_styles: int) -> list[Image.Image]:
    """Paths, PIL images or arrays to grayscale ("L") masks, one per painting; a wrong count or an
    empty (all black) mask is one ArtstyleError."""
    if len(masks) != n_styles:
        raise ArtstyleError(f"{len(masks)} style masks for {n_styles} paintings; give one mask per painting")
    out = []
    for i, m in enumerate(masks, start=1):
        name = str(m) if isinstance(m, (str, bytes)) or hasattr(m, "__fspath__") else f"style mask {i}"
        im = as_image(m, name).convert("L")
        if im.getextrema()[1] == 0:
            raise ArtstyleError(f"{name}: the mask is empty (all black): its painting would apply nowhere")
        out.append(im)
    return out


def region_masks(region_map: Any, colors: Sequence[str], n_styles: int) -> list[Image.Image]:
    """One mask per painting from a colour-coded map: painting i applies where the map has colour
    ``colors[i]`` (a name or ``#rrggbb``), within :data:`REGION_TOLERANCE`."""
    if len(colors) != n_styles:
        raise ArtstyleError(f"{len(colors)} region colours for {n_styles} paintings; give one per painting")
    rgb = np.asarray(as_image(region_map, str(region_map)), dtype=np.float64)
    masks = []
    for c in colors:
        try:
            want = np.array(ImageColor.getrgb(c.strip())[:3], dtype=np.float64)
        except ValueError:
            raise ArtstyleError(
                f"region colour {c!r}: not a colour (a name such as red, or #rrggbb)"
            ) from None
        hit = np.linalg.norm(rgb - want, axis=2) <= REGION_TOLERANCE
        masks.append(Image.fromarray((hit * 255).astype(np.uint8), "L"))
    return as_masks(masks, n_styles)


def mask_tensor(mask: Image.Image, size: tuple[int, int], device: torch.device | str) -> torch.Tensor:
    """A mask at ``size`` (w, h) as a (1, 1, H, W) tensor in [0, 1]."""
    a = np.asarray(mask.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return torch.from_numpy(a.copy())[None, None].to(device)


def kept_transparency(content: Image.Image, cfg: StyleConfig) -> tuple[Image.Image, Image.Image] | None:
    """The photo's (alpha, colours not on white) when the run keeps its transparency (``alpha``
    ``keep`` and a photo that has some, as decoded); None otherwise."""
    return transparency(content) if cfg.alpha == "keep" else None


def kept_alpha(content: Image.Image, cfg: StyleConfig, name: str = "the photo") -> Image.Image | None:
    """The photo's alpha ("L") when the run keeps it (:func:`kept_transparency`); None otherwise. A
    photo with nothing opaque is one ArtstyleError."""
    found = kept_transparency(content, cfg)
    if found is None:
        return None
    alpha = found[0]
    if alpha.getextrema()[1] == 0:
        raise ArtstyleError(
            f"{name} is transparent everywhere: there is nothing to paint; pass {setting('alpha')} white "
            "to paint it on white"
        )
    return alpha


def alpha_masks(alpha: Image.Image, masks: Sequence[Image.Image] | None, n_styles: int) -> list[Image.Image]:
    """Each painting's mask with the photo's ``alpha``: the alpha itself, or the painting's mask
    (as :func:`as_masks` made it) times the alpha."""
    if masks is None:
        return [alpha] * n_styles
    return [ImageChops.multiply(m.resize(alpha.size, Image.Resampling.BILINEAR), alpha) for m in masks]


def with_alpha(image: Image.Image, content: Image.Image, cfg: StyleConfig) -> Image.Image:
    """A finished picture (RGB, any size) with the photo's alpha when the run keeps it, resized
    to it; else the picture as it is."""
    found = kept_transparency(content, cfg)
    if found is None:
        return image
    out = image.copy()
    out.putalpha(found[0].resize(image.size, Image.Resampling.LANCZOS))
    return out
