"""The command line: every bad input gives one line and a non-zero exit, never a traceback."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artstyle.apps.cli import main
from tests.conftest import gradient_image, stripes_image

FAST = [
    "--size",
    "40",
    "--scales",
    "1",
    "--iterations",
    "2",
    "--style-layers",
    "relu1_1,relu2_1",
    "--content-layers",
    "relu2_2",
    "-q",
]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output, result


@pytest.fixture(autouse=True)
def _tiny(tiny_weights):
    yield


def one_error_line(output):
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("artstyle: error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


def test_stylize_writes_image_and_sidecar(tmp_path, photo, painting):
    out = tmp_path / "out.png"
    code, output, _ = run("stylize", photo, painting, "-o", out, *FAST, "--seed", "7")
    assert code == 0, output
    assert Image.open(out).size == (40, 33)
    side = json.loads((tmp_path / "out.png.json").read_text())
    assert side["config"]["seed"] == 7 and side["config"]["iterations"] == 2
    assert len(side["history"]) == 2 and side["versions"]["torch"]
    assert side["content"]["sha256"] and side["styles"][0]["path"].endswith("painting.png")
    assert "total_s" in side["timings"] and side["weights"] == "random-vgg19"
    assert 0 < side["memory_budget_gb"] <= 9  # (the default budget, written down)


def test_progress_bar_shows_iteration_scale_size_and_losses(tmp_path, photo, painting):
    code, output, _ = run("stylize", photo, painting, "-o", tmp_path / "o.png", *FAST[:-1])
    assert code == 0, output
    bar = r"100%\|.*\| it 2/2 scale 1/1 40x33 \d+\.\d/\d+\.\d GB painting 1 px/px "
    bar += r"loss \S+ \(c \S+ s \S+ tv \S+\) \["
    assert re.search(bar, output), output  # (the memory now, of the run's budget; the painting not enlarged)
    assert ", it" not in output and "<-" not in output  # no tqdm postfix comma, no negative ETA


def test_a_painting_much_smaller_than_the_picture_is_named_with_the_scan_it_needs(tmp_path, photo, painting):
    args = ["stylize", photo, painting, *FAST[:-1], "--size", "128"]  # (the painting: 48 px)
    code, output, _ = run(*args, "--native-blocks", "0", "-o", tmp_path / "a.png")
    assert code == 0, output
    line = "painting.png (48x48) gives each pixel of this 128x107 picture 0.38 of its own pixels"
    assert line in output and "enlarged 2.7x; a scan of it at least 128 px long" in output, output
    assert re.search(r"scale 1/1 128x107 .*painting 0\.38 px/px", output), output
    assert json.loads((tmp_path / "a.png.json").read_text())["painting_px"] == 0.375
    code, output, _ = run(*args, "--native-blocks", "1", "-o", tmp_path / "b.png")
    assert "enlarged 2.7x (its texture and edges are matched at its own pixels)" in output, output
    code, output, _ = run(*args, "--size", "96", "-o", tmp_path / "c.png")  # (0.5: not much smaller)
    assert code == 0 and "a scan of it" not in output, output


def test_existing_output_is_refused_unless_overwrite(tmp_path, photo, painting):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    code, output, _ = run("stylize", photo, painting, "-o", out, *FAST)
    assert code == 1 and "already exists" in one_error_line(output)
    assert out.read_bytes() == b"precious"
    code, output, _ = run("stylize", photo, painting, "-o", out, *FAST, "--overwrite")
    assert code == 0 and Image.open(out).size == (40, 33)


def test_checkpoints(tmp_path, photo, painting):
    out = tmp_path / "o.png"
    code, _, _ = run(
        "stylize", photo, painting, "-o", out, *FAST, "--iterations", "4", "--checkpoint-every", "2"
    )
    assert code == 0 and (tmp_path / "o.iter00002.png").exists()


def _bad_files(tmp):
    files = {}
    files["missing"] = (tmp / "nope.jpg", "no such file")
    (tmp / "text.png").write_text("not an image")
    files["text"] = (tmp / "text.png", "not an image")
    buf = io.BytesIO()
    gradient_image(64, 64).save(buf, "JPEG")
    (tmp / "cut.jpg").write_bytes(buf.getvalue()[:300])
    files["truncated"] = (tmp / "cut.jpg", "truncated|cannot decode")
    gradient_image(20, 50).save(tmp / "tiny.png")
    files["tiny"] = (tmp / "tiny.png", "at least 32 px")
    files["folder"] = (tmp, "folder")
    from tests.test_images import _png_header_only

    (tmp / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    files["bomb"] = (tmp / "bomb.png", "too large")
    return files


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "tiny", "folder", "bomb"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_inputs(tmp_path, photo, painting, case, role):
    (tmp_path / "bad").mkdir()
    bad, message = _bad_files(tmp_path / "bad")[case]
    args = (bad, painting) if role == "content" else (photo, bad)
    out = tmp_path / "out.png"
    code, output, _ = run("stylize", *args, "-o", out, *FAST)
    assert code == 1
    assert re.search(message, one_error_line(output)), output
    assert not out.exists()


def test_all_bad_inputs_are_listed_at_once(tmp_path):
    code, output, _ = run("stylize", tmp_path / "a.jpg", tmp_path / "b.jpg", "-o", tmp_path / "o.png", *FAST)
    line = one_error_line(output)
    assert code == 1 and "a.jpg" in line and "b.jpg" in line


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "I;16"])
def test_odd_modes_work(tmp_path, painting, mode):
    src = tmp_path / ("in.tif" if mode == "CMYK" else "in.png")
    im = gradient_image()
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257)
    else:
        im = im.convert(mode)
    im.save(src)
    code, output, _ = run("stylize", src, painting, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, output


def test_output_problems(tmp_path, photo, painting):
    code, output, _ = run("stylize", photo, painting, "-o", tmp_path / "no" / "o.png", *FAST)
    assert code == 1 and "does not exist" in one_error_line(output)
    code, output, _ = run("stylize", photo, painting, "-o", tmp_path / "o.gifx", *FAST)
    assert code == 1 and "unknown output format" in one_error_line(output)
    code, output, _ = run("stylize", photo, painting, "-o", photo / "o.png", *FAST)
    assert code == 1 and "is a file, not a folder" in one_error_line(output)
    # Unwritable even for root: a read-only file system (else a folder without write permission).
    target = Path("/proc/artstyle-test.png")
    if not Path("/proc").is_dir():
        target = tmp_path / "ro" / "o.png"
        target.parent.mkdir()
        target.parent.chmod(0o500)
    code, output, _ = run("stylize", photo, painting, "-o", target, *FAST)
    assert code == 1 and "not writable" in one_error_line(output)


def test_bad_settings(tmp_path, photo, painting):
    code, output, _ = run("stylize", photo, painting, "-o", tmp_path / "o.png", *FAST, "--size", "8")
    assert code == 1 and "size must be in [32, 16384]" in one_error_line(output)
    code, output, _ = run(
        "stylize", photo, painting, "-o", tmp_path / "o.png", *FAST, "--style-layers", "relu9_9"
    )
    assert code == 1 and "relu9_9" in one_error_line(output)
    cfg = tmp_path / "c.toml"
    cfg.write_text("style_weigth = 3\n")
    code, output, _ = run("stylize", photo, painting, "-o", tmp_path / "o.png", "--config", cfg, *FAST)
    assert code == 1 and "c.toml" in one_error_line(output) and "style_weigth" in output


def test_config_file_then_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('style_weight = 123.0\npooling = "max"\n')
    code, output, _ = run("config", "--preset", "study-vgg19-adam", "--config", cfg, "--pooling", "avg")
    assert code == 0
    assert "style_weight = 123.0" in output and 'pooling = "avg"' in output
    assert 'optimizer = "adam"' in output


def test_nan_keeps_last_good_image(tmp_path, photo, painting):
    out = tmp_path / "o.png"
    code, output, _ = run(
        "stylize",
        photo,
        painting,
        "-o",
        out,
        *FAST,
        "--optimizer",
        "adam",
        "--learning-rate",
        "1e30",
        "--pixel-bounds",
        "free",
        "--iterations",
        "20",
    )
    assert code == 1 and "loss became" in one_error_line(output)
    assert out.exists() and "error" in json.loads((tmp_path / "o.png.json").read_text())


def test_real_process_prints_one_line_without_traceback(tmp_path):
    """The installed entry point, as a user runs it (no weights needed: the input check fails first)."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "artstyle.apps.cli",
            "stylize",
            str(tmp_path / "x.jpg"),
            str(tmp_path / "y.jpg"),
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith("artstyle: error:")


