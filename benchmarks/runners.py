"""The study's runners side by side: wall time of an experiment with the local runner and with the
Ray runner (a local Ray started by the run), and the Ray run's peak memory (driver and workers).

    python benchmarks/runners.py [--experiment experiments/study_grid.toml] [--content ...] [--style ...]

Each runner writes into its own fresh folder; the experiment runs with ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return wall, done.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "study_grid.toml"))
    ap.add_argument("--content", nargs="*", default=[])
    ap.add_argument("--style", nargs="*", default=[])
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (../shared/images is not beside this checkout)")
        return
    exe = str(Path(sys.executable).parent / "artstyle")
    env = {**os.environ, "RAY_ADDRESS": ""}
    lists = (["--content", *args.content] if args.content else []) + (
        ["--style", *args.style] if args.style else []
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for runner in ("local", "ray"):
            cmd = [exe, "experiment", args.experiment, "--images", str(SHARED), "--quick", "-q"]
            cmd += ["-o", f"{tmp}/{runner}", "--runner", runner, *lists]
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            wall, code = run(cmd, env)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            runs = len(list(Path(tmp, runner, "images").glob("*.png.json")))
            rows.append((runner, wall, code, runs, peak / 1024 if peak > before else float("nan")))
    print("| runner | wall s | exit | runs | peak RSS of one process, MB |\n|---|---|---|---|---|")
    for runner, wall, code, runs, peak in rows:
        print(f"| {runner} | {wall:.1f} | {code} | {runs} | {peak:.0f} |")
    (_, local, *_), (_, ray_wall, *_) = rows
    print(f"\nRay runner overhead: {ray_wall - local:+.1f} s ({100 * (ray_wall / local - 1):+.0f} %)")


if __name__ == "__main__":
    main()
