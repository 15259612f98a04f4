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


def test_a_cancel_that_does_not_take_is_sent_again_then_forced(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    from artstyle.apps.web import executors

    sent: list[tuple[str, bool]] = []

    class FakeRay:
        exceptions = SimpleNamespace(TaskCancelledError=type("TaskCancelledError", (Exception,), {}))

        def cancel(self, ref: str, force: bool = False) -> None:
            sent.append((ref, force))

        def get(self, ref: str) -> None:
            raise RuntimeError("the worker died")  # (killed by the forced cancel)

    monkeypatch.setattr(executors.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr("artstyle.runs.cluster.ray_module", lambda: FakeRay())
    ex = executors.RayExecutor(tmp_path)
    ex.refs["job"] = ("ref", tmp_path, {})
    ex.cancel("job", 1)
    assert sent == [("ref", False)]
    ex._insist(FakeRay(), 150.0)  # no progress since: winding down (writing its image), left alone
    assert len(sent) == 1
    for progress_at, expected in [(111.0, 2), (115.0, 2), (146.0, 3)]:
        ex.iterating["job"] = progress_at  # still iterating: the cancel did not take
        ex._insist(FakeRay(), progress_at)
        assert len(sent) == expected
    assert [force for _, force in sent] == [False, False, True]  # forced from 45 s on
    (tmp_path / "preview.png").write_bytes(b"png")
    kind, job_id, data = ex._finish(FakeRay(), "job")  # ended by its cancel, however it ended
    assert (kind, job_id, data["has_image"]) == ("cancelled", "job", True) and not ex.cancelled
    assert (tmp_path / "result.png").read_bytes() == b"png"
    ex.refs["other"] = ("ref2", tmp_path, {})  # not cancelled: a dead worker is a failure
    assert ex._finish(FakeRay(), "other")[0] == "failed"
    failed = {"event": "failed", "data": {"message": "KeyboardInterrupt"}, "files": {}}
    FakeRay.get = lambda self, ref: failed  # type: ignore[method-assign]
    ex.refs["third"] = ("ref3", tmp_path, {})
    ex.cancel("third", 2, stopping=True)  # the server stops; the interrupt ended the task badly
    kind, _, data = ex._finish(FakeRay(), "third")
    assert kind == "interrupted" and data["has_image"] and (tmp_path / "result.png").read_bytes() == b"png"
