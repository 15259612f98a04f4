"""Running a study: every planned run (skipping those already up to date), then the sheets, plots,
table and report. ``run_experiment`` is the local runner: runs one after another in this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from artstyle.apps.study.experiment import Experiment, Outcome, RunSpec, plan
from artstyle.apps.study.report import write_report
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_bytes, sha256_file
from artstyle.runs.jobs import JobOptions, run_job
from artstyle.runs.record import Source, finished_run, sidecar_path


def _up_to_date(spec: RunSpec, hashes: dict[Path, str]) -> dict[str, Any] | None:
    """The sidecar of a finished run with the same config and inputs, else None."""
    if not (spec.output.exists() and sidecar_path(spec.output).exists()):
        return None
    for p in (spec.content, spec.style):
        if p not in hashes:  # each input is hashed once per experiment, not once per run
            hashes[p] = sha256_file(p)
    return finished_run(spec.output, spec.config.to_dict(), [hashes[spec.content], hashes[spec.style]])


def run_experiment(
    exp: Experiment,
    outdir: str | Path,
    *,
    progress: bool = True,
    runner: str = "local",
    ray_address: str | None = None,
    cpus_per_run: int = 1,
) -> list[Outcome]:
    """Run every pair x variant (skipping finished ones), then write sheets, plots, table, report.

    ``runner``: ``local`` runs one after another in this process; ``ray`` sends each run to a
    Ray cluster (see :mod:`artstyle.apps.study.ray_runner`). Either way a failed run is reported and
    the rest go on, and Ctrl-C stops after writing the report of what is done, then re-raises.
    """
    if runner not in ("local", "ray"):
        raise ArtstyleError(f"unknown runner {runner!r}; choose local or ray")
    out = Path(outdir)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArtstyleError(f"{out}: cannot create the output folder ({e.strerror})") from None
    specs = plan(exp, out)
    atomic_write_bytes(
        out / "experiment.json",
        (
            json.dumps(
                {
                    "name": exp.name,
                    "source": exp.source,
                    "file": exp.raw,
                    "base": exp.base.to_dict(),
                    "variants": [{"name": v.name, **v.overrides} for v in exp.variants],
                    "content": [str(p) for p in exp.contents],
                    "style": [str(p) for p in exp.styles],
                },
                indent=1,
                default=str,
            )
            + "\n"
        ).encode(),
    )
    outcomes: list[Outcome] = []
    hashes: dict[Path, str] = {}
    todo = []
    for spec in specs:
        done = _up_to_date(spec, hashes)
        if done is not None:
            outcomes.append(Outcome(spec, "skipped", "up to date", done))
        else:
            todo.append(spec)
    if runner == "ray":
        from artstyle.apps.study.ray_runner import run_on_ray

        more, interrupted = run_on_ray(exp, todo, len(outcomes), progress, ray_address, cpus_per_run)
    else:
        more, interrupted = _run_local(exp, todo, len(outcomes), progress)
    order = {id(spec): i for i, spec in enumerate(specs)}
    outcomes = sorted(outcomes + more, key=lambda o: order[id(o.spec)])
    write_report(exp, out, outcomes)
    if interrupted:
        raise KeyboardInterrupt
    return outcomes


def _run_local(
    exp: Experiment, specs: list[RunSpec], skipped: int, progress: bool
) -> tuple[list[Outcome], bool]:
    """The runs one after another in this process; (outcomes, interrupted)."""
    outcomes: list[Outcome] = []
    sources: dict[Path, Source] = {}
    total = len(specs) + skipped
    bar = tqdm(total=total, initial=skipped, desc=exp.name, unit="run", disable=not progress)
    interrupted = False
    try:
        for spec in specs:
            bar.set_postfix_str(f"{spec.pair} {spec.variant.name}"[:60])
            try:
                for p in (spec.content, spec.style):
                    if p not in sources:
                        sources[p] = Source.from_path(p)
                result = run_job(
                    sources[spec.content],
                    [sources[spec.style]],
                    spec.output,
                    spec.config,
                    JobOptions(
                        overwrite=True,
                        progress=progress,
                        label="  run ",
                        extra={"experiment": exp.name, "variant": spec.variant.name},
                    ),
                )
                data = json.loads(sidecar_path(spec.output).read_text())
                status = "interrupted" if result.interrupted else "done"
                outcomes.append(Outcome(spec, status, "", data))
                if result.interrupted:
                    interrupted = True
                    break
            except ArtstyleError as e:
                outcomes.append(Outcome(spec, "failed", str(e)))
                tqdm.write(f"failed: {spec.pair} {spec.variant.name}: {e}")
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return outcomes, interrupted
