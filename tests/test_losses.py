import pytest
import torch

from artstyle.errors import ArtstyleError
from artstyle.model.losses import (
    AnchorLoss,
    ContentLoss,
    GramStyleLoss,
    MeanCovStyleLoss,
    SlicedWassersteinStyleLoss,
    blend_weights,
    gaussian_blur,
    gram_matrix,
    layer_weights,
    tv_loss,
)


def test_gram_by_hand():
    # C=2 channels, N=2 positions: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / (C N = 4)
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    assert torch.equal(gram_matrix(f), torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))


def test_gram_is_size_independent_for_a_repeated_texture():
    f = torch.rand(1, 8, 5, 5)
    assert torch.allclose(gram_matrix(f), gram_matrix(f.repeat(1, 1, 3, 3)), atol=1e-6)


def test_content_loss_by_hand():
    target = torch.zeros(1, 1, 1, 2)
    assert ContentLoss(target)(torch.tensor([[[[1.0, 3.0]]]])).item() == pytest.approx(5.0)


def test_gram_style_loss_by_hand():
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    loss = GramStyleLoss(s)
    assert loss(s).item() == 0.0
    # G(2s) = 4 G(s): difference 3 G(s) -> mean of 9 G^2 = 9 * (1.25^2 + 2 * 2.75^2 + 6.25^2) / 4
    expected = 9 * (1.25**2 + 2 * 2.75**2 + 6.25**2) / 4
    assert loss(2 * s).item() == pytest.approx(expected)


def test_tv_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    # vertical diffs 2, 3 -> mean 6.5; horizontal diffs 1, 2 -> mean 2.5
    assert tv_loss(x).item() == pytest.approx(9.0)


def test_layer_and_blend_weights():
    assert layer_weights(3, 1.0) == pytest.approx([1 / 3] * 3)
    assert layer_weights(3, 2.0) == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    assert blend_weights(2) == [0.5, 0.5]
    assert blend_weights(2, [1, 3]) == [0.25, 0.75]
    with pytest.raises(ArtstyleError, match="1 style_blend_weights given for 2 paintings"):
        blend_weights(2, [1])


def test_mean_cov_is_the_1d_gaussian_w2():
    # One channel: W2^2 = (mu1 - mu2)^2 + (s1 - s2)^2
    a = torch.tensor([0.0, 2.0, 4.0, 6.0]).view(1, 1, 1, 4)  # mean 3, var 5
    b = torch.tensor([1.0, 1.0, 3.0, 3.0]).view(1, 1, 1, 4)  # mean 2, var 1
    loss = MeanCovStyleLoss(b)
    expected = (3 - 2) ** 2 + (5**0.5 - 1) ** 2
    assert loss(a).item() == pytest.approx(expected, rel=1e-4)
    assert loss(b).item() == pytest.approx(0.0, abs=1e-3)


def test_mean_cov_multichannel_zero_at_target_and_finite_gradient():
    s = torch.rand(1, 6, 8, 8)
    loss = MeanCovStyleLoss(s)
    assert loss(s).item() == pytest.approx(0.0, abs=1e-3)
    x = torch.rand(1, 6, 8, 8, requires_grad=True)
    value = loss(x)
    value.backward()
    assert value.item() > 0 and torch.isfinite(x.grad).all()


def test_sliced_wasserstein():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(1, 4, 6, 6)
    loss = SlicedWassersteinStyleLoss(s, g)
    assert loss(s).item() == pytest.approx(0.0, abs=1e-10)
    shuffled = s.flatten(2)[:, :, torch.randperm(36)].view(1, 4, 6, 6)
    assert loss(shuffled).item() == pytest.approx(0.0, abs=1e-10)  # order of positions is irrelevant
    assert loss(s + 3).item() > 0.1
    # a different number of positions (another image size) compares against resampled quantiles
    assert loss(s.repeat(1, 1, 2, 2)).item() == pytest.approx(0.0, abs=0.05)
    before = loss.directions.clone()
    loss.resample()
    assert not torch.equal(before, loss.directions)
    assert torch.allclose(loss.directions.norm(dim=0), torch.ones(4))


def test_gram_loss_gradient_matches_autograd():
    s = torch.rand(1, 5, 4, 3, dtype=torch.float64)
    loss = GramStyleLoss(s)
    x = torch.rand(1, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: loss(t), (x,))
    plain = torch.mean((gram_matrix(x) - loss.target) ** 2)
    (g_plain,) = torch.autograd.grad(plain, x)
    (g_fast,) = torch.autograd.grad(loss(x), x)
    assert torch.allclose(g_plain, g_fast) and torch.allclose(plain, loss(x))


def test_gaussian_blur_keeps_flat_and_smooth_pictures_and_removes_fine_stripes():
    flat = torch.full((1, 3, 20, 30), 7.0)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
    ramp = torch.arange(30.0).expand(1, 3, 20, 30).contiguous()
    assert torch.allclose(gaussian_blur(ramp, 1.0)[..., 4:-4], ramp[..., 4:-4], atol=1e-4)
    stripes = (torch.arange(30) % 2).float().expand(1, 1, 20, 30) * 255
    assert float(gaussian_blur(stripes, 1.0)[..., 4:-4].std()) < 0.05 * float(stripes.std())
    thin = torch.rand(1, 3, 2, 40)  # thinner than the kernel: still its own shape
    assert gaussian_blur(thin, 1.0).shape == thin.shape


def test_anchor_loss_by_hand_sees_low_frequencies_only():
    start = torch.rand(1, 3, 24, 24) * 255
    loss = AnchorLoss(start, 1.0)
    assert float(loss(start)) == pytest.approx(0.0, abs=1e-8)
    shifted = start + 10.0  # a change of the picture's coarse content: all of it counts
    assert float(loss(shifted)) == pytest.approx(100.0, rel=1e-4)
    fine = (torch.arange(24) % 2).float().expand(1, 3, 24, 24) * 20 - 10  # finest detail: ~ nothing
    assert float(loss(start + fine)) < 0.05 * float(loss(shifted))
    expected = torch.mean((gaussian_blur(shifted, 1.0) - gaussian_blur(start, 1.0)) ** 2)
    assert float(loss(shifted)) == pytest.approx(float(expected))
    assert loss.blank_loss() == pytest.approx(float(torch.mean(gaussian_blur(start, 1.0) ** 2)))
