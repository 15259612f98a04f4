"""The jobs: submit (``POST /api/jobs``: a photo and paintings with settings and masks, or an
experiment), list, view, follow (server-sent events), their images, sidecars and reports, and
cancel or delete (``DELETE``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from artstyle.apps.web.manager import FINISHED, Manager
from artstyle.apps.web.routes.common import (
    Limits,
    LimitsDep,
    ManagerDep,
    StoreDep,
    image_ref,
    parse_json,
    public_image,
    read_form,
)
from artstyle.apps.web.settings import check_settings, label
from artstyle.apps.web.store import TIMINGS, NotFound, Store, display_name
from artstyle.config import StyleConfig
from artstyle.engine.masks import as_masks
from artstyle.engine.plan import estimate_memory
from artstyle.engine.runtime import OverMemory, available_memory, resolve_device
from artstyle.engine.stylizer import preflight
from artstyle.errors import ArtstyleError, StorageError
from artstyle.runs.timing import Timings

router = APIRouter(prefix="/api/jobs")
groups = APIRouter(prefix="/api/groups")


@dataclass
class StylizeForm:
    """A stylize request read and checked: its photos (with the ones that could not be used),
    paintings, masks, settings."""

    contents: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    styles: list[dict[str, Any]]
    masks: list[dict[str, Any]]
    preset: str
    cfg: StyleConfig


async def _paintings_and_settings(
    form: Any, store: Store, limits: Limits, max_side: int, larger: str
) -> tuple[list[dict[str, Any]], str, StyleConfig]:
    """A form's paintings (``style``: files or image ids), preset and settings, checked, with a
    size of at most ``max_side`` px (``larger`` says where a larger one goes)."""
    styles = [await image_ref(store, x, "style") for x in form.getlist("style")]
    if not styles:
        raise ArtstyleError("at least one painting is needed: the field 'style' (files or image ids)")
    if len(styles) > limits.max_styles:
        raise ArtstyleError(f"{len(styles)} paintings; at most {limits.max_styles}")
    settings = parse_json(str(form.get("settings") or "{}"), "settings")
    preset_name = str(form.get("preset") or "default")
    cfg, _, error = check_settings(preset_name, settings)
    if cfg is None:
        raise ArtstyleError(error)
    cfg.check_paintings(len(styles))
    if cfg.size > max_side:
        raise ArtstyleError(f"size {cfg.size}: the studio paints up to {max_side} px; {larger}")
    return styles, preset_name, cfg


async def _read_stylize(form: Any, store: Store, limits: Limits) -> StylizeForm:
    """The photos (a batch: each its own job; one that is not an image is skipped and listed),
    paintings, masks and settings of a form, checked; any other problem is an ArtstyleError."""
    contents, skipped = [], []
    for item in form.getlist("content"):
        try:
            contents.append(await image_ref(store, item, "content"))
        except ArtstyleError as e:
            if isinstance(e, StorageError):
                raise
            name = getattr(item, "filename", None) or str(item)[:40]
            skipped.append({"name": display_name(name), "error": store.public(str(e))})
    if not contents:
        first = f": {skipped[0]['error']}" if skipped else ""
        raise ArtstyleError(f"a photo is needed: the field 'content' (a file or an image id){first}")
    styles, preset_name, cfg = await _paintings_and_settings(
        form,
        store,
        limits,
        limits.max_side,
        "larger pictures are painted in tiles by the command line (artstyle stylize --size ...)",
    )
    masks = [await image_ref(store, x, "mask") for x in form.getlist("mask")]
    if masks:
        await run_in_threadpool(as_masks, [str(store.image_path(m["id"])) for m in masks], len(styles))
    return StylizeForm(contents, skipped, styles, masks, preset_name, cfg)


def _estimate(
    req: StylizeForm, content: dict[str, Any], timings: Timings, manager: Manager
) -> dict[str, Any]:
    """Time and peak memory of one photo's run, before it starts (a refusal is its ``error``)."""
    device = resolve_device(req.cfg.device)
    sizes = [(m["width"], m["height"]) for m in (content, *req.styles)]
    error = None
    try:
        guided = bool(req.masks) or (req.cfg.alpha == "keep" and bool(content.get("alpha")))
        plan = preflight(sizes[0], sizes[1:], req.cfg, device, guided)
    except OverMemory as e:  # (it would not fit now: what it would cost, and why not)
        plan, error = e.plan, e.worded(label)
    except ArtstyleError as e:  # (not even in tiles)
        return {"seconds": None, "basis": None, "memory_gb": None, "error": e.worded(label)}
    out: dict[str, Any] = {
        **timings.estimate(plan, manager.speed_key(req.cfg, device.type)).describe(),
        "memory_gb": round(estimate_memory(plan, req.cfg) / 2**30, 2),
        "size": list(plan.full),
        "tiled": plan.tiled,
        "painting_px": round(plan.levels[-1].painting_px, 3),
        "plan": plan,
    }
    if error:
        out["error"] = error
    return out


