"""Video: flow and reliability, the temporal method against independent frames, mp4 and folder
output, resume, audio, odd sizes, and bad input, on tiny clips with random weights."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFilter

from artstyle.apps.cli import main
from artstyle.config import StyleConfig, VideoOptions
from artstyle.errors import ArtstyleError
from artstyle.runs.video.flow import flow, reliability, warp
from artstyle.runs.video.run import stylize_video
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
    # other settings: not mixed in
    with pytest.raises(ArtstyleError, match="holds frames made with other settings"):
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
    side = stylize_video(
        src, [str(painting)], tmp_path / "o.mp4", CFG, OPTS, progress=False, keep_frames=True
    )
    assert len(json.loads(side.read_text())["frames"]) == 1
    Image.open(tmp_path / "o.mp4.frames" / "frame_00000.png").verify()  # (kept, as asked)


# ---- video from real phones (issue 21) --------------------------------------------------------------


def _painting(tmp_path: Path) -> str:
    p = tmp_path / "p.png"
    stripes_image().save(p)
    return str(p)


def _decoded(path: Path) -> list[tuple[float, int, int]]:
    with av.open(str(path)) as got:
        return [(round(f.time, 3), f.width, f.height) for f in got.decode(got.streams.video[0])]


def test_a_phone_s_portrait_clip_comes_out_upright(tmp_path: Path) -> None:
    src = tmp_path / "portrait.mp4"
    with av.open(str(src), "w") as out:  # stored landscape, shown portrait (display matrix)
        vs = out.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.set_display_rotation(90)
        for i in range(3):
            for p in vs.encode(av.VideoFrame.from_image(scene(i))):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    side = stylize_video(src, [_painting(tmp_path)], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    frames = _decoded(tmp_path / "o.mp4")
    assert len(frames) == 3 and all(h > w for _, w, h in frames), frames  # upright: portrait
    assert (frames[0][1], frames[0][2]) == (36, 48)
    assert json.loads(side.read_text())["input_rotation"] == 90


def test_frame_timing_is_kept_for_a_variable_frame_rate(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mkv"
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.5]
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            f = av.VideoFrame.from_image(scene(i))
            f.pts, f.time_base = round(t * 1000), Fraction(1, 1000)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    stylize_video(src, [_painting(tmp_path)], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    assert [t for t, _, _ in _decoded(tmp_path / "o.mp4")] == times  # 1.5 s in, 1.5 s out


def test_an_anamorphic_clip_is_shown_at_its_display_aspect(tmp_path: Path) -> None:
    src = tmp_path / "sar.mp4"
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = 32, 48, "yuv420p"
        vs.codec_context.sample_aspect_ratio = Fraction(2, 1)  # 32 stored pixels show as 64
        for i in range(2):
            for p in vs.encode(av.VideoFrame.from_image(scene(i, 32, 48))):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    side = stylize_video(src, [_painting(tmp_path)], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    assert {(w, h) for _, w, h in _decoded(tmp_path / "o.mp4")} == {(48, 36)}  # 64x48 shown, at 48 px
    assert json.loads(side.read_text())["input_sample_aspect_ratio"] == 2.0


def test_a_frame_folder_is_read_in_natural_order_without_hidden_files_and_mixed_sizes_fit(
    tmp_path: Path,
) -> None:
    d = tmp_path / "frames"
    d.mkdir()
    for i in (1, 2, 3, 10):
        scene(i).save(d / f"frame_{i}.png")
    scene(20, 80, 40).save(d / "frame_11.png")  # another size
    (d / "._frame_1.png").write_bytes(b"macOS resource fork")
    (d / ".hidden.png").write_bytes(b"not a frame")
    side = stylize_video(d, [_painting(tmp_path)], tmp_path / "out", CFG, OPTS, progress=False)
    data = json.loads(side.read_text())
    assert data["frame_count"] == 5
    sizes = {Image.open(tmp_path / "out" / f"frame_{i:05d}.png").size for i in range(5)}
    assert sizes == {(48, 36)} and data["frames"][4].get("resized_from_another_size")
    assert [f["time"] for f in data["frames"]] == pytest.approx([i / OPTS.fps for i in range(5)], abs=1e-5)
    from artstyle.runs.video.containers import frame_files

    assert [p.name for p in frame_files(d)] == [
        "frame_1.png",
        "frame_2.png",
        "frame_3.png",
        "frame_10.png",
        "frame_11.png",
    ]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "how", ["same-file", "symlink", "hard-link", "input-folder", "inside-input-folder", "holds-input"]
)
def test_no_output_ever_replaces_an_input_even_with_overwrite(tmp_path: Path, how: str) -> None:
    src = clip_mp4(tmp_path / "in.mp4", n=2)
    folder = clip_folder(tmp_path, n=2)
    painting = _painting(tmp_path)
    source, out = {
        "same-file": (src, src),
        "symlink": (src, tmp_path / "link.mp4"),
        "hard-link": (src, tmp_path / "hard.mp4"),
        "input-folder": (folder, folder),
        "inside-input-folder": (folder, folder / "sub"),
        "holds-input": (folder, tmp_path),
    }[how]
    if how == "symlink":
        out.symlink_to(src)
    if how == "hard-link":
        import os

        os.link(src, out)
    before = _snapshot(tmp_path)
    args = [
        "video",
        str(source),
        painting,
        "-o",
        str(out),
        "--overwrite",
        "--size",
        "48",
        "--iterations",
        "2",
        "-q",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output
    lines = [x for x in r.output.splitlines() if x.startswith("artstyle: error:")]
    assert len(lines) == 1 and "input" in lines[0] and "Traceback" not in r.output, r.output
    assert _snapshot(tmp_path) == before


def test_a_user_file_named_like_the_sidecar_is_kept(tmp_path: Path) -> None:
    src = clip_mp4(tmp_path / "in.mp4", n=2)
    (tmp_path / "o.mp4.json").write_text("the user's notes")
    r = CliRunner().invoke(
        main, ["video", str(src), _painting(tmp_path), "-o", str(tmp_path / "o.mp4"), "-q"]
    )
    assert r.exit_code == 1 and "o.mp4.json: already exists" in r.output, r.output
    assert (tmp_path / "o.mp4.json").read_text() == "the user's notes" and not (tmp_path / "o.mp4").exists()


def test_a_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path: Path, monkeypatch) -> None:
    import tempfile as tf

    src = clip_mp4(tmp_path / "in.mp4", n=2)
    real = tf.mkstemp

    def refuse(*a, **k):
        if k.get("suffix") == ".probe":
            raise PermissionError(13, "Permission denied")
        return real(*a, **k)

    monkeypatch.setattr(tf, "mkstemp", refuse)
    r = CliRunner().invoke(
        main, ["video", str(src), _painting(tmp_path), "-o", str(tmp_path / "o.mp4"), "-q"]
    )
    assert (
        r.exit_code == 1 and "is not writable (Permission denied)" in r.output and "Traceback" not in r.output
    )
    assert not (tmp_path / "o.mp4.frames").exists()


def test_a_full_disk_during_the_encode_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    src = clip_mp4(tmp_path / "in.mp4", n=3)
    real = av.VideoFrame.from_image
    calls = []

    def full(im):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(im)

    monkeypatch.setattr(av.VideoFrame, "from_image", staticmethod(full))
    tiny = ["--size", "48", "--scales", "1", "--iterations", "3", "--frame-iterations", "2", "-q"]
    r = CliRunner().invoke(
        main, ["video", str(src), _painting(tmp_path), "-o", str(tmp_path / "o.mp4"), *tiny]
    )
    assert r.exit_code == 1 and "No space left on device" in r.output and "Traceback" not in r.output, (
        r.output
    )
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mp4.json").exists()
    assert not list(tmp_path.glob(".artstyle-*"))  # the encode's temporary is gone
    assert len(list((tmp_path / "o.mp4.frames").glob("frame_*.png"))) == 3  # the work is kept: resume


def test_a_stop_during_the_encode_removes_its_temporary_and_a_stale_one_is_cleared(
    tmp_path: Path, monkeypatch
) -> None:
    import os
    import time as t

    src = clip_mp4(tmp_path / "in.mp4", n=2)
    stale = tmp_path / ".artstyle-video-killed.mp4"
    stale.write_bytes(b"half a video from a run killed with -9")
    os.utime(stale, (t.time() - 3600, t.time() - 3600))
    real = av.VideoFrame.from_image

    def stopped(im):
        raise KeyboardInterrupt  # (SIGTERM or Ctrl-C arriving mid-encode)

    monkeypatch.setattr(av.VideoFrame, "from_image", staticmethod(stopped))
    with pytest.raises(KeyboardInterrupt):
        stylize_video(src, [_painting(tmp_path)], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    assert not list(tmp_path.glob(".artstyle-*")) and not (tmp_path / "o.mp4").exists()
    monkeypatch.setattr(av.VideoFrame, "from_image", staticmethod(real))
    stylize_video(src, [_painting(tmp_path)], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    assert (tmp_path / "o.mp4").exists()


def test_resume_remakes_a_kept_frame_that_is_damaged(tmp_path: Path) -> None:
    clip = clip_folder(tmp_path, n=4)
    out = tmp_path / "out"
    painting = _painting(tmp_path)
    stylize_video(clip, [painting], out, CFG, OPTS, progress=False)
    good = (out / "frame_00002.png").read_bytes()
    (out / "frame_00001.png").write_bytes(good[:100])  # truncated
    (out / "frame_00002.png").write_bytes(b"junk")
    state = json.loads((out / "video.json").read_text())
    state["frames"] = state["frames"][:3]  # as if stopped during frame 3
    (out / "video.json").write_text(json.dumps(state))
    stylize_video(clip, [painting], out, CFG, OPTS, progress=False)
    for i in range(4):
        Image.open(out / f"frame_{i:05d}.png").load()  # every frame decodes again
    assert len(json.loads((out / "video.json").read_text())["frames"]) == 4


def test_overwrite_leaves_exactly_the_new_video_s_frames(tmp_path: Path) -> None:
    painting = _painting(tmp_path)
    long_clip = clip_folder(tmp_path, n=5)
    out = tmp_path / "out"
    stylize_video(long_clip, [painting], out, CFG, OPTS, progress=False)
    short = tmp_path / "short"
    short.mkdir()
    for i in range(3):
        scene(i + 7).save(short / f"{i}.png")
    stylize_video(short, [painting], out, CFG.replace(iterations=3), OPTS, progress=False, overwrite=True)
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(3)]


def test_checkpoint_every_is_not_a_video_flag() -> None:
    r = CliRunner().invoke(main, ["video", "--help"])
    assert "--checkpoint-every" not in r.output and "--keep-frames" in r.output


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 192 KB tmpfs (where this process may mount one: root on Linux), unmounted after."""
    import subprocess
    import sys

    where = tmp_path / "small"
    where.mkdir()
    if sys.platform != "linux":
        pytest.skip("tmpfs is Linux's")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]}): needs root")
    yield where
    subprocess.run(["umount", str(where)], capture_output=True)


