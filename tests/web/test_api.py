"""The studio's JSON API through Starlette's test client, with a real worker process (tiny random
network): every route, every bad input, cancel, the queue limit, tokens, and restart persistence."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
from fastapi.testclient import TestClient

from artstyle.apps.web.app import create_app
from tests.conftest import gradient_image, stripes_image

INIT = "tests.web.helpers:tiny_weights"
QUICK = {"size": 48, "scales": 1, "iterations": 4}
LONG = {"size": 64, "scales": 1, "iterations": 100000, "time_limit": 0}


def png(im: Any = None) -> bytes:
    buf = io.BytesIO()
    (im or gradient_image()).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A valid PNG header that claims 10 gigapixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def client_for(data: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(data, worker_init=INIT, **kwargs), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with client_for(tmp_path_factory.mktemp("studio")) as c:
        yield c


def upload(c: TestClient, data: bytes, name: str = "photo.png") -> Any:
    return c.post("/api/images", files={"file": (name, data, "image/png")})


def submit(c: TestClient, settings: dict[str, Any], **fields: Any) -> Any:
    photo = upload(c, png(gradient_image(seed=1))).json()["id"]
    painting = upload(c, png(stripes_image()), "painting.png").json()["id"]
    data = {"content": photo, "style": painting, "settings": json.dumps(settings), **fields}
    return c.post("/api/jobs", data=data)


def wait(c: TestClient, job_id: str, until: Any, timeout: float = 90.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rec = c.get(f"/api/jobs/{job_id}").json()
        if until(rec):
            return rec
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get there: {rec}")


def finished(rec: dict[str, Any]) -> bool:
    return rec["status"] in ("done", "failed", "cancelled", "interrupted")


def one_line_error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"], body
    return str(body["error"])


# ---- settings --------------------------------------------------------------------------------------


def test_config_describes_every_field_and_preset(client: TestClient) -> None:
    body = client.get("/api/config").json()
    names = {f["name"] for f in body["fields"]}
    assert {"style_weight", "optimizer", "size", "initial"} <= names
    for f in body["fields"]:
        assert {"name", "type", "default", "help", "group"} <= set(f)
    assert next(f for f in body["fields"] if f["name"] == "optimizer")["choices"] == ["lbfgs", "adam"]
    assert {"default", "fast", "study-vgg19-adam"} <= set(body["presets"])
    assert body["limits"]["max_upload_mb"] == 25


def test_config_check_gives_the_configs_own_messages_per_field(client: TestClient) -> None:
    ok = client.post("/api/config/check", json={"preset": "fast", "settings": {"style_weight": 3}}).json()
    assert ok == {"ok": True, "errors": {}, "error": None}
    bad = client.post("/api/config/check", json={"settings": {"style_weight": -1, "beta1": 1.5}}).json()
    assert not bad["ok"] and set(bad["errors"]) == {"style_weight", "beta1"}
    assert "style_weight" in bad["errors"]["style_weight"]
    paths = client.post(
        "/api/config/check", json={"settings": {"weights": "/etc/passwd", "initial": "/x.png"}}
    )
    assert set(paths.json()["errors"]) == {"weights", "initial"}
    assert "no file paths" in paths.json()["errors"]["weights"]
    assert client.post("/api/config/check", json={"settings": [1]}).json()["error"]
    assert "unknown preset" in client.post("/api/config/check", json={"preset": "nope"}).json()["error"]
    one_line_error(
        client.post("/api/config/check", content=b"{", headers={"content-type": "application/json"}), 400
    )


# ---- uploads ---------------------------------------------------------------------------------------


def test_upload_is_checked_by_content_and_stored_under_an_id(client: TestClient) -> None:
    r = upload(client, png(), "../../etc/passwd")
    assert r.status_code == 201
    meta = r.json()
    assert meta["name"] == "passwd" and len(meta["id"]) == 32 and (meta["width"], meta["height"]) == (48, 40)
    assert upload(client, png(), "again.png").json()["id"] == meta["id"]  # same bytes, one image
    got = client.get(f"/api/images/{meta['id']}")
    assert got.headers["content-type"] == "image/png" and got.content.startswith(b"\x89PNG")
    assert client.get(f"/api/images/{meta['id']}?thumb=1").headers["content-type"] == "image/jpeg"
    assert any(m["id"] == meta["id"] for m in client.get("/api/images").json())
    assert {"demo-photo", "demo-painting"} <= {m["id"] for m in client.get("/api/images").json()}


@pytest.mark.parametrize(
    ("data", "name", "expect"),
    [
        (b"hello, not an image", "photo.png", "not an image"),
        (png()[:60], "cut.png", "truncated"),
        (bomb_png(), "bomb.png", "too large"),
        (b"", "empty.png", "empty"),
        (png(gradient_image(20, 10)), "tiny.png", "32 px"),
    ],
)
def test_a_bad_upload_is_one_line_of_json_and_a_4xx(
    client: TestClient, data: bytes, name: str, expect: str
) -> None:
    assert expect in one_line_error(upload(client, data, name), 400)


def test_uploads_are_capped_while_they_stream(tmp_path: Path) -> None:
    with client_for(tmp_path, max_upload_mb=0.2) as c:
        big = os.urandom(300_000)
        assert "too large" in one_line_error(upload(c, big), 413)  # Content-Length says so at once

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            for _ in range(100):
                yield os.urandom(10_000)

        r = c.post(
            "/api/images", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert "too large" in one_line_error(r, 413)
        assert upload(c, png()).status_code == 201  # the server is fine afterwards


def test_malformed_requests_are_4xx_not_500(client: TestClient) -> None:
    one_line_error(client.post("/api/images", content=b"raw", headers={"content-type": "image/png"}), 400)
    one_line_error(client.post("/api/images", data={"file": "not a file"}), 400)
    one_line_error(client.post("/api/jobs", data={"style": "demo-painting"}), 400)
    one_line_error(client.post("/api/jobs", data={"content": "demo-photo"}), 400)
    one_line_error(client.post("/api/jobs", data={"content": "f" * 32, "style": "demo-painting"}), 400)
    one_line_error(
        client.post("/api/jobs", data={"content": "demo-photo", "style": "demo-painting", "settings": "{"}),
        400,
    )
    many = {"content": "demo-photo", "style": ["demo-painting"] * 9}
    assert "at most" in one_line_error(client.post("/api/jobs", data=many), 400)
    bad = {
        "content": "demo-photo",
        "style": "demo-painting",
        "settings": json.dumps({"style_weight": "lots"}),
    }
    assert "style_weight" in one_line_error(client.post("/api/jobs", data=bad), 400)
    blend = {
        "content": "demo-photo",
        "style": "demo-painting",
        "settings": json.dumps({"style_blend_weights": [1, 2]}),
    }
    assert "blend" in one_line_error(client.post("/api/jobs", data=blend), 400)
    exp = {"kind": "experiment", "experiment": "nope", "content": "demo-photo", "style": "demo-painting"}
    assert "unknown experiment" in one_line_error(client.post("/api/jobs", data=exp), 400)
    one_line_error(client.get("/api/nothing-here"), 404)
    one_line_error(client.put("/api/jobs"), 405)


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/..%2f..%2fetc%2fpasswd",
        "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/images/%2Fetc%2Fpasswd",
        "/api/jobs/..%2f..%2fimages/image",
        "/api/jobs/%2e%2e/image",
        "/static/..%2f__init__.py",
        "/static/%2e%2e%2fapp.py",
        "/api/images/demo-photo.json",
    ],
)
def test_no_route_serves_outside_the_data_folder(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404 and "root:" not in r.text and "import" not in r.text


def test_a_symlink_planted_in_the_data_folder_is_not_followed(tmp_path: Path) -> None:
    with client_for(tmp_path / "data") as c:
        outside = tmp_path / "secret.txt"
        outside.write_text("secret")
        jobs = tmp_path / "data" / "jobs"
        job = jobs / ("a" * 32)
        job.mkdir()
        (job / "job.json").symlink_to(outside)
        (job / "result.png").symlink_to(outside)
        (jobs / ("b" * 32)).symlink_to(tmp_path)
        (tmp_path / "data" / "images" / ("c" * 32 + ".png")).symlink_to(outside)
        for path in (f"/api/jobs/{'a' * 32}/image", f"/api/jobs/{'b' * 32}", f"/api/images/{'c' * 32}"):
            r = c.get(path)
            assert r.status_code == 404 and "secret" not in r.text


# ---- jobs ------------------------------------------------------------------------------------------


def test_a_job_runs_streams_events_and_lands_in_the_gallery(client: TestClient) -> None:
    r = submit(client, QUICK)
    assert r.status_code == 201, r.text
    job = r.json()
    assert len(job["id"]) == 32 and job["status"] in ("queued", "running") and "task" not in job
    events = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if kind in ("done", "failed", "cancelled", "interrupted"):
                    break
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done", events[-1]
    assert "progress" in kinds and "preview" in kinds
    # The stream sends the latest state every poll, so a quick job may finish between two polls:
    # the last progress is on whichever event came last (the finished record keeps it).
    progress = [d["progress"] for _, d in events if "progress" in d]
    assert progress and progress[-1]["total"] == 4 and "eta_s" in progress[-1]
    rec = client.get(f"/api/jobs/{job['id']}").json()
    assert rec["status"] == "done" and rec["has_image"] and rec["iterations"] == 4 and rec["curve"]
    assert client.get(f"/api/jobs/{job['id']}/image").content.startswith(b"\x89PNG")
    side = client.get(f"/api/jobs/{job['id']}/sidecar").json()
    assert (
        side["config"]["size"] == 48
        and len(side["history"]) == 4
        and side["styles"][0]["path"] == "painting.png"
    )
    assert client.get("/api/jobs").json()[0]["id"] == job["id"]  # newest first
    assert client.delete(f"/api/jobs/{job['id']}").json()["deleted"]
    one_line_error(client.get(f"/api/jobs/{job['id']}"), 404)
    one_line_error(client.get(f"/api/jobs/{job['id']}/image"), 404)


def test_cancel_stops_a_running_job_and_keeps_its_image(client: TestClient) -> None:
    job = submit(client, LONG).json()
    rec = wait(client, job["id"], lambda r: r.get("preview", 0) >= 1)
    at = rec["progress"]["iteration"]
    client.delete(f"/api/jobs/{job['id']}")
    rec = wait(client, job["id"], finished, timeout=120)
    assert rec["status"] == "cancelled" and rec["has_image"], rec
    # the run's own clock: its iterations (the flag is read after every one; the record lags the
    # worker by its event pump, a fraction of a second), not the machine's wall clock
    assert rec["iterations"] < at + 50
    side = client.get(f"/api/jobs/{job['id']}/sidecar").json()
    assert side["interrupted"] is True
    assert client.get(f"/api/jobs/{job['id']}/image").content.startswith(b"\x89PNG")


def test_the_queue_has_positions_a_limit_and_queued_jobs_cancel(tmp_path: Path) -> None:
    with client_for(tmp_path, queue_limit=1) as c:
        first = submit(c, LONG).json()
        wait(c, first["id"], lambda r: r["status"] == "running")
        second = submit(c, QUICK).json()
        assert second["status"] == "queued" and second["position"] == 1
        assert "queue is full" in one_line_error(submit(c, QUICK), 429)
        gone = c.delete(f"/api/jobs/{second['id']}").json()
        assert gone["status"] == "cancelled" and not gone["has_image"]
        c.delete(f"/api/jobs/{first['id']}")
        assert wait(c, first["id"], finished)["status"] == "cancelled"


def test_an_experiment_runs_and_its_report_opens(client: TestClient) -> None:
    data = {"kind": "experiment", "experiment": "pooling", "quick": "true"}
    photo = upload(client, png(gradient_image(64, 64, seed=3))).json()["id"]
    r = client.post("/api/jobs", data={**data, "content": photo, "style": "demo-painting"})
    assert r.status_code == 201, r.text
    rec = wait(client, r.json()["id"], finished, timeout=240)
    assert rec["status"] == "done" and rec["report"] and rec["runs"] == 2, rec
    page = client.get(f"/api/jobs/{rec['id']}/report")
    assert page.headers["content-type"].startswith("text/html") and "pooling" in page.text
    assert {"pooling", "style_weight"} <= {x["name"] for x in client.get("/api/experiments").json()}


def test_a_restart_keeps_the_gallery_and_marks_the_running_job_interrupted(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        done = submit(c, QUICK).json()
        wait(c, done["id"], finished)
        running = submit(c, LONG).json()
        wait(c, running["id"], lambda r: r.get("preview", 0) >= 1)
    # leaving the block stopped the server: the running job stopped within an iteration, kept its image
    with client_for(tmp_path) as c:
        jobs = {j["id"]: j for j in c.get("/api/jobs").json()}
        assert jobs[done["id"]]["status"] == "done" and jobs[done["id"]]["has_image"]
        assert jobs[running["id"]]["status"] == "interrupted" and jobs[running["id"]]["has_image"]
        assert c.get(f"/api/jobs/{running['id']}/image").content.startswith(b"\x89PNG")
    # a server killed hard leaves "running" on disk: the next start says interrupted, shows its preview
    rec_path = tmp_path / "jobs" / running["id"] / "job.json"
    rec = json.loads(rec_path.read_text())
    rec["status"] = "running"
    rec_path.write_text(json.dumps(rec))
    (tmp_path / "jobs" / running["id"] / "result.png").unlink()
    with client_for(tmp_path) as c:
        again = c.get(f"/api/jobs/{running['id']}").json()
        assert again["status"] == "interrupted" and again["has_image"]


# ---- who gets in -----------------------------------------------------------------------------------


def test_a_token_guards_every_route(tmp_path: Path) -> None:
    with client_for(tmp_path, token="s3cret", hosts=None) as c:
        for path in ("/", "/api/config", "/api/images/demo-photo", "/api/jobs", "/static/main.js"):
            assert "token" in one_line_error(c.get(path), 401)
            assert c.get(path + "?token=wrong").status_code == 401
        assert c.get("/api/jobs/x/events").status_code == 401
        assert c.get("/api/config", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "artstyle_token" in page.headers["set-cookie"]
        assert c.get("/api/images/demo-photo").status_code == 200  # the page's cookie


def test_host_and_origin_checks(client: TestClient) -> None:
    assert "Host" in one_line_error(client.get("/api/jobs", headers={"host": "evil.example"}), 400)
    r = client.post(
        "/api/images", files={"file": ("a.png", png())}, headers={"origin": "http://evil.example"}
    )
    assert "other sites" in one_line_error(r, 403)
    assert client.get("/api/jobs", headers={"host": "localhost:8000"}).status_code == 200


def test_the_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/main.js", "/static/app.css"):
        text = client.get(asset).text
        assert "http://" not in text and "https://" not in text  # nothing from outside: works offline
    assert "https://" not in page.text and "http://" not in page.text


def test_masks_go_with_a_job_and_bad_ones_are_refused(client: TestClient) -> None:
    from PIL import Image

    photo = upload(client, png(gradient_image(seed=7))).json()["id"]
    left = Image.new("L", (48, 40), 0)
    left.paste(255, (0, 0, 24, 40))
    mask = upload(client, png(left.convert("RGB")), "left.png").json()["id"]
    black = upload(client, png(Image.new("RGB", (48, 40))), "black.png").json()["id"]
    base = {"content": photo, "style": "demo-painting", "settings": json.dumps(QUICK)}
    r = client.post("/api/jobs", data={**base, "mask": mask})
    assert r.status_code == 201, r.text
    assert r.json()["masks"][0]["id"] == mask
    rec = wait(client, r.json()["id"], finished)
    assert rec["status"] == "done", rec
    assert client.get(f"/api/jobs/{rec['id']}/sidecar").json()["style_masks"] == [mask]
    assert "empty" in one_line_error(client.post("/api/jobs", data={**base, "mask": black}), 400)
    two = {**base, "mask": [mask, mask]}
    assert "2 style masks for 1 paintings" in one_line_error(client.post("/api/jobs", data=two), 400)


def test_a_photo_with_transparency_keeps_it_in_the_studio(client: TestClient) -> None:
    import numpy as np
    from PIL import Image

    a = np.asarray(gradient_image(seed=8).convert("RGBA")).copy()
    a[:, :24, 3] = 0  # (the left half transparent)
    meta = upload(client, png(Image.fromarray(a, "RGBA")), "cutout.png").json()
    assert meta["alpha"] is True
    base = {"content": meta["id"], "style": "demo-painting", "settings": json.dumps(QUICK)}
    rec = wait(client, client.post("/api/jobs", data=base).json()["id"], finished)
    assert rec["status"] == "done", rec
    kept = Image.open(io.BytesIO(client.get(f"/api/jobs/{rec['id']}/image").content))
    assert kept.mode == "RGBA" and np.asarray(kept.getchannel("A"))[:, :20].max() == 0
    white = {**base, "settings": json.dumps({**QUICK, "alpha": "white"})}
    rec = wait(client, client.post("/api/jobs", data=white).json()["id"], finished)
    assert Image.open(io.BytesIO(client.get(f"/api/jobs/{rec['id']}/image").content)).mode == "RGB"


def test_a_lost_worker_is_tried_again_from_its_kept_state_then_given_up(tmp_path: Path) -> None:
    """kill -9 of the worker (what the OOM killer does): the job goes on from the last level it
    reached, one line in its record; killed at every try, it fails saying so, with its image."""
    import os
    import signal

    two_levels = {"size": 96, "scales": 2, "coarse_min_size": 48, "coarse_iterations": 3}
    two_levels.update(iterations=100000, time_limit=0)
    with client_for(tmp_path) as c:
        manager = c.app.state.manager  # type: ignore[attr-defined]
        job = submit(c, two_levels).json()
        wait(c, job["id"], lambda r: (r.get("saved_step") or 0) > 0 and r.get("preview", 0) >= 1)
        os.kill(manager.executor.proc.pid, signal.SIGKILL)
        rec = wait(c, job["id"], lambda r: r.get("tries") == 2 and r["progress"]["iteration"] > 4)
        assert rec["retries"] == [
            "the worker process stopped unexpectedly (exit code -9); resumed from step 3, try 2 of 3"
        ], rec
        steps = [i for i, _ in rec["curve"]]
        assert steps == sorted(set(steps)) and rec["progress"]["scale"] == 2  # (level 1 not painted again)
        for tries in (3, None):
            pid = manager.executor.proc.pid
            wait(c, job["id"], lambda r: r.get("preview", 0) >= 1 and r["status"] == "running")
            os.kill(pid, signal.SIGKILL)
            if tries:
                wait(c, job["id"], lambda r, t=tries: r.get("tries") == t)
        rec = wait(c, job["id"], finished)
        assert rec["status"] == "failed" and "tried 3 times and failed each time" in rec["message"], rec
        assert rec["has_image"] and c.get(f"/api/jobs/{job['id']}/image").status_code == 200
        assert not (tmp_path / "jobs" / job["id"] / "state.pt").exists()


def test_a_lost_ray_cluster_never_takes_the_studio_down(tmp_path: Path) -> None:
    """The Ray driver lives in its own process (Ray ends a driver whose raylet died): when it ends,
    the gallery stays served, new jobs are a 503 naming the cluster until it is back, and the lost
    job is tried again there."""
    pytest.importorskip("ray", reason="the Ray studio needs the cluster extra")
    from artstyle.apps.web.app import create_app
    from tests.web.helpers import fake_ray_driver

    (tmp_path / "fake-ray").write_text("lost")
    app = create_app(tmp_path, runner="ray", ray_address="127.0.0.1:6399")
    executor = app.state.manager.executor
    executor.driver, executor.RETRY_SECONDS = fake_ray_driver, 0.2
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        job = submit(c, QUICK).json()
        end = time.monotonic() + 60
        while (r := submit(c, QUICK)).status_code != 503 and time.monotonic() < end:
            time.sleep(0.1)
        why = "the Ray cluster at 127.0.0.1:6399 cannot be reached; try again when it is back"
        assert one_line_error(r, 503) == why
        assert c.get("/api/images").status_code == 200 and c.get("/").status_code == 200
        assert c.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"  # (to be tried again)
        (tmp_path / "fake-ray").write_text("up")
        rec = wait(c, job["id"], finished)
        assert rec["status"] == "done" and rec["retries"] == [
            "the Ray cluster at 127.0.0.1:6399 was lost (the Ray driver ended, exit code 1); started again, "
            "try 2 of 3"
        ], rec
        assert submit(c, QUICK).status_code == 201