def test_stylize_with_style_masks_and_a_region_map(tmp_path, photo, painting):
    left = np.zeros((40, 48), np.uint8)
    left[:, :24] = 255
    m1, m2 = tmp_path / "m1.png", tmp_path / "m2.png"
    Image.fromarray(left).save(m1)
    Image.fromarray(255 - left).save(m2)
    out = tmp_path / "masked.png"
    code, output, _ = run("stylize", photo, painting, painting, "--style-masks", m1, m2, "-o", out, *FAST)
    assert code == 0, output
    side = json.loads((tmp_path / "masked.png.json").read_text())
    assert [m["path"] for m in side["style_masks"]] == [str(m1), str(m2)] and side["style_masks"][0]["sha256"]
    colour = np.zeros((40, 48, 3), np.uint8)
    colour[:, :24] = (255, 0, 0)
    colour[:, 24:] = (0, 0, 255)
    cmap = tmp_path / "map.png"
    Image.fromarray(colour).save(cmap)
    args = ("--style-region-map", cmap, "--region-colors", "red,blue", "-o", tmp_path / "r.png", *FAST)
    code, output, _ = run("stylize", photo, painting, painting, *args)
    assert code == 0, output
    # masks guide every style loss
    args = ("--style-masks", m1, m2, "--style-loss", "sliced_wasserstein", "-o", tmp_path / "sw.png", *FAST)
    code, output, _ = run("stylize", photo, painting, painting, *args)
    assert code == 0 and Image.open(tmp_path / "sw.png").size == (40, 33), output
    for bad, message in [
        (("--style-masks", m1), "1 style masks for 2 paintings"),
        (("--style-masks", m1, m2, "--style-region-map", cmap), "not both"),
        (("--style-region-map", cmap), "needs --region-colors"),
    ]:
        code, output, _ = run("stylize", photo, painting, painting, *bad, "-o", tmp_path / "x.png", *FAST)
        assert code == 1 and message in output and output.count("\n") == 1, output


