"""The style strength curve: how the judge's distances move with the style weight, over the dev set.

Paints every dev-set pair (``quality.py``'s 16) with the default settings at ``--size`` px, the style
weight multiplied by each of ``--multipliers`` (0 = no style: the photo), and judges each output
with ``judge.py`` (content distance at relu4_2; style distance, the mean relative Gram error over
relu1_1 ... relu5_1). Per pair, the *progress* of a multiplier is how far the picture has come
from the photo (multiplier 0) towards the strongest one (multiplier ``m_max``) in content distance:

    progress(m) = (content(m) - content(0)) / (content(m_max) - content(0))

The style distance is printed too, with its own progress, but it is not the slider's measure: it
reaches its floor by 1/16 of the default weight (the Gram statistics are matched) while the picture,
by eye, has hardly begun to change; from there on what one sees is the photo's structure giving way
to the painting's strokes, which the content distance follows evenly (``--out`` holds every
picture). The strength table ``artstyle.config.STRENGTH_CURVE`` is strength = 100 x the median
progress (made non-decreasing), so that equal steps of the slider are equal steps of it.
Also writes every output and ``strength.json`` into ``--out``, and the wall time of every run.

    python benchmarks/strength.py [--size 384] [--out /tmp/strength]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from judge import Judge
from quality import DEV_SET, pair_name, paths

from artstyle import StyleConfig, Stylizer
from artstyle.images.decode import load_image

MULTIPLIERS = (0.0, 1 / 256, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--multipliers", type=float, nargs="+", default=list(MULTIPLIERS))
    ap.add_argument("--out", type=Path, default=Path("/tmp/artstyle-strength"))
    ap.add_argument("--pairs", type=int, default=len(DEV_SET), help="the first N pairs of the dev set")
    args = ap.parse_args()
    photo0, _ = paths(*DEV_SET[0])
    if not photo0.exists():
        print("skipped: ../shared/images is absent (the dev set is not beside this checkout)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "strength.json"
    results: dict[str, dict[str, dict[str, float]]] = json.loads(saved.read_text()) if saved.exists() else {}
    judge = Judge()
    base = StyleConfig(size=args.size)
    for photo_name, painting_name in DEV_SET[: args.pairs]:
        name = pair_name(photo_name, painting_name)
        photo, painting = paths(photo_name, painting_name)
        row = results.setdefault(name, {})
        for m in args.multipliers:
            key = f"{m:g}"
            if key in row:
                continue
            cfg = base.replace(style_weight=base.style_weight * m)
            t0 = time.perf_counter()
            result = Stylizer(load_image(painting), cfg).stylize(load_image(photo))
            wall = time.perf_counter() - t0
            out = args.out / f"{name}__x{key}.png"
            result.image.save(out)
            row[key] = {**judge.measure(result.image, photo, painting), "wall_s": wall}
            saved.write_text(json.dumps(results, indent=1))
            print(
                f"{name} x{key}: style {row[key]['style']:.3f} content {row[key]['content']:.3f} {wall:.0f} s"
            )
    report(results, args.multipliers)


def report(results: dict[str, dict[str, dict[str, float]]], multipliers: list[float]) -> None:
    keys = [f"{m:g}" for m in multipliers]
    complete = {n: r for n, r in results.items() if all(k in r for k in keys)}
    top = keys[-1]

    def progress_of(r: dict[str, dict[str, float]], k: str, what: str) -> float:
        return (r[k][what] - r["0"][what]) / (r[top][what] - r["0"][what] or 1e-9)

    progress = {n: {k: progress_of(r, k, "content") for k in keys} for n, r in complete.items()}
    style_progress = {n: {k: progress_of(r, k, "style") for k in keys} for n, r in complete.items()}
    print(f"\n{len(complete)} pairs, style weight = default x multiplier\n")
    print(
        "| multiplier | style median | style worst | style progress median | content median "
        "| content worst | progress median | progress lowest | progress highest |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    strengths: list[float] = []
    for k in keys:
        style = [r[k]["style"] for r in complete.values()]
        content = [r[k]["content"] for r in complete.values()]
        prog = [p[k] for p in progress.values()]
        med = statistics.median(prog)
        sp = statistics.median(p[k] for p in style_progress.values())
        strengths.append(100 * max([med, *(s / 100 for s in strengths)]))
        print(
            f"| {k} | {statistics.median(style):.3f} | {max(style):.3f} | {sp:.3f} | "
            f"{statistics.median(content):.3f} | {max(content):.3f} | {med:.3f} | {min(prog):.3f} | "
            f"{max(prog):.3f} |"
        )
    print("\nSTRENGTH_CURVE (strength %, multiplier):")
    print("(" + ", ".join(f"({s:.1f}, {float(k):g})" for s, k in zip(strengths, keys, strict=True)) + ")")


if __name__ == "__main__":
    main()
