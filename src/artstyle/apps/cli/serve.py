"""``artstyle serve``: the studio, a local web app (:mod:`artstyle.apps.web`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from artstyle.apps.cli.main import main
from artstyle.apps.web import MAX_UPLOAD_MB, QUEUE_LIMIT  # (the package's root imports no web framework)
from artstyle.errors import ArtstyleError


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but loopback needs a token.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Folder of uploads and results [default: the user's data folder].",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--token", help="Access token (generated when --host is not loopback and none is given).")
@click.option("--max-upload-mb", default=MAX_UPLOAD_MB, show_default=True, type=click.FloatRange(0.1, 2000))
@click.option("--queue-limit", default=QUEUE_LIMIT, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--read-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds a request may take to send its headers, and the grace before its body must keep "
    "16 KB/s; slower clients are answered 408 (public servers: put a reverse proxy in front too).",
)
@click.option(
    "--stop-grace",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds a stop waits for open requests before it closes them.",
)
@click.option(
    "--runner",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where jobs run: one worker process here, or Ray tasks on a cluster (several at once).",
)
@click.option(
    "--ray-address", default=None, help="The Ray cluster (default: $RAY_ADDRESS, else a local Ray)."
)
@click.option(
    "--ray-cpus-per-run",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs each job takes on the Ray cluster (its torch threads).",
)
def serve(
    host: str,
    port: int,
    data: str | None,
    open_browser: bool,
    token: str | None,
    max_upload_mb: float,
    queue_limit: int,
    read_timeout: float,
    stop_grace: float,
    runner: str,
    ray_address: str | None,
    ray_cpus_per_run: int,
) -> None:
    """Start the studio: a local web page to stylise, watch it paint, cancel, and keep a gallery."""
    try:
        import uvicorn

        from artstyle.apps.web.app import LOOPBACK, create_app
        from artstyle.apps.web.guard import timed_protocol
        from artstyle.apps.web.store import default_data_dir
    except ImportError:
        raise ArtstyleError('artstyle serve needs the web extra: pip install "artstyle[web]"') from None
    import secrets
    import socket
    import webbrowser

    loopback = host in LOOPBACK
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    try:  # a busy port is one line, before anything starts
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise ArtstyleError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pass another --port"
        ) from None
    folder = Path(data) if data else default_data_dir()
    app = create_app(
        folder,
        token=token,
        max_upload_mb=max_upload_mb,
        queue_limit=queue_limit,
        hosts=(*LOOPBACK, host) if loopback else None,
        runner=runner,
        ray_address=ray_address,
        ray_cpus_per_job=ray_cpus_per_run,
        read_timeout=read_timeout,
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"artstyle studio: {url}  (data: {folder}; Ctrl-C stops)", err=True)
    if open_browser:
        threading.Timer(1.5, webbrowser.open, args=(url,)).start()
    manager = app.state.manager

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                # a stop asked for by Ctrl-C or SIGTERM that went as it should is a normal end:
                # exit 0, not the signal raised again once the server is down (uvicorn's way)
                self._captured_signals.clear()

        def handle_exit(self, sig: int, frame: Any) -> None:
            # Ctrl-C or SIGTERM: the running job stops now and open event streams end, so the
            # server is gone in a second or two, however many pages watch it
            manager.begin_stop()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=stop_grace,
        http=timed_protocol(read_timeout),  # (a deadline for the headers: uvicorn has none)
    )
    Server(config).run()
