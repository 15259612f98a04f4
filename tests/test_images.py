import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle.errors import ArtstyleError
from artstyle.images import decode, demo
from artstyle.images.decode import load_image
from artstyle.images.encode import check_writable, save_image
from artstyle.images.geometry import fit_long_side, to_image, to_tensor
from tests.conftest import gradient_image, stripes_image


def _save(im, path, **kw):
    im.save(path, **kw)
    return path


def test_rgb_png_roundtrip(tmp_path):
    im = gradient_image()
    got = load_image(_save(im, tmp_path / "a.png"))
    assert got.mode == "RGB" and np.array_equal(np.asarray(got), np.asarray(im))


def test_grayscale_becomes_rgb(tmp_path):
    got = load_image(_save(gradient_image().convert("L"), tmp_path / "g.png"))
    a = np.asarray(got)
    assert got.mode == "RGB" and np.array_equal(a[..., 0], a[..., 2])


def test_cmyk_jpeg(tmp_path):
    got = load_image(_save(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), tmp_path / "c.jpg"))
    r, g, b = np.asarray(got)[20, 20]
    assert got.mode == "RGB" and r > 200 and g < 60 and b < 60  # red


def test_palette_with_transparency_composited_on_white(tmp_path):
    im = Image.new("P", (40, 40), 0)
    im.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    im.paste(1, (0, 0, 20, 40))
    im.info["transparency"] = 0  # index 0 (red) transparent
    got = np.asarray(load_image(_save(im, tmp_path / "p.png", transparency=0)))
    assert tuple(got[5, 30]) == (255, 255, 255) and tuple(got[5, 5]) == (0, 0, 255)


def test_alpha_composited_on_white(tmp_path):
    im = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    got = np.asarray(load_image(_save(im, tmp_path / "t.png")))
    assert (got == 255).all()
    la = Image.new("LA", (40, 40), (0, 255))
    assert (np.asarray(load_image(_save(la, tmp_path / "la.png"))) == 0).all()


def test_16bit_is_scaled_not_clipped(tmp_path):
    a = np.full((40, 40), 32768, np.uint16)
    got = np.asarray(load_image(_save(Image.fromarray(a), tmp_path / "s.png")))
    assert abs(int(got[0, 0, 0]) - 128) <= 1


def test_exif_rotation_is_applied(tmp_path):
    im = gradient_image(60, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    got = load_image(_save(im, tmp_path / "r.jpg", exif=exif.tobytes()))
    assert got.size == (40, 60)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not an image"),
        (b"hello, this is text", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "cannot decode|not an image"),
    ],
)
def test_corrupt_files(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ArtstyleError, match=match):
        load_image(p)


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    gradient_image(64, 64).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ArtstyleError, match="truncated"):
        load_image(p)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ArtstyleError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ArtstyleError, match="folder"):
        load_image(tmp_path)


def _png_header_only(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(40000, 40000))  # 1.6 gigapixels declared, a few bytes on disk
    with pytest.raises(ArtstyleError, match="too large"):
        load_image(p)


def test_fit_long_side():
    assert fit_long_side((1024, 768), 512) == (512, 384)
    assert fit_long_side((300, 600), 100) == (50, 100)


def test_tensor_roundtrip():
    im = gradient_image()
    t = to_tensor(im)
    assert t.shape == (1, 3, 40, 48) and t.max() <= 255
    assert np.array_equal(np.asarray(to_image(t)), np.asarray(im))
    assert np.asarray(to_image(torch.full((1, 3, 4, 4), 300.0))).max() == 255


def test_check_writable(tmp_path):
    out = tmp_path / "o.png"
    assert check_writable(out, False) == out
    out.write_bytes(b"x")
    with pytest.raises(ArtstyleError, match="already exists"):
        check_writable(out, False)
    assert check_writable(out, True) == out
    with pytest.raises(ArtstyleError, match="does not exist"):
        check_writable(tmp_path / "no" / "o.png", False)
    with pytest.raises(ArtstyleError, match="unknown output format"):
        check_writable(tmp_path / "o.xyz", False)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    out = tmp_path / "o.jpg"
    save_image(gradient_image(), out)
    assert load_image(out).size == (48, 40)
    assert [p.name for p in tmp_path.iterdir()] == ["o.jpg"]


