"""pade-fit recovers analytic rational functions; its pole guard falls back to Taylor."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import padecache
from padecache import Schedule, StepContext
from padecache.plugins import get_registry
from padecache_tcpade import _math as pm

# well-posed [m/n] functions: a real denominator term and leading numerator term, no common factor
small = st.one_of(st.floats(-0.4, -0.05), st.floats(0.05, 0.4))
lead = st.one_of(st.floats(-2, -0.2), st.floats(0.2, 2))


@st.composite
def rational_case(draw):
    m, n = draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (0, 1)]))
    a = [draw(st.floats(-2, 2)) for _ in range(m)] + [draw(lead)]
    b = [draw(small) for _ in range(n)]
    gaps = draw(st.lists(st.floats(0.4, 1.5), min_size=m + n, max_size=m + n))
    xs = [0.0]
    for g in gaps:
        xs.append(xs[-1] - g)  # newest first, going back in time
    target = draw(st.floats(0.2, 1.5))
    return m, n, a, b, xs, target


def rational(a, b, x):
    return sum(c * x**j for j, c in enumerate(a)) / (1 + sum(c * x ** (j + 1) for j, c in enumerate(b)))


def no_common_factor(a, b):
    """P and Q share no (real) root, so the [m/n] representation is unique."""
    import numpy as np

    roots = np.roots([*reversed(b), 1.0])
    scale = sum(abs(c) for c in a)
    return all(abs(r.imag) > 1e-9 or abs(sum(c * r.real**j for j, c in enumerate(a))) > 0.05 * scale for r in roots)


def denominators_positive(b, lo, hi):
    return all(1 + sum(c * x ** (j + 1) for j, c in enumerate(b)) > 0.3 for x in [lo + (hi - lo) * i / 20 for i in range(21)])


@given(rational_case())
def test_fit_recovers_coefficients_and_extrapolated_values(case):
    m, n, a, b, xs, target = case
    assume(denominators_positive(b, min(xs), target))
    assume(no_common_factor(a, b))
    ys = [torch.tensor([rational(a, b, x)], dtype=torch.float64) for x in xs]
    got_a, got_b = pm.pade_fit(xs, ys, m, n)
    value, den = pm.pade_eval(got_a, got_b, target)
    assert value.item() == pytest.approx(rational(a, b, target), rel=1e-6, abs=1e-6)
    assert got_b.flatten().tolist() == pytest.approx(b, abs=1e-5)
    assert got_a.flatten().tolist() == pytest.approx(a, abs=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_small_solver_matches_lapack(k):
    g = torch.Generator().manual_seed(k)
    m = torch.randn(50, k, k, generator=g, dtype=torch.float64)
    a = m @ m.transpose(1, 2) + 0.1 * torch.eye(k, dtype=torch.float64)  # the fit's normal matrices are SPD
    b = torch.randn(50, k, generator=g, dtype=torch.float64)
    torch.testing.assert_close(pm._solve_spd(a, b), torch.linalg.solve(a, b), rtol=1e-9, atol=1e-9)


@given(st.lists(st.floats(0.3, 3.0), min_size=2, max_size=2), st.floats(0.1, 3.0), st.integers(0, 10_000))
def test_closed_form_11_equals_the_least_squares_fit(gaps, target, seed):
    xs = [0.0, -gaps[0], -gaps[0] - gaps[1]]  # newest first
    g = torch.Generator().manual_seed(seed)
    ys = [torch.randn(64, generator=g, dtype=torch.float64) for _ in xs]
    fast, qfast = pm.pade11_interpolate(xs, ys, target)
    a, b = pm.pade_fit(xs, ys, 1, 1, center=0.0, scale=gaps[0])
    u = target / gaps[0]
    slow, _ = pm.pade_eval(a, b, u)
    qslow = pm.denominator_min(b, min(xs) / gaps[0], u, samples=2)  # 1 + b u is linear: its ends are its extremes
    ok = (qslow.abs() > 1e-3) & ((ys[2] - ys[1]).abs() > 1e-2)  # well-posed elements: away from a pole, y_1 != y_2
    torch.testing.assert_close(fast[ok], slow[ok], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(qfast[ok], qslow[ok], rtol=1e-5, atol=1e-6)


def test_fit_of_constant_data_is_the_constant():
    ys = [torch.full((2, 3), 4.0) for _ in range(3)]
    a, b = pm.pade_fit([0.0, -1.0, -2.0], ys, 1, 1)
    value, _ = pm.pade_eval(a, b, 1.5)
    torch.testing.assert_close(value, torch.full((2, 3), 4.0, dtype=torch.float64))


def test_predictor_extrapolates_a_rational_trajectory_on_the_real_grid():
    sched = Schedule.uniform(20)
    f = lambda s: (1 + 0.3 * s) / (1 + 0.05 * s)  # noqa: E731 - a [1/1] in the step index
    p = get_registry().create("predictor", "pade-fit")
    for s in (2, 5, 9):  # gaps 3 and 4
        c = StepContext(s, 20, sched.timesteps[s], sched.sigmas[s], schedule=sched)
        p.update(c, torch.full((1, 4), f(s)), torch.zeros(1, 4), computed=True)
    target = StepContext(12, 20, sched.timesteps[12], sched.sigmas[12], schedule=sched)
    assert p.predict(target, torch.zeros(1, 4))[0, 0].item() == pytest.approx(f(12), rel=1e-5)
    assert p.indicators()["pade_rejected"] == 0.0


def test_pole_guard_falls_back_to_taylor_elementwise():
    sched = Schedule.uniform(20)
    good = lambda s: 1 + 0.1 * s  # noqa: E731
    pole = lambda s: 1 / (1 - 0.08 * s)  # noqa: E731 - pole at s = 12.5, between the data and the target
    p = get_registry().create("predictor", "pade-fit")
    for s in (4, 6, 8):
        c = StepContext(s, 20, sched.timesteps[s], sched.sigmas[s], schedule=sched)
        p.update(c, torch.tensor([[good(s), pole(s)]]), torch.zeros(1, 2), computed=True)
    target = StepContext(14, 20, sched.timesteps[14], sched.sigmas[14], schedule=sched)
    out = p.predict(target, torch.zeros(1, 2))[0]
    assert out[0].item() == pytest.approx(good(14), rel=1e-6)  # the fit is fine there
    linear = pole(8) + (pole(8) - pole(6)) / 2 * 6  # order-1 Taylor through the two newest samples
    assert out[1].item() == pytest.approx(linear, rel=1e-6)
    assert p.indicators()["pade_rejected"] == pytest.approx(0.5)


def test_bad_options():
    with pytest.raises(ValueError, match="history: must be >= m \\+ n \\+ 1 = 4"):
        padecache.load_config({"predictor": {"name": "pade-fit", "m": 2, "n": 1, "history": 3}})
