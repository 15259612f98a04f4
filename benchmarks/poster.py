"""Poster-size pictures: time, peak memory, seams and look of tiled runs (the README's table).

Each run is the CLI with its default plan for the size (the picture painted at ``paint_size``,
then detail levels up to the size; see ``artstyle.engine.pyramid``) in a subprocess under
``/usr/bin/time -v`` (peak resident memory of the process; a Ray run's workers are not in it, and
say so). For every output:

* wall time and peak memory;
* seams: the mean absolute difference between neighbouring pixels across every border of every
  tile the finest tiled level used (both passes), against the same over all pixel pairs; 1.0 is
  a border no different from the rest;
* look: the output reduced to 512 px, judged (``benchmarks/judge.py``) against a direct 512 px run
  of the same pair (the default settings): the ratio of style and of content distances;
* 1:1 crops across tile borders, for the eye (``OUT.crops.png``);
* a control for the look: the direct 512 px picture itself enlarged to the size (bicubic) and
  reduced back (Lanczos), judged the same way. The judge's style distance is very sensitive to
  this round trip alone (the 512 px picture is tuned pixel by pixel to the network at 512 px), so
  this row is the look measure's floor for a picture that was not painted at 512 px.

    python benchmarks/poster.py --pairs tubingen:starry_night --sizes 2048 --modes untiled tiled
    python benchmarks/poster.py --sizes 4096 --modes tiled --max-memory 6
    python benchmarks/poster.py --report-only    # the table from the outputs already there
    python benchmarks/poster.py --pairs car:the_scream --modes today native2   # posters at 1:1

Crispness: the mean |Laplacian| of the picture at its own pixels against the direct 512 px
picture's (1.0: as much detail at 1:1 as the 512 px picture has at 1:1); the control row gives the
512 px picture enlarged (its floor) and the painting at its own pixels. ``--modes A B ...`` also
writes ``PAIR-SIZE-compare.png``: the same 1:1 crops of each mode side by side, and each reduced.

Outputs go to ``benchmarks/poster-out/`` (ignored by git); ``--reuse`` keeps finished outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from judge import Judge

from artstyle.engine.tiles import grid, pass_shift
from artstyle.images.decode import load_image
from artstyle.images.geometry import fit_long_side, resize

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "images"
OUT = ROOT / "poster-out"
MODES = {
    "untiled": "",
    "tiled": "",  # tiles where the budget (--max-memory) says
    "enlarged": "--tile-painting enlarged",
    "ray": "--runner ray",
    # untiled, the painting's shallow layers at its own pixels (native_blocks) or not (today's)
    "today": "--native-blocks 0",
    "native1": "--native-blocks 1",
    "native2": "--native-blocks 2",
    "native3": "--native-blocks 3",
}
#: Modes painted whole whatever the budget.
UNTILED = ("untiled", "today", "native1", "native2", "native3")


def paths(pair: str) -> tuple[Path, Path]:
    photo, painting = pair.split(":")
    return next((SHARED / "content").glob(photo + ".*")), next((SHARED / "style").glob(painting + ".*"))


def run(pair: str, size: int, mode: str, budget: float, extra: str, reuse: bool) -> Path | None:
    photo, painting = paths(pair)
    out = OUT / f"{pair.replace(':', '-')}-{size}-{mode}.png"
    if reuse and out.exists() and Path(str(out) + ".json").exists():
        return out
    flags = f"--size {size} {MODES[mode]} {extra}"
    if mode not in UNTILED and budget:
        flags += f" --max-memory {budget}"
    if mode in UNTILED:
        flags += " --max-memory 1000"  # (no tiles, whatever is available)
    exe = Path(sys.executable).parent / "artstyle"
    cmd = ["/usr/bin/time", "-v", str(exe), "stylize", str(photo), str(painting), "-o", str(out)]
    cmd += [*shlex.split(flags), "--overwrite", "-q"]
    print("$", " ".join(cmd[2:]), flush=True)
    t0 = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    (OUT / (out.name + ".time")).write_text(
        json.dumps({"wall_s": wall, "peak_kb": int(peak.group(1)) if peak else 0})
    )
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return out


def seam_ratio(out: Path) -> tuple[float, list[tuple[int, int, str]]]:
    """(mean |difference| across the finest tiled level's tile borders / mean over all pixel
    pairs, the borders as (position, pass, axis)); (nan, []) for an untiled run."""
    side = json.loads(Path(str(out) + ".json").read_text())
    tiled = [lv for lv in side.get("plan", []) if "tile" in lv]
    if not tiled:
        return float("nan"), []
    lv = tiled[-1]
    w, h = lv["size"]
    a = np.asarray(load_image(out).resize((w, h), Image.Resampling.LANCZOS), np.float64)
    dx = np.abs(a[:, 1:] - a[:, :-1]).mean(2)  # between column j and j+1
    dy = np.abs(a[1:] - a[:-1]).mean(2)
    cols, rows, borders = set(), set(), []
    n = len(lv["tiles"])
    for p in range(n):
        for t in grid((w, h), lv["tile"], lv["overlap"], pass_shift(p, n, (w, h), lv["tile"], lv["overlap"])):
            for x in (t.x0, t.x1):
                if 0 < x < w:
                    cols.add(x)
                    borders.append((x, p, "x"))
            for y in (t.y0, t.y1):
                if 0 < y < h:
                    rows.add(y)
                    borders.append((y, p, "y"))
    across = [dx[:, x - 1] for x in cols] + [dy[y - 1] for y in rows]
    border = np.concatenate(across).mean() if across else float("nan")
    return float(border / np.concatenate([dx.ravel(), dy.ravel()]).mean()), borders


def crops(out: Path, borders: list[tuple[int, int, str]], box: int = 256) -> None:
    """1:1 crops centred on up to four tile borders, side by side."""
    im = load_image(out)
    side = json.loads(Path(str(out) + ".json").read_text())
    w, _ = [lv for lv in side["plan"] if "tile" in lv][-1]["size"]
    k = im.width / w
    picks = [b for b in borders if b[2] == "x"][:2] + [b for b in borders if b[2] == "y"][:2]
    tiles = []
    for pos, _, axis in picks:
        c = int(pos * k)
        if axis == "x":
            x0, y0 = c - box // 2, im.height // 2 - box // 2
        else:
            x0, y0 = im.width // 2 - box // 2, c - box // 2
        x0, y0 = max(0, min(x0, im.width - box)), max(0, min(y0, im.height - box))
        tiles.append(im.crop((x0, y0, x0 + box, y0 + box)))
    if tiles:
        sheet = Image.new("RGB", (box * len(tiles) + 8 * (len(tiles) - 1), box), "white")
        for i, t in enumerate(tiles):
            sheet.paste(t, (i * (box + 8), 0))
        sheet.save(str(out)[:-4] + ".crops.png")


def crispness(image: Image.Image) -> float:
    """Mean |Laplacian| (4-neighbour) of the luminance at the image's own pixels: how much detail
    a picture has at 1:1 (a picture enlarged k times has about 1/k^2 of its own)."""
    y = np.asarray(image.convert("L"), np.float64)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def compare(pair: str, size: int, modes: list[str], box: int = 384) -> Path | None:
    """The same 1:1 crops (the centre, and a third in from the top left) of every mode's picture
    side by side, with each reduced to 512 px below: ``OUT/PAIR-SIZE-compare.png``."""
    stem = OUT / f"{pair.replace(':', '-')}-{size}"
    pics = [(m, Path(f"{stem}-{m}.png")) for m in modes]
    pics = [(m, load_image(p)) for m, p in pics if p.exists()]
    if len(pics) < 2:
        return None
    w, h = pics[0][1].size
    spots = [(w // 2 - box // 2, h // 2 - box // 2), (w // 3 - box // 2, h // 3 - box // 2)]
    small = [resize(im, fit_long_side(im.size, 512)) for _, im in pics]
    gap = 8
    width = max(len(pics) * (box + gap), len(pics) * (small[0].width + gap))
    sheet = Image.new("RGB", (width, len(spots) * (box + gap) + small[0].height), "white")
    for i, (_, im) in enumerate(pics):
        for j, (x0, y0) in enumerate(spots):
            sheet.paste(im.crop((x0, y0, x0 + box, y0 + box)), (i * (box + gap), j * (box + gap)))
        sheet.paste(small[i], (i * (small[0].width + gap), len(spots) * (box + gap)))
    out = Path(f"{stem}-compare.png")
    sheet.save(out)
    return out


def reference(pair: str, reuse: bool) -> Path:
    """The direct 512 px run of the pair (default settings)."""
    photo, painting = paths(pair)
    out = OUT / f"{pair.replace(':', '-')}-512-direct.png"
    if not (reuse and out.exists()):
        exe = Path(sys.executable).parent / "artstyle"
        subprocess.run(
            [str(exe), "stylize", str(photo), str(painting), "-o", str(out), "--overwrite", "-q"], check=True
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pairs", nargs="*", default=["tubingen:starry_night", "meadow:the_scream", "car:picasso"]
    )
    ap.add_argument("--sizes", nargs="*", type=int, default=[2048])
    ap.add_argument("--modes", nargs="*", default=["untiled", "tiled"], choices=list(MODES))
    ap.add_argument("--max-memory", type=float, default=6.0, help="the budget of tiled runs, GB")
    ap.add_argument("--flags", default="", help="more flags for every run")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is absent: the benchmark needs ../shared/images beside the checkout")
    OUT.mkdir(exist_ok=True)
    judge = Judge()
    head = (
        "| pair | size | mode | wall | peak GB | tiles (finest) | seams | crispness vs 512 | "
        "style vs 512 | content vs 512 |"
    )
    print("\n" + head)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for pair in args.pairs:
        photo, painting = paths(pair)
        ref_path = reference(pair, args.reuse or args.report_only)
        ref = judge.measure(ref_path, photo, painting)
        sharp = crispness(load_image(ref_path))
        for size in args.sizes:
            direct = load_image(ref_path)
            round_trip = direct.resize(fit_long_side(direct.size, size), Image.Resampling.BICUBIC)
            m = judge.measure(round_trip.resize(direct.size, Image.Resampling.LANCZOS), photo, painting)
            own = crispness(load_image(painting))
            print(
                f"| {pair} | {size} | control: 512 px enlarged and reduced | | | | | "
                f"{crispness(round_trip) / sharp:.2f} (enlarged; the painting at its own pixels: "
                f"{own / sharp:.2f}) | "
                f"{m['style'] / ref['style']:.2f} ({m['style']:.3f}) | "
                f"{m['content'] / ref['content']:.2f} ({m['content']:.3f}) |",
                flush=True,
            )
            for mode in args.modes:
                out = OUT / f"{pair.replace(':', '-')}-{size}-{mode}.png"
                if not args.report_only:
                    got = run(pair, size, mode, args.max_memory, args.flags, args.reuse)
                    if got is None:
                        print(f"| {pair} | {size} | {mode} | failed | | | | | | |")
                        continue
                if not out.exists():
                    continue
                timing = json.loads((OUT / (out.name + ".time")).read_text())
                ratio, borders = seam_ratio(out)
                crops(out, borders) if borders else None
                big = load_image(out)
                small = resize(big, fit_long_side(big.size, 512))
                m = judge.measure(small, photo, painting)
                side = json.loads(Path(str(out) + ".json").read_text())
                tiled = [lv for lv in side.get("plan", []) if "tile" in lv]
                tiles = f"{tiled[-1]['tile']} px x {tiled[-1]['tiles']}" if tiled else "-"
                print(
                    f"| {pair} | {size} | {mode} | {timing['wall_s'] / 60:.1f} min | "
                    f"{timing['peak_kb'] / 2**20:.2f} | {tiles} | {ratio:.3f} | "
                    f"{crispness(big) / sharp:.2f} | "
                    f"{m['style'] / ref['style']:.2f} ({m['style']:.3f}) | "
                    f"{m['content'] / ref['content']:.2f} ({m['content']:.3f}) |",
                    flush=True,
                )
            compare(pair, size, args.modes)


if __name__ == "__main__":
    main()
