"""One run from files to files: load the inputs, check the output before any work, show progress,
write checkpoints, keep the image on Ctrl-C or a NaN, and write the JSON sidecar beside the output.

The CLI and the study both run through :func:`run_job`; the algorithm itself lives in
:mod:`artstyle.stylizer` and knows nothing of files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
from PIL import Image
from tqdm import tqdm

from artstyle import __version__
from artstyle.config import StyleConfig, from_dict
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.files import OutputExistsError, atomic_write_bytes, check_not_input
from artstyle.images import as_image, check_writable, encode_image, save_image
from artstyle.pyramid import level_plan
from artstyle.runtime import resolve_device
from artstyle.stylizer import Step, StyleResult, finish_image, preflight, stylize


@dataclass
class Source:
    """An input image and where it came from (a path, or a built-in's name)."""

    image: Image.Image
    name: str
    sha256: str = ""
    path: Path | None = None  # the file it was read from (protected from being overwritten)

    @classmethod
    def from_path(cls, path: str | Path) -> Source:
        im = as_image(Path(path), str(path))
        return cls(im, str(path), hashlib.sha256(Path(path).read_bytes()).hexdigest(), Path(path))

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "sha256": self.sha256,
            "width": self.image.width,
            "height": self.image.height,
        }


@dataclass
class JobOptions:
    overwrite: bool = False
    checkpoint_every: int = 0
    progress: bool = True
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in the sidecar as is
    masks: list[Image.Image] | None = None  # one per painting (artstyle.masks), recorded in extra


def sidecar_path(out: Path) -> Path:
    """``out.png`` -> ``out.png.json``."""
    return out.with_name(out.name + ".json")


