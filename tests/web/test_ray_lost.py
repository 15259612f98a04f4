"""The studio on a local Ray of its own when that Ray is lost (``kill -9`` of its raylet): the
studio stays up, starts a new local Ray, and the running job is tried again there."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
ray = pytest.importorskip(
    "ray", reason='the Ray studio needs the cluster extra: pip install "artstyle[cluster]"'
)
from fastapi.testclient import TestClient  # noqa: E402

from artstyle.apps.web.app import create_app  # noqa: E402
from tests.web.test_api import INIT, finished, submit, wait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _raylet_of(pid: int) -> int:
    for child in _descendants(pid):
        try:
            if b"raylet" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]:
                return child
        except OSError:
            continue
    raise AssertionError(f"no raylet under process {pid}")


def test_a_killed_raylet_is_a_new_local_ray_and_the_job_runs_there(tmp_path: Path, monkeypatch) -> None:
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # (the new Ray's workers import the tests' tiny weights)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    app = create_app(tmp_path, worker_init=INIT, runner="ray")
    executor = app.state.manager.executor
    long = {"size": 64, "scales": 1, "iterations": 100000, "time_limit": 0}
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        job = submit(c, long).json()
        wait(c, job["id"], lambda r: r.get("preview", 0) >= 1, 120)
        first = executor.proc.pid
        os.kill(_raylet_of(first), signal.SIGKILL)
        rec = wait(c, job["id"], lambda r: r.get("tries") == 2 and r["status"] == "running", 240)
        assert executor.proc.pid != first and rec["retries"][0].startswith("the local Ray was lost"), rec
        assert c.get("/api/images").status_code == 200
        wait(c, job["id"], lambda r: r.get("preview", 0) >= 1 and r["status"] == "running", 120)
        c.delete(f"/api/jobs/{job['id']}")
        rec = wait(c, job["id"], finished, 120)
        assert rec["status"] == "cancelled" and rec["has_image"], rec
