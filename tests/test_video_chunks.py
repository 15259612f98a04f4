"""A clip's shots and chunks: the cut detector on a hard cut, the chunk plan, the first frame of
each shot painted afresh, resume by chunks, a plan of another input or other settings refused, and
the crossfade join; on tiny clips made with PyAV, with random weights."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from artstyle.config import StyleConfig, VideoOptions
from artstyle.errors import ArtstyleError
from artstyle.runs.video.run import stylize_video
from artstyle.runs.video.shots import Chunk, find_cuts, plan_chunks, shots_of
from tests.conftest import stripes_image

av = pytest.importorskip("av", reason='video needs the video extra: pip install "artstyle[video]"')
pytest.importorskip("scenedetect", reason='cuts need the video extra: pip install "artstyle[video]"')

_BASE = (
    Image.fromarray((np.random.default_rng(5).random((12, 24, 3)) * 255).astype(np.uint8))
    .resize((240, 120), Image.Resampling.BICUBIC)
    .filter(ImageFilter.GaussianBlur(3))
)

CFG = StyleConfig(size=48, scales=1, iterations=6, initial="content")
OPTS = VideoOptions(frame_iterations=3, min_shot=2, chunk_frames=4)


@pytest.fixture(autouse=True)
def _tiny(tiny_weights):
    yield


def shot_frame(i: int, shot: int) -> Image.Image:
    """Frame ``i`` of shot 0 (a pan over smooth colours, a yellow disc) or shot 1 (the colours
    turned and mirrored, a blue disc): a hard cut between them."""
    src = _BASE if shot == 0 else Image.fromarray(np.asarray(_BASE)[::-1, ::-1, [2, 0, 1]].copy())
    f = src.crop((2 * i, 0, 2 * i + 64, 48))
    ImageDraw.Draw(f).ellipse(
        (4 * i, 12, 4 * i + 16, 28), fill=(250, 250, 40) if shot == 0 else (40, 60, 240)
    )
    return f


def two_shots(n: int = 7, m: int = 7) -> list[Image.Image]:
    return [shot_frame(i, 0) for i in range(n)] + [shot_frame(i, 1) for i in range(m)]


def clip_mp4(path: Path, frames: list[Image.Image], fps: int = 12) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"crf": "10"}
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_image(f)):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def clip_folder(folder: Path, frames: list[Image.Image]) -> Path:
    folder.mkdir()
    for i, f in enumerate(frames):
        f.save(folder / f"{i:03d}.png")
    return folder


def test_the_detector_finds_the_hard_cut_and_only_it() -> None:
    assert find_cuts((np.asarray(f) for f in two_shots()), min_frames=2) == [7]
    assert find_cuts((np.asarray(f) for f in two_shots()), min_frames=8) == []  # (a shot too short)
    assert find_cuts((np.asarray(f) for f in two_shots()), threshold=0) == []  # (0: one shot)


def test_the_chunk_plan_splits_shots_and_long_shots() -> None:
    chunks = plan_chunks(20, [7], 4)
    assert [(c.shot, c.start, c.end, c.continues) for c in chunks] == [
        (0, 0, 4, False),
        (0, 4, 7, True),
        (1, 7, 11, False),
        (1, 11, 15, True),
        (1, 15, 19, True),
        (1, 19, 20, True),
    ]
    assert shots_of(chunks) == [[0, 7], [7, 20]]
    # a stub shorter than the overlap joins the chunk before; crossfade chunks lead by the overlap
    fade = plan_chunks(10, [], 4, "crossfade", overlap=3)
    assert [(c.start, c.end, c.lead) for c in fade] == [(0, 4, 0), (4, 10, 3)]
    assert fade[1].first == 1 and fade[1].to_list() == [1, 0, 4, 10, 3, 1]
    assert plan_chunks(3, [0, 3, 9], 10) == [Chunk(0, 0, 0, 3)]  # (cuts outside the clip ignored)
    with pytest.raises(ArtstyleError):
        plan_chunks(3, [], 0)


def test_an_mp4_with_a_cut_keeps_its_frames_order_and_timing_and_each_shot_starts_afresh(
    tmp_path: Path,
) -> None:
    src = clip_mp4(tmp_path / "in.mp4", two_shots())
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    out = tmp_path / "out.mp4"
    side = json.loads(stylize_video(src, [str(painting)], out, CFG, OPTS, progress=False).read_text())
    assert side["shots"] == [[0, 7], [7, 14]]
    assert [c[2:4] for c in side["chunk_plan"]] == [[0, 4], [4, 7], [7, 11], [11, 14]]
    frames = side["frames"]
    assert [f["frame"] for f in frames] == list(range(14))
    assert [f["time"] for f in frames] == pytest.approx([i / 12 for i in range(14)], abs=1e-3)
    # the first frame of each shot is painted from its own start (the full plan), the others warped
    fresh = [f["frame"] for f in frames if "reliable" not in f]
    assert fresh == [0, 7] and frames[7]["iterations"] == 6 and frames[8]["iterations"] == 3
    with av.open(str(out)) as got:
        vs = got.streams.video[0]
        times = [float(fr.time) for fr in got.decode(vs)]
        assert vs.average_rate == Fraction(12)
    assert len(times) == 14 and times == sorted(times)
    assert times[-1] - times[0] == pytest.approx(13 / 12, abs=1e-3)


def test_resume_keeps_finished_chunks_and_refuses_another_input_or_plan(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path / "clip", two_shots(7, 3))
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    out = tmp_path / "out"
    stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False)
    state = json.loads((out / "video.json").read_text())
    kept = {i: (out / f"frame_{i:05d}.png").read_bytes() for i in range(10)}
    # as if killed during chunk 2 (frames 4..6) after its first frame: chunks 0 (0..3) are done
    state["frames"] = state["frames"][:5]
    state["chunks_done"] = [0]
    (out / "video.json").write_text(json.dumps(state))
    for i in range(5, 10):
        (out / f"frame_{i:05d}.png").unlink()
    side = json.loads(stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False).read_text())
    assert side["frames_painted_now"] == 5 and len(side["frames"]) == 10
    assert all((out / f"frame_{i:05d}.png").read_bytes() == kept[i] for i in range(5))  # not redone
    # the same frames as the run that was not stopped (the chunk went on from its kept frame)
    for i in range(5, 10):
        a = np.asarray(Image.open(out / f"frame_{i:05d}.png"), np.float32)
        assert np.abs(a - np.asarray(Image.open(__import__("io").BytesIO(kept[i])), np.float32)).mean() < 0.5
    other_plan = VideoOptions(frame_iterations=3, min_shot=2, chunk_frames=5)
    with pytest.raises(ArtstyleError, match="holds frames made with other settings"):
        stylize_video(clip, [str(painting)], out, CFG, other_plan, progress=False)
    other_cuts = VideoOptions(frame_iterations=3, min_shot=2, chunk_frames=4, cut_threshold=90)
    with pytest.raises(ArtstyleError, match="holds frames made with other settings"):
        stylize_video(clip, [str(painting)], out, CFG, other_cuts, progress=False)
    shot_frame(1, 0).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(clip / "001.png")  # the input changed
    with pytest.raises(ArtstyleError, match="holds frames of another input; pass"):
        stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False)
    stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False, overwrite=True)
    assert (out / "frame_00001.png").read_bytes() != kept[1]


def test_crossfade_chunks_share_their_overlap(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path / "clip", [shot_frame(i, 0) for i in range(10)])
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    opts = VideoOptions(frame_iterations=3, chunk_frames=5, join="crossfade", chunk_overlap=2)
    side = json.loads(
        stylize_video(clip, [str(painting)], tmp_path / "o", CFG, opts, progress=False).read_text()
    )
    assert [c[2:5] for c in side["chunk_plan"]] == [[0, 5, 0], [5, 10, 2]]
    assert [f["frame"] for f in side["frames"] if f.get("crossfaded")] == [3, 4]
    assert "reliable" in side["frames"][5]  # (chunk 2 went on from its own overlap, warped)
    warp = VideoOptions(frame_iterations=3, chunk_frames=5)
    side2 = json.loads(
        stylize_video(clip, [str(painting)], tmp_path / "w", CFG, warp, progress=False).read_text()
    )
    assert not any(f.get("crossfaded") for f in side2["frames"]) and "reliable" in side2["frames"][5]
