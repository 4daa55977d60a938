"""The input-aware policies and predictors as components: rules, rows, ranks, select, options."""

from __future__ import annotations

import pytest
import torch
from inputaware_helpers import Inputs, ThreadGroup, ctx_at, decisions, sigma_schedule
from padecache_inputaware._inputs import MissingInput
from padecache_inputaware.dicache import DiCachePolicy, DiCachePredictor
from padecache_inputaware.easycache import EasyCachePolicy
from padecache_inputaware.resilphase import ResilPhasePredictor
from padecache_inputaware.seacache import SeaCachePolicy
from padecache_inputaware.teacache import TEACACHE_MODELS, TeaCachePolicy

from padecache import OptionError, Schedule

STEPS = 20


def features(steps=STEPS, rows=1, tokens=16, channels=4, seed=0, speed=1.0):
    """Smooth per-row trajectories with different speeds per row (so rows decide differently)."""
    g = torch.Generator().manual_seed(seed)
    base, drift, wobble = (torch.randn(rows, tokens, channels, generator=g) for _ in range(3))
    rate = torch.linspace(0.5, 2.0, rows).reshape(rows, 1, 1) * speed
    return [base + 0.05 * rate * t * drift + 0.3 * torch.sin(0.3 * rate * t) * wobble for t in range(steps)]


def run_policy(policy, feats, *, key="modulated", schedule=None, extra=None, residuals=None):
    """Drive ``policy`` as the engine does; the decision per step (one bool per row)."""
    schedule = schedule or Schedule.uniform(len(feats))
    out = []
    for step, f in enumerate(feats):
        inputs = Inputs(**{key: f, "stack_input": f if key != "stack_input" else f, **(extra(step) if extra else {})})
        ctx = ctx_at(schedule, step, rows=f.shape[0], inputs=inputs)
        want = decisions(policy.should_compute(ctx))
        want = want * f.shape[0] if len(want) == 1 else want
        out.append(want)
        policy.observe(ctx, residuals[step] if residuals else f, computed=all(want))
    return out


def mask(plan, row=0) -> str:
    return "".join("#" if p[row] else "." for p in plan)


# -- TeaCache -------------------------------------------------------------------------------------------------------


def test_teacache_options():
    with pytest.raises(OptionError, match="coefficients"):
        TeaCachePolicy.Config(model="custom")
    with pytest.raises(OptionError, match="custom"):
        TeaCachePolicy.Config(coefficients=(1.0, 0.0))
    p = TeaCachePolicy(TeaCachePolicy.Config(model="custom", coefficients=(2.0, 0.0), threshold=0.5))
    assert p.coefficients == (2.0, 0.0) and p.threshold == 0.5
    p = TeaCachePolicy(TeaCachePolicy.Config(model="wan2.1-t2v-1.3b-ret"))
    assert p.indicator == "time_projection" and p.warmup == 5 and not p.last  # e0, the projected embedding
    p = TeaCachePolicy(TeaCachePolicy.Config(model="flux"))
    assert p.threshold == 0.6 and p.coefficients == TEACACHE_MODELS["flux"].coefficients
    assert TeaCachePolicy().model is None  # 'auto': chosen at the first step, from the hooked model's family


@pytest.mark.parametrize("family, model, warns", [
    ("flux", "flux", None), ("hunyuanvideo", "hunyuanvideo", None), ("latte", "latte", None),
    ("wan", "wan2.1-t2v-1.3b", "one of"),  # several published: the first, and the user is told to choose
    ("pixart", "flux", "no TeaCache polynomial is published"), (None, "flux", "no TeaCache polynomial"),
])
def test_teacache_auto_uses_the_family_s_published_polynomial(family, model, warns):
    import warnings

    import attrs

    feats = [torch.full((1, 4, 2), 1.1**t) for t in range(3)]
    policy = TeaCachePolicy()
    ctx = attrs.evolve(ctx_at(Schedule.uniform(3), 0, inputs=Inputs(modulated=feats[0], stack_input=feats[0],
                                                                     time_embedding=feats[0][:, 0])), family=family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy.should_compute(ctx)
    ref = TEACACHE_MODELS[model]
    assert policy.model == model and policy.coefficients == ref.coefficients and policy.threshold == ref.threshold
    assert policy.indicator == ref.indicator
    messages = [str(w.message) for w in caught]
    assert (not messages) if warns is None else any(warns in m for m in messages), messages


def test_teacache_says_when_its_polynomial_s_indicator_is_missing():
    """FLUX's polynomial was fitted on the modulated input; a family without one measures the stack input, and the
    user is told (once) that the polynomial does not apply there."""
    import warnings

    feats = [torch.full((1, 4, 2), 1.1**t) for t in range(4)]
    policy = TeaCachePolicy(TeaCachePolicy.Config(model="flux"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_policy(policy, feats, key="stack_input")
    assert sum("does not apply" in str(w.message) for w in caught) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.25)), feats, key="stack_input")
    assert not caught  # the raw distance is meant for any input


