"""Optical flow between frames, warping along it, and where it can be trusted (Ruder et al. 2016):
the reliability ``c`` is 0 where the forward and backward flows disagree (occlusions,
``|b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``) and at motion boundaries
(``|grad b|^2 > 0.01 |b|^2 + 0.002``), 1 elsewhere. Flow is OpenCV's DIS (or Farneback) on the
input frames.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from artstyle.runs.video import libs


def _gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.uint8)


def flow(a: Image.Image, b: Image.Image, method: str = "dis") -> np.ndarray:
    """Flow from ``a`` to ``b`` (H x W x 2, pixels): ``a(x) ~ b(x + flow(x))``."""
    _, cv2 = libs()
    ga, gb = _gray(a), _gray(b)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 21, 5, 7, 1.5, 0)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(ga, gb, None)


def warp(image: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``image`` (of frame t-1, H x W x C float) warped onto frame t by the flow ``back`` (t -> t-1)."""
    _, cv2 = libs()
    h, w = back.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + back[..., 0], gy + back[..., 1]
    return cv2.remap(image.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliability(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Ruder et al.'s c: 1 where the backward flow (t -> t-1) is trusted, 0 at occlusions
    (forward-backward disagreement) and motion boundaries. H x W float32."""
    fb = warp(fwd, back)  # f(x + b(x))
    disagree = ((back + fb) ** 2).sum(2) > 0.01 * ((back**2).sum(2) + (fb**2).sum(2)) + 0.5
    gy_u, gx_u = np.gradient(back[..., 0])
    gy_v, gx_v = np.gradient(back[..., 1])
    boundary = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2 > 0.01 * (back**2).sum(2) + 0.002
    return (~(disagree | boundary)).astype(np.float32)


def temporal_error(out: Image.Image, previous_out: Image.Image, back: np.ndarray, c: np.ndarray) -> float:
    """Mean squared difference (0-255 units) between a frame and the previous output warped onto it,
    over the reliable pixels: the flicker measure."""
    warped = warp(np.asarray(previous_out, np.float32), back)
    d = ((np.asarray(out, np.float32) - warped) ** 2).mean(2)
    return float((d * c).sum() / max(c.sum(), 1.0))