@pytest.mark.parametrize("free_kb", [16, 36])  # (full while painting frames; full at the final write)
def test_a_really_full_disk_is_one_line_and_leaves_no_half_output(
    tmp_path: Path, small_disk: Path, free_kb: int
) -> None:
    src = clip_mp4(tmp_path / "in.mp4", n=5)
    import os

    stat = os.statvfs(small_disk)
    free = stat.f_bavail * stat.f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - free_kb * 1024))
    out = small_disk / "o.mp4"
    tiny = ["--size", "48", "--scales", "1", "--iterations", "3", "--frame-iterations", "2", "-q"]
    r = CliRunner().invoke(main, ["video", str(src), _painting(tmp_path), "-o", str(out), *tiny])
    if r.exit_code == 0:  # (it fit after all: then it is whole)
        assert out.exists() and (small_disk / "o.mp4.json").exists()
        return
    lines = [x for x in r.output.splitlines() if x.startswith("artstyle: error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "No space left on device" in lines[0], r.output
    assert "Traceback" not in r.output
    assert not out.exists() and not (small_disk / "o.mp4.json").exists()
    assert not list(small_disk.glob(".artstyle-*"))


def test_video_folders_stay_tidy(tmp_path: Path) -> None:
    """A run refused before its first frame leaves no frames folder; a re-run removes the encode
    temporary that a run killed during its encode left (of its own output, whose process is gone)
    and leaves a live one alone; a folder that exists is an output folder whatever its name."""
    import subprocess
    import sys

    painting = _painting(tmp_path)
    src = clip_mp4(tmp_path / "in.mp4", n=2)
    (tmp_path / "t").mkdir()
    tiny = clip_folder(tmp_path / "t", n=1, size=(120, 36))  # (at --size 48, 48 x 14: under 32 px)
    with pytest.raises(ArtstyleError, match="at least 32"):
        stylize_video(tiny, [painting], tmp_path / "refused.mp4", CFG, OPTS, progress=False)
    assert not (tmp_path / "refused.mp4.frames").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # (a process that is gone: the run that was killed)
    killed = tmp_path / f".artstyle-video-o.mp4.{dead.pid}.abc123.mp4"
    killed.write_bytes(b"half a video from a run killed with -9")
    live = tmp_path / f".artstyle-video-o.mp4.{os.getpid()}.def456.mp4"  # (a run still encoding)
    live.write_bytes(b"a video being written")
    other = tmp_path / f".artstyle-video-p.mp4.{dead.pid}.ghi789.mp4"  # (another output's, fresh)
    other.write_bytes(b"not ours to judge")
    stylize_video(src, [painting], tmp_path / "o.mp4", CFG, OPTS, progress=False)
    assert (tmp_path / "o.mp4").exists() and not killed.exists() and live.exists() and other.exists()
    take = tmp_path / "renders" / "take.2"
    take.mkdir(parents=True)
    side = stylize_video(src, [painting], take, CFG, OPTS, progress=False)
    assert side == take / "video.json" and len(list(take.glob("frame_*.png"))) == 2