def test_teacache_first_and_last_steps_and_accumulation():
    """Identity polynomial, constant relative change 0.1 per step, threshold 0.25: two skips, then a compute."""
    feats = [torch.full((1, 4, 2), 1.1**t) for t in range(12)]  # mean|m_t - m_{t-1}| / mean|m_{t-1}| = 0.1
    policy = TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.25))
    assert mask(run_policy(policy, feats)) == "#..#..#..#.#"  # first step, every third, and the last
    policy = TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.25, warmup=3, last=False))
    assert mask(run_policy(policy, feats)) == "###..#..#..#"


def test_teacache_warmup_share_is_hidreams():
    policy = TeaCachePolicy(TeaCachePolicy.Config(model="hidream"))
    schedule = Schedule.uniform(25)
    forced = [policy.should_compute(ctx_at(schedule, s, inputs=Inputs(modulated=torch.ones(1, 2)))) for s in range(3)]
    assert [bool(f[0]) for f in forced] == [True, True, True]  # ceil(0.1 * 25) = 3 steps


def test_teacache_falls_back_and_says_so():
    policy = TeaCachePolicy()
    x = torch.ones(1, 4, 2)
    schedule = Schedule.uniform(5)
    policy.should_compute(ctx_at(schedule, 0, inputs=Inputs(stack_input=x)))
    assert float(policy.indicators()["tea_fallback"]) == 1.0
    with pytest.raises(MissingInput, match="teacache"):
        policy.should_compute(ctx_at(schedule, 1))


def test_teacache_rows_decide_independently_and_as_alone():
    feats = features(rows=3, seed=1)
    batch = run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3)), feats)
    for row in range(3):
        alone = run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3)),
                           [f[row:row + 1] for f in feats])
        assert [p[0] for p in alone] == [p[row] for p in batch]
    assert len({mask(batch, r) for r in range(3)}) > 1, "the rows should not all decide alike on this input"


def test_teacache_batch_wide_mean_like_the_code():
    feats = features(rows=3, seed=1)
    plan = run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3, per_row=False)), feats)
    assert all(len(set(p)) == 1 for p in plan)


def test_select_keeps_the_state_of_chosen_rows():
    feats = features(rows=3, seed=2)
    schedule = Schedule.uniform(STEPS)
    policy = TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3))
    run_policy(policy, feats[:8], schedule=schedule)
    part = policy.select(torch.tensor([2]), 3)
    alone = TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3))
    run_policy(alone, [f[2:3] for f in feats[:8]], schedule=schedule)
    for step in range(8, STEPS):
        a = decisions(part.should_compute(ctx_at(schedule, step, inputs=Inputs(modulated=feats[step][2:3]))))
        b = decisions(alone.should_compute(ctx_at(schedule, step, inputs=Inputs(modulated=feats[step][2:3]))))
        assert a == b
        for p in (part, alone):
            p.observe(ctx_at(schedule, step), feats[step][2:3], computed=a[0])


def _sharded(make, feats, key, extra=None, world=2):
    """Each rank runs its own policy on its token shard; the reducers are one group."""
    group = ThreadGroup(world)
    schedule = Schedule.uniform(len(feats))

    def rank(r):
        policy, out = make(), []
        for step, f in enumerate(feats):
            shard = f.chunk(world, dim=1)[r]
            inputs = Inputs(**{key: shard, "stack_input": shard, **(extra(step) if extra else {})})
            ctx = ctx_at(schedule, step, rows=f.shape[0], inputs=inputs, reducer=group.reducer(r))
            want = decisions(policy.should_compute(ctx))
            out.append(want)
            policy.observe(ctx, shard, computed=all(want))
        return out

    return group.run(rank)


def test_teacache_ranks_decide_alike_and_as_the_whole_sequence():
    feats = features(rows=2, seed=3)

    def make():
        return TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3))

    ranks = _sharded(make, feats, "modulated")
    whole = run_policy(make(), feats)
    assert ranks[0] == ranks[1] == whole


