"""What an output file carries: its format by suffix, quality, 16 bits from the unrounded result,
the sRGB tag, and the photo's date and camera with artstyle as the software."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

from artstyle.apps.cli import main
from tests.conftest import gradient_image, stripes_image

FAST = ["--size", "48", "--scales", "1", "--iterations", "3", "-q"]


@pytest.fixture
def photo_with_exif(tmp_path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Fujifilm", "X-T4"
    exif.get_ifd(0x8769)[0x9003] = "2022:08:09 07:06:05"
    exif[0x8825] = {1: "N"}  # GPS: never copied
    p = tmp_path / "photo.jpg"
    gradient_image(64, 48).save(p, exif=exif.tobytes(), quality=95)
    stripes_image().save(tmp_path / "painting.png")
    return p


def _run(tmp_path: Path, out: str, *flags: str) -> Path:
    args = ["stylize", str(tmp_path / "photo.jpg"), str(tmp_path / "painting.png"), "-o", str(tmp_path / out)]
    result = CliRunner().invoke(main, [*args, *FAST, *flags])
    assert result.exit_code == 0, result.output
    return tmp_path / out


@pytest.mark.usefixtures("tiny_weights")
@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".tif", "TIFF")]
)
def test_the_output_is_tagged_srgb_and_keeps_the_date_and_camera(tmp_path, photo_with_exif, suffix, fmt):
    out = _run(tmp_path, "o" + suffix)
    with Image.open(out) as im:
        assert im.format == fmt
        profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
        exif = im.getexif()
        assert exif[0x010F] == "Fujifilm" and exif[0x0110] == "X-T4" and exif[0x0131].startswith("artstyle ")
        assert exif.get_ifd(0x8769)[0x9003] == "2022:08:09 07:06:05"
        assert 0x8825 not in exif  # no GPS


@pytest.mark.usefixtures("tiny_weights")
def test_quality_sets_the_jpeg_size(tmp_path, photo_with_exif):
    low = _run(tmp_path, "low.jpg", "--quality", "20").stat().st_size
    high = _run(tmp_path, "high.jpg", "--quality", "100").stat().st_size
    assert low < high * 0.8


@pytest.mark.usefixtures("tiny_weights")
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bits_come_from_the_unrounded_result(tmp_path, photo_with_exif, suffix):
    cv2 = pytest.importorskip("cv2", reason='16-bit output needs OpenCV: pip install "artstyle[sixteen-bit]"')
    eight = np.asarray(Image.open(_run(tmp_path, "e" + suffix)), np.float64)
    deep = cv2.imread(str(_run(tmp_path, "d" + suffix, "--bit-depth", "16")), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and deep.shape == (*eight.shape[:2], 3)
    deep = deep[..., ::-1].astype(np.float64) / 257.0  # (to 0-255, RGB)
    assert np.abs(deep - eight).max() <= 0.5 + 1e-6  # the 8-bit file is the 16-bit one rounded
    assert np.abs(deep - np.rint(deep)).mean() > 0.05  # and it holds what rounding threw away
    # tagged sRGB, with the photo's camera and date, like every output
    made = tmp_path / ("d" + suffix)
    if suffix == ".png":
        with Image.open(made) as im:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
            exif = im.getexif()
        assert exif[0x010F] == "Fujifilm" and exif.get_ifd(0x8769)[0x9003] == "2022:08:09 07:06:05"
    else:
        tifffile = pytest.importorskip("tifffile", reason="16-bit TIFF needs the sixteen-bit extra")
        with tifffile.TiffFile(made) as tif:
            tags = {t.code: t.value for t in tif.pages[0].tags}
        profile = ImageCms.ImageCmsProfile(io.BytesIO(bytes(tags[34675])))
        assert tags[271] == "Fujifilm" and tags[272] == "X-T4" and tags[306] == "2022:08:09 07:06:05"
        assert tags[305].startswith("artstyle ")
    assert "sRGB" in ImageCms.getProfileDescription(profile)


@pytest.mark.usefixtures("tiny_weights")
def test_a_bmp_says_srgb_in_its_header(tmp_path, photo_with_exif):
    out = _run(tmp_path, "o.bmp")
    data = out.read_bytes()
    assert data[14:18] == (124).to_bytes(4, "little") and data[14 + 56 : 14 + 60] == b"BGRs"  # LCS_sRGB
    with Image.open(out) as im:
        assert im.format == "BMP" and im.size == (48, 36) and im.mode == "RGB"
        png = np.asarray(Image.open(_run(tmp_path, "o.png")))
        assert np.array_equal(np.asarray(im), png)  # (the same picture, whatever the format)


def test_a_bit_depth_or_format_the_output_cannot_have_is_refused_up_front(tmp_path):
    gradient_image().save(tmp_path / "p.png")
    for out, flags, message in (
        ("o.jpg", ["--bit-depth", "16"], "16 bits a channel need a .png or .tif"),
        ("o.gif", [], "unknown output format"),
        ("o.jpg", ["--quality", "0"], "quality"),
    ):
        args = [
            "stylize",
            str(tmp_path / "p.png"),
            str(tmp_path / "p.png"),
            "-o",
            str(tmp_path / out),
            *flags,
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (1, 2) and message in result.output, result.output
        assert not (tmp_path / out).exists()
