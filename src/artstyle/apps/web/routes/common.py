"""What the routers share: the studio's state as dependencies, and reading a request's body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from artstyle.apps.web import MAX_CLIP_FRAMES, MAX_CLIP_SIDE, MAX_SIDE, MAX_UPLOAD_PIXELS
from artstyle.apps.web.manager import Manager
from artstyle.apps.web.store import NotFound, Store
from artstyle.errors import ArtstyleError


@dataclass(frozen=True)
class Limits:
    """The studio's limits, shown to the page."""

    max_upload_mb: float
    queue_limit: int
    max_styles: int
    max_side: int = MAX_SIDE
    max_upload_megapixels: float = MAX_UPLOAD_PIXELS / 1e6
    max_clip_frames: int = MAX_CLIP_FRAMES
    max_clip_side: int = MAX_CLIP_SIDE


def _store(request: Request) -> Store:
    return request.app.state.store


def _manager(request: Request) -> Manager:
    return request.app.state.manager


def _limits(request: Request) -> Limits:
    return request.app.state.limits


StoreDep = Annotated[Store, Depends(_store)]
ManagerDep = Annotated[Manager, Depends(_manager)]
LimitsDep = Annotated[Limits, Depends(_limits)]


def public_image(meta: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of an image's record."""
    return {k: meta[k] for k in ("id", "name", "width", "height", "builtin", "alpha") if k in meta}


#: The most a JSON body or settings field may hold: bytes, and depth of nesting (settings are flat:
#: an object of numbers, strings and short lists).
MAX_JSON_BYTES = 64_000
MAX_JSON_DEPTH = 4


def parse_json(text: str | bytes, what: str) -> dict[str, Any]:
    """``text`` as a JSON object within :data:`MAX_JSON_BYTES` and :data:`MAX_JSON_DEPTH`."""
    if len(text) > MAX_JSON_BYTES:
        raise ArtstyleError(f"{what}: over {MAX_JSON_BYTES // 1000} KB of JSON")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ArtstyleError(f"{what}: not valid JSON") from None
    if not isinstance(value, dict):
        raise ArtstyleError(f"{what}: must be a JSON object")
    if _depth(value) > MAX_JSON_DEPTH:
        raise ArtstyleError(f"{what}: nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # (NaN, Infinity: Python's extension, not JSON)


def _depth(v: Any, limit: int = MAX_JSON_DEPTH + 1) -> int:
    if limit == 0 or not isinstance(v, (dict, list)):
        return 0
    items = v.values() if isinstance(v, dict) else v
    return 1 + max((_depth(x, limit - 1) for x in items), default=0)


async def read_json(request: Request) -> dict[str, Any]:
    return parse_json(await request.body(), "the body")


async def read_form(request: Request, files: int) -> Any:
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ArtstyleError("send multipart/form-data")
    try:
        return await request.form(max_files=files, max_fields=40)
    except HTTPException as e:
        raise ArtstyleError(str(e.detail)) from None


async def store_upload(store: Store, item: UploadFile) -> dict[str, Any]:
    """An uploaded file added to the library (decoded and checked); its record."""
    data = await item.read()
    if not data:
        raise ArtstyleError(f"{item.filename or 'upload'}: the file is empty")
    return await run_in_threadpool(store.add_image, data, item.filename)


async def image_ref(store: Store, item: Any, what: str) -> dict[str, Any]:
    """A form field naming an image: an uploaded file (added to the library) or an image id."""
    if isinstance(item, UploadFile):
        return await store_upload(store, item)
    ref = str(item).strip()
    try:
        return store.image_meta(ref)
    except NotFound:
        raise ArtstyleError(
            f"{what}: no image {ref[:40]!r} (upload it, or use an id of /api/images)"
        ) from None