# -- EasyCache -----------------------------------------------------------------------------------------------------


def test_easycache_predicts_the_relative_output_change_from_the_rate():
    """x and o move linearly: k = |do| / |dx| exactly, so each step predicts |do| / |o_c| ~ 0.5 / 100 and the
    threshold 0.012 lets two steps through before the third computes."""
    steps = 20
    x = [torch.full((1, 2, 4, 4), 0.2 * t) for t in range(steps)]
    o = [torch.full((1, 8, 3), 100.0 + 0.5 * t) for t in range(steps)]
    policy = EasyCachePolicy(EasyCachePolicy.Config(threshold=0.012, warmup=3))
    plan = run_policy(policy, x, key="model_input", extra=lambda s: {"stack_input": torch.zeros(1, 8, 3)}, residuals=o)
    assert mask(plan) == "###..#..#..#..#..#.#"
    assert float(policy.rate[0, 0] / policy.rate[0, 1]) == pytest.approx((0.5 * 3 * 24) / (0.2 * 3 * 32))


def test_easycache_ranks_decide_alike_and_as_the_whole_sequence():
    """The latents are whole on every rank (summed twice: k's ratio cancels it), the stack output is sharded."""
    steps = 20
    lat = [torch.sin(torch.linspace(0, 1, 32) * (1 + 0.1 * t)).reshape(1, 2, 4, 4) for t in range(steps)]
    feats = features(steps, rows=1, seed=4)

    def make():
        return EasyCachePolicy(EasyCachePolicy.Config(threshold=0.05, warmup=3))

    ranks = _sharded(make, feats, "stack_input", extra=lambda s: {"model_input": lat[s]})
    whole = run_policy(make(), feats, key="stack_input", extra=lambda s: {"model_input": lat[s]})
    assert ranks[0] == ranks[1] == whole
    assert "." in mask(whole)


# -- SeaCache ------------------------------------------------------------------------------------------------------


def test_seacache_without_noise_is_teacaches_raw_rule():
    """At sigma -> 0 the SEA filter passes every frequency: SeaCache is TeaCache on the raw relative L1."""
    feats = features(rows=2, tokens=16, seed=5, speed=2.0)
    schedule = sigma_schedule([1e-7] * STEPS)
    sea = run_policy(SeaCachePolicy(SeaCachePolicy.Config(threshold=0.3, grid=(4, 4))), feats, schedule=schedule)
    tea = run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.3)), feats, schedule=schedule)
    assert sea == tea and "." in mask(sea)


def test_seacache_discounts_noise_that_teacache_counts():
    """Fixed content plus fresh white noise at a high noise level: the raw rule keeps computing, SeaCache does not."""
    g = torch.Generator().manual_seed(6)
    content = torch.randn(1, 64, 1, generator=g).cumsum(1)  # smooth along the tokens: low frequencies
    feats = [content + 0.5 * torch.randn(1, 64, 1, generator=g) for _ in range(STEPS)]
    schedule = sigma_schedule([0.9] * STEPS)
    sea = run_policy(SeaCachePolicy(SeaCachePolicy.Config(threshold=0.2, grid=(8, 8))), feats, schedule=schedule)
    tea = run_policy(TeaCachePolicy(TeaCachePolicy.Config(model="identity", threshold=0.2)), feats, schedule=schedule)
    assert mask(sea).count("#") < mask(tea).count("#")


def test_seacache_max_skips_and_ranks_alike():
    feats = features(rows=1, tokens=16, seed=7, speed=0.2)
    plan = run_policy(SeaCachePolicy(SeaCachePolicy.Config(threshold=10.0, max_skips=2, grid=(4, 4))), feats)
    assert mask(plan) == "#..#..#..#..#..#..##"
    lat = [f.reshape(1, 4, 4, 4).permute(0, 3, 1, 2) for f in feats]  # latents (B, C, H, W), whole on every rank

    def make():
        return SeaCachePolicy(SeaCachePolicy.Config(threshold=0.05, indicator="model_input"))

    ranks = _sharded(make, feats, "stack_input", extra=lambda s: {"model_input": lat[s]})
    whole = run_policy(make(), feats, key="stack_input", extra=lambda s: {"model_input": lat[s]})
    assert ranks[0] == ranks[1] == whole


