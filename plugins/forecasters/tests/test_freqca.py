"""FreqCa: the band split, and what the predictor reproduces exactly (reused low band, Hermite high band)."""

from __future__ import annotations

import math

import torch
from forecasters_helpers import at, feed, sigma_grids, sigma_schedule
from hypothesis import given, settings
from hypothesis import strategies as st

from padecache import Schedule
from padecache_forecasters.freqca import FreqCaPredictor, lowpass

SQRT_HALF = math.sqrt(0.5)


def checkerboard(h=4, w=4, c=3):
    i = torch.arange(h).reshape(h, 1)
    j = torch.arange(w).reshape(1, w)
    return ((-1.0) ** (i + j)).reshape(1, h * w, 1).expand(1, h * w, c).double()


def smooth(h=4, w=4, c=3, seed=0):
    """Per-channel constant (DC): the lowest frequency there is."""
    return torch.randn(1, 1, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).expand(1, h * w, c)


@given(st.floats(0.0, 1.5), st.integers(0, 3))
@settings(max_examples=25)
def test_lowpass_is_a_projection_keeping_constants(cutoff, seed):
    x = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    low = lowpass(x, cutoff)
    assert torch.allclose(lowpass(low, cutoff), low, atol=1e-10)
    assert torch.allclose(lowpass(smooth(), cutoff), smooth(), atol=1e-12)
    assert torch.allclose(low + lowpass(x - low, cutoff), low, atol=1e-10)  # the high band has no low part


def test_band_edges_on_a_square_token_grid():
    assert torch.allclose(lowpass(checkerboard(), 0.5), torch.zeros_like(checkerboard()), atol=1e-12)
    assert torch.allclose(lowpass(checkerboard(), 1.5), checkerboard(), atol=1e-12)  # radius sqrt(2) <= 1.5
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)  # (B, C, H, W) layout: spatial dims last
    assert torch.allclose(lowpass(x, 0.0), x.mean(dim=(2, 3), keepdim=True).expand_as(x), atol=1e-12)
    y = torch.randn(1, 6, 2, dtype=torch.float64)  # 6 tokens: not square, FFT along the tokens
    assert torch.allclose(lowpass(y, 0.0), y.mean(dim=1, keepdim=True).expand_as(y), atol=1e-12)
    grid = torch.arange(6, dtype=torch.float64).reshape(1, 6, 1)  # tokens=(2, 3): row index = token // 3
    rows = lowpass(grid, 0.7, tokens=(2, 3))  # keeps DC and the lowest horizontal frequency (radius 2/3)
    assert torch.allclose(lowpass(grid, 0.0, tokens=(2, 3)), grid.mean().expand_as(grid))
    assert not torch.allclose(rows, lowpass(grid, 0.7))  # a different layout gives a different split


sigmas = sigma_grids


@given(sigmas, st.sampled_from([(1, "taylorseer"), (1, "newton"), (2, "newton")]), st.data())
@settings(max_examples=25)
def test_reuse_of_a_constant_low_band_plus_hermite_on_a_linear_high_band_is_exact(sig, order_mode, data):
    """Oracle: low band constant in time (reuse exact) + high band linear in time (the scaled Hermite expansion with
    2 sigma^2 = 1 is exact on lines; with exact derivatives the order-2 term vanishes on a line)."""
    order, mode = order_mode
    schedule = sigma_schedule(sig)
    computed = sorted(data.draw(st.lists(st.integers(0, len(sig) - 2), min_size=3, max_size=6, unique=True)))
    low, high = smooth(seed=data.draw(st.integers(0, 5))), checkerboard()
    r = lambda s: low + (0.5 - 2.0 * sig[s]) * high
    p = feed(FreqCaPredictor(FreqCaPredictor.Config(order=order, scale=SQRT_HALF, derivatives=mode, grid="sigma",
                                                    derivative_start=0)),
             schedule, {s: r(s) for s in computed})
    target = len(sig) - 1
    assert torch.allclose(at(p, schedule, target, low, len(computed)), r(target), atol=1e-9)


def test_the_low_band_is_reused_not_extrapolated():
    schedule = Schedule.uniform(12)
    low, high = smooth(), checkerboard()
    r = lambda s: (1.0 + 0.5 * s) * low + (2.0 - s) * high
    p = feed(FreqCaPredictor(FreqCaPredictor.Config(order=1, scale=SQRT_HALF)), schedule, {s: r(s) for s in (2, 4, 6)})
    got = at(p, schedule, 9, low, 3)
    assert torch.allclose(got, (1.0 + 0.5 * 6) * low + (2.0 - 9) * high, atol=1e-9)


def test_a_cutoff_beyond_every_frequency_is_plain_reuse():
    schedule = Schedule.uniform(12)
    x = torch.randn(3, 4, 16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p = feed(FreqCaPredictor(FreqCaPredictor.Config(cutoff=1.5)), schedule, {s: x[i] for i, s in enumerate((2, 4, 6))})
    assert torch.allclose(at(p, schedule, 9, x[0], 3), x[2], atol=1e-12)
