"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

* ``luminance``: style transfer runs on luminance only (photo and painting as gray images, the
  painting's luminance matched to the photo's mean and spread); the result's luminance is then
  combined with the photo's chrominance (YIQ space).
* ``histogram``: the painting's colours are mapped so that their mean and covariance equal the
  photo's, ``x' = C_p^1/2 C_s^-1/2 (x - mu_s) + mu_p`` with symmetric matrix square roots, before
  an ordinary transfer.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float64)


def _img(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def to_yiq(a: np.ndarray) -> np.ndarray:
    """(..., 3) RGB to YIQ."""
    return a @ _RGB_TO_YIQ.T


def from_yiq(a: np.ndarray) -> np.ndarray:
    return a @ _YIQ_TO_RGB.T


def luminance_image(im: Image.Image, like: Image.Image | None = None) -> Image.Image:
    """The luminance of ``im`` as a gray RGB image; with ``like``, its mean and standard deviation
    are matched to those of ``like``'s luminance (Gatys 2016, eq. 5)."""
    y = to_yiq(_arr(im))[..., 0]
    if like is not None:
        ref = to_yiq(_arr(like))[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-8) * ref.std() + ref.mean()
    return _img(np.repeat(y[..., None], 3, axis=2))


def combine_luminance(result: Image.Image, photo: Image.Image) -> Image.Image:
    """``result``'s luminance with ``photo``'s chrominance (I and Q), same size as ``result``."""
    if photo.size != result.size:
        photo = photo.resize(result.size, Image.Resampling.LANCZOS)
    yiq = to_yiq(_arr(photo))
    yiq[..., 0] = to_yiq(_arr(result))[..., 0]
    return _img(from_yiq(yiq))


def _sqrtm(c: np.ndarray, inverse: bool = False) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    vals = np.clip(vals, 1e-5, None)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def match_color(style: Image.Image, photo: Image.Image) -> Image.Image:
    """``style`` with its colour mean and covariance matched to ``photo``'s."""
    s = _arr(style).reshape(-1, 3)
    p = _arr(photo).reshape(-1, 3)
    mu_s, mu_p = s.mean(0), p.mean(0)
    cov_s = np.cov(s, rowvar=False) + np.eye(3) * 1e-3
    cov_p = np.cov(p, rowvar=False) + np.eye(3) * 1e-3
    a = _sqrtm(cov_p) @ _sqrtm(cov_s, inverse=True)
    out = (s - mu_s) @ a.T + mu_p
    return _img(out.reshape(style.height, style.width, 3))
