"""A clip painted frame after frame (:func:`stylize_video`): each frame after the first starts from
the previous painted frame warped by the flow and is held to it by the temporal term. Frames are
written as they finish, with a progress record, so Ctrl-C keeps them and the same command resumes;
the video is encoded once at the end."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from artstyle.config import StyleConfig, VideoOptions
from artstyle.engine.objective import Term
from artstyle.engine.plan import Plan
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
from artstyle.images.encode import encode_image
from artstyle.images.geometry import fit_long_side, to_tensor
from artstyle.model.losses import TemporalLoss
from artstyle.runs.console import Interrupts
from artstyle.runs.record import json_bytes, versions, write_json
from artstyle.runs.video.containers import FRAME, clear_stale_temps, encode, even, open_clip
from artstyle.runs.video.flow import flow, reliability, temporal_error, warp

STATE = "video.json"


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
) -> Path:
    """Stylise every frame of ``source`` into ``out`` (an .mp4 or a folder of PNG frames); resumes
    a run stopped earlier with the same settings. Returns the sidecar's path.

    The frames of an .mp4 are made in ``OUT.mp4.frames/`` (kept while the run is unfinished, so
    that the same command resumes) and removed once the video and its sidecar are written, unless
    ``keep_frames``. No output ever replaces or lies inside one of the run's inputs."""
    opts.check()
    cfg = cfg.replace(size=cfg.size - cfg.size % 2)  # (H.264 wants even sides; frames are made so)
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
    state_path = frames_dir / STATE
    want = _state(cfg, opts, Path(source), styles)
    records: list[dict[str, Any]] = []
    fresh = False
    if frames_dir.exists():
        if not frames_dir.is_dir():
            raise ArtstyleError(f"{frames_dir}: exists and is not a folder")
        try:
            old = json.loads(state_path.read_text()) if state_path.exists() else None
        except (OSError, ValueError, RecursionError):
            old = None
        if isinstance(old, dict) and {k: old.get(k) for k in want} == want:
            records = [r for r in old.get("frames", []) if isinstance(r, dict)]  # the same job: resume
        elif any(frames_dir.iterdir()) and not overwrite:
            raise ArtstyleError(
                f"{frames_dir}: exists and holds something else; pass {setting('overwrite')} to replace "
                "its frames, or choose another output"
            )
        else:
            fresh = True
    clip = open_clip(source, opts.fps, cfg.size)  # (after the checks: nothing decoded for a refused run)
    made = not frames_dir.exists()  # (a run refused before its first frame leaves no folder behind)
    frames_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        _clear_frames(frames_dir)  # (--overwrite: exactly this video's frames, nothing of the old one)
    stylizer = Stylizer(styles, cfg)
    later = (
        stylizer
        if opts.independent
        else stylizer.derive(scales=1, iterations=opts.frame_iterations, level_iterations=())
    )
    first = stylizer if not opts.first_iterations else stylizer.derive(iterations=opts.first_iterations)
    bar = tqdm(
        total=clip.count or None, unit="frame", disable=not progress, desc=out.name, dynamic_ncols=True
    )
    interrupts = Interrupts()
    plans: dict[int, Plan] = {}

    def plan_of(who: Stylizer) -> Plan:
        """Each stylizer's plan for the clip's frame size, made once (every frame has that size)."""
        if id(who) not in plans:
            assert size is not None
            plans[id(who)] = who.plan(size, masks is not None)
        return plans[id(who)]

    prev_in: Image.Image | None = None
    prev_out: Image.Image | None = None
    size: tuple[int, int] | None = None
    times: list[float] = []
    n = -1
    t_start = time.perf_counter()
    try:
        with interrupts.installed():
            for n, (frame, t) in enumerate(clip.frames):
                if size is None:  # every frame at the first one's size (a folder may mix sizes)
                    size = even(fit_long_side(frame.size, cfg.size))
                resized = frame.size != size and even(fit_long_side(frame.size, cfg.size)) != size
                frame = frame.resize(size, Image.Resampling.LANCZOS)
                times.append(t)
                path = frames_dir / FRAME.format(n)
                if n < len(records):  # finished before: resume after it, if it is still sound
                    kept = _kept_frame(path, records[n], size)
                    if kept is not None:
                        prev_in, prev_out = frame, kept
                        bar.update(1)
                        continue
                    tqdm.write(f"artstyle: {path.name} is not the frame that was made; making it again")
                    records = records[:n]
                t0 = time.perf_counter()
                record: dict[str, Any] = {"frame": n, "time": round(t, 6)}
                if resized:
                    record["resized_from_another_size"] = True
                if prev_out is None or opts.independent:
                    who = first if n == 0 else stylizer
                    result = who.stylize(
                        frame, callback=lambda s: interrupts.check(), masks=masks, plan=plan_of(who)
                    )
                    back = c = None
                else:
                    back = flow(frame, prev_in, opts.flow)
                    c = reliability(back, flow(prev_in, frame, opts.flow))
                    warped = warp(np.asarray(prev_out, np.float32), back)
                    # where the flow is not trusted (what the moving thing uncovers) the previous
                    # frame would leave a ghost: start there from this frame's own start instead
                    own = np.asarray(stylizer.start_image(frame), np.float32)
                    mixed = warped * c[..., None] + own * (1 - c[..., None])
                    start = Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
                    terms = _temporal_terms(warped, c, opts.temporal_weight, stylizer.device)
                    result = later.stylize(
                        frame,
                        initial=start,
                        callback=lambda s: interrupts.check(),
                        masks=masks,
                        terms=terms,
                        plan=plan_of(later),
                    )
                    record["reliable"] = round(float(c.mean()), 4)
                if result.interrupted:
                    raise KeyboardInterrupt
                image = result.image
                if image.size != size:
                    image = image.resize(size, Image.Resampling.LANCZOS)
                png = encode_image(image, path)
                atomic_write_bytes(path, png, overwrite=True)
                if back is None and prev_out is not None:  # independent: measure the flicker anyway
                    back = flow(frame, prev_in, opts.flow)
                    c = reliability(back, flow(prev_in, frame, opts.flow))
                if back is not None and c is not None and prev_out is not None:
                    record["temporal_error"] = round(temporal_error(image, prev_out, back, c), 3)
                record.update(
                    sha256=hashlib.sha256(png).hexdigest(),
                    seconds=round(time.perf_counter() - t0, 3),
                    iterations=len(result.history),
                    losses=result.history[-1] if result.history else {},
                )
                records = [*records[:n], record]
                _save_state(state_path, want, records)
                prev_in, prev_out = frame, image
                bar.update(1)
                done = [r["seconds"] for r in records if "seconds" in r]
                bar.set_postfix_str(f"{sum(done) / len(done):.1f} s/frame", refresh=False)
    except KeyboardInterrupt:
        bar.close()
        tqdm.write(f"artstyle: {len(records)} frames are kept in {frames_dir}; the same command resumes")
        raise
    finally:
        bar.close()
        if made and not records:
            with contextlib.suppress(OSError):
                frames_dir.rmdir()  # (only if it is still empty)
    count = n + 1
    if count == 0:
        with contextlib.suppress(OSError):
            frames_dir.rmdir()  # (only if we made it and it is empty)
        raise ArtstyleError(f"{source}: the video has no frames")
    _clear_frames(frames_dir, keep=count)  # (an older, longer video's frames beyond this one's)
    data = {
        **want,
        "output": str(out),
        "frames": records[:count],
        "fps": clip.fps,
        "frame_count": count,
        "timestamps": "kept from the input" if clip.path.is_file() else f"{clip.fps:g} fps",
        **{f"input_{k}": v for k, v in clip.info.items()},
        "seconds": round(time.perf_counter() - t_start, 3),
        "versions": versions(),
    }
    if not movie:
        return write_json(side, data, overwrite=True)
    movie = encode(frames_dir, times, out, clip.fps, clip.path if clip.audio else None)
    atomic_write_files({out: movie, side: json_bytes(data)}, overwrite=overwrite)  # (both or neither)
    if not keep_frames:
        _clear_frames(frames_dir)
        with contextlib.suppress(OSError):
            frames_dir.rmdir()  # (only when nothing of anyone else's is in it)
    return side


def _temporal_terms(warped: np.ndarray, c: np.ndarray, weight: float, device: torch.device) -> Any:
    if weight <= 0:
        return None
    w = to_tensor(Image.fromarray(np.clip(warped + 0.5, 0, 255).astype(np.uint8)), device)
    ct = torch.from_numpy(c)[None, None].to(device)

    def terms(size: tuple[int, int]) -> list[Term]:
        assert size == (w.shape[-1], w.shape[-2]), (size, w.shape)
        return [Term("temporal", weight, TemporalLoss(w, ct))]

    return terms


def _save_state(path: Path, want: dict[str, Any], records: list[dict[str, Any]]) -> None:
    write_json(path, {**want, "frames": records}, overwrite=True)
