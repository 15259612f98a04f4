"""Which optimiser for a tile: L-BFGS (its memory per tile, restarted each pass) or Adam.

A tiled level starts each tile from the level below, upsampled, and gives it a few iterations per
pass. This paints the same tiles of one picture both ways, from the same start, with the real
weights, and prints each tile's loss after every iteration (relative to its start) and the seconds
per iteration:

    python benchmarks/tile_optimizer.py --start benchmarks/poster-out/t1024-untiled.png --size 2048
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from artstyle import StyleConfig, Stylizer
from artstyle.engine.painter import tile_run
from artstyle.engine.plan import Level
from artstyle.engine.stylizer import prepare_images
from artstyle.engine.tiles import grid, overlap_for
from artstyle.images.decode import load_image
from artstyle.images.geometry import resize, to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default=str(SHARED / "content" / "tubingen.jpg"))
    ap.add_argument("--painting", default=str(SHARED / "style" / "starry_night.jpg"))
    ap.add_argument("--start", required=True, help="the level below's picture (upsampled here)")
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--tile", type=int, default=640)
    ap.add_argument("--tiles", type=int, default=3, help="how many tiles (from the middle row)")
    ap.add_argument("--iterations", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(2)
    photo, painting = load_image(args.photo), load_image(args.painting)
    variants = {
        "lbfgs": {"optimizer": "lbfgs"},
        "adam lr 10": {"optimizer": "adam", "learning_rate": 10.0},
        "adam lr 3": {"optimizer": "adam", "learning_rate": 3.0},
    }
    print("| optimiser | tile | loss after 1, 2, 4, 8 iterations (x start) | s/iteration |")
    print("|---|---|---|---|")
    for name, settings in variants.items():
        cfg = StyleConfig(size=args.size, scales=1, device="cpu", **settings)
        stylizer = Stylizer([painting], cfg)
        plan = stylizer.plan(photo)
        size = plan.full
        content_in, styles_in = prepare_images(photo, [painting], cfg)
        c_img = resize(content_in, size)
        start = to_tensor(resize(load_image(args.start), size))
        level = Level(size, args.iterations, plan.levels[0].style_sizes, args.tile, overlap_for(args.tile))
        targets = stylizer.style_targets(styles_in, level, torch.Generator().manual_seed(0))
        tiles = grid(size, args.tile, overlap_for(args.tile))
        row = [t for t in tiles if t.y0 > 0] or tiles
        for t in row[: args.tiles]:
            c = to_tensor(c_img.crop((t.x0, t.y0, t.x1, t.y1)))
            run = tile_run(stylizer.net, cfg, c, targets, t.crop(start), None, None)
            losses, t0 = [], time.perf_counter()
            for _ in range(args.iterations + 1):  # (each step reports the loss where it started)
                losses.append(run.step()["total"])
            per = (time.perf_counter() - t0) / (args.iterations + 1)
            picks = [losses[i] / losses[0] for i in (1, 2, 4, 8) if i < len(losses)]
            shown = ", ".join(f"{v:.3f}" for v in picks)
            print(f"| {name} | {t.x0},{t.y0} {t.size[0]}x{t.size[1]} | {shown} | {per:.1f} |")


if __name__ == "__main__":
    main()
