"""The budgeted MagCache policy: the budget is met exactly, passes go where the magnitude changes, MagCache's rule."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from padecache import OptionError, Schedule, StepContext
from padecache_forecasters.magcache import MagCachePolicy, segment_error, token_norms


def drive(policy, residuals, rows=1):
    """The engine's loop for one branch: ask, (compute or reuse), show the residual used."""
    steps = len(residuals)
    schedule = Schedule.uniform(steps)
    plan, last = [], None
    for s in range(steps):
        ctx = StepContext(s, steps, schedule.timesteps[s], schedule.sigmas[s], schedule=schedule, rows=rows)
        want = policy.should_compute(ctx)
        compute = bool(want.any()) if isinstance(want, torch.Tensor) else bool(want)
        compute = compute or last is None  # the engine computes while nothing is cached
        last = residuals[s] if compute else last
        policy.observe(ctx, last, compute)
        plan.append(compute)
    return plan


def magnitudes(values, tokens=4, channels=3):
    """Residuals whose per-token norms follow ``values`` (one per step)."""
    base = torch.ones(1, tokens, channels) / math.sqrt(channels)
    return [base * v for v in values]


@given(st.integers(8, 40), st.floats(1.2, 6.0), st.integers(0, 3))
def test_budget_is_met_exactly(steps, speedup, seed):
    g = torch.Generator().manual_seed(seed)
    values = torch.cumprod(1 + 0.2 * torch.randn(steps, generator=g).clamp(-2, 2) ** 2 * torch.sign(torch.randn(steps, generator=g)) * 0.5, 0).abs() + 0.1
    policy = MagCachePolicy(MagCachePolicy.Config(speedup=speedup))
    plan = drive(policy, magnitudes(values.tolist()))
    assert sum(plan) == max(1, min(steps, round(steps / speedup)))


@pytest.mark.parametrize("passes", [4, 6, 9])
def test_full_passes_and_the_tail(passes):
    values = [1.3**s for s in range(20)]
    plan = drive(MagCachePolicy(MagCachePolicy.Config(full_passes=passes)), magnitudes(values))
    assert sum(plan) == passes and plan[0] and plan[1] and not plan[-1]


def test_passes_go_where_the_magnitude_changes():
    """Flat magnitudes over steps 0-9, a fast change over 10-14, flat again: the same budget puts more passes in
    the changing stretch than an even plan would (2 of 8)."""
    values = [1.0] * 10 + [1.0 * 1.6**k for k in range(1, 6)] + [1.6**5] * 5
    plan = drive(MagCachePolicy(MagCachePolicy.Config(full_passes=8)), magnitudes(values))
    assert sum(plan) == 8
    assert sum(plan[10:16]) >= 3, "".join("#" if p else "." for p in plan)


def test_fixed_threshold_is_magcaches_rule():
    """threshold 0.3, K = 2: ratios 1.1 per step.  After two computed steps the ratio is known; a skip at step 2
    accumulates |1 - 1.1| = 0.1, at step 3 + |1 - 1.21| = 0.31 > 0.3: compute; then again."""
    values = [1.1**s for s in range(10)]
    policy = MagCachePolicy(MagCachePolicy.Config(threshold=0.3, max_skips=2, retention=0.2))
    plan = drive(policy, magnitudes(values))
    assert "".join("#" if p else "." for p in plan) == "##.#.#.#.#"
    policy = MagCachePolicy(MagCachePolicy.Config(threshold=5.0, max_skips=2, retention=0.2))
    assert "".join("#" if p else "." for p in drive(policy, magnitudes(values))) == "##..#..#.."


def test_rows_decide_independently():
    still = magnitudes([1.0] * 20)
    moving = magnitudes([1.25**s for s in range(20)])
    both = [torch.cat([a, b]) for a, b in zip(still, moving)]
    policy = MagCachePolicy(MagCachePolicy.Config(speedup=2.5))
    schedule = Schedule.uniform(20)
    decisions = []
    for s in range(2):
        ctx = StepContext(s, 20, schedule.timesteps[s], schedule.sigmas[s], schedule=schedule, rows=2)
        decisions.append(policy.should_compute(ctx))
        policy.observe(ctx, both[s], True)
    ctx = StepContext(2, 20, schedule.timesteps[2], schedule.sigmas[2], schedule=schedule, rows=2)
    want = policy.should_compute(ctx)
    assert want.shape == (2,) and want.dtype == torch.bool
    assert decisions[0].all() and decisions[1].all()
    aggregated = MagCachePolicy(MagCachePolicy.Config(speedup=2.5, per_row=False))
    assert isinstance(aggregated.should_compute(StepContext(0, 20, 1000.0, 1.0, rows=2)), bool)


def test_segment_error_and_token_norms():
    rate = torch.tensor([math.log(1.1)])
    assert segment_error(rate, 2).item() == pytest.approx(0.1 + 0.21)
    assert segment_error(rate, 2.5).item() == pytest.approx(0.1 + 0.21 + 0.5 * 0.331)
    assert token_norms(torch.ones(2, 5, 4)).shape == (2, 5)
    with pytest.raises(OptionError):
        MagCachePolicy.Config(speedup=None)
