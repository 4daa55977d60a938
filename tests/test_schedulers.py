"""Steps come from the schedule for every kind of scheduler: multistep (UniPC, DPM-Solver++), second-order
(Heun: two calls per step at two points of the time grid, not two CFG branches), and hand-written loops."""

from __future__ import annotations

import contextlib

import pytest
import torch

import padecache
import tiny
from padecache.plugins import get_registry
from padecache.schedule import SchedulerSource, StepNotFound


def _swap(pipe, cls, **kw):
    old = pipe.scheduler
    pipe.scheduler = cls.from_config(old.config, **kw)
    return old


def _check(pipe, run, steps, calls_per_step_branches, expected_branches):
    reference = run(pipe, steps=steps)
    with tiny.applied(pipe, "none"):
        exact = run(pipe, steps=steps)
        off = padecache.stats(pipe)
    n = len(pipe.scheduler.timesteps)  # the calls of one branch: 2 N - 1 for Heun
    assert (exact - reference).abs().max().item() <= 1e-6
    assert off.total_steps == n and off.branches == expected_branches and off.full_passes == n
    assert [r.step for r in off.records if r.branch == expected_branches[0]] == list(range(n))
    cfg = padecache.load_config("tc-pade-fast")
    with tiny.applied(pipe, cfg):
        out = run(pipe, steps=steps)
        on = padecache.stats(pipe)
    plan = get_registry().create("policy", cfg.policy.name, cfg.policy.options).mask(n)
    assert torch.isfinite(out).all()
    for branch in expected_branches:
        assert on.mask(branch) == plan
    return n


@pytest.mark.parametrize("kind", ["heun", "unipc", "dpm++"])
def test_dit_schedulers(kind, dit_pipe):
    from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler, UniPCMultistepScheduler

    cls = {"heun": HeunDiscreteScheduler, "unipc": UniPCMultistepScheduler, "dpm++": DPMSolverMultistepScheduler}[kind]
    old = _swap(dit_pipe, cls)
    try:
        n = _check(dit_pipe, tiny.run_dit, 8, 1, ("main",))
    finally:
        dit_pipe.scheduler = old
    assert n == (15 if kind == "heun" else 8)


