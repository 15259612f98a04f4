"""The built-in photo and painting, so that the main command runs with no files at all."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from artstyle.images.decode import load_image


def default_content() -> Image.Image:
    """A photograph that ships with matplotlib (Grace Hopper, public domain)."""
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return load_image(path)


def default_style(size: int = 512, seed: int = 1889) -> Image.Image:
    """A painting drawn by the project: swirling impasto strokes in a night-sky palette.

    Thousands of short thick strokes follow a smooth swirling flow field, in the manner of a
    post-impressionist sky, so that the built-in demo shows real brush-stroke texture transfer.
    """
    rng = np.random.default_rng(seed)
    w = h = size
    palette = np.array(
        [
            [18, 38, 92],
            [33, 70, 140],
            [62, 110, 180],
            [120, 170, 210],
            [235, 215, 110],
            [250, 240, 180],
            [20, 60, 60],
            [200, 140, 40],
            [10, 20, 50],
        ],
        dtype=np.float64,
    )
    yy, xx = np.mgrid[0:h, 0:w] / size
    # Background: smooth bands of blue.
    band = (np.sin(6 * yy + 2 * np.sin(5 * xx)) + 1) / 2
    bg = (palette[0] * (1 - band[..., None]) + palette[2] * band[..., None]).astype(np.uint8)
    img = Image.fromarray(bg, "RGB")
    draw = ImageDraw.Draw(img)
    centres = rng.uniform(0.1, 0.9, size=(4, 2))

    def angle(x: float, y: float) -> float:
        a = 1.5 * math.sin(3 * y) + math.cos(4 * x)
        for cx, cy in centres:  # swirls around a few centres
            dx, dy = x - cx, y - cy
            near = math.exp(-(dx * dx + dy * dy) * 60)
            # Blend towards the tangent of a circle around the centre: a swirl.
            a = a * (1 - near) + (math.atan2(dy, dx) + math.pi / 2) * near
        return a

    n = int(6 * size * size / 400)
    stroke = max(2, size // 110)
    for _ in range(n):
        x, y = rng.uniform(0, 1, 2)
        near = min(((x - cx) ** 2 + (y - cy) ** 2) for cx, cy in centres)
        idx = rng.choice([4, 5, 7]) if near < 0.006 else rng.choice([1, 2, 3, 0, 3, 8, 6])
        colour = np.clip(palette[idx] + rng.normal(0, 14, 3), 0, 255).astype(int)
        pts = []
        px, py = x, y
        for _ in range(int(rng.integers(4, 9))):
            pts.append((px * w, py * h))
            a = angle(px, py)
            px += math.cos(a) * 0.012
            py += math.sin(a) * 0.012
        draw.line(pts, fill=tuple(int(c) for c in colour), width=stroke, joint="curve")
    return img.filter(ImageFilter.SMOOTH)
