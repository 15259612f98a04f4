"""Frames in and out: a clip or a folder of frames opened upright, at its sample aspect ratio and
with its presentation times (PyAV, whose wheel carries FFmpeg); frames encoded into an .mp4 with
the input's timing and audio, atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

from artstyle.errors import ArtstyleError
from artstyle.files import (
    check_regular_file,
)
from artstyle.images.decode import image_files, load_image
from artstyle.log import to_terminal
from artstyle.runs.video import libs

FRAME = "frame_{:05d}.png"


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
    """The image files of a frame folder in natural order (hidden files are not frames)."""
    return sorted(image_files(folder), key=natural_key)


def open_clip(path: str | os.PathLike[str], fps: float, need: int | None = None) -> Clip:
    """A video file or a folder of frames (in natural order, timed at ``fps``; each frame decoded
    no larger than ``need``, the longest side the run uses). A file's frames are turned upright by
    its display rotation (a phone's portrait clip), stretched to its sample aspect ratio, and keep
    their presentation times (a phone's variable frame rate). Bad input is one ArtstyleError."""
    p = Path(path)
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise ArtstyleError(f"{p}: no image files in this folder")
        timed = ((load_image(f, need), n / fps) for n, f in enumerate(files))
        return Clip(timed, fps, len(files), False, p)
    av, _ = libs()
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


def even(size: tuple[int, int]) -> tuple[int, int]:
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
    av, _ = libs()
    first = Image.open(frames_dir / FRAME.format(0))
    w, h = even(first.size)
    # (named for its output and this process: a re-run knows its own temporary, left by a kill)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{TEMP_PREFIX}{out.name}.{os.getpid()}.", suffix=".mp4", dir=out.parent
    )
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
                    to_terminal(f"artstyle: the audio of {audio_from} cannot go into an .mp4 as is; left out")
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


def clear_stale_temps(folder: Path, out: Path | None = None) -> None:
    """Remove encode temporaries a killed run left in ``folder``: those of ``out`` whose process is
    gone (a re-run of a run killed during its encode), and any unchanged for STALE_S seconds."""
    now = time.time()
    for p in folder.glob(f"{TEMP_PREFIX}*.mp4"):
        owner, _, pid = p.name[len(TEMP_PREFIX) : -len(".mp4")].rpartition(".")[0].rpartition(".")
        with contextlib.suppress(OSError):
            if (
                out is not None and owner == out.name and not _alive(pid)
            ) or now - p.stat().st_mtime > STALE_S:
                p.unlink()


def _alive(pid: str) -> bool:
    """Whether process ``pid`` still runs (a temporary of a live run is left alone)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # (it exists, as another user's)
    return True
