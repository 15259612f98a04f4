"""The studio's data folder: uploaded images and jobs, each under an unguessable id.

Layout (``--data``)::

    images/<id>.png        every upload, decoded, checked and re-encoded (the user's bytes are not kept)
    images/<id>.json       its display name (never used as a path), size, sha256 of the upload
    images/<id>.thumb.jpg  a thumbnail, made on first request
    jobs/<id>/job.json     the job: inputs, settings, status, progress, final losses
    jobs/<id>/preview.png  the latest image of a running job
    jobs/<id>/result.png   the result (also of a cancelled or interrupted job); result.png.json: sidecar
    jobs/<id>/run/         an experiment's output folder (report.html, images, sheets)
    jobs/<id>/result.mp4   a painted clip (result.mp4.json: its sidecar); preview.png: its latest frame
    clips/<id>.video       an uploaded clip, as sent (checked by decoding it); clips/<id>.json: its record
    timings.json           this machine's measured seconds per iteration (the estimates before Start)
    damaged/               records that failed their check when read, set aside (never deleted)

Every record is checked as it is read (:func:`job_problem`, :func:`image_problem`); one that fails
is moved to ``damaged/`` with one log line, so a damaged file never stops the server or its queue.
A disk that is full or read-only raises :class:`~artstyle.errors.StorageError` (the API's 507/503).

Every path is built from an id that matched :data:`ID` (or a built-in's fixed name) and is
resolved and checked to lie inside the folder before anything is read: ``..``, absolute paths and
symlinks that lead out are refused as "not found".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import sys
import threading
import time
import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from artstyle.apps.web import MAX_SIDE, MAX_UPLOAD_PIXELS
from artstyle.apps.web.events import Status
from artstyle.errors import ArtstyleError, StorageError, storage_error
from artstyle.files import atomic_write_bytes
from artstyle.images.decode import decode_image, transparency
from artstyle.images.demo import default_content, default_style
from artstyle.images.encode import encode_image, on_white
from artstyle.images.geometry import fit_long_side, resize

#: A job's or an upload's id: 128 random bits.
ID = re.compile(r"^[0-9a-f]{32}$")
#: The built-in demo images, by fixed id.
DEMOS = {
    "demo-photo": ("built-in photo", default_content),
    "demo-painting": ("built-in painting", default_style),
}
THUMB = 320
#: Thumbnails kept in memory when the data folder cannot be written.
THUMBS_IN_MEMORY = 512
KINDS = ("stylize", "experiment", "video")
#: The measured speeds of this machine (:mod:`artstyle.runs.timing`), beside the jobs.
TIMINGS = "timings.json"

log = logging.getLogger("artstyle.studio")
#: Uploads decoded at once (one costs up to about 360 MB: ``benchmarks/memory.py --decoding``).
_DECODING = threading.BoundedSemaphore(2)


class NotFound(ArtstyleError):
    """An id or file that is not in the data folder (also: one that tries to leave it)."""


def default_data_dir() -> Path:
    """``$ARTSTYLE_DATA``, else the user's data folder (XDG on Linux)."""
    if os.environ.get("ARTSTYLE_DATA"):
        return Path(os.environ["ARTSTYLE_DATA"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "artstyle"
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "artstyle"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "artstyle"


def new_id() -> str:
    return secrets.token_hex(16)


def display_name(name: str | None, fallback: str = "image") -> str:
    """A user's file name for display only: no folders, no control characters, at most 80 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:80] or fallback


class Store:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self._by_sha: dict[str, str] | None = None  # upload sha256 -> image id, read once
        self._thumbs: OrderedDict[str, bytes] = OrderedDict()  # (a read-only folder's thumbnails)
        try:
            for sub in ("images", "jobs"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ArtstyleError(f"{self.root}: cannot use as the data folder ({e.strerror or e})") from None
        self.ensure_demos()

    # ---- paths ------------------------------------------------------------------------------------

    def public(self, message: str, limit: int = 300) -> str:
        """A message fit for a client: the data folder's path taken out, and at most ``limit``
        characters (a value it quotes may be huge)."""
        message = message.replace(f"{self.root}{os.sep}", "").replace(str(self.root), "the data folder")
        return message if len(message) <= limit else message[: limit - 3] + "..."

    def inside(self, p: Path) -> Path:
        """``p`` if it is a regular file (not a symlink) inside the data folder; else NotFound."""
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound("not found") from None
        if p.is_symlink() or not real.is_relative_to(self.root) or not real.is_file():
            raise NotFound("not found")
        return real

    def _image_base(self, image_id: str) -> Path:
        if not (ID.match(image_id) or image_id in DEMOS):
            raise NotFound(f"no image {image_id[:40]!r}")
        return self.root / "images" / image_id

    def job_dir(self, job_id: str) -> Path:
        if not ID.match(job_id):
            raise NotFound(f"no job {job_id[:40]!r}")
        d = self.root / "jobs" / job_id
        if d.is_symlink() or not d.is_dir():
            raise NotFound(f"no job {job_id}")
        return d

    def job_file(self, job_id: str, name: str) -> Path:
        return self.inside(self.job_dir(job_id) / name)

    # ---- images -----------------------------------------------------------------------------------

    def ensure_demos(self) -> None:
        for image_id, (name, make) in DEMOS.items():
            if not (self.root / "images" / f"{image_id}.png").exists():
                self._write_image(image_id, make(), name, "")

    def add_image(self, data: bytes, name: str | None) -> dict[str, Any]:
        """Check an upload by its content (the pixel-count guard first), keep it as PNG; the same
        bytes uploaded twice are one image."""
        shown = display_name(name)
        sha = hashlib.sha256(data).hexdigest()
        if self._by_sha is None:
            self._by_sha = {m["sha256"]: m["id"] for m in self.images() if m.get("sha256")}
        if sha in self._by_sha:
            with contextlib.suppress(NotFound):
                return self.image_meta(self._by_sha[sha])
        with _DECODING:  # (each decode is bounded; so is how many run at once)
            image = decode_image(data, shown, need=MAX_SIDE, max_pixels=MAX_UPLOAD_PIXELS)
        if min(image.size) < 32:
            raise ArtstyleError(f"{shown}: image is {image.width}x{image.height}; 32 px a side is the least")
        found = transparency(image)
        if found is not None:  # (kept with its alpha: a job may keep it; its colours not on white)
            image = found[1].copy()
            image.putalpha(found[0])
        if max(image.size) > MAX_SIDE:  # (the studio never paints larger)
            image = resize(image, fit_long_side(image.size, MAX_SIDE))
        return self._write_image(new_id(), image, shown, sha)

    def _write_image(self, image_id: str, image: Image.Image, name: str, sha: str) -> dict[str, Any]:
        base = self._image_base(image_id)
        meta = {
            "id": image_id,
            "name": name,
            "width": image.width,
            "height": image.height,
            "sha256": sha,
            "created": time.time(),
            "builtin": image_id in DEMOS,
        }
        if image.mode == "RGBA":
            meta["alpha"] = True  # (it has transparency: see artstyle.engine.masks.kept_alpha)
        atomic_write_bytes(base.with_suffix(".png"), encode_image(image, "x.png"), overwrite=True)
        atomic_write_bytes(base.with_suffix(".json"), json.dumps(meta).encode(), overwrite=True)
        if sha and self._by_sha is not None:
            self._by_sha[sha] = image_id
        return meta

    # ---- clips ------------------------------------------------------------------------------------

    def add_clip(self, data: bytes, name: str | None, max_frames: int) -> dict[str, Any]:
        """Keep an uploaded clip once it decodes as a video of at most ``max_frames`` frames (each
        decoded, so a lying header cannot pass); its record."""
        from artstyle.runs.video.containers import open_clip

        shown = display_name(name, "clip")
        clip_id = new_id()
        base = self.root / "clips" / clip_id
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(base.with_suffix(".video"), data, overwrite=False)
        except OSError as e:
            raise storage_error("the data folder", e) from None
        try:
            clip = open_clip(base.with_suffix(".video"), 24.0, 64)
            count, last = 0, 0.0
            for _, t in clip.frames:
                count, last = count + 1, t
                if count > max_frames:
                    raise ArtstyleError(
                        f"{shown}: over {max_frames} frames; the studio paints clips up to {max_frames} "
                        "frames (longer ones: artstyle video on the command line)"
                    )
            if not count:
                raise ArtstyleError(f"{shown}: the video has no frames")
        except ArtstyleError as e:
            base.with_suffix(".video").unlink(missing_ok=True)
            raise ArtstyleError(str(e).replace(str(base.with_suffix(".video")), shown)) from None
        meta = {
            "id": clip_id,
            "name": shown,
            "frames": count,
            "seconds": round(last, 3),
            "fps": round(clip.fps, 3),
            "sha256": hashlib.sha256(data).hexdigest(),
            "created": time.time(),
        }
        atomic_write_bytes(base.with_suffix(".json"), json.dumps(meta).encode(), overwrite=True)
        return meta

    def clip_path(self, clip_id: str) -> Path:
        if not ID.match(clip_id):
            raise NotFound(f"no clip {clip_id[:40]!r}")
        return self.inside(self.root / "clips" / f"{clip_id}.video")

    def image_path(self, image_id: str) -> Path:
        return self.inside(self._image_base(image_id).with_suffix(".png"))

    def image_meta(self, image_id: str) -> dict[str, Any]:
        p = self.inside(self._image_base(image_id).with_suffix(".json"))
        try:
            meta = json.loads(p.read_text())
            problem = image_problem(meta, image_id)
        except (OSError, ValueError, RecursionError) as e:
            problem = f"unreadable ({type(e).__name__})"
        if problem:
            self.set_image_aside(image_id, problem)
            raise NotFound(f"no image {image_id}")
        return dict(meta)

    def set_image_aside(self, image_id: str, why: str) -> None:
        base = self._image_base(image_id)
        for suffix in (".json", ".png", ".thumb.jpg"):
            if base.with_suffix(suffix).exists():
                self.set_aside(base.with_suffix(suffix), f"image {image_id}: {why}")
        if image_id in DEMOS:
            with contextlib.suppress(ArtstyleError):
                self.ensure_demos()

    def thumbnail(self, image_id: str) -> bytes:
        """A JPEG of at most :data:`THUMB` px, made on first request and kept beside the picture;
        on a data folder that cannot be written (read-only, full) it is kept in memory instead
        (the newest :data:`THUMBS_IN_MEMORY`), so a read-only gallery still shows its pictures."""
        src = self.image_path(image_id)
        thumb = self._image_base(image_id).with_suffix(".thumb.jpg")
        if thumb.exists():
            return self.inside(thumb).read_bytes()
        if image_id in self._thumbs:
            self._thumbs.move_to_end(image_id)
            return self._thumbs[image_id]
        try:
            with Image.open(src) as im:
                im.draft("RGB", (THUMB, THUMB))
                im.thumbnail((THUMB, THUMB))
                small = on_white(im) if im.mode == "RGBA" else im.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            self.set_image_aside(image_id, "its picture cannot be decoded")
            raise NotFound(f"no image {image_id}") from None
        data = encode_image(small, "x.jpg")
        try:
            atomic_write_bytes(thumb, data, overwrite=True)
        except StorageError:  # (only writes answer 503 on a read-only folder: this one is not needed)
            self._thumbs[image_id] = data
            while len(self._thumbs) > THUMBS_IN_MEMORY:
                self._thumbs.popitem(last=False)
        return data

    def images(self) -> list[dict[str, Any]]:
        """Every image: the built-in photo and painting first, then uploads newest first."""
        out = []
        for p in (self.root / "images").glob("*.json"):
            with contextlib.suppress(OSError, ValueError, NotFound):
                out.append(self.image_meta(p.stem))
        for image_id in set(DEMOS) - {m["id"] for m in out}:  # (one set aside just now is made again)
            with contextlib.suppress(ArtstyleError):
                out.append(self.image_meta(image_id))
        return sorted(out, key=lambda m: (not m["builtin"], m["id"] != "demo-photo", -m["created"]))

    # ---- jobs -------------------------------------------------------------------------------------

    def create_job_dir(self) -> tuple[str, Path]:
        job_id = new_id()
        d = self.root / "jobs" / job_id
        try:
            d.mkdir()
        except OSError as e:
            raise storage_error("the data folder", e, "cannot add a job") from None
        return job_id, d

    def save_job(self, record: dict[str, Any]) -> None:
        d = self.job_dir(record["id"])
        atomic_write_bytes(d / "job.json", json.dumps(record, allow_nan=False).encode(), overwrite=True)

    def load_jobs(self) -> list[dict[str, Any]]:
        """Every job whose record passes :func:`job_problem`; the others are set aside."""
        out = []
        for d in (self.root / "jobs").iterdir():
            if not ID.match(d.name) or d.is_symlink() or not d.is_dir():
                continue
            if not (d / "job.json").exists():
                continue  # a half-created job (the server stopped between mkdir and the first save)
            try:
                rec = json.loads(self.inside(d / "job.json").read_text())
                problem = job_problem(rec, d.name)
            except (OSError, ValueError, NotFound, RecursionError) as e:
                problem = f"unreadable ({type(e).__name__})"
            if problem:
                self.set_aside(d, f"job {d.name}: {problem}")
            else:
                out.append(rec)
        return out

    def delete_job(self, job_id: str) -> None:
        d = self.job_dir(job_id)
        try:
            shutil.rmtree(d)
        except OSError as e:
            raise storage_error(f"job {job_id}", e, "cannot delete") from None

    def set_aside(self, path: Path, why: str) -> None:
        """Move a damaged record (a job's folder, an image's files) into ``damaged/``, with a log line."""
        where = self.root / "damaged" / path.parent.name
        try:
            where.mkdir(parents=True, exist_ok=True)
            os.replace(path, where / f"{path.name}.{int(time.time())}")
            log.warning("artstyle studio: %s; set aside in %s", why, where.relative_to(self.root))
        except OSError as e:
            log.warning("artstyle studio: %s; could not set it aside (%s)", why, e.strerror or e)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def job_problem(rec: Any, job_id: str) -> str | None:
    """What is wrong with a job's record read from disk (None: nothing)."""
    if not isinstance(rec, dict):
        return "the record is not a JSON object"
    if rec.get("id") != job_id:
        return "its id does not match its folder"
    if rec.get("status") not in set(Status):
        return f"unknown status {str(rec.get('status'))[:20]!r}"
    if rec.get("kind") not in KINDS:
        return f"unknown kind {str(rec.get('kind'))[:20]!r}"
    if not _number(rec.get("created")):
        return "no creation time"
    task = rec.get("task")
    if rec["status"] in (Status.QUEUED, Status.RUNNING) and not (isinstance(task, dict) and task):
        return "a queued job without its task"
    return None


def image_problem(meta: Any, image_id: str) -> str | None:
    """What is wrong with an image's record read from disk (None: nothing)."""
    if not isinstance(meta, dict):
        return "the record is not a JSON object"
    if meta.get("id") != image_id:
        return "its id does not match its file"
    if not isinstance(meta.get("name"), str):
        return "no name"
    for side in ("width", "height"):
        v = meta.get(side)
        if not (isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 1_000_000):
            return f"no valid {side}"
    if not _number(meta.get("created")) or not isinstance(meta.get("builtin"), bool):
        return "no creation time"
    return None
