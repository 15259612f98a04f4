"""Images out: encoded in the format the suffix names, tagged sRGB, with the photo's date and
camera kept; written atomically, never over an input; 16-bit PNG and TIFF through OpenCV.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms

from artstyle.errors import ArtstyleError
from artstyle.files import OutputExistsError, atomic_write_bytes, check_not_input, probe_writable

#: Output formats we write, by file suffix.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


#: sRGB, the colour space every picture is painted in and every output is tagged with.
SRGB = ImageCms.createProfile("sRGB")


_SRGB_ICC = ImageCms.ImageCmsProfile(SRGB).tobytes()


def check_writable(
    path: str | os.PathLike[str], overwrite: bool, protect: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Check before any work starts that ``path`` can be written; returns it as a Path.

    ``protect`` are the run's inputs: an output naming one of them is refused even with
    ``overwrite`` (the result would destroy the photo it was made from).
    """
    p = Path(path)
    if p.suffix.lower() not in SAVE_FORMATS:
        raise ArtstyleError(
            f"{p}: unknown output format {p.suffix!r}; use one of {', '.join(sorted(SAVE_FORMATS))}"
        )
    check_not_input(p, protect)
    if p.is_dir():
        raise ArtstyleError(f"{p}: is a folder; give a file name such as {p / 'out.png'}")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise OutputExistsError(p)
    if p.exists() and not p.is_file():
        raise ArtstyleError(f"{p}: is not a regular file; refusing to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise ArtstyleError(f"{p}: folder {parent} does not exist")
    if not parent.is_dir():
        raise ArtstyleError(f"{p}: {parent} is a file, not a folder")
    probe_writable(parent, p)
    return p


def save_image(
    im: Image.Image,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    protect: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Save atomically in the format named by the suffix (see :func:`atomic_write_bytes`)."""
    p = Path(path)
    atomic_write_bytes(p, encode_image(im, p), overwrite=overwrite, protect=protect)


#: The quality JPEG and WebP outputs are written at unless asked (``--quality``).
QUALITY = 95


def encode_image(
    im: Image.Image, path: str | os.PathLike[str], *, exif: bytes = b"", quality: int = QUALITY
) -> bytes:
    """``im`` encoded in the format named by ``path``'s suffix, tagged sRGB (the colour space it
    was painted in); ``exif``: the photo's kept tags (see :data:`KEPT_EXIF`), written with
    artstyle named as the software, where the format carries EXIF."""
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ArtstyleError(f"{p}: unknown output format {p.suffix!r}")
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt != "BMP":
        kwargs["icc_profile"] = _SRGB_ICC
        kwargs["exif"] = _output_exif(exif)
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


@dataclass(frozen=True)
class Encoding:
    """How an output is encoded beyond its format (which its suffix names): ``quality`` of a JPEG
    or WebP (1-100), and ``bits`` a channel of a PNG or TIFF (8 or 16)."""

    quality: int = QUALITY
    bits: int = 8

    def check(self, path: str | os.PathLike[str]) -> None:
        """Refuse, before any work, what the output cannot be."""
        if not 1 <= self.quality <= 100:
            raise ArtstyleError(f"quality must be in [1, 100] (got {self.quality})")
        if self.bits not in (8, 16):
            raise ArtstyleError(f"bit depth must be 8 or 16 (got {self.bits})")
        check_bit_depth(path, self.bits)


#: Formats that take 16 bits a channel (``--bit-depth 16``).
DEEP_FORMATS = ("PNG", "TIFF")


def check_bit_depth(path: str | os.PathLike[str], bits: int) -> None:
    """Refuse, before any work, a bit depth the output's format or this install cannot write."""
    if bits == 8:
        return
    p = Path(path)
    if SAVE_FORMATS.get(p.suffix.lower()) not in DEEP_FORMATS:
        raise ArtstyleError(f"{p}: 16 bits a channel need a .png or .tif output")
    _cv2()


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ArtstyleError(
            '16-bit output needs OpenCV: pip install "artstyle[sixteen-bit]" (or opencv-python-headless)'
        ) from None
    return cv2


def encode_pixels16(pixels: np.ndarray, path: str | os.PathLike[str]) -> bytes:
    """An (H, W, 3) float RGB array in 0-255 as a 16-bit PNG or TIFF (by ``path``'s suffix),
    through OpenCV (Pillow writes no 16-bit colour). The file carries no colour profile: sRGB is
    what readers assume of an untagged file."""
    cv2 = _cv2()
    check_bit_depth(path, 16)
    deep = np.rint(pixels[..., ::-1] * (65535.0 / 255.0)).astype(np.uint16)  # (OpenCV is BGR)
    ok, buf = cv2.imencode(Path(path).suffix.lower(), deep)
    if not ok:
        raise ArtstyleError(f"{path}: OpenCV could not encode a 16-bit image")
    return bytes(buf)


def _output_exif(kept: bytes) -> bytes:
    from artstyle._version import __version__

    exif = Image.Exif()
    if kept:
        with contextlib.suppress(Exception):
            exif.load(kept)
    exif[0x0131] = f"artstyle {__version__}"  # Software
    return exif.tobytes()
