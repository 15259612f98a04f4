"""Sizes and tensors: the smallest side the network reads, fitting a long side, resizing, and
images as (1, 3, H, W) tensors in 0-255 pixel units.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from artstyle.config import MIN_SIDE

__all__ = ["MIN_SIDE", "fit_long_side", "resize", "to_image", "to_tensor", "upsample"]


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``long_side``, keeping the aspect ratio."""
    w, h = size
    s = long_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def resize(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """High-quality resize (Lanczos, with Pillow's antialiasing when shrinking)."""
    if im.size == size:
        return im
    return im.resize(size, Image.Resampling.LANCZOS)


def to_tensor(im: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB image to a float tensor of shape (1, 3, H, W) in 0-255 pixel units."""
    a = np.asarray(im.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).unsqueeze(0).to(device)


def to_image(t: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) tensor in 0-255 pixel units to an RGB image (clipped, rounded)."""
    a = t.detach().float().squeeze(0).permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8)
    return Image.fromarray(a.cpu().numpy(), "RGB")


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` (1, C, H, W) resized to ``size`` (w, h), bicubic."""
    w, h = size
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
