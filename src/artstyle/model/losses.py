"""The terms of the objective, each a small module that holds its target as a buffer.

Notation: ``F`` is a layer's activation reshaped to C x N (C channels, N = H*W positions) for the
image being optimised, ``P`` the same for the content photo, ``S`` for a style painting.

Normalisations (as in anishathalye/neural-style, which the study used) make a weight mean the same
at every image size: the content loss is a mean over all C*N entries; the Gram matrix is divided by
C*N, so it is an average over positions; the style loss is a mean over the C*C Gram entries; the TV
loss is a mean over pixel differences. So ``style_weight / content_weight`` is size-independent.

Guides (Gatys et al. 2017, spatial control): every style loss can be told to look at one region of
the image only. ``loss.guide(m)`` turns a mask ``m`` (1, 1, h, w at the loss's layer; see
:func:`artstyle.model.network.guide_at`) into what ``loss(f, guide)`` needs, and :class:`Guided` binds the
two. A guided statistic is the region's, weighted per position by ``w_n = m_n^2 / sum m^2``, so a
region of any area is held as firmly as the whole picture, and a mask of ones is the unguided loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.config import blend_count_message
from artstyle.errors import ArtstyleError


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
        raise ArtstyleError(blend_count_message(len(weights), n))
    total = float(sum(weights))
    return [w / total for w in weights]


def mean_square(t: torch.Tensor) -> float:
    """``mean(t^2)``: a loss at an all-zero feature map when its target statistic is ``t``."""
    return float(torch.mean(t**2))


def position_weights(mask: torch.Tensor) -> torch.Tensor:
    """A guide's weight per position, ``w_n = m_n^2 / sum m^2`` (N,), summing to 1."""
    m2 = mask.reshape(-1).float() ** 2
    return m2 / m2.sum().clamp_min(1e-12)


@dataclass
class FeatureStats:
    """Sums over a layer's positions, gathered piece by piece (a painting too large for one pass
    is read in tiles): ``sum x x^T`` (C, C), ``sum x`` (C,) and the count, in float64."""

    outer: torch.Tensor
    total: torch.Tensor
    count: int = 0

    @classmethod
    def empty(cls, channels: int) -> FeatureStats:
        z = torch.zeros
        return cls(z(channels, channels, dtype=torch.float64), z(channels, dtype=torch.float64))

    def add(self, f: torch.Tensor) -> None:
        """Add the positions of activations ``f`` (1, C, H, W)."""
        x = flatten_features(f.detach())[0].double()
        self.outer += x @ x.T
        self.total += x.sum(1)
        self.count += x.shape[1]


