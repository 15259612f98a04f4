"""A clip painted in shots and chunks (:func:`stylize_video`). The clip is read once for its
frame size, timing and cuts, and planned into chunks (:mod:`artstyle.runs.video.shots`); workers
paint the chunks (here, one after another, or Ray actors side by side:
:mod:`artstyle.runs.video.on_ray`) with the same :class:`FramePainter`, so both paint the same
frames. The driver writes each frame as it comes and records finished chunks in ``video.json``,
so Ctrl-C, SIGTERM or a kill keep them and the same command resumes (a finished chunk is never
painted again); the video is encoded once at the end, with the input's timing and audio."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from artstyle.config import StyleConfig, VideoOptions
from artstyle.engine.stylizer import Stylizer
from artstyle.errors import ArtstyleError, setting
from artstyle.files import (
    OutputExistsError,
    atomic_write_bytes,
    atomic_write_files,
    check_name,
    check_not_input,
    probe_writable,
)
from artstyle.images.geometry import fit_long_side
from artstyle.log import to_terminal
from artstyle.runs.console import Interrupts
from artstyle.runs.record import json_bytes, versions, write_json
from artstyle.runs.video.chunks import FramePainter, Painted, crossfade, frame_png
from artstyle.runs.video.containers import FRAME, Clip, clear_stale_temps, encode, even, open_clip
from artstyle.runs.video.shots import Chunk, CutFinder, plan_chunks, shots_of

STATE = "video.json"
#: Frames decoded ahead of the first chunk still to be given out, at most, in chunks: enough for
#: the shots after a long one to reach idle workers, and a bound on the frames held in memory.
AHEAD_CHUNKS = 16


def _frames_dir(out: Path, movie: bool) -> Path:
    return out.with_name(out.name + ".frames") if movie else out


def _state(cfg: StyleConfig, opts: VideoOptions, source: Path, styles: list[str]) -> dict[str, Any]:
    return {"config": cfg.to_dict(), "video": asdict(opts), "input": str(source), "styles": styles}


def _check_outputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Refuse an output (the video, its sidecar, its frames folder) that is one of the run's inputs
    (also through a link or a hard link), lies inside an input folder, or holds an input."""
    for o in outputs:
        check_not_input(o, inputs)
        ro = o.resolve()
        for i in inputs:
            ri = i.resolve()
            if (i.is_dir() and ro.is_relative_to(ri)) or (o.is_dir() and ri.is_relative_to(ro)):
                raise ArtstyleError(f"{o}: is, holds or lies inside the input {i}; choose another output")


def _check_folder(folder: Path) -> None:
    """A folder the run can write in (the only honest test is to write), or one clear line."""
    parent = folder if folder.is_dir() else folder.parent
    if not parent.is_dir():
        raise ArtstyleError(f"{folder}: folder {parent} does not exist")
    probe_writable(parent, folder)


def _clear_frames(frames_dir: Path, keep: int = 0) -> None:
    """Remove this tool's frames numbered ``keep`` and above (and, with ``keep`` 0, its record)."""
    for p in frames_dir.glob("frame_*.png"):
        m = re.fullmatch(r"frame_(\d+)\.png", p.name)
        if m and int(m.group(1)) >= keep:
            p.unlink(missing_ok=True)
    if keep == 0:
        (frames_dir / STATE).unlink(missing_ok=True)


def _kept_frame(path: Path, record: dict[str, Any], size: tuple[int, int]) -> Image.Image | None:
    """A frame finished by an earlier run, if it is still what was recorded (its bytes' sha256,
    its size, and it decodes); None when it must be made again."""
    try:
        data = path.read_bytes()
        if record.get("sha256") and hashlib.sha256(data).hexdigest() != record["sha256"]:
            return None
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            image = im.convert("RGB")
    except (OSError, ValueError, SyntaxError):
        return None
    return image if image.size == size else None


@dataclass
class Scan:
    """What one read of the clip tells before any painting: the frame size the run paints at,
    each frame's time, where the shots cut, and a digest of the frames (the run's identity)."""

    size: tuple[int, int]
    times: list[float]
    cuts: list[int]
    digest: str
    resized: set[int]


def scan_clip(clip: Clip, side: int, opts: VideoOptions) -> Scan:
    """Read ``clip`` once (at the run's size ``side``): frame size, times, cuts, digest."""
    finder = CutFinder(opts.cut_threshold, opts.min_shot)
    h = hashlib.sha256()
    size: tuple[int, int] | None = None
    times: list[float] = []
    resized: set[int] = set()
    for n, (frame, t) in enumerate(clip.frames):
        if size is None:  # every frame at the first one's size (a folder may mix sizes)
            size = even(fit_long_side(frame.size, side))
        if frame.size != size and even(fit_long_side(frame.size, side)) != size:
            resized.add(n)
        a = np.asarray(frame.resize(size, Image.Resampling.LANCZOS))
        finder.add(a)
        h.update(a.tobytes())
        times.append(t)
    return Scan(size or (0, 0), times, finder.finish(), h.hexdigest(), resized)


