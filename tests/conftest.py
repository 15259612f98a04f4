"""Shared fixtures: random (He-initialised) VGG weights so logic tests need no download, and small
images of every awkward kind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle.engine.runtime import WEIGHTS
from artstyle.layers import conv_layers
from artstyle.model.weights import LoadedWeights

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "images"


def random_state(network: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """He-initialised weights for every convolution of the layer table, keyed by its names."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for conv in conv_layers(network):
        cin, cout = conv.in_channels, conv.channels
        std = (2.0 / (cin * 9)) ** 0.5
        state[f"{conv.name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * std
        state[f"{conv.name}.bias"] = torch.randn(cout, generator=g) * 0.01
    return state


def random_weights(network: str = "vgg19", convention: str = "caffe") -> LoadedWeights:
    return LoadedWeights(random_state(network), convention, f"random-{network}")


@pytest.fixture
def tiny_weights() -> Iterator[None]:
    """Runs that ask for the default weights get random ones instead (no download, fast)."""
    saved = WEIGHTS.snapshot()
    for net in ("vgg19", "vgg16"):
        WEIGHTS.put("auto", net, random_weights(net))
    yield
    WEIGHTS.restore(saved)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARTSTYLE_CACHE", str(cache))
    return cache


def gradient_image(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 128 / (w + h)], axis=2)
    a = a + rng.normal(0, 20, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def stripes_image(w: int = 48, h: int = 48) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = ((xx // 4) % 2) * 255
    a[..., 2] = ((yy // 6) % 2) * 200
    return Image.fromarray(a, "RGB")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    p = tmp_path / "photo.png"
    gradient_image().save(p)
    return p


@pytest.fixture
def painting(tmp_path: Path) -> Path:
    p = tmp_path / "painting.png"
    stripes_image().save(p)
    return p


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray of 2 CPUs on loopback for the module's tests (the cluster extra)."""
    ray = start_local_ray()
    yield
    ray.shutdown()


def start_local_ray(**init: Any) -> Any:
    """Start a local Ray of 2 CPUs on loopback (``init``: more of ``ray.init``'s arguments)."""
    ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        **init,
    )
    return ray


def shared_image(kind: str, name: str) -> Path:
    p = SHARED / kind / name
    if not p.exists():
        pytest.skip(f"{p} is absent: ../shared/images is not beside this checkout")
    return p


os.environ.setdefault("TQDM_DISABLE", "1")
