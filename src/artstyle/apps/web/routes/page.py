"""The page: ``GET /`` and its static files."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from artstyle.apps.web.guard import COOKIE
from artstyle.apps.web.store import NotFound

#: The files served under /static/: the page's ES modules (main.js imports the rest) and its style.
MODULES = ("main", "common", "settings", "images", "jobs", "viewer")
STATIC = {**{f"{m}.js": "text/javascript" for m in MODULES}, "app.css": "text/css"}

router = APIRouter()


def _static(name: str) -> bytes:
    return (resources.files("artstyle.apps.web") / "static" / name).read_bytes()


@router.get("/")
async def index(request: Request) -> Response:
    page = Response(_static("index.html"), media_type="text/html; charset=utf-8")
    page.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'"
    )
    token = request.app.state.token
    if token:  # (the Guard has checked it) images and event streams then need no ?token=
        page.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return page


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound("not found")
    return Response(_static(name), media_type=STATIC[name])
