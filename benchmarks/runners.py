"""The study's runners side by side: wall time of an experiment with the local runner and with the
Ray runner (a local Ray started by the run), and each run's peak memory: the whole process tree
(driver, Ray's services and workers), sampled from /proc twice a second as the sum of PSS (shared
pages split between the processes that map them, so Ray's object store is not counted twice), and
the largest single process (RSS).

    python benchmarks/runners.py [--experiment study_grid] [--content ...] [--style ...]

Each runner writes into its own fresh folder; the experiment runs with ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB; (0, 0) once it is gone."""
    try:
        text = Path("/proc", str(pid), "smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", text, re.M))
    return int(fields.get("Pss", 0)), int(fields.get("Rss", 0))


def tree_memory(root: int) -> tuple[int, int, int]:
    """(sum of PSS, largest RSS, processes) over ``root`` and all its descendants, in kB."""
    tree = _children()
    todo, total, largest, n = [root], 0, 0, 0
    while todo:
        pid = todo.pop()
        pss, rss = _memory_kb(pid)
        total, largest, n = total + pss, max(largest, rss), n + (rss > 0)
        todo.extend(tree.get(pid, []))
    return total, largest, n


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float, float, int]:
    """Wall seconds, exit code, peak tree PSS (MB), peak single-process RSS (MB), most processes."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            for i, value in enumerate(tree_memory(proc.pid)):
                peaks[i] = max(peaks[i], value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    if proc.returncode != 0:
        print(err.strip().splitlines()[-1] if err.strip() else "failed")
    return wall, proc.returncode, peaks[0] / 1024, peaks[1] / 1024, peaks[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="study_grid")
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
            wall, code, pss, rss, procs = run(cmd, env)
            runs = len(list(Path(tmp, runner, "images").glob("*.png.json")))
            rows.append((runner, wall, code, runs, pss, rss, procs))
    print(
        "| runner | wall s | exit | runs | peak memory, all processes (PSS), MB "
        "| largest process (RSS), MB "
        "| processes |\n|---|---|---|---|---|---|---|"
    )
    for runner, wall, code, runs, pss, rss, procs in rows:
        print(f"| {runner} | {wall:.1f} | {code} | {runs} | {pss:.0f} | {rss:.0f} | {procs} |")
    (_, local, *_), (_, ray_wall, *_) = rows
    print(f"\nRay runner overhead: {ray_wall - local:+.1f} s ({100 * (ray_wall / local - 1):+.0f} %)")


if __name__ == "__main__":
    main()
