"""The engine on its own, with plain tensors: no module, adapter or hook.  It plans each call (which rows run the
block stack, the forecasts of the others, the guard's verdict) and records what happened."""

from __future__ import annotations

import attrs
import pytest
import torch

import padecache
from padecache import CachePolicy, Predictor, Schedule
from padecache.engine import Engine
from padecache.errors import ComponentError
from padecache.plugins import get_registry
from padecache.schedule import Where

STEPS = 8
SCHEDULE = Schedule.uniform(STEPS)


def where(step, branch="main", fresh=None):
    return Where(step, STEPS, SCHEDULE.timesteps[step], SCHEDULE.sigmas[step], branch, SCHEDULE,
                 fresh=step == 0 if fresh is None else fresh)


def engine(config, num_blocks=4, rows_split=True):
    return Engine(padecache.load_config(config), num_blocks=num_blocks, rows_split=rows_split)


def residual(step, rows=3):
    """A residual linear in the step, different per row: a linear forecast is exact on it."""
    base = torch.linspace(-1, 1, 12).reshape(1, 3, 4)
    scale = torch.arange(1, rows + 1, dtype=torch.float32).reshape(rows, 1, 1)
    return scale * base * (1 + 0.1 * step)


def run(eng, rows=3, x=None, steps=STEPS):
    """Drive ``eng`` as the hooks do; returns the plans."""
    plans = []
    for step in range(steps):
        ctx = eng.start(where(step))
        x_in = torch.ones(rows, 3, 4) if x is None else x
        plan = eng.plan(ctx, x_in)
        plans.append(plan)
        eng.record(plan, None if plan.mode == "skip" else x_in + residual(step, rows))
    return plans


def test_plan_follows_the_policy_mask_and_forecasts_exactly():
    eng = engine({"predictor": "linear", "policy": {"name": "fixed", "interval": 3, "warmup": 2}})
    mask = get_registry().create("policy", "fixed", eng.config.policy.options).mask(STEPS)
    plans = run(eng)
    assert [p.mode == "compute" for p in plans] == mask
    for step, plan in enumerate(plans):
        for part in plan.forecasts:  # a line through two computed residuals of a linear trajectory: exact
            torch.testing.assert_close(part.prediction, residual(step))
    stats = eng.stats()
    assert stats.mask() == mask and stats.full_passes == sum(mask) and stats.total_steps == STEPS
    assert stats.num_blocks == 4 and stats.block_passes == 4 * sum(mask)


class EveryOtherRow(CachePolicy):
    """Rows 0 and 2 compute every step, row 1 every third: the rows disagree.  Counts how often it is asked."""

    name = "every-other-row"
    asked: list = []

    def should_compute(self, ctx):
        EveryOtherRow.asked.append(ctx.rows)
        if ctx.rows == 3:
            return torch.tensor([True, ctx.step % 3 == 0, True])
        return torch.tensor([ctx.step % 3 == 0] * ctx.rows) if ctx.rows == 1 else torch.ones(ctx.rows, dtype=torch.bool)


class RaisingPredictor(Predictor):
    """Raises in ``predict``: the engine must say which component, plugin, step and branch."""

    name = "raises"

    @attrs.frozen
    class Config:
        pass

    def update(self, ctx, residual, block_input, computed):
        pass

    def predict(self, ctx, block_input):
        raise ValueError("no forecast here")

    def reset(self):
        pass


class Raising(CachePolicy):
    """Raises in ``should_compute`` or ``observe`` (``where``)."""

    name = "raising-policy"
    where = "should_compute"

    def should_compute(self, ctx):
        if Raising.where == "should_compute" and ctx.step == 1:
            raise RuntimeError("cannot decide")
        return ctx.step != 1

    def observe(self, ctx, residual, computed):
        if Raising.where == "observe":
            raise ArithmeticError("cannot observe")


class RowNaN(Predictor):
    """Exact linear forecast, except NaN for the rows whose block input is 2 (a row-local defect)."""

    name = "row-nan"
    min_history = 2

    def __init__(self, config=None):
        super().__init__(config)
        self.h = []

    def update(self, ctx, residual, block_input, computed):
        if computed:
            self.h = (self.h + [(ctx.step, residual)])[-2:]

    def predict(self, ctx, block_input):
        (s0, r0), (s1, r1) = self.h
        out = r1 + (r1 - r0) * (ctx.step - s1) / (s1 - s0)
        loud = (block_input.flatten(1)[:, 0] == 2).reshape(-1, 1, 1)
        return torch.where(loud, torch.full_like(out, float("nan")), out)

    def reset(self):
        self.h = []


