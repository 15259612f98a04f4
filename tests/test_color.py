import numpy as np
from PIL import Image

from artstyle.engine.color import combine_luminance, from_yiq, luminance_image, match_color, to_yiq
from tests.conftest import gradient_image, stripes_image


def test_yiq_roundtrip():
    a = np.random.default_rng(0).uniform(0, 255, (5, 3))
    assert np.allclose(from_yiq(to_yiq(a)), a)


def test_match_color_matches_mean_and_covariance():
    photo = gradient_image(64, 64)
    rng = np.random.default_rng(1)
    style = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) // 2 + 100, "RGB")
    out = np.asarray(match_color(style, photo), dtype=float).reshape(-1, 3)
    ref = np.asarray(photo, dtype=float).reshape(-1, 3)
    assert np.allclose(out.mean(0), ref.mean(0), atol=3)
    assert np.allclose(np.cov(out, rowvar=False), np.cov(ref, rowvar=False), rtol=0.15, atol=30)


def test_luminance_transfer_keeps_the_photo_chroma():
    photo = gradient_image(32, 32)
    gray = luminance_image(Image.new("RGB", (32, 32), (120, 130, 140)))
    a = np.asarray(gray)
    assert (a[..., 0] == a[..., 1]).all()
    rgb = np.asarray(combine_luminance(gray, photo), dtype=float)
    unclipped = ((rgb > 0) & (rgb < 255)).all(axis=2)
    assert unclipped.mean() > 0.8
    out, ref = to_yiq(rgb)[unclipped], to_yiq(np.asarray(photo, dtype=float))[unclipped]
    assert np.allclose(out[:, 1:], ref[:, 1:], atol=2)  # I, Q of the photo
    assert np.allclose(out[:, 0], to_yiq(a.astype(float))[unclipped][:, 0], atol=2)


def test_luminance_matched_to_photo():
    photo = gradient_image(32, 32)
    y = np.asarray(luminance_image(stripes_image(32, 32), like=photo), dtype=float)[..., 0]
    ref = to_yiq(np.asarray(photo, dtype=float))[..., 0]
    assert abs(y.mean() - ref.mean()) < 2 and abs(y.std() - ref.std()) < 3
