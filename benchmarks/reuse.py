"""A reusable Stylizer against one-call stylize(): N photos of one painting.

``stylize()`` builds the network and the painting's targets on every call; a ``Stylizer`` builds
them once (per level size). Prints the wall seconds of both ways and what each photo costs.

    python benchmarks/reuse.py [--photos 10] [--size 256] [--iterations 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import artstyle
from artstyle.engine.runtime import get_weights
from artstyle.images.decode import load_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()
    painting = SHARED / "style" / "starry_night.jpg"
    photos = sorted((SHARED / "content").glob("*"))
    if not painting.exists() or not photos:
        print(f"skipped: {SHARED} is absent (../shared/images is not beside this checkout)")
        return
    images = [load_image(photos[i % len(photos)]) for i in range(args.photos)]
    style = load_image(painting)
    settings = dict(size=args.size, scales=1, iterations=args.iterations)
    get_weights(artstyle.StyleConfig())  # both ways start with the weights in memory
    t = time.perf_counter()
    for im in images:
        artstyle.stylize(im, style, **settings)
    calls = time.perf_counter() - t
    t = time.perf_counter()
    s = artstyle.Stylizer(style, **settings)
    for im in images:
        s.stylize(im)
    reused = time.perf_counter() - t
    n = args.photos
    print(
        f"{n} photos of one painting, {args.size} px, {args.iterations} iterations each (L-BFGS, one level)\n"
    )
    print("| way | wall s | s per photo |\n|---|---|---|")
    print(f"| {n} calls of stylize() | {calls:.1f} | {calls / n:.2f} |")
    print(f"| one Stylizer, {n} calls | {reused:.1f} | {reused / n:.2f} |")
    print(f"\nsaved: {calls - reused:.1f} s ({100 * (1 - reused / calls):.0f} %)")


if __name__ == "__main__":
    main()
