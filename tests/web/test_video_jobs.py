"""The studio takes a clip: upload, frames shown as they are painted, the mp4 and its sidecar in
the gallery, cancel keeping the frames so far, and the limits it states up front (tiny network)."""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
av = pytest.importorskip("av", reason='video needs the video extra: pip install "artstyle[video]"')

from tests.conftest import stripes_image  # noqa: E402
from tests.test_video_chunks import clip_mp4, shot_frame, two_shots  # noqa: E402
from tests.web.test_api import client_for, finished, png, upload, wait  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with client_for(tmp_path_factory.mktemp("studio")) as c:
        yield c


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    return clip_mp4(tmp_path_factory.mktemp("clip") / "in.mp4", two_shots(4, 4)).read_bytes()


def send(c, clip: bytes, settings: dict, video: dict | None = None, name: str = "holiday.mp4"):
    painting = upload(c, png(stripes_image()), "painting.png").json()["id"]
    return c.post(
        "/api/jobs",
        data={
            "kind": "video",
            "style": painting,
            "settings": json.dumps(settings),
            "video": json.dumps(video or {"frame_iterations": 2, "min_shot": 2}),
        },
        files={"clip": (name, clip, "video/mp4")},
    )


def test_a_clip_is_painted_into_an_mp4_with_its_sidecar_and_the_last_frame_as_its_picture(client, clip_bytes):
    limits = client.get("/api/config").json()["limits"]
    assert limits["max_clip_frames"] == 300 and limits["max_clip_side"] == 512
    r = send(client, clip_bytes, {"size": 48, "scales": 1, "iterations": 3})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["kind"] == "video" and job["clip"]["frames"] == 8 and job["clip"]["name"] == "holiday.mp4"
    rec = wait(client, job["id"], finished)
    assert rec["status"] == "done" and rec["has_image"] and rec["has_video"], rec
    assert rec["progress"]["frames_done"] == 8 and rec["progress"]["frames"] == 8 and rec["preview"] == 8
    got = client.get(f"/api/jobs/{job['id']}/video")
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(got.content)) as v:
        assert sum(1 for _ in v.decode(video=0)) == 8
    side = client.get(f"/api/jobs/{job['id']}/sidecar").json()
    assert side["frame_count"] == 8 and side["shots"] == [[0, 4], [4, 8]] and side["studio_job"] == job["id"]
    assert client.get(f"/api/jobs/{job['id']}/image").headers["content-type"] == "image/png"


def test_a_cancelled_clip_keeps_its_frames_so_far(client, tmp_path):
    clip = clip_mp4(tmp_path / "long.mp4", [shot_frame(i, 0) for i in range(40)]).read_bytes()
    job = send(client, clip, {"size": 48, "scales": 1, "iterations": 3}, {"frame_iterations": 40}).json()
    wait(client, job["id"], lambda r: r.get("preview", 0) >= 1)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 200
    rec = wait(client, job["id"], finished, timeout=30)
    assert rec["status"] == "cancelled" and rec["has_image"] and 1 <= rec["frames_done"] < 40, rec
    assert not rec.get("has_video")  # (the page offers no mp4 for it: "video" is the job's options)
    assert client.get(f"/api/jobs/{job['id']}/video").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/image").status_code == 200


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("not a video", "not a video file"),
        ("too large", "up to 512 px"),
        ("bad option", "unknown option"),
        ("no clip", "a clip is needed"),
    ],
)
def test_what_the_studio_refuses_is_one_json_error(client, clip_bytes, what, message):
    settings, video, data = {"size": 48, "scales": 1}, None, clip_bytes
    if what == "not a video":
        data = b"this is text, not a clip"
    elif what == "too large":
        settings["size"] = 1024
    elif what == "bad option":
        video = {"frame_iterations": 2, "rm -rf": 1}
    if what == "no clip":
        r = client.post("/api/jobs", data={"kind": "video", "style": "demo-painting"})
    else:
        r = send(client, data, settings, video)
    assert r.status_code == 400 and message in r.json()["error"], r.text
