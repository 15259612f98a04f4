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

from artstyle.config import StyleConfig, VideoOptions, from_dict
from artstyle.engine.stylizer import Stylizer
from artstyle.errors import ArtstyleError
from artstyle.log import to_terminal
from artstyle.runs.cluster import MAX_RETRIES, ray_module
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
        cfg: StyleConfig = st.cfg
        self._args = (
            cfg.to_dict(),
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
        #: chunks retried after a lost worker: (chunk, try, what happened)
        self.retries: list[dict[str, Any]] = []

    def free(self) -> int:
        return len(self.idle)

    def submit(self, task: Task) -> None:
        actor = self.idle.pop(0)
        self.running[actor.paint.remote(task.frames, task.first, task.before)] = (actor, task)

    def next_done(self, on_frame: Callable[[Task, Painted], None]) -> tuple[Task, list[Painted]]:
        ray = self.ray
        while True:
            finished, _ = ray.wait(list(self.running), num_returns=1, timeout=0.25)
            self.interrupts.check()  # (Ctrl-C, SIGTERM or a cancel: raises KeyboardInterrupt)
            if not finished:
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
                self.submit(task)
                continue
            except ray.exceptions.RayError as e:
                raise ArtstyleError(f"a chunk failed on the cluster: {_line(e)}") from None
            self.idle.append(actor)
            for p in painted:
                on_frame(task, p)
            return task, painted

    def _replace(self, actor: Any) -> None:
        """Another actor for a lost one (Ray places it where there is room)."""
        if actor in self.actors:
            self.actors.remove(actor)
        with contextlib.suppress(Exception):  # (it is gone already, or going)
            self.ray.kill(actor, no_restart=True)
        self.actors.append(self._remote.remote(*self._args))
        self.idle.append(self.actors[-1])

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.actors, self.idle, self.running = [], [], {}


def ray_workers(
    cpus_per_run: int = 1, **kwargs: Any
) -> Callable[[FramePainter, Interrupts, int], RayWorkers]:
    """The ``workers`` of :func:`~artstyle.runs.video.run.stylize_video` for a connected Ray."""
    return lambda painter, interrupts, chunks: RayWorkers(
        painter, interrupts, cpus_per_run, most=chunks, **kwargs
    )