# -- DiCache -------------------------------------------------------------------------------------------------------


def test_dicache_forced_steps():
    schedule = Schedule.uniform(20)
    for inclusive, head in ((True, 5), (False, 4)):  # int(0.2 * 20) = 4: steps 0..4 (FLUX) or 0..3 (Wan)
        policy = DiCachePolicy(DiCachePolicy.Config(ret_ratio=0.2, ret_inclusive=inclusive, threshold=100.0))
        plan = run_policy(policy, [torch.ones(1, 2, 2) * (1 + s) for s in range(20)], key="stack_input", schedule=schedule)
        assert mask(plan) == "#" * head + "." * (19 - head) + "#"
    with pytest.raises(MissingInput, match="first_input"):
        DiCachePolicy(DiCachePolicy.Config(error="delta_minus")).should_compute(
            ctx_at(schedule, 0, inputs=Inputs(stack_input=torch.ones(1, 2))))


def test_dicache_says_when_no_probe_ran():
    """Without engine.first_blocks, block 0's input is the stack input: DiCache has no shallow probe, and says so."""
    import warnings

    schedule, x = Schedule.uniform(4), torch.ones(1, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DiCachePolicy().should_compute(ctx_at(schedule, 0, inputs=Inputs(stack_input=x, first_input=x)))
        DiCachePolicy().should_compute(ctx_at(schedule, 0, inputs=Inputs(stack_input=x + 1, first_input=x)))
    assert [("first_blocks" in str(w.message)) for w in caught] == [True]  # the second one had a probe


def test_dicache_alignment_is_exact_when_residual_and_probe_move_together():
    """R_t = R_0 + t D and p_t = p_0 + t E: the probe has moved gamma = (t - t_2) / (t_1 - t_2) of the last segment,
    and R_2 + gamma (R_1 - R_2) is the true residual (here gamma = 1.5, inside the code's clip)."""
    g = torch.Generator().manual_seed(8)
    r0, d, p0, e, x = (torch.randn(2, 5, 3, generator=g) for _ in range(5))
    schedule = Schedule.uniform(10)
    predictor = DiCachePredictor()
    for step in (2, 4):
        y = x + p0 + step * e
        ctx = ctx_at(schedule, step, rows=2, inputs=Inputs(stack_input=y, first_input=x))
        predictor.update(ctx, r0 + step * d, y, computed=True)
    y = x + p0 + 5 * e
    ctx = ctx_at(schedule, 5, rows=2, inputs=Inputs(stack_input=y, first_input=x))
    # the engine forecasts the part after the probe; the code's residual of the whole stack is that plus p
    got = predictor.predict(ctx, y) + (y - x)
    torch.testing.assert_close(got, (r0 + 5 * d) + (p0 + 5 * e), rtol=1e-5, atol=1e-5)
    assert float(predictor.indicators()["dicache_gamma"]) == pytest.approx(1.5)


def test_dicache_predictor_without_block_0s_input_uses_the_probe_state():
    schedule = Schedule.uniform(10)
    predictor = DiCachePredictor()
    r = [torch.full((1, 3), float(v)) for v in (1.0, 3.0)]
    for i, step in enumerate((2, 4)):
        predictor.update(ctx_at(schedule, step), r[i], torch.full((1, 3), float(step)), computed=True)
    got = predictor.predict(ctx_at(schedule, 5), torch.full((1, 3), 5.0))  # the state moved 1.5 segments
    torch.testing.assert_close(got, torch.full((1, 3), 1.0 + 1.5 * 2.0))
    with pytest.raises(OptionError):
        DiCachePredictor.Config(gamma_min=2.0, gamma_max=1.0)


# -- ResilPhase ----------------------------------------------------------------------------------------------------


def test_resilphase_keeps_max_order_plus_one_and_uses_the_grid():
    predictor = ResilPhasePredictor(ResilPhasePredictor.Config(max_order=2, grid="sigma"))
    schedule = sigma_schedule([1.0, 0.9, 0.7, 0.6, 0.4, 0.2])
    for step in (0, 1, 2, 4):
        predictor.update(ctx_at(schedule, step), torch.full((1, 2), float(step)), torch.zeros(1, 2), computed=True)
    assert predictor.num_computed == 3 and predictor.positions == [0.9, 0.7, 0.4]
    pred = predictor.predict(ctx_at(schedule, 5), torch.zeros(1, 2))
    assert torch.isfinite(pred).all() and pred.dtype == torch.float32
