"""Peak memory of a run at 512, 1024 and 2048 px against the estimate the tool uses to refuse, before
any work, a run that would not fit (``artstyle.engine.runtime.estimate_memory``).

Each size runs in its own process (``artstyle stylize``, one level, a few L-BFGS iterations: the peak
is reached at the first backward pass and grows only by L-BFGS's curvature pairs, which the estimate
counts per iteration), and the peak is the sidecar's ``peak_memory_mb`` (Linux VmHWM). Prints the
measured peak, the estimate and their ratio; then shows the refusal at a size that cannot fit.

    python benchmarks/memory.py [--sizes 512 1024 2048] [--iterations 3]

``--decoding``: instead, the peak memory of decoding huge files (a 16000 px PNG, a 1-bit one, an
8000 px float TIFF, a 48 MP JPEG) for a run at ``--need`` px, each in its own process, against the
size of the picture that run uses (its long side ``2 x need`` at most, as decoded). Run it with
``PYTHONPATH`` set to an older checkout's ``src`` to see that checkout's numbers.

``--budgets``: instead, the time of the default run (``--size``, all levels) under each memory budget
in GB (``all``: what is available less the margin, the default before it was measured), on each pair:
the wall time, the peak, the finest level's tiles, and the time against the largest budget's. The
default budget (``artstyle.engine.runtime.memory_budget``) was chosen from this table.

    python benchmarks/memory.py --budgets 3 4 6 all --size 2048 --pairs tubingen:starry_night car:picasso
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from artstyle import StyleConfig
from artstyle.engine.plan import estimate_memory, plan_run
from artstyle.engine.runtime import available_memory
from artstyle.images.decode import load_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--content", type=Path, default=SHARED / "content" / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "style" / "starry_night.jpg")
    ap.add_argument("--decoding", action="store_true", help="measure decoding huge files instead")
    ap.add_argument("--need", type=int, nargs="+", default=[64, 512], help="(--decoding) run sizes")
    ap.add_argument("--budgets", nargs="+", help="measure the time under these budgets (GB, or all) instead")
    ap.add_argument("--size", type=int, default=2048, help="(--budgets) the run's size")
    ap.add_argument("--pairs", nargs="+", default=["tubingen:starry_night", "car:picasso"])
    ap.add_argument("--reuse", action="store_true", help="(--budgets) keep the outputs already there")
    args = ap.parse_args()
    if args.decoding:
        decoding(args.need)
        return
    if args.budgets:
        budgets(args.budgets, args.size, args.pairs, args.reuse)
        return
    for p in (args.content, args.style):
        if not p.exists():
            print(f"skipped: {p} is absent (../shared/images is not beside this checkout)")
            return
    csize, ssize = load_image(args.content).size, load_image(args.style).size
    exe = str(Path(sys.executable).parent / "artstyle")
    print("| size | measured peak GB | estimate GB | estimate / measured | wall s |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = Path(tmp) / f"m{size}.png"
            flags = ["--size", str(size), "--scales", "1", "--iterations", str(args.iterations), "-q"]
            cmd = [
                exe,
                "stylize",
                str(args.content),
                str(args.style),
                "-o",
                str(out),
                "--device",
                "cpu",
                *flags,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"| {size} | failed: {done.stderr.strip().splitlines()[-1]} | | | |")
                continue
            side = json.loads(Path(str(out) + ".json").read_text())
            cfg = StyleConfig(size=size, scales=1, iterations=args.iterations, device="cpu")
            est = estimate_memory(plan_run(csize, [ssize], cfg), cfg) / 2**30
            peak, wall = side["peak_memory_mb"] / 1024, side["timings"]["total_s"]
            print(f"| {size} | {peak:.2f} | {est:.2f} | {est / peak:.2f} | {wall:.0f} |")
        have = available_memory() or 0
        big = StyleConfig(size=8192, scales=1)
        need = estimate_memory(plan_run(csize, [ssize], big), big) / 2**30
        print(f"\navailable now: {have / 2**30:.1f} GB; at 8192 px a run needs {need:.1f} GB; the tool says:")
        never = Path(tmp) / "never.png"
        done = subprocess.run(
            [exe, "stylize", str(args.content), str(args.style), "-o", str(never), "--size", "8192"],
            capture_output=True,
            text=True,
        )
        print(f"exit {done.returncode}: {done.stderr.strip()}")


def budgets(budgets: list[str], size: int, pairs: list[str], reuse: bool = False) -> None:
    """The default run at ``size`` under each budget, on each pair (see the module)."""
    from artstyle.engine.plan import MARGIN

    out_dir = ROOT / "benchmarks" / "memory-out"
    out_dir.mkdir(exist_ok=True)
    exe = str(Path(sys.executable).parent / "artstyle")
    print("| pair | size | budget GB | wall s | peak GB | finest level's tiles | time / largest budget's |")
    print("|---|---|---|---|---|---|---|")
    for pair in pairs:
        photo, painting = pair.split(":")
        named = (("content", photo), ("style", painting))
        paths = [next((SHARED / kind).glob(name + ".*"), None) for kind, name in named]
        if None in paths:
            print(f"skipped {pair}: not in {SHARED}")
            continue
        rows = []
        for b in budgets:
            gb = ((available_memory() or 0) - MARGIN) / 2**30 if b == "all" else float(b)
            out = out_dir / f"{pair.replace(':', '-')}-{size}-{b}.png"
            cmd = [exe, "stylize", *map(str, paths), "-o", str(out), "--size", str(size)]
            cmd += ["--max-memory", f"{gb:.2f}", "--overwrite", "-q"]
            print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
            kept = reuse and out.exists() and Path(str(out) + ".json").exists()
            done = subprocess.run(["true"] if kept else cmd, capture_output=True, text=True)
            if done.returncode != 0:
                why = done.stderr.strip().splitlines()[-1]
                print(f"| {pair} | {size} | {gb:.1f} | failed: {why} | | | |")
                continue
            side = json.loads(Path(str(out) + ".json").read_text())
            finest = side.get("plan", [{}])[-1]  # (written for a tiled run)
            tiles = "untiled"
            if "tile" in finest:
                tiles = f"{finest['tile']} px: {', '.join(map(str, finest['tiles']))}"
            rows.append((gb, side["timings"]["total_s"], side["peak_memory_mb"] / 1024, tiles, b))
        if not rows:
            continue
        top = max(rows)[1]
        for gb, wall, peak, tiles, b in rows:
            name = f"{gb:.1f} (all)" if b == "all" else f"{gb:g}"
            row = f"| {pair} | {size} | {name} | {wall:.0f} | {peak:.2f} | {tiles} | {wall / top:.2f} |"
            print(row, flush=True)


#: The child: decode one file for a run at ``need`` px and print the peak resident memory it
#: added (Linux VmHWM after minus VmRSS before) and the decoded size.
_CHILD = """
import inspect, sys
def kb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1])
from artstyle.images.decode import load_image
need = int(sys.argv[2])
if need:
    base = kb('VmRSS:')
    takes = 'need' in inspect.signature(load_image).parameters
    im = load_image(sys.argv[1], need) if takes else load_image(sys.argv[1])
    print((kb('VmHWM:') - base) / 1024, im.width, im.height)
