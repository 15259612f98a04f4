"""The estimate before Start against the real time, over the dev set.

Paints every dev-set pair (``quality.py``'s 16) one after another with the default settings at
``--size`` px, as the studio does: before each run the estimate is made from this machine's runs
so far (``artstyle.runs.timing.Timings``, a fresh file: the first run has only the prior), then the run
is timed and recorded. Prints per run the estimate, the real time and the error, then the median
and the worst error of the runs that had a measured basis (the goal: within 25 %), and the
prior's error on the first run.

    python benchmarks/estimate.py [--size 512] [--pairs 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from quality import DEV_SET, pair_name, paths

from artstyle import StyleConfig, Stylizer
from artstyle.engine.runtime import resolve_device
from artstyle.images.decode import load_image
from artstyle.runs.timing import Timings, setup_key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", type=int, default=len(DEV_SET))
    args = ap.parse_args()
    photo0, _ = paths(*DEV_SET[0])
    if not photo0.exists():
        print("skipped: ../shared/images is absent (the dev set is not beside this checkout)")
        return
    cfg = StyleConfig(size=args.size)
    key = setup_key(cfg, resolve_device(cfg.device).type)
    with tempfile.TemporaryDirectory() as tmp:
        timings = Timings(Path(tmp) / "timings.json")
        print("| run | pair | size | basis | estimate s | real s | error |\n|---|---|---|---|---|---|---|")
        errors, first = [], None
        for i, (photo_name, painting_name) in enumerate(DEV_SET[: args.pairs], start=1):
            photo, painting = paths(photo_name, painting_name)
            stylizer = Stylizer(load_image(painting), cfg)
            content = load_image(photo)
            est = timings.estimate(stylizer.plan(content.size), key)
            result = stylizer.stylize(content)
            real = result.timings["total_s"]
            timings.record(key, result.history, real)
            err = (est.seconds - real) / real
            size = "x".join(map(str, result.image.size))
            print(
                f"| {i} | {pair_name(photo_name, painting_name)} | {size} | {est.basis} | "
                f"{est.seconds:.1f} | {real:.1f} | {100 * err:+.0f} % |"
            )
            if est.basis == "measured":
                errors.append(abs(err))
            elif first is None:
                first = err
    if errors:
        print(
            f"\nmeasured basis, {len(errors)} runs: median error {100 * statistics.median(errors):.0f} %, "
            f"worst {100 * max(errors):.0f} % (goal: within 25 %)"
        )
    if first is not None:
        print(f"the prior alone (first run, nothing measured yet): {100 * first:+.0f} %")


if __name__ == "__main__":
    main()