class Components:
    @padecache.hookimpl
    def padecache_policies(self):
        return [EveryOtherRow, Raising]

    @padecache.hookimpl
    def padecache_predictors(self):
        return [RaisingPredictor, RowNaN]


@pytest.fixture
def components():
    plugin = Components()
    padecache.register_plugin(plugin, name="plan-test")
    EveryOtherRow.asked = []
    yield
    padecache.unregister_plugin(plugin)


def test_rows_that_disagree_split_and_each_row_is_asked_once_per_step(components):
    eng = engine({"predictor": "linear", "policy": "every-other-row"})
    plans = run(eng)
    mixed = [p for p in plans if p.mode == "mixed"]
    assert mixed and all(p.compute_rows.tolist() == [0, 2] for p in mixed)
    # asked with all three rows at step 0 and until they split, then once per group: never twice for one row
    rows_asked = sum(EveryOtherRow.asked)
    assert rows_asked == 3 * STEPS
    stats = eng.stats()
    assert stats.mask(row=0) == [True] * STEPS
    assert stats.mask(row=1) == [s % 3 == 0 for s in range(STEPS)]
    for plan, step in zip(plans, range(STEPS)):
        for part in plan.forecasts:  # exact from two computed residuals on; before that row 1's one is reused
            torch.testing.assert_close(part.prediction, residual(0 if step < 3 else step)[part.rows])


def test_a_component_error_names_component_plugin_step_and_branch(components):
    eng = engine({"predictor": "raises", "policy": {"name": "fixed", "interval": 2, "warmup": 1}})
    ctx = eng.start(where(0, branch="cond"))
    eng.record(eng.plan(ctx, torch.ones(2, 3, 4)), torch.ones(2, 3, 4))
    ctx = eng.start(where(1, branch="cond"))
    with pytest.raises(ValueError, match=r"predictor 'raises' \(plugin 'plan-test' unknown\) raised ValueError in "
                                         r"predict\(\) at step 1 of 8, branch 'cond': no forecast here") as info:
        eng.plan(ctx, torch.ones(2, 3, 4))
    assert isinstance(info.value, ComponentError) and isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("method, error", [("should_compute", RuntimeError), ("observe", ArithmeticError)])
def test_every_component_method_is_named_when_it_raises(components, method, error):
    Raising.where = method
    eng = engine({"predictor": "linear", "policy": "raising-policy"})
    with pytest.raises(error, match=rf"policy 'raising-policy' \(plugin 'plan-test' unknown\) raised {error.__name__} in "
                                    rf"{method}\(\) at step \d of 8, branch 'main'") as info:
        run(eng)
    assert isinstance(info.value, ComponentError) and type(info.value.__cause__) is error


def test_the_guard_computes_the_rows_it_rejects_and_blames_the_predictor(components):
    eng = engine({"predictor": "row-nan", "policy": {"name": "fixed", "interval": 3, "warmup": 2}})
    x = torch.ones(3, 3, 4)
    x[1] = 2.0
    plans = run(eng, x=x)
    forecast_steps = sum(p.mode != "compute" for p in plans)
    assert forecast_steps and all(p.compute_rows.tolist() == [1] for p in plans if p.mode == "mixed")
    stats = eng.stats()
    assert stats.fallbacks == forecast_steps  # row 1 at every planned forecast
    assert stats.mask(row=1) == [True] * STEPS and stats.mask(row=0) == stats.mask(row=2) != [True] * STEPS
    everywhere = engine({"predictor": "row-nan", "policy": {"name": "fixed", "interval": 3, "warmup": 2}})
    run(everywhere, x=torch.full((3, 3, 4), 2.0))  # every row's forecast is NaN, from a finite history
    with pytest.warns(RuntimeWarning, match=r"12 of 12 forecasts of predictor 'row-nan' were rejected .* Check the predictor"):
        everywhere.stats()


