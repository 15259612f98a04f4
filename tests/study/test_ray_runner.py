"""The Ray runner against a real local Ray (started once for the session), and a fault test with two
Ray nodes on this machine whose second node is killed mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from artstyle.apps.cli import main
from artstyle.apps.study.experiment import parse_experiment
from artstyle.apps.study.runner import run_experiment
from tests.conftest import gradient_image, random_state, stripes_image
from tests.ray_helpers import two_nodes

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
pytestmark = pytest.mark.ray

TINY = dict(size=40, scales=1, iterations=2, style_layers=["relu1_1", "relu2_1"], content_layers=["relu2_2"])


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


def test_a_node_that_dies_mid_run_loses_nothing(tmp_path, study):
    """Head (1 CPU) and a second node (1 CPU) on this machine; the second node's raylet is killed
    once the first result is in. Every run still finishes, each output is written once."""
    d, base = study
    for i in range(3):
        gradient_image(48, 40, seed=10 + i).save(d / f"extra{i}.png")
    with two_nodes() as cluster:
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
        cli = [sys.executable, "-m", "artstyle.apps.cli", "experiment", str(exp_file), "-o", str(out)]
        driver = subprocess.Popen(
            [*cli, "--runner", "ray", "--ray-address", cluster.address, "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cluster.env,
        )
        deadline = time.time() + 240
        while not list((out / "images").glob("*.png.json")) and time.time() < deadline:
            time.sleep(0.2)
        cluster.kill_second()
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
        sides = sorted((out / "images").glob("*.png.json"))
        assert len(sides) == 5 and len(list((out / "images").glob("*.png"))) == 5
        assert all(json.loads(s.read_text())["runner"] == "ray" for s in sides)
        assert not list((out / "images").glob(".artstyle-*"))  # no half-written file
        assert "5 of 5 runs done" in err
        # (a run that was on the killed node, if one was, went to another worker, saying so)
        for line in [x for x in err.splitlines() if "a Ray worker was lost" in x]:
            assert "its machine left the cluster" in line or "its process died" in line, line
            assert "goes to another worker, try 2 of 4" in line, line