def versions() -> dict[str, str]:
    return {
        "artstyle": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def work_units(content: Image.Image, cfg: StyleConfig) -> tuple[list[float], list[int]]:
    """Per-level cost of one iteration (megapixels) and the iteration budgets, for an honest ETA."""
    levels = level_plan(content.size, cfg)
    return [w * h / 1e6 for (w, h), _ in levels], [budget for _, budget in levels]


def write_sidecar_data(
    out: Path, data: dict[str, Any], overwrite: bool, protect: Sequence[Path] = ()
) -> Path:
    """Write ``data`` (see :func:`sidecar_data`) as ``out``'s sidecar, atomically."""
    return write_json(sidecar_path(out), data, overwrite=overwrite, protect=protect)


def sidecar_data(
    name: str,
    result: StyleResult | None,
    cfg: StyleConfig,
    content: Source,
    styles: Sequence[Source],
    opts: JobOptions,
    *,
    error: str = "",
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The sidecar of output ``name`` as a dict (JSON-ready once NaNs are named): everything needed
    to reproduce and judge it: config, inputs, versions, losses, timings."""
    data: dict[str, Any] = {
        "output": name,
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "content": content.describe(),
        "styles": [s.describe() for s in styles],
        "versions": versions(),
        "command": sys.argv,
        **opts.extra,
    }
    if result is not None:
        data.update(
            weights=result.weights_id,
            device=result.device,
            timings=result.timings,
            peak_memory_mb=round(result.peak_memory_mb, 1),
            interrupted=result.interrupted,
            iterations=len(result.history),
            history=result.history,
        )
    else:
        data.update(history=history or [])
    if error:
        data["error"] = error
    return data


def json_safe(v: Any, nonfinite: Callable[[float], Any] = str) -> Any:
    """``v`` with every NaN or infinite float replaced by ``nonfinite(x)`` (its name as a string by
    default; the studio's events use None): JSON has no NaN."""
    if isinstance(v, float) and not math.isfinite(v):
        return nonfinite(v)
    if isinstance(v, dict):
        return {k: json_safe(x, nonfinite) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x, nonfinite) for x in v]
    return v


def write_json(path: Path, data: Any, *, overwrite: bool, protect: Sequence[Path] = ()) -> Path:
    """``data`` as strict JSON (see :func:`json_safe`), written atomically."""
    text = json.dumps(json_safe(data), indent=1, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode(), overwrite=overwrite, protect=protect)
    return path


def _inputs(content: Source, styles: Sequence[Source]) -> list[Path]:
    return [s.path for s in (content, *styles) if s.path is not None]


def checkpoint_path(out: Path, iteration: int) -> Path:
    return out.with_name(f"{out.stem}.iter{iteration:05d}{out.suffix}")


def check_output(
    out: str | Path,
    overwrite: bool,
    inputs: Sequence[str | Path] = (),
    also: Sequence[Path] = (),
) -> Path:
    """The output and its sidecar (and ``also``: checkpoints, demo inputs) can be written, none is
    one of ``inputs``, and nothing the user has is replaced unasked."""
    p = check_writable(out, overwrite, inputs)  # (the folder's writability is probed once, here)
    for q in (*also, sidecar_path(p)):
        check_not_input(q, inputs)
        if (q.exists() or q.is_symlink()) and not overwrite:
            raise ArtstyleError(f"{q}: already exists; pass --overwrite to replace it")
    return p


#: The bar's layout; ``{}`` takes the iteration's numbers (which hold no braces).
_BAR = "{{desc}}{{percentage:3.0f}}%|{{bar}}| {} [{{elapsed}}<{{remaining}}]"


class _Progress:
    """A tqdm bar over work (pixels x iterations), so that the ETA is right across scales."""

    def __init__(self, content: Image.Image, cfg: StyleConfig, opts: JobOptions) -> None:
        self.cost, self.budgets = work_units(content, cfg)
        total = sum(c * b for c, b in zip(self.cost, self.budgets, strict=True))
        self.bar = tqdm(
            total=total,
            disable=not opts.progress,
            unit="Mpx-it",
            desc=opts.label or None,
            leave=True,
            dynamic_ncols=True,
            bar_format=_BAR.format(""),
        )

    def __call__(self, step: Step) -> None:
        loss = step.losses
        # The numbers go into the bar format itself: tqdm's postfix would start with ", ".
        self.bar.bar_format = _BAR.format(
            f"it {step.iteration}/{step.total} scale {step.scale}/{step.scales} "
            f"{step.size[0]}x{step.size[1]} loss {loss.get('total', 0):.3g} "
            f"(c {loss.get('content', 0):.2g} s {loss.get('style', 0):.2g} tv {loss.get('tv', 0):.2g})"
        )
        shown = False
        if step.iteration:  # (float sums can pass the total by a hair: no negative ETA)
            left = self.bar.total - self.bar.n
            shown = bool(self.bar.update(max(0.0, min(self.cost[step.scale - 1], left))))
        if not shown:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_job(
    content: Source,
    styles: Sequence[Source],
    out: str | Path,
    cfg: StyleConfig,
    opts: JobOptions | None = None,
) -> StyleResult:
    """Stylise and write ``out`` and its sidecar. Ctrl-C writes the output so far and returns it
    with ``interrupted=True``; a NaN writes the last good image and raises ArtstyleError."""
    opts = opts or JobOptions()
    inputs = _inputs(content, styles)
    n = opts.checkpoint_every
    planned = (
        [checkpoint_path(Path(out), i) for i in range(n, sum(work_units(content.image, cfg)[1]), n)]
        if n
        else []
    )
    out_path = check_output(out, opts.overwrite, inputs, planned)
    preflight(content.image.size, [s.image.size for s in styles], cfg, resolve_device(cfg.device))
    progress = _Progress(content.image, cfg, opts)
    style_images = [s.image for s in styles]

    interrupts = Interrupts()

    def on_step(step: Step) -> None:
        progress(step)
        if n and step.iteration and step.iteration % n == 0 and step.iteration < step.total:
            ck = checkpoint_path(out_path, step.iteration)
            image = finish_image(step.output, content.image, cfg)
            try:
                save_image(image, ck, overwrite=opts.overwrite, protect=inputs)
            except OutputExistsError:
                tqdm.write(f"artstyle: {ck} appeared meanwhile; kept it, skipped it", file=sys.stderr)
        interrupts.check()

    log = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731
    try:
        with interrupts.installed():
            result = stylize(content.image, style_images, cfg, callback=on_step, masks=opts.masks, log=log)
            where = write_result(out_path, result.image, result, cfg, content, styles, opts)
    except NonFiniteLossError as e:
        progress.close()
        if isinstance(e.last_good, Image.Image):
            with interrupts.installed():
                interrupts.has_image = True
                where = write_result(
                    out_path,
                    e.last_good,
                    None,
                    cfg,
                    content,
                    styles,
                    opts,
                    str(e),
                    getattr(e, "history", None),
                )
            raise ArtstyleError(f"{e}; the last good image is in {where}") from None
        raise ArtstyleError(f"{e}; no image was written") from None
    finally:
        progress.close()
    if where != out_path:
        raise ArtstyleError(
            f"{out_path} appeared while the run worked and was kept; the result is in {where}"
        )
    return result


def write_result(
    out: Path,
    image: Image.Image,
    result: StyleResult | None,
    cfg: StyleConfig,
    content: Source,
    styles: Sequence[Source],
    opts: JobOptions,
    error: str = "",
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the image and its sidecar under ``out`` or, when ``out`` or its sidecar appeared
    meanwhile (and ``overwrite`` is off), under the next free name: the work is never lost and
    nothing of the user's is replaced. Returns where the image went."""
    inputs = _inputs(content, styles)
    target = out
    for k in range(1, 10_000):
        try:
            if not opts.overwrite and sidecar_path(target).exists():
                raise OutputExistsError(str(sidecar_path(target)))
            save_image(image, target, overwrite=opts.overwrite, protect=inputs)
            break
        except OutputExistsError:
            target = out.with_name(f"{out.stem}-{k}{out.suffix}")
    # (a sidecar that appears in the instant after the image is the user's: the image is safe)
    data = sidecar_data(target.name, result, cfg, content, styles, opts, error=error, history=history)
    with contextlib.suppress(OutputExistsError):
        write_sidecar_data(target, data, opts.overwrite, inputs)
    return target


class Interrupts:
    """Ctrl-C during a run, handled so that the work so far is never lost.

    Once the run has an image, Ctrl-C only asks it to stop: the request is checked after every
    iteration (so the run stops within one), the image so far is written, and further Ctrl-Cs are
    ignored until it is. Before the first iteration there is nothing to keep, so Ctrl-C stops at
    once. (Python runs signal handlers between any two bytecodes, garbage collection included,
    so raising from the handler could land anywhere; a flag cannot.) Main thread only.
    """

    def __init__(self) -> None:
        self.requested = False
        self.has_image = False

    def _handler(self, signum: int, frame: Any) -> None:
        if not self.has_image:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Called after every iteration: stop the run here if Ctrl-C was pressed."""
        self.has_image = True
        if self.requested:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            # After a Ctrl-C the caller is on its way out with the image saved: a further Ctrl-C
            # must not land in a destructor on the way (Python would print it as a traceback).
            signal.signal(signal.SIGINT, signal.SIG_IGN if self.requested else old)


def execute_run(
    config: dict[str, Any],
    content: tuple[str, str, bytes],
    styles: Sequence[tuple[str, str, bytes]],
    output_name: str,
    extra: dict[str, Any] | None = None,
    threads: int = 0,
) -> dict[str, Any]:
    """One run from bytes to bytes, for a worker that does not share the driver's disk.

    The inputs come as ``(name, sha256, file bytes)`` and are loaded exactly as files are; the
    result is ``{"status": "done" | "interrupted", "image": PNG bytes, "sidecar": dict}`` or
    ``{"status": "failed", "message": ...}`` for an error of the run's own (bad input or settings,
    a NaN): those are reported, not retried.
    """
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = from_dict(config)
        sources = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, (name, sha, data) in enumerate([content, *styles]):
                p = Path(tmp) / f"input{i}{Path(name).suffix.lower() or '.img'}"
                p.write_bytes(data)
                try:
                    sources.append(Source(as_image(p, name), name, sha))
                except ArtstyleError as e:  # name the user's file, not the temporary copy
                    raise ArtstyleError(str(e).replace(str(p), name)) from None
        result = stylize(sources[0].image, [s.image for s in sources[1:]], cfg)
    except ArtstyleError as e:
        return {"status": "failed", "message": str(e)}
    side = sidecar_data(output_name, result, cfg, sources[0], sources[1:], JobOptions(extra=extra or {}))
    return {
        "status": "interrupted" if result.interrupted else "done",
        "image": encode_image(result.image, output_name),
        "sidecar": json_safe(side),
    }