@pytest.mark.parametrize("kind", ["heun", "unipc"])
def test_wan_flow_schedulers_with_two_call_cfg(kind, wan_pipe):
    from diffusers import FlowMatchHeunDiscreteScheduler, UniPCMultistepScheduler

    if kind == "heun":
        old = _swap(wan_pipe, FlowMatchHeunDiscreteScheduler)
    else:
        old = _swap(wan_pipe, UniPCMultistepScheduler, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    try:
        n = _check(wan_pipe, tiny.run_wan, 6, 2, ("cond", "uncond"))
    finally:
        wan_pipe.scheduler = old
    assert n == (11 if kind == "heun" else 6)


def test_heun_calls_without_a_cache_context_are_steps_not_branches(flux_pipe):
    """A hand-written Heun loop with no cache context and no step index: repeated timesteps are matched in order."""
    from diffusers import FlowMatchHeunDiscreteScheduler

    t = flux_pipe.transformer
    sched = FlowMatchHeunDiscreteScheduler()
    sched.set_timesteps(4)
    schedule = SchedulerSource(sched).current()
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    with tiny.applied(t, "none"):
        padecache.set_schedule(t, schedule)
        x = torch.randn(1, 64, 16)
        for ts in schedule.timesteps:
            t(x, timestep=torch.tensor([ts / 1000]), **kw)
        stats = padecache.stats(t)
    assert [r.step for r in stats.records] == list(range(7)) and stats.branches == ("main",)


def test_a_new_generation_does_not_inherit_the_previous_step_counter(flux_pipe):
    """A schedule that starts with a repeated timestep: the next generation's first call is step 0 again."""
    t = flux_pipe.transformer
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    values = [1000.0, 1000.0, 500.0, 0.0]
    x = torch.randn(1, 64, 16)
    with tiny.applied(t, "none"):
        for _generation in range(2):
            padecache.set_schedule(t, values)  # a new schedule object each time, as set_timesteps makes
            for v in values:
                t(x, timestep=torch.tensor([v / 1000]), **kw)
            assert [r.step for r in padecache.stats(t).records] == [0, 1, 2, 3]
        padecache.set_schedule(t, None)  # undone: no schedule is known any more
        with pytest.raises(ValueError, match="cannot tell which denoising step"):
            t(x, timestep=torch.tensor([1.0]), **kw)


def test_a_loop_that_starts_over_under_cache_context_names_is_a_new_generation(flux_pipe):
    """Two calls per step without a cache context (branches main, call1), then the same loop with cond / uncond
    contexts: the second loop's first call starts a new generation, so its stats hold its own two branches and
    passes (they once kept the first loop's too: twice the passes, and its histories held on)."""
    t = flux_pipe.transformer
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    values = [1000.0, 750.0, 500.0, 250.0]
    x = torch.randn(1, 64, 16)
    seen = []
    with tiny.applied(t, {"predictor": "taylor", "policy": {"name": "fixed", "interval": 2, "warmup": 1}}):
        padecache.set_schedule(t, values)
        for contexts in (False, True, True):
            for v in values:
                for branch in ("cond", "uncond"):
                    with t.cache_context(branch) if contexts else contextlib.nullcontext():
                        t(x, timestep=torch.tensor([v / 1000]), **kw)
            stats = padecache.stats(t)
            seen.append((stats.branches, stats.full_passes, len(stats.records)))
    assert seen[0] == (("main", "call1"), 2, 8)
    assert seen[1] == seen[2] == (("cond", "uncond"), 2, 8)


def test_scheduler_step_index_is_used_when_it_advances_like_a_loop(flux_pipe, monkeypatch):
    """With FlowMatchEuler the scheduler's own step index gives the step; the timestep value is read only to check
    it on the CPU, and a scheduler stepped twice per call falls back to matching the value."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    t = flux_pipe.transformer
    sched = FlowMatchEulerDiscreteScheduler()
    sched.set_timesteps(5)
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    x = torch.randn(1, 64, 16)
    with tiny.applied(t, "none", scheduler=sched):
        for ts in sched.timesteps:
            v = t(x, timestep=(ts / 1000).reshape(1), **kw).sample
            sched.step(v, ts, x)
        assert [r.step for r in padecache.stats(t).records] == [0, 1, 2, 3, 4]
        # a loop that steps the scheduler twice per call (two latents on one scheduler): the value decides
        sched.set_timesteps(6)
        with pytest.warns(RuntimeWarning, match="called at step 2 after step 0"):  # every other step: it says so
            for i, ts in enumerate(sched.timesteps[::2]):
                v = t(x, timestep=(ts / 1000).reshape(1), **kw).sample
                sched.step(v, sched.timesteps[2 * i], x)
                sched.step(v, sched.timesteps[2 * i + 1], x)
        assert [r.step for r in padecache.stats(t).records] == [0, 2, 4]


def wan22_pipeline():
    from diffusers import WanPipeline

    base = tiny.wan_pipeline()
    pipe = WanPipeline(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=base.vae, scheduler=base.scheduler,
                       transformer=tiny.wan_transformer(seed=0), transformer_2=tiny.wan_transformer(seed=1), boundary_ratio=0.875)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_wan22_experts_keep_their_own_state_and_step_accounting():
    pipe = wan22_pipeline()
    steps = 12
    reference = tiny.run_wan(pipe, steps=steps)
    boundary = 0.875 * 1000
    high = sum(float(t) >= boundary for t in pipe.scheduler.timesteps)
    assert 0 < high < steps  # both experts run
    with tiny.applied(pipe, "none"):
        exact = tiny.run_wan(pipe, steps=steps)
    assert (exact - reference).abs().max().item() <= 1e-6
    cfg = padecache.load_config({"predictor": "linear", "policy": {"name": "budget", "speedup": 2.0, "warmup": 2}})
    with tiny.applied(pipe, cfg):
        out = tiny.run_wan(pipe, steps=steps)
        combined = padecache.stats(pipe)
        first, second = padecache.stats(pipe.transformer), padecache.stats(pipe.transformer_2)
    assert torch.isfinite(out).all()
    assert (first.total_steps, second.total_steps, combined.total_steps) == (high, steps - high, steps)
    assert combined.experts == (first, second)
    budget = lambda n: get_registry().create("policy", "budget", cfg.policy.options).mask(n)  # noqa: E731
    for branch in ("cond", "uncond"):
        # each expert spends its own budget over its own steps, warm-up first: no step is lost to an empty history
        assert first.mask(branch)[:high] == budget(high)
        assert second.mask(branch)[high:] == budget(steps - high)
        assert combined.mask(branch) == budget(high) + budget(steps - high)
    assert {r.reason for r in first.records + second.records} <= {"policy", "forecast"}
    assert combined.full_passes == first.full_passes + second.full_passes


def test_a_scheduler_replaced_after_apply_is_followed(dit_pipe):
    """``pipe.scheduler = X.from_config(...)`` after ``apply`` (the usual idiom): the engine reads the pipeline's
    scheduler at each call, so the steps are the new scheduler's (it once kept the old one: wrong steps, or
    StepNotFound with caching off)."""
    from diffusers import DPMSolverMultistepScheduler

    with tiny.applied(dit_pipe, "none"):
        tiny.run_dit(dit_pipe, steps=10)
        old = _swap(dit_pipe, DPMSolverMultistepScheduler)
        try:
            reference_steps = 7
            tiny.run_dit(dit_pipe, steps=reference_steps)
            stats = padecache.stats(dit_pipe)
        finally:
            dit_pipe.scheduler = old
    assert stats.total_steps == reference_steps and [r.step for r in stats.records] == list(range(reference_steps))


def test_a_second_pipeline_sharing_the_transformer_is_named_when_its_steps_do_not_match(flux_pipe):
    """Another pipeline built on the hooked transformer with its own scheduler is not followed (padecache follows
    the pipeline it was applied to): a call between the followed steps is reported, a call far from them fails,
    each saying why and what to do."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    other = FluxPipeline(**{**flux_pipe.components,
                            "scheduler": FlowMatchEulerDiscreteScheduler.from_config(flux_pipe.scheduler.config)})
    with tiny.applied(flux_pipe, "none"):
        tiny.run_flux(flux_pipe, steps=4)
        with pytest.warns(RuntimeWarning, match=r"timestep 0.833333, 33% of a step away from step 1 of the 4-step "
                                                r"schedule .* follows the scheduler of the FluxPipeline it was applied "
                                                r"to; another pipeline sharing this transformer"):
            tiny.run_flux(other, steps=6)  # between two of the followed steps: once silent, with wrong stats
        with pytest.raises(StepNotFound, match=r"0.875 is not in .* another pipeline sharing this transformer"):
            tiny.run_flux(other, steps=8)
