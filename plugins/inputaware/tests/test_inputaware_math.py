"""The pure math of the input-aware methods, each against an oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from padecache_inputaware._inputs import token_grid
from padecache_inputaware._math import (
    abs_sums,
    barycentric_coefficients,
    barycentric_weights,
    dicache_forecast,
    dicache_gamma,
    easycache_prediction,
    phase_positions,
    polyval,
    rel_l1,
    rel_l1_sums,
    resilphase_coefficients,
    sea_coefficients,
    sea_filter,
    sea_gain,
)
from padecache_inputaware.calibrate import fit_polynomial

finite = st.floats(-50, 50, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=6), st.floats(0, 2))
def test_polyval_is_numpys_poly1d(coefficients, x):
    got = float(polyval(coefficients, torch.tensor([x], dtype=torch.float64))[0])
    assert got == pytest.approx(float(np.poly1d(coefficients)(x)), rel=1e-12, abs=1e-9)


def test_rel_l1_is_teacaches_ratio_of_means_and_adds_over_shards():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 10, 4, generator=g), torch.randn(3, 10, 4, generator=g)
    want = (a - b).abs().mean(dim=(1, 2)) / b.abs().mean(dim=(1, 2))
    torch.testing.assert_close(rel_l1(rel_l1_sums(a, b)), want)
    # the partial sums of two token shards add up to the whole: what ctx.reduce relies on
    halves = rel_l1_sums(a[:, :4], b[:, :4]) + rel_l1_sums(a[:, 4:], b[:, 4:])
    torch.testing.assert_close(rel_l1(halves), want)
    zero = torch.zeros(1, 5)
    assert rel_l1(rel_l1_sums(zero, zero)).item() == 0.0
    assert rel_l1(rel_l1_sums(torch.ones(1, 5), zero)).item() == math.inf


def test_sea_coefficients():
    assert sea_coefficients(0.3) == pytest.approx((0.7, 0.3))
    assert sea_coefficients(1.0) == pytest.approx((1e-6, 1 - 1e-6))  # clamped as the code does
    a, b = sea_coefficients(0.6, "vp")
    assert a == pytest.approx(0.8) and b == pytest.approx(0.6)
    with pytest.raises(ValueError):
        sea_coefficients(0.5, "ddim")


def test_sea_gain_is_a_unit_mean_separable_low_pass():
    gain = sea_gain((8, 6), a=0.5, b=0.5, power_exp=2.0)
    assert gain.shape == (8, 6) and gain.mean().item() == pytest.approx(1.0)
    # separable: the outer product of the two axes' gains, up to the normalisation
    g0, g1 = sea_gain((8,), 0.5, 0.5, 2.0), sea_gain((6,), 0.5, 0.5, 2.0)
    outer = g0[:, None] * g1[None, :]
    torch.testing.assert_close(gain, outer / outer.mean())
    # low-pass: monotone in |f| along an axis, largest at DC
    assert torch.all(g0[:4].diff() < 0) and g0[0] == g0.max()


def test_sea_filter_is_the_identity_without_noise_and_keeps_the_mean():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6 * 4, 3, generator=g)
    # b = 0 (no noise): H = 1/a on every frequency, normalised to 1
    torch.testing.assert_close(sea_filter(x, (6, 4), a=1.0, b=0.0, power_exp=2.0), x, rtol=1e-5, atol=1e-5)
    # any noise level: the mean over the grid (DC) is scaled by H(0) / mean(H) and the rest damped more
    y = sea_filter(x, (6, 4), a=0.3, b=0.7, power_exp=2.0)
    gain = sea_gain((6, 4), 0.3, 0.7, 2.0)
    torch.testing.assert_close(y.mean(1), x.mean(1) * gain[0, 0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        sea_filter(x, (5, 4), 0.5, 0.5, 2.0)


def test_easycache_prediction_is_k_times_the_relative_input_change():
    # k = mean|do| / mean|dx| = (6 / 3) / (2 / 2) = 2; input change mean 0.5, output mean 4: 2 * 0.5 / 4 = 0.25
    rate = torch.tensor([[6.0, 2.0]])  # sums over 3 output and 2 input elements
    got = easycache_prediction(rate, torch.tensor([1.0]), torch.tensor([12.0]))
    assert got.item() == pytest.approx(2 * (1.0 / 2) / (12.0 / 3))


def test_dicache_gamma_and_forecast():
    sums = torch.tensor([[3.0, 2.0], [1.0, 2.0], [5.0, 2.0], [1.0, 0.0]])
    torch.testing.assert_close(dicache_gamma(sums), torch.tensor([1.5, 1.0, 1.5, 1.0]))
    torch.testing.assert_close(dicache_gamma(sums, 1.0, 2.0), torch.tensor([1.5, 1.0, 2.0, 1.0]))
    older, newer = torch.zeros(2, 3), torch.ones(2, 3)
    torch.testing.assert_close(dicache_forecast(older, newer, torch.tensor([1.0, 1.5])),
                               torch.tensor([[1.0] * 3, [1.5] * 3]))


def test_balanced_phase_axis():
    nodes, (s,) = phase_positions([2.0, 8.0], [14.0], "balanced", 0.55)
    assert nodes == pytest.approx([math.tanh(-0.55), math.tanh(0.55)])
    assert s == pytest.approx(math.tanh(0.55 * 3))
    # two residuals: linear in phase, i.e. damped linear extrapolation
    c = resilphase_coefficients([2.0, 8.0], 14.0)
    frac = (s - nodes[0]) / (nodes[1] - nodes[0])
    assert c == pytest.approx([1 - frac, frac])
    assert 1.0 < frac < 2.0  # less than the straight line's 2


def test_chebyshev_phase_axis():
    nodes, phases = phase_positions([0.0, 4.0, 8.0], [4.0, 6.0, 10.0], "chebyshev")
    cheb = [math.cos(math.pi / 6), 0.0, -math.cos(math.pi / 6)]
    assert nodes == pytest.approx(cheb)
    assert phases[0] == pytest.approx(0.0)  # a node maps onto itself
    assert phases[1] == pytest.approx(-math.cos(math.pi / 6) / 2)  # halfway between two nodes
    slope = -math.cos(math.pi / 6) / 4
    assert phases[2] == pytest.approx(cheb[2] + 2 * slope)  # the last segment's slope beyond it


@given(st.lists(st.floats(-0.95, 0.95), min_size=2, max_size=5, unique=True).filter(
    lambda v: min(abs(a - b) for i, a in enumerate(v) for b in v[i + 1:]) > 0.05),
    st.floats(-1, 1), st.lists(st.floats(-2, 2), min_size=5, max_size=5))
def test_barycentric_interpolation_is_exact_on_polynomials(nodes, s, poly):
    """Through n nodes the barycentric interpolant reproduces every polynomial of degree < n (Berrut & Trefethen)."""
    n = len(nodes)
    p = np.poly1d(poly[:n])  # degree n - 1
    c = barycentric_coefficients(nodes, barycentric_weights(nodes), s)
    assert sum(c) == pytest.approx(1.0, abs=1e-9)
    assert sum(ci * p(x) for ci, x in zip(c, nodes)) == pytest.approx(float(p(s)), rel=1e-6, abs=1e-6)


def test_barycentric_weights_are_the_classical_ones_up_to_scale():
    nodes = [0.9, 0.1, -0.5]
    w = barycentric_weights(nodes)
    classical = [1 / math.prod(a - b for b in nodes if b != a) for a in nodes]
    ratio = [x / y for x, y in zip(w, classical)]
    assert ratio == pytest.approx([ratio[0]] * 3)
    assert sum(abs(x) for x in w) == pytest.approx(3.0)


def test_fit_polynomial_recovers_a_polynomial():
    x = np.linspace(0.01, 0.3, 40)
    coef = (120.0, -40.0, 5.0, 0.7, 0.01)
    got, r2 = fit_polynomial(x, np.polyval(coef, x), 4)
    assert got == pytest.approx(coef, rel=1e-6, abs=1e-8) and r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="pairs"):
        fit_polynomial([0.1, 0.2], [0.1, 0.2], 4)


def test_token_grids():
    assert token_grid(12, explicit=(3, 4)) == (3, 4)
    with pytest.raises(ValueError):
        token_grid(12, explicit=(5, 4))
    assert token_grid(196) == (14, 14)
    assert token_grid(10) == (10,)

    class Ctx:
        def __init__(self, latents):
            self.inputs = type("I", (), {"model_input": latents, "grid": None})()

    assert token_grid(16, Ctx(torch.zeros(1, 4, 8, 8))) == (4, 4)  # DiT: patch 2
    assert token_grid(3 * 16, Ctx(torch.zeros(1, 16, 3, 8, 8))) == (3, 4, 4)  # Wan: patch (1, 2, 2)
    assert token_grid(16, Ctx(torch.zeros(1, 16, 1, 8, 8))) == (1, 4, 4)  # one frame keeps its axis
    assert abs_sums(torch.tensor([[1.0, -2.0], [0.5, 0.5]])).tolist() == [3.0, 1.0]
