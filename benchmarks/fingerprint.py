"""Fingerprints of small fixed runs with the real weights: a refactor that claims "the same images
bit for bit" shows it by printing the same table before and after.

Each case paints a shared photo (or, where ../shared is absent, the built-in photo and painting)
at 64-96 px with a few iterations and prints the sha256 of the output's raw RGB bytes, of its final
loss history (repr of the floats), and the final total loss.

    python benchmarks/fingerprint.py                 # the table
    python benchmarks/fingerprint.py --save a.json   # also keep it
    python benchmarks/fingerprint.py --compare a.json  # exit 1 if anything differs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from artstyle import ArtstyleError, stylize
from artstyle.images.decode import load_image
from artstyle.images.demo import default_content, default_style

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "images"


def _inputs() -> tuple[Image.Image, list[Image.Image]]:
    if (SHARED / "content" / "tubingen.jpg").exists():
        return load_image(SHARED / "content" / "tubingen.jpg"), [
            load_image(SHARED / "style" / "starry_night.jpg"),
            load_image(SHARED / "style" / "the_scream.jpg"),
        ]
    print("../shared/images is absent: using the built-in photo and painting", file=sys.stderr)
    return default_content(), [default_style(256), default_style(256, seed=7)]


def _half_mask(size: tuple[int, int], left: bool) -> Image.Image:
    w, h = size
    a = np.zeros((h, w), np.uint8)
    if left:
        a[:, : w // 2] = 255
    else:
        a[:, w // 2 :] = 255
    return Image.fromarray(a, "L")


SMALL = {"size": 96, "scales": 2, "coarse_min_size": 48, "coarse_iterations": 6, "iterations": 4}

CASES: dict[str, dict[str, Any]] = {
    "default-2-levels": {},
    "one-level": {"scales": 1, "iterations": 6},
    "adam": {"optimizer": "adam", "scales": 1, "iterations": 6},
    "mean_cov": {"style_loss": "mean_cov"},
    "sliced_wasserstein": {"style_loss": "sliced_wasserstein"},
    "luminance": {"preserve_color": "luminance"},
    "histogram": {"preserve_color": "histogram"},
    "ema": {"ema_decay": 0.5},
    "absolute-free": {"loss_normalization": "absolute", "pixel_bounds": "free", "initial": "content"},
    "noise-avg": {"initial": "noise", "pooling": "avg", "initial_noiseblend": 0.0},
    "matched-noiseblend": {"initial": "matched", "initial_noiseblend": 0.3, "seed": 5},
    "zero-iterations": {"iterations": 0, "coarse_iterations": 0},
    "blend-two": {"style_blend_weights": (3.0, 1.0), "two": True},
    "masks-two": {"masks": True, "two": True},
    "masks-mean_cov": {"masks": True, "two": True, "style_loss": "mean_cov"},
    "masks-zero-iterations": {"masks": True, "two": True, "iterations": 0, "coarse_iterations": 0},
    # tiled levels (the tile loop) and detail levels (anchor, look):
    "tiles": {"size": 192, "tile_size": 128},
    "tiles-adam": {"size": 192, "tile_size": 128, "optimizer": "adam"},
    "tiles-masks": {"size": 192, "tile_size": 128, "masks": True, "two": True},
    "detail-levels": {"size": 160, "paint_size": 80, "detail_style": 1.0},
    "detail-tiles": {"size": 200, "paint_size": 96, "tile_size": 128},
}


def run_case(name: str, content: Image.Image, styles: list[Image.Image]) -> dict[str, Any]:
    settings = dict(SMALL)
    settings.update(CASES[name])
    two = settings.pop("two", False)
    use_masks = settings.pop("masks", False)
    paint = styles if two else styles[:1]
    masks = [_half_mask(content.size, True), _half_mask(content.size, False)] if use_masks else None
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        r = stylize(content, paint, device="cpu", masks=masks, **settings)
    except ArtstyleError as e:
        return {"refused": str(e)}
    except Exception as e:  # (a bug: recorded, so that the table shows where it was mended)
        return {"refused": f"crashed: {type(e).__name__}: {e}"}
    raw = np.asarray(r.image, dtype=np.uint8).tobytes()
    last = r.history[-1].get("total") if r.history else None
    losses = repr([(h["iteration"], h.get("total")) for h in r.history])
    return {
        "image": hashlib.sha256(raw).hexdigest()[:16],
        "losses": hashlib.sha256(losses.encode()).hexdigest()[:16],
        "final_total": last,
        "size": list(r.image.size),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    content, styles = _inputs()
    results = {name: run_case(name, content, styles) for name in args.cases}
    print(f"| case | image sha256 | losses sha256 | final total | size | s |\n|{'---|' * 6}")
    for name, r in results.items():
        if "refused" in r:
            print(f"| {name} | refused: {r['refused']} | | | | |")
            continue
        print(
            f"| {name} | {r['image']} | {r['losses']} | {r['final_total']!r} | "
            f"{r['size'][0]}x{r['size'][1]} | {r['seconds']} |"
        )
    if args.save:
        args.save.write_text(json.dumps(results, indent=1) + "\n")
    if args.compare:
        old = json.loads(args.compare.read_text())
        keys = ("image", "losses", "final_total", "size", "refused")
        diff = [n for n in results if n in old and any(results[n].get(k) != old[n].get(k) for k in keys)]
        print("differs: " + (", ".join(diff) if diff else "nothing"))
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