def test_tiles_that_cannot_work_are_one_line_before_any_work(tmp_path, photo, painting):
    out = tmp_path / "o.png"
    for flags, message in [
        (["--tile-size", "64"], "tile_size must be 0 (automatic) or at least 128 px"),
        (["--size", "256", "--tile-size", "400"], "--tile-size 400 is over the picture (256x213)"),
        (["--size", "256", "--max-memory", "0.3"], "even one tile of 128 px"),
        (["--size", "256", "--tile-size", "200", "--max-memory", "0.6"], "a tile of 200 px"),
    ]:
        code, output, _ = run("stylize", photo, painting, "-o", out, *FAST, *flags)
        assert code != 0 and message in output and output.count("\n") == 1, output
        assert not out.exists()


@pytest.mark.usefixtures("tiny_weights")
def test_a_folder_of_photos_is_painted_into_a_folder_and_a_rerun_skips_them(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        gradient_image(56, 48, seed=i).save(photos / f"p{i}.jpg")
    (photos / "broken.png").write_bytes(b"not a picture")
    stripes_image().save(tmp_path / "painting.png")
    fast = ["--size", "40", "--scales", "1", "--iterations", "2", "-q"]
    out = tmp_path / "out"
    args = ["stylize", str(photos), str(tmp_path / "painting.png"), "-o", str(out), *fast]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1, first.output  # one photo failed; the others are done
    assert "failed: " in first.output and "broken.png" in first.output and "Traceback" not in first.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"p{i}.jpg.png{x}" for i in range(3) for x in ("", ".json")
    ]
    made = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    (photos / "broken.png").unlink()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "3 already up to date" in again.output
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == made  # nothing painted twice
    # several photos named one by one, the paintings after --style
    two = tmp_path / "two"
    args = [
        "stylize",
        str(photos / "p0.jpg"),
        str(photos / "p1.jpg"),
        "--style",
        str(tmp_path / "painting.png"),
    ]
    r = CliRunner().invoke(main, [*args, "-o", str(two), *fast])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in two.glob("*.png")) == ["p0.jpg.png", "p1.jpg.png"]


