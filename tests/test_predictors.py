"""Exactness of the built-in predictors (their contracts run through padecache.testing in test_contracts.py)."""

from __future__ import annotations

import pytest
import torch

import padecache
from padecache import Schedule, Stage, StepContext
from padecache.plugins import get_registry

SCHEDULE = Schedule.uniform(20)
STAGES = {s: (Stage.EARLY if s <= 6 else Stage.LATE if s > 16 else Stage.MID) for s in range(20)}


def ctx(step, branch="main", history=0):
    return StepContext(step, 20, SCHEDULE.timesteps[step], SCHEDULE.sigmas[step], branch, STAGES[step], SCHEDULE, history=history)


def trajectory(step, rows=3):
    """A smooth, row-dependent residual trajectory (rows differ in scale and phase)."""
    t = torch.tensor(float(step))
    base = torch.linspace(-1, 1, 24).reshape(1, 4, 6)
    scale = torch.arange(1, rows + 1, dtype=torch.float32).reshape(rows, 1, 1)
    return scale * (base * (1 + 0.05 * t) + 0.01 * t**2 * base.flip(-1)) + 0.1 * torch.sin(0.3 * t + scale)


def feed(predictor, steps, rows=3):
    for s in steps:
        predictor.update(ctx(s), trajectory(s, rows), torch.zeros(rows, 4, 6), computed=True)


def test_noop_returns_its_input():
    p = get_registry().create("predictor", "noop")
    r = torch.randn(2, 3, 4)
    p.update(ctx(0), r, torch.zeros_like(r), computed=True)
    assert p.predict(ctx(5), torch.zeros_like(r)) is r


def test_predicted_residuals_never_enter_history():
    p = get_registry().create("predictor", "linear")
    feed(p, [0, 1], rows=1)
    before = p.predict(ctx(3), torch.zeros(1, 4, 6))
    p.update(ctx(2), torch.full((1, 4, 6), 1e6), torch.zeros(1, 4, 6), computed=False)
    torch.testing.assert_close(p.predict(ctx(3), torch.zeros(1, 4, 6)), before)


@pytest.mark.parametrize("grid", ["step", "sigma", "timestep"])
def test_linear_on_a_line_is_exact_on_every_grid(grid):
    p = get_registry().create("predictor", "linear", padecache.load_config({"predictor": {"name": "linear", "grid": grid}}).predictor.options)
    a, b = torch.randn(2, 5), torch.randn(2, 5)
    for s in (3, 7):
        x = ctx(s).position(grid)
        p.update(ctx(s), a + b * x, torch.zeros(2, 5), computed=True)
    torch.testing.assert_close(p.predict(ctx(12), torch.zeros(2, 5)), a + b * ctx(12).position(grid))


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_taylor_order_k_is_exact_on_degree_k_on_a_nonuniform_grid(order):
    opts = padecache.load_config({"predictor": {"name": "taylor", "order": order}}).predictor.options
    p = get_registry().create("predictor", "taylor", opts)
    cs = torch.randn(order + 1, 2, 3, dtype=torch.float64)
    poly = lambda x: sum(cs[i] * x**i for i in range(order + 1))  # noqa: E731
    for s in [0, 1, 4, 5, 9][-(order + 1):]:  # gaps 1, 3, 1, 4
        p.update(ctx(s), poly(float(s)), torch.zeros(2, 3), computed=True)
    torch.testing.assert_close(p.predict(ctx(13), torch.zeros(2, 3)), poly(13.0))


def test_taylor_with_short_history_uses_the_order_it_has():
    opts = padecache.load_config({"predictor": {"name": "taylor", "order": 3}}).predictor.options
    p = get_registry().create("predictor", "taylor", opts)
    p.update(ctx(0), torch.ones(1, 2), torch.zeros(1, 2), computed=True)
    p.update(ctx(2), 3 * torch.ones(1, 2), torch.zeros(1, 2), computed=True)
    torch.testing.assert_close(p.predict(ctx(3), torch.zeros(1, 2)), 4 * torch.ones(1, 2))  # linear through both