else:  # the studio: an upload's bytes through Store.add_image (decoded, checked, kept)
    import tempfile
    from artstyle.errors import ArtstyleError
    from artstyle.apps.web.store import Store
    store = Store(tempfile.mkdtemp())
    data = open(sys.argv[1], 'rb').read()
    base = kb('VmRSS:')
    try:
        meta = store.add_image(data, 'upload')
        print((kb('VmHWM:') - base) / 1024, meta['width'], meta['height'])
    except ArtstyleError as e:
        print((kb('VmHWM:') - base) / 1024, 'refused:', str(e).split(':', 1)[1].strip()[:40])
"""


def _huge_files(folder: Path) -> dict[str, Path]:
    """The files of the decoding table, made once (they compress to a few hundred KB)."""
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    files = {
        "PNG 16000x16000 RGB": folder / "big.png",
        "PNG 16000x16000 1-bit": folder / "bit.png",
        "TIFF 8000x8000 float": folder / "float.tif",
        "JPEG 8000x6000 (48 MP)": folder / "photo.jpg",
    }
    if not files["PNG 16000x16000 RGB"].exists():
        Image.new("RGB", (16000, 16000), (90, 140, 200)).save(files["PNG 16000x16000 RGB"])
    if not files["PNG 16000x16000 1-bit"].exists():
        Image.new("1", (16000, 16000), 1).save(files["PNG 16000x16000 1-bit"])
    if not files["TIFF 8000x8000 float"].exists():
        steps = np.repeat(np.linspace(0, 1, 16, dtype=np.float32), 500)  # (bands compress well)
        Image.fromarray(np.broadcast_to(steps, (8000, 8000)).copy(), "F").save(
            files["TIFF 8000x8000 float"], compression="tiff_deflate"
        )
    if not files["JPEG 8000x6000 (48 MP)"].exists():
        rng = np.random.default_rng(0)
        small = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), "RGB")
        small.resize((8000, 6000), Image.Resampling.BICUBIC).save(files["JPEG 8000x6000 (48 MP)"], quality=90)
    return files


def _studio(files: dict[str, Path]) -> None:
    """The studio's uploads: the peak one upload adds to the server (its bytes already in memory)."""
    from PIL import Image

    cache = next(iter(files.values())).parent
    mp49 = cache / "upload49.png"
    if not mp49.exists():
        Image.new("RGB", (7000, 7000), (200, 120, 40)).save(mp49)
    uploads = {**files, "PNG 7000x7000 RGB (49 MP)": mp49}
    print("| studio upload | size | kept as | peak added MB |\n|---|---|---|---|")
    for label, path in uploads.items():
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path), "0"], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {label} | | failed: {done.stderr.strip().splitlines()[-1]} | |")
            continue
        peak, *what = done.stdout.split(maxsplit=1)
        kept = what[0].strip().replace(" ", "x", 1) if not what[0].startswith("refused") else what[0].strip()
        print(f"| {label} | {path.stat().st_size / 1024:.0f} KB | {kept} | {float(peak):.0f} |")


def decoding(needs: list[int]) -> None:
    cache = Path(tempfile.gettempdir()) / "artstyle-decoding-bench"
    cache.mkdir(exist_ok=True)
    files = _huge_files(cache)
    _studio(files)
    print("\n| file | size on disk | run size | decoded to | peak added MB | picture used MB | ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, path in files.items():
        for need in needs:
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path), str(need)], capture_output=True, text=True
            )
            if done.returncode != 0:
                print(f"| {label} | | {need} | failed: {done.stderr.strip().splitlines()[-1]} | | | |")
                continue
            peak, w, h = done.stdout.split()
            # the picture the run uses: its long side at most twice the run's, 8-bit RGB
            scale = min(1.0, 2 * need / max(int(w), int(h)))
            used = int(w) * int(h) * scale * scale * 3 / 2**20
            ratio = float(peak) / used
            size = path.stat().st_size / 1024
            row = [
                label,
                f"{size:.0f} KB",
                need,
                f"{w}x{h}",
                f"{float(peak):.0f}",
                f"{used:.2f}",
                f"{ratio:.0f}x",
            ]
            print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
