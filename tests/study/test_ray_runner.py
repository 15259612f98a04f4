"""The Ray runner against a real local Ray (started once for the session), and a fault test with two
Ray nodes on this machine whose second node is killed mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from artstyle.cli import main
from artstyle.study.experiment import parse_experiment
from artstyle.study.runner import run_experiment
from tests.conftest import gradient_image, random_state, stripes_image

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
pytestmark = pytest.mark.ray

TINY = dict(size=40, scales=1, iterations=2, style_layers=["relu1_1", "relu2_1"], content_layers=["relu2_2"])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()


@pytest.fixture
def study(tmp_path):
    d = tmp_path / "pics"
    d.mkdir()
    gradient_image(48, 40, seed=1).save(d / "alpha.png")
    gradient_image(40, 48, seed=2).save(d / "beta.png")
    stripes_image().save(d / "stripes.png")
    weights = tmp_path / "random-vgg19.pth"  # workers load weights themselves: give them a file
    torch.save(random_state("vgg19"), weights)
    return d, {**TINY, "weights": str(weights)}


def _experiment(d, base, contents=("alpha.png", "beta.png")):
    data = {"experiment": {"name": "tiny"}, "base": base}
    return parse_experiment(
        data, "tiny", base_dir=d, content=[d / c for c in contents], style=[d / "stripes.png"]
    )


@pytest.mark.usefixtures("local_ray")
def test_ray_runs_write_what_the_local_runner_writes(tmp_path, study):
    d, base = study
    local = run_experiment(_experiment(d, base), tmp_path / "local", progress=False)
    remote = run_experiment(_experiment(d, base), tmp_path / "ray", progress=False, runner="ray")
    assert [o.status for o in remote] == ["done", "done"] == [o.status for o in local]
    for a, b in zip(local, remote, strict=True):
        ia, ib = (np.asarray(Image.open(o.spec.output), dtype=int) for o in (a, b))
        assert ia.shape == ib.shape and np.abs(ia - ib).mean() < 1.0  # same run (threads may differ)
        side = json.loads(Path(str(b.spec.output) + ".json").read_text())
        assert side["runner"] == "ray" and side["history"] and side["content"]["sha256"]
    for name in ("results.csv", "report.html", "report.md"):
        assert (tmp_path / "ray" / name).exists()
    again = run_experiment(_experiment(d, base), tmp_path / "ray", progress=False, runner="ray")
    assert [o.status for o in again] == ["skipped", "skipped"]  # resume, as locally


@pytest.mark.usefixtures("local_ray")
def test_a_failed_run_is_reported_and_the_rest_go_on(tmp_path, study):
    d, base = study
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    exp = _experiment(d, base, contents=("alpha.png", "broken.png"))
    outcomes = run_experiment(exp, tmp_path / "out", progress=False, runner="ray")
    status = {o.spec.content.name: o for o in outcomes}
    assert status["alpha.png"].status == "done"
    assert status["broken.png"].status == "failed" and "broken.png" in status["broken.png"].message


def test_without_ray_the_runner_says_how_to_install_it(tmp_path, study, monkeypatch):
    d, _ = study
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    args = [
        "grid",
        "--content",
        str(d / "alpha.png"),
        "--style",
        str(d / "stripes.png"),
        "-o",
        str(tmp_path / "g"),
    ]
    result = CliRunner().invoke(main, [*args, "--runner", "ray", "-q", "--size", "40"])
    assert result.exit_code == 1
    lines = [x for x in result.output.splitlines() if x.startswith("artstyle: error:")]
    assert lines == ['artstyle: error: --runner ray needs Ray: pip install "artstyle[cluster]"']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process under ``pid`` (from /proc)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append((int(stat.parent.name), name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill a process we started and everything under it, by process id."""
    for pid, _ in [*_children(proc.pid), (proc.pid, "")]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _wait_for_raylet(proc: subprocess.Popen, timeout: float = 120) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [pid for pid, name in _children(proc.pid) if name == "raylet"]
        if pids:
            return pids
        time.sleep(0.5)
    raise AssertionError("a Ray node did not start its raylet")


def test_a_node_that_dies_mid_run_loses_nothing(tmp_path, study):
    """Head (1 CPU) and a second node (1 CPU) on this machine; the second node's raylet is killed
    once the first result is in. Every run still finishes, each output is written once."""
    d, base = study
    for i in range(3):
        gradient_image(48, 40, seed=10 + i).save(d / f"extra{i}.png")
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # A throw-away cluster on loopback only; its processes are ours to kill by process id.
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus=1", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    head = subprocess.Popen(
        [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    node = None
    family: list[int] = []
    try:
        _wait_for_raylet(head)
        time.sleep(3)
        node = subprocess.Popen(
            [ray_bin, "start", f"--address={address}", *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        node_raylets = _wait_for_raylet(node)
        time.sleep(3)
        exp_file = tmp_path / "exp.toml"
        contents = ", ".join(
            json.dumps(str(d / n)) for n in ["alpha.png", "beta.png", *[f"extra{i}.png" for i in range(3)]]
        )
        base_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**base, "iterations": 6}.items())
        style = json.dumps(str(d / "stripes.png"))
        exp_file.write_text(
            f'[experiment]\nname = "fault"\ncontent = [{contents}]\nstyle = [{style}]\n[base]\n{base_toml}\n'
        )
        out = tmp_path / "out"
        cli = [sys.executable, "-m", "artstyle.cli", "experiment", str(exp_file), "-o", str(out)]
        driver = subprocess.Popen(
            [*cli, "--runner", "ray", "--ray-address", address, "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.time() + 240
        while not list((out / "images").glob("*.png.json")) and time.time() < deadline:
            time.sleep(0.2)
        family = [pid for pid, _ in _children(node.pid) + _children(head.pid)]  # orphans-to-be
        for pid in node_raylets:  # the second node's raylet, by its process id
            os.kill(pid, signal.SIGKILL)
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
        sides = sorted((out / "images").glob("*.png.json"))
        assert len(sides) == 5 and len(list((out / "images").glob("*.png"))) == 5
        assert all(json.loads(s.read_text())["runner"] == "ray" for s in sides)
        assert not list((out / "images").glob(".artstyle-*"))  # no half-written file
        assert "5 of 5 runs done" in err
    finally:
        if node is not None:
            _kill_tree(node)
        _kill_tree(head)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