def _decoded(source: Path, opts: VideoOptions, side: int, size: tuple[int, int]) -> Iterator[Image.Image]:
    """The clip's frames again, at ``size``."""
    for frame, _ in open_clip(source, opts.fps, side).frames:
        yield frame.resize(size, Image.Resampling.LANCZOS)


@dataclass
class Task:
    """A chunk given to a worker: its frames from ``first`` (its first frame, or a later one when a
    stopped run is resumed inside it) to its end, and the input and painted frame before ``first``
    when it continues from them."""

    chunk: Chunk
    first: int
    frames: list[Image.Image]
    before: tuple[Image.Image, Image.Image] | None
    tries: int = 0


class Workers(Protocol):
    """Who paints the chunks: here (:class:`LocalWorkers`) or Ray actors
    (:class:`artstyle.runs.video.on_ray.RayWorkers`)."""

    def free(self) -> int: ...

    def submit(self, task: Task) -> None: ...

    def next_done(self, on_frame: Callable[[Task, Painted], None]) -> tuple[Task, list[Painted]]: ...

    def close(self) -> None: ...


class LocalWorkers:
    """One chunk at a time, here, each frame handed on as it is painted (a stopped run keeps it)."""

    def __init__(self, painter: FramePainter, check: Callable[[], None]) -> None:
        self.painter, self.check = painter, check
        self.queue: list[Task] = []

    def free(self) -> int:
        return 0 if self.queue else 1

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def next_done(self, on_frame: Callable[[Task, Painted], None]) -> tuple[Task, list[Painted]]:
        task = self.queue[0]
        painted = []
        for p in self.painter.paint(task.frames, task.first, task.before, self.check):
            on_frame(task, p)
            painted.append(p)
        self.queue.pop(0)
        return task, painted

    def close(self) -> None:
        self.queue = []


def _refusal(old: dict[str, Any], want: dict[str, Any]) -> str:
    """What differs between a frames folder's record and this run, in words."""
    if old.get("input") != want["input"] or old.get("input_digest") != want["input_digest"]:
        return "frames of another input"
    return "frames made with other settings"


