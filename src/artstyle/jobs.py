"""One run from files to files: load the inputs, check the output before any work, show progress,
write checkpoints, keep the image on Ctrl-C or a NaN, and write the JSON sidecar beside the output.

The CLI and the study both run through :func:`run_job`; the algorithm itself lives in
:mod:`artstyle.optimize` and knows nothing of files.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
from PIL import Image
from tqdm import tqdm

from artstyle import __version__
from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError, NonFiniteLossError
from artstyle.images import (
    atomic_write_bytes,
    check_size,
    check_writable,
    load_image,
    save_image,
)
from artstyle.optimize import Step, StyleResult, finish_image, level_plan, stylize


@dataclass
class Source:
    """An input image and where it came from (a path, or a built-in's name)."""

    image: Image.Image
    name: str
    sha256: str = ""

    @classmethod
    def from_path(cls, path: str | Path) -> Source:
        im = load_image(path)
        check_size(im, str(path))
        return cls(im, str(path), hashlib.sha256(Path(path).read_bytes()).hexdigest())

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


def write_sidecar(
    out: Path,
    result: StyleResult | None,
    cfg: StyleConfig,
    content: Source,
    styles: Sequence[Source],
    opts: JobOptions,
    *,
    error: str = "",
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """Everything needed to reproduce and judge ``out``: config, inputs, versions, losses, timings."""
    data: dict[str, Any] = {
        "output": out.name,
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
    path = sidecar_path(out)
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


def check_output(out: str | Path, overwrite: bool) -> Path:
    """The output and its sidecar can be written, and nothing the user has is replaced unasked."""
    p = check_writable(out, overwrite)
    if sidecar_path(p).exists() and not overwrite:
        raise ArtstyleError(f"{sidecar_path(p)}: already exists; pass --overwrite to replace it")
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
    out_path = check_output(out, opts.overwrite)
    progress = _Progress(content.image, cfg, opts)
    style_images = [s.image for s in styles]

    def on_step(step: Step) -> None:
        progress(step)
        n = opts.checkpoint_every
        if n and step.iteration and step.iteration % n == 0 and step.iteration < step.total:
            ck = out_path.with_name(f"{out_path.stem}.iter{step.iteration:05d}{out_path.suffix}")
            save_image(finish_image(step.output, content.image, cfg), ck)

    try:
        result = stylize(
            content.image, style_images, cfg, callback=on_step, log=lambda m: tqdm.write(m, file=sys.stderr)
        )
    except NonFiniteLossError as e:
        progress.close()
        if e.last_good is not None:
            save_image(e.last_good, out_path)
            write_sidecar(
                out_path, None, cfg, content, styles, opts, error=str(e), history=getattr(e, "history", None)
            )
            raise ArtstyleError(f"{e}; the last good image is in {out_path}") from None
        raise ArtstyleError(str(e)) from None
    finally:
        progress.close()
    save_image(result.image, out_path)
    write_sidecar(out_path, result, cfg, content, styles, opts)
    return result
