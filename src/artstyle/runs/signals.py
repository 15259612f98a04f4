"""Signals that stop a run: Ctrl-C (SIGINT) and SIGTERM mean the same, "stop and keep your work",
and the exit status says which came (128 + its number)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: The signal that last asked the run to stop (Ctrl-C's SIGINT, or SIGTERM).
_stopped_by = signal.SIGINT


def exit_status() -> int:
    """The exit status of a run stopped by a signal, by convention 128 + its number (130 for
    Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(_stopped_by)


def note_signal(signum: int) -> None:
    global _stopped_by
    _stopped_by = signal.Signals(signum)


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (what ``docker stop``, systemd, Kubernetes and Ray's cancel send: "stop and keep
    your state"), while the block runs, handled exactly as Ctrl-C: whatever handles SIGINT at that
    moment handles it, so a run keeps its image so far; the exit status is then 143. Main thread
    only."""

    def handler(signum: int, frame: Any) -> None:
        note_signal(signum)
        current = signal.getsignal(signal.SIGINT)
        if callable(current):
            current(signum, frame)
        elif current != signal.SIG_IGN:
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:  # (a program that called the CLI in-process gets its own handler back)
        signal.signal(signal.SIGTERM, old)