@router.post("/estimate")
async def estimate(
    request: Request, store: StoreDep, manager: ManagerDep, limits: LimitsDep
) -> dict[str, Any]:
    """What Start would cost: per photo and in all, seconds (this machine's measured speed, or a
    prior before its first run) and peak memory; ``error`` when a run cannot fit."""
    form = await read_form(request, files=limits.queue_limit + 2 * limits.max_styles)
    req = await _read_stylize(form, store, limits)
    timings = Timings(store.root / TIMINGS)
    each = [await run_in_threadpool(_estimate, req, c, timings, manager) for c in req.contents]
    available = available_memory()
    known = [e for e in each if e["seconds"] is not None]
    return {
        "jobs": [{k: v for k, v in e.items() if k != "plan"} for e in each],
        "seconds": round(sum(e["seconds"] for e in known), 1) if known else None,
        "basis": known[0]["basis"] if known else None,
        "memory_gb": max(e["memory_gb"] for e in known) if known else None,
        # (the painting's own pixels each pixel of the picture gets, the least over the photos)
        "painting_px": min(e["painting_px"] for e in known) if known else None,
        "available_gb": round(available / 2**30, 1) if available else None,
        "error": next((e["error"] for e in each if "error" in e), None),
        "skipped": req.skipped,
    }


@router.post("", status_code=201)
async def submit(request: Request, store: StoreDep, manager: ManagerDep, limits: LimitsDep) -> dict[str, Any]:
    """One job, or with several ``content`` fields a batch: one job per photo, as one group."""
    form = await read_form(request, files=limits.queue_limit + 2 * limits.max_styles)
    kind = str(form.get("kind") or "stylize")
    if kind == "experiment":
        contents = [await image_ref(store, x, "content") for x in form.getlist("content")]
        styles = [await image_ref(store, x, "style") for x in form.getlist("style")]
        if not contents or not styles:
            raise ArtstyleError("an experiment needs photos ('content') and paintings ('style')")
        if len(styles) > limits.max_styles:
            raise ArtstyleError(f"{len(styles)} paintings; at most {limits.max_styles}")
        return await _submit_experiment(form, contents, styles, store, manager)
    if kind == "video":
        return await _submit_video(form, store, manager, limits)
    if kind != "stylize":
        raise ArtstyleError(f"unknown kind {kind[:40]!r}; stylize, video or experiment")
    batch = len(form.getlist("content")) > 1
    req = await _read_stylize(form, store, limits)
    timings = Timings(store.root / TIMINGS)
    jobs = []
    for content in req.contents:  # (every photo is checked before any is queued)
        est = await run_in_threadpool(_estimate, req, content, timings, manager)
        if est.get("error"):  # (the one check before it is queued: it fits, in tiles or not)
            raise ArtstyleError(est["error"])
        mask_paths = [str(store.image_path(m["id"])) for m in req.masks]
        task = {
            "config": req.cfg.to_dict(),
            "plan": est["plan"].to_dict(),  # (planned once, here: the worker runs this plan)
            "content": str(store.image_path(content["id"])),
            "styles": [str(store.image_path(m["id"])) for m in req.styles],
            "style_ids": [m["id"] for m in req.styles],
            "content_meta": content,
            "styles_meta": req.styles,
            "masks": mask_paths,
            "mask_ids": [m["id"] for m in req.masks],
        }
        info = {
            "content": public_image(content),
            "styles": [public_image(m) for m in req.styles],
            "masks": [public_image(m) for m in req.masks],
            "preset": req.preset,
            "settings": req.cfg.to_dict(),
            "estimate": {k: est[k] for k in ("seconds", "basis", "memory_gb")},
        }
        jobs.append((task, info))
    if not batch:
        return manager.submit("stylize", *jobs[0])
    group = manager.submit_group("stylize", jobs)
    return {"group": group["id"], "jobs": group["jobs"], "skipped": req.skipped}