def test_default_images():
    assert demo.default_content().size[0] >= 256
    s = demo.default_style(128)
    assert s.size == (128, 128) and np.asarray(s).std() > 20


# ---- decoding no more than the run uses ------------------------------------------------------


@pytest.fixture
def reduce_small(monkeypatch):
    """Reduction on load for any picture over 1000 px (it is 16 MP for real): small files test it."""
    monkeypatch.setattr(decode, "REDUCE_ABOVE", 1000)


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [("RGB", ".jpg"), ("RGB", ".png"), ("1", ".png"), ("P", ".png"), ("I;16", ".png"), ("F", ".tif")],
)
def test_a_huge_file_decodes_no_larger_than_twice_the_use(tmp_path, reduce_small, mode, suffix):
    base = gradient_image(640, 480)
    im = base.convert("L").convert(mode) if mode in ("1", "I;16", "F") else base.convert(mode)
    if mode == "I;16":
        im = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
    if mode == "F":
        im = Image.fromarray(np.asarray(base.convert("L"), np.float32) / 255)
    path = _save(im, tmp_path / f"x{suffix}")
    full = load_image(path)
    small = load_image(path, need=100)
    assert full.size == (640, 480)
    assert 200 <= max(small.size) < 400 and small.mode == "RGB"  # at least twice the use, much less than all
    # the same picture: the reduced one matches the full one brought to its size
    a = np.asarray(small, np.float32)
    b = np.asarray(full.reduce(round(640 / small.width)), np.float32)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])  # (libvips drops a last partial box)
    assert abs(a.shape[0] - b.shape[0]) <= 1 and abs(a.shape[1] - b.shape[1]) <= 1
    assert np.abs(a[:h, :w] - b[:h, :w]).mean() < 2


def test_small_files_decode_exactly_as_before(tmp_path):
    path = _save(gradient_image(640, 480), tmp_path / "x.png")
    assert np.array_equal(np.asarray(load_image(path, need=64)), np.asarray(load_image(path)))


def test_reduction_keeps_orientation_and_the_photo_s_date_and_camera(tmp_path, reduce_small):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS R5", 6  # make, model, rotate 90
    exif[0x8825] = {1: "N"}  # GPS: never kept
    exif.get_ifd(0x8769)[0x9003] = "2021:06:05 10:11:12"
    path = _save(gradient_image(640, 480), tmp_path / "r.jpg", exif=exif.tobytes())
    for need in (None, 100):
        got = load_image(path, need=need)
        assert got.height > got.width  # upright
        kept = Image.Exif()
        kept.load(got.info["exif"])
        assert kept[0x010F] == "Canon" and kept[0x0110] == "EOS R5" and 0x0112 not in kept
        assert kept.get_ifd(0x8769)[0x9003] == "2021:06:05 10:11:12" and 0x8825 not in kept


def test_non_finite_float_pixels_are_missing_not_the_maximum(tmp_path):
    a = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    a[0, 0], a[1, 1], a[2, 2] = np.nan, np.inf, -np.inf
    got = np.asarray(load_image(_save(Image.fromarray(a, "F"), tmp_path / "f.tif")))
    assert abs(int(got[10, 63, 0]) - 255) <= 1 and abs(int(got[10, 32, 0]) - 129) <= 2  # the range is 0-1
    assert tuple(got[0, 0]) == (0, 0, 0) and tuple(got[1, 1]) == (0, 0, 0)


