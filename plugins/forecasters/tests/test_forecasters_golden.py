"""Our implementations reproduce the official forecasting functions on the golden vectors of data/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from padecache import Schedule, StepContext
from padecache_forecasters.foca import FoCaPredictor
from padecache_forecasters.hicache import HiCachePredictor
from padecache_forecasters.spectrum import SpectrumPredictor

DATA = Path(__file__).parent / "data"


def load(name):
    data = json.loads((DATA / name).read_text())
    return data, {case["name"]: case for case in data["cases"]}


def replay(predictor, case, shape):
    """The protocol of data/README.md: computed steps feed the true feature, the others are forecast (and the
    forecast is what the step used)."""
    steps = case["num_steps"]
    schedule = Schedule.uniform(steps)
    features = [torch.tensor(f, dtype=torch.float32).reshape(shape) for f in case["features"]]
    zeros = torch.zeros(shape)
    computed = set(case["computed"])
    got, count = {}, 0
    for s in range(steps):
        ctx = StepContext(s, steps, schedule.timesteps[s], schedule.sigmas[s], schedule=schedule, history=count)
        if s in computed:
            predictor.update(ctx, features[s], zeros, computed=True)
            count += 1
        elif str(s) in case["expected"]:
            assert predictor.ready(ctx) or count >= 1
            pred = predictor.predict(ctx, zeros)
            predictor.update(ctx, pred, zeros, computed=False)
            got[str(s)] = pred
    return got


def check(got, case, shape, rtol=2e-5):
    assert set(got) == set(case["expected"])
    for s, want in case["expected"].items():
        want = torch.tensor(want, dtype=torch.float32).reshape(shape)
        scale = max(1.0, want.abs().max().item())
        err = (got[s] - want).abs().max().item()
        assert err <= rtol * scale, f"{case['name']} step {s}: max error {err:.3g}"


SPECTRUM, SPECTRUM_CASES = load("spectrum_official.json")
HICACHE, HICACHE_CASES = load("hicache_official.json")
FOCA, FOCA_CASES = load("foca_cachedit.json")


@pytest.mark.parametrize("name", sorted(SPECTRUM_CASES))
def test_spectrum_reproduces_official_code(name):
    case, shape = SPECTRUM_CASES[name], SPECTRUM["shape"]
    st = case["settings"]
    predictor = SpectrumPredictor(SpectrumPredictor.Config(degree=st["degree"], lam=st["lam"], w=st["w"],
                                                           window=st["window"], span=st["span"], min_points=1))
    check(replay(predictor, case, shape), case, shape)


@pytest.mark.parametrize("name", sorted(HICACHE_CASES))
def test_hicache_reproduces_official_code(name):
    case, shape = HICACHE_CASES[name], HICACHE["shape"]
    st = case["settings"]
    predictor = HiCachePredictor(HiCachePredictor.Config(order=st["order"], scale=st["scale"],
                                                         derivative_start=st["derivative_start"]))
    check(replay(predictor, case, shape), case, shape)


@pytest.mark.parametrize("name", sorted(FOCA_CASES))
def test_foca_cache_dit_variant_reproduces_cache_dit(name):
    case, shape = FOCA_CASES[name], FOCA["shape"]
    predictor = FoCaPredictor(FoCaPredictor.Config(variant="cache-dit", max_horizon=case["settings"]["max_horizon"]))
    check(replay(predictor, case, shape), case, shape)
