"""The console side of a run: a progress bar over the plan's work (level, iteration, losses, ETA)
and Ctrl-C that keeps the work so far."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tqdm import tqdm

from artstyle.engine.plan import GB, Plan
from artstyle.engine.stylizer import Step
from artstyle.runs.signals import note_signal

#: The bar's layout; ``{}`` takes the iteration's numbers (which hold no braces).
_BAR = "{{desc}}{{percentage:3.0f}}%|{{bar}}| {} [{{elapsed}}<{{remaining}}]"


def _level_of(plan: Plan, iteration: int) -> int:
    """The 1-based level that step ``iteration`` belongs to."""
    done = 0
    for number, level in enumerate(plan.levels, start=1):
        done += level.steps
        if iteration <= done:
            return number
    return len(plan.levels)


def resident_gb() -> float:
    """The process's resident memory now (Linux), in GB; 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return 0.0


class Progress:
    """A tqdm bar over the plan's work (megapixel-iterations, :attr:`Plan.work`), so that the ETA
    is right across levels of different sizes."""

    def __init__(self, plan: Plan, *, enabled: bool = True, label: str = "", start: int = 0) -> None:
        self.plan = plan
        self.bar = tqdm(
            total=plan.work,
            initial=plan.work_done(_level_of(plan, start), start) if start else 0,
            disable=not enabled,
            unit="Mpx-it",
            desc=label or None,
            leave=True,
            dynamic_ncols=True,
            bar_format=_BAR.format(""),
        )

    def __call__(self, step: Step) -> None:
        loss = step.losses
        # The numbers go into the bar format itself: tqdm's postfix would start with ", ".
        tile = ""
        if step.tile:
            p, passes, t, tiles = step.tile
            tile = f" pass {p}/{passes} tile {t}/{tiles}"
        if self.plan.budget:  # (the memory now, of the budget the run was planned for)
            tile += f" {resident_gb():.1f}/{self.plan.budget / GB:.1f} GB"
        elif step.tile:
            tile += f" {resident_gb():.1f} GB"
        # (the painting's own pixels per pixel of the level: under 1, it is enlarged)
        level = self.plan.levels[min(step.scale, len(self.plan.levels)) - 1]
        tile += f" painting {level.painting_px:.2g} px/px"
        self.bar.bar_format = _BAR.format(
            f"it {step.iteration}/{step.total} scale {step.scale}/{step.scales} "
            f"{step.size[0]}x{step.size[1]}{tile} loss {loss.get('total', 0):.3g} "
            f"(c {loss.get('content', 0):.2g} s {loss.get('style', 0):.2g} tv {loss.get('tv', 0):.2g})"
        )
        shown = False
        if step.iteration:
            done = self.plan.work_done(step.scale, step.iteration)
            shown = bool(self.bar.update(max(0.0, done - self.bar.n)))
        if not shown:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class Interrupts:
    """Ctrl-C during a run, handled so that the work so far is never lost.

    Once the run has an image, Ctrl-C only asks it to stop: the request is checked after every
    iteration (so the run stops within one), the image so far is written, and further Ctrl-Cs are
    ignored until it is. Before the first iteration there is nothing to keep, so Ctrl-C stops at
    once. (Python runs signal handlers between any two bytecodes, garbage collection included,
    so raising from the handler could land anywhere; a flag cannot.) Main thread only.
    """

    def __init__(self, cancelled: Callable[[], bool] | None = None) -> None:
        self.requested = False
        self.has_image = False
        self.cancelled = cancelled

    def _handler(self, signum: int, frame: Any) -> None:
        note_signal(signum)
        if not self.has_image:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Called after every iteration: stop the run here if Ctrl-C was pressed or the run was
        cancelled (``cancelled``, a flag read here: a studio's cancel, on a worker or on Ray)."""
        self.has_image = True
        if self.requested or (self.cancelled is not None and self.cancelled()):
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self, enabled: bool = True) -> Iterator[None]:
        """Ctrl-C handled as above while inside (``enabled``, and on the main thread)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        old = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            # After a Ctrl-C the caller is on its way out with the image saved: a further Ctrl-C
            # must not land in a destructor on the way (Python would print it as a traceback).
            signal.signal(signal.SIGINT, signal.SIG_IGN if self.requested else old)
