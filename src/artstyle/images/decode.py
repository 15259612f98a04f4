"""Images in: any file Pillow reads (or an array, or a PIL image) becomes one clean upright 8-bit
sRGB image, decoded no larger than the run needs.

Every failure a user can cause (missing, corrupt, truncated, huge, too small) becomes an
:class:`~artstyle.errors.ArtstyleError` with one readable line.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from artstyle.errors import ArtstyleError
from artstyle.files import check_regular_file
from artstyle.images.encode import SAVE_FORMATS, SRGB
from artstyle.images.geometry import MIN_SIDE

#: Largest image accepted, in pixels (about 16k x 16k); above it the file is treated as a
#: decompression bomb and refused before it is decoded.
MAX_PIXELS = 268_435_456


#: Files a folder of images is read for (what we write, GIF, and phones' HEIC/HEIF).
IMAGE_SUFFIXES = frozenset({*SAVE_FORMATS, ".gif", ".heic", ".heif", ".hif"})

#: The brands of an ISO base media file that hold HEIF stills (an iPhone's HEIC among them).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")


def _heif_opener() -> bool:
    """Pillow reads HEIC/HEIF (phone photos) once pillow-heif has registered its opener; whether
    it is there. Done once, on the first image decoded."""
    global _HEIF
    if _HEIF is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _HEIF = True
        except ImportError:
            _HEIF = False
    return _HEIF


_HEIF: bool | None = None


def _is_heif(p: Path | io.BytesIO) -> bool:
    try:
        if isinstance(p, io.BytesIO):
            head = p.getvalue()[:12]
        else:
            with open(p, "rb") as f:
                head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def image_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by suffix), sorted by name; hidden files (dotfiles, the
    ``._name.jpg`` that macOS leaves on other disks) are not pictures."""
    return sorted(
        f
        for f in folder.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()
    )


#: Files above this many pixels are decoded only as large as the run will use them (JPEG's draft
#: mode, then Pillow's ``reduce``, before any conversion): a 48 MP photo painted at 512 px never
#: exists at full size in memory. Below it every file decodes exactly as it always did.
REDUCE_ABOVE = 16_000_000


#: A reduced picture keeps at least this many times the long side it will be used at (the rest of
#: the way down is the run's own Lanczos resize, so the result is the same to the eye).
REDUCE_MARGIN = 2


#: EXIF tags of the photo that its painting keeps: the date and the camera (orientation is
#: applied to the pixels and dropped; everything else, GPS included, is left behind).
KEPT_EXIF = {0x010F: "Make", 0x0110: "Model", 0x0132: "DateTime"}


