"""Spectrum: Chebyshev design, the ridge fit's exactness, the local blend, the window schedule, batch rows."""

from __future__ import annotations

import math

import pytest
import torch
from forecasters_helpers import at, ctx_at, feed, sigma_grids, sigma_schedule
from hypothesis import given, settings
from hypothesis import strategies as st

from padecache import Schedule
from padecache_forecasters.spectrum import SpectrumPredictor, SpectrumWindowPolicy, chebyshev_design, ridge_weights


@given(st.lists(st.floats(-1, 1), min_size=1, max_size=8), st.integers(0, 8))
def test_design_is_cos_m_arccos(taus, degree):
    x = chebyshev_design(torch.tensor(taus, dtype=torch.float64), degree)
    want = torch.tensor([[math.cos(m * math.acos(t)) for m in range(degree + 1)] for t in taus], dtype=torch.float64)
    assert torch.allclose(x, want, atol=1e-9)


sigmas = sigma_grids


@given(sigmas, st.integers(0, 4), st.data())
@settings(max_examples=25)
def test_ridge_without_penalty_fits_polynomials_of_the_basis_degree_exactly(sig, degree, data):
    """Oracle: with lambda -> 0 (here 0) and at least M + 1 samples, the Chebyshev fit reproduces any polynomial of
    degree <= M exactly, however the computed steps are spaced on the (sigma) grid, at any target."""
    schedule = sigma_schedule(sig)
    n = len(sig)
    computed = sorted(data.draw(st.lists(st.integers(0, n - 2), min_size=5, max_size=n - 1, unique=True)))
    target = data.draw(st.integers(computed[0], n - 1).filter(lambda s: s not in computed))
    coeffs = torch.tensor(data.draw(st.lists(st.floats(-2, 2), min_size=degree + 1, max_size=degree + 1)), dtype=torch.float64)
    coeffs = torch.stack([coeffs, -coeffs + 0.5])  # two batch rows, different polynomials

    def poly(s):
        return torch.stack([sum(c[k] * s**k for k in range(degree + 1)) for c in coeffs]).reshape(2, 1, 1)

    p = SpectrumPredictor(SpectrumPredictor.Config(degree=4, lam=0.0, grid="sigma", min_points=1))
    feed(p, schedule, {s: poly(sig[s]) for s in computed})
    got = at(p, schedule, target, poly(0.0), len(computed))
    assert torch.allclose(got, poly(sig[target]), atol=1e-6 * (1 + poly(sig[target]).abs().max()))


def test_ridge_weights_match_a_direct_solve():
    taus, lam = [-1.0, -0.8, -0.5, -0.1, 0.3], 0.1
    x = chebyshev_design(torch.tensor(taus, dtype=torch.float64), 4)
    coef = torch.linalg.solve(x.T @ x + lam * torch.eye(5, dtype=torch.float64), x.T)
    want = chebyshev_design(torch.tensor([0.6], dtype=torch.float64), 4) @ coef
    assert torch.allclose(ridge_weights(taus, 0.6, 4, lam), want.reshape(-1))


def test_local_blend_is_the_codes_linear_term_on_real_distances():
    """w = 0: only the code's h_n + k (h_n - h_{n-1}), k = (t* - t_n)/(t_n - t_{n-1})."""
    schedule = Schedule.uniform(20)
    p = SpectrumPredictor(SpectrumPredictor.Config(w=0.0))
    feed(p, schedule, {2: torch.full((1, 1), 1.0), 6: torch.full((1, 1), 3.0)})
    assert at(p, schedule, 9, torch.zeros(1, 1), 2).item() == pytest.approx(3.0 + 0.75 * 2.0)


def test_output_target_fits_stack_outputs():
    schedule = Schedule.uniform(10)
    p = SpectrumPredictor(SpectrumPredictor.Config(target="output", lam=0.0, degree=1))
    for n, s in enumerate([0, 2, 4]):  # outputs on a line, inputs arbitrary
        x_in = torch.full((1, 1), float(s * s))
        p.update(ctx_at(schedule, s, n), torch.full((1, 1), 2.0 * s + 1) - x_in, x_in, computed=True)
    x_in = torch.full((1, 1), 7.0)
    assert (p.predict(ctx_at(schedule, 6, 3), x_in) + x_in).item() == pytest.approx(13.0)


def test_rows_are_independent_and_history_is_batch_first():
    schedule = Schedule.uniform(20)
    a, b = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)).unbind(0)
    traj = {s: torch.stack([a + s * b, b - 0.1 * s * s * a]) for s in (0, 1, 3, 6)}
    both = feed(SpectrumPredictor(), schedule, traj)
    assert both.values.shape[:2] == (2, 4)
    for row in range(2):
        one = feed(SpectrumPredictor(), schedule, {s: v[row:row + 1] for s, v in traj.items()})
        assert torch.allclose(at(one, schedule, 9, a[None], 4), at(both, schedule, 9, a[None].expand(2, -1, -1), 4)[row:row + 1])


@pytest.mark.parametrize("flex, passes, mask", [
    (0.75, 14, "#####.#.#..#...#....#....#.....#......#.......#..."),
    (3.0, 10, "#####.#....#.......#..........#.............#....."),
])
def test_window_policy_is_the_papers_schedule(flex, passes, mask):
    plan = SpectrumWindowPolicy(SpectrumWindowPolicy.Config(flex=flex)).mask(50)
    assert sum(plan) == passes and "".join("#" if m else "." for m in plan) == mask
