"""Peak memory of a run at 512, 1024 and 2048 px against the estimate the tool uses to refuse, before
any work, a run that would not fit (``artstyle.runtime.estimate_memory``).

Each size runs in its own process (``artstyle stylize``, one level, a few L-BFGS iterations: the peak
is reached at the first backward pass and grows only by L-BFGS's curvature pairs, which the estimate
counts per iteration), and the peak is the sidecar's ``peak_memory_mb`` (Linux VmHWM). Prints the
measured peak, the estimate and their ratio; then shows the refusal at a size that cannot fit.

    python benchmarks/memory.py [--sizes 512 1024 2048] [--iterations 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from artstyle import StyleConfig
from artstyle.images import load_image
from artstyle.plan import estimate_memory, plan_run
from artstyle.runtime import available_memory

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--content", type=Path, default=SHARED / "content" / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "style" / "starry_night.jpg")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