class ContentLoss(nn.Module):
    """``L_content = mean((F - P)^2)`` over all C*N entries (Gatys et al. 2015, eq. 1, as a mean)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.mean((f - self.target) ** 2)

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(P^2)``: the target's magnitude."""
        return mean_square(self.target)


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
    (Gatys et al. 2015, eq. 4, with size-independent normalisation).

    Guided (Gatys et al. 2017, eq. 5): ``G_m(F) = (F m)(F m)^T / (C sum(m^2))``, the region's Gram
    matrix, compared with the painting's."""

    def __init__(
        self, target_features: torch.Tensor | None = None, *, stats: FeatureStats | None = None
    ) -> None:
        super().__init__()
        if stats is not None:  # the same statistic, from sums gathered in pieces
            c = stats.outer.shape[0]
            target = (stats.outer / (c * stats.count)).float()[None]
        else:
            assert target_features is not None
            target = gram_matrix(target_features).detach()
        self.register_buffer("target", target)

    def guide(self, mask: torch.Tensor) -> torch.Tensor:
        """``m sqrt(N / sum m^2)`` (1, 1, N): the Gram MSE divides by C N, which then is C sum(m^2)."""
        m = mask.reshape(1, 1, -1)
        return m * (m.shape[-1] / m.pow(2).sum().clamp_min(1e-12)).sqrt()

    def forward(self, f: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        x = flatten_features(f)
        if guide is not None:
            x = x * guide.to(f.dtype)
        return _GramMSE.apply(x, self.target)

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(G(S)^2)``."""
        return mean_square(self.target)


def _mean_cov(f: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and covariance (C, C) of the N feature vectors, each weighted by ``weights`` (N,
    summing to 1) when given."""
    x = flatten_features(f)[0]
    if weights is None:
        mu = x.mean(dim=1, keepdim=True)
        xc = x - mu
        return mu.squeeze(1), xc @ xc.T / x.shape[1]
    w = weights.to(x.dtype)
    mu = x @ w
    xc = x - mu[:, None]
    return mu, (xc * w) @ xc.T


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


class MeanCovStyleLoss(nn.Module):
    """Squared Wasserstein-2 distance between Gaussians fitted to the features, per channel:

    ``L = (|mu_F - mu_S|^2 + tr(C_F + C_S - 2 (C_S^1/2 C_F C_S^1/2)^1/2)) / C``

    where ``mu`` and ``C`` are the mean and covariance of the N feature vectors. The matrix square
    root's trace is the sum of the square roots of the eigenvalues of ``C_S^1/2 C_F C_S^1/2``
    (``eigvalsh``, whose gradient stays finite for repeated eigenvalues). Guided: ``mu_F`` and
    ``C_F`` are the region's, each position weighted by ``w_n`` (:func:`position_weights`).
    """

    def __init__(
        self,
        target_features: torch.Tensor | None = None,
        eps: float = 1e-8,
        *,
        stats: FeatureStats | None = None,
    ) -> None:
        super().__init__()
        if stats is not None:  # the same statistics, from sums gathered in pieces
            m = stats.total / stats.count
            mu, cov = m.float(), (stats.outer / stats.count - torch.outer(m, m)).float()
        else:
            assert target_features is not None
            mu, cov = _mean_cov(target_features.detach().float())
        self.register_buffer("mu", mu)
        self.register_buffer("cov_trace", torch.trace(cov))
        self.register_buffer("cov_sqrt", _sqrtm_psd(cov))
        self.eps = eps

    def guide(self, mask: torch.Tensor) -> torch.Tensor:
        return position_weights(mask)

    def forward(self, f: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        mu, cov = _mean_cov(f.float(), guide)
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

    Guided: the region's weighted distribution along each direction against the painting's, as
    quantile functions: the n-th smallest projection carries weight ``w_n`` (:func:`position_weights`)
    and sits at the level ``u_n`` of the middle of its weight, stretched so that the first and last
    weighted ones sit at 0 and 1;
    ``L = mean_k sum_n w_n (sort(F^T v_k)_n - Q_k(u_n))^2``, ``Q_k`` the painting's quantile function
    (its sorted projections, linearly interpolated). With equal weights ``u_n = n / (N - 1)``: the
    unguided loss.
    """

    def __init__(self, target_features: torch.Tensor, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.register_buffer("features", flatten_features(target_features.detach().float())[0])
        self.generator = generator
        self.register_buffer("directions", torch.empty(0))
        self.register_buffer("sorted_target", torch.empty(0))
        self.resample()

    def __getstate__(self) -> dict[str, object]:
        # (a torch.Generator does not pickle: a copy sent to a worker keeps its directions and
        # draws new ones from the global generator)
        return {**self.__dict__, "generator": None}

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

    def guide(self, mask: torch.Tensor) -> torch.Tensor:
        return position_weights(mask)

    def forward(self, f: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        x = flatten_features(f.float())[0]
        if guide is not None:
            return self._guided(x, guide)
        proj = (self.directions.T @ x).sort(dim=1).values
        return torch.mean((proj - self._target_for(proj.shape[1])) ** 2)

    def _guided(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        proj, order = (self.directions.T @ x).sort(dim=1)
        w = weights.to(x.dtype)[order]  # (K, N): each sorted projection's weight
        mid = w.cumsum(dim=1) - w / 2
        held = (w > 0).float()  # the stretch runs from the first weighted projection to the last
        first = held.argmax(dim=1, keepdim=True)
        last = w.shape[1] - 1 - held.flip(1).argmax(dim=1, keepdim=True)
        lo, hi = mid.gather(1, first), mid.gather(1, last)
        u = ((mid - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
        t = self.sorted_target
        pos = u * (t.shape[1] - 1)
        i0 = pos.floor().long().clamp(max=t.shape[1] - 1)
        i1 = (i0 + 1).clamp(max=t.shape[1] - 1)
        frac = pos - i0
        q = t.gather(1, i0) * (1 - frac) + t.gather(1, i1) * frac
        return ((proj - q) ** 2 * w).sum(dim=1).mean()

    def blank_loss(self) -> float:
        """The loss of an all-zero feature map, ``mean(S^T v)^2`` over directions and positions;
        the same for every draw of unit directions in expectation, ``|S|^2 / (C N)``."""
        return mean_square(self.features)


class Guided(nn.Module):
    """A style loss that sees one region of the image: ``loss(f, loss.guide(mask))`` (see the
    module). ``mask`` is (1, 1, h, w) at the loss's layer."""

    def __init__(self, loss: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.loss = loss
        self.register_buffer("guide", loss.guide(mask))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.loss(f, self.guide)


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


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` (B, C, H, W) blurred by a Gaussian of ``sigma`` px (separable, reflected at the edges,
    the kernel cut at 3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    radius_h, radius_w = min(radius, x.shape[-2] - 1), min(radius, x.shape[-1] - 1)
    if radius_h < radius or radius_w < radius:  # (a strip thinner than the kernel: edge padding)
        pad = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    else:
        pad = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(pad, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class AnchorLoss(nn.Module):
    """``L_anchor = mean((g * x - g * x0)^2)``: a finer level's picture ``x`` held, in its low
    frequencies (``g``: a Gaussian of ``sigma`` px), to ``x0``, the level below's picture enlarged
    (the level's start). The level then adds detail to the picture below it rather than painting
    another one; ``sigma`` is half the levels' size ratio (the level below's pixel)."""

    def __init__(self, start: torch.Tensor, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma
        self.register_buffer("target", gaussian_blur(start.detach(), sigma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean((gaussian_blur(x, self.sigma) - self.target) ** 2)

    def blank_loss(self) -> float:
        """The loss of an all-zero picture, ``mean((g * x0)^2)``."""
        return mean_square(self.target)


class TemporalLoss(torch.nn.Module):
    """The temporal term of a video frame (Ruder, Dosovitskiy & Brox 2016):

    ``L_temporal = sum_x c(x) (x_t(x) - w(x))^2 / sum_x c(x) w(x)^2``

    with ``w`` the previous output warped onto this frame and ``c`` the reliability of the flow
    (:func:`artstyle.runs.video.flow.reliability`); normalised like the other relative terms (1 at
    an all-black image)."""

    def __init__(self, warped: torch.Tensor, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("warped", warped)
        self.register_buffer("c", c)
        self.norm = float((c * warped**2).sum().clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.c * (x - self.warped) ** 2).sum() / self.norm
