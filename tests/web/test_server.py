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


def _wait_until_up(c: httpx.Client, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            c.get("/api/config")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("sig", "runner"),
    [(signal.SIGINT, "local"), (signal.SIGTERM, "local"), (signal.SIGTERM, "ray")],
    ids=["SIGINT", "SIGTERM", "SIGTERM-on-Ray"],
)
def test_stopping_with_pages_watching_ends_their_streams_and_interrupts_the_job(
    tmp_path: Path, sig: int, runner: str
):
    """The pages' event streams end on their own when the server stops; they are not cut at its
    grace period (injected here: 600 s, so a stop that waited on them could not pass). On Ray the
    same: ``ray.init`` must not keep its own SIGTERM handler (a C++ stack dump, exit 1)."""
    if runner == "ray":
        pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
    port = _free_port()
    cmd = [sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--data", str(tmp_path / "d")]
    cmd += ["--stop-grace", "600", "--runner", runner]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            _wait_until_up(c, server)
            photo = c.post("/api/images", files={"file": ("p.png", png(gradient_image(seed=1)), "image/png")})
            painting = c.post("/api/images", files={"file": ("s.png", png(stripes_image()), "image/png")})
            data = {
                "content": photo.json()["id"],
                "style": painting.json()["id"],
                "settings": json.dumps(LONG),
            }
            job = c.post("/api/jobs", data=data).json()
            deadline = time.monotonic() + 120  # (on Ray: a worker process starts first)
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
    assert code == 0, err  # (a stop that went as it should is a normal end)
    assert "Traceback" not in err and "leaked" not in err and "SIGTERM received" not in err, err
    rec = json.loads((tmp_path / "d" / "jobs" / job["id"] / "job.json").read_text())
    assert rec["status"] == "interrupted" and rec["has_image"]


def _trickle(port: int, first: bytes, then: bytes, seconds: float = 20.0) -> bytes:
    """Send ``first``, then ``then`` a byte every 0.2 s, until the server answers or closes (or
    ``seconds`` pass); returns what the server said (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(first)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            try:
                got = s.recv(4096)
                while got and not got.endswith(b"}"):  # (the answer, to its end)
                    more = s.recv(4096)
                    got += more
                    if not more:
                        break
                return got or b"closed"
            except TimeoutError:
                pass
            except OSError:
                return b"closed"
            if i < len(then):
                try:
                    s.sendall(then[i : i + 1])
                except OSError:
                    return b"closed"
                i += 1
        return b""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_clients_that_trickle_their_headers_or_upload_are_let_go(tmp_path: Path):
    """With ``--read-timeout 1``: connections that send their headers, or their upload, a byte at a
    time are answered 408 (or closed) long before the 20 s each would hold on; others are served
    meanwhile."""
    port = _free_port()
    cmd = [sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--data", str(tmp_path / "d")]
    server = subprocess.Popen([*cmd, "--read-timeout", "1"], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            _wait_until_up(c, server)
            headers = b"GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
            body = b"--x\r\n" + b"b" * 400
            upload = (
                b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: multipart/form-data; "
                b"boundary=x\r\ncontent-length: 100000\r\n\r\n"
            )
            answers: list[bytes] = []
            slow = [
                threading.Thread(target=lambda: answers.append(_trickle(port, b"G", headers)))
                for _ in range(10)
            ]
            slow += [
                threading.Thread(target=lambda: answers.append(_trickle(port, upload, body)))
                for _ in range(2)
            ]
            for t in slow:
                t.start()
            time.sleep(0.5)
            assert c.get("/api/config").status_code == 200  # (served while they trickle)
            for t in slow:
                t.join(60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(answers) == 12 and b"" not in answers, answers  # none held on for its 20 s
    assert sum(b"408" in a and b"too late" in a for a in answers) >= 8, answers  # (or closed outright)
    assert sum(b"408" in a and b"too slowly" in a for a in answers) == 2, answers
