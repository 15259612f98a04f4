"""The studio backed by Ray (``artstyle serve --runner ray``) on a local Ray of 2 CPUs: jobs run
as Ray tasks, two at once, with previews, progress, cancel and the gallery as with the local worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
ray = pytest.importorskip(
    "ray", reason='the Ray studio needs the cluster extra: pip install "artstyle[cluster]"'
)
from fastapi.testclient import TestClient  # noqa: E402

from artstyle.apps.web.app import create_app  # noqa: E402
from tests.web.test_api import INIT, QUICK, finished, png, upload, wait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LONG = {"size": 64, "scales": 1, "iterations": 100000, "time_limit": 0}


@pytest.fixture(scope="module")
def two_cpu_ray() -> Iterator[None]:
    from tests.conftest import start_local_ray

    # (the workers import tests.web.helpers for their tiny weights)
    start_local_ray(runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}})
    yield
    ray.shutdown()


def _client(data: Path) -> TestClient:
    app = create_app(data, worker_init=INIT, runner="ray")
    return TestClient(app, base_url="http://127.0.0.1:8000")


def _submit(c: TestClient, settings: dict) -> dict:
    from tests.conftest import gradient_image, stripes_image

    photo = upload(c, png(gradient_image(seed=3))).json()["id"]
    painting = upload(c, png(stripes_image()), "painting.png").json()["id"]
    r = c.post("/api/jobs", data={"content": photo, "style": painting, "settings": json.dumps(settings)})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.usefixtures("two_cpu_ray")
def test_two_jobs_run_at_once_one_is_cancelled_the_other_lands_in_the_gallery(tmp_path: Path) -> None:
    with _client(tmp_path) as c:
        a = _submit(c, LONG)
        b = _submit(c, {**LONG, "iterations": 60})
        end = time.monotonic() + 120
        while time.monotonic() < end:  # both running at the same moment, each with a preview
            recs = [c.get(f"/api/jobs/{j['id']}").json() for j in (a, b)]
            if all(r["status"] == "running" and r.get("preview", 0) >= 1 for r in recs):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"not both running with previews: {recs}")
        assert c.get(f"/api/jobs/{a['id']}/image").content.startswith(b"\x89PNG")  # the preview
        assert "progress" in c.get(f"/api/jobs/{a['id']}").json()
        c.delete(f"/api/jobs/{a['id']}")
        cancelled = wait(c, a["id"], finished)
        assert cancelled["status"] == "cancelled" and cancelled["has_image"]
        done = wait(c, b["id"], finished, timeout=120)
        assert done["status"] == "done" and done["has_image"] and done["iterations"] == 60
        side = c.get(f"/api/jobs/{b['id']}/sidecar").json()
        assert side["config"]["iterations"] == 60 and len(side["history"]) == 60
        assert c.get(f"/api/jobs/{b['id']}/image").content.startswith(b"\x89PNG")
        running = _submit(c, LONG)
        wait(c, running["id"], lambda r: r.get("preview", 0) >= 1)
    # the server stopped with a job running on Ray: it stopped, kept its image, and says so
    with _client(tmp_path) as c:
        rec = c.get(f"/api/jobs/{running['id']}").json()
        assert rec["status"] == "interrupted" and rec["has_image"]
        again = _submit(c, QUICK)
        assert wait(c, again["id"], finished)["status"] == "done"


def test_a_cancel_is_a_flag_that_the_task_reads_between_iterations(tmp_path: Path, monkeypatch) -> None:
    """Ray's cancel is never used: the executor raises the job's flag on a board actor, and the
    task asks its own line of it (at most every quarter second), so nothing is raised into Ray's
    own calls."""
    from types import SimpleNamespace

    from artstyle.apps.web import executors
    from artstyle.apps.web.events import ActorFlags, CancelBoard

    board = CancelBoard()
    asked: list[str] = []

    def remote(method):
        return SimpleNamespace(remote=lambda *a: (asked.append(method.__name__), method(*a))[1])

    actor = SimpleNamespace(
        cancel=remote(board.cancel), state=remote(board.state), forget=remote(board.forget)
    )
    monkeypatch.setattr(ray, "get", lambda value: value)
    clock = [100.0]
    monkeypatch.setattr("artstyle.apps.web.events.time.monotonic", lambda: clock[0])
    a, b = ActorFlags(actor, "a"), ActorFlags(actor, "b")
    assert not a.cancelled() and not b.cancelled()
    ex = executors.RayDriver(tmp_path)
    ex.board, ex.refs["a"] = actor, ("ref", tmp_path)
    ex.cancel("a", 1)
    ex.cancel("not-running", 2)  # (a job this executor does not run: nothing)
    assert board.jobs == {"a": False}
    clock[0] += 0.1
    assert not a.cancelled()  # (asked a moment ago: not yet again)
    clock[0] += 0.2
    assert a.cancelled() and not a.stopping() and not b.cancelled()
    n = len(asked)
    assert a.cancelled() and len(asked) == n  # (once cancelled, it is not asked again)
    ex.cancel("a", 1, stopping=True)  # the server stops: the same job ends interrupted
    assert board.state("a") == (True, True)


def _running_task_pid(name: str) -> int:
    """The process of the Ray worker running task ``name`` (Ray titles it ``ray::NAME``)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(f"ray::{name}".encode()):
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError(f"no Ray worker runs {name}")


@pytest.mark.usefixtures("two_cpu_ray")
def test_a_killed_ray_worker_is_replaced_and_its_job_resumes_from_its_state(tmp_path: Path) -> None:
    """kill -9 of the Ray worker that runs a job (what the OOM killer does): the job is tried
    again on a new worker from the level it reached, one plain line saying so."""
    import os
    import signal

    two_levels = {"size": 96, "scales": 2, "coarse_min_size": 48, "coarse_iterations": 3}
    with _client(tmp_path) as c:
        job = _submit(c, {**two_levels, "iterations": 100000, "time_limit": 0})
        wait(c, job["id"], lambda r: (r.get("saved_step") or 0) > 0 and r.get("preview", 0) >= 1)
        os.kill(_running_task_pid("_studio_task"), signal.SIGKILL)
        rec = wait(c, job["id"], lambda r: r.get("tries") == 2 and r["progress"]["iteration"] > 4, 120)
        assert rec["retries"] == [
            "the Ray worker running the job was lost (out of memory, or killed?); resumed from step 3, "
            "try 2 of 3"
        ], rec
        steps = [i for i, _ in rec["curve"]]
        assert steps == sorted(set(steps))  # (level 1 was not painted again)
        c.delete(f"/api/jobs/{job['id']}")
        rec = wait(c, job["id"], finished)
        assert rec["status"] == "cancelled" and rec["has_image"]
