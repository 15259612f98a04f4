"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").

* ``luminance``: style transfer runs on luminance only (photo and painting as gray images, the
  painting's luminance matched to the photo's mean and spread); the result's luminance is then
  combined with the photo's chrominance (YIQ space).
* ``transport_color`` (the ``transported`` start): the photo's colours moved onto the painting's
  whole colour distribution, not only its mean and covariance, by sliced optimal transport
  (Pitié et al. 2007, "Automated colour grading using colour distribution transfer").
* ``histogram``: the painting's colours are mapped so that their mean and covariance equal the
  photo's, ``x' = C_p^1/2 C_s^-1/2 (x - mu_s) + mu_p`` with symmetric matrix square roots, before
  an ordinary transfer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image, ImageFilter

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
    return _img(combine_luminance_array(_arr(result), photo))


def combine_luminance_array(result: np.ndarray, photo: Image.Image) -> np.ndarray:
    """:func:`combine_luminance` on an (H, W, 3) float RGB array in 0-255 (no rounding)."""
    size = (result.shape[1], result.shape[0])
    if photo.size != size:
        photo = photo.resize(size, Image.Resampling.LANCZOS)
    yiq = to_yiq(_arr(photo))
    yiq[..., 0] = to_yiq(result)[..., 0]
    return from_yiq(yiq)


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


def transport_color(
    photo: Image.Image, style: Image.Image, iterations: int = 12, seed: int = 0
) -> Image.Image:
    """``photo`` with its colour distribution moved onto ``style``'s: first mean and covariance
    (:func:`match_color`), then ``iterations`` rounds of 1-D histogram matching along random
    orthonormal axes (sliced optimal transport), which also carries over the painting's flat,
    saturated planes and its palette's gaps that a covariance cannot describe. Deterministic."""
    # (smoothed first: histogram matching sorts pixels, so in a flat sky it would sort JPEG noise and
    # blow it up into blocks of the painting's colours; a gradient stays a gradient)
    smooth = match_color(photo, style).filter(ImageFilter.GaussianBlur(2))
    x = _arr(smooth).reshape(-1, 3)
    for rot, quantiles in _painting_axes(style, iterations, seed):
        xp = x @ rot
        for k in range(3):  # each axis: the photo's quantiles mapped onto the painting's
            xp[:, k] = np.interp(xp[:, k], np.quantile(xp[:, k], _LEVELS), quantiles[k])
        x = xp @ rot.T
    return _img(x.reshape(photo.height, photo.width, 3))


_LEVELS = np.linspace(0.0, 1.0, 1025)
#: The painting's side of the transport (its random axes and its quantiles along them), by the
#: painting's pixels: the same for every photo, so a video's frames or a batch's photos sort the
#: painting once, not once each (the result is the same to the bit).
_AXES: OrderedDict[tuple[str, int, int], list[tuple[np.ndarray, list[np.ndarray]]]] = OrderedDict()
_AXES_LOCK = threading.Lock()


def _painting_axes(
    style: Image.Image, iterations: int, seed: int
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    target = _arr(style).reshape(-1, 3)
    key = (hashlib.sha1(target.tobytes()).hexdigest(), iterations, seed)
    with _AXES_LOCK:
        if key in _AXES:
            _AXES.move_to_end(key)
            return _AXES[key]
    rng = np.random.default_rng(seed)
    axes = []
    for _ in range(iterations):
        rot, _r = np.linalg.qr(rng.normal(size=(3, 3)))
        tp = target @ rot
        axes.append((rot, [np.quantile(tp[:, k], _LEVELS) for k in range(3)]))
    with _AXES_LOCK:
        _AXES[key] = axes
        while len(_AXES) > 8:
            _AXES.popitem(last=False)
    return axes
