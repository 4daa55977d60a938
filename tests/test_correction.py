"""Gap correction (``engine.gap_correction``, :mod:`padecache.correction`): the math against an Euler sampler run
by hand, rows kept apart, and the wiring through a real pipeline (only with an Euler flow-matching scheduler, only
for plans of enough passes)."""

from __future__ import annotations

import pytest
import torch

import padecache
import tiny
from padecache.correction import GapCorrector, euler_update, gap_correction, output_tensor, with_output_tensor
from padecache.interfaces import Schedule
from padecache.plugins import get_registry
from padecache.schedule import schedule_from

SIGMAS = [1.0, 0.93, 0.85, 0.74, 0.6, 0.41, 0.2, 0.0]  # uneven, as shifted flow-matching grids are


def _euler(x, outputs, sigmas, start, stop):
    for i in range(start, stop):
        x = x + (sigmas[i + 1] - sigmas[i]) * outputs[i]
    return x


def test_the_next_latent_is_the_one_the_interpolated_outputs_would_have_given():
    # oracle: an Euler sampler run by hand.  Outputs m and k computed, the ones between forecast (badly); with the
    # correction at weight 1, the latent after step k is the latent the linear interpolation in sigma would reach
    g = torch.Generator().manual_seed(0)
    m, k = 1, 5
    at = {i: torch.randn(3, 4, generator=g) for i in range(len(SIGMAS) - 1)}
    forecasts = [at[m] + 0.3 * torch.randn(3, 4, generator=g) for _ in range(m + 1, k)]
    x = torch.randn(3, 4, generator=g)
    change = gap_correction(SIGMAS, m, k, at[m], at[k], forecasts)
    ran = {**at, **dict(zip(range(m + 1, k), forecasts))}
    corrected = _euler(x, {**ran, k: at[k] + change}, SIGMAS, 0, k + 1)
    interpolated = {i: at[m] + (SIGMAS[i] - SIGMAS[m]) / (SIGMAS[k] - SIGMAS[m]) * (at[k] - at[m]) for i in range(m + 1, k)}
    torch.testing.assert_close(corrected, _euler(x, {**at, **interpolated}, SIGMAS, 0, k + 1), rtol=0, atol=1e-5)
    # and where the true outputs are linear in sigma, that is the uncached latent itself
    line = {i: 2.0 - 3.0 * SIGMAS[i] * torch.ones(3, 4) for i in range(len(SIGMAS) - 1)}
    change = gap_correction(SIGMAS, m, k, line[m], line[k], [line[m]] * (k - m - 1))  # forecast: reuse
    fixed = _euler(x, {**line, **{i: line[m] for i in range(m + 1, k)}, k: line[k] + change}, SIGMAS, 0, k + 1)
    torch.testing.assert_close(fixed, _euler(x, line, SIGMAS, 0, k + 1), rtol=0, atol=1e-5)


def test_forecasts_on_the_interpolation_need_no_correction_and_bad_arguments_are_named():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    between = [torch.lerp(a, b, (SIGMAS[i] - SIGMAS[0]) / (SIGMAS[3] - SIGMAS[0])) for i in (1, 2)]
    assert gap_correction(SIGMAS, 0, 3, a, b, between).abs().max() < 1e-6
    with pytest.raises(ValueError, match="bracket 2 skipped steps, got 1"):
        gap_correction(SIGMAS, 0, 3, a, b, between[:1])


def _plan_run(corrector, rows_computed, weight=1.0, eligible=None, seed=0):
    """Steps 0..len-1 of a batch: ``rows_computed[s]`` the rows that computed at step s; the outputs returned."""
    g = torch.Generator().manual_seed(seed)
    batch, out, done = len(rows_computed[0]), [], 0
    for step, computed in enumerate(rows_computed):
        computed = torch.tensor(computed)
        ok = computed if eligible is None else torch.tensor(eligible[step])
        value, n = corrector.apply(step, torch.randn(batch, 2, 3, generator=g), computed, ok, SIGMAS, weight)
        out.append(value)
        done += n
    return out, done


