"""The studio's web process: the page, its JSON API and server-sent events (FastAPI/Starlette).

API (every error is one line of JSON, ``{"error": "..."}``, with a 4xx status):

=====================================  ==========================================================
``GET /api/config``                    the settings' schema (fields, groups, help, bounds, choices)
                                       and presets, plus the studio's limits
``POST /api/config/check``             ``{"preset", "settings"}`` -> ``{"ok", "errors": {field:
                                       message}, "error"}``: the config's own messages per field
``GET /api/images``                    built-in demo images and uploads (newest first)
``POST /api/images``                   multipart ``file`` -> the image's record (id, name, size)
``GET /api/images/{id}[?thumb=1]``     the image as PNG (or a JPEG thumbnail)
``GET /api/experiments``               the shipped experiments
``POST /api/jobs``                     multipart: ``content`` and one or more ``style`` (each a file
                                       or an image id), ``settings`` (JSON), ``preset``, optionally
                                       one ``mask`` per painting (white where it applies); or
                                       ``kind=experiment`` with ``experiment`` and ``quick`` ->
                                       the job (``id``, queue ``position``)
``GET /api/jobs``                      every job, newest first
``GET /api/jobs/{id}``                 one job: status, progress, losses, settings
``GET /api/jobs/{id}/events``          server-sent events: ``progress``, ``preview``, then one of
                                       ``done``, ``failed``, ``cancelled``, ``interrupted``
``GET /api/jobs/{id}/image``           the result (while running: the latest preview) as PNG
``GET /api/jobs/{id}/sidecar``         the result's sidecar (settings, versions, losses, timings)
``GET /api/jobs/{id}/report``          an experiment's report.html
``DELETE /api/jobs/{id}``              cancel a queued or running job; delete a finished one
``POST /api/jobs/estimate``            what Start would cost: seconds and peak memory, or why it cannot fit
``GET /api/groups/{id}``               a batch (several photos, one job each): its jobs, how many finished
``GET /api/groups/{id}/zip``           the batch's images with their sidecars
``DELETE /api/groups/{id}``            cancel the batch's queued and running jobs
=====================================  ==========================================================

The routes are one router per resource (:mod:`artstyle.apps.web.routes`); the guards
(:mod:`artstyle.apps.web.guard`:
Host, Origin, token, body cap) are middleware on every route.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from artstyle.apps.web import MAX_STYLES, MAX_UPLOAD_MB, QUEUE_LIMIT
from artstyle.apps.web.executors import LocalExecutor, RayExecutor
from artstyle.apps.web.guard import LOOPBACK, READ_TIMEOUT, Guard, error_response
from artstyle.apps.web.manager import Manager, QueueFull, Unavailable
from artstyle.apps.web.routes import config, images, jobs, page
from artstyle.apps.web.routes.common import Limits
from artstyle.apps.web.settings import label
from artstyle.apps.web.store import NotFound, Store
from artstyle.errors import ArtstyleError, StorageError

__all__ = ["LOOPBACK", "create_app"]

#: How each error a route may raise reaches the client: one line of JSON with this status.
STATUS = {NotFound: 404, QueueFull: 429, Unavailable: 503, ArtstyleError: 400}


def create_app(
    data: str | Path,
    *,
    token: str | None = None,
    max_upload_mb: float = MAX_UPLOAD_MB,
    queue_limit: int = QUEUE_LIMIT,
    hosts: tuple[str, ...] | None = LOOPBACK,
    worker_init: str | None = None,
    runner: str = "local",
    ray_address: str | None = None,
    ray_cpus_per_job: int = 1,
    read_timeout: float = READ_TIMEOUT,
) -> FastAPI:
    """The studio app over the data folder ``data``. ``hosts``: the Host names accepted (None:
    any, for a server on a public address, which then needs ``token``). ``runner``: ``local`` (one
    worker process) or ``ray`` (jobs as Ray tasks on the cluster at ``ray_address``, several at
    once; see :mod:`artstyle.apps.web.executors`)."""
    store = Store(data)
    if runner not in ("local", "ray"):
        raise ArtstyleError(f"unknown runner {runner[:20]!r}; local or ray")
    executor = (
        RayExecutor(store.root, ray_address, ray_cpus_per_job, worker_init)
        if runner == "ray"
        else LocalExecutor(worker_init)
    )
    manager = Manager(store, queue_limit=queue_limit, executor=executor)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(title="artstyle studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.manager, app.state.token = store, manager, token
    app.state.limits = Limits(max_upload_mb, queue_limit, MAX_STYLES)
    app.add_middleware(
        Guard, token=token, max_bytes=int(max_upload_mb * 1e6), hosts=hosts, read_timeout=read_timeout
    )
    for router in (page.router, config.router, images.router, jobs.router, jobs.groups):
        app.include_router(router)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        return error_response(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg', 'invalid')}")

    for kind, status in STATUS.items():

        async def _user_error(request: Request, e: Exception, status: int = status) -> JSONResponse:
            return error_response(status, store.public(e.worded(label)))

        app.add_exception_handler(kind, _user_error)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, e: StorageError) -> JSONResponse:
        # the disk, not the request: 507 when it is full, 503 when it is read-only or refused
        why = "the data folder is full" if e.full else "the data folder cannot be written"
        return error_response(507 if e.full else 503, f"{why}: {store.public(str(e))}")

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, e: ClientDisconnect) -> Response:
        return Response(status_code=400)  # (no one is there to read it; nothing to log)

    return app
