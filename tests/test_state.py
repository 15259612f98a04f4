"""A long tiled run keeps its state beside the output: the same command continues it after Ctrl-C
or kill -9, to the same picture; a state of other settings is refused in one line."""

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

from tests.conftest import gradient_image, random_state, stripes_image

FLAGS = ["--size", "256", "--scales", "2", "--coarse-min-size", "128", "--coarse-iterations", "3"]
FLAGS += ["--iterations", "6", "--tile-size", "128", "--style-layers", "relu1_1,relu2_1,relu3_1"]
FLAGS += ["--content-layers", "relu3_2", "--device", "cpu", "-q"]


def _cmd(tmp_path: Path, out: Path, *more: str) -> list[str]:
    weights = tmp_path / "random.pth"
    if not weights.exists():
        torch.save(random_state("vgg19"), weights)
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    if not photo.exists():
        gradient_image(256, 192).save(photo)
        stripes_image().save(painting)
    return [
        sys.executable,
        "-m",
        "artstyle.apps.cli",
        "stylize",
        str(photo),
        str(painting),
        "-o",
        str(out),
        *FLAGS,
        "--weights",
        str(weights),
        *more,
    ]


def _wait_for(path_glob, folder: Path, p: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end and p.poll() is None:
        if list(folder.glob(path_glob)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no {path_glob} in {folder}: {p.poll()} {p.stderr.read() if p.stderr else ''}")


def _tiles_named(state: Path) -> bool:
    """Whether the kept state's record names a finished tile yet."""
    try:
        return bool(json.loads((state / "state.json").read_text())["state"]["tiles"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_stopped_and_killed_tiled_run_continues_to_the_same_picture(tmp_path):
    ref = tmp_path / "ref.png"
    done = subprocess.run(_cmd(tmp_path, ref), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "ref.png.state").exists()  # the state goes when the output is written
    side = json.loads((tmp_path / "ref.png.json").read_text())
    assert side["plan"][-1]["tile"] == 128 and len(side["history"]) == side["iterations"]

    out = tmp_path / "o.png"
    state = tmp_path / "o.png.state"
    # Ctrl-C at the tiled level: the picture so far is written and the state kept
    p = subprocess.Popen(_cmd(tmp_path, out), stderr=subprocess.PIPE, text=True)
    _wait_for("tile-2-0-0000.npy", state, p)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=120) == 130
    err = p.stderr.read()
    assert "the same command continues" in err and "Traceback" not in err, err
    assert Image.open(out).size == (256, 192) and state.is_dir()
    # the same command continues (it may replace the picture it wrote); killed again, mid-pass
    p = subprocess.Popen(_cmd(tmp_path, out), stderr=subprocess.PIPE, text=True)
    _wait_for("image-2-1.npy", state, p)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    # and once more, to the end
    done = subprocess.run(_cmd(tmp_path, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "continuing the stopped run" in done.stderr
    assert not state.exists()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(ref)))
    history = json.loads((tmp_path / "o.png.json").read_text())["history"]
    assert [h["iteration"] for h in history][-1] == side["history"][-1]["iteration"]


def test_a_state_of_other_settings_is_refused_in_one_line(tmp_path):
    out = tmp_path / "o.png"
    p = subprocess.Popen(_cmd(tmp_path, out), stderr=subprocess.PIPE, text=True)
    _wait_for("tile-2-0-0000.npy", tmp_path / "o.png.state", p)
    end = time.time() + 120  # (the tile is written before the state's record names it)
    while time.time() < end and p.poll() is None and not _tiles_named(tmp_path / "o.png.state"):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    done = subprocess.run(
        _cmd(tmp_path, out, "--style-weight", "30"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "holds the state of another run" in done.stderr
    # the same settings, a state edited or damaged: one line, with the way out; --restart starts over
    state = tmp_path / "o.png.state"
    record = json.loads((state / "state.json").read_text())
    for change, said in (("level", "level 99 of a plan of 2"), ("tile", "a tile of shape (1, 3, 5, 5)")):
        edited = json.loads(json.dumps(record))
        if change == "level":
            edited["state"]["level"] = 99
        else:
            np.save(state / edited["state"]["tiles"][0], np.zeros((1, 3, 5, 5), np.float32))
        (state / "state.json").write_text(json.dumps(edited))
        done = subprocess.run(_cmd(tmp_path, out), capture_output=True, text=True, timeout=300)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "does not match this run" in done.stderr and said in done.stderr and "--restart" in done.stderr
    # a live run holds its state: a second run of the same output is refused, not mixed in
    damaged = (state / "tile-2-0-0000.npy").stat().st_mtime_ns
    first = subprocess.Popen(_cmd(tmp_path, out, "--restart"), stderr=subprocess.PIPE, text=True)
    end = time.time() + 120  # (until --restart has made a tile of its own)
    while time.time() < end and first.poll() is None:
        tile = state / "tile-2-0-0000.npy"
        if tile.exists() and tile.stat().st_mtime_ns != damaged:
            break
        time.sleep(0.02)
    second = subprocess.run(_cmd(tmp_path, out), capture_output=True, text=True, timeout=300)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert second.returncode == 1 and "another run is painting it now" in second.stderr, second.stderr


@pytest.mark.usefixtures("tiny_weights")
def test_a_state_folder_that_cannot_be_written_is_found_before_any_work(tmp_path, monkeypatch):
    import tempfile

    from click.testing import CliRunner

    from artstyle.apps.cli import main

    gradient_image(256, 192).save(tmp_path / "photo.png")
    stripes_image().save(tmp_path / "painting.png")
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):  # (as a read-only folder answers, even to root)
        if dir is not None and str(dir).endswith(".state"):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    steps = []
    monkeypatch.setattr("artstyle.runs.jobs.Progress.__call__", lambda self, step: steps.append(step))
    flags = [f for f in FLAGS if f not in ("--device", "cpu")]
    r = CliRunner().invoke(
        main,
        [
            "stylize",
            str(tmp_path / "photo.png"),
            str(tmp_path / "painting.png"),
            "-o",
            str(tmp_path / "o.png"),
            *flags,
        ],
    )
    assert r.exit_code == 1 and "is not writable" in r.output and "Traceback" not in r.output, r.output
    assert not steps and not (tmp_path / "o.png").exists() and not (tmp_path / "o.png.state").exists()
