"""The engine's generic select(rows) splits every forecaster's state: a selected predictor forecasts exactly what
the full one forecasts for those rows (state is batch-first, positions are floats, rows never mix)."""

from __future__ import annotations

import pytest
import torch
from forecasters_helpers import ctx_at

from padecache import Schedule, StepContext
from padecache_forecasters.foca import FoCaPredictor
from padecache_forecasters.freqca import FreqCaPredictor
from padecache_forecasters.hicache import HiCachePredictor
from padecache_forecasters.magcache import MagCachePolicy
from padecache_forecasters.spectrum import SpectrumPredictor

PREDICTORS = [
    lambda: SpectrumPredictor(SpectrumPredictor.Config(w=0.5)),
    lambda: HiCachePredictor(),
    lambda: HiCachePredictor(HiCachePredictor.Config(derivatives="newton")),
    lambda: FoCaPredictor(),
    lambda: FoCaPredictor(FoCaPredictor.Config(variant="cache-dit")),
    lambda: FreqCaPredictor(),
]


@pytest.mark.parametrize("make", PREDICTORS, ids=["spectrum", "hicache", "hicache-newton", "foca", "foca-cache-dit", "freqca"])
def test_selected_rows_forecast_like_the_full_batch(make):
    schedule = Schedule.uniform(12)
    g = torch.Generator().manual_seed(0)
    base, slope = torch.randn(4, 16, 3, generator=g), torch.randn(4, 16, 3, generator=g)
    full, n = make(), 0
    for s in range(8):  # computed 0, 1, 2, 4, 6; forecasts in between feed back where the method says so
        ctx = ctx_at(schedule, s, n)
        if s in (0, 1, 2, 4, 6):
            full.update(ctx, base + slope * s + 0.1 * s * s * base, torch.zeros(4, 16, 3), computed=True)
            n += 1
        else:
            full.update(ctx, full.predict(ctx, torch.zeros(4, 16, 3)), torch.zeros(4, 16, 3), computed=False)
    rows = torch.tensor([3, 1])
    part = full.select(rows, 4)
    ctx = ctx_at(schedule, 9, n)
    want = full.predict(ctx, torch.zeros(4, 16, 3))[rows]
    assert torch.allclose(part.predict(StepContext(9, 12, ctx.timestep, ctx.sigma, schedule=schedule, history=n, rows=2),
                                       torch.zeros(2, 16, 3)), want, atol=1e-6)


def test_policy_state_splits_by_row():
    policy = MagCachePolicy(MagCachePolicy.Config(speedup=2.5))
    schedule = Schedule.uniform(20)
    mags = torch.tensor([1.0, 1.5, 0.7])
    for s in range(3):
        ctx = StepContext(s, 20, schedule.timesteps[s], schedule.sigmas[s], schedule=schedule, rows=3)
        policy.should_compute(ctx)
        policy.observe(ctx, torch.ones(3, 4, 2) * (mags**s).reshape(3, 1, 1), True)
    part = policy.select(torch.tensor([2]), 3)
    assert part.log_rate.shape == (1,) and part.log_rate.item() == pytest.approx(torch.log(mags[2]).item(), rel=1e-5)
    assert part.passes == policy.passes