async def _submit_video(form: Any, store: Store, manager: Manager, limits: Limits) -> dict[str, Any]:
    """A clip (the field ``clip``: an uploaded video of at most ``max_clip_frames`` frames), its
    paintings and settings (``size`` at most ``max_clip_side``), and the video's own options
    (``video``: a JSON object of ``artstyle video``'s fields)."""
    from artstyle.config import VideoOptions

    item = form.get("clip")
    if not isinstance(item, UploadFile):
        raise ArtstyleError("a clip is needed: the field 'clip' (an uploaded video file)")
    styles, preset_name, cfg = await _paintings_and_settings(
        form, store, limits, limits.max_clip_side, "larger clips: artstyle video on the command line"
    )
    given = parse_json(str(form.get("video") or "{}"), "video")
    names = {f.name for f in dataclasses.fields(VideoOptions)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ArtstyleError(f"video: unknown option {unknown[0][:40]!r}")
    try:
        opts = VideoOptions(**given)
        opts.check()
    except TypeError as e:
        raise ArtstyleError(f"video: {e}") from None
    data = await item.read()
    if not data:
        raise ArtstyleError(f"{display_name(item.filename, 'clip')}: the file is empty")
    clip = await run_in_threadpool(store.add_clip, data, item.filename, limits.max_clip_frames)
    task = {
        "config": cfg.to_dict(),
        "video": dataclasses.asdict(opts),
        "clip": str(store.clip_path(clip["id"])),
        "clip_meta": clip,
        "styles": [str(store.image_path(m["id"])) for m in styles],
        "style_ids": [m["id"] for m in styles],
    }
    info = {
        "clip": {k: clip[k] for k in ("id", "name", "frames", "seconds", "fps")},
        "styles": [public_image(m) for m in styles],
        "preset": preset_name,
        "settings": cfg.to_dict(),
        "video": dataclasses.asdict(opts),
    }
    return manager.submit("video", task, info)


async def _submit_experiment(
    form: Any, contents: list[dict], styles: list[dict], store: Store, manager: Manager
) -> dict[str, Any]:
    from artstyle.apps.study.experiment import load_experiment, shipped_experiments

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


@router.get("/{job_id}/video")
async def job_video(job_id: str, store: StoreDep, manager: ManagerDep) -> FileResponse:
    """A painted clip (an .mp4 with the clip's timing and audio), once it is finished."""
    if manager.view(job_id).get("kind") != "video":
        raise NotFound("this job is not a video")
    path = store.job_file(job_id, "result.mp4")
    if not path.is_file():
        raise NotFound("this video is not finished")
    return FileResponse(path, media_type="video/mp4", filename=f"artstyle-{job_id[:8]}.mp4")


@router.get("/{job_id}/sidecar")
async def job_sidecar(job_id: str, store: StoreDep, manager: ManagerDep) -> FileResponse:
    name = "result.mp4.json" if manager.view(job_id).get("kind") == "video" else "result.png.json"
    path = store.job_file(job_id, name)
    if not path.is_file():
        raise NotFound("this job has no sidecar yet")
    return FileResponse(path, media_type="application/json", filename=f"artstyle-{job_id[:8]}.{name[7:]}")


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


# ---- groups (batches) -------------------------------------------------------------------------------


@groups.get("/{group_id}")
async def group(group_id: str, manager: ManagerDep) -> dict[str, Any]:
    """A batch: its jobs in order, and how many are finished."""
    jobs = [manager.view(i) for i in manager.group(group_id)]
    done = sum(j["status"] in FINISHED for j in jobs)
    return {"id": group_id, "jobs": jobs, "finished": done, "size": len(jobs)}


@groups.delete("/{group_id}")
async def cancel_group(group_id: str, manager: ManagerDep) -> dict[str, Any]:
    """Cancel every queued or running job of a batch."""
    return await run_in_threadpool(manager.cancel_group, group_id)


@groups.get("/{group_id}/zip")
async def group_zip(group_id: str, store: StoreDep, manager: ManagerDep) -> Response:
    """The batch's images with their sidecars, named after the photos, as one zip."""
    ids = manager.group(group_id)
    data = await run_in_threadpool(_zip, store, manager, ids)
    headers = {"Content-Disposition": f'attachment; filename="artstyle-{group_id[:8]}.zip"', **_no_cache()}
    return Response(data, media_type="application/zip", headers=headers)


def _zip(store: Store, manager: Manager, ids: list[str]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # (PNGs are compressed already)
        for i, job_id in enumerate(ids, 1):
            rec = manager.view(job_id)
            if not rec.get("has_image"):
                continue
            stem = Path(str(rec.get("content", {}).get("name") or "photo")).stem[:60] or "photo"
            name = f"{i:03d}-{stem}"
            while name in used:
                name += "_"
            used.add(name)
            with contextlib.suppress(NotFound, OSError):
                z.writestr(f"{name}.png", store.job_file(job_id, "result.png").read_bytes())
                z.writestr(f"{name}.png.json", store.job_file(job_id, "result.png.json").read_bytes())
    return buf.getvalue()
