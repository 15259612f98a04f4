"""Video without flicker (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos").

Stylising each frame on its own flickers: every frame finds a different local optimum. Here each
frame after the first starts from the previous stylised frame warped by optical flow, and a
temporal term keeps it close to that warped frame where the flow is reliable:

``L_temporal = sum_x c(x) (x_t(x) - w(x))^2 / sum_x c(x) w(x)^2``

with ``w`` the previous output warped onto frame t and ``c`` the reliability: 0 where the forward
and backward flows disagree (occlusions, ``|b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``)
and at motion boundaries (``|grad b|^2 > 0.01 |b|^2 + 0.002``), 1 elsewhere; it is normalised like
the other relative terms (1 at an all-black image). Flow is OpenCV's DIS (or Farneback) on the input
frames; decoding and encoding are PyAV's (its wheel carries FFmpeg). Both are the ``video`` extra.

Frames are written as they finish into a folder (the output folder, or ``OUT.frames/`` beside an
``.mp4``), with a progress record, so Ctrl-C keeps them and the same command resumes; the video is
encoded at the end, atomically, with the input's frame rate and audio.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from artstyle.config import StyleConfig, VideoOptions
from artstyle.console import Interrupts
from artstyle.errors import ArtstyleError
from artstyle.files import (
    OutputExistsError,
    atomic_write_bytes,
    atomic_write_files,
    check_name,
    check_not_input,
    check_regular_file,
)
from artstyle.images import encode_image, fit_long_side, image_files, load_image, to_tensor
from artstyle.objective import Term
from artstyle.record import json_bytes, versions, write_json
from artstyle.stylizer import Stylizer

FRAME = "frame_{:05d}.png"
STATE = "video.json"


def _libs() -> tuple[Any, Any]:
    try:
        import av
        import cv2
    except ImportError:
        raise ArtstyleError('video needs the video extra: pip install "artstyle[video]"') from None
    return av, cv2


# ---- flow and warping ---------------------------------------------------------------------------


def _gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.uint8)


def flow(a: Image.Image, b: Image.Image, method: str = "dis") -> np.ndarray:
    """Flow from ``a`` to ``b`` (H x W x 2, pixels): ``a(x) ~ b(x + flow(x))``."""
    _, cv2 = _libs()
    ga, gb = _gray(a), _gray(b)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 21, 5, 7, 1.5, 0)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(ga, gb, None)


def warp(image: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``image`` (of frame t-1, H x W x C float) warped onto frame t by the flow ``back`` (t -> t-1)."""
    _, cv2 = _libs()
    h, w = back.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + back[..., 0], gy + back[..., 1]
    return cv2.remap(image.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliability(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Ruder et al.'s c: 1 where the backward flow (t -> t-1) is trusted, 0 at occlusions
    (forward-backward disagreement) and motion boundaries. H x W float32."""
    fb = warp(fwd, back)  # f(x + b(x))
    disagree = ((back + fb) ** 2).sum(2) > 0.01 * ((back**2).sum(2) + (fb**2).sum(2)) + 0.5
    gy_u, gx_u = np.gradient(back[..., 0])
    gy_v, gx_v = np.gradient(back[..., 1])
    boundary = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2 > 0.01 * (back**2).sum(2) + 0.002
    return (~(disagree | boundary)).astype(np.float32)


def temporal_error(out: Image.Image, previous_out: Image.Image, back: np.ndarray, c: np.ndarray) -> float:
    """Mean squared difference (0-255 units) between a frame and the previous output warped onto it,
    over the reliable pixels: the flicker measure."""
    warped = warp(np.asarray(previous_out, np.float32), back)
    d = ((np.asarray(out, np.float32) - warped) ** 2).mean(2)
    return float((d * c).sum() / max(c.sum(), 1.0))


class TemporalLoss(torch.nn.Module):
    """``sum c (x - w)^2 / sum c w^2`` over the pixels (see the module)."""

    def __init__(self, warped: torch.Tensor, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("warped", warped)
        self.register_buffer("c", c)
        self.norm = float((c * warped**2).sum().clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.c * (x - self.warped) ** 2).sum() / self.norm


# ---- frames in and out --------------------------------------------------------------------------


@dataclass
class Clip:
    """A video's frames, each upright and at its display aspect, with its presentation time (s)."""

    frames: Iterator[tuple[Image.Image, float]]
    fps: float
    count: int  # 0 when the container does not say
    audio: bool
    path: Path
    info: dict[str, Any] = field(default_factory=dict)  # what was done to the frames (rotation, aspect)


#: A display rotation (degrees counterclockwise, FFmpeg's display matrix) -> the transpose that
#: shows the picture upright.
_UPRIGHT = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def natural_key(p: Path) -> list[Any]:
    """``frame_2`` before ``frame_10``: the numbers in a name compared as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in natural order; hidden files (``._*`` of macOS,
    dotfiles) are not frames."""
    return sorted((f for f in image_files(folder) if not f.name.startswith(".")), key=natural_key)


def open_clip(path: str | os.PathLike[str], fps: float) -> Clip:
    """A video file or a folder of frames (in natural order, timed at ``fps``). A file's frames
    are turned upright by its display rotation (a phone's portrait clip), stretched to its sample
    aspect ratio, and keep their presentation times (a phone's variable frame rate). Bad input is
    one ArtstyleError."""
    p = Path(path)
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise ArtstyleError(f"{p}: no image files in this folder")
        timed = ((load_image(f), n / fps) for n, f in enumerate(files))
        return Clip(timed, fps, len(files), False, p)
    av, _ = _libs()
    check_regular_file(p, "video")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise ArtstyleError(f"{p}: not a video file PyAV can read ({type(e).__name__})") from None
    if not container.streams.video:
        container.close()
        raise ArtstyleError(f"{p}: has no video stream")
    stream = container.streams.video[0]
    if not stream.codec_context or not stream.width or not stream.height:
        container.close()
        raise ArtstyleError(f"{p}: the video stream has no frame size (zero-size or unreadable codec)")
    rate = float(stream.average_rate or stream.guessed_rate or fps)
    sar = stream.sample_aspect_ratio
    aspect = float(sar) if sar and float(sar) > 0 else 1.0
    info: dict[str, Any] = {"sample_aspect_ratio": round(aspect, 4)}

    def frames() -> Iterator[tuple[Image.Image, float]]:
        t0 = None
        try:
            for n, frame in enumerate(container.decode(stream)):
                im = frame.to_image().convert("RGB")
                if abs(aspect - 1) > 1e-3:  # anamorphic: square pixels at the display aspect
                    im = im.resize((max(2, round(im.width * aspect)), im.height), Image.Resampling.LANCZOS)
                turn = round(float(frame.rotation or 0)) % 360
                info.setdefault("rotation", turn)
                if turn in _UPRIGHT:
                    im = im.transpose(_UPRIGHT[turn])
                t = float(frame.time) if frame.time is not None else n / rate
                t0 = t if t0 is None else t0
                yield im, t - t0
        except av.error.FFmpegError as e:
            raise ArtstyleError(f"{p}: cannot decode the video ({e})") from None
        finally:
            container.close()

    return Clip(frames(), rate, int(stream.frames or 0), bool(container.streams.audio), p, info)


def _even(size: tuple[int, int]) -> tuple[int, int]:
    """H.264 in yuv420p needs even sides."""
    return (max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2))


#: Temporary files of an encode: ``.artstyle-video-*.mp4`` beside the output; one left by a killed
#: run (not written to for STALE_S seconds) is removed by the next run.
TEMP_PREFIX = ".artstyle-video-"
STALE_S = 300.0
#: The output's time base: fine enough for any frame rate's timestamps.
TIME_BASE = Fraction(1, 90000)


def encode(frames_dir: Path, times: list[float], out: Path, fps: float, audio_from: Path | None) -> bytes:
    """Frames ``0 .. len(times)-1`` of ``frames_dir`` as the bytes of an H.264 .mp4, each at its
    presentation time (``times``, seconds: a variable frame rate stays variable, and audio stays in
    sync), made in a temporary file beside ``out`` that is removed whatever happens; the audio of
    ``audio_from`` is copied when the container takes it (else left out with a note)."""
    av, _ = _libs()
    first = Image.open(frames_dir / FRAME.format(0))
    w, h = _even(first.size)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".mp4", dir=out.parent)
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as dst:
            vs = dst.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.codec_context.time_base = vs.time_base = TIME_BASE
            vs.options = {"crf": "18", "preset": "medium"}
            src = av.open(str(audio_from)) if audio_from else None
            a_in = src.streams.audio[0] if src and src.streams.audio else None
            a_out = None
            if a_in is not None:
                try:
                    a_out = dst.add_stream_from_template(a_in)
                except (ValueError, av.error.FFmpegError):
                    tqdm.write(f"artstyle: the audio of {audio_from} cannot go into an .mp4 as is; left out")
            last = -1
            for i, t in enumerate(times):
                im = Image.open(frames_dir / FRAME.format(i)).convert("RGB").crop((0, 0, w, h))
                frame = av.VideoFrame.from_image(im)
                pts = max(last + 1, round(t / TIME_BASE))  # (strictly increasing)
                frame.pts, frame.time_base, last = pts, TIME_BASE, pts
                for packet in vs.encode(frame):
                    dst.mux(packet)
            for packet in vs.encode():
                dst.mux(packet)
            if a_in is not None and a_out is not None and src is not None:
                for packet in src.demux(a_in):
                    if packet.dts is None:
                        continue
                    packet.stream = a_out
                    dst.mux(packet)
            if src:
                src.close()
        return Path(tmp).read_bytes()
    except (OSError, av.error.FFmpegError) as e:
        raise ArtstyleError(f"{out}: cannot encode the video ({getattr(e, 'strerror', None) or e})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def clear_stale_temps(folder: Path) -> None:
    """Remove encode temporaries a killed run left in ``folder`` (unchanged for STALE_S seconds)."""
    now = time.time()
    for p in folder.glob(f"{TEMP_PREFIX}*.mp4"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > STALE_S:
                p.unlink()


# ---- the run ------------------------------------------------------------------------------------


def _frames_dir(out: Path) -> Path:
    return out if out.suffix.lower() != ".mp4" else out.with_name(out.name + ".frames")


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
    try:
        fd, probe = tempfile.mkstemp(prefix=".artstyle-", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ArtstyleError(f"{parent}: cannot write here ({e.strerror or e})") from None


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
    if out.suffix and out.suffix.lower() != ".mp4":
        raise ArtstyleError(f"{out}: the output is an .mp4 file or a folder (no suffix)")
    check_name(out, beside=".frames" if out.suffix else "")
    frames_dir = _frames_dir(out)
    side = out.with_name(out.name + ".json") if out.suffix else frames_dir / STATE
    inputs = [Path(source), *map(Path, styles)]
    _check_outputs([out, side, frames_dir] if out.suffix else [frames_dir], inputs)
    for q in (out, side) if out.suffix and not overwrite else ():
        if q.exists() or q.is_symlink():
            raise OutputExistsError(q)
    if out.suffix and out.is_dir():
        raise ArtstyleError(f"{out}: is a folder; an .mp4 output is a file")
    _check_folder(frames_dir if frames_dir.is_dir() else frames_dir.parent)
    if out.suffix:
        clear_stale_temps(out.parent)
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
                f"{frames_dir}: exists and holds something else; pass --overwrite to replace its frames, "
                "or choose another output"
            )
        else:
            fresh = True
    clip = open_clip(source, opts.fps)  # (after the checks: nothing is decoded for a refused run)
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
                    size = _even(fit_long_side(frame.size, cfg.size))
                resized = frame.size != size and _even(fit_long_side(frame.size, cfg.size)) != size
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
                    result = (first if n == 0 else stylizer).stylize(
                        frame, callback=lambda s: interrupts.check(), masks=masks
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
                        frame, initial=start, callback=lambda s: interrupts.check(), masks=masks, terms=terms
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
    if not out.suffix:
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
