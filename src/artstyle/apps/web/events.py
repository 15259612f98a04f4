"""What the studio's jobs say, typed: one status enum (the page reads it from the schema), one
dataclass per kind of event a running job sends its manager, and the cancel flag a job reads
between iterations, wherever it runs.

A job is :attr:`Status.QUEUED`, then :attr:`Status.RUNNING` (:class:`Started`), sends
:class:`Progress` every iteration, :class:`Preview` when ``preview.png`` is replaced and
:class:`Saved` when its resumable state is (``state.pt``), and ends
with one :class:`Finished` whose status is one of :data:`FINISHED`.

Cancel is a flag (:class:`CancelFlag`), read after every iteration by the run itself
(:func:`artstyle.runs.jobs.run_job`): on this machine a shared array the worker process sees
(:class:`SharedFlags`), on Ray a small actor the task asks (:class:`ActorFlags`). Nothing is ever
raised into a running job from outside, so a cancel cannot land inside Ray's own calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Status(StrEnum):
    """A studio job's status."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # (the server stopped while it ran)

    @property
    def finished(self) -> bool:
        return self in FINISHED


#: The statuses a job ends in.
FINISHED = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED})


@dataclass
class Started:
    job: str
    time: float = field(default_factory=time.time)


@dataclass
class Progress:
    """One iteration (or, for an experiment, the runs done so far): what the page shows."""

    job: str
    data: dict[str, Any]


@dataclass
class Preview:
    """``preview.png`` was replaced (its ``n``-th); ``png``: its bytes, from a task on Ray, whose
    folder is not the server's."""

    job: str
    n: int
    iteration: int | None = None
    png: bytes | None = None


@dataclass
class Saved:
    """``state.pt`` was replaced: the run can be taken up again from step ``step`` (a worker that
    dies is retried from there); ``data``: its bytes, from a task on Ray."""

    job: str
    step: int
    data: bytes | None = None


@dataclass
class Finished:
    """The job's end: its status (one of :data:`FINISHED`) and what its record keeps (``message``,
    ``has_image``, losses, ...)."""

    job: str
    status: Status
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


Event = Started | Progress | Preview | Saved | Finished


class CancelFlag(Protocol):
    """What a running job reads between iterations."""

    def cancelled(self) -> bool:
        """Stop now, keeping the picture so far."""
        ...

    def stopping(self) -> bool:
        """The server is stopping (the job ends ``interrupted``, not ``cancelled``)."""
        ...


def stopped(flags: CancelFlag) -> Status:
    """How a job that its flag stopped ends: ``interrupted`` when the server stops, else
    ``cancelled``."""
    return Status.INTERRUPTED if flags.stopping() else Status.CANCELLED


class SharedFlags:
    """The worker process's flags: ``array[0]`` holds the sequence number of the job to cancel,
    ``array[1]`` is 1 while the server stops (a ``multiprocessing`` array the manager writes)."""

    def __init__(self, array: Any, seq: int) -> None:
        self.array, self.seq = array, seq

    def cancelled(self) -> bool:
        return bool(self.array[0] == self.seq)

    def stopping(self) -> bool:
        return bool(self.array[1])


class CancelBoard:
    """A Ray actor's state: the jobs cancelled, and whether each was cancelled by the server
    stopping. The executor writes it; each task reads its own line."""

    def __init__(self) -> None:
        self.jobs: dict[str, bool] = {}

    def cancel(self, job: str, stopping: bool) -> None:
        self.jobs[job] = self.jobs.get(job, False) or stopping

    def state(self, job: str) -> tuple[bool, bool]:
        return job in self.jobs, self.jobs.get(job, False)

    def forget(self, job: str) -> None:
        self.jobs.pop(job, None)


class ActorFlags:
    """A Ray task's flags: its line of the :class:`CancelBoard` actor, asked at most every
    ``every`` seconds (an iteration is far longer than the call)."""

    def __init__(self, board: Any, job: str, every: float = 0.25) -> None:
        self.board, self.job, self.every = board, job, every
        self._state, self._asked = (False, False), 0.0

    def _read(self) -> tuple[bool, bool]:
        import ray

        now = time.monotonic()
        if not self._state[0] and now - self._asked >= self.every:
            self._asked = now
            self._state = ray.get(self.board.state.remote(self.job))
        return self._state

    def cancelled(self) -> bool:
        return self._read()[0]

    def stopping(self) -> bool:
        return self._read()[1]
