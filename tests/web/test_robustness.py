"""The studio against its own data folder (damaged records, a read-only or full disk) and against
abusive requests (deep or huge JSON, wrong types, huge values, huge pictures): always one JSON
error and a 4xx or a 503/507, never a 500, never a stopped server or queue, never a server path."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artstyle.apps.web.store import Store
from artstyle.errors import StorageError
from tests.conftest import gradient_image
from tests.web.test_api import QUICK, client_for, finished, one_line_error, png, submit, upload, wait

# ---- the data folder -------------------------------------------------------------------------------


def _job_dir(data: Path, job_id: str) -> Path:
    d = data / "jobs" / job_id
    d.mkdir(parents=True)
    return d


@pytest.mark.parametrize(
    "record",
    [
        "null",
        "[1, 2]",
        '{"status": "done", "kind": "stylize", "created": 1}',  # no id
        '{"id": "%s", "status": "done", "kind": "stylize", "created": "yesterday"}',
        '{"id": "%s", "status": "sleeping", "kind": "stylize", "created": 1}',
        '{"id": "%s", "status": "queued", "kind": "stylize", "created": 1}',  # queued without its task
        "{not json",
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["null", "list", "no-id", "created-yesterday", "bad-status", "queued-no-task", "junk", "deep"],
)
def test_a_damaged_job_record_is_set_aside_and_the_server_runs_its_queue(
    tmp_path: Path, record: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "b" * 32
    text = record.replace("%s", bad)
    (_job_dir(tmp_path, bad) / "job.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="artstyle.studio"), client_for(tmp_path) as c:
        assert c.get("/api/jobs").json() == []
        one_line_error(c.get(f"/api/jobs/{bad}"), 404)
        job = submit(c, QUICK).json()  # the queue runs
        assert wait(c, job["id"], finished)["status"] == "done"
    moved = list((tmp_path / "damaged" / "jobs").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(bad)
    assert (moved[0] / "job.json").read_text() == text  # kept as it was, for a person to look at
    lines = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


def test_damaged_image_records_and_junk_pictures_are_404_not_500(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        good = upload(c, png()).json()["id"]
        junk = upload(c, png(gradient_image(seed=5))).json()["id"]
    images = tmp_path / "images"
    empty = "c" * 32
    (images / f"{empty}.json").write_text("{}")
    (images / f"{empty}.png").write_bytes(png())
    (images / f"{junk}.png").write_bytes(b"this was a picture once")
    (images / "demo-photo.json").write_text("[]")  # a built-in is made again
    with client_for(tmp_path) as c:
        listed = {m["id"] for m in c.get("/api/images").json()}
        assert good in listed and empty not in listed and "demo-photo" in listed
        one_line_error(c.get(f"/api/images/{empty}"), 404)
        one_line_error(c.get(f"/api/images/{junk}?thumb=1"), 404)  # its picture cannot be decoded
        assert junk not in {m["id"] for m in c.get("/api/images").json()}
        r = c.post("/api/jobs", data={"content": empty, "style": good, "settings": json.dumps(QUICK)})
        one_line_error(r, 400)
    assert {p.name.split(".")[0] for p in (tmp_path / "damaged" / "images").iterdir()} >= {empty, junk}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_data_folder_is_503(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        done = submit(c, QUICK).json()
        wait(c, done["id"], finished)
        for d in (tmp_path, tmp_path / "images", tmp_path / "jobs", tmp_path / "jobs" / done["id"]):
            d.chmod(0o555)
        try:
            assert "cannot be written" in one_line_error(upload(c, png(gradient_image(seed=9))), 503)
            assert "cannot be written" in one_line_error(submit(c, QUICK), 503)
            assert "cannot" in one_line_error(c.delete(f"/api/jobs/{done['id']}"), 503)
        finally:
            for d in (tmp_path, tmp_path / "images", tmp_path / "jobs", tmp_path / "jobs" / done["id"]):
                d.chmod(0o755)


def _refuse(code: int) -> Any:
    def write(self: Any, *a: Any, **k: Any) -> Any:
        raise StorageError("somewhere: cannot write (No space left on device)", code)

    return write


def _storage(write: Any, p: Path, data: bytes) -> str:
    from artstyle.errors import storage_error

    try:
        return str(write(p, data))
    except OSError as e:
        raise storage_error(p, e) from None


def test_a_full_or_read_only_disk_is_507_or_503_and_the_queue_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(tmp_path) as c:
        monkeypatch.setattr(Store, "save_job", _refuse(errno.ENOSPC))
        assert "full" in one_line_error(submit(c, QUICK), 507)
        monkeypatch.setattr(Store, "save_job", _refuse(errno.EROFS))
        assert "cannot be written" in one_line_error(submit(c, QUICK), 503)
        assert not [d for d in (tmp_path / "jobs").iterdir()]  # nothing half made
        monkeypatch.setattr(Store, "create_job_dir", _refuse(errno.ENOSPC))
        one_line_error(submit(c, QUICK), 507)
        monkeypatch.undo()
        from artstyle import files

        def full(p: Path, data: bytes) -> str:
            raise OSError(errno.ENOSPC, "No space left on device", str(p))

        monkeypatch.setattr(files, "_write_temp", lambda p, data: _storage(full, p, data))
        r = upload(c, png(gradient_image(seed=11)))
        assert "full" in one_line_error(r, 507) and str(tmp_path) not in r.text
        monkeypatch.undo()
        done = submit(c, QUICK).json()
        wait(c, done["id"], finished)

        def read_only(path: Any, *a: Any, **k: Any) -> None:
            raise OSError(errno.EROFS, "Read-only file system", str(path))

        monkeypatch.setattr("shutil.rmtree", read_only)
        assert "cannot be written" in one_line_error(c.delete(f"/api/jobs/{done['id']}"), 503)
        monkeypatch.undo()
        # a disk that fills while a job runs: the job still finishes (in memory), the next one runs
        job = submit(c, QUICK).json()
        monkeypatch.setattr(Store, "save_job", _refuse(errno.ENOSPC))
        assert wait(c, job["id"], finished)["status"] in ("done", "failed")
        monkeypatch.undo()
        again = submit(c, QUICK).json()
        assert wait(c, again["id"], finished)["status"] == "done"


def test_a_job_whose_disk_is_full_fails_with_the_reason(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        job = submit(c, {**QUICK, "iterations": 200}).json()
        folder = tmp_path / "jobs" / job["id"]
        (folder / "preview.png").mkdir()  # (the worker cannot write its preview: as a full disk does)
        rec = wait(c, job["id"], finished)
        assert rec["status"] == "failed" and "preview.png: cannot write" in rec["message"]
        assert str(tmp_path) not in json.dumps(rec)  # no server path


# ---- requests -----------------------------------------------------------------------------------


def test_deep_huge_or_mistyped_settings_are_400(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        deep = "[" * 100_000 + "]" * 100_000
        r = c.post("/api/config/check", content=deep, headers={"content-type": "application/json"})
        assert "JSON" in one_line_error(r, 400)
        nested = json.dumps({"settings": {"style_layers": [[[[["relu1_1"]]]]]}})
        r = c.post("/api/config/check", content=nested, headers={"content-type": "application/json"})
        assert "nested" in one_line_error(r, 400)
        r = c.post("/api/jobs", data={"content": "demo-photo", "style": "demo-painting", "settings": deep})
        one_line_error(r, 400)
        check = c.post("/api/config/check", json={"settings": {"iterations": "3"}}).json()
        assert not check["ok"] and "iterations" in check["errors"]
        check = c.post("/api/config/check", json={"settings": {"style_layers": ["nope"]}}).json()
        assert not check["ok"] and "nope" in check["error"]
        check = c.post("/api/config/check", json={"settings": {"style_layers": "relu1_1,relu2_1"}}).json()
        assert not check["ok"]  # (a list must be a list in JSON)
        huge = "x" * 600_000
        r = c.post("/api/config/check", json={"settings": {"iterations": huge}})
        assert len(r.text) < 2000  # 400 (over the JSON limit) or a short message; never echoed back
        check = c.post("/api/config/check", json={"settings": {"iterations": "y" * 5000}}).json()
        assert len(json.dumps(check)) < 1000 and not check["ok"]
        check = c.post("/api/config/check", json={"settings": {"k" * 5000: 1}}).json()
        assert len(json.dumps(check)) < 1000 and not check["ok"]
        r = c.post("/api/jobs", data={"content": "demo-photo", "style": "demo-painting", "kind": "z" * 9000})
        assert len(one_line_error(r, 400)) < 200


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        for r in (c.get("/"), c.get("/api/config"), c.get("/api/nothing"), c.get("/api/images/demo-photo")):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert r.headers["referrer-policy"] == "no-referrer"
        r = c.get("/api/config", headers={"host": "evil.example"})  # refused by the guard: headers too
        assert r.status_code == 400 and r.headers["x-content-type-options"] == "nosniff"


def test_huge_pictures_are_refused_from_their_header_or_kept_at_the_studio_s_size(tmp_path: Path) -> None:
    from tests.web.test_api import bomb_png

    with client_for(tmp_path) as c:
        # a 30 KB-ish PNG claiming 8000x8000 (64 MP): over the studio's 50 MP, refused before decoding
        assert "too large" in one_line_error(upload(c, bomb_png(8000, 8000)), 400)
        big = Image.new("L", (5000, 3000), 128)  # 15 MP: taken, kept at 4096 px
        buf = io.BytesIO()
        big.save(buf, "PNG")
        meta = upload(c, buf.getvalue()).json()
        assert (meta["width"], meta["height"]) == (4096, 2458)
        r = c.post(
            "/api/jobs",
            data={"content": meta["id"], "style": "demo-painting", "settings": json.dumps({"size": 5000})},
        )
        assert "up to 4096 px" in one_line_error(r, 400)


def test_errors_carry_no_server_paths(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        photo = upload(c, png()).json()["id"]
        (tmp_path / "images" / f"{photo}.png").write_bytes(b"junk now")
        r = c.post(
            "/api/jobs", data={"content": photo, "style": "demo-painting", "settings": json.dumps(QUICK)}
        )
        if r.status_code == 201:
            rec = wait(c, r.json()["id"], finished)
            assert rec["status"] == "failed" and str(tmp_path) not in json.dumps(rec), rec
        else:
            assert str(tmp_path) not in one_line_error(r, 400)


# ---- fuzz -------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=12,
)
_names = st.sampled_from(
    ["size", "iterations", "style_layers", "style_weight", "optimizer", "seed", "scales"]
)
_settings = st.dictionaries(_names | st.text(max_size=12), _json, max_size=5) | _json


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with client_for(tmp_path_factory.mktemp("fuzz"), queue_limit=1000) as c:
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=_settings)
def test_fuzzed_settings_are_never_a_500(fuzz_client: Any, values: Any) -> None:
    body = json.dumps({"preset": "default", "settings": values})  # (NaN and Infinity too)
    r = fuzz_client.post("/api/config/check", content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    data = {"content": "demo-photo", "style": "demo-painting", "settings": json.dumps(values)}
    r = fuzz_client.post("/api/jobs", data=data)
    assert r.status_code < 500, r.text
    if r.status_code == 201:
        fuzz_client.delete(f"/api/jobs/{r.json()['id']}")


def test_a_client_that_leaves_mid_upload_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from artstyle.apps.web.app import create_app

    app = create_app(tmp_path)
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + png()[:50]
    messages = [
        {"type": "http.request", "body": body, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/images",
        "raw_path": b"/api/images",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"multipart/form-data; boundary=xyz")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.DEBUG):
        asyncio.run(app(scope, receive, send))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert sent and sent[0]["status"] < 500


def test_a_read_only_data_folder_still_shows_its_gallery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio restarted on a data folder that cannot be written (a shared or archived gallery,
    a disk remounted read-only): the gallery, thumbnails, results and downloads are served, from
    memory where a thumbnail cannot be stored; only writes answer 503."""
    import shutil

    live = tmp_path / "live"
    with client_for(live) as c:
        photo = upload(c, png(gradient_image(seed=21))).json()
        job = submit(c, QUICK).json()
        assert wait(c, job["id"], finished)["status"] == "done"
    archive = tmp_path / "archive"
    shutil.copytree(live, archive)
    for thumb in archive.glob("images/*.thumb.jpg"):  # (none made yet: each is made on request)
        thumb.unlink()
    from artstyle import files

    def read_only(p: Path, data: bytes) -> str:
        raise OSError(errno.EROFS, "Read-only file system", str(p))

    monkeypatch.setattr(files, "_write_temp", lambda p, data: _storage(read_only, p, data))
    with client_for(archive) as c:
        images = c.get("/api/images").json()
        assert photo["id"] in [m["id"] for m in images]
        for m in images:
            r = c.get(f"/api/images/{m['id']}?thumb=1")
            assert r.status_code == 200 and r.content.startswith(b"\xff\xd8"), (m["id"], r.text[:200])
            assert Image.open(io.BytesIO(r.content)).size[0] <= 320
        again = c.get(f"/api/images/{photo['id']}?thumb=1")  # (from memory now)
        assert again.status_code == 200 and not list(archive.glob("images/*.thumb.jpg"))
        rec = c.get(f"/api/jobs/{job['id']}").json()
        assert rec["status"] == "done" and rec["has_image"]
        assert c.get(f"/api/jobs/{job['id']}/image").content.startswith(b"\x89PNG")
        assert c.get(f"/api/jobs/{job['id']}/sidecar").json()["output"] == "result.png"
        assert "cannot be written" in one_line_error(upload(c, png(gradient_image(seed=22))), 503)
