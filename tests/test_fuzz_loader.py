"""Fuzzing the image loader: mutated PNG, JPEG, TIFF, GIF, WebP and BMP bytes (bit flips, overwritten
runs, truncations, insertions, duplicated and dropped spans) must either load as an RGB image or fail
with one clean ArtstyleError, never with any other exception.

Bounded for CI: ``ARTSTYLE_FUZZ_EXAMPLES`` inputs (default 600), derandomised so that a failure is
reproducible; set it higher for a longer hunt (``ARTSTYLE_FUZZ_EXAMPLES=20000 pytest -k fuzz``).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artstyle.errors import ArtstyleError
from artstyle.images.decode import as_image, load_image
from tests.conftest import gradient_image

EXAMPLES = int(os.environ.get("ARTSTYLE_FUZZ_EXAMPLES", "600"))


def _seeds() -> dict[str, bytes]:
    im = gradient_image(40, 36)
    out = {}
    for fmt, mode, kw in (
        ("PNG", "RGB", {}),
        ("PNG", "P", {}),
        ("PNG", "RGBA", {}),
        ("JPEG", "RGB", {"quality": 80}),
        ("JPEG", "CMYK", {}),
        ("TIFF", "RGB", {}),
        ("TIFF", "I;16", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {"quality": 60}),
        ("BMP", "RGB", {}),
    ):
        buf = io.BytesIO()
        src = (
            im.convert(mode)
            if mode != "I;16"
            else Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257)
        )
        src.save(buf, fmt, **kw)
        out[f"{fmt}-{mode}"] = buf.getvalue()
    return out


SEEDS = _seeds()


MUTATIONS = ["flip", "overwrite", "truncate", "insert", "duplicate", "drop", "header"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(["flip", "overwrite", "truncate", "insert", "duplicate", "drop", "header"])
        )
        n = len(data)
        if n == 0:
            break
        i = draw(st.integers(0, n - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[i : i + len(chunk)] = chunk
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "duplicate":
            j = draw(st.integers(i, min(n, i + 256)))
            data[j:j] = data[i:j]
        elif kind == "drop":
            del data[i : draw(st.integers(i, min(n, i + 64)))]
        else:  # the header, where the sizes and modes live
            k = draw(st.integers(0, min(n, 48) - 1))
            data[k] = draw(st.integers(0, 255))
    return bytes(data)


STATS = {"inputs": 0, "loaded": 0, "refused": 0, "seconds": 0.0}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(
        f"\nfuzz: {STATS['inputs']} inputs in {STATS['seconds']:.1f} s: {STATS['loaded']} loaded, "
        f"{STATS['refused']} refused with ArtstyleError"
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_fuzz_loader_only_ever_raises_artstyle_error(data: bytes):
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "fuzz.img"
        p.write_bytes(data)
        try:
            im = load_image(p)
        except ArtstyleError as e:
            assert "\n" not in str(e)
            STATS["refused"] += 1
        else:
            assert im.mode == "RGB" and im.width > 0 and im.height > 0
            STATS["loaded"] += 1
        # The API's normaliser on the same bytes opened by Pillow directly: the same guarantee.
        try:
            with Image.open(io.BytesIO(data)) as opened:
                as_image(opened)
        except ArtstyleError:
            pass
        except Exception as e:  # Pillow refusing to open at all is the caller's, not ours
            assert isinstance(e, (OSError, SyntaxError, ValueError, Image.DecompressionBombError)), e
    STATS["inputs"] += 1
    STATS["seconds"] += time.perf_counter() - t