def test_a_batch_says_what_is_wrong_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    gradient_image().save(tmp_path / "p.png")
    for args, message in (
        (
            ["stylize", str(tmp_path / "empty"), str(tmp_path / "p.png"), "-o", str(tmp_path / "o")],
            "no images",
        ),
        (
            [
                "stylize",
                str(tmp_path / "p.png"),
                str(tmp_path / "p.png"),
                "--style",
                str(tmp_path / "p.png"),
                "-o",
                str(tmp_path / "o.png"),
            ],
            "-o is a folder",
        ),
        (["stylize", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png")], "at least one painting"),
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code in (1, 2) and message in r.output and "Traceback" not in r.output, r.output


def test_a_batch_never_writes_among_its_photos_and_skips_hidden_files(tmp_path):
    """``-o`` the photos' own folder is refused before any work, --overwrite or not (the user's
    own a.png beside a.jpg was replaced, and a re-run painted the pictures as photos); macOS's
    ``._a.jpg`` beside a photo is not a photo."""
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(56, 48, seed=1).save(photos / "a.jpg")
    gradient_image(56, 48, seed=2).save(photos / "a.png")  # the user's own picture
    (photos / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    stripes_image().save(tmp_path / "painting.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    fast = ["--size", "40", "--scales", "1", "--iterations", "2", "-q"]
    for where in (photos, photos / "."):
        r = CliRunner().invoke(
            main,
            ["stylize", str(photos), str(tmp_path / "painting.png"), "-o", str(where), "--overwrite", *fast],
        )
        assert r.exit_code == 1 and "holds photos of this batch" in r.output, r.output
    one = CliRunner().invoke(
        main,
        [
            "stylize",
            str(photos / "a.jpg"),
            str(photos / "a.png"),
            "--style",
            str(tmp_path / "painting.png"),
            "-o",
            str(photos),
            *fast,
        ],
    )
    assert one.exit_code == 1 and "holds photos of this batch" in one.output, one.output
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # nothing of the user's touched
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main, ["stylize", str(photos), str(tmp_path / "painting.png"), "-o", str(out), *fast]
    )
    assert r.exit_code == 0 and "._a.jpg" not in r.output, r.output  # (not read, not failed)
    assert sorted(p.name for p in out.glob("*.png")) == ["a.jpg.png", "a.png.png"]


@pytest.mark.usefixtures("tiny_weights")
def test_batch_names_are_stable_and_a_changed_photo_is_painted_again(tmp_path):
    """Photos a.jpg, a.png and a-2.jpg make three pictures (a.png's was also named a-2.png);
    adding b.bmp beside an up-to-date b.jpg renames nothing and paints nothing twice; a photo that
    changed is painted again without --overwrite (its picture is the batch's own), an unchanged
    one is skipped even with --overwrite; a file of that name that the batch did not make is kept
    unless --overwrite; two photos of one name from two folders are refused in one line."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(("a.jpg", "a.png", "a-2.jpg", "b.jpg")):
        gradient_image(56, 48, seed=i).save(photos / name)
    stripes_image().save(tmp_path / "painting.png")
    out = tmp_path / "out"
    fast = ["--size", "40", "--scales", "1", "--iterations", "2", "-q"]
    args = ["stylize", str(photos), str(tmp_path / "painting.png"), "-o", str(out), *fast]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    names = ["a-2.jpg.png", "a.jpg.png", "a.png.png", "b.jpg.png"]
    assert sorted(p.name for p in out.glob("*.png")) == names
    made = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    gradient_image(56, 48, seed=9).save(photos / "b.bmp")
    gradient_image(56, 48, seed=7).save(photos / "a.jpg")  # the photo changed
    r = CliRunner().invoke(main, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "a.jpg.png: painted again: the photo changed" in r.output and "4 of 5 pictures" not in r.output
    now = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(p.name for p in out.glob("*.png")) == sorted([*names, "b.bmp.png"])
    assert now["a.jpg.png"] != made["a.jpg.png"]
    assert all(now[n] == made[n] for n in made if not n.startswith("a.jpg"))  # the rest: untouched
    (out / "b.bmp.png").unlink()
    (out / "b.bmp.png.json").unlink()
    (out / "b.bmp.png").write_bytes(b"the user's own file")
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "b.bmp.png" in r.output and "--overwrite" in r.output, r.output
    assert (out / "b.bmp.png").read_bytes() == b"the user's own file"
    other = tmp_path / "other"
    other.mkdir()
    gradient_image(56, 48, seed=5).save(other / "b.jpg")
    r = CliRunner().invoke(
        main,
        [
            "stylize",
            str(photos),
            str(other),
            "--style",
            str(tmp_path / "painting.png"),
            "-o",
            str(out),
            *fast,
        ],
    )
    assert r.exit_code == 1 and "would both be painted into b.jpg.png" in r.output, r.output