def stylize_video(
    source: str | os.PathLike[str],
    styles: list[str],
    out: str | os.PathLike[str],
    cfg: StyleConfig,
    opts: VideoOptions,
    *,
    overwrite: bool = False,
    progress: bool = True,
    masks: list[Any] | None = None,
    keep_frames: bool = False,
    workers: Callable[[FramePainter, Interrupts, int], Workers] | None = None,
    extra: dict[str, Any] | None = None,
    on_frame: Callable[[int, int, Path], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    ctrl_c: bool = True,
) -> Path:
    """Stylise every frame of ``source`` into ``out`` (an .mp4 or a folder of PNG frames); resumes
    a run stopped earlier with the same settings. Returns the sidecar's path.

    The clip is split at its cuts and into chunks (:mod:`artstyle.runs.video.shots`), painted by
    ``workers`` (made from the frame painter, the run's interrupts and the number of chunks to
    paint; default: here, one chunk
    after another; :func:`artstyle.runs.video.on_ray.ray_workers` spreads them over Ray). The
    frames of an .mp4 are made in ``OUT.mp4.frames/`` (kept while the run is unfinished, so that
    the same command resumes) and removed once the video and its sidecar are written, unless
    ``keep_frames``. No output ever replaces or lies inside one of the run's inputs. ``extra``
    goes into the sidecar. ``on_frame(done, count, path)`` is told of every frame written;
    ``cancelled`` is read after every iteration (a studio's cancel: the run stops as at Ctrl-C,
    keeping its frames); ``ctrl_c``: handle Ctrl-C here (the command line)."""
    opts.check()
    cfg = cfg.replace(size=cfg.size - cfg.size % 2, alpha="white")  # (H.264 wants even sides, no alpha)
    out = Path(out)
    movie = out.suffix.lower() == ".mp4" and not out.is_dir()  # (a folder that exists is a folder)
    if out.suffix and not movie and not out.is_dir():
        raise ArtstyleError(
            f"{out}: the output is an .mp4 file or a folder (one that exists, or a name without suffix)"
        )
    check_name(out, beside=".frames" if movie else "")
    frames_dir = _frames_dir(out, movie)
    side = out.with_name(out.name + ".json") if movie else frames_dir / STATE
    inputs = [Path(source), *map(Path, styles)]
    _check_outputs([out, side, frames_dir] if movie else [frames_dir], inputs)
    for q in (out, side) if movie and not overwrite else ():
        if q.exists() or q.is_symlink():
            raise OutputExistsError(q)
    _check_folder(frames_dir if frames_dir.is_dir() else frames_dir.parent)
    if movie:
        clear_stale_temps(out.parent, out)
    if frames_dir.exists() and not frames_dir.is_dir():
        raise ArtstyleError(f"{frames_dir}: exists and is not a folder")
    state_path = frames_dir / STATE
    try:
        old = json.loads(state_path.read_text()) if state_path.exists() else None
    except (OSError, ValueError, RecursionError):
        old = None
    if not isinstance(old, dict) and frames_dir.is_dir() and any(frames_dir.iterdir()) and not overwrite:
        raise ArtstyleError(  # (before anything is decoded)
            f"{frames_dir}: holds something else; pass {setting('overwrite')} to replace its frames, "
            "or choose another output"
        )
    t_start = time.perf_counter()
    clip = open_clip(source, opts.fps, cfg.size)  # (after the checks: nothing decoded for a refused run)
    scan = scan_clip(clip, cfg.size, opts)
    count = len(scan.times)
    if count == 0:
        raise ArtstyleError(f"{source}: the video has no frames")
    chunks = plan_chunks(count, scan.cuts, opts.chunk_frames, opts.join, opts.chunk_overlap)
    want = {
        **_state(cfg, opts, Path(source), styles),
        "input_digest": scan.digest,
        "chunk_plan": [c.to_list() for c in chunks],
    }
    records: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    fresh = False
    if frames_dir.exists():
        if isinstance(old, dict) and {k: old.get(k) for k in want} == want:  # the same job: resume
            listed = old.get("frames", [])
            for r in listed if isinstance(listed, list) else []:
                if isinstance(r, dict) and isinstance(r.get("frame"), int) and 0 <= r["frame"] < count:
                    records[r["frame"]] = r
            done = {c for c in old.get("chunks_done", []) if isinstance(c, int)}
        elif any(frames_dir.iterdir()) and not overwrite:
            why = _refusal(old, want) if isinstance(old, dict) else "something else"
            raise ArtstyleError(
                f"{frames_dir}: holds {why}; pass {setting('overwrite')} to replace its frames, "
                "or choose another output"
            )
        else:
            fresh = True
    painter = FramePainter(Stylizer(styles, cfg), opts, scan.size, masks)  # (plans checked here)
    made = not frames_dir.exists()  # (a run refused before its first frame leaves no folder behind)
    frames_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        _clear_frames(frames_dir)  # (--overwrite: exactly this video's frames, nothing of the old one)
    size = scan.size

    def kept(n: int) -> Image.Image | None:
        return _kept_frame(frames_dir / FRAME.format(n), records[n], size) if n in records else None

    # what an earlier run finished: whole chunks, or (one after another) the frames of one begun
    resume_at: dict[int, int] = {}
    for c in chunks:
        n = c.first
        while n < c.end and kept(n) is not None:
            n += 1
        if n < c.end and n in records:
            to_terminal(f"artstyle: {FRAME.format(n)} is not the frame that was made; making it again")
        if n == c.end and (c.index in done or not c.lead):
            done.add(c.index)
        else:
            done.discard(c.index)
            resume_at[c.index] = n if (n > c.first and not c.lead) else c.first
            for m in range(resume_at[c.index], c.end):
                records.pop(m, None)
    interrupts = Interrupts(cancelled)
    bar = tqdm(total=count, unit="frame", disable=not progress, desc=out.name, dynamic_ncols=True)
    bar.update(sum(c.end - c.start for c in chunks if c.index in done))
    held: dict[int, list[Painted]] = {}  # a crossfade chunk's overlap, until the chunk before is done
    started = len(records)

    painted = [0, 0.0]  # frames painted by this run, and their seconds (the bar's s/frame)

    def save() -> None:
        listed = [records[n] for n in sorted(records)]
        write_json(state_path, {**want, "frames": listed, "chunks_done": sorted(done)}, overwrite=True)

    def write(p: Painted, **more: Any) -> None:
        atomic_write_bytes(frames_dir / FRAME.format(p.index), p.png, overwrite=True)
        rec = {**p.record, "time": round(scan.times[p.index], 6), **more}
        if p.index in scan.resized:
            rec["resized_from_another_size"] = True
        records[p.index] = rec

    def written(task: Task, p: Painted) -> None:
        if p.index < task.chunk.start:  # (an overlap: cross-faded once the chunk before is done)
            held.setdefault(task.chunk.index, []).append(p)
            return
        write(p)
        save()
        bar.update(1)
        if on_frame is not None:
            on_frame(len(records), count, frames_dir / FRAME.format(p.index))
        painted[0] += 1
        painted[1] += p.record["seconds"]
        bar.set_postfix_str(f"{painted[1] / painted[0]:.1f} s/frame", refresh=False)

    def finish(c: Chunk) -> None:
        """Mark ``c`` done (its overlap cross-faded first), and the one after it that waited."""
        while c is not None:
            if c.lead:
                if c.index - 1 not in done:
                    return  # (waits for the chunk before)
                for k, p in enumerate(held.pop(c.index, [])):
                    old = _kept_frame(frames_dir / FRAME.format(p.index), records[p.index], size)
                    if old is None:
                        raise ArtstyleError(f"{frames_dir}: {FRAME.format(p.index)} changed during the run")
                    png = frame_png(crossfade(old, p.image(), k, c.lead))
                    rec = {k2: v for k2, v in records[p.index].items() if k2 != "temporal_error"}
                    rec["sha256"] = hashlib.sha256(png).hexdigest()
                    write(Painted(p.index, png, rec), crossfaded=True)
                records[c.start].pop("temporal_error", None)
            done.add(c.index)
            save()
            nxt = c.index + 1
            c = chunks[nxt] if nxt < len(chunks) and nxt in finished_chunks and nxt not in done else None

    finished_chunks: set[int] = set(done)
    pending = [c for c in chunks if c.index not in done]
    running: set[int] = set()
    buf: dict[int, Image.Image] = {}
    decoder = enumerate(_decoded(Path(source), opts, cfg.size, size))
    decoded = -1
    ahead = AHEAD_CHUNKS * opts.chunk_frames

    def frame(n: int) -> Image.Image:
        nonlocal decoded
        while decoded < n:
            decoded, f = next(decoder)
            buf[decoded] = f
        return buf[n]

    def ready(c: Chunk) -> bool:
        return not c.continues or opts.join == "crossfade" or (c.index - 1) in done

    def task_of(c: Chunk) -> Task:
        first = resume_at.get(c.index, c.first)
        before = None
        if first > c.first or (c.continues and opts.join == "warp"):
            prev = kept(first - 1)
            if prev is None:
                raise ArtstyleError(f"{frames_dir}: {FRAME.format(first - 1)} changed during the run")
            before = (frame(first - 1), prev)
        return Task(c, first, [frame(n) for n in range(first, c.end)], before)

    crew: Workers | None = None
    try:
        with interrupts.installed(ctrl_c):
            make = workers or (lambda p, i, n: LocalWorkers(p, i.check))
            crew = make(painter, interrupts, len(pending)) if pending else None
            while crew is not None and (pending or running):
                limit = (pending[0].first if pending else count) + ahead
                while crew.free() > 0:
                    c = next((c for c in pending if c.end <= limit and ready(c)), None)
                    if c is None:
                        c = pending[0] if pending and ready(pending[0]) else None
                    if c is None:
                        break
                    crew.submit(task_of(c))
                    pending.remove(c)
                    running.add(c.index)
                    keep_from = min([p.first for p in pending] or [count]) - 1
                    for n in [n for n in buf if n < keep_from]:
                        del buf[n]
                if not running:
                    raise AssertionError("video chunks: nothing to run")  # (never: the first is ready)
                task, _ = crew.next_done(written)
                running.discard(task.chunk.index)
                finished_chunks.add(task.chunk.index)
                finish(task.chunk)
    except KeyboardInterrupt:
        bar.close()
        to_terminal(f"artstyle: {len(records)} frames are kept in {frames_dir}; the same command resumes")
        raise
    finally:
        bar.close()
        if crew is not None:
            crew.close()
        if made and not records:
            with contextlib.suppress(OSError):
                frames_dir.rmdir()  # (only if it is still empty)
    _clear_frames(frames_dir, keep=count)  # (an older, longer video's frames beyond this one's)
    data = {
        **want,
        "output": str(out),
        "frames": [records[n] for n in range(count)],
        "shots": shots_of(chunks),
        "chunks": len(chunks),
        "fps": clip.fps,
        "frame_count": count,
        "frames_painted_now": count - started,
        "timestamps": "kept from the input" if clip.path.is_file() else f"{clip.fps:g} fps",
        **{f"input_{k}": v for k, v in clip.info.items()},
        **(extra or {}),
        **({"retries": crew.retries} if getattr(crew, "retries", None) else {}),
        "seconds": round(time.perf_counter() - t_start, 3),
        "versions": versions(),
    }
    del data["chunk_plan"]
    data["chunk_plan"] = want["chunk_plan"]
    if not movie:
        return write_json(side, data, overwrite=True)
    video = encode(frames_dir, scan.times, out, clip.fps, clip.path if clip.audio else None)
    atomic_write_files({out: video, side: json_bytes(data)}, overwrite=overwrite)  # (both or neither)
    if not keep_frames:
        _clear_frames(frames_dir)
        with contextlib.suppress(OSError):
            frames_dir.rmdir()  # (only when nothing of anyone else's is in it)
    return side