def test_non_finite_inputs_are_not_blamed_on_the_predictor():
    """NaN latents make every residual NaN: the guard rejects the forecasts, and says the input is the cause."""
    eng = engine({"predictor": "linear", "policy": {"name": "fixed", "interval": 3, "warmup": 2}})
    run(eng, x=torch.full((3, 3, 4), float("nan")))
    with pytest.warns(RuntimeWarning) as caught:
        stats = eng.stats()
    message = str(caught[0].message)
    assert stats.fallbacks > 0 and "non-finite (NaN or Inf)" in message and "initial latents" in message
    assert "predictor is not the cause" in message and "Check the predictor" not in message


def test_a_family_that_cannot_split_rows_computes_every_row(components):
    eng = engine({"predictor": "linear", "policy": "every-other-row"}, rows_split=False)
    plans = run(eng)
    assert all(p.mode in ("compute", "skip") for p in plans)
    assert {r.reason for r in eng.stats().records} >= {"batch"}


def test_partial_block_ranges_count_fractional_passes():
    """With the first and last block always run, a forecast step costs 2 of 6 blocks."""
    eng = engine({"predictor": "linear", "policy": {"name": "fixed", "interval": 3, "warmup": 2},
                  "engine": {"first_blocks": 1, "last_blocks": 1}}, num_blocks=6)
    plans = run(eng)
    computed = sum(p.mode == "compute" for p in plans)
    stats = eng.stats()
    assert stats.full_passes == pytest.approx(computed + (STEPS - computed) * 2 / 6)
    assert stats.block_passes == pytest.approx(6 * computed + 2 * (STEPS - computed))
    assert stats.computed_steps == computed and stats.forecast_steps == STEPS - computed


def test_a_new_input_shape_restarts_the_branch():
    eng = engine({"predictor": "linear", "policy": {"name": "fixed", "interval": 2, "warmup": 2}})
    for step in range(4):
        x = torch.ones(3 if step < 2 else 2, 3, 4)
        plan = eng.plan(eng.start(where(step)), x)
        eng.record(plan, None if plan.mode == "skip" else x + residual(step, len(x)))
    assert eng.stats().restarts == 1 and [r.reason for r in eng.stats().records][2:] == ["warmup", "policy"]


def test_stats_print_as_a_short_summary():
    eng = engine({"predictor": "linear", "policy": {"name": "budget", "speedup": 2.0}})
    run(eng)
    mask = get_registry().create("policy", "budget", eng.config.policy.options).mask(STEPS)
    text = str(eng.stats())
    assert text == eng.stats().summary()
    assert text.splitlines()[0] == "padecache: 8 steps, 4 full block-stack passes per branch (2.00x fewer), branches: main"
    assert f"main: {''.join('#' if m else '.' for m in mask)}" in text
    assert len(text.splitlines()) <= 5 and "StepRecord" not in text and "StepRecord" not in repr(eng.stats())


def test_the_summary_says_when_the_predictor_made_the_run_exceed_its_plan(components):
    """A one-step warm-up before a predictor that needs two computed residuals: step 1 is computed anyway, and
    the pass the plan did not budget for is named with the knob that plans it."""
    config = {"predictor": "row-nan", "policy": {"name": "budget", "full_passes": 2, "warmup": 1}}
    eng = engine(config)
    planned = get_registry().create("policy", "budget", eng.config.policy.options).mask(STEPS)
    run(eng)
    stats = eng.stats()
    assert sum(planned) == 2 and not planned[1] and stats.mask()[1]
    assert stats.full_passes == 3 and "planned forecasts computed instead: 1 " in stats.summary()
    # linear reuses its one residual until a second one is computed: the plan is followed as it stands
    eng = engine({**config, "predictor": "linear"})
    plans = run(eng)
    assert eng.stats().full_passes == 2 and "instead" not in eng.stats().summary()
    torch.testing.assert_close(plans[1].forecasts[0].prediction, residual(0))


def test_the_summary_leaves_steps_that_never_ran_blank():
    """An img2img run starting at step 3 of 8: the summary must not show steps 0-2 as forecasts."""
    eng = engine({"predictor": "linear", "policy": {"name": "always"}})
    for step in range(3, STEPS):
        plan = eng.plan(eng.start(where(step, fresh=step == 3)), torch.ones(3, 3, 4))
        eng.record(plan, torch.ones(3, 3, 4) + residual(step))
    text = eng.stats().summary()
    assert "main:    #####" in text and "blank: not run" in text
