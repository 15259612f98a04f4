"""The Ray runner: each run of a study is a Ray task, on this machine or on a cluster.

Workers need not share the driver's disk: each input file travels to the tasks once (``ray.put``
of its bytes), a task loads it exactly as a file is loaded and sends back the image's bytes, its
sidecar and measures (:func:`artstyle.runs.jobs.execute_run`); the driver writes them, so resume,
sheets, plots, ``results.csv`` and the report are the same as with the local runner. A task whose
worker or node dies is given to another worker, from its start (a run of a study is short), at most
:data:`~artstyle.runs.cluster.MAX_RETRIES` more times, each one line; a run that fails on its own
(a bad input, a NaN) is reported and the rest go on. Ctrl-C cancels the outstanding tasks and
keeps what finished.

Ray is an optional extra (``pip install "artstyle[cluster]"``), imported only here. The workers
must have artstyle installed (and the weights: the Caffe VGG19 is fetched once per machine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from artstyle.apps.study.experiment import Experiment, Outcome, RunSpec
from artstyle.errors import ArtstyleError
from artstyle.files import atomic_write_files, sha256_file
from artstyle.runs.cluster import MAX_RETRIES, connect, ray_module
from artstyle.runs.jobs import execute_run
from artstyle.runs.record import json_bytes, sidecar_path


def _task(
    config: dict[str, Any],
    content: tuple[str, str, bytes],
    style: tuple[str, str, bytes],
    output_name: str,
    extra: dict[str, Any],
    threads: int,
) -> dict[str, Any]:
    return execute_run(config, content, [style], output_name, extra, threads)


def run_on_ray(
    exp: Experiment,
    specs: list[RunSpec],
    skipped: int,
    progress: bool,
    address: str | None = None,
    cpus_per_run: int = 1,
) -> tuple[list[Outcome], bool]:
    """Run ``specs`` as Ray tasks; returns (outcomes, interrupted)."""
    ray = ray_module()
    started = connect(address)
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        remote = ray.remote(_task)
        inputs: dict[Path, Any] = {}
        for spec in specs:
            for p in (spec.content, spec.style):
                if p not in inputs:
                    try:
                        inputs[p] = ray.put((str(p), sha256_file(p), p.read_bytes()))
                    except OSError as e:
                        raise ArtstyleError(f"{p}: cannot read ({e.strerror or e})") from None
        pending: dict[Any, RunSpec] = {}
        tries: dict[int, int] = {}  # id(spec) -> tries so far

        def submit(spec: RunSpec) -> None:
            gpus = 1 if spec.config.device == "cuda" else 0
            ref = remote.options(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=0).remote(
                spec.config.to_dict(),
                inputs[spec.content],
                inputs[spec.style],
                spec.output.name,
                {"experiment": exp.name, "variant": spec.variant.name, "runner": "ray"},
                cpus_per_run,
            )
            pending[ref] = spec
            tries[id(spec)] = tries.get(id(spec), 0) + 1

        for spec in specs:
            submit(spec)
        failures = 0
        bar = tqdm(
            total=len(specs) + skipped,
            initial=skipped,
            desc=f"{exp.name} (ray)",
            unit="run",
            disable=not progress,
        )
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    spec = pending.pop(ref)
                    lost = _lost(ray, ref)
                    if lost and tries[id(spec)] <= MAX_RETRIES:
                        tqdm.write(
                            f"artstyle: a Ray worker was lost ({lost}); the run {spec.pair} "
                            f"{spec.variant.name} goes to another worker, try {tries[id(spec)] + 1} of "
                            f"{MAX_RETRIES + 1}"
                        )
                        submit(spec)
                        continue
                    outcome = _collect(ray, ref, spec)
                    outcomes.append(outcome)
                    if outcome.status == "failed":
                        failures += 1
                        tqdm.write(f"failed: {spec.pair} {spec.variant.name}: {outcome.message}")
                    bar.set_postfix_str(f"{failures} failed")
                    bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
            for ref in pending:
                ray.cancel(ref, force=True)
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()
    return outcomes, interrupted


def _lost(ray: Any, ref: Any) -> str:
    """Why a finished task's worker or node was lost ("" for a task that ran to its end or failed
    on its own)."""
    try:
        ray.get(ref)
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError):
        return "its process died; out of memory?"
    except (ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError):
        return "its machine left the cluster"
    except Exception:  # (the task's own failure: reported as such)
        return ""
    return ""


def _collect(ray: Any, ref: Any, spec: RunSpec) -> Outcome:
    """Write one finished task's image and sidecar (the driver is the only writer)."""
    try:
        r = ray.get(ref)
    except Exception as e:  # a task that raised, or died more often than MAX_RETRIES
        message = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return Outcome(spec, "failed", message)
    if r["status"] == "failed":
        return Outcome(spec, "failed", r["message"])
    side = {**r["sidecar"], "command": sys.argv}
    files = {spec.output: r["image"], sidecar_path(spec.output): json_bytes(side)}
    atomic_write_files(files, overwrite=True)  # (both or neither)
    return Outcome(spec, r["status"], "", side)
