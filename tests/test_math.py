"""Pure forecasting math against analytic oracles (polynomials on random, non-uniform grids)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from padecache.math import (
    linear_extrapolate,
    newton_extrapolate,
    row_norm,
    taylorseer_extrapolate,
    taylorseer_update,
)

coef = st.floats(-3, 3, allow_nan=False)


@st.composite
def grid(draw, n):
    """n distinct increasing abscissae with gaps in [0.3, 3] (non-uniform), and a target ahead."""
    gaps = draw(st.lists(st.floats(0.3, 3.0), min_size=n, max_size=n))
    xs = [sum(gaps[: i + 1]) for i in range(n)]
    target = xs[-1] + draw(st.floats(0.2, 4.0))
    return xs, target


@given(st.integers(0, 3).flatmap(lambda k: st.tuples(st.just(k), st.lists(coef, min_size=k + 1, max_size=k + 1), grid(k + 1))))
def test_newton_is_exact_on_polynomials_of_its_degree(case):
    k, cs, (xs, target) = case
    poly = lambda x: sum(c * x**i for i, c in enumerate(cs))  # noqa: E731
    ys = [torch.tensor([poly(x)], dtype=torch.float64) for x in xs]
    newest_first = list(reversed(xs)), list(reversed(ys))
    got = newton_extrapolate(*newest_first, target).item()
    assert got == pytest.approx(poly(target), rel=1e-9, abs=1e-9)


@given(coef, coef, grid(2))
def test_linear_is_exact_on_lines(a, b, case):
    (x0, x1), target = case
    line = lambda x: a + b * x  # noqa: E731
    got = linear_extrapolate(x0, torch.tensor(line(x0), dtype=torch.float64), x1, torch.tensor(line(x1), dtype=torch.float64), target)
    assert got.item() == pytest.approx(line(target), abs=1e-9)


def test_newton_rejects_repeated_abscissae():
    with pytest.raises(ValueError, match="distinct"):
        newton_extrapolate([1.0, 1.0], [torch.zeros(1), torch.ones(1)], 2.0)


@given(coef, coef, grid(3))
def test_taylorseer_order1_recursion_is_linear_extrapolation(a, b, case):
    xs, target = case
    f = lambda x: torch.tensor([a + b * x], dtype=torch.float64)  # noqa: E731
    factors = []
    for i, x in enumerate(xs):
        factors = taylorseer_update(factors, f(x), None if i == 0 else x - xs[i - 1], order=1)
    assert taylorseer_extrapolate(factors, target - xs[-1]).item() == pytest.approx(a + b * target, abs=1e-9)


def test_taylorseer_order2_uses_stale_derivatives():
    """TaylorSeer's recursion on y = x^2 at x = 0, 1, 2 (unit gaps): f1 = 3, f2 = 2, so y(3) ~ 4 + 3 + 1 = 8.

    Newton's exact quadratic gives 9; the difference is TaylorSeer's lagged first derivative, kept on purpose.
    """
    factors = []
    for i, x in enumerate([0.0, 1.0, 2.0]):
        factors = taylorseer_update(factors, torch.tensor([x * x]), None if i == 0 else 1.0, order=2)
    assert [f.item() for f in factors] == [4.0, 3.0, 2.0]
    assert taylorseer_extrapolate(factors, 1.0).item() == 8.0
    assert newton_extrapolate([2.0, 1.0, 0.0], [torch.tensor([4.0]), torch.tensor([1.0]), torch.tensor([0.0])], 3.0).item() == 9.0


def test_row_norm_is_per_row():
    x = torch.tensor([[[3.0, 4.0]], [[6.0, 8.0]]])
    assert row_norm(x).tolist() == [5.0, 10.0]
    assert math.isclose(row_norm(torch.ones(1, 4, 4)).item(), 4.0)
