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
=====================================  ==========================================================

Guards (:class:`Guard`, on every route): the Host header must name this server (no DNS
rebinding) and a state-changing request from a page of another origin is refused; with a token
(required for any non-loopback host) every route needs it (``?token=``, ``Authorization: Bearer``,
or the cookie the page gets); request bodies are capped while they stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from artstyle.config import StyleConfig, from_dict, layered, preset, schema
from artstyle.errors import ArtstyleError
from artstyle.masks import as_masks
from artstyle.runtime import resolve_device
from artstyle.stylizer import preflight
from artstyle.web.manager import FINISHED, Manager, QueueFull
from artstyle.web.store import NotFound, Store

MAX_STYLES = 8
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
COOKIE = "artstyle_token"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _TooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware: Host and Origin checks, the access token, and the body cap."""

    def __init__(self, app: Any, token: str | None, max_bytes: int, hosts: tuple[str, ...] | None) -> None:
        self.app, self.token, self.max_bytes, self.hosts = app, token, max_bytes, hosts

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._check(scope, headers)
        if problem:
            await problem(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._too_large()(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        return _error(413, f"upload too large: the limit is {self.max_bytes / 1e6:g} MB (--max-upload-mb)")

    def _check(self, scope: dict[str, Any], headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        if self.hosts is not None and name not in self.hosts:
            return _error(400, f"unexpected Host header {host[:60]!r}")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin and urlsplit(origin).netloc != host:
                return _error(403, "requests from other sites are refused")
        if self.token:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [""])[0]
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            given = given or cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return _error(401, "an access token is needed: open the URL the server printed")
        return None


def web_restrictions(values: dict[str, Any]) -> dict[str, str]:
    """Settings a web page may not give: a path for a field that also takes names (weights,
    initial) would read a file of the server's; only the names are allowed here."""
    errors = {}
    for f in schema()["fields"]:
        if "named" in f and f["name"] in values and values[f["name"]] not in f["named"]:
            errors[f["name"]] = f"{f['name']} must be one of {', '.join(f['named'])} here (no file paths)"
    return errors


def check_settings(preset_name: str, values: Any) -> tuple[StyleConfig | None, dict[str, str], str]:
    """(config, per-field errors, overall error): the config's own messages."""
    if not isinstance(values, dict):
        return None, {}, "settings must be a JSON object"
    try:
        base = preset(preset_name or "default")
    except ArtstyleError as e:
        return None, {}, str(e)
    errors = web_restrictions(values)
    for key, value in values.items():
        if key in errors:
            continue
        try:
            from_dict({key: value}, base=base)
        except ArtstyleError as e:
            errors[key] = str(e)
    if errors:
        first = next(iter(errors))
        return None, errors, f"{first}: {errors[first]}" if first not in errors[first] else errors[first]
    try:
        return layered(preset_name or "default", None, values), {}, ""
    except ArtstyleError as e:
        return None, {}, str(e)


