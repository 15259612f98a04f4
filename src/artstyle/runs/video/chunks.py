"""One chunk of a clip painted frame after frame (:class:`FramePainter`), the same code here and
on a Ray actor, so a local run and a Ray run paint the same frames.

The first frame of a chunk that begins a shot is painted from its own start with the full plan;
every later frame starts from the previous painted frame warped by the optical flow and is held to
it by the temporal term where the flow is reliable (Ruder et al. 2016; :mod:`artstyle.runs.video`).
The flow for the next frame is computed on a second thread while the current frame is painted
(OpenCV leaves Python's lock while it works).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from artstyle.config import VideoOptions
from artstyle.engine.objective import Term
from artstyle.engine.plan import Plan
from artstyle.engine.stylizer import Stylizer
from artstyle.images.encode import encode_image
from artstyle.images.geometry import to_tensor
from artstyle.model.losses import TemporalLoss
from artstyle.runs.video.flow import flow, reliability, temporal_error, warp


@dataclass
class Painted:
    """A painted frame: its number in the clip, its PNG bytes and what its record says."""

    index: int
    png: bytes
    record: dict[str, Any] = field(default_factory=dict)

    def image(self) -> Image.Image:
        with Image.open(io.BytesIO(self.png)) as im:
            return im.convert("RGB")


def frame_png(image: Image.Image) -> bytes:
    return encode_image(image, "frame.png")


def motion(frame: Image.Image, prev: Image.Image, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The flow from ``frame`` back to ``prev`` and where it is reliable."""
    back = flow(frame, prev, method)
    return back, reliability(back, flow(prev, frame, method))


class FramePainter:
    """Paints a clip's frames of size ``size`` in the style of ``stylizer``'s paintings, with the
    video's options: the first frame of a shot with ``first`` (the full plan, or
    ``first_iterations``), each later one from the previous one warped, with ``frame_iterations``
    at full size (or on its own with ``independent``)."""

    def __init__(
        self, stylizer: Stylizer, opts: VideoOptions, size: tuple[int, int], masks: list[Any] | None = None
    ) -> None:
        self.stylizer, self.opts, self.size, self.masks = stylizer, opts, size, masks
        self.later = (
            stylizer
            if opts.independent
            else stylizer.derive(scales=1, iterations=opts.frame_iterations, level_iterations=())
        )
        self.first = (
            stylizer if not opts.first_iterations else stylizer.derive(iterations=opts.first_iterations)
        )
        who = {stylizer, self.first, self.later}
        self.plans: dict[int, Plan] = {id(s): s.plan(size, masks is not None) for s in who}

    def paint(
        self,
        frames: list[Image.Image],
        first: int,
        before: tuple[Image.Image, Image.Image] | None = None,
        check: Callable[[], None] = lambda: None,
    ) -> Iterator[Painted]:
        """Frames ``first, first+1, ...`` (``frames``, each at :attr:`size`), in order. ``before``:
        the input and the painted frame just before ``first`` (a chunk that continues its shot, or
        a run resumed inside one); without it the first frame is painted from its own start.
        ``check`` is called after every iteration (it raises to stop)."""
        opts = self.opts
        prev_in, prev_out = before if before is not None else (None, None)
        with ThreadPoolExecutor(1, thread_name_prefix="artstyle-flow") as pool:
            ahead: Future[tuple[np.ndarray, np.ndarray]] | None = None
            if prev_in is not None and frames:
                ahead = pool.submit(motion, frames[0], prev_in, opts.flow)
            for i, frame in enumerate(frames):
                t0 = time.perf_counter()
                moved = ahead.result() if ahead is not None else None
                # the next frame's flow is made while this one is painted
                ahead = pool.submit(motion, frames[i + 1], frame, opts.flow) if i + 1 < len(frames) else None
                record: dict[str, Any] = {"frame": first + i}
                if prev_out is None or moved is None or opts.independent:
                    who = self.first if prev_out is None else self.stylizer
                    result = who.stylize(
                        frame, callback=lambda s: check(), masks=self.masks, plan=self.plans.get(id(who))
                    )
                else:
                    back, c = moved
                    warped = warp(np.asarray(prev_out, np.float32), back)
                    # where the flow is not trusted (what the moving thing uncovers) the previous
                    # frame would leave a ghost: start there from this frame's own start instead
                    own = np.asarray(self.stylizer.start_image(frame), np.float32)
                    mixed = warped * c[..., None] + own * (1 - c[..., None])
                    start = Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
                    result = self.later.stylize(
                        frame,
                        initial=start,
                        callback=lambda s: check(),
                        masks=self.masks,
                        terms=temporal_terms(warped, c, opts.temporal_weight, self.stylizer.device),
                        plan=self.plans[id(self.later)],
                    )
                    record["reliable"] = round(float(c.mean()), 4)
                if result.interrupted:
                    raise KeyboardInterrupt
                image = result.image
                if image.size != self.size:
                    image = image.resize(self.size, Image.Resampling.LANCZOS)
                if moved is not None and prev_out is not None:  # (independent frames: measured too)
                    record["temporal_error"] = round(temporal_error(image, prev_out, *moved), 3)
                png = frame_png(image)
                record.update(
                    sha256=hashlib.sha256(png).hexdigest(),
                    seconds=round(time.perf_counter() - t0, 3),
                    iterations=len(result.history),
                    losses=result.history[-1] if result.history else {},
                )
                yield Painted(first + i, png, record)
                prev_in, prev_out = frame, image


def temporal_terms(warped: np.ndarray, c: np.ndarray, weight: float, device: torch.device) -> Any:
    """The temporal term towards ``warped`` where ``c`` trusts it (None at weight 0)."""
    if weight <= 0:
        return None
    w = to_tensor(Image.fromarray(np.clip(warped + 0.5, 0, 255).astype(np.uint8)), device)
    ct = torch.from_numpy(c)[None, None].to(device)

    def terms(size: tuple[int, int]) -> list[Term]:
        assert size == (w.shape[-1], w.shape[-2]), (size, w.shape)
        return [Term("temporal", weight, TemporalLoss(w, ct))]

    return terms


def crossfade(old: Image.Image, new: Image.Image, k: int, overlap: int) -> Image.Image:
    """Frame ``k`` (0-based) of an overlap of ``overlap`` frames: from the chunk before's painting
    towards this chunk's, linearly."""
    return Image.blend(old, new, (k + 1) / (overlap + 1))
