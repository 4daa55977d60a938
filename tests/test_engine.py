"""The engine on tiny DiT, FLUX and Wan pipelines: exactness, masks, CFG isolation, lifecycle, errors."""

from __future__ import annotations

import inspect
import warnings

import attrs
import pytest
import torch

import padecache
import tiny
from padecache import Predictor
from padecache.plugins import get_registry

RUNNERS = {
    "dit": tiny.run_dit,
    "pixart": tiny.run_pixart,
    "flux": lambda pipe, **kw: tiny.run_flux(pipe, true_cfg=2.0, **kw),  # true CFG: two calls per step
    "wan": tiny.run_wan,
}
STEPS = 8


@pytest.fixture
def pipes(dit_pipe, flux_pipe, wan_pipe, pixart_pipe):
    return {"dit": dit_pipe, "flux": flux_pipe, "wan": wan_pipe, "pixart": pixart_pipe}


def attention_modules(transformer):
    adapter, _ = get_registry().adapter_for(transformer)
    return [next(m for m in block.children() if type(m).__name__.endswith("Attention")) for _, _, block in adapter.blocks(transformer)]


class CallLog:
    """Counts executions of the first block's attention (i.e. when the block stack really ran), and the batch
    rows they processed."""

    def __init__(self, transformer, rows=False):
        self.calls = self.rows = 0
        first = attention_modules(transformer)[0]
        self.handle = first.register_forward_hook(self._hit, with_kwargs=True)

    def _hit(self, module, args, kwargs, output):
        self.calls += 1
        hidden = args[0] if args else kwargs["hidden_states"]
        self.rows += hidden.shape[0]

    def close(self):
        self.handle.remove()


