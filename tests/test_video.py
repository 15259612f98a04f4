"""Video: flow and reliability, the temporal method against independent frames, mp4 and folder
output, resume, audio, odd sizes, and bad input, on tiny clips with random weights."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFilter

from artstyle.cli import main
from artstyle.config import StyleConfig, VideoOptions
from artstyle.errors import ArtstyleError
from artstyle.video import flow, reliability, stylize_video, warp
from tests.conftest import stripes_image

av = pytest.importorskip("av", reason='video needs the video extra: pip install "artstyle[video]"')
pytest.importorskip("cv2", reason='video needs the video extra: pip install "artstyle[video]"')

#: A background with structure at several scales (flow needs something to hold on to).
TEXTURE = (
    Image.fromarray((np.random.default_rng(3).random((60, 120, 3)) * 255).astype(np.uint8))
    .resize((240, 120), Image.Resampling.BICUBIC)
    .filter(ImageFilter.GaussianBlur(1.5))
    .crop((0, 0, 120, 60))
)

CFG = StyleConfig(size=48, scales=1, iterations=6, initial="content")
OPTS = VideoOptions(frame_iterations=4)


@pytest.fixture(autouse=True)
def _tiny(tiny_weights):
    yield


def scene(i: int, w: int = 64, h: int = 48) -> Image.Image:
    """A textured background panning right by 2 px a frame, a disc crossing it by 5 px a frame."""
    frame = TEXTURE.crop((2 * i, 0, 2 * i + w, h)).resize((w, h))
    ImageDraw.Draw(frame).ellipse((5 * i, 12, 5 * i + 20, 32), fill=(250, 250, 40))
    return frame


def clip_folder(tmp_path: Path, n: int = 5, size: tuple[int, int] = (64, 48)) -> Path:
    d = tmp_path / "clip"
    d.mkdir()
    for i in range(n):
        scene(i, *size).save(d / f"{i:03d}.png")
    return d


def clip_mp4(path: Path, n: int = 5, audio: bool = False, fps: int = 12) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=8000) if audio else None
        for i in range(n):
            for p in vs.encode(av.VideoFrame.from_image(scene(i))):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if a is not None:
            for k in range(8):
                t = np.arange(1024) + 1024 * k
                samples = (0.2 * np.sin(t / 8000 * 2 * np.pi * 440)).astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 8000, 1024 * k
                for p in a.encode(frame):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def test_flow_warp_and_reliability_see_the_motion_and_the_occlusion() -> None:
    a, b = scene(3), scene(4)
    back = flow(b, a)  # b(x) ~ a(x + back(x)): the background moved 2 px to the left
    c = reliability(back, flow(a, b))
    assert abs(np.median(back[..., 0][c > 0]) - 2.0) < 0.7
    warped = warp(np.asarray(a, np.float32), back)
    err = np.abs(warped - np.asarray(b, np.float32)).mean(2)
    assert err[c > 0].mean() < err.mean() + 1e-6 and err[c > 0].mean() < 12
    assert 0.3 < c.mean() < 1.0  # the disc's edges are not trusted


def test_folder_to_folder_records_every_frame_and_the_temporal_method_flickers_less(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path)
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    side = stylize_video(clip, [str(painting)], tmp_path / "out", CFG, OPTS, progress=False)
    data = json.loads(side.read_text())
    assert len(data["frames"]) == 5 and data["video"]["frame_iterations"] == 4
    assert sorted(p.name for p in (tmp_path / "out").glob("frame_*.png"))[-1] == "frame_00004.png"
    assert all("temporal_error" in f and "reliable" in f for f in data["frames"][1:])
    ind = VideoOptions(frame_iterations=4, independent=True)
    side2 = stylize_video(clip, [str(painting)], tmp_path / "ind", CFG, ind, progress=False)
    temporal = np.median([f["temporal_error"] for f in data["frames"][1:]])
    independent = np.median([f["temporal_error"] for f in json.loads(side2.read_text())["frames"][1:]])
    assert temporal * 2 < independent, (temporal, independent)


def test_mp4_keeps_the_frame_rate_and_the_audio_and_odd_sizes_are_handled(tmp_path: Path) -> None:
    src = clip_mp4(tmp_path / "in.mp4", audio=True)
    out = tmp_path / "out.mp4"
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    cfg = StyleConfig(size=47, scales=1, iterations=4, initial="content")  # an odd size
    stylize_video(src, [str(painting)], out, cfg, OPTS, progress=False)
    with av.open(str(out)) as got:
        vs = got.streams.video[0]
        assert vs.average_rate == Fraction(12) and vs.width % 2 == 0 and vs.height % 2 == 0
        assert len(got.streams.audio) == 1
        assert sum(1 for _ in got.decode(vs)) == 5
    assert (tmp_path / "out.mp4.json").exists()
    assert not (tmp_path / "out.mp4.frames").exists()  # (the frames go once the video is written)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path)
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    out = tmp_path / "out"
    stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False)
    state = json.loads((out / "video.json").read_text())
    kept = (out / "frame_00001.png").read_bytes()
    state["frames"] = state["frames"][:2]  # as if Ctrl-C came during frame 2
    (out / "video.json").write_text(json.dumps(state))
    for i in (2, 3, 4):
        (out / f"frame_{i:05d}.png").unlink()
    stylize_video(clip, [str(painting)], out, CFG, OPTS, progress=False)
    assert (out / "frame_00001.png").read_bytes() == kept  # not redone
    assert len(json.loads((out / "video.json").read_text())["frames"]) == 5
    assert (out / "frame_00004.png").exists()
    with pytest.raises(ArtstyleError, match="holds something else"):  # other settings: not mixed in
        stylize_video(clip, [str(painting)], out, CFG.replace(style_weight=3), OPTS, progress=False)


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_the_command_and_bad_input_are_one_clear_line(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path, n=2)
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    flags = ("--size", 48, "--scales", 1, "--iterations", 3, "--frame-iterations", 2, "-q")
    code, output = run("video", clip, painting, "-o", tmp_path / "v.mp4", *flags)
    assert code == 0, output
    text = tmp_path / "notavideo.mp4"
    text.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("mine")
    cases = [
        ((text, painting, "-o", tmp_path / "a.mp4"), "not a video file"),
        ((tmp_path / "missing.mp4", painting, "-o", tmp_path / "b.mp4"), "no such file"),
        ((empty, painting, "-o", tmp_path / "c"), "no image files"),
        ((clip, painting, "-o", tmp_path / "taken"), "holds something else"),
        ((clip, painting, "-o", tmp_path / "v.mp4"), "already exists"),
        ((clip, painting, "-o", tmp_path / "x.avi"), "an .mp4 file or a folder"),
        ((clip, painting, "-o", tmp_path / "d", "--temporal-weight", -1), "--temporal-weight"),
    ]
    for args, message in cases:
        code, output = run("video", *args, *flags)
        lines = [x for x in output.splitlines() if x.strip()]
        assert code != 0 and message in output and len(lines) == 1 and "Traceback" not in output, output
    assert (tmp_path / "taken" / "mine.txt").read_text() == "mine"
    assert not (tmp_path / "c").exists()


def test_a_video_without_frames_or_cut_short_is_one_line(tmp_path: Path) -> None:
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as out:  # audio only: no video stream, no frames
        a = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for p in [*a.encode(frame), *a.encode()]:
            out.mux(p)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip_mp4(tmp_path / "whole.mp4").read_bytes()[:300])
    for src, message in ((sound, "no video stream"), (cut, r"not a video|no frames|cannot decode")):
        with pytest.raises(ArtstyleError, match=message):
            stylize_video(src, [str(painting)], tmp_path / "o", CFG, OPTS, progress=False)
        assert not (tmp_path / "o").exists()


def test_a_one_frame_video_works(tmp_path: Path) -> None:
    src = clip_mp4(tmp_path / "one.mp4", n=1)
    painting = tmp_path / "p.png"
    stripes_image().save(painting)
    side = stylize_video(src, [str(painting)], tmp_path / "o.mp4", CFG, OPTS, progress=False, keep_frames=True)
    assert len(json.loads(side.read_text())["frames"]) == 1
    Image.open(tmp_path / "o.mp4.frames" / "frame_00000.png").verify()  # (kept, as asked)
