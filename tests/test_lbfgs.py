import pytest
import torch

from artstyle.model.lbfgs import PixelLBFGS, cubic_minimiser, line_minimiser


def test_cubic_minimiser_is_exact_for_cubics_and_quadratics():
    # f(t) = (t - 0.3)^2: f(0) = 0.09, f'(0) = -0.6, f(1) = 0.49, f'(1) = 1.4
    assert cubic_minimiser(0.09, -0.6, 0.49, 1.4) == pytest.approx(0.3)
    # f(t) = t^3 - 0.75 t: minimum at t = 0.5
    assert cubic_minimiser(0.0, -0.75, 0.25, 2.25) == pytest.approx(0.5)


def test_line_minimiser_is_exact_for_the_even_quartic_and_falls_back_to_the_cubic():
    # f(t) = 100 t^4 + 2 t^2 - t: f(0) = 0, f'(0) = -1, f(1) = 101, f'(1) = 403
    t = line_minimiser(0.0, -1.0, 101.0, 403.0)
    assert 4 * 100 * t**3 + 4 * t - 1 == pytest.approx(0.0, abs=1e-9)
    # a quadratic, (t - 0.3)^2, has c4 = 0: the cubic's answer, which is exact
    assert line_minimiser(0.09, -0.6, 0.49, 1.4) == pytest.approx(0.3)


def _quadratic(n: int = 30):
    """f(x) = 1/2 sum a_i x_i^2 - b.x with condition number 100; minimum at b / a."""
    a = torch.logspace(0, 2, n, dtype=torch.float64)
    b = torch.linspace(-1, 1, n, dtype=torch.float64)

    def f(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        return float(0.5 * (a * x * x).sum() - (b * x).sum()), a * x - b

    return f, b / a


def test_converges_on_an_ill_conditioned_quadratic_without_line_search():
    f, xstar = _quadratic()
    opt, x = PixelLBFGS(history=10), torch.zeros_like(xstar)
    for _ in range(60):
        value, g = f(x)
        x = x + opt.step(x, value, g)
    assert torch.allclose(x, xstar, atol=1e-6)


def test_first_step_lowers_the_linear_model_by_alpha():
    f, xstar = _quadratic()
    x = torch.full_like(xstar, 0.5)
    value, g = f(x)
    p = PixelLBFGS(alpha=0.1).step(x, value, g)
    assert float(-(g * p).sum()) == pytest.approx(0.1 * abs(value))


def test_carried_gamma_sizes_the_first_step():
    f, xstar = _quadratic()
    x = torch.full_like(xstar, 0.5)
    value, g = f(x)
    opt = PixelLBFGS(gamma=0.25)
    assert torch.allclose(opt.step(x, value, g), -0.25 * g)


def test_pairs_without_positive_curvature_are_skipped():
    opt = PixelLBFGS()
    x0, g0 = torch.zeros(3), torch.tensor([1.0, 0.0, 0.0])
    opt.step(x0, 1.0, g0)
    # the gradient fell along the step: s.y < 0 (a concave stretch), so no pair is kept
    opt.step(torch.tensor([1.0, 0.0, 0.0]), 0.5, torch.tensor([2.0, 0.0, 0.0]) * -1)
    assert opt.s == [] and opt.gamma is None


def test_retreat_goes_back_along_the_step_to_the_fitted_minimum():
    # along the step the loss is f(t) = 100 t^4 - t: the step to t = 1 overshot
    opt = PixelLBFGS()
    x0, d = torch.zeros(2), torch.tensor([1.0, 0.0])
    opt.prev = (x0, 0.0, -d)  # f(0) = 0, f'(0) = -1
    x1 = x0 + d
    back = opt.retreat(x1, 99.0, 399.0 * d)  # f(1) = 99, f'(1) = 399
    t = float((x1 + back)[0])
    assert t == pytest.approx(400 ** (-1 / 3))  # the true minimiser of 100 t^4 - t
    assert opt.prev[0] is x0  # the origin of the next curvature pair is kept
    assert PixelLBFGS().retreat(x1, 99.0, d) is None  # nothing to go back to
