"""Loss curves with matplotlib (headless)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from artstyle.files import atomic_write_bytes


def loss_curves(
    series: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]], path: Path, title: str
) -> None:
    """Four panels for several runs: total loss against iteration and against seconds, and the
    content and style losses divided by their weights (so runs with other weights compare).

    ``series`` maps a label to (history, config dict) of one run.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (a_it, a_s), (a_c, a_st) = axes
    for label, (history, cfg) in series.items():
        if not history:
            continue
        it = [h["iteration"] for h in history]
        sec = [h["seconds"] for h in history]
        a_it.plot(it, [h["total"] for h in history], label=label)
        a_s.plot(sec, [h["total"] for h in history], label=label)
        cw, sw = cfg.get("content_weight") or 1.0, cfg.get("style_weight") or 1.0
        a_c.plot(it, [h["content"] / cw for h in history], label=label)
        a_st.plot(it, [h["style"] / sw for h in history], label=label)
        changes = [h["iteration"] for prev, h in itertools.pairwise(history) if h["scale"] != prev["scale"]]
        for x in changes:
            for ax in (a_it, a_c, a_st):
                ax.axvline(x, color="0.85", lw=0.8, zorder=0)
    for ax, (xl, yl) in zip(
        (a_it, a_s, a_c, a_st),
        [
            ("iteration", "total loss"),
            ("seconds", "total loss"),
            ("iteration", "content loss / content_weight"),
            ("iteration", "style loss / style_weight"),
        ],
        strict=True,
    ):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    a_it.legend(fontsize=8)
    fig.suptitle(title + "   (grey lines: coarse-to-fine scale changes)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
