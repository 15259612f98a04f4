"""Video: seconds per frame, flicker and the look; chunk seams; local against Ray; a clip on paper.

    python benchmarks/video.py flicker  [--frames 24] [--sizes 256 512]
    python benchmarks/video.py speed    [--frames 8] [--sizes 256] [--iterations 40 20 12]
    python benchmarks/video.py seams    [--frames 16] [--chunk 6] [--overlap 3]
    python benchmarks/video.py ray      [--frames 8] [--chunk 4]
    python benchmarks/video.py paper    (from the speed and ray runs' records)

Clips are made from the shared photos (a slow pan and zoom over a photo with a round cut-out of
another moving across it, so there are occlusions): ``town`` (tubingen, elephant) and ``field``
(meadow, car); ``cut`` is 8 frames of each joined by a hard cut. Every run goes through
:func:`artstyle.runs.video.run.stylize_video` with the real weights.

* temporal error: mean squared difference (0-255 units) between an output frame and the previous
  output warped onto it by the flow of the input frames, over the pixels where the flow is
  reliable; the median over frames 2..n, and the worst frame;
* style and content: the judge's distances (``benchmarks/judge.py``) of each output frame against
  its input frame and the painting; the median over frames;
* s/frame: the median seconds of a later frame (the first frame of a shot has its own column).

Frames, strips and each run's ``video.json`` go to ``benchmarks/video-out/``. Numbers in the README
and the notes come from here; the machine is shared and noisy, so time is read as a median.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
sys.path.insert(0, str(ROOT))

CLIPS = {"town": ("tubingen.jpg", "elephant.jpg"), "field": ("meadow.jpg", "car.jpg")}


def make_clip(folder: Path, frames: int, photos: tuple[str, str], size: tuple[int, int] = (640, 480)) -> Path:
    """``frames`` PNGs: pan and zoom over the first photo, a disc of the second crossing it."""
    folder.mkdir(parents=True, exist_ok=True)
    town = Image.open(SHARED / "content" / photos[0]).convert("RGB")
    animal = Image.open(SHARED / "content" / photos[1]).convert("RGB")
    w, h = size
    d = int(h * 0.45)
    animal = animal.resize((int(animal.width * d / animal.height), d)).crop((0, 0, d, d))
    disc = Image.new("L", (d, d), 0)
    ImageDraw.Draw(disc).ellipse((0, 0, d - 1, d - 1), fill=255)
    for i in range(frames):
        t = i / max(1, frames - 1)
        zoom = 1.0 + 0.15 * t  # the crop shrinks: a slow zoom in while panning right
        cw, ch = town.width / zoom * 0.8, town.height / zoom * 0.8
        x0 = (town.width - cw) * (0.2 + 0.5 * t)
        y0 = (town.height - ch) * 0.5
        frame = town.crop((int(x0), int(y0), int(x0 + cw), int(y0 + ch))).resize(
            size, Image.Resampling.LANCZOS
        )
        frame.paste(animal, (int(-d + (w + d) * t * 0.5), int(h * 0.35)), disc)
        frame.save(folder / f"f{i:03d}.png")
    return folder


def clip(name: str, frames: int, out: Path) -> Path:
    folder = out / f"clip-{name}-{frames}"
    if folder.is_dir() and len(list(folder.glob("f*.png"))) == frames:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    if name == "cut":
        a, b = (
            make_clip(out / "tmp-a", frames // 2, CLIPS["town"]),
            make_clip(out / "tmp-b", frames - frames // 2, CLIPS["field"]),
        )
        folder.mkdir(parents=True)
        for i, f in enumerate(sorted(a.glob("f*.png")) + sorted(b.glob("f*.png"))):
            shutil.copy(f, folder / f"f{i:03d}.png")
        shutil.rmtree(a)
        shutil.rmtree(b)
        return folder
    return make_clip(folder, frames, CLIPS[name])


def flicker(inputs: list[Path], outputs: list[Path]) -> list[float]:
    """The temporal error of each output frame 1..n against the one before (see the module)."""
    from artstyle.runs.video.flow import flow, reliability, temporal_error

    errs = []
    for k in range(1, len(outputs)):
        a, b = Image.open(outputs[k - 1]).convert("RGB"), Image.open(outputs[k]).convert("RGB")
        ia = Image.open(inputs[k - 1]).convert("RGB").resize(a.size, Image.Resampling.LANCZOS)
        ib = Image.open(inputs[k]).convert("RGB").resize(a.size, Image.Resampling.LANCZOS)
        back = flow(ib, ia)
        errs.append(temporal_error(b, a, back, reliability(back, flow(ia, ib))))
    return errs


def paint(src: Path, style: Path, out: Path, size: int, workers=None, **video) -> dict:
    from artstyle.config import StyleConfig, VideoOptions
    from artstyle.runs.video.run import stylize_video

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    side = stylize_video(
        src, [str(style)], out, StyleConfig(size=size), VideoOptions(**video), progress=False, workers=workers
    )
    data = json.loads(side.read_text())
    data["wall"] = time.perf_counter() - t0
    return data


def frames_of(out: Path) -> list[Path]:
    return sorted(out.glob("frame_*.png"))


def speed(args: argparse.Namespace) -> None:
    """Before (40 iterations a later frame) and after: s/frame, flicker and the judge's distances
    over clips x paintings."""
    from benchmarks.judge import Judge

    judge = Judge()
    rows = []
    for size in args.sizes:
        for name in args.clips:
            src = clip(name, args.frames, args.out)
            inputs = sorted(src.glob("f*.png"))
            for style_name in args.styles:
                style = SHARED / "style" / style_name
                for it in args.iterations:
                    out = args.out / f"speed-{name}-{Path(style_name).stem}-{size}-{it}"
                    data = paint(src, style, out, size, frame_iterations=it, cut_threshold=0)
                    outs = frames_of(out)
                    errs = [f["temporal_error"] for f in data["frames"][1:]]
                    judged = [judge.measure(o, i, style) for o, i in zip(outs, inputs, strict=True)]
                    secs = [f["seconds"] for f in data["frames"]]
                    rows.append(
                        {
                            "clip": name,
                            "style": Path(style_name).stem,
                            "size": size,
                            "iterations": it,
                            "s_frame": statistics.median(secs[1:]),
                            "first_s": secs[0],
                            "temporal": statistics.median(errs),
                            "temporal_worst": max(errs),
                            "style_d": statistics.median(j["style"] for j in judged),
                            "content_d": statistics.median(j["content"] for j in judged),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    (args.out / "speed.json").write_text(json.dumps(rows, indent=1))
    print(
        "\n| clip x painting | px | iterations | s/frame | first frame s | temporal error (median / worst) "
        "| style distance | content distance |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clip']} x {r['style']} | {r['size']} | {r['iterations']} | {r['s_frame']:.1f} | "
            f"{r['first_s']:.1f} | {r['temporal']:.1f} / {r['temporal_worst']:.1f} | {r['style_d']:.3f} | "
            f"{r['content_d']:.3f} |"
        )
    base = args.iterations[0]
    print(f"\nAgainst {base} iterations, over the pairs (median, and the worst pair):")
    print("| iterations | px | s/frame | temporal error | style distance |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        for it in args.iterations[1:]:
            ratios: dict[str, list[float]] = {"s_frame": [], "temporal": [], "style_d": []}
            for r in rows:
                if r["iterations"] != it or r["size"] != size:
                    continue
                b = next(
                    x
                    for x in rows
                    if (x["clip"], x["style"], x["size"], x["iterations"])
                    == (r["clip"], r["style"], size, base)
                )
                for k in ratios:
                    ratios[k].append(r[k] / b[k])
            cells = [f"{statistics.median(v):.2f}x (worst {max(v):.2f}x)" for v in ratios.values()]
            print(f"| {it} | {size} | " + " | ".join(cells) + " |")


def seams(args: argparse.Namespace) -> None:
    """Warp against crossfade joins on one long shot: flicker at chunk borders and inside."""
    src = clip("town", args.frames, args.out)
    inputs = sorted(src.glob("f*.png"))
    style = SHARED / "style" / args.styles[0]
    print("| join | chunks | temporal error inside (mean) | at borders (mean) | border / inside | wall s |")
    print("|---|---|---|---|---|---|")
    for join in ("warp", "crossfade"):
        out = args.out / f"seams-{join}"
        data = paint(
            src,
            style,
            out,
            args.sizes[0],
            frame_iterations=args.iterations[-1],
            cut_threshold=0,
            chunk_frames=args.chunk,
            join=join,
            chunk_overlap=args.overlap,
        )
        errs = flicker(inputs, frames_of(out))  # errs[k-1]: frame k against frame k-1
        starts = [c[2] for c in data["chunk_plan"] if c[5]]
        # a border: the frames where one chunk's painting gives way to the next's
        near = set()
        for s in starts:
            lead = args.overlap if join == "crossfade" else 0
            near |= set(range(s - lead, s + 1))
        at = [errs[k - 1] for k in sorted(near) if 1 <= k < len(inputs)]
        inside = [errs[k - 1] for k in range(1, len(inputs)) if k not in near]
        a, b = statistics.mean(at), statistics.mean(inside)
        print(
            f"| {join} | {len(data['chunk_plan'])} | {b:.1f} | {a:.1f} | {a / b:.2f} | {data['wall']:.0f} |"
        )
        s = starts[0]
        strip = [
            Image.open(out / f"frame_{k:05d}.png") for k in range(max(0, s - 3), min(len(inputs), s + 2))
        ]
        w, h = strip[0].size
        sheet = Image.new("RGB", (w * len(strip), h), "white")
        for k, im in enumerate(strip):
            sheet.paste(im, (k * w, 0))
        sheet.save(args.out / f"seam-{join}.png")


@contextlib.contextmanager
def two_nodes():
    from tests.ray_helpers import two_nodes as nodes

    with nodes() as cluster:
        yield cluster


def ray_run(args: argparse.Namespace) -> None:
    """The same clip here and on a local two-node Ray; then with a worker killed mid-chunk."""
    src = clip("cut", args.frames, args.out)
    style = SHARED / "style" / args.styles[0]
    size = args.sizes[0]
    cli = [sys.executable, "-m", "artstyle.apps.cli", "video", str(src), str(style), "--size", str(size)]
    cli += [
        "--frame-iterations",
        str(args.iterations[-1]),
        "--chunk-frames",
        str(args.chunk),
        "-q",
        "--overwrite",
    ]
    cli += ["--min-shot", "2"]
    rows = []
    local = args.out / "ray-local"
    t0 = time.perf_counter()
    subprocess.run([*cli, "-o", str(local)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows.append(("here, one process (1 thread)", time.perf_counter() - t0, local, ""))
    with two_nodes() as cluster:
        for kill in (False, True):
            out = args.out / f"ray-{'kill' if kill else 'plain'}"
            t0 = time.perf_counter()
            p = subprocess.Popen(
                [*cli, "-o", str(out), "--runner", "ray", "--ray-address", cluster.address],
                env=cluster.env,
                stderr=subprocess.PIPE,
                text=True,
            )
            if kill:  # a worker painting a chunk, by its process id, once a chunk is recorded
                deadline = time.time() + 600
                while time.time() < deadline and p.poll() is None:
                    with contextlib.suppress(OSError, ValueError):
                        if json.loads((out / "video.json").read_text()).get("chunks_done"):
                            break
                    time.sleep(0.2)
                time.sleep(3)
                for pid in _ray_workers("ChunkWorker"):
                    os.kill(pid, signal.SIGKILL)
                    break
            _, err = p.communicate()
            lines = [x for x in err.splitlines() if "worker was lost" in x]
            rows.append(
                (
                    f"Ray, 2 nodes x 1 CPU{', a worker killed' if kill else ''}",
                    time.perf_counter() - t0,
                    out,
                    lines[0] if lines else "",
                )
            )
    ref = np.stack([np.asarray(Image.open(f), np.float32) for f in frames_of(local)])
    print("| run | wall s | mean abs difference to here | chunks retried |")
    print("|---|---|---|---|")
    for name, wall, out, line in rows:
        got = np.stack([np.asarray(Image.open(f), np.float32) for f in frames_of(out)])
        side = json.loads((out / "video.json").read_text())
        print(f"| {name} | {wall:.0f} | {np.abs(got - ref).mean():.3f} | {len(side.get('retries', []))} |")
        if line:
            print(f"|   {line} | | | |")
    data = json.loads((local / "video.json").read_text())
    (args.out / "ray.json").write_text(
        json.dumps({"chunk_plan": data["chunk_plan"], "rows": [(n, w) for n, w, _, _ in rows]})
    )


def _ray_workers(name: str) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if f"ray::{name}".encode() in stat.read_bytes():
                pids.append(int(stat.parent.name))
    return pids


def paper(args: argparse.Namespace) -> None:
    """A 10-minute 30 fps clip at 512 px on 1, 8 and 64 machines, from measured s/frame: shots of
    4 s (a cut every 120 frames; typical of edited video) or one shot; chunks of 48 frames."""
    rows = json.loads((args.out / "speed.json").read_text())
    at = [r for r in rows if r["size"] == 512] or [
        r for r in rows if r["size"] == max(x["size"] for x in rows)
    ]
    it = min(r["iterations"] for r in at)
    spf = statistics.median(r["s_frame"] for r in at if r["iterations"] == it)
    first = statistics.median(r["first_s"] for r in at if r["iterations"] == it)
    scale = (512 / at[0]["size"]) ** 2
    spf, first = spf * scale, first * scale
    frames, shot, chunk = 10 * 60 * 30, 120, 48
    print(
        f"(from {at[0]['size']} px runs x{scale:.0f} for 512 px: {spf:.0f} s a later frame, "
        f"{first:.0f} s a shot's first)"
    )
    print(
        "| machines (2 cores each) | 4 s shots, warp joins | one shot, warp joins "
        "| one shot, crossfade joins |"
    )
    print("|---|---|---|---|")
    for m in (1, 8, 64):
        shots = frames // shot
        per_shot = first + (shot - 1) * spf
        warp_shots = -(-shots // m) * per_shot
        one_warp = first + (frames - 1) * spf
        chunks = frames // chunk
        per_chunk = first + (chunk - 1 + 3) * spf
        fade = -(-chunks // m) * per_chunk
        print(f"| {m} | {warp_shots / 3600:.1f} h | {one_warp / 3600:.1f} h | {fade / 3600:.1f} h |")


def flicker_run(args: argparse.Namespace) -> None:
    """Independent frames against the temporal method."""
    src = clip("town", args.frames, args.out)
    style = SHARED / "style" / args.styles[0]
    print("| run | temporal error, median | worst frame | s/frame (later frames, median) |")
    print("|---|---|---|---|")
    for size in args.sizes:
        for independent in (True, False):
            out = args.out / f"{'independent' if independent else 'temporal'}-{size}"
            data = paint(src, style, out, size, independent=independent, cut_threshold=0)
            errs = [f["temporal_error"] for f in data["frames"][1:]]
            secs = [f["seconds"] for f in data["frames"][1:]]
            print(
                f"| {out.name} | {statistics.median(errs):.1f} | {max(errs):.1f} | "
                f"{statistics.median(secs):.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["flicker", "speed", "seams", "ray", "paper"])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256])
    ap.add_argument("--iterations", type=int, nargs="+", default=[40, 20])
    ap.add_argument("--clips", nargs="+", default=["town", "field"])
    ap.add_argument("--styles", nargs="+", default=["starry_night.jpg", "the_scream.jpg"])
    ap.add_argument("--chunk", type=int, default=6)
    ap.add_argument("--overlap", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "video-out")
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (../shared/images is not beside this checkout)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    {"flicker": flicker_run, "speed": speed, "seams": seams, "ray": ray_run, "paper": paper}[args.what](args)


if __name__ == "__main__":
    main()