@pytest.mark.parametrize("family", ["dit", "flux", "wan", "pixart"])
def test_policy_always_equals_the_unhooked_model(family, pipes):
    pipe, run = pipes[family], RUNNERS[family]
    reference = run(pipe, steps=STEPS)
    with tiny.applied(pipe, "none"):
        out = run(pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    assert (out - reference).abs().max().item() <= 1e-6
    assert stats.full_passes == STEPS and stats.forecast_steps == 0
    expected_branches = ("main",) if family in ("dit", "pixart") else ("cond", "uncond")
    assert stats.branches == expected_branches


@pytest.mark.parametrize("family", ["dit", "flux", "wan", "pixart"])
@pytest.mark.parametrize("policy", [{"name": "fixed", "interval": 3, "warmup": 2}, {"name": "budget", "speedup": 2.0, "warmup": 2}])
def test_block_stack_runs_exactly_on_the_policy_mask(family, policy, pipes):
    pipe, run = pipes[family], RUNNERS[family]
    cfg = padecache.load_config({"predictor": {"name": "linear"}, "policy": policy})
    mask = get_registry().create("policy", policy["name"], cfg.policy.options).mask(STEPS)
    padecache.apply(pipe, cfg)
    log = CallLog(pipe.transformer)
    try:
        out = run(pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    finally:
        log.close()
        padecache.remove(pipe)
    branches = 1 if family in ("dit", "pixart") else 2
    assert log.calls == sum(mask) * branches
    for branch in stats.branches:
        assert stats.mask(branch) == mask
    assert stats.full_passes == sum(mask) < STEPS
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("family", ["dit", "flux", "wan", "pixart"])
def test_remove_restores_forward_and_signature(family, pipes):
    pipe = pipes[family]
    t = pipe.transformer
    adapter, _ = get_registry().adapter_for(t)
    blocks = [b for _, _, b in adapter.blocks(t)]
    head = adapter.head_module(t)
    signature = inspect.signature(t.forward)
    block_signatures = [inspect.signature(b.forward) for b in blocks]
    state = {k: v.clone() for k, v in t.state_dict().items()}
    had_registry = hasattr(t, "_diffusers_hook")
    padecache.apply(pipe, "default")
    assert inspect.signature(t.forward) == signature
    assert [inspect.signature(b.forward) for b in blocks] == block_signatures
    padecache.remove(pipe)
    assert "forward" not in t.__dict__ and t.forward.__func__ is type(t).forward
    assert all("forward" not in b.__dict__ and b.forward.__func__ is type(b).forward for b in blocks)
    assert not head._forward_pre_hooks
    assert hasattr(t, "_diffusers_hook") == had_registry
    assert all(torch.equal(v, state[k]) for k, v in t.state_dict().items())
    assert not padecache.is_applied(pipe)


class SpyPredictor(Predictor):
    """Linear forecast that records which branch and how many rows each instance sees."""

    name = "spy"
    seen: list = []

    @attrs.frozen
    class Config:
        pass

    def __init__(self, config=None):
        super().__init__(config)
        self.history = []

    def update(self, ctx, residual, block_input, computed):
        SpyPredictor.seen.append((id(self), ctx.branch, ctx.step, residual.shape[0], computed))
        if computed:
            self.history = (self.history + [(ctx.step, residual)])[-2:]

    def predict(self, ctx, block_input):
        (s0, r0), (s1, r1) = self.history
        return r1 + (r1 - r0) * (ctx.step - s1) / (s1 - s0)

    def reset(self):
        self.history = []

    @property
    def num_computed(self):
        return len(self.history)

    min_history = 2


class SpyPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [SpyPredictor]


@pytest.fixture
def spy():
    plugin = SpyPlugin()
    padecache.register_plugin(plugin, name="spy")
    SpyPredictor.seen = []
    yield SpyPredictor
    padecache.unregister_plugin(plugin)


@pytest.mark.parametrize("family", ["flux", "wan"])
def test_two_calls_per_step_keep_one_history_per_branch(family, pipes, spy):
    pipe = pipes[family]
    with tiny.applied(pipe, {"predictor": {"name": "spy"}, "policy": {"name": "fixed", "interval": 2, "warmup": 2}}):
        RUNNERS[family](pipe, steps=STEPS)
    by_instance = {}
    for inst, branch, _step, _rows, _computed in spy.seen:
        by_instance.setdefault(inst, set()).add(branch)
    assert sorted(b for branches in by_instance.values() for b in branches) == ["cond", "uncond"]
    assert all(len(branches) == 1 for branches in by_instance.values())
    for inst in by_instance:
        steps = [s for i, _, s, _, _ in spy.seen if i == inst]
        assert steps == list(range(STEPS))  # the step comes from the timestep: both branches see 0..7


def _manual_dit_cfg(transformer, latents, labels, steps, guidance=4.0):
    """DiT's batched-CFG loop (rows [cond; uncond]) on a bare transformer."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler()
    sched.set_timesteps(steps)
    padecache.set_schedule(transformer, sched.timesteps.tolist())
    x = latents.clone()
    null = torch.full_like(labels, 1000)
    for t in sched.timesteps:
        out = transformer(torch.cat([x, x]), timestep=t.expand(2 * len(x)), class_labels=torch.cat([labels, null])).sample
        cond, uncond = out[:, :4].chunk(2)
        x = sched.step(uncond + guidance * (cond - uncond), t, x).prev_sample
    return x


@pytest.mark.parametrize("preset", ["default", "taylorseer", "fora"])
def test_batched_cfg_rows_never_mix_and_a_batch_equals_single_runs(preset, dit_pipe):
    """With a static schedule every row's forecast uses only that row's history.

    The fallback guard is switched off here: its decision (compute the whole call) is taken per call,
    so on this random-weight model it may fire for a batch and not for one of its samples.
    """
    t = dit_pipe.transformer
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([1, 5, 9])
    with tiny.applied(t, preset, engine={"guard": False}):
        batch = _manual_dit_cfg(t, latents, labels, STEPS)
        singles = torch.cat([_manual_dit_cfg(t, latents[i : i + 1], labels[i : i + 1], STEPS) for i in range(3)])
        assert padecache.stats(t).forecast_steps > 0
    with tiny.applied(t, "none"):
        full = (_manual_dit_cfg(t, latents, labels, STEPS),
                torch.cat([_manual_dit_cfg(t, latents[i : i + 1], labels[i : i + 1], STEPS) for i in range(3)]))
    tiny.assert_batch_matches_singles(batch, singles, full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["dit", "flux"])
def test_consecutive_generations_with_other_step_counts_equal_fresh_runs(family, pipes):
    pipe, run = pipes[family], RUNNERS[family]
    cfg = {"predictor": {"name": "taylor", "order": 2}, "policy": {"name": "budget", "speedup": 2.0}}
    with tiny.applied(pipe, cfg):
        run(pipe, steps=10)
        first = padecache.stats(pipe)
        reused = run(pipe, steps=6)
        second = padecache.stats(pipe)
    with tiny.applied(pipe, cfg):
        fresh = run(pipe, steps=6)
    assert first.total_steps == 10 and second.total_steps == 6 and second.generations == first.generations + 1
    assert torch.equal(reused, fresh)


def test_step_index_comes_from_the_timestep_not_from_counting(dit_pipe):
    t = dit_pipe.transformer
    schedule = [900.0, 800.0, 700.0, 600.0, 500.0, 400.0]
    padecache.apply(t, "none")
    padecache.set_schedule(t, schedule)
    x = torch.randn(1, 4, 8, 8)
    try:
        with pytest.warns(RuntimeWarning, match="called at step 4 after step 1 of a 6-step schedule"):
            for value in (900.0, 800.0, 500.0, 400.0):  # steps 0, 1, 4, 5: two steps never called, and it says so
                t(x, timestep=torch.tensor([value]), class_labels=torch.tensor([3]))
        records = padecache.stats(t).records
    finally:
        padecache.remove(t)
    assert [r.step for r in records] == [0, 1, 4, 5]


class NaNPredictor(SpyPredictor):
    """Returns NaN (or an exploding value) so that the engine must fall back to computing."""

    name = "broken"
    mode = "nan"

    def predict(self, ctx, block_input):
        good = super().predict(ctx, block_input)
        return good * float("nan") if NaNPredictor.mode == "nan" else good * 1e6


class BrokenPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [NaNPredictor]


@pytest.mark.parametrize("mode", ["nan", "explode"])
def test_bad_predictions_fall_back_to_computing_and_are_counted(mode, dit_pipe):
    plugin = BrokenPlugin()
    padecache.register_plugin(plugin, name="broken")
    NaNPredictor.mode = mode
    reference = tiny.run_dit(dit_pipe, steps=STEPS)
    policy = {"name": "fixed", "interval": 3, "warmup": 2}
    planned = get_registry().create("policy", "fixed", padecache.load_config({"policy": policy}).policy.options).mask(STEPS)
    try:
        with tiny.applied(dit_pipe, {"predictor": {"name": "broken"}, "policy": policy}):
            with pytest.warns(RuntimeWarning, match=r"16 of 16 forecasts of predictor 'broken' were rejected"):
                out = tiny.run_dit(dit_pipe, steps=STEPS)  # said when the pipeline's call ends
            stats = padecache.stats(dit_pipe)
    finally:
        padecache.unregister_plugin(plugin)
    rows = 4  # two samples, batched CFG
    assert stats.fallbacks == planned.count(False) * rows > 0  # every planned forecast was rejected and computed
    assert stats.forecast_steps == 0 and stats.full_passes == STEPS
    assert {r.reason for r in stats.records if r.computed} <= {"policy", "fallback"}
    assert torch.isfinite(out).all()
    assert (out - reference).abs().max().item() <= 1e-6  # every step was computed after all


def test_stats_report_the_fields_users_read(dit_pipe):
    with tiny.applied(dit_pipe, "default"):
        tiny.run_dit(dit_pipe, steps=20)
        s = padecache.stats(dit_pipe)
    assert (s.total_steps, s.full_passes, s.computed_steps, s.forecast_steps, s.fallbacks) == (20, 8, 8, 12, 0)
    assert s.pass_speedup == 2.5
    assert s.cache_bytes > 0
    d = s.as_dict()
    assert {"total_steps", "full_passes", "computed_steps", "forecast_steps", "fallbacks", "cache_bytes", "records"} <= set(d)
    assert [r.stage for r in s.records][:7] == ["early"] * 7 and s.records[-1].stage == "late"


def test_errors_say_what_to_do(dit_pipe):
    with pytest.raises(TypeError, match=r"(?s)does not support Linear: no adapter claims it.*\(\d\d transformer classes are supported; `padecache list`.*padecache_adapters"):
        padecache.apply(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="expects a diffusers pipeline"):
        padecache.apply(object())
    padecache.apply(dit_pipe)
    try:
        with pytest.raises(ValueError, match=r"already applied .* call padecache.remove\(...\) first"):
            padecache.apply(dit_pipe)
    finally:
        padecache.remove(dit_pipe)
    with pytest.raises(ValueError, match="not applied"):
        padecache.remove(dit_pipe)
    with pytest.raises(ValueError, match="unknown predictor"):
        padecache.apply(dit_pipe, predictor="nope")
    assert not padecache.is_applied(dit_pipe)


def test_bare_transformer_without_a_schedule_explains_itself(dit_pipe):
    t = dit_pipe.transformer
    with tiny.applied(t, "default"), pytest.raises(ValueError, match=r"set_schedule\(transformer, timesteps\)"):
        t(torch.randn(1, 4, 8, 8), timestep=torch.tensor([500]), class_labels=torch.tensor([1]))


def test_a_diffusers_cache_must_be_disabled_first(flux_pipe):
    from diffusers.hooks import FirstBlockCacheConfig

    flux_pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.1))
    try:
        with pytest.raises(ValueError, match="disable_cache"):
            padecache.apply(flux_pipe)
    finally:
        flux_pipe.transformer.disable_cache()


def test_a_model_in_half_precision_keeps_its_dtype(dit_pipe):
    t = dit_pipe.transformer.to(torch.bfloat16)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    try:
        with tiny.applied(t, "default"):
            out = _manual_dit_cfg(t, latents, torch.tensor([2, 7]), 10)
            s = padecache.stats(t)
    finally:
        t.to(torch.float32)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert s.forecast_steps > 0


def test_a_cache_context_with_step_information_is_enough(wan_pipe):
    """Wan pipelines pass step_index/num_inference_steps/sigma in their cache_context: no scheduler needed."""
    t = wan_pipe.transformer
    padecache.apply(t, {"predictor": {"name": "linear"}, "policy": {"name": "fixed", "interval": 2, "warmup": 2}})
    x, text = torch.randn(1, 16, 1, 8, 8), torch.randn(1, 4, 32)
    try:
        for i, sigma in enumerate([0.9, 0.7, 0.5, 0.3]):
            with t.cache_context("cond", step_index=i, num_inference_steps=4, sigma=sigma):
                t(hidden_states=x, timestep=torch.tensor([sigma * 1000]), encoder_hidden_states=text)
        stats = padecache.stats(t)
    finally:
        padecache.remove(t)
    assert stats.branches == ("cond",) and stats.total_steps == 4
    assert stats.mask() == [True, True, False, True] == stats.mask("cond", 0)
    # a branch or row the run did not have is named, not answered with a plan (it was all False, or row 0's)
    with pytest.raises(ValueError, match="no branch 'uncond' in these stats; branches: 'cond'"):
        stats.mask("uncond")
    with pytest.raises(ValueError, match="row 1 is outside the batch of 1 rows"):
        stats.indicator("tsi", row=1)


def test_apply_to_a_compiled_transformer_hooks_the_original(dit_pipe):
    """torch.compile wraps the module; padecache hooks the module inside and the wrapper calls through."""
    original = dit_pipe.transformer
    reference = tiny.run_dit(dit_pipe, steps=STEPS)
    with tiny.applied(dit_pipe, "default"):
        expected = tiny.run_dit(dit_pipe, steps=STEPS)
    dit_pipe.transformer = torch.compile(original, backend="eager")
    try:
        with tiny.applied(dit_pipe, "default"):
            out = tiny.run_dit(dit_pipe, steps=STEPS)
            stats = padecache.stats(dit_pipe)
    finally:
        dit_pipe.transformer = original
    assert stats.forecast_steps > 0
    torch.testing.assert_close(out, expected)
    assert not torch.equal(out, reference)


def test_flux_style_timesteps_do_not_collide_with_raw_ones():
    """FLUX pipelines pass t/1000; with sigma_min = 1/1000 the first value (1.0) equals the last raw timestep."""
    from padecache import Schedule
    from padecache.schedule import match_step

    schedule = Schedule([1000.0, 667.0, 334.0, 1.0])
    assert match_step(schedule, 1.0, scale=1e-3) == 0
    assert match_step(schedule, 0.334, scale=1e-3) == 2
    assert match_step(schedule, 1.0, scale=1.0) == 3
    with pytest.raises(ValueError, match="not in the scheduler's timesteps"):
        match_step(schedule, 0.5, scale=1e-3)
    duplicated = Schedule([999.0, 500.0, 500.0, 1.0])  # a second-order scheduler evaluates twice
    assert match_step(duplicated, 500.0, after=1) == 2 and match_step(duplicated, 500.0, after=0) == 1


class OneRowPredictor(SpyPredictor):
    """Returns the forecast of the first row only: the engine must refuse to broadcast it."""

    name = "one-row"
    shape = "rows"

    def predict(self, ctx, block_input):
        good = super().predict(ctx, block_input)
        return good[:1] if OneRowPredictor.shape == "rows" else good[..., :-1]


class OneRowPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [OneRowPredictor]


@pytest.mark.parametrize("shape, message", [("rows", r"returned shape \(1, 16, 32\) for a block stack of shape \(4, 16, 32\)"),
                                            ("width", r"returned shape \(4, 16, 31\) for a block stack of shape \(4, 16, 32\)")])
def test_a_prediction_of_the_wrong_shape_is_an_error_naming_component_and_step(shape, message, dit_pipe):
    plugin = OneRowPlugin()
    padecache.register_plugin(plugin, name="one-row")
    OneRowPredictor.shape = shape
    try:
        with tiny.applied(dit_pipe, {"predictor": "one-row", "policy": {"name": "fixed", "interval": 3, "warmup": 2}}):
            with pytest.raises(ValueError, match=rf"predictor 'one-row' {message} at step 2 \(branch 'main'\); .*never broadcast"):
                tiny.run_dit(dit_pipe, steps=STEPS)
    finally:
        padecache.unregister_plugin(plugin)


def test_a_nan_timestep_is_an_error_not_an_index_error(flux_pipe):
    t = flux_pipe.transformer
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    with tiny.applied(t, "none"):
        padecache.set_schedule(t, [1000.0, 500.0])
        with pytest.raises(ValueError, match=r"non-finite timestep \(nan\)"):
            t(torch.randn(1, 64, 16), timestep=torch.tensor([float("nan")]), **kw)


def test_a_predictor_that_never_becomes_ready_is_reported(dit_pipe):
    class Shy(SpyPredictor):
        name = "shy"

        def ready(self, ctx):
            return False

    class ShyPlugin:
        @padecache.hookimpl
        def padecache_predictors(self):
            return [Shy]

    plugin = ShyPlugin()
    padecache.register_plugin(plugin, name="shy")
    try:
        with tiny.applied(dit_pipe, {"predictor": "shy", "policy": {"name": "fixed", "interval": 3, "warmup": 2}}):
            with pytest.warns(RuntimeWarning, match=r"predictor 'shy' still says it is not ready after \d+ computed residuals"):
                tiny.run_dit(dit_pipe, steps=STEPS)
    finally:
        padecache.unregister_plugin(plugin)


# -- issue 16: stacking, bad input, gradients, plugin errors ------------------------------------------------------


def test_diffusers_sees_padecache_and_refuses_its_own_cache_on_top(flux_pipe):
    from diffusers.hooks import FirstBlockCacheConfig

    t = flux_pipe.transformer
    assert not t.is_cache_enabled
    had = "_cache_config" in t.__dict__
    with tiny.applied(flux_pipe, "default"):
        assert t.is_cache_enabled
        with pytest.raises(ValueError, match=r"Caching has already been enabled with .*PadecacheCacheConfig"):
            t.enable_cache(FirstBlockCacheConfig(threshold=0.1))
        out = tiny.run_flux(flux_pipe, steps=STEPS)  # still padecache alone
        assert padecache.stats(flux_pipe).forecast_steps > 0 and torch.isfinite(out).all()
    assert not t.is_cache_enabled and ("_cache_config" in t.__dict__) == had
    t.enable_cache(FirstBlockCacheConfig(threshold=0.1))  # and once removed, diffusers' cache goes on as usual
    t.disable_cache()


def test_apply_refuses_a_scheduler_that_is_not_one(dit_pipe):
    class Other:
        pass

    with pytest.raises(TypeError, match=r"scheduler=Other\(...\) is not a diffusers scheduler .*set_schedule"):
        padecache.apply(dit_pipe.transformer, "default", scheduler=Other())
    assert not padecache.is_applied(dit_pipe)


def test_set_schedule_needs_numbers(dit_pipe):
    t = dit_pipe.transformer
    with tiny.applied(t, "none"):
        with pytest.raises(TypeError, match=r"set_schedule: pass a sequence of numbers .* not '999,500'"):
            padecache.set_schedule(t, "999,500")
        with pytest.raises(TypeError, match="sequence of numbers"):
            padecache.set_schedule(t, ["999", "x"])
        padecache.set_schedule(t, torch.tensor([999.0, 500.0]))  # a tensor is a sequence of numbers
        # (reliability) each once accepted: NaN failed at the first call with a bare IndexError, a rising schedule
        # made every call a new generation (nothing cached, no word why), a dict or a 2-D tensor happened to work
        with pytest.raises(ValueError, match=r"set_schedule: the timesteps and sigmas must be finite numbers, got nan"):
            padecache.set_schedule(t, [999.0, float("nan")])
        with pytest.raises(ValueError, match=r"set_schedule: the timesteps go up \(500 ... 999\); pass them in "
                                             r"sampling order"):
            padecache.set_schedule(t, [500.0, 750.0, 999.0])
        with pytest.raises(TypeError, match="sequence of numbers"):
            padecache.set_schedule(t, {999.0: 1, 500.0: 2})
        with pytest.raises(TypeError, match=r"one number per step .* shape \(2, 2\)"):
            padecache.set_schedule(t, torch.tensor([[999.0, 750.0], [500.0, 250.0]]))


def test_a_set_schedule_that_does_not_match_the_call_says_so(dit_pipe):
    with tiny.applied(dit_pipe, "none"):
        dit_pipe.scheduler.set_timesteps(4)
        padecache.set_schedule(dit_pipe, dit_pipe.scheduler.timesteps)
        with pytest.raises(ValueError, match=r"not in the schedule given with padecache.set_schedule \(4 steps.*the set "
                                             r"schedule does not match this call.*set_schedule\(model, None\)"):
            tiny.run_dit(dit_pipe, steps=8)
        padecache.set_schedule(dit_pipe, None)
        tiny.run_dit(dit_pipe, steps=8)  # following the pipeline's scheduler again
        assert padecache.stats(dit_pipe).total_steps == 8


def test_rows_at_different_timesteps_are_refused_naming_them(dit_pipe):
    t = dit_pipe.transformer
    x = torch.randn(2, 4, 8, 8)
    with tiny.applied(t, "default"):
        padecache.set_schedule(t, [900.0, 800.0, 700.0])
        with pytest.raises(ValueError, match=r"rows of this DiTTransformer2DModel call are at different timesteps "
                                             r"\(row 0: 900, row 1: 800\): padecache takes one step per call"):
            t(x, timestep=torch.tensor([900.0, 800.0]), class_labels=torch.tensor([1, 2]))
        out = t(x, timestep=torch.tensor([900.0, 900.0]), class_labels=torch.tensor([1, 2])).sample  # one step: fine
        assert torch.isfinite(out).all() and [r.step for r in padecache.stats(t).records] == [0]


def test_wan22_ti2v_per_token_timesteps_take_each_rows_largest(wan_pipe):
    """Wan 2.2 TI2V passes a timestep per token, 0 on the conditioning frame: a row's step is its largest; rows at
    different steps are refused."""
    t = wan_pipe.transformer
    x, text = torch.randn(2, 16, 2, 8, 8), torch.randn(2, 4, 32)
    tokens = 2 * 4 * 4  # 2 frames of 4x4 patches (patch 1x2x2)
    sched = wan_pipe.scheduler
    sched.set_timesteps(4)
    reference = []
    with tiny.applied(t, "none", scheduler=sched):
        for ts in sched.timesteps:
            per_token = torch.full((2, tokens), float(ts))
            per_token[:, : tokens // 2] = 0.0  # the first frame is the given image
            reference.append(t(hidden_states=x, timestep=per_token, encoder_hidden_states=text).sample)
        assert [r.step for r in padecache.stats(t).records] == [0, 1, 2, 3]
        mixed = torch.full((2, tokens), float(sched.timesteps[0]))
        mixed[1] = float(sched.timesteps[1])
        with pytest.raises(ValueError, match=r"different timesteps \(row 0: [\d.]+, row 1: [\d.]+\)"):
            t(hidden_states=x, timestep=mixed, encoder_hidden_states=text)
    assert all(torch.isfinite(r).all() for r in reference)


def test_diffusion_forcing_per_frame_timesteps_are_reported_once(wan_pipe):
    """Diffusion forcing (SkyReels-V2 DF) gives each frame its own timestep: a row's largest repeats while later
    frames wait at full noise, so each repeat looked like another guidance branch.  It says so once; a per-token
    timestep that only marks a conditioning frame (the test above), a second call at a step (CFG) and a plain restart
    do not warn."""
    t = wan_pipe.transformer
    x, text = torch.randn(1, 16, 2, 8, 8), torch.randn(1, 4, 32)
    tokens = 2 * 4 * 4
    sched = wan_pipe.scheduler
    sched.set_timesteps(4)
    ts = [float(v) for v in sched.timesteps]
    with tiny.applied(t, "none", scheduler=sched):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(2):  # two runs with a conditioning frame at 0, two calls per step: the second starts over
                for v in ts[:2]:
                    per_token = torch.full((1, tokens), v)
                    per_token[:, : tokens // 2] = 0.0
                    for _branch in range(2):
                        t(hidden_states=x, timestep=per_token, encoder_hidden_states=text)
        with pytest.warns(RuntimeWarning, match=r"timestep per token that differs within a row \(diffusion forcing"):
            for k in range(3):  # the first frame denoises, the second waits at full noise: the largest stays ts[0]
                per_token = torch.full((1, tokens), ts[0])
                per_token[:, : tokens // 2] = ts[k]
                t(hidden_states=x, timestep=per_token, encoder_hidden_states=text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per model
            t(hidden_states=x, timestep=per_token, encoder_hidden_states=text)
        assert padecache.stats(t).records[-1].step == 0  # the row's largest timestep is still the first step's


def test_a_plugin_exception_names_plugin_component_step_and_branch(flux_pipe):
    class Fails(SpyPredictor):
        name = "fails-at-predict"

        def predict(self, ctx, block_input):
            raise KeyError("history")

    class FailsPlugin:
        @padecache.hookimpl
        def padecache_predictors(self):
            return [Fails]

    plugin = FailsPlugin()
    padecache.register_plugin(plugin, name="fails")
    try:
        with tiny.applied(flux_pipe, {"predictor": "fails-at-predict", "policy": {"name": "fixed", "interval": 3, "warmup": 2}}):
            with pytest.raises(KeyError, match=r"predictor 'fails-at-predict' \(plugin 'fails' unknown\) raised KeyError in "
                                               r"predict\(\) at step 2 of 8, branch 'cond'") as info:
                tiny.run_flux(flux_pipe, steps=STEPS, true_cfg=2.0)
            assert isinstance(info.value, padecache.ComponentError) and isinstance(info.value.__cause__, KeyError)
            tiny.run_flux(flux_pipe, steps=2)  # the failed generation ended; the next one starts afresh
    finally:
        padecache.unregister_plugin(plugin)


def test_gradients_through_forecasts_warn_in_eval_mode_and_raise_in_training(dit_pipe):
    t = dit_pipe.transformer
    latents, labels = torch.randn(1, 4, 8, 8), torch.tensor([3])
    with tiny.applied(t, "default"):
        with pytest.warns(RuntimeWarning, match=r"forecasts step \d+ .* while gradients are recorded, but a forecast step "
                                                r"passes no gradient .* torch.inference_mode\(\)"):
            _manual_dit_cfg(t, latents, labels, STEPS)
        with torch.inference_mode():  # sampling as pipelines do: no warning
            _manual_dit_cfg(t, latents, labels, STEPS)
        t.train()
        try:
            with pytest.raises(RuntimeError, match=r"To train through sampling, padecache.remove\(model\) first"):
                _manual_dit_cfg(t, latents, labels, STEPS)
        finally:
            t.eval()


def test_nan_in_the_initial_latents_is_not_blamed_on_the_predictor(dit_pipe):
    t = dit_pipe.transformer
    latents = torch.randn(1, 4, 8, 8)
    latents[0, 0, 0, 0] = float("nan")
    with tiny.applied(t, "default"), torch.inference_mode():
        _manual_dit_cfg(t, latents, torch.tensor([3]), STEPS)
        with pytest.warns(RuntimeWarning) as caught:
            stats = padecache.stats(t)
    message = " ".join(str(w.message) for w in caught)
    assert stats.fallbacks > 0 and "non-finite (NaN or Inf)" in message and "check the initial latents" in message
    assert "the predictor is not the cause" in message and "Check the predictor" not in message


def test_a_forecast_sees_the_policys_plan_and_an_adaptive_policy_shows_none(flux_pipe):
    """``ctx.plan`` is the static policy's mask over the steps this model runs (``passes_left``, ``next_pass`` read
    it); a policy that decides as it goes has no plan to show."""

    class PlanSpy(SpyPredictor):
        name = "plan-spy"
        plans: list = []

        def predict(self, ctx, block_input):
            PlanSpy.plans.append((ctx.step, ctx.plan, ctx.passes_left, ctx.next_pass))
            return super().predict(ctx, block_input)

    class EveryOther(padecache.CachePolicy):  # decides as it goes: no mask
        name = "every-other-adaptive"

        def should_compute(self, ctx):
            return ctx.step < 2 or ctx.step % 2 == 0

    class SpyPlugin:
        @padecache.hookimpl
        def padecache_predictors(self):
            return [PlanSpy]

        @padecache.hookimpl
        def padecache_policies(self):
            return [EveryOther]

    plugin = SpyPlugin()
    padecache.register_plugin(plugin, name="plan-spy")
    policy = {"name": "fixed", "interval": 3, "warmup": 2}
    mask = tuple(get_registry().create("policy", "fixed", padecache.load_config({"policy": policy}).policy.options).mask(STEPS))
    try:
        with tiny.applied(flux_pipe, {"predictor": "plan-spy", "policy": policy}):
            tiny.run_flux(flux_pipe, steps=STEPS)
        seen = list(PlanSpy.plans)
        PlanSpy.plans.clear()
        with tiny.applied(flux_pipe, {"predictor": "plan-spy", "policy": "every-other-adaptive"}):
            tiny.run_flux(flux_pipe, steps=STEPS)
    finally:
        padecache.unregister_plugin(plugin)
    assert mask == (True, True, False, False, True, False, False, True)
    assert [s for s, *_ in seen] == [2, 3, 5, 6]
    assert all(plan == mask for _, plan, _, _ in seen)
    assert [(left, nxt) for _, _, left, nxt in seen] == [(2, 4), (2, 4), (1, 7), (1, 7)]
    assert [s for s, *_ in PlanSpy.plans] == [3, 5, 7] and all(tuple(p) == (None, None, None) for _, *p in PlanSpy.plans)
