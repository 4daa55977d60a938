"""Our components reproduce the official decision and forecast code on the golden vectors of data/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from inputaware_helpers import Inputs, ctx_at, decisions, sigma_schedule
from padecache_inputaware.dicache import DiCachePolicy, DiCachePredictor
from padecache_inputaware.easycache import EasyCachePolicy
from padecache_inputaware.resilphase import ResilPhasePredictor
from padecache_inputaware.seacache import SeaCachePolicy
from padecache_inputaware.teacache import TeaCachePolicy

from padecache import Schedule

DATA = Path(__file__).parent / "data"


def load(name):
    data = json.loads((DATA / name).read_text())
    return data, {case["name"]: case for case in data["cases"]}


def tensor(values, shape):
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


TEACACHE, TEACACHE_CASES = load("teacache_official.json")
EASYCACHE, EASYCACHE_CASES = load("easycache_official.json")
SEACACHE, SEACACHE_CASES = load("seacache_official.json")
DICACHE, DICACHE_CASES = load("dicache_official.json")
RESILPHASE, RESILPHASE_CASES = load("resilphase_official.json")


@pytest.mark.parametrize("name", sorted(TEACACHE_CASES))
def test_teacache_decides_as_the_official_code(name):
    case = TEACACHE_CASES[name]
    shape = case.get("indicator_shape", TEACACHE["shape"])
    st = case["settings"]
    policy = TeaCachePolicy(TeaCachePolicy.Config(model=st["model"], threshold=st["threshold"]))
    schedule = Schedule.uniform(case["num_steps"])
    for step, values in enumerate(case["indicator"]):
        m = tensor(values, shape)
        # the indicator goes where the model's official code measures it: modulated input or timestep embedding
        inputs = Inputs(modulated=m, stack_input=torch.zeros_like(m), time_embedding=m)
        want = decisions(policy.should_compute(ctx_at(schedule, step, inputs=inputs)))
        assert want == [case["computed"][step]], f"{name} step {step}"
        assert close(float(policy.acc[0]), case["accumulated"][step]), f"{name} step {step}: accumulator"
        policy.observe(ctx_at(schedule, step), torch.zeros_like(m), computed=want[0])
        assert float(policy.indicators()["tea_fallback"]) == 0.0


@pytest.mark.parametrize("name", sorted(EASYCACHE_CASES))
def test_easycache_decides_as_the_official_code(name):
    case = EASYCACHE_CASES[name]
    shape, st = EASYCACHE["shape"], case["settings"]
    policy = EasyCachePolicy(EasyCachePolicy.Config(threshold=st["threshold"], warmup=st["warmup"]))
    schedule = Schedule.uniform(case["num_steps"])
    for step in range(case["num_steps"]):
        x, o = tensor(case["inputs"][step], shape), tensor(case["outputs"][step], shape)
        # stack input zero: the block stack's output is its residual, the transformer's output in the code
        ctx = ctx_at(schedule, step, inputs=Inputs(model_input=x, stack_input=torch.zeros_like(x)))
        want = decisions(policy.should_compute(ctx))
        assert want == [case["computed"][step]], f"{name} step {step}"
        assert close(float(policy.acc[0]), case["accumulated"][step]), f"{name} step {step}: accumulator"
        policy.observe(ctx, o, computed=want[0])
        if want[0] and case["k"][step] is not None and policy.rate is not None:
            k = float(policy.rate[0, 0] / policy.rate[0, 1])
            assert close(k, case["k"][step]), f"{name} step {step}: transformation rate"


@pytest.mark.parametrize("name", sorted(SEACACHE_CASES))
def test_seacache_decides_as_the_official_code(name):
    case = SEACACHE_CASES[name]
    st = case["settings"]
    schedule = sigma_schedule(case["sigmas"])
    if case["kind"] == "flux":
        h, w = case["grid"]
        policy = SeaCachePolicy(SeaCachePolicy.Config(threshold=st["threshold"], grid=(h, w),
                                                      filter_warmup=st["filter_warmup"]))
        shape = (1, h * w, -1)
    else:
        policy = SeaCachePolicy(SeaCachePolicy.Config(threshold=st["threshold"], max_skips=st["max_skips"],
                                                      indicator="model_input", power_exp=st["power_exp"]))
        shape = case["latent_shape"]
    for step, values in enumerate(case["indicator"]):
        x = tensor(values, shape)
        inputs = Inputs(modulated=x, stack_input=x) if case["kind"] == "flux" else Inputs(model_input=x, stack_input=x)
        want = decisions(policy.should_compute(ctx_at(schedule, step, inputs=inputs)))
        assert want == [case["computed"][step]], f"{name} step {step}"
        assert close(float(policy.acc[0]), case["accumulated"][step], rel=2e-4), f"{name} step {step}: accumulator"
        policy.observe(ctx_at(schedule, step), x, computed=want[0])


@pytest.mark.parametrize("name", sorted(DICACHE_CASES))
def test_dicache_decides_and_forecasts_as_the_official_code(name):
    """The probe is the always-run first block: its output is the stack input the engine gives, the input of
    block 0 its ``first_input``; the residual padecache caches is the rest of the stack's."""
    case = DICACHE_CASES[name]
    shape, st = DICACHE["shape"], case["settings"]
    policy = DiCachePolicy(DiCachePolicy.Config(threshold=st["threshold"], ret_ratio=st["ret_ratio"], error=st["error"]))
    predictor = DiCachePredictor(DiCachePredictor.Config(gamma_max=st["gamma_max"]))
    schedule = Schedule.uniform(case["num_steps"])
    history = 0
    for step in range(case["num_steps"]):
        x, y = tensor(case["inputs"][step], shape), tensor(case["probes"][step], shape)
        full, official = tensor(case["full"][step], shape), tensor(case["outputs"][step], shape)
        ctx = ctx_at(schedule, step, history=history, inputs=Inputs(stack_input=y, first_input=x))
        want = decisions(policy.should_compute(ctx))
        assert want == [case["computed"][step]], f"{name} step {step}"
        if want[0]:
            residual, history = full - y, history + 1
            out = full
        else:
            residual = predictor.predict(ctx, y)
            out = y + residual
        torch.testing.assert_close(out, official, rtol=1e-5, atol=2e-6, msg=lambda m, s=step: f"{name} step {s}: {m}")
        predictor.update(ctx, residual, y, computed=want[0])
        policy.observe(ctx, residual, computed=want[0])


