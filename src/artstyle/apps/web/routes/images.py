"""The library of images: ``GET/POST /api/images``, ``GET /api/images/{id}``; the shipped
experiments, ``GET /api/experiments``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from artstyle.apps.web.routes.common import StoreDep, public_image, read_form, store_upload
from artstyle.errors import ArtstyleError

router = APIRouter(prefix="/api")


@router.get("/images")
async def images(store: StoreDep) -> list[dict[str, Any]]:
    return [public_image(m) for m in store.images()]


@router.post("/images", status_code=201)
async def upload(request: Request, store: StoreDep) -> dict[str, Any]:
    form = await read_form(request, files=1)
    item = form.get("file")
    if not isinstance(item, UploadFile):
        raise ArtstyleError("send the image as the multipart file field 'file'")
    return public_image(await store_upload(store, item))


@router.get("/images/{image_id}")
async def image(image_id: str, store: StoreDep, thumb: bool = False) -> Response:
    if thumb:
        return Response(await run_in_threadpool(store.thumbnail, image_id), media_type="image/jpeg")
    return FileResponse(store.image_path(image_id), media_type="image/png")


@router.get("/experiments")
async def experiments() -> list[dict[str, Any]]:
    from artstyle.apps.study.experiment import read_description, shipped_experiments

    return [{"name": n, **read_description(p)} for n, p in shipped_experiments().items()]
