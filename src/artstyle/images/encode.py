"""Images out: encoded in the format the suffix names, tagged sRGB, with the photo's date and
camera kept; written atomically, never over an input; 16-bit PNG and TIFF through OpenCV.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
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
    if im.mode == "RGBA" and fmt not in ALPHA_FORMATS:
        im = on_white(im)
    if fmt == "BMP":
        return encode_bmp(im)
    kwargs["icc_profile"] = _SRGB_ICC
    kwargs["exif"] = _output_exif(exif)
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


#: Formats that carry transparency (a picture with alpha is put on white in the others).
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")


def keeps_alpha(path: str | os.PathLike[str]) -> bool:
    """Whether the format ``path``'s suffix names carries transparency."""
    return SAVE_FORMATS.get(Path(path).suffix.lower()) in ALPHA_FORMATS


def on_white(im: Image.Image) -> Image.Image:
    """An RGBA picture composited on white, as RGB."""
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")


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
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt not in DEEP_FORMATS:
        raise ArtstyleError(f"{p}: 16 bits a channel need a .png or .tif output")
    if fmt == "PNG":
        _cv2()
        return
    try:
        import tifffile  # noqa: F401
    except ImportError:
        raise ArtstyleError(
            '16-bit TIFF output needs tifffile: pip install "artstyle[sixteen-bit]"'
        ) from None


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ArtstyleError(
            '16-bit output needs OpenCV: pip install "artstyle[sixteen-bit]" (or opencv-python-headless)'
        ) from None
    return cv2


def encode_pixels16(
    pixels: np.ndarray, path: str | os.PathLike[str], exif: bytes = b"", alpha: np.ndarray | None = None
) -> bytes:
    """An (H, W, 3) float RGB array in 0-255 as a 16-bit PNG (OpenCV's encoder; Pillow writes no
    16-bit colour) or TIFF (tifffile), by ``path``'s suffix, tagged sRGB like every output and with
    the photo's kept date and camera (``exif``, see :data:`KEPT_EXIF`) and artstyle as software:
    in a PNG its ``iCCP`` and ``eXIf`` chunks, in a TIFF its ICC tag and its own date, make, model
    and software tags. ``alpha``: (H, W) in 0-255, written as a fourth (straight) channel."""
    check_bit_depth(path, 16)
    if alpha is not None:
        pixels = np.concatenate([pixels, np.asarray(alpha, np.float64)[..., None]], axis=2)
    deep = np.rint(np.clip(pixels, 0, 255) * (65535.0 / 255.0)).astype(np.uint16)
    tags = _output_exif(exif)
    if SAVE_FORMATS.get(Path(path).suffix.lower()) == "TIFF":
        import tifffile

        info = Image.Exif()
        with contextlib.suppress(Exception):
            info.load(tags)
        if 0x0132 not in info:  # (a TIFF has no EXIF block here: the photo's own date is its date)
            taken = info.get_ifd(0x8769).get(0x9003)
            if taken:
                info[0x0132] = taken
        codes = (0x010F, 0x0110, 0x0132)  # make, model, date (software: its own argument)
        extra = [(code, "s", 0, str(info[code]), True) for code in codes if code in info]
        buf = io.BytesIO()
        tifffile.imwrite(
            buf,
            deep,
            photometric="rgb",
            extrasamples=("unassalpha",) if alpha is not None else None,
            iccprofile=_SRGB_ICC,
            compression="zlib",
            extratags=extra,
            software=str(info.get(0x0131, "artstyle")),
            datetime=False,
        )
        return buf.getvalue()
    order = [2, 1, 0, 3][: deep.shape[2]]  # (OpenCV is BGR, BGRA)
    ok, png = _cv2().imencode(".png", np.ascontiguousarray(deep[..., order]))
    if not ok:
        raise ArtstyleError(f"{path}: OpenCV could not encode a 16-bit image")
    iccp = b"sRGB\0\0" + zlib.compress(_SRGB_ICC)
    chunks = _png_chunk(b"iCCP", iccp) + _png_chunk(b"eXIf", tags.removeprefix(b"Exif\0\0"))
    head = 8 + 25  # (the signature, then IHDR: 4 + 4 + 13 + 4 bytes; the chunks go right after it)
    data = bytes(png)
    return data[:head] + chunks + data[head:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_bmp(im: Image.Image) -> bytes:
    """A 24-bit BMP with a version 5 header whose colour space is ``LCS_sRGB`` (Pillow writes the
    version 1 header, which names none): the one tag the format has. BMP carries no date or camera
    (the sidecar keeps them)."""
    rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    row = (w * 3 + 3) & ~3
    pixels = np.zeros((h, row), np.uint8)
    pixels[:, : w * 3] = rgb[::-1, :, ::-1].reshape(h, w * 3)  # (bottom-up, BGR)
    header = struct.pack(
        "<IiiHHIIiiII",
        124,
        w,
        h,
        1,
        24,
        0,
        pixels.nbytes,
        2835,
        2835,
        0,
        0,  # (72 dpi)
    )
    header += struct.pack("<IIII", 0, 0, 0, 0)  # (no bit masks: BI_RGB)
    header += b"BGRs"  # LCS_sRGB (the bytes of "sRGB" as a little-endian number)
    header += bytes(36) + struct.pack("<III", 0, 0, 0)  # (end points and gamma: unused for sRGB)
    header += struct.pack("<IIII", 4, 0, 0, 0)  # LCS_GM_IMAGES; no profile
    size = 14 + len(header) + pixels.nbytes
    return b"BM" + struct.pack("<IHHI", size, 0, 0, 14 + len(header)) + header + pixels.tobytes()


def _output_exif(kept: bytes) -> bytes:
    from artstyle._version import __version__

    exif = Image.Exif()
    if kept:
        with contextlib.suppress(Exception):
            exif.load(kept)
    exif[0x0131] = f"artstyle {__version__}"  # Software
    return exif.tobytes()