def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path):
    from PIL import ImageCms

    im = gradient_image(64, 64)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # another RGB profile: sRGB's primaries with a linear tone curve (its gamma 2.4 set to 1.0)
    para = srgb.index(b"para") + 12
    other = srgb[:para] + (1 << 16).to_bytes(4, "big") + srgb[para + 4 :]
    other = other.replace("sRGB".encode("utf-16-be"), "linR".encode("utf-16-be"))
    same = load_image(_save(im, tmp_path / "s.png", icc_profile=srgb))
    assert np.array_equal(np.asarray(same), np.asarray(im))  # sRGB already: untouched
    moved = load_image(_save(im, tmp_path / "x.png", icc_profile=other))
    assert np.abs(np.asarray(moved, np.int16) - np.asarray(im, np.int16)).mean() > 5


def test_out_of_memory_while_decoding_names_the_image(tmp_path, monkeypatch):
    path = _save(gradient_image(), tmp_path / "m.png")

    def no_memory(self, *a, **k):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "load", no_memory)
    with pytest.raises(ArtstyleError, match=r"m\.png: not enough memory to decode this image \(48x40, RGB\)"):
        load_image(path)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "RGB-key"])
def test_transparency_has_one_rule_for_files_pil_images_and_arrays(tmp_path, mode):
    """The CLI (a path) and the API (a PIL image, an array) paint the same picture: on white."""
    from artstyle.images.decode import as_image

    a = np.zeros((48, 48, 4), np.uint8)
    a[..., 0] = 255  # red everywhere, hidden under alpha 0 in the top half
    a[24:, :, 3] = 255
    im = Image.fromarray(a, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    if mode == "P":
        im = im.convert("P")
        im.info["transparency"] = 0
        im.putpalette([255, 0, 0, 255, 0, 0] + [0] * 762)
        im.putdata([0] * (48 * 24) + [1] * (48 * 24))
    if mode == "RGB-key":
        im = Image.new("RGB", (48, 48), (255, 0, 0))
        im.paste((0, 255, 0), (0, 0, 48, 24))
        im.info["transparency"] = (0, 255, 0)
    path = tmp_path / "t.png"
    im.save(path, **({"transparency": im.info["transparency"]} if "transparency" in im.info else {}))
    from_file = np.asarray(load_image(path))
    assert (from_file[:24] == 255).all() and (from_file[24:] != 255).any()  # the hidden part is white
    assert np.array_equal(np.asarray(as_image(Image.open(path))), from_file)
    assert np.array_equal(np.asarray(as_image(np.asarray(Image.open(path).convert("RGBA")))), from_file)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "1", "I;16", "F"])
def test_with_libvips_a_huge_png_or_tiff_is_shrunk_while_it_is_read(
    tmp_path, reduce_small, monkeypatch, mode
):
    pytest.importorskip(
        "pyvips", reason='streaming decoding needs the huge extra: pip install "artstyle[huge]"'
    )
    base = gradient_image(640, 480)
    im = {
        "RGB": base,
        "RGBA": base.convert("RGBA"),
        "1": base.convert("L").convert("1"),
        "I;16": Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257),
        "F": Image.fromarray(np.asarray(base.convert("L"), np.float32) / 255),
    }[mode]
    path = _save(im, tmp_path / ("x.tif" if mode == "F" else "x.png"))
    used = []
    real = decode._shrink_streaming
    monkeypatch.setattr(decode, "_shrink_streaming", lambda *a: used.append(a) or real(*a))
    small = load_image(path, need=100)
    assert used and 200 <= max(small.size) < 400
    monkeypatch.setattr(decode, "_shrink_streaming", lambda *a: None)  # (without libvips: Pillow)
    pillow = load_image(path, need=100)
    a, b = np.asarray(small, np.float32), np.asarray(pillow, np.float32)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    assert np.abs(a[:h, :w] - b[:h, :w]).mean() < 2  # the same picture either way