def test_each_row_is_corrected_from_its_own_steps_alone():
    plan = [[True, True], [False, True], [False, False], [True, False], [False, True], [True, True]]
    batch, done = _plan_run(GapCorrector(), plan)
    assert done == 3  # row 0 at steps 3 and 5 (after 0 and 3), row 1 at step 4 (after 1; its step 5 follows 4)
    for row in (0, 1):  # the row alone, on the same draws
        g = torch.Generator().manual_seed(0)
        draws = [torch.randn(2, 2, 3, generator=g)[row:row + 1] for _ in plan]
        alone = GapCorrector()
        got = [alone.apply(s, draws[s], torch.tensor([p[row]]), torch.tensor([p[row]]), SIGMAS, 1.0)[0] for s, p in enumerate(plan)]
        for s in range(len(plan)):
            torch.testing.assert_close(batch[s][row:row + 1], got[s], rtol=0, atol=1e-6)


def test_nothing_moves_without_a_gap_for_ineligible_rows_or_for_a_non_finite_correction():
    g = torch.Generator().manual_seed(1)
    c = GapCorrector()
    for s in range(3):
        x = torch.randn(1, 4, generator=g)
        y, n = c.apply(s, x, torch.tensor([True]), torch.tensor([True]), SIGMAS, 0.5)
        assert y is x and n == 0
    assert _plan_run(GapCorrector(), [[True], [False], [True]], eligible=[[False]] * 3)[1] == 0
    c = GapCorrector()
    c.apply(0, torch.zeros(1, 4), torch.tensor([True]), torch.tensor([True]), SIGMAS, 0.5)
    c.apply(1, torch.full((1, 4), float("nan")), torch.tensor([False]), torch.tensor([False]), SIGMAS, 0.5)
    x = torch.ones(1, 4)
    y, n = c.apply(2, x, torch.tensor([True]), torch.tensor([True]), SIGMAS, 0.5)
    assert n == 0 and torch.equal(y, x)


def test_only_an_euler_step_gives_euler_sigmas():
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        FlowMatchHeunDiscreteScheduler,
    )

    euler = FlowMatchEulerDiscreteScheduler()
    euler.set_timesteps(6)
    schedule = schedule_from(euler, euler.timesteps)
    assert schedule.euler_sigmas == pytest.approx(euler.sigmas.tolist()) and len(schedule.euler_sigmas) == 7
    assert schedule.sigmas == pytest.approx(euler.sigmas[:6].tolist())
    others = (FlowMatchEulerDiscreteScheduler(stochastic_sampling=True), FlowMatchHeunDiscreteScheduler(),
              DDIMScheduler(),  # clips x0 (its default): not linear in the output
              DDIMScheduler(clip_sample=False, prediction_type="v_prediction"),
              DDIMScheduler(clip_sample=False, timestep_spacing="trailing"),  # 7 steps of 1000: strides 142 and 143
              EulerDiscreteScheduler(prediction_type="v_prediction"), DPMSolverMultistepScheduler())
    for other in others:
        other.set_timesteps(7)
        assert not euler_update(other)
        assert schedule_from(other, other.timesteps).euler_sigmas is None, other
    with pytest.raises(ValueError, match="3 Euler sigmas for 3 steps; give one more"):
        Schedule([1, 2, 3], euler_sigmas=[1, 0.5, 0.2])


