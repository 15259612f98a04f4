"""Batches (several photos, one job each, one group), the estimate before Start, and the strength
setting through the studio's API."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')

from tests.conftest import gradient_image, stripes_image
from tests.web.test_api import QUICK, client_for, finished, one_line_error, png, upload, wait


def _batch(c, photos, settings=QUICK, **fields):
    painting = upload(c, png(stripes_image()), "painting.png").json()["id"]
    files = [("content", (f"p{i}.png", data, "image/png")) for i, data in enumerate(photos)]
    data = {"style": painting, "settings": json.dumps(settings), **fields}
    return c.post("/api/jobs", data=data, files=files)


def test_a_batch_is_one_job_per_photo_in_one_group_with_a_zip(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        photos = [png(gradient_image(seed=s)) for s in (1, 2, 3)]
        r = _batch(c, [*photos[:2], b"not a picture", photos[2]])
        assert r.status_code == 201, r.text
        body = r.json()
        assert len(body["jobs"]) == 3 and [s["name"] for s in body["skipped"]] == ["p2.png"]
        assert "not an image" in body["skipped"][0]["error"]
        assert {j["group"] for j in body["jobs"]} == {body["group"]}
        assert [j["group_index"] for j in body["jobs"]] == [0, 1, 2]
        for job in body["jobs"]:
            assert wait(c, job["id"], finished)["status"] == "done"
        group = c.get(f"/api/groups/{body['group']}").json()
        assert group["finished"] == group["size"] == 3
        z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/groups/{body['group']}/zip").content))
        names = sorted(z.namelist())
        assert names == [
            "001-p0.png",
            "001-p0.png.json",
            "002-p1.png",
            "002-p1.png.json",
            "003-p3.png",
            "003-p3.png.json",
        ]
        assert z.read("001-p0.png").startswith(b"\x89PNG") and json.loads(z.read("003-p3.png.json"))["config"]


def test_a_batch_over_the_queue_is_refused_whole_and_a_group_cancels(tmp_path: Path) -> None:
    long = {"size": 64, "scales": 1, "iterations": 100000, "time_limit": 0}
    with client_for(tmp_path, queue_limit=3) as c:
        photos = [png(gradient_image(seed=s)) for s in range(5)]
        r = _batch(c, photos, long)
        assert "3 jobs" in one_line_error(r, 429)
        assert c.get("/api/jobs").json() == []  # nothing queued half
        body = _batch(c, photos[:3], long).json()
        wait(c, body["jobs"][0]["id"], lambda rec: rec["status"] == "running")
        cancelled = c.delete(f"/api/groups/{body['group']}").json()
        assert len(cancelled["jobs"]) == 3
        for job in body["jobs"]:
            assert wait(c, job["id"], finished)["status"] == "cancelled"
        one_line_error(c.get("/api/groups/" + "0" * 32), 404)


def test_all_bad_photos_or_no_images_are_one_error(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        assert "not an image" in one_line_error(_batch(c, [b"junk", b"more junk"]), 400)


def test_the_estimate_before_start_and_against_the_real_time(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        photo = upload(c, png(gradient_image(seed=1))).json()["id"]
        data = {"content": photo, "style": "demo-painting", "settings": json.dumps(QUICK)}
        first = c.post("/api/jobs/estimate", data=data).json()
        assert (
            first["basis"] == "prior"
            and first["seconds"] > 0
            and first["memory_gb"] > 0
            and first["error"] is None
        )
        assert first["painting_px"] == first["jobs"][0]["painting_px"] == 1  # (a 512 px painting, 48 px)
        poster = {**data, "settings": json.dumps({"size": 2048, "max_memory": 64})}
        assert c.post("/api/jobs/estimate", data=poster).json()["painting_px"] == 0.25  # (512 px for 2048)
        job = c.post("/api/jobs", data=data).json()
        assert job["estimate"]["seconds"] > 0
        wait(c, job["id"], finished)
        more = c.post("/api/jobs", data={**data, "settings": json.dumps({**QUICK, "iterations": 30})}).json()
        wait(c, more["id"], finished)
        second = c.post("/api/jobs/estimate", data=data).json()
        assert second["basis"] == "measured"  # this machine's speed, from the runs before
        assert (tmp_path / "timings.json").is_file()
        huge = {
            "content": photo,
            "style": "demo-painting",
            "settings": json.dumps({"size": 4096, "max_memory": 0.5}),
        }
        refused = c.post("/api/jobs/estimate", data=huge).json()
        assert refused["error"] and "memory" in refused["error"]
        assert "--" not in refused["error"] and "(under Advanced)" in refused["error"]  # the page's words


def test_strength_is_a_setting_with_its_bounds(tmp_path: Path) -> None:
    with client_for(tmp_path) as c:
        bad = c.post("/api/config/check", json={"settings": {"style_strength": 120}}).json()
        assert not bad["ok"] and "style_strength" in bad["errors"]
        ok = c.post("/api/config/check", json={"settings": {"style_strength": 30}}).json()
        assert ok["ok"]
        fields = {f["name"]: f for f in c.get("/api/config").json()["fields"]}
        assert fields["style_strength"]["minimum"] == 0 and fields["style_strength"]["maximum"] == 100
