"""The terms of the objective, each a small module that holds its target as a buffer.

Notation: ``F`` is a layer's activation reshaped to C x N (C channels, N = H*W positions) for the
image being optimised, ``P`` the same for the content photo, ``S`` for a style painting.

Normalisations (as in anishathalye/neural-style, which the study used) make a weight mean the same
at every image size: the content loss is a mean over all C*N entries; the Gram matrix is divided by
C*N, so it is an average over positions; the style loss is a mean over the C*C Gram entries; the TV
loss is a mean over pixel differences. So ``style_weight / content_weight`` is size-independent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def flatten_features(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) activations to (B, C, N) with N = H*W."""
    b, c, h, w = f.shape
    return f.reshape(b, c, h * w)


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G = F F^T / (C N)`` of (B, C, H, W) activations, shape (B, C, C)."""
    x = flatten_features(f)
    c, n = x.shape[1], x.shape[2]
    return torch.bmm(x, x.transpose(1, 2)) / (c * n)


def layer_weights(n: int, exp: float) -> list[float]:
    """Weights ``w_i = exp**i / sum_j exp**j`` for layers i = 0..n-1 (``style_layer_weight_exp``)."""
    raw = [exp**i for i in range(n)]
    total = sum(raw)
    return [r / total for r in raw]


def blend_weights(n: int, weights: Sequence[float] = ()) -> list[float]:
    """``weights`` normalised to sum 1; equal weights when empty (``style_blend_weights``)."""
    if not weights:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} blend weights for {n} images")
    total = float(sum(weights))
    return [w / total for w in weights]


class ContentLoss(nn.Module):
    """``L_content = mean((F - P)^2)`` over all C*N entries (Gatys et al. 2015, eq. 1, as a mean)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.mean((f - self.target) ** 2)

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(P^2)``: the target's magnitude."""
        return float(torch.mean(self.target**2))


class _GramMSE(torch.autograd.Function):
    """``mean((F F^T / (C N) - A)^2)`` with a hand-written backward.

    Since G is symmetric, ``dL/dF = 4 (G - A) F / (C^3 N)``: one matrix product, where autograd
    would do two products and a sum (a third of the Gram cost on every iteration).
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        c, n = x.shape[1], x.shape[2]
        diff = torch.bmm(x, x.transpose(1, 2)).div_(c * n).sub_(target)
        ctx.save_for_backward(x, diff)
        return diff.pow(2).mean()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, diff = ctx.saved_tensors  # type: ignore[attr-defined]
        c, n = x.shape[1], x.shape[2]
        scale = grad * 4.0 / (diff.numel() * c * n)
        if x.stride(1) == 1:
            # Channels-last activations: produce the gradient in the same memory layout (as
            # (F^T (G - A))^T, G - A being symmetric), so that autograd adds it to the gradient
            # from the layers above without a strided copy.
            return torch.bmm(x.transpose(1, 2), diff).mul_(scale).transpose(1, 2), None
        return torch.bmm(diff, x).mul_(scale), None


class GramStyleLoss(nn.Module):
    """``L_style = mean((G(F) - G(S))^2)`` over the C*C entries, ``G(X) = X X^T / (C N)``
    (Gatys et al. 2015, eq. 4, with size-independent normalisation)."""

    def __init__(self, target_features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", gram_matrix(target_features).detach())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return _GramMSE.apply(flatten_features(f), self.target)

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(G(S)^2)``."""
        return float(torch.mean(self.target**2))


class MaskedGramStyleLoss(nn.Module):
    """A guided Gram loss (Gatys et al. 2017, eq. 5 with size-independent normalisation):
    ``L = mean((G_m(F) - G(S))^2)``, ``G_m(F) = (F m)(F m)^T / (C sum(m^2))`` with ``m`` the
    region's mask at this layer (one weight per position). The painting's statistic is compared
    with the region's only, normalised by the region's area, so a small region is held as firmly
    as the whole picture; ``m = 1`` everywhere gives :class:`GramStyleLoss`. ``target`` is the
    painting's Gram matrix (shared with the unmasked loss)."""

    def __init__(self, target: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target)
        m = mask.reshape(1, 1, -1)
        # F m sqrt(N / sum m^2): the hand-written Gram MSE divides by C N, which then is C sum(m^2)
        self.register_buffer("weight", m * (m.shape[-1] / m.pow(2).sum().clamp_min(1e-12)).sqrt())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return _GramMSE.apply(flatten_features(f) * self.weight.to(f.dtype), self.target)

    def blank_loss(self) -> float:
        return float(torch.mean(self.target**2))


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = flatten_features(f)[0]
    mu = x.mean(dim=1, keepdim=True)
    xc = x - mu
    return mu.squeeze(1), xc @ xc.T / x.shape[1]


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


