"""Flicker: independent frames against the temporal method (Ruder et al. 2016) on a made clip.

    python benchmarks/video.py [--frames 24] [--sizes 256 512] [--style starry_night.jpg]

The clip is made from the shared photos: a slow pan and zoom over tubingen.jpg with a round
cut-out of elephant.jpg moving across it (so there are occlusions). For each size both methods
run through ``artstyle video``; the table gives the temporal error (mean squared difference, 0-255
units, between each output frame and the previous output warped onto it, over the pixels where
the flow is reliable; the median over frames 2..n) and seconds per frame. Frames and a side-by-side
strip go to benchmarks/video-out/.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def make_clip(folder: Path, frames: int, size: tuple[int, int] = (640, 480)) -> Path:
    """``frames`` PNGs: pan and zoom over tübingen, an elephant disc crossing left to right."""
    folder.mkdir(parents=True, exist_ok=True)
    town = Image.open(SHARED / "content" / "tubingen.jpg").convert("RGB")
    animal = Image.open(SHARED / "content" / "elephant.jpg").convert("RGB")
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
        frame.paste(animal, (int(-d + (w + d) * t), int(h * 0.35)), disc)
        frame.save(folder / f"f{i:03d}.png")
    return folder


def run(clip: Path, style: Path, out: Path, size: int, independent: bool, flags: str = "") -> dict:
    exe = str(Path(sys.executable).parent / "artstyle")
    cmd = [exe, "video", str(clip), str(style), "-o", str(out), "--size", str(size), "-q", "--overwrite"]
    cmd += shlex.split(flags)
    if independent:
        cmd.append("--independent")
    subprocess.run(cmd, check=True, env={**os.environ, "TQDM_DISABLE": "1"})
    return json.loads((out / "video.json").read_text())


def strip(outs: list[Path], frames: list[int], path: Path) -> None:
    rows = [[Image.open(o / f"frame_{i:05d}.png") for i in frames] for o in outs]
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * len(frames), h * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            sheet.paste(im, (c * w, r * h))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "video-out")
    ap.add_argument(
        "--flags",
        default="--scales 1",
        help="more flags for both methods (default: one level, so every frame of both gets the same "
        "40 iterations at full size)",
    )
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (../shared/images is not beside this checkout)")
        return
    clip = make_clip(args.out / "clip", args.frames)
    style = SHARED / "style" / args.style
    rows = []
    for size in args.sizes:
        outs = []
        for independent in (True, False):
            name = f"{'independent' if independent else 'temporal'}-{size}"
            out = args.out / name
            data = run(clip, style, out, size, independent, args.flags)
            errs = [f["temporal_error"] for f in data["frames"] if "temporal_error" in f]
            secs = [f["seconds"] for f in data["frames"]]
            rows.append((name, statistics.median(errs), max(errs), statistics.median(secs[1:]), secs[0]))
            outs.append(out)
        strip(
            outs,
            [0, args.frames // 3, args.frames // 3 + 1, 2 * args.frames // 3],
            args.out / f"strip-{size}.png",
        )
    print("| run | temporal error, median | worst frame | s/frame (later frames, median) | first frame s |")
    print("|---|---|---|---|---|")
    for name, med, worst, spf, first in rows:
        print(f"| {name} | {med:.1f} | {worst:.1f} | {spf:.1f} | {first:.1f} |")
    for size in args.sizes:
        ind = next(r for r in rows if r[0] == f"independent-{size}")
        tmp = next(r for r in rows if r[0] == f"temporal-{size}")
        print(f"{size} px: the temporal method's error is {ind[1] / max(tmp[1], 1e-9):.1f}x lower")


if __name__ == "__main__":
    main()
