"""One picture's tiles over Ray: the same picture as local tiles, a worker that dies loses only its
tile, and on two Ray nodes on this machine whose second node is killed mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle import StyleConfig, Stylizer
from tests.conftest import gradient_image, random_state, stripes_image

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
pytestmark = pytest.mark.ray

from artstyle.runs.cluster import RayPainter, TileWorker  # noqa: E402
from tests.ray_helpers import two_nodes  # noqa: E402

# (Ray's workers cannot import this test module: the dying worker travels by value)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class DyingTileWorker(TileWorker):
    """A tile worker whose process dies in its first tile, once (``marker`` records it)."""

    def __init__(self, config, threads, marker):
        super().__init__(config, threads)
        self.marker = marker

    def paint(self, *args, **kwargs):
        import os

        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().paint(*args, **kwargs)


SETTINGS = dict(
    size=256,
    scales=1,
    iterations=4,
    tile_size=128,
    style_layers=("relu1_1", "relu2_1", "relu3_1"),
    content_layers=("relu3_2",),
    device="cpu",
)


@pytest.fixture
def cfg(tmp_path):
    weights = tmp_path / "random.pth"  # workers load weights themselves: give them a file
    torch.save(random_state("vgg19"), weights)
    return StyleConfig(**SETTINGS, weights=str(weights))


def _paint(cfg, painter=None, masks=None):
    s = Stylizer([stripes_image()], cfg)
    s.painter = painter
    steps = []
    r = s.stylize(gradient_image(256, 192), callback=steps.append, masks=masks)
    return np.asarray(r.image, np.float64), steps


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("detail", [False, True])
def test_tiles_on_ray_paint_the_local_picture(cfg, detail):
    if detail:  # painted at 128 px, then a tiled detail level held to it by the anchor
        cfg = cfg.replace(paint_size=128, detail_anchor=100.0, detail_style=1.0)
    local, local_steps = _paint(cfg)
    assert ("anchor" in local_steps[-1].losses) == detail and ("look" in local_steps[-1].losses) == detail
    painter = RayPainter(cfg)
    try:
        remote, remote_steps = _paint(cfg, painter)
    finally:
        painter.close()
    assert len(painter.actors) == 0 and len(remote_steps) == len(local_steps)
    assert [s.tile for s in remote_steps] == [s.tile for s in local_steps]
    assert np.abs(remote - local).mean() < 0.5  # the same tiles, blended in the same order


@pytest.mark.usefixtures("local_ray")
def test_masks_travel_with_their_tiles(cfg):
    left = np.zeros((192, 256), np.uint8)
    left[:, :128] = 255
    masks = [Image.fromarray(left, "L")]
    local, _ = _paint(cfg, masks=masks)
    painter = RayPainter(cfg)
    try:
        remote, _ = _paint(cfg, painter, masks=masks)
    finally:
        painter.close()
    assert np.abs(remote - local).mean() < 0.5


@pytest.mark.usefixtures("local_ray")
def test_a_worker_that_dies_loses_only_its_tile(cfg, tmp_path):
    marker = tmp_path / "died"
    lines: list[str] = []
    painter = RayPainter(cfg, actors=2, worker=DyingTileWorker, worker_args=(str(marker),), log=lines.append)
    try:
        remote, steps = _paint(cfg, painter)
        # (the lost one was replaced: once up, the run is not a worker short)
        assert len(painter.actors) + len(painter.starting) == 2
    finally:
        painter.close()
    local, local_steps = _paint(cfg)
    assert marker.exists()  # a worker process did die
    assert len(lines) == 1 and "a tile worker was lost" in lines[0] and "try 2 of 4" in lines[0], lines
    assert len(steps) == len(local_steps) and np.abs(remote - local).mean() < 0.5


def test_two_nodes_one_killed_mid_run_give_the_picture(tmp_path, cfg):
    """Head (1 CPU) and a second node (1 CPU) on this machine; the second node's raylet is killed
    once the first tile is in. The picture is finished and is the local one."""
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    gradient_image(256, 192).save(photo)
    stripes_image().save(painting)
    flags = ["--size", "256", "--scales", "1", "--iterations", "6", "--tile-size", "128", "--device", "cpu"]
    flags += ["--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu3_2", "-q"]
    flags += ["--weights", cfg.weights]
    cli = [sys.executable, "-m", "artstyle.apps.cli", "stylize", str(photo), str(painting)]
    local = subprocess.run([*cli, "-o", str(tmp_path / "local.png"), *flags], capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    with two_nodes() as cluster:
        out = tmp_path / "ray.png"
        driver = subprocess.Popen(
            [*cli, "-o", str(out), *flags, "--runner", "ray", "--ray-address", cluster.address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cluster.env,
        )
        state = tmp_path / "ray.png.state"
        deadline = time.time() + 240
        while not list(state.glob("tile-*.npy")) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.1)
        cluster.kill_second()
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
        side = json.loads((tmp_path / "ray.png.json").read_text())
        assert side["runner"] == "ray" and side["plan"][0]["tile"] == 128
        a = np.asarray(Image.open(out), np.float64)
        b = np.asarray(Image.open(tmp_path / "local.png"), np.float64)
        assert np.abs(a - b).mean() < 0.5
