"""L-BFGS over one tensor of pixels, without a line search (as in the study), with sized first steps.

Why not ``torch.optim.LBFGS``: without a line search it takes a first step of length
``lr * min(1, 1/|g|_1)``, which for an image of a million pixels moves nothing, and the curvature
pair of that tiny step then sends the second step orders of magnitude too far (the Gram loss is
quartic, so the curvature measured at a point says little about it a step away). It also has to
evaluate the loss again after a restart, and it cannot start a level of the coarse-to-fine
pyramid from what the level below learnt. This class takes the evaluation (loss and gradient) from
its caller and only decides the next point, which makes all three easy:

- the first step goes along ``-g`` by ``t = alpha * f / |g|^2``, the step whose linear model lowers
  the loss by the fraction ``alpha`` (scale-free: the same for any loss normalisation or size);
- a carried curvature scale ``gamma`` (from a coarser level, rescaled by the pixel-count ratio, since
  each loss term is a mean over positions) replaces that guess when there is one;
- after an overshoot the caller steps back along the step to the minimiser of a quartic fitted to
  its two ends (:meth:`retreat`); the memory is kept.

The direction is the standard two-loop recursion (Nocedal & Wright, Algorithm 7.4) with
``H_0 = gamma I``, ``gamma = s^T y / y^T y`` of the newest pair; pairs with ``s^T y <= 0`` are skipped.
"""

from __future__ import annotations

import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a.flatten(), b.flatten()))


class PixelLBFGS:
    """The search directions of L-BFGS for one tensor; the caller evaluates and moves the point.

    ``step(x, f, g)`` takes the current point, its loss and gradient, records the curvature pair
    with the previous point, and returns the displacement to the next point. ``gamma``, if given,
    sizes the first step instead of the ``alpha`` rule. ``g`` is kept, not copied: the caller must
    hand in a fresh gradient tensor each time (as autograd does when ``x.grad`` is reset).
    """

    def __init__(self, history: int = 50, alpha: float = 0.05, gamma: float | None = None) -> None:
        self.history, self.alpha, self.gamma = history, alpha, gamma
        self.s: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []
        self.rho: list[float] = []
        self.prev: tuple[torch.Tensor, float, torch.Tensor] | None = None  # previous (x, f, g)

    def _record_pair(self, x: torch.Tensor, g: torch.Tensor) -> None:
        if self.prev is None:
            return
        x_prev, _, g_prev = self.prev
        s, y = x - x_prev, g - g_prev
        sy, yy = _dot(s, y), _dot(y, y)
        if sy <= 1e-10 * max(yy, 1e-30) or yy == 0.0:
            return  # not a convex pair: skip it rather than spoil the Hessian estimate
        if len(self.s) == self.history:
            self.s.pop(0)
            self.y.pop(0)
            self.rho.pop(0)
        self.s.append(s)
        self.y.append(y)
        self.rho.append(1.0 / sy)
        self.gamma = sy / yy

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """``-H g`` by the two-loop recursion (``-g`` when there are no pairs)."""
        q = g.neg()
        if not self.s:
            return q
        alphas = []
        for s, y, rho in zip(reversed(self.s), reversed(self.y), reversed(self.rho), strict=True):
            a = rho * _dot(s, q)
            q.add_(y, alpha=-a)
            alphas.append(a)
        q.mul_(self.gamma or 1.0)
        for s, y, rho, a in zip(self.s, self.y, self.rho, reversed(alphas), strict=True):
            b = rho * _dot(y, q)
            q.add_(s, alpha=a - b)
        return q

    def step(self, x: torch.Tensor, f: float, g: torch.Tensor) -> torch.Tensor:
        """The displacement from ``x`` (loss ``f``, gradient ``g``) to the next point."""
        self._record_pair(x, g)
        d = self.direction(g)
        if self.s:
            t = 1.0
        elif self.gamma is not None:
            t = self.gamma
        else:
            gg = _dot(g, g)
            # (a loss of exactly 0 gives no scale: then a step of unit length)
            t = (self.alpha * abs(f) / gg if f != 0 else gg**-0.5) if gg > 0 else 0.0
        self.prev = (x.detach().clone(), f, g)
        return d.mul_(t)

    def retreat(self, x: torch.Tensor, f: float, g: torch.Tensor) -> torch.Tensor | None:
        """After an overshoot at ``x``: the displacement from ``x`` back along the last step to the
        minimiser of a model fitted to the loss and slope at both of its ends (:func:`line_minimiser`),
        kept within 1-50 % of the step. The previous point stays the origin of the next curvature
        pair, so nothing learnt is lost. None when there is no previous point.
        """
        if self.prev is None:
            return None
        x_prev, f_prev, g_prev = self.prev
        p = x - x_prev
        d0, d1 = _dot(g_prev, p), _dot(g, p)
        t = line_minimiser(f_prev, d0, f, d1)
        return p.mul_(min(0.5, max(0.01, t)) - 1.0)


def line_minimiser(f0: float, d0: float, f1: float, d1: float) -> float:
    """Where on [0, 1] a loss with ``f(0) = f0, f'(0) = d0, f(1) = f1, f'(1) = d1`` is least.

    With linear features the style loss is a quartic in the step and the content and TV losses
    are quadratics, so the model is ``f0 + d0 t + c2 t^2 + c4 t^4`` (ReLUs make it piecewise so);
    its minimiser is the root of ``d0 + 2 c2 t + 4 c4 t^3``, found by bisection. When that model
    does not fit (``c4 <= 0`` or no sign change of the slope), the cubic of :func:`cubic_minimiser`.
    """
    c4 = (d1 - d0 - 2.0 * (f1 - f0 - d0)) / 2.0
    c2 = f1 - f0 - d0 - c4
    if c4 > 0 and d0 < 0 < d1:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if d0 + 2.0 * c2 * mid + 4.0 * c4 * mid**3 < 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2
    return cubic_minimiser(f0, d0, f1, d1)


def cubic_minimiser(f0: float, d0: float, f1: float, d1: float) -> float:
    """The minimiser in t of the cubic through ``f(0) = f0, f'(0) = d0, f(1) = f1, f'(1) = d1``
    (Nocedal & Wright, eq. 3.59); the quadratic's through f0, d0, f1 when the cubic has none."""
    a = d0 + d1 - 3.0 * (f1 - f0)
    disc = a * a - d0 * d1
    if disc >= 0.0:
        b = disc**0.5
        den = d1 - d0 + 2.0 * b
        if den != 0.0:
            return 1.0 - (d1 + b - a) / den
    curv = f1 - f0 - d0
    return -d0 / (2.0 * curv) if curv > 0 else 0.5
