"""The settings: ``GET /api/config`` (schema, presets, limits, the job statuses),
``POST /api/config/check``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from artstyle.apps.web.events import FINISHED, Status
from artstyle.apps.web.routes.common import LimitsDep, read_json
from artstyle.apps.web.settings import check_settings
from artstyle.config import schema

router = APIRouter(prefix="/api/config")


@router.get("")
async def config(limits: LimitsDep) -> dict[str, Any]:
    statuses = {"all": [str(x) for x in Status], "finished": sorted(str(x) for x in FINISHED)}
    return {**schema(), "limits": asdict(limits), "statuses": statuses}


@router.post("/check")
async def config_check(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    _, errors, error = check_settings(str(body.get("preset") or "default"), body.get("settings", {}))
    return {"ok": not error, "errors": errors, "error": error or None}
