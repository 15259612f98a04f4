"""A clip's chunks on a Ray cluster (``artstyle video --runner ray``).

Each worker is a long-lived actor that loads the network and the paintings' statistics once and
paints whole chunks with the same :class:`~artstyle.runs.video.chunks.FramePainter` as a local run
(so both paint the same frames). A chunk's frames travel to the actor and come back as PNG bytes
with their records; the driver writes them, records the chunk and encodes the video once. An actor
that dies (its process, or its node) loses only its chunk: the driver starts another actor
(wherever Ray finds room) and gives it the chunk, saying so in one line, :data:`MAX_RETRIES` times
at most.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from PIL import Image

from artstyle.config import VideoOptions, from_dict
from artstyle.engine.stylizer import Stylizer
from artstyle.errors import ArtstyleError
from artstyle.log import to_terminal
from artstyle.runs.cluster import MAX_RETRIES, ray_module, start_actor
from artstyle.runs.console import Interrupts
from artstyle.runs.video.chunks import FramePainter, Painted
from artstyle.runs.video.run import Task


class ChunkWorker:
    """A Ray actor's state: a frame painter of the run's settings, made once."""

    def __init__(
        self,
        config: dict[str, Any],
        opts: dict[str, Any],
        styles: list[Image.Image],
        size: tuple[int, int],
        masks: list[Any] | None,
        threads: int,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        stylizer = Stylizer(styles, from_dict(config))
        self.painter = FramePainter(stylizer, VideoOptions(**opts), size, masks)

    def paint(
        self, frames: list[Image.Image], first: int, before: tuple[Image.Image, Image.Image] | None
    ) -> list[Painted]:
        return list(self.painter.paint(frames, first, before))

    def ready(self) -> bool:
        """Answers once the actor is up (its network loaded): a replacement joins then."""
        return True

    def pid(self) -> int:
        return os.getpid()


def _line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]


class RayWorkers:
    """Chunks on Ray actors (one per ``cpus_per_run`` CPUs of the cluster, at most ``actors``, and
    no more than there are chunks); see the module. ``worker``: the actors' class."""

    def __init__(
        self,
        painter: FramePainter,
        interrupts: Interrupts,
        cpus_per_run: int = 1,
        actors: int = 0,
        most: int = 0,
        worker: type[ChunkWorker] = ChunkWorker,
        worker_args: tuple[Any, ...] = (),
        log: Callable[[str], None] = to_terminal,
    ) -> None:
        ray = self.ray = ray_module()
        self.interrupts, self.log = interrupts, log
        n = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_run)
        n = min(n, most) if most else n
        st = painter.stylizer
        self._remote = ray.remote(worker).options(num_cpus=cpus_per_run, max_restarts=0, max_task_retries=0)
        self._args = (
            st.cfg.to_dict(),
            asdict(painter.opts),
            list(st.styles),
            painter.size,
            painter.masks,
            cpus_per_run,
            *worker_args,
        )
        self.actors = [self._remote.remote(*self._args) for _ in range(n)]
        self.idle = list(self.actors)
        self.running: dict[Any, tuple[Any, Task]] = {}
        self.starting: dict[Any, Any] = {}  # replacements not up yet: their ready() -> the actor
        self.again: list[Task] = []  # chunks of lost workers, first in line for the next free one
        #: chunks retried after a lost worker: (chunk, try, what happened)
        self.retries: list[dict[str, Any]] = []

    def free(self) -> int:
        return max(0, len(self.idle) - len(self.again))

    def submit(self, task: Task) -> None:
        actor = self.idle.pop(0)
        self.running[actor.paint.remote(task.frames, task.first, task.before)] = (actor, task)

    def next_done(self, on_frame: Callable[[Task, Painted], None]) -> tuple[Task, list[Painted]]:
        ray = self.ray
        while True:
            while self.again and self.idle:
                self.submit(self.again.pop(0))
            finished, _ = ray.wait([*self.running, *self.starting], num_returns=1, timeout=0.25)
            self.interrupts.check()  # (Ctrl-C, SIGTERM or a cancel: raises KeyboardInterrupt)
            if not finished:
                continue
            if finished[0] in self.starting:  # a replacement is up: it takes chunks from now on
                actor = self.starting.pop(finished[0])
                with contextlib.suppress(ray.exceptions.RayError):
                    ray.get(finished[0])
                    self.actors.append(actor)
                    self.idle.append(actor)
                continue
            actor, task = self.running.pop(finished[0])
            try:
                painted: list[Painted] = ray.get(finished[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                self._replace(actor)
                c = task.chunk
                task.tries += 1
                what = f"chunk {c.index + 1} (frames {task.first}-{c.end - 1})"
                if task.tries > MAX_RETRIES:
                    raise ArtstyleError(
                        f"{what} failed {task.tries} times on the cluster; its worker was lost: {_line(e)}"
                    ) from None
                self.retries.append({"chunk": c.index, "try": task.tries + 1, "reason": _line(e)})
                self.log(
                    f"artstyle: a worker was lost (its process or node died; out of memory?); {what} "
                    f"goes to another worker, try {task.tries + 1} of {MAX_RETRIES + 1}"
                )
                self.again.append(task)  # (to the first worker free: a survivor, or the new one once up)
                continue
            except ray.exceptions.RayError as e:
                raise ArtstyleError(f"a chunk failed on the cluster: {_line(e)}") from None
            self.idle.append(actor)
            for p in painted:
                on_frame(task, p)
            return task, painted

    def _replace(self, actor: Any) -> None:
        """Another actor for a lost one, where Ray finds room (after a node's death maybe nowhere:
        it joins once it is up, and meanwhile the others go on)."""
        if actor in self.actors:
            self.actors.remove(actor)
        with contextlib.suppress(Exception):  # (it is gone already, or going)
            self.ray.kill(actor, no_restart=True)
        ref_up, new = start_actor(self._remote, self._args)
        self.starting[ref_up] = new

    def close(self) -> None:
        for actor in [*self.actors, *self.starting.values()]:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.actors, self.idle, self.running, self.starting, self.again = [], [], {}, {}, []


def ray_workers(
    cpus_per_run: int = 1, **kwargs: Any
) -> Callable[[FramePainter, Interrupts, int], RayWorkers]:
    """The ``workers`` of :func:`~artstyle.runs.video.run.stylize_video` for a connected Ray."""
    return lambda painter, interrupts, chunks: RayWorkers(
        painter, interrupts, cpus_per_run, most=chunks, **kwargs
    )
