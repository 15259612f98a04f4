"""Run in the studio's worker process (``worker_init``): random tiny-network weights instead of the
real ones, so the API and browser tests need no download and run fast."""

from __future__ import annotations


def tiny_weights() -> None:
    from artstyle.engine.runtime import WEIGHTS
    from tests.conftest import random_weights

    for net in ("vgg19", "vgg16"):
        WEIGHTS.put("auto", net, random_weights(net))


def fake_ray_driver(commands, events, data, address, env, cpus, init) -> None:  # type: ignore[no-untyped-def]
    """Stands in for the studio's Ray driver process (``artstyle.apps.web.executors._driver_main``),
    as the word in ``DATA/fake-ray`` says: ``lost`` (connected; the first job ends the process, as
    Ray ends a driver whose raylet died; the next starts are ``down``), ``down`` (the cluster cannot
    be reached) or ``up`` (connected; every job is done at once)."""
    import os
    from pathlib import Path

    from artstyle.apps.web.events import Finished, Started, Status

    word = Path(data, "fake-ray").read_text().strip()
    if word == "down":
        why = f"cannot reach the Ray cluster at {address} (Connection refused); is it running?"
        events.put(("failed", why))
        return
    if word == "lost":
        Path(data, "fake-ray").write_text("down")
    events.put(("ready", 1))
    while True:
        cmd = commands.get()
        if cmd[0] == "stop":
            return
        if cmd[0] == "run":
            if word == "lost":
                os._exit(1)
            events.put(("event", Started(cmd[1]["id"])))
            events.put(("event", Finished(cmd[1]["id"], Status.DONE, {"has_image": False})))