KEPT_EXIF_IFD = {0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized"}


_EXIF_IFD = 0x8769


def load_image(path: str | os.PathLike[str], need: int | None = None) -> Image.Image:
    """Read ``path`` as an 8-bit sRGB image, upright per its EXIF orientation.

    Grayscale, palette, CMYK, 16-bit and float images are converted, an embedded colour profile
    through ImageCms to sRGB; transparency is composited on white (the one rule of the CLI and the
    API). ``need``: the longest side the caller will use; a huge file is decoded no larger than
    about twice that (see :data:`REDUCE_ABOVE`). The photo's date and camera ride along as
    ``image.info["exif"]``. Raises ArtstyleError for anything else.
    """
    p = check_regular_file(path, "image")
    return _decode(p, str(p), need)


def decode_image(
    data: bytes, name: str = "upload", need: int | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """:func:`load_image` for bytes in memory (an upload): checked by content, not by name, and the
    pixel-count guard (``max_pixels``) runs on the header, before anything is decoded."""
    return _decode(io.BytesIO(data), name, need, max_pixels)


#: Pillow's bomb guard is a process-wide setting: it is changed and restored under this lock.
_OPEN_LOCK = threading.Lock()


def _decode(p: Path | io.BytesIO, label: str, need: int | None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    too_large = f"{label}: image is too large (over {max_pixels / 1e6:g} megapixels); refusing to decode it"
    _heif_opener()
    try:
        with _OPEN_LOCK, warnings.catch_warnings(), _damaged_exif_is_dropped():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                im = Image.open(p)  # (the header only: the bomb guard runs here)
            finally:
                Image.MAX_IMAGE_PIXELS = old
        with im:
            if im.width * im.height > max_pixels:
                raise ArtstyleError(too_large)
            return _decoded(im, need, p)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ArtstyleError(too_large) from None
    except UnidentifiedImageError:
        if _is_heif(p) and not _heif_opener():
            raise ArtstyleError(
                f"{label}: a HEIC/HEIF photo needs pillow-heif: pip install pillow-heif"
            ) from None
        raise ArtstyleError(f"{label}: not an image file Pillow can read") from None
    except PermissionError:
        raise ArtstyleError(f"{label}: permission denied") from None
    except MemoryError:
        raise ArtstyleError(
            f"{label}: not enough memory to decode this image ({_dims(p)}); make it smaller first"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg:
            raise ArtstyleError(f"{label}: image file is truncated") from None
        raise ArtstyleError(f"{label}: cannot decode image ({msg})") from None


def _dims(p: Path | io.BytesIO) -> str:
    with contextlib.suppress(Exception):
        if isinstance(p, io.BytesIO):
            p.seek(0)
        with Image.open(p) as im:
            return f"{im.width}x{im.height}, {im.mode}"
    return "size unknown"


@contextlib.contextmanager
def _damaged_exif_is_dropped() -> Iterator[None]:
    """Pillow's warnings about a photo's damaged EXIF (``Corrupt EXIF data``, ``Truncated File
    Read``, ...) left unsaid: what can be read of it is kept, the rest is dropped, and the picture
    is used as it is. Only Pillow's own warnings, only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _decoded(im: Image.Image, need: int | None, source: Path | io.BytesIO | None = None) -> Image.Image:
    """The opened file decoded, reduced to what ``need`` asks for, upright sRGB, with the kept EXIF."""
    # (read before decoding: TIFF keeps it in the header; a PNG's only where it comes before the
    # pixels, as Pillow's getexif would decode the whole picture to look for one after them)
    lazy_png = im.format == "PNG" and "exif" not in im.info
    with _damaged_exif_is_dropped():
        exif = Image.Exif() if lazy_png else im.getexif()
        kept = _kept_exif(exif)
    orientation = exif.get(0x0112)
    icc = im.info.get("icc_profile")
    factor = _reduce_factor(im.size, need)
    if factor > 1 and im.format == "JPEG":
        # JPEG decodes at 1/2, 1/4 or 1/8 directly (the DCT's own scaling; no full-size copy)
        im.draft(im.mode, (math.ceil(im.width / factor), math.ceil(im.height / factor)))
    shrunk = _shrink_streaming(source, factor) if factor > 1 and im.format in ("PNG", "TIFF") else None
    if shrunk is not None:
        im = shrunk
    else:
        im.load()
        factor = _reduce_factor(im.size, need)
        if factor > 1:
            im = _reduce(im, factor)
    if icc:
        im.info["icc_profile"] = icc
    with _damaged_exif_is_dropped():
        if orientation and im.getexif().get(0x0112) != orientation:
            im.getexif()[0x0112] = orientation  # (a reduced picture: to_rgb's exif_transpose reads it)
        out = to_rgb(im)
    out.info = {k: v for k, v in out.info.items() if k in (ALPHA, STRAIGHT)}  # (its transparency)
    if kept:
        out.info["exif"] = kept
    return out


def _shrink_streaming(source: Path | io.BytesIO | None, factor: int) -> Image.Image | None:
    """A PNG or TIFF shrunk by ``factor`` (box average) while it is read, in memory proportional
    to a few rows, through libvips (the optional ``huge`` extra: ``pip install "artstyle[huge]"``);
    None without it (Pillow then decodes the whole picture first: a 16000 px PNG costs 1 GB) or
    when libvips cannot read the file. The result keeps the file's bands and depth (16-bit, float,
    alpha), so it goes on through the same conversions as a file Pillow decoded."""
    if source is None:
        return None
    try:
        import pyvips
    except (ImportError, OSError):  # (OSError: the package without its libvips)
        return None
    try:
        if isinstance(source, io.BytesIO):
            v = pyvips.Image.new_from_buffer(source.getvalue(), "", access="sequential")
        else:
            v = pyvips.Image.new_from_file(str(source), access="sequential")
        data = v.shrink(factor, factor).write_to_buffer(".tif")
    except pyvips.Error:
        return None
    small = Image.open(io.BytesIO(data))
    small.load()
    return small


def _reduce_factor(size: tuple[int, int], need: int | None) -> int:
    """The integer factor a picture of ``size`` may shrink by on load, for use at ``need`` px."""
    if not need or size[0] * size[1] <= REDUCE_ABOVE:
        return 1
    k = max(size) // (REDUCE_MARGIN * max(need, MIN_SIDE))
    while k > 1 and min(size) // k < REDUCE_MARGIN * MIN_SIDE:
        k -= 1
    return max(1, k)


def _reduce(im: Image.Image, factor: int) -> Image.Image:
    """``im`` shrunk by ``factor`` (box average) in its own mode. A mode ``reduce`` does not take
    (1-bit, palette, 16-bit) is converted a band of rows at a time, so no converted copy of the
    whole picture is ever made."""
    if im.mode not in ("1", "P") and not im.mode.startswith("I;16"):
        return im.reduce(factor)
    mode = "L" if im.mode == "1" else "I" if im.mode.startswith("I;16") else "RGBA"
    out = Image.new(mode, (math.ceil(im.width / factor), math.ceil(im.height / factor)))
    rows = factor * max(1, 1024 // factor)
    for y in range(0, im.height, rows):
        band = im.crop((0, y, im.width, min(im.height, y + rows))).convert(mode)
        out.paste(band.reduce(factor), (0, y // factor))
    return out


def _kept_exif(exif: Image.Exif) -> bytes:
    """The photo's date and camera as EXIF bytes (empty if it has none)."""
    out = Image.Exif()
    for tag in KEPT_EXIF:
        if isinstance(exif.get(tag), str):
            out[tag] = exif[tag]
    kept: dict[int, Any] = {}
    with contextlib.suppress(Exception):  # (a broken sub-IFD is not worth failing the load for)
        ifd = exif.get_ifd(_EXIF_IFD)
        kept = {t: ifd[t] for t in KEPT_EXIF_IFD if isinstance(ifd.get(t), str)}
    if kept:
        out.get_ifd(_EXIF_IFD).update(kept)
    return out.tobytes() if len(out) or kept else b""


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow image to upright 8-bit sRGB (see :func:`load_image`). A picture with
    transparency is composited on white, and keeps what a run needs to keep it (see
    :func:`transparency`)."""
    im = ImageOps.exif_transpose(im) or im
    icc = im.info.get("icc_profile")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_to_8bit(im), "L").convert("RGB")
    if im.mode == "P" or "transparency" in im.info:
        im = im.convert("RGBA")  # (a palette's or a colour key's transparency becomes alpha)
    alpha = straight = None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
        if rgba.getchannel("A").getextrema()[0] < 255:  # (an alpha band that is all opaque is none)
            alpha = rgba.getchannel("A")
            seen = alpha.point(lambda v: 255 if v else 0)
            straight = Image.composite(rgba.convert("RGB"), Image.new("RGB", rgba.size, "white"), seen)
    out = _srgb(im, icc)
    if alpha is not None and straight is not None:
        out.info[ALPHA], out.info[STRAIGHT] = alpha, _srgb(straight, icc)
    return out


#: Where :func:`to_rgb` keeps a transparent picture's alpha ("L") and its colours not composited
#: (RGB, white where fully transparent) in the image's ``info``.
ALPHA, STRAIGHT = "artstyle.alpha", "artstyle.straight"


def transparency(im: Image.Image) -> tuple[Image.Image, Image.Image] | None:
    """A decoded picture's transparency: its alpha ("L") and its colours where it is not fully
    transparent, not composited on white (white where it is): what a run that keeps the alpha
    paints. None for an opaque picture."""
    alpha, straight = im.info.get(ALPHA), im.info.get(STRAIGHT)
    if not isinstance(alpha, Image.Image) or not isinstance(straight, Image.Image) or alpha.size != im.size:
        return None
    return alpha, straight


def _srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """``im`` (composited, no alpha) as RGB in sRGB, through its embedded profile when it has one."""
    if icc and im.mode in ("RGB", "L", "CMYK"):
        converted = _profile_to_srgb(im, icc)
        if converted is not None:
            return converted
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def _profile_to_srgb(im: Image.Image, icc: bytes) -> Image.Image | None:
    """``im`` converted from its embedded profile to sRGB; None when the profile is unusable (the
    plain conversion is then used) or is sRGB already."""
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode == "RGB" and "srgb" in ImageCms.getProfileDescription(src).lower():
            return None  # (already sRGB: converting would only cost time)
        return ImageCms.profileToProfile(im, src, SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _to_8bit(im: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit integer or float picture as 8 bits, a band of rows at a time (no float64
    copy of the whole). Non-finite pixels (NaN, inf) are missing: they never set the range and
    become black."""
    a = np.asarray(im)
    if a.dtype.kind == "f":
        finite_max = 0.0
        for rows in _bands(a):
            f = rows[np.isfinite(rows)]
            if f.size:
                finite_max = max(finite_max, float(f.max()))
        top = 1.0 if finite_max <= 1.0 else (255.0 if finite_max <= 255.0 else 65535.0)
    else:
        top = 65535.0 if im.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
    out = np.empty(a.shape, np.uint8)
    for i, rows in _bands(a, with_start=True):
        r = rows.astype(np.float32) * np.float32(255.0 / top)
        np.nan_to_num(r, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(r + 0.5, 0, 255, out=r)
        out[i : i + len(r)] = r
    return out


def _bands(a: np.ndarray, with_start: bool = False, rows: int = 256) -> Iterator[Any]:
    for i in range(0, a.shape[0], rows):
        yield (i, a[i : i + rows]) if with_start else a[i : i + rows]


def as_image(obj: object, name: str = "image", need: int | None = None) -> Image.Image:
    """The one input normaliser of the CLI and the Python API: a path (str or PathLike), a Pillow
    image or a numpy array (H x W gray, H x W x 3 RGB, H x W x 4 RGBA; uint8, uint16 or float in
    0-1) becomes the same upright 8-bit RGB image that :func:`load_image` makes of a file, at
    least 32 px a side. ``need``: the longest side the run uses it at (a huge file is decoded no
    larger than it needs, as the command line reads it). Anything else is an ArtstyleError naming
    ``name``."""
    if isinstance(obj, (str, os.PathLike)):
        im = load_image(obj, need)
    elif isinstance(obj, Image.Image):
        try:
            im = to_rgb(obj)
        except (OSError, ValueError) as e:
            raise ArtstyleError(f"{name}: cannot use this image ({e})") from None
    elif isinstance(obj, np.ndarray):
        im = _from_array(obj, name)
    else:
        raise ArtstyleError(
            f"{name}: expected a file path, a PIL image or a numpy array, got {type(obj).__name__}"
        )
    check_size(im, name)
    return im


def _from_array(a: np.ndarray, name: str) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ArtstyleError(f"{name}: array of shape {a.shape}; expected H x W, H x W x 3 or H x W x 4")
    if a.size == 0:
        raise ArtstyleError(f"{name}: empty array")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ArtstyleError(f"{name}: array holds NaN or infinite values")
        top = 1.0 if a.max(initial=0) <= 1.0 else 255.0
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype == np.uint16 or (a.dtype.kind in "iu" and a.max(initial=0) > 255):
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        a = np.clip(a.astype(np.float64) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype.kind in "iu":
        a = np.clip(a, 0, 255).astype(np.uint8)
    else:
        raise ArtstyleError(f"{name}: array of type {a.dtype} is not an image")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.shape[2] if a.ndim == 3 else 2]
    return to_rgb(Image.fromarray(np.ascontiguousarray(a), mode))


def check_size(im: Image.Image, name: str) -> None:
    if min(im.size) < MIN_SIDE:
        raise ArtstyleError(
            f"{name}: image is {im.width}x{im.height}; both sides must be at least {MIN_SIDE} px"
        )
