"""A photo's transparency: kept (its alpha guides every painting and the picture carries it) or put
on white (as before), through decoding, the engine, every output format and the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artstyle import stylize
from artstyle.apps.cli import main
from artstyle.errors import ArtstyleError
from artstyle.images.decode import as_image, decode_image, transparency
from tests.conftest import gradient_image, stripes_image

W, H = 48, 40
FAST = {"size": W, "scales": 1, "iterations": 3, "initial": "content", "seed": 1}


def cutout(fill: tuple[int, int, int] = (255, 0, 255)) -> Image.Image:
    """A photo whose left third is fully transparent (with ``fill`` under it, as editors leave it),
    its middle third half transparent, the rest opaque."""
    rgba = gradient_image(W, H).convert("RGBA")
    a = np.asarray(rgba).copy()
    a[:, : W // 3, :3], a[:, : W // 3, 3] = fill, 0
    a[:, W // 3 : 2 * W // 3, 3] = 128
    return Image.fromarray(a, "RGBA")


def test_decoding_keeps_the_alpha_and_the_colours_not_put_on_white():
    buf = io.BytesIO()
    cutout().save(buf, "PNG")
    im = decode_image(buf.getvalue(), "cutout.png")
    alpha, straight = transparency(im)
    assert im.mode == "RGB" and alpha.mode == "L" and alpha.size == im.size
    a, s, rgb = np.asarray(alpha), np.asarray(straight, int), np.asarray(im, int)
    assert a[:, 0].max() == 0 and a[:, W // 2].min() == 128 and a[:, -1].min() == 255
    assert (s[:, 0] == 255).all()  # (nothing of the magenta under the transparent part)
    src = np.asarray(gradient_image(W, H), int)
    assert (s[:, W // 2] == src[:, W // 2]).all()  # (the half-transparent colours as they are)
    assert (rgb[:, W // 2] > src[:, W // 2]).all() or (rgb[:, W // 2] >= 127).all()  # (on white)
    opaque = gradient_image(W, H).convert("RGBA")  # (an alpha band that is all opaque is none)
    assert transparency(as_image(opaque)) is None
    palette = gradient_image(W, H).quantize(16)
    palette.info["transparency"] = 0
    assert transparency(as_image(palette)) is not None


@pytest.mark.usefixtures("tiny_weights")
def test_keep_is_the_alpha_as_every_paintings_mask_and_the_picture_carries_it():
    photo, painting = cutout(), stripes_image()
    kept = stylize(photo, painting, **FAST)
    alpha, straight = transparency(as_image(photo))
    guided = stylize(straight, painting, masks=[alpha], **FAST)  # (the same run, by hand)
    assert kept.image.mode == "RGBA"
    assert np.array_equal(np.asarray(kept.image)[..., :3], np.asarray(guided.image))
    assert np.array_equal(np.asarray(kept.image.getchannel("A")), np.asarray(alpha))
    # the magenta under the transparent part never reaches the run
    other = stylize(cutout(fill=(0, 255, 0)), painting, **FAST)
    assert np.array_equal(np.asarray(other.image), np.asarray(kept.image))


@pytest.mark.usefixtures("tiny_weights")
def test_white_is_the_photo_on_white_as_before_and_nothing_opaque_is_one_line():
    photo, painting = cutout(), stripes_image()
    white = stylize(photo, painting, alpha="white", **FAST)
    before = stylize(as_image(photo).copy(), painting, alpha="white", **FAST)
    on_white = Image.alpha_composite(Image.new("RGBA", (W, H), "white"), photo).convert("RGB")
    plain = stylize(on_white, painting, **FAST)
    assert white.image.mode == "RGB" and np.array_equal(np.asarray(white.image), np.asarray(plain.image))
    assert np.array_equal(np.asarray(before.image), np.asarray(plain.image))
    clear = photo.copy()
    clear.putalpha(0)
    with pytest.raises(ArtstyleError, match=r"transparent everywhere.*alpha white"):
        stylize(clear, painting, **FAST)


def _run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.usefixtures("tiny_weights")
def test_the_command_line_keeps_it_where_the_format_can(tmp_path: Path):
    photo, painting = tmp_path / "cut.png", tmp_path / "p.png"
    cutout().save(photo)
    stripes_image().save(painting)
    flags = ["--size", W, "--scales", 1, "--iterations", 2]
    code, out = _run("stylize", photo, painting, "-o", tmp_path / "o.webp", *flags)
    assert code == 0, out
    assert Image.open(tmp_path / "o.webp").mode == "RGBA"
    assert json.loads((tmp_path / "o.webp.json").read_text())["alpha"] == "kept"
    code, out = _run("stylize", photo, painting, "-o", tmp_path / "o.jpg", *flags)
    assert code == 0 and "o.jpg: JPG has no transparency; the picture is put on white" in out, out
    assert "--alpha white" in out and Image.open(tmp_path / "o.jpg").mode == "RGB"
    code, out = _run("stylize", photo, painting, "-o", tmp_path / "w.png", *flags, "--alpha", "white")
    assert code == 0 and Image.open(tmp_path / "w.png").mode == "RGB"
    assert "alpha" not in json.loads((tmp_path / "w.png.json").read_text())
    for deep in ("d.png", "d.tif"):
        code, out = _run("stylize", photo, painting, "-o", tmp_path / deep, *flags, "--bit-depth", "16")
        assert code == 0, out
        got = Image.open(tmp_path / deep) if deep.endswith("png") else None
        if got is not None:
            assert got.mode == "RGBA"  # (Pillow reads a 16-bit RGBA PNG as 8-bit RGBA)
            assert np.asarray(got.getchannel("A"))[:, 0].max() == 0
        else:
            import tifffile

            t = tifffile.imread(tmp_path / deep)
            assert t.shape == (H, W, 4) and t.dtype == np.uint16 and t[:, -1, 3].min() == 65535
