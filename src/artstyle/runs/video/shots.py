"""A clip's shots and chunks: where it cuts (PySceneDetect's content detector on the frames the run
paints), and the pieces of work a clip is painted in.

A shot is a run of frames between two cuts: across a cut the optical flow means nothing, so the
first frame of every shot is painted from its own start with the full plan, like a clip's first
frame. A shot longer than ``chunk_frames`` is cut into chunks of that many frames; a chunk is the
unit that goes to a worker (one Ray task, or the local loop), that is recorded when finished and
that a lost worker loses. How a chunk continues its shot (``join``):

- ``warp``: it starts from the previous chunk's last painted frame warped by the flow, as if there
  were no border; so it waits for that chunk (the shots of a clip still run side by side);
- ``crossfade``: it starts ``overlap`` frames early from its own start and those frames, painted by
  both chunks, are cross-faded from the one to the other; the chunks of a shot run side by side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from artstyle.errors import ArtstyleError


@dataclass(frozen=True)
class Chunk:
    """Frames ``start .. end-1`` of the clip, in shot ``shot``. ``lead``: frames before ``start``
    that it paints too (the crossfade's overlap, painted by the chunk before as well), so it paints
    ``start - lead .. end-1``. ``continues``: it is not its shot's first chunk."""

    index: int
    shot: int
    start: int
    end: int
    lead: int = 0
    continues: bool = False

    @property
    def first(self) -> int:
        """The first frame it paints."""
        return self.start - self.lead

    def to_list(self) -> list[int]:
        return [self.index, self.shot, self.start, self.end, self.lead, int(self.continues)]


def plan_chunks(
    count: int, cuts: list[int], chunk_frames: int, join: str = "warp", overlap: int = 0
) -> list[Chunk]:
    """The chunks of a clip of ``count`` frames whose shots begin at frame 0 and at each of
    ``cuts``; each shot is split into chunks of ``chunk_frames`` frames (the last one of a shot may
    be shorter; with ``crossfade``, one shorter than ``overlap`` frames joins the one before)."""
    if chunk_frames < 1:
        raise ArtstyleError("a chunk has at least one frame")
    starts = sorted({0, *(c for c in cuts if 0 < c < count)})
    bounds = list(zip(starts, [*starts[1:], count], strict=True)) if count else []
    chunks: list[Chunk] = []
    for shot, (s, e) in enumerate(bounds):
        edges = list(range(s, e, chunk_frames))
        if join == "crossfade" and len(edges) > 1 and e - edges[-1] < overlap:
            edges.pop()  # (a stub shorter than the overlap goes to the chunk before)
        for k, a in enumerate(edges):
            b = edges[k + 1] if k + 1 < len(edges) else e
            lead = min(overlap, a - s) if (join == "crossfade" and k) else 0
            chunks.append(Chunk(len(chunks), shot, a, b, lead, continues=k > 0))
    return chunks


def shots_of(chunks: list[Chunk]) -> list[list[int]]:
    """``[start, end]`` of each shot."""
    out: dict[int, list[int]] = {}
    for c in chunks:
        out.setdefault(c.shot, [c.start, c.end])[1] = c.end
    return [out[k] for k in sorted(out)]


class CutFinder:
    """Cuts between frames fed in order (:meth:`add`), by PySceneDetect's content detector (the
    change of hue, saturation and lightness between frames, with its flash filter and a shortest
    shot of ``min_frames``). ``threshold`` 0: no cuts (one shot)."""

    def __init__(self, threshold: float = 27.0, min_frames: int = 15) -> None:
        self.threshold = threshold
        self.detector = None
        self.cuts: list[int] = []
        self.n = 0
        if threshold > 0:
            try:
                from scenedetect import ContentDetector
            except ImportError:
                raise ArtstyleError(
                    'finding a clip\'s cuts needs PySceneDetect: pip install "artstyle[video]" '
                    "(or --cut-threshold 0: the clip as one shot)"
                ) from None
            self.detector = ContentDetector(threshold=threshold, min_scene_len=min_frames)

    def add(self, rgb: np.ndarray) -> None:
        """The next frame (H x W x 3 uint8, RGB)."""
        if self.detector is not None:
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            self.cuts += [int(c) for c in self.detector.process_frame(self.n, bgr)]
        self.n += 1

    def finish(self) -> list[int]:
        """The frames that begin a new shot (the first frame aside)."""
        if self.detector is not None and self.n:
            self.cuts += [int(c) for c in self.detector.post_process(self.n - 1)]
        return sorted({c for c in self.cuts if 0 < c < self.n})


def find_cuts(frames: Iterable[np.ndarray], threshold: float = 27.0, min_frames: int = 15) -> list[int]:
    finder = CutFinder(threshold, min_frames)
    for f in frames:
        finder.add(f)
    return finder.finish()
