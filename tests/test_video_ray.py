"""A clip's chunks on a local Ray: the frames of the local run, a worker that dies loses only its
chunk (retried on another actor), and SIGTERM on the driver keeps the finished chunks for a re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle.config import StyleConfig, VideoOptions
from tests.conftest import random_state, stripes_image
from tests.test_video_chunks import clip_folder, clip_mp4, shot_frame, two_shots

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
pytest.importorskip("av", reason='video needs the video extra: pip install "artstyle[video]"')
pytestmark = pytest.mark.ray

from artstyle.runs.video.on_ray import ChunkWorker, ray_workers  # noqa: E402
from artstyle.runs.video.run import stylize_video  # noqa: E402

# (Ray's workers cannot import this test module: the dying worker travels by value)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

OPTS = VideoOptions(frame_iterations=3, min_shot=2, chunk_frames=4)


class DyingChunkWorker(ChunkWorker):
    """A chunk worker whose process dies in its first chunk, once (``marker`` records it)."""

    def __init__(self, config, opts, styles, size, masks, threads, marker):
        super().__init__(config, opts, styles, size, masks, threads)
        self.marker = marker

    def paint(self, *args, **kwargs):
        import os

        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().paint(*args, **kwargs)


@pytest.fixture
def cfg(tmp_path):
    weights = tmp_path / "random.pth"  # (workers load weights themselves: give them a file)
    torch.save(random_state("vgg19"), weights)
    return StyleConfig(size=48, scales=1, iterations=6, initial="content", device="cpu", weights=str(weights))


@pytest.fixture
def one_thread():
    """Frames are the same for the same number of threads per run: Ray's actors have one each."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _frames(folder: Path, n: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / f"frame_{i:05d}.png"), np.float32) for i in range(n)])


@pytest.mark.usefixtures("local_ray", "one_thread")
def test_ray_paints_the_local_frames_and_a_lost_worker_loses_only_its_chunk(tmp_path, cfg):
    src = clip_mp4(tmp_path / "in.mp4", two_shots())
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    local = json.loads(
        stylize_video(src, [str(painting)], tmp_path / "local", cfg, OPTS, progress=False).read_text()
    )
    lines: list[str] = []
    marker = tmp_path / "died"
    workers = ray_workers(1, actors=2, worker=DyingChunkWorker, worker_args=(str(marker),), log=lines.append)
    side = json.loads(
        stylize_video(
            src, [str(painting)], tmp_path / "ray", cfg, OPTS, progress=False, workers=workers
        ).read_text()
    )
    assert marker.exists() and len(side["retries"]) == 1 and side["retries"][0]["try"] == 2
    assert len(lines) == 1 and "a worker was lost" in lines[0] and "try 2 of 4" in lines[0]
    assert side["chunk_plan"] == local["chunk_plan"] and side["shots"] == [[0, 7], [7, 14]]
    assert [f["frame"] for f in side["frames"]] == list(range(14))
    assert [f["time"] for f in side["frames"]] == [f["time"] for f in local["frames"]]
    assert np.abs(_frames(tmp_path / "ray", 14) - _frames(tmp_path / "local", 14)).mean() < 0.5


def test_sigterm_on_the_driver_keeps_finished_chunks_and_a_re_run_goes_on(tmp_path, cfg):
    clip = clip_folder(tmp_path / "clip", [shot_frame(i, 0) for i in range(16)])
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    out = tmp_path / "out"
    flags = ["--size", "48", "--scales", "1", "--iterations", "6", "--initial", "content", "--device", "cpu"]
    flags += ["--weights", cfg.weights, "--frame-iterations", "3", "--chunk-frames", "4", "-q"]
    cli = [sys.executable, "-m", "artstyle.apps.cli", "video", str(clip), str(painting), "-o", str(out)]
    driver = subprocess.Popen([*cli, *flags, "--runner", "ray"], stderr=subprocess.PIPE, text=True)
    state = out / "video.json"
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None:
        try:
            if json.loads(state.read_text()).get("chunks_done"):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 143, err
    assert "frames are kept in" in err and "Traceback" not in err and "SIGTERM received" not in err
    done = json.loads(state.read_text())["chunks_done"]
    assert 0 < len(done) < 4
    again = subprocess.run([*cli, *flags], capture_output=True, text=True)  # (here, now)
    assert again.returncode == 0, again.stderr
    side = json.loads(state.read_text())
    assert len(side["frames"]) == 16 and side["frames_painted_now"] <= 16 - 4 * len(done)