class MeanCovStyleLoss(nn.Module):
    """Squared Wasserstein-2 distance between Gaussians fitted to the features, per channel:

    ``L = (|mu_F - mu_S|^2 + tr(C_F + C_S - 2 (C_S^1/2 C_F C_S^1/2)^1/2)) / C``

    where ``mu`` and ``C`` are the mean and covariance of the N feature vectors. The matrix square
    root's trace is the sum of the square roots of the eigenvalues of ``C_S^1/2 C_F C_S^1/2``
    (``eigvalsh``, whose gradient stays finite for repeated eigenvalues).
    """

    def __init__(self, target_features: torch.Tensor, eps: float = 1e-8) -> None:
        super().__init__()
        mu, cov = _mean_cov(target_features.detach().float())
        self.register_buffer("mu", mu)
        self.register_buffer("cov_trace", torch.trace(cov))
        self.register_buffer("cov_sqrt", _sqrtm_psd(cov))
        self.eps = eps

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        mu, cov = _mean_cov(f.float())
        m = self.cov_sqrt @ cov @ self.cov_sqrt
        m = (m + m.T) / 2
        root_trace = torch.linalg.eigvalsh(m).clamp(min=self.eps).sqrt().sum()
        w2 = ((mu - self.mu) ** 2).sum() + torch.trace(cov) + self.cov_trace - 2 * root_trace
        return w2 / mu.numel()

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``(|mu_S|^2 + tr C_S) / C``."""
        return float(((self.mu**2).sum() + self.cov_trace) / self.mu.numel())


class SlicedWassersteinStyleLoss(nn.Module):
    """Sliced Wasserstein distance between the feature distributions (Heitz et al. 2021):

    ``L = mean_k mean_n (sort(F^T v_k)_n - sort(S^T v_k)_n)^2``

    over random unit directions ``v_k`` (as many as channels). The sorted target projections are
    resampled to N positions when the sizes differ. ``resample()`` draws new directions.
    """

    def __init__(self, target_features: torch.Tensor, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.register_buffer("features", flatten_features(target_features.detach().float())[0])
        self.generator = generator
        self.register_buffer("directions", torch.empty(0))
        self.register_buffer("sorted_target", torch.empty(0))
        self.resample()

    def resample(self) -> None:
        c = self.features.shape[0]
        d = torch.randn(c, c, generator=self.generator).to(self.features.device)
        self.directions = d / d.norm(dim=0, keepdim=True)
        self.sorted_target = (self.directions.T @ self.features).sort(dim=1).values
        self._cache: dict[int, torch.Tensor] = {}

    def _target_for(self, n: int) -> torch.Tensor:
        if n not in self._cache:
            t = self.sorted_target
            if t.shape[1] != n:
                t = nn.functional.interpolate(t[None], size=n, mode="linear", align_corners=True)[0]
            self._cache[n] = t
        return self._cache[n]

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = flatten_features(f.float())[0]
        proj = (self.directions.T @ x).sort(dim=1).values
        return torch.mean((proj - self._target_for(proj.shape[1])) ** 2)

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(S^T v)^2`` over directions and positions;
        the same for every draw of unit directions in expectation, ``|S|^2 / (C N)``."""
        return float(torch.mean(self.features**2))


STYLE_LOSSES: dict[str, type[nn.Module]] = {
    "gram": GramStyleLoss,
    "mean_cov": MeanCovStyleLoss,
    "sliced_wasserstein": SlicedWassersteinStyleLoss,
}

#: Multipliers that put each style statistic on the scale of the Gram loss, so that one
#: ``style_weight`` is a sensible start for all of them. Measured with the Caffe VGG19 (avg pooling)
#: at 256 px: the median over 3 photos x 3 paintings of the study (tubingen, car, meadow x starry
#: night, the scream, picasso) of (Gram loss / other loss) at the photo, summed over relu1_1..relu5_1.
#: The ratios ranged 0.19-0.98 (mean_cov) and 0.45-1.59 (sliced_wasserstein): a start, not an equivalence.
STYLE_LOSS_SCALE: dict[str, float] = {"gram": 1.0, "mean_cov": 0.39, "sliced_wasserstein": 0.78}


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation ``mean((x[i+1,j] - x[i,j])^2) + mean((x[i,j+1] - x[i,j])^2)`` in pixel units."""
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    return torch.mean(dy * dy) + torch.mean(dx * dx)