@pytest.mark.parametrize("m, k", [(2, 6), (4, 7)])  # (4, 7): the last step, onto the final alpha_bar
@pytest.mark.parametrize("kind", ["ddim", "ddim-trailing", "ddim-offset", "k-euler"])
def test_noise_prediction_samplers_are_corrected_as_euler_steps_of_their_grid(kind, m, k):
    # oracle: the scheduler's own step() run by hand.  DDIM (eta = 0) and k-diffusion's Euler on a noise prediction are
    # Euler steps of (a scaled) latent on the grid euler_grid gives, so the correction at weight 1 lands the latent
    # after step k where the interpolated outputs would have taken it, as for flow matching
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    steps = 8  # 1000 / 8 = 125: trailing spacing lands each step on the next one too
    scheduler = (EulerDiscreteScheduler() if kind == "k-euler"
                 else DDIMScheduler(clip_sample=False, timestep_spacing="trailing" if "trailing" in kind else "leading",
                                    steps_offset=int("offset" in kind), set_alpha_to_one="offset" not in kind))
    scheduler.set_timesteps(steps)
    grid = schedule_from(scheduler, scheduler.timesteps).euler_sigmas
    assert grid is not None and len(grid) == steps + 1 and grid[0] > grid[-1]

    def run(outputs, x):
        scheduler.set_timesteps(steps)
        for i, t in enumerate(scheduler.timesteps[:k + 1]):
            x = scheduler.step(outputs[i], t, x).prev_sample
        return x

    g = torch.Generator().manual_seed(2)
    at = {i: torch.randn(2, 4, 3, 3, generator=g) for i in range(steps)}
    forecasts = [at[m] + 0.3 * torch.randn(2, 4, 3, 3, generator=g) for _ in range(m + 1, k)]
    x = torch.randn(2, 4, 3, 3, generator=g) * float(scheduler.init_noise_sigma)
    change = gap_correction(grid, m, k, at[m], at[k], forecasts)
    interpolated = {i: torch.lerp(at[m], at[k], (grid[i] - grid[m]) / (grid[k] - grid[m])) for i in range(m + 1, k)}
    corrected = run({**at, **dict(zip(range(m + 1, k), forecasts)), k: at[k] + change}, x)
    torch.testing.assert_close(corrected, run({**at, **interpolated}, x), rtol=1e-4, atol=1e-4)
    uncorrected = run({**at, **dict(zip(range(m + 1, k), forecasts))}, x)
    assert (uncorrected - corrected).abs().max() > 1e-2  # the forecasts' error was there to take back


def test_a_ddim_pipeline_gets_the_correction_and_a_clipping_one_does_not():
    from diffusers import DDIMScheduler

    from padecache.testing.pipelines import dit_pipeline, run_dit

    pipe = dit_pipeline()
    for clip, corrected in ((False, True), (True, False)):
        pipe.scheduler = DDIMScheduler(clip_sample=clip)
        padecache.apply(pipe, "default")
        try:
            out = run_dit(pipe, steps=20)
            stats = padecache.stats(pipe)
        finally:
            padecache.remove(pipe)
        assert torch.isfinite(out).all() and stats.full_passes == 8
        assert (stats.corrections > 0) is corrected, (clip, stats.corrections)
        # and where it moves nothing, stats say why
        assert ("not an Euler step" in stats.correction_off) is not corrected, stats.correction_off
        assert ("gap correction off: the scheduler's update" in stats.summary()) is not corrected


@pytest.mark.parametrize("policy, why", [
    ({"name": "budget", "speedup": 4.0}, "fewer passes than engine.gap_correction_passes = 6"),  # 3 passes
    ({"name": "tsi", "interval": 3}, "the policy decides as it goes"),
    ({"name": "budget", "speedup": 2.0}, ""),  # 6 passes: corrected, nothing to explain
])
def test_stats_say_why_an_enabled_correction_moved_nothing(flux_pipe, policy, why):
    config = {"predictor": {"name": "taylor", "order": 1}, "policy": policy, "engine": {"gap_correction": 0.5}}
    with tiny.applied(flux_pipe, config):
        tiny.run_flux(flux_pipe, steps=12)
        stats = padecache.stats(flux_pipe)
    assert (why in stats.correction_off) if why else stats.correction_off == "", stats.correction_off
    assert (stats.corrections > 0) is (not why) and ("gap correction off" in stats.summary()) is bool(why)
    with tiny.applied(flux_pipe, {**config, "engine": {"gap_correction": 0.0}}):  # off: nothing to explain
        tiny.run_flux(flux_pipe, steps=12)
        assert padecache.stats(flux_pipe).correction_off == ""


def test_output_structures_keep_their_shape():
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    t, u = torch.zeros(1, 2), torch.ones(1, 2)
    assert with_output_tensor(t, u) is u
    assert with_output_tensor((t, "x"), u)[0] is u and output_tensor((t, "x")) is t
    out = with_output_tensor(Transformer2DModelOutput(sample=t), u)
    assert out.sample is u and out[0] is u and output_tensor(out) is u
    assert output_tensor("text") is None


