"""Run in the studio's worker process (``worker_init``): random tiny-network weights instead of the
real ones, so the API and browser tests need no download and run fast."""

from __future__ import annotations


def tiny_weights() -> None:
    from artstyle.engine.runtime import WEIGHTS
    from tests.conftest import random_weights

    for net in ("vgg19", "vgg16"):
        WEIGHTS.put("auto", net, random_weights(net))
