"""FoCa: the corrector's exactness, the predictor-corrector on lines and parabolas, the cache-dit variant."""

from __future__ import annotations

import itertools

import pytest
import torch
from forecasters_helpers import at, ctx_at, feed, sigma_schedule
from hypothesis import given
from hypothesis import strategies as st

from padecache import Schedule
from padecache_forecasters.foca import FoCaPredictor, bdf_slope, foca_step, trapezoid

coef = st.floats(-3, 3)
positions = st.lists(st.floats(-5, 5), min_size=3, max_size=3, unique=True).map(sorted) \
    .filter(lambda v: min(b - a for a, b in itertools.pairwise(v)) > 0.05)


@given(coef, coef, coef, st.floats(-4, 4), st.floats(0.05, 6))
def test_calibration_is_exact_for_quadratics_given_exact_slopes(c0, c1, c2, x0, d):
    """Oracle: Heun's corrector is the trapezoidal rule, exact when the slope is linear (R quadratic)."""
    f = lambda x: c0 + c1 * x + c2 * x * x
    df = lambda x: c1 + 2 * c2 * x
    y = trapezoid(torch.tensor(f(x0), dtype=torch.float64), torch.tensor(df(x0), dtype=torch.float64),
                  torch.tensor(df(x0 + d), dtype=torch.float64), d)
    assert y.item() == pytest.approx(f(x0 + d), abs=1e-9 * (1 + abs(f(x0 + d))))


@given(coef, coef, coef, positions)
def test_bdf2_slope_is_exact_for_quadratics(c0, c1, c2, xs):
    f = lambda x: torch.tensor(c0 + c1 * x + c2 * x * x, dtype=torch.float64)
    assert bdf_slope(xs, [f(x) for x in xs]).item() == pytest.approx(c1 + 2 * c2 * xs[-1], abs=1e-8)


@given(coef, coef, positions, st.floats(0.05, 8), st.booleans(), st.booleans())
def test_forecast_then_calibrate_is_exact_on_lines_for_any_spacing(c0, c1, xs, d, three, corrector):
    xs = xs if three else xs[1:]
    ys = [torch.tensor([c0 + c1 * x], dtype=torch.float64) for x in xs]
    got = foca_step(xs, ys, xs[-1] + d, corrector)
    assert got.item() == pytest.approx(c0 + c1 * (xs[-1] + d), abs=1e-8 * (1 + abs(c1) * 10))


@given(st.floats(0.2, 3), st.floats(0.1, 6), coef)
def test_on_a_parabola_the_step_keeps_h_over_2_d_plus_h_of_the_curvature(h, d, a):
    """R = x + a x^2 with computed x = -2h, -h, 0: slope exact, forecast misses a d^2, the calibration restores
    h / (2 (d + h)) of it: the farther the forecast, the more it is damped towards the tangent."""
    xs = [-2 * h, -h, 0.0]
    ys = [torch.tensor([x + a * x * x], dtype=torch.float64) for x in xs]
    assert foca_step(xs, ys, d).item() == pytest.approx(d + a * d * d * h / (2 * (d + h)), abs=1e-9)
    assert foca_step(xs, ys, d, corrector=False).item() == pytest.approx(d, abs=1e-9)


def test_predictor_uses_real_positions_on_the_sigma_grid():
    sig = [1.0, 0.9, 0.7, 0.6, 0.45, 0.3, 0.2, 0.1]
    schedule = sigma_schedule(sig)
    f = lambda s: torch.full((1, 2), 2.0 - 3.0 * sig[s], dtype=torch.float64)
    p = feed(FoCaPredictor(FoCaPredictor.Config(grid="sigma")), schedule, {0: f(0), 2: f(2), 3: f(3)})
    assert torch.allclose(at(p, schedule, 7, f(0), 3), f(7))


def test_cache_dit_variant_overshoots_a_line_by_the_gap_between_computes():
    """cache-dit's F_full + e/2 (deriv_full + deriv_curr) takes deriv_full = F_full - F_full_prev, the change over
    the whole gap between the two computed steps, as a per-step slope.  On R = s (slope 1) computed at steps 0
    and 3, the forecast one step later is 3 + (3 + 3)/2 = 6 instead of 4; the variant reproduces it."""
    schedule = Schedule.uniform(10)
    line = lambda s: torch.full((1, 1), float(s))
    p = feed(FoCaPredictor(FoCaPredictor.Config(variant="cache-dit")), schedule, {0: line(0), 3: line(3)})
    got = at(p, schedule, 4, line(0), 2)
    assert got.item() == pytest.approx(6.0)
    paper = feed(FoCaPredictor(), schedule, {0: line(0), 3: line(3)})
    assert at(paper, schedule, 4, line(0), 2).item() == pytest.approx(4.0)


def test_cache_dit_variant_feeds_its_forecasts_back_and_blends_to_reuse_beyond_the_horizon():
    schedule = Schedule.uniform(12)
    line = lambda s: torch.full((1, 1), float(s))
    p = FoCaPredictor(FoCaPredictor.Config(variant="cache-dit"))
    for n, s in enumerate((0, 1)):
        p.update(ctx_at(schedule, s, n), line(s), torch.zeros(1, 1), computed=True)
    used = []
    for s in range(2, 7):  # anchor F_full = 1, deriv_full = 1; deriv_curr follows the forecasts
        pred = p.predict(ctx_at(schedule, s, 2), torch.zeros(1, 1))
        p.update(ctx_at(schedule, s, 2), pred, torch.zeros(1, 1), computed=False)
        used.append(pred.item())
    # e=1: 1 + (1 + 1)/2 = 2; e=2: 1 + (1 + 1) = 3; e=3: 1 + 1.5 (1 + 1) = 4;
    # e=4: (3/4)(1 + 1.5 (1 + (4 - 3))) + (1/4) 1 = 3.25; e=5: (3/5)(1 + 1.5 (1 + (3.25 - 4))) + (2/5) 1 = 1.225
    assert used == pytest.approx([2.0, 3.0, 4.0, 3.25, 1.225])