_PEAK = """
import resource, sys
from tests.conftest import random_weights
from artstyle.engine.runtime import WEIGHTS
WEIGHTS.put("auto", "vgg19", random_weights("vgg19"))
import artstyle
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
artstyle.stylize(sys.argv[1], [sys.argv[2]], size=64, scales=1, iterations=2, device="cpu")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_script_reads_a_huge_picture_as_economically_as_the_command(tmp_path):
    """``artstyle.stylize(path, ...)`` decodes a path no larger than the run uses, as the command
    does: a valid 16000 x 16000 PNG costs what a normal photo costs (it took 2 GB in full)."""
    import subprocess
    import sys

    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
    try:
        Image.new("1", (16000, 16000), 1).save(tmp_path / "huge.png")  # (a few hundred KB on disk)
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    gradient_image(640, 480).save(tmp_path / "photo.png")
    stripes_image().save(tmp_path / "painting.png")
    root = Path(__file__).resolve().parents[1]
    peaks = {}
    for name in ("photo.png", "huge.png"):
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, str(tmp_path / name), str(tmp_path / "painting.png")],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        peaks[name] = int(done.stdout.split()[-1]) / 1024  # MB (ru_maxrss is in KB on Linux)
    # decoded in full the huge file alone would add 768 MB (16000^2 RGB); reduced, a few tens
    assert peaks["huge.png"] < peaks["photo.png"] + 150, peaks


def test_a_photo_with_damaged_exif_is_read_without_pillows_warnings(tmp_path):
    """Pillow warns about a damaged EXIF block (``Truncated File Read``, ``Corrupt EXIF data``);
    the picture is used and what can be read of the EXIF kept, so the warning says nothing to a
    user: it is not printed. Pillow's other warnings, and everyone else's, are left alone."""
    import warnings

    junk = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02\x00\x00\x00\x06\x00\x00\x00\xffjunk"
    gradient_image(64, 48).save(tmp_path / "damaged.jpg", exif=junk)
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        Image.open(tmp_path / "damaged.jpg").getexif()
    assert any(issubclass(w.category, UserWarning) for w in raw)  # (Pillow does warn about it)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        im = load_image(tmp_path / "damaged.jpg")
    assert im.size == (64, 48) and [str(w.message) for w in ours] == []


def test_a_phone_s_heic_photo_is_read_upright_with_its_camera_and_in_a_folder(tmp_path, tiny_weights):
    """An iPhone's HEIC (made here with pillow-heif): upright per its EXIF orientation, its colour
    profile applied, its camera kept; a folder of photos takes it, and so does the command."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC needs pillow-heif (a main dependency)")
    from click.testing import CliRunner

    from artstyle.apps.cli import main
    from artstyle.images.decode import image_files

    pillow_heif.register_heif_opener()
    im = gradient_image(64, 48)
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Apple", 6  # (rotate 90 degrees clockwise to view)
    photo = tmp_path / "IMG_0001.HEIC"
    im.save(photo, format="HEIF", exif=exif.tobytes(), quality=95)
    got = load_image(photo)
    assert got.size == (48, 64) and got.mode == "RGB"
    kept = Image.Exif()
    kept.load(got.info["exif"])
    assert kept[0x010F] == "Apple" and 0x0112 not in kept
    err = {
        turn: np.abs(np.asarray(got, np.float64) - np.asarray(im.transpose(turn), np.float64)).mean()
        for turn in (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90)
    }  # (HEVC with 4:2:0 colour is lossy on this noisy test picture: the right way is far closer)
    assert err[Image.Transpose.ROTATE_270] < 0.5 * err[Image.Transpose.ROTATE_90], err
    assert image_files(tmp_path) == [photo]
    stripes_image().save(tmp_path / "painting.png")
    r = CliRunner().invoke(
        main,
        [
            *("stylize", str(photo), str(tmp_path / "painting.png"), "-o", str(tmp_path / "o.png")),
            *("--size", "48", "--scales", "1", "--iterations", "2", "-q"),
        ],
    )
    assert r.exit_code == 0 and Image.open(tmp_path / "o.png").size == (36, 48), r.output
