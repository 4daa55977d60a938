"""HiCache: the Hermite basis, what its expansion reproduces exactly, TaylorSeer's gate, hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from forecasters_helpers import at, ctx_at, feed, sigma_grids, sigma_schedule
from hypothesis import given, settings
from hypothesis import strategies as st

from padecache import Schedule
from padecache_forecasters._common import hermite_h, scaled_hermite_weight
from padecache_forecasters.hicache import HiCachePredictor, newton_derivative_weights

SQRT_HALF = math.sqrt(0.5)


@given(st.integers(0, 8), st.floats(-3, 3))
def test_hermite_recurrence_is_the_physicists_polynomial(n, x):
    want = np.polynomial.hermite.hermval(x, [0] * n + [1])
    assert hermite_h(n, x) == pytest.approx(want, rel=1e-9, abs=1e-9)


@given(st.integers(1, 4), st.floats(-4, 4), st.floats(0.1, 1.5))
def test_scaled_basis_is_sigma_power_times_hermite_of_scaled_distance(k, x, s):
    want = s**k * np.polynomial.hermite.hermval(s * x, [0] * k + [1]) / math.factorial(k)
    assert scaled_hermite_weight(k, x, s) == pytest.approx(want, rel=1e-9, abs=1e-12)


sigmas = sigma_grids


@given(sigmas, st.integers(0, 3), st.floats(0.2, 1.2), st.data())
@settings(max_examples=25)
def test_constants_are_reproduced_for_any_order_and_scale(sig, order, scale, data):
    schedule = sigma_schedule(sig)
    computed = sorted(data.draw(st.lists(st.integers(0, len(sig) - 2), min_size=1, max_size=6, unique=True)))
    c = torch.tensor([[[1.5, -2.0]]], dtype=torch.float64)
    p = feed(HiCachePredictor(HiCachePredictor.Config(order=order, scale=scale, grid="sigma", derivative_start=0)),
             schedule, {s: c for s in computed})
    assert torch.allclose(at(p, schedule, len(sig) - 1, c, len(computed)), c)


@given(sigmas, st.sampled_from(["taylorseer", "newton"]), st.data())
@settings(max_examples=25)
def test_first_order_with_sigma_one_over_root_two_is_exact_on_lines(sig, derivatives, data):
    """Oracle: 2 sigma^2 = 1 makes sigma H_1(sigma d) = d, so the first-order expansion is the exact line through
    the last two computed residuals, on any spacing of the (sigma) grid."""
    schedule = sigma_schedule(sig)
    computed = sorted(data.draw(st.lists(st.integers(0, len(sig) - 2), min_size=2, max_size=6, unique=True)))
    a, b = torch.tensor([[[0.3, -1.0]]], dtype=torch.float64), torch.tensor([[[2.0, 0.5]]], dtype=torch.float64)
    p = feed(HiCachePredictor(HiCachePredictor.Config(order=1, scale=SQRT_HALF, grid="sigma", derivative_start=0,
                                                      derivatives=derivatives)),
             schedule, {s: a + b * sig[s] for s in computed})
    target = len(sig) - 1
    assert torch.allclose(at(p, schedule, target, a, len(computed)), a + b * sig[target], atol=1e-9)


def test_second_order_expansion_shifts_a_parabola_by_sigma_squared_times_the_second_derivative():
    """HiCache's H_2 has a constant term: with exact derivatives (newton) the order-2 forecast of R = R_n + g d + a d^2
    is R_n + 2 sigma^2 g d + 2a (2 sigma^4 d^2 - sigma^2), i.e. for sigma^2 = 1/2 the parabola minus a, at any
    distance (not exact on quadratics, unlike Taylor order 2)."""
    schedule = Schedule.uniform(20)
    a, g = 0.25, 1.5
    f = lambda s: torch.full((1, 1), 1.0 + g * (s - 6) + a * (s - 6) ** 2, dtype=torch.float64)
    p = feed(HiCachePredictor(HiCachePredictor.Config(order=2, scale=SQRT_HALF, derivatives="newton")),
             schedule, {s: f(s) for s in (0, 3, 6)})
    for target in (7, 9, 12):
        assert at(p, schedule, target, f(0), 3).item() == pytest.approx(f(target).item() - a)


def test_newton_weights_give_exact_derivatives():
    xs = [0.0, 1.0, 2.5, 3.0]
    w = newton_derivative_weights(xs)
    f = [1 + 2 * x - x**2 + 0.5 * x**3 for x in xs]
    d = w @ torch.tensor(f, dtype=torch.float64)
    assert d.tolist() == pytest.approx([1 + 6 - 9 + 13.5, 2 - 6 + 13.5, -2 + 9, 3], abs=1e-9)


def test_hand_computed_forecast_and_taylorseer_gate():
    """Steps 0, 1, 3 computed with values 1, 2, 6 (order 2, sigma 0.5, derivative_start 2):
    step 1 is before the gate: factors [2]; step 3: D1 = (6 - 2)/2 = 2, no D2 yet (no old D1).
    At step 5 (d = 2): 6 + D1 * 0.5 H_1(1) = 6 + 2 * 0.5 * 2 = 8."""
    schedule = Schedule.uniform(20)
    p = feed(HiCachePredictor(), schedule, {0: torch.ones(1, 1), 1: torch.full((1, 1), 2.0), 3: torch.full((1, 1), 6.0)})
    assert p.factors.shape[1] == 2
    assert at(p, schedule, 5, torch.ones(1, 1), 3).item() == pytest.approx(8.0)
    # step 6 computed, value 9: D1' = (9 - 6)/3 = 1, D2 = (1 - 2)/3 = -1/3.
    # at step 8 (d = 2): 9 + 1 * 0.5 * H_1(1) + (-1/3) * 0.25 * H_2(1) / 2 = 9 + 1 - (1/3) * 0.25 * 2 / 2 = 9.9166...
    p.update(ctx_at(schedule, 6, 3), torch.full((1, 1), 9.0), torch.zeros(1, 1), computed=True)
    assert at(p, schedule, 8, torch.ones(1, 1), 4).item() == pytest.approx(9.0 + 1.0 - 0.25 / 3)