def _outputs(pipe, config, steps=12):
    """The transformer's outputs per call (what the scheduler gets) and the stats, under ``config``."""
    seen = []
    handle = pipe.transformer.register_forward_hook(lambda module, args, out: seen.append(output_tensor(out).clone()))
    try:
        with tiny.applied(pipe, config):
            images = tiny.run_flux(pipe, steps=steps)
            stats = padecache.stats(pipe)
    finally:
        handle.remove()
    return images, seen, stats


def _mask_config(steps, correction, passes=6):
    return {"predictor": {"name": "taylor", "order": 1},
            "policy": {"name": "mask", "steps": steps, "num_steps": 12},
            "engine": {"gap_correction": correction, "gap_correction_passes": passes}}


def test_a_pipeline_gets_the_correction_at_computed_steps_after_a_gap(flux_pipe):
    plan = [0, 1, 3, 6, 8, 10]
    _, plain, off = _outputs(flux_pipe, _mask_config(plan, 0.0))
    images, moved, on = _outputs(flux_pipe, _mask_config(plan, 0.5))
    assert off.corrections == 0 and on.corrections == 4 and "gap corrections 4" in on.summary()
    assert on.full_passes == off.full_passes == 6 and on.cache_bytes > off.cache_bytes  # the outputs kept count
    sigmas = flux_pipe.scheduler.sigmas.tolist()
    for i in range(3):  # until step 3, the first computed after a gap, the runs are one run
        torch.testing.assert_close(moved[i], plain[i], rtol=0, atol=0)
    expected = plain[3] + 0.5 * gap_correction(sigmas, 1, 3, plain[1], plain[3], [plain[2]])
    torch.testing.assert_close(moved[3], expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(moved[3], plain[3]) and torch.isfinite(images).all()
    # a plan of fewer passes than gap_correction_passes is left exactly as it was
    _, lean, stats = _outputs(flux_pipe, _mask_config(plan, 0.5, passes=7))
    assert stats.corrections == 0 and all(torch.equal(a, b) for a, b in zip(lean, plain))


def test_no_correction_with_a_scheduler_that_is_not_an_euler_step(flux_pipe):
    from diffusers import FlowMatchEulerDiscreteScheduler

    old = flux_pipe.scheduler
    flux_pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(old.config, stochastic_sampling=True)  # re-noises
    try:
        _, _, stats = _outputs(flux_pipe, _mask_config([0, 1, 3, 6, 8, 10], 0.5))
    finally:
        flux_pipe.scheduler = old
    assert stats.corrections == 0 and stats.full_passes == 6


def test_a_batch_with_the_correction_gives_what_its_samples_give_alone(flux_pipe):
    config = _mask_config([0, 1, 3, 6, 8, 10], 0.5)
    with tiny.applied(flux_pipe, config):
        kw = dict(num_inference_steps=12, guidance_scale=3.5, height=16, width=16, max_sequence_length=48, output_type="pt")
        batch = flux_pipe(["a squirrel", "a red boat"], generator=[torch.Generator().manual_seed(s) for s in (0, 1)], **kw).images
        assert padecache.stats(flux_pipe).corrections == 8
        singles = torch.cat([flux_pipe(p, generator=torch.Generator().manual_seed(s), **kw).images
                             for p, s in (("a squirrel", 0), ("a red boat", 1))])
    full = [flux_pipe(["a squirrel", "a red boat"], generator=[torch.Generator().manual_seed(s) for s in (0, 1)], **kw).images]
    full.append(torch.cat([flux_pipe(p, generator=torch.Generator().manual_seed(s), **kw).images
                           for p, s in (("a squirrel", 0), ("a red boat", 1))]))
    tiny.assert_batch_matches_singles(batch, singles, full)


def test_the_option_is_checked_and_shown(tmp_path):
    with pytest.raises(ValueError, match="gap_correction"):
        padecache.load_config({"engine": {"gap_correction": 1.5}})
    cfg = padecache.load_config("tc-pade-fast")
    assert cfg.engine.gap_correction == 0.5 and "gap_correction=0.5" in cfg.describe()
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert padecache.load_config(tmp_path / "c.toml").engine.gap_correction == 0.5


def test_what_is_kept_is_a_copy_the_caller_may_change_in_place():
    # a CFG written as uncond.add_(cond - uncond, alpha=g) changes the float32 output it was given
    plan = [[True], [True], [False], [False], [True], [False], [True]]
    g = torch.Generator().manual_seed(3)
    draws = [torch.randn(1, 2, 3, generator=g) for _ in plan]
    clean, dirty = GapCorrector(), GapCorrector()
    for step, rows in enumerate(plan):
        mask = torch.tensor(rows)
        a, _ = clean.apply(step, draws[step].clone(), mask, mask, SIGMAS, 0.5)
        given = draws[step].clone()
        b, _ = dirty.apply(step, given, mask, mask, SIGMAS, 0.5)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        given.mul_(-7.0)  # the caller reuses its tensor
        b.add_(100.0)


def test_a_schedule_pinned_with_set_schedule_keeps_the_correction_only_with_euler_sigmas(flux_pipe):
    config = _mask_config([0, 1, 3, 6, 8, 10], 0.5)
    with tiny.applied(flux_pipe, config):
        reference = tiny.run_flux(flux_pipe, steps=12)
        assert padecache.stats(flux_pipe).corrections == 4
        timesteps, sigmas = flux_pipe.scheduler.timesteps.clone(), flux_pipe.scheduler.sigmas.clone()
        padecache.set_schedule(flux_pipe, timesteps, sigmas[:12])
        tiny.run_flux(flux_pipe, steps=12)
        assert padecache.stats(flux_pipe).corrections == 0  # no word on the update rule: off
        padecache.set_schedule(flux_pipe, timesteps, sigmas[:12], euler_sigmas=sigmas)
        torch.testing.assert_close(tiny.run_flux(flux_pipe, steps=12), reference, rtol=0, atol=0)
        assert padecache.stats(flux_pipe).corrections == 4
        bad = sigmas.clone()
        bad[3] = float("nan")
        with pytest.raises(ValueError, match="set_schedule: the timesteps and sigmas must be finite numbers, got nan"):
            padecache.set_schedule(flux_pipe, timesteps, euler_sigmas=bad)
        with pytest.raises(ValueError, match="must be finite"):
            padecache.set_schedule(flux_pipe, Schedule(timesteps, euler_sigmas=bad))
        with pytest.raises(ValueError, match="12 Euler sigmas for 12 steps"):
            padecache.set_schedule(flux_pipe, timesteps, euler_sigmas=sigmas[:12])
        padecache.set_schedule(flux_pipe, None)
        torch.testing.assert_close(tiny.run_flux(flux_pipe, steps=12), reference, rtol=0, atol=0)


def test_the_kept_outputs_are_float32_copies_on_the_history_device():
    c = GapCorrector("cpu")
    out, _ = c.apply(0, torch.ones(2, 3), torch.tensor([True, True]), torch.tensor([True, True]), SIGMAS, 0.5)
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in c.outputs.values())
    assert out.dtype == torch.float32


def test_the_default_preset_corrects_after_each_gap_of_its_plan(flux_pipe):
    """``padecache.apply(pipe)`` without a config: first-order forecasts on the budget plan, with the correction."""
    config = padecache.load_config("default")
    assert config.engine.gap_correction == 0.5
    mask = get_registry().create("policy", "budget", config.policy.options).mask(20)
    after_gap = [k for k in range(1, 20) if mask[k] and not mask[k - 1]]
    assert sum(mask) == 8 and len(after_gap) == 6  # 2.5x of 20 steps; the warm-up's second pass has no gap before it
    _, moved, on = _outputs(flux_pipe, "default", steps=20)
    _, plain, off = _outputs(flux_pipe, {**config.to_dict(), "engine": {"gap_correction": 0.0}}, steps=20)
    assert on.corrections == len(after_gap) and off.corrections == 0 and on.full_passes == off.full_passes == 8
    first = after_gap[0]
    assert all(torch.equal(a, b) for a, b in zip(moved[:first], plain[:first])) and not torch.equal(moved[first], plain[first])
