"""The jobs: submit (``POST /api/jobs``: a photo and paintings with settings and masks, or an
experiment), list, view, follow (server-sent events), their images, sidecars and reports, and
cancel or delete (``DELETE``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from artstyle.errors import ArtstyleError
from artstyle.masks import as_masks
from artstyle.runtime import resolve_device
from artstyle.stylizer import preflight
from artstyle.web.manager import FINISHED, Manager
from artstyle.web.routes.common import (
    LimitsDep,
    ManagerDep,
    StoreDep,
    image_ref,
    parse_json,
    public_image,
    read_form,
)
from artstyle.web.settings import check_settings
from artstyle.web.store import NotFound, Store

router = APIRouter(prefix="/api/jobs")


@router.post("", status_code=201)
async def submit(request: Request, store: StoreDep, manager: ManagerDep, limits: LimitsDep) -> dict[str, Any]:
    form = await read_form(request, files=1 + limits.max_styles)
    kind = str(form.get("kind") or "stylize")
    contents = [await image_ref(store, x, "content") for x in form.getlist("content")]
    styles = [await image_ref(store, x, "style") for x in form.getlist("style")]
    if not contents:
        raise ArtstyleError("a photo is needed: the field 'content' (a file or an image id)")
    if not styles:
        raise ArtstyleError("at least one painting is needed: the field 'style' (files or image ids)")
    if len(styles) > limits.max_styles:
        raise ArtstyleError(f"{len(styles)} paintings; at most {limits.max_styles}")
    if kind == "experiment":
        return await _submit_experiment(form, contents, styles, store, manager)
    if kind != "stylize":
        raise ArtstyleError(f"unknown kind {kind[:40]!r}; stylize or experiment")
    if len(contents) != 1:
        raise ArtstyleError(f"{len(contents)} photos; a job paints one (an experiment takes several)")
    settings = parse_json(str(form.get("settings") or "{}"), "settings")
    preset_name = str(form.get("preset") or "default")
    cfg, _, error = check_settings(preset_name, settings)
    if cfg is None:
        raise ArtstyleError(error)
    cfg.check_paintings(len(styles))
    if cfg.size > limits.max_side:
        raise ArtstyleError(
            f"size {cfg.size}: the studio paints up to {limits.max_side} px; larger pictures are "
            "painted in tiles by the command line (artstyle stylize --size ...)"
        )
    masks = [await image_ref(store, x, "mask") for x in form.getlist("mask")]
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
        "content": public_image(contents[0]),
        "styles": [public_image(m) for m in styles],
        "masks": [public_image(m) for m in masks],
        "preset": preset_name,
        "settings": cfg.to_dict(),
    }
    return manager.submit("stylize", task, info)


async def _submit_experiment(
    form: Any, contents: list[dict], styles: list[dict], store: Store, manager: Manager
) -> dict[str, Any]:
    from artstyle.study.experiment import load_experiment, shipped_experiments

    name = str(form.get("experiment") or "")
    shipped = shipped_experiments()
    if name not in shipped:
        raise ArtstyleError(f"unknown experiment {name[:40]!r}; choose from {', '.join(shipped)}")
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
        "content": public_image(contents[0]),
        "contents": [public_image(m) for m in contents],
        "styles": [public_image(m) for m in styles],
        "experiment": name,
        "quick": quick,
    }
    return manager.submit("experiment", task, info)


@router.get("")
async def jobs(manager: ManagerDep) -> list[dict[str, Any]]:
    return manager.list()


@router.get("/{job_id}")
async def job(job_id: str, manager: ManagerDep) -> dict[str, Any]:
    return manager.view(job_id)


@router.delete("/{job_id}")
async def cancel(job_id: str, manager: ManagerDep) -> dict[str, Any]:
    return await run_in_threadpool(manager.cancel_or_delete, job_id)


@router.get("/{job_id}/image")
async def job_image(job_id: str, store: StoreDep, manager: ManagerDep) -> Response:
    """The result, or while it runs the latest preview. Read whole, not streamed: the worker
    replaces the preview every second, and a file response that stats one version and sends
    another would break its Content-Length."""
    manager.view(job_id)
    for name in ("result.png", "preview.png"):
        with contextlib.suppress(NotFound, FileNotFoundError):
            data = await run_in_threadpool(store.job_file(job_id, name).read_bytes)
            return Response(data, media_type="image/png", headers=_no_cache())
    raise NotFound("this job has no image yet")


@router.get("/{job_id}/sidecar")
async def job_sidecar(job_id: str, store: StoreDep, manager: ManagerDep) -> FileResponse:
    manager.view(job_id)
    path = store.job_file(job_id, "result.png.json")
    return FileResponse(path, media_type="application/json", filename=f"artstyle-{job_id[:8]}.png.json")


@router.get("/{job_id}/report")
async def job_report(job_id: str, store: StoreDep, manager: ManagerDep) -> FileResponse:
    manager.view(job_id)
    return FileResponse(store.job_file(job_id, "run/report.html"), media_type="text/html")


@router.get("/{job_id}/events")
async def events(job_id: str, request: Request, manager: ManagerDep) -> StreamingResponse:
    manager.view(job_id)

    async def stream() -> AsyncIterator[str]:
        seen_version, seen_preview = -1, 0
        while True:
            try:
                rec = manager.view(job_id)
            except NotFound:
                yield _sse("failed", {"id": job_id, "status": "deleted", "message": "the job was deleted"})
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
            if await request.is_disconnected() or not manager.accepting:
                return  # (the client left, or the server is stopping: it must not wait for us)
            await asyncio.sleep(0.15)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


def _no_cache() -> dict[str, str]:
    return {"Cache-Control": "no-store"}
