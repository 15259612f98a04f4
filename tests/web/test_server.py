"""The studio as a real server process (``artstyle serve``): stopping it with pages open."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason='the studio needs the web extra: pip install "artstyle[web]"')
pytest.importorskip("uvicorn", reason='the studio needs the web extra: pip install "artstyle[web]"')

from tests.conftest import gradient_image, stripes_image  # noqa: E402
from tests.web.test_api import LONG, png  # noqa: E402

LAUNCH = (
    "import functools, sys; import artstyle.apps.web.app as a; "
    "a.create_app = functools.partial(a.create_app, worker_init='tests.web.helpers:tiny_weights'); "
    "from artstyle.apps.cli import main; sys.argv[0] = 'artstyle'; main(sys.argv[1:])"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_with_pages_watching_ends_their_streams_and_interrupts_the_job(tmp_path: Path, sig: int):
    """The pages' event streams end on their own when the server stops; they are not cut at its
    grace period (injected here: 600 s, so a stop that waited on them could not pass)."""
    port = _free_port()
    cmd = [sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--data", str(tmp_path / "d")]
    cmd += ["--stop-grace", "600"]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            deadline = time.monotonic() + 60
            while True:
                try:
                    c.get("/api/config")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                    time.sleep(0.2)
            photo = c.post("/api/images", files={"file": ("p.png", png(gradient_image(seed=1)), "image/png")})
            painting = c.post("/api/images", files={"file": ("s.png", png(stripes_image()), "image/png")})
            data = {
                "content": photo.json()["id"],
                "style": painting.json()["id"],
                "settings": json.dumps(LONG),
            }
            job = c.post("/api/jobs", data=data).json()
            while c.get(f"/api/jobs/{job['id']}").json().get("preview", 0) < 1:
                assert time.monotonic() < deadline, "no preview"
                time.sleep(0.1)

        ended: list[str] = []

        def watch() -> None:  # two pages follow the job and never leave on their own
            try:
                with httpx.stream("GET", f"{base}/api/jobs/{job['id']}/events", timeout=600) as r:
                    for _ in r.iter_lines():
                        pass
                ended.append("by the server")  # (the stream's end, sent by the server)
            except httpx.HTTPError as e:
                ended.append(f"cut: {type(e).__name__}")

        watchers = [threading.Thread(target=watch, daemon=True) for _ in range(2)]
        for w in watchers:
            w.start()
        time.sleep(1.0)
        server.send_signal(sig)
        code = server.wait(timeout=300)  # (far below the grace: only streams that end let it go)
        for w in watchers:
            w.join(30)
        err = server.stderr.read() if server.stderr else ""
    finally:
        if server.poll() is None:
            server.kill()
    assert ended == ["by the server", "by the server"], ended
    assert code in (0, 128 + sig), err
    assert "Traceback" not in err, err
    rec = json.loads((tmp_path / "d" / "jobs" / job["id"] / "job.json").read_text())
    assert rec["status"] == "interrupted" and rec["has_image"]