@pytest.mark.parametrize("name", sorted(RESILPHASE_CASES))
def test_resilphase_forecasts_as_the_official_code(name):
    case = RESILPHASE_CASES[name]
    shape, st = RESILPHASE["shape"], case["settings"]
    predictor = ResilPhasePredictor(ResilPhasePredictor.Config(max_order=st["max_order"], mapping=st["mapping"],
                                                               alpha=st["alpha"]))
    schedule = Schedule.uniform(case["num_steps"])
    computed, zeros = set(case["computed"]), torch.zeros(shape)
    for step in range(case["num_steps"]):
        ctx = ctx_at(schedule, step)
        if step in computed:
            predictor.update(ctx, tensor(case["features"][step], shape), zeros, computed=True)
            continue
        pred = predictor.predict(ctx, zeros)
        want = tensor(case["expected"][str(step)], shape)
        scale = max(1.0, want.abs().max().item())
        assert (pred - want).abs().max().item() <= 2e-5 * scale, f"{name} step {step}"
        predictor.update(ctx, pred, zeros, computed=False)


def test_resilphase_schedule_is_the_fixed_policy():
    """The code's cal_type (first_enhance full steps, then every fresh_threshold-th) is padecache's `fixed`."""
    from padecache.policies import FixedPolicy

    for case in RESILPHASE_CASES.values():
        st = case["settings"]
        mask = FixedPolicy(FixedPolicy.Config(interval=st["interval"], warmup=st["warmup"])).mask(case["num_steps"])
        assert [s for s, m in enumerate(mask) if m] == case["computed"], case["name"]