def create_app(
    data: str | Path,
    *,
    token: str | None = None,
    max_upload_mb: float = 25.0,
    queue_limit: int = 20,
    hosts: tuple[str, ...] | None = LOOPBACK,
    worker_init: str | None = None,
) -> FastAPI:
    """The studio app over the data folder ``data``. ``hosts``: the Host names accepted (None:
    any, for a server on a public address, which then needs ``token``)."""
    store = Store(data)
    manager = Manager(store, queue_limit=queue_limit, worker_init=worker_init)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(title="artstyle studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.manager = store, manager
    app.add_middleware(Guard, token=token, max_bytes=int(max_upload_mb * 1e6), hosts=hosts)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        return _error(422, f"{'.'.join(str(x) for x in first.get('loc', ()))}: {first.get('msg', 'invalid')}")

    @app.exception_handler(NotFound)
    async def _missing(request: Request, e: NotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(QueueFull)
    async def _full(request: Request, e: QueueFull) -> JSONResponse:
        return _error(429, str(e))

    @app.exception_handler(ArtstyleError)
    async def _bad(request: Request, e: ArtstyleError) -> JSONResponse:
        return _error(400, str(e))

    # ---- the page -------------------------------------------------------------------------------

    def _static(name: str) -> bytes:
        return (resources.files("artstyle.web") / "static" / name).read_bytes()

    @app.get("/")
    async def index(request: Request) -> Response:
        page = Response(_static("index.html"), media_type="text/html; charset=utf-8")
        page.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'"
        )
        if token:  # (the Guard has checked it) images and event streams then need no ?token=
            page.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return page

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise NotFound("not found")
        return Response(_static(name), media_type=STATIC[name])

    # ---- settings -------------------------------------------------------------------------------

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            **schema(),
            "limits": {"max_upload_mb": max_upload_mb, "queue_limit": queue_limit, "max_styles": MAX_STYLES},
        }

    @app.post("/api/config/check")
    async def config_check(request: Request) -> dict[str, Any]:
        body = await _json(request)
        _, errors, error = check_settings(str(body.get("preset") or "default"), body.get("settings", {}))
        return {"ok": not error, "errors": errors, "error": error or None}

    # ---- images ---------------------------------------------------------------------------------

    @app.get("/api/images")
    async def images() -> list[dict[str, Any]]:
        return [_public_image(m) for m in store.images()]

    @app.post("/api/images", status_code=201)
    async def upload(request: Request) -> dict[str, Any]:
        form = await _form(request, files=1)
        item = form.get("file")
        if not isinstance(item, UploadFile):
            raise ArtstyleError("send the image as the multipart file field 'file'")
        return _public_image(await _store_upload(item))

    @app.get("/api/images/{image_id}")
    async def image(image_id: str, thumb: bool = False) -> FileResponse:
        if thumb:
            return FileResponse(await run_in_threadpool(store.thumbnail, image_id), media_type="image/jpeg")
        return FileResponse(store.image_path(image_id), media_type="image/png")

    async def _store_upload(item: UploadFile) -> dict[str, Any]:
        data = await item.read()
        if not data:
            raise ArtstyleError(f"{item.filename or 'upload'}: the file is empty")
        return await run_in_threadpool(store.add_image, data, item.filename)

    # ---- experiments ----------------------------------------------------------------------------

    @app.get("/api/experiments")
    async def experiments() -> list[dict[str, Any]]:
        from artstyle.study.experiment import read_description, shipped_experiments

        return [{"name": n, **read_description(p)} for n, p in shipped_experiments().items()]

    # ---- jobs -----------------------------------------------------------------------------------

    @app.post("/api/jobs", status_code=201)
    async def submit(request: Request) -> dict[str, Any]:
        form = await _form(request, files=1 + MAX_STYLES)
        kind = str(form.get("kind") or "stylize")
        contents = [await _image_ref(x, "content") for x in form.getlist("content")]
        styles = [await _image_ref(x, "style") for x in form.getlist("style")]
        if not contents:
            raise ArtstyleError("a photo is needed: the field 'content' (a file or an image id)")
        if not styles:
            raise ArtstyleError("at least one painting is needed: the field 'style' (files or image ids)")
        if len(styles) > MAX_STYLES:
            raise ArtstyleError(f"{len(styles)} paintings; at most {MAX_STYLES}")
        if kind == "experiment":
            return await _submit_experiment(form, contents, styles)
        if kind != "stylize":
            raise ArtstyleError(f"unknown kind {kind!r}; stylize or experiment")
        if len(contents) != 1:
            raise ArtstyleError(f"{len(contents)} photos; a job paints one (an experiment takes several)")
        try:
            settings = json.loads(str(form.get("settings") or "{}"))
        except ValueError:
            raise ArtstyleError("settings: not valid JSON") from None
        preset_name = str(form.get("preset") or "default")
        cfg, _, error = check_settings(preset_name, settings)
        if cfg is None:
            raise ArtstyleError(error)
        cfg.check_paintings(len(styles))
        masks = [await _image_ref(x, "mask") for x in form.getlist("mask")]
        mask_paths = [str(store.image_path(m["id"])) for m in masks]
        if masks:
            await run_in_threadpool(as_masks, mask_paths, len(styles))  # count, empty masks
        sizes = [(m["width"], m["height"]) for m in (contents[0], *styles)]
        await run_in_threadpool(preflight, sizes[0], sizes[1:], cfg, resolve_device(cfg.device))
        task = {
            "config": cfg.to_dict(),
            "content": str(store.image_path(contents[0]["id"])),
            "styles": [str(store.image_path(m["id"])) for m in styles],
            "style_ids": [m["id"] for m in styles],
            "content_meta": contents[0],
            "styles_meta": styles,
            "masks": mask_paths,
            "mask_ids": [m["id"] for m in masks],
        }
        info = {
            "content": _public_image(contents[0]),
            "styles": [_public_image(m) for m in styles],
            "masks": [_public_image(m) for m in masks],
            "preset": preset_name,
            "settings": cfg.to_dict(),
        }
        return manager.submit("stylize", task, info)

    async def _submit_experiment(form: Any, contents: list[dict], styles: list[dict]) -> dict[str, Any]:
        from artstyle.study.experiment import load_experiment, shipped_experiments

        name = str(form.get("experiment") or "")
        shipped = shipped_experiments()
        if name not in shipped:
            raise ArtstyleError(f"unknown experiment {name!r}; choose from {', '.join(shipped)}")
        quick = str(form.get("quick") or "").lower() in ("1", "true", "on", "yes")
        task = {
            "experiment": str(shipped[name]),
            "contents": [str(store.image_path(m["id"])) for m in contents],
            "styles": [str(store.image_path(m["id"])) for m in styles],
            "quick": quick,
        }
        await run_in_threadpool(  # every problem of the experiment is found before it is queued
            load_experiment, shipped[name], content=task["contents"], style=task["styles"], quick=quick
        )
        info = {
            "content": _public_image(contents[0]),
            "contents": [_public_image(m) for m in contents],
            "styles": [_public_image(m) for m in styles],
            "experiment": name,
            "quick": quick,
        }
        return manager.submit("experiment", task, info)

    async def _image_ref(item: Any, what: str) -> dict[str, Any]:
        if isinstance(item, UploadFile):
            return await _store_upload(item)
        ref = str(item).strip()
        try:
            return store.image_meta(ref)
        except NotFound:
            raise ArtstyleError(
                f"{what}: no image {ref[:40]!r} (upload it, or use an id of /api/images)"
            ) from None

    @app.get("/api/jobs")
    async def jobs() -> list[dict[str, Any]]:
        return manager.list()

    @app.get("/api/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        return manager.view(job_id)

    @app.delete("/api/jobs/{job_id}")
    async def cancel(job_id: str) -> dict[str, Any]:
        return await run_in_threadpool(manager.cancel_or_delete, job_id)

    @app.get("/api/jobs/{job_id}/image")
    async def job_image(job_id: str) -> FileResponse:
        manager.view(job_id)
        for name in ("result.png", "preview.png"):
            with contextlib.suppress(NotFound):
                return FileResponse(store.job_file(job_id, name), media_type="image/png", headers=_no_cache())
        raise NotFound("this job has no image yet")

    @app.get("/api/jobs/{job_id}/sidecar")
    async def job_sidecar(job_id: str) -> FileResponse:
        manager.view(job_id)
        path = store.job_file(job_id, "result.png.json")
        return FileResponse(path, media_type="application/json", filename=f"artstyle-{job_id[:8]}.png.json")

    @app.get("/api/jobs/{job_id}/report")
    async def job_report(job_id: str) -> FileResponse:
        manager.view(job_id)
        return FileResponse(store.job_file(job_id, "run/report.html"), media_type="text/html")

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        manager.view(job_id)

        async def stream() -> AsyncIterator[str]:
            seen_version, seen_preview = -1, 0
            while True:
                try:
                    rec = manager.view(job_id)
                except NotFound:
                    yield _sse(
                        "failed", {"id": job_id, "status": "deleted", "message": "the job was deleted"}
                    )
                    return
                if rec.get("version", 0) != seen_version:
                    seen_version = rec.get("version", 0)
                    if rec.get("preview", 0) != seen_preview:
                        seen_preview = rec.get("preview", 0)
                        yield _sse("preview", {"id": job_id, "n": seen_preview})
                    if rec["status"] in FINISHED:
                        yield _sse(rec["status"], rec)
                        return
                    yield _sse("progress", rec)
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.15)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    return app


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


def _no_cache() -> dict[str, str]:
    return {"Cache-Control": "no-store"}


def _public_image(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in ("id", "name", "width", "height", "builtin") if k in meta}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ArtstyleError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ArtstyleError("the body must be a JSON object")
    return body


async def _form(request: Request, files: int) -> Any:
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ArtstyleError("send multipart/form-data")
    try:
        return await request.form(max_files=files, max_fields=40)
    except HTTPException as e:
        raise ArtstyleError(str(e.detail)) from None
