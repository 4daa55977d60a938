"""Contract suites for padecache components, as pytest mixins a plugin author subclasses.

    from padecache.testing import PredictorContract

    class TestMyPredictor(PredictorContract):
        component = "my-predictor"                     # its registered name
        configs = [{}, {"order": 2}]                    # option dicts to check (default: the defaults)

That class then runs every check below on every config: output shape, dtype and device equal to the block
stack's; batch rows independent (a row of a batch equals that sample alone, also after the engine splits a
batch with ``select``); ``reset`` forgets; inputs are never mutated; finite on constant, zero, alternating
and tiny histories; ``ready`` follows the history the engine counts; the configuration round-trips through
dicts, JSON and TOML; the component is registered and listed; and it runs inside a real 20-step sampling
loop on tiny DiT, FLUX and Wan transformers, called as their pipelines call them, whose residuals move as a trained
model's do (:mod:`padecache.testing.loops`): its forecasts are mostly accepted and bring the result closer to full
compute than a zero residual.  An exception raised by the component's own code fails the check naming the
component, its plugin, the method, the step and the branch (:class:`ComponentFailed`).
:class:`PolicyContract`, :class:`StageDetectorContract` and
:class:`AdapterContract` do the same for the other kinds; a policy that declares ``inputs`` (TeaCache-style) is
given them in ``ctx.inputs`` as the engine gives them (:func:`step_inputs`).  Nothing here needs a GPU or a network.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy
import pytest
import torch

import padecache
from padecache.answers import as_stage, per_row_decision
from padecache.interfaces import (
    CachePolicy,
    Predictor,
    Schedule,
    Stage,
    StageDetector,
    StepContext,
)

from .adapter_contract import AdapterContract
from .histories import TEST_SCHEDULES, context, step_inputs, trajectory
from .loops import STEPS, ComponentFailed, calling, error, full_compute, provenance, psnr, sampling_loop, zero_forecast

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["PredictorContract", "PolicyContract", "StageDetectorContract", "AdapterContract", "trajectory", "context",
           "step_inputs", "ComponentFailed"]

def _registry():
    return padecache.get_registry()


class _ComponentContract:
    kind: ClassVar[str] = ""
    #: the component's registered name (bare, or ``plugin:name``)
    component: ClassVar[str] = ""
    #: option dicts to check, each a configuration of the component
    configs: ClassVar[list[dict[str, Any]]] = [{}]

    def pytest_generate_tests(self, metafunc):
        if "options" in metafunc.fixturenames:
            ids = [",".join(f"{k}={v}" for k, v in c.items()) or "defaults" for c in self.configs]
            metafunc.parametrize("options", [dict(c) for c in self.configs], ids=ids)

    def selection(self, options: dict):
        """The validated selection of this component with ``options`` (as ``padecache.load_config`` makes it)."""
        return getattr(padecache.load_config({self.kind: {"name": self.component, **options}}), self.kind)

    def make(self, options: dict):
        sel = self.selection(options)
        return _registry().create(self.kind, sel.name, sel.options)

    def call(self, component: Any, method: str, ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """``component.method(ctx, ...)``; what it raises comes back naming the component, plugin, step and branch."""
        return calling(self.kind, self.component, method, getattr(component, method), ctx, *args, **kwargs)

    def select(self, component: Any, ctx: Any, rows: torch.Tensor, batch: int) -> Any:
        """``component.select(rows, batch)``, what it raises naming the component (as :meth:`call`)."""
        return calling(self.kind, self.component, "select", lambda _ctx: component.select(rows, batch), ctx)

    def named(self) -> str:
        """The component as failures name it: ``"predictor 'x' (plugin p 1.0)"``."""
        return provenance(self.kind, self.component)

    # -- checks every kind shares ------------------------------------------------------------------------
    def test_registered_and_listed(self):
        assert self.component, f"{type(self).__name__} must set `component` to the registered name"
        entry = _registry().get(self.kind, self.component)
        rows = [r for r in _registry().rows() if r["kind"] == self.kind]
        assert any(r["name"] in (entry.name, entry.qualified_name) for r in rows), f"{self.component!r} is not listed"
        assert entry.summary, f"{self.component!r} has no docstring: `padecache list` shows its first line"

    def test_config_round_trips(self, options):
        cfg = padecache.load_config({self.kind: {"name": self.component, **options}})
        for how, back in (("to_dict", lambda: cfg.to_dict()), ("to_json", lambda: json.loads(cfg.to_json())),
                          ("to_toml", lambda: tomllib.loads(cfg.to_toml()))):
            again = padecache.CacheConfig.from_dict(back())
            mine, theirs = getattr(cfg, self.kind).options, getattr(again, self.kind).options
            lost = {f.name: (getattr(mine, f.name), getattr(theirs, f.name)) for f in attrs.fields(type(mine))
                    if getattr(mine, f.name) != getattr(theirs, f.name)}
            assert not lost, (f"{self.component!r}: options change through {how} and back (option: (before, after)): "
                              f"{lost}; declare them with padecache.option(..., kind) so that values convert back")
            assert again == cfg, f"{self.component!r}: the configuration changes through {how} and back"


# -- predictors --------------------------------------------------------------------------------------------------


class PredictorContract(_ComponentContract):
    """The contract every :class:`~padecache.Predictor` keeps (see the module docstring)."""

    kind = "predictor"
    #: computed steps fed before forecasting (enough history for any predictor)
    computed: ClassVar[tuple[int, ...]] = (0, 1, 2, 4, 7, 10)
    #: tiny pipelines the real-loop check runs on
    families: ClassVar[tuple[str, ...]] = ("dit", "flux", "wan")
    #: when set, the real-loop check also requires this PSNR (dB) against full compute
    psnr_floor: ClassVar[float | None] = None

    def run_history(self, predictor: Predictor, rows: int = 3, dtype=torch.float32, kind: str = "smooth",
                    until: int = 13, shape: Sequence[int] = (6, 8), row: int | None = None) -> tuple[torch.Tensor, StepContext]:
        """Drive ``predictor`` as the engine does up to step ``until``: update on computed steps, predict and update
        with the prediction on the others.  ``row``: feed only that row of the ``rows``-row trajectory.  Returns the
        forecast at ``until`` and its context."""
        history, n = 0, rows if row is None else 1
        x_in = torch.zeros(n, *shape, dtype=dtype)
        for step in range(until):
            ctx = context(step, history=history, rows=n, inputs=step_inputs(predictor, step, rows, kind, row, dtype))
            if step in self.computed or not self.call(predictor, "ready", ctx):
                residual = trajectory(step, rows, shape, dtype, kind)
                self.call(predictor, "update", ctx, residual if row is None else residual[row : row + 1], x_in, True)
                history += 1
            else:
                pred = self.call(predictor, "predict", ctx, x_in)
                self.call(predictor, "update", ctx, pred, x_in, False)
        ctx = context(until, history=history, rows=n, inputs=step_inputs(predictor, until, rows, kind, row, dtype))
        assert self.call(predictor, "ready", ctx), f"{self.named()} is not ready after {history} computed residuals"
        return self.call(predictor, "predict", ctx, x_in), ctx

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
    def test_prediction_matches_the_block_stack(self, options, dtype):
        pred, _ = self.run_history(self.make(options), rows=4, dtype=dtype)
        assert isinstance(pred, torch.Tensor)
        assert tuple(pred.shape) == (4, 6, 8), f"{self.component!r} returned shape {tuple(pred.shape)} for a block stack of (4, 6, 8)"
        assert pred.dtype == dtype, f"{self.component!r} returned {pred.dtype} for a {dtype} history"
        assert pred.device.type == "cpu"
        assert torch.isfinite(pred.float()).all()

    def test_batch_rows_are_independent(self, options):
        batch, _ = self.run_history(self.make(options), rows=3)
        assert tuple(batch.shape) == (3, 6, 8), f"{self.component!r} forecast shape {tuple(batch.shape)} for 3 rows of (6, 8)"
        for row in range(3):
            single, _ = self.run_history(self.make(options), rows=3, row=row)
            torch.testing.assert_close(single[0], batch[row], rtol=1e-5, atol=1e-6,
                                       msg=lambda m, row=row: f"{self.component!r}: row {row} of a batch differs from that sample alone: {m}")

    def test_select_keeps_the_state_of_the_chosen_rows(self, options):
        """What the engine does when rows of a batch go separate ways: ``select`` keeps those rows' state."""
        predictor = self.make(options)
        batch, ctx = self.run_history(predictor, rows=3)
        rows = torch.tensor([0, 2])
        part = self.select(predictor, ctx, rows, 3)

        def at(step, history):  # what the engine hands the two rows at ``step``
            inputs = step_inputs(predictor, step, 3)
            return context(step, history=history, rows=2, inputs=None if inputs is None else inputs.select(rows))

        try:
            got = self.call(part, "predict", at(13, ctx.history), torch.zeros(2, 6, 8))
        except Exception as err:  # state select() did not cut to the two rows: say so, not only where it broke
            raise AssertionError(f"{self.component!r}: after select(rows=[0, 2]) of a batch of 3, predict() on those two "
                                 f"rows raised {type(err).__name__}: {err}.  Keep per-row state batch-first in tensors "
                                 f"(the default select slices them), or override select() for state it cannot "
                                 f"slice (lists, dicts of rows)") from err
        assert tuple(got.shape) == (2, 6, 8), (f"{self.component!r}: after select(rows=[0, 2]) of 3 it forecast shape "
                                               f"{tuple(got.shape)} for a block stack of (2, 6, 8)")
        torch.testing.assert_close(got, batch[rows], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{self.component!r}: after select(rows=[0, 2]) the forecast differs: {m}")
        # and it keeps working on its two rows
        self.call(part, "update", at(13, ctx.history), trajectory(13, 3)[rows], torch.zeros(2, 6, 8), True)
        later = self.call(part, "predict", at(15, ctx.history + 1), torch.zeros(2, 6, 8))
        assert later.shape == (2, 6, 8), f"{self.component!r}: after select and update it forecast shape {tuple(later.shape)}"

    def test_reset_forgets(self, options):
        used, fresh = self.make(options), self.make(options)
        self.run_history(used, kind="alternating")
        used.reset()
        assert not used.ready(context(0, history=0)), f"{self.component!r} is ready with no history after reset()"
        torch.testing.assert_close(self.run_history(used)[0], self.run_history(fresh)[0], rtol=0, atol=0)

    def test_inputs_are_not_mutated(self, options):
        """Nothing handed over changes, when the call returns or later: the engine hands the same residual to the
        policy (which may keep it), so a predictor that keeps it and damps it in place later changes the policy's."""
        predictor = self.make(options)
        history, x_in = 0, torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(0))
        handed: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        for step in range(12):
            ctx = context(step, history=history, rows=3, inputs=step_inputs(predictor, step, 3))
            given = {} if ctx.inputs is None else {k: v.clone() for k, v in attrs.asdict(ctx.inputs, recurse=False).items() if v is not None}
            x_copy = x_in.clone()
            if step in self.computed or not self.call(predictor, "ready", ctx):
                residual = trajectory(step)
                r_copy = residual.clone()
                self.call(predictor, "update", ctx, residual, x_in, True)
                history += 1
                assert torch.equal(residual, r_copy), f"{self.named()} changed the residual it was given at step {step}"
                handed.append((step, residual, r_copy))
            else:
                pred = self.call(predictor, "predict", ctx, x_in)
                self.call(predictor, "update", ctx, pred, x_in, False)
            assert torch.equal(x_in, x_copy), f"{self.component!r} changed the block-stack input at step {step}"
            for name, before in given.items():
                assert torch.equal(getattr(ctx.inputs, name), before), f"{self.component!r} changed ctx.inputs.{name} at step {step}"
        for step, residual, r_copy in handed:
            assert torch.equal(residual, r_copy), (f"{self.named()} changed the residual of step {step} later, in place "
                                                   f"(keep a copy, or compute new tensors)")

    @pytest.mark.parametrize("kind", ["constant", "zero", "alternating", "tiny"])
    def test_finite_on_degenerate_histories(self, options, kind):
        pred, _ = self.run_history(self.make(options), kind=kind)
        assert torch.isfinite(pred).all(), f"{self.component!r} forecasts non-finite values on a {kind} history"

    def test_ready_follows_the_history_the_engine_counts(self, options):
        """Ready once it holds ``min_history`` computed residuals -- or, where ``ready`` is stricter than the default
        (allowed), within the two more that the engine waits before it warns."""
        predictor = self.make(options)
        assert not predictor.ready(context(0, history=0)), "no forecast is possible before any computed residual"
        need = getattr(predictor, "min_history", 1)
        for step in range(need + 2):
            if step and predictor.ready(context(step + 1, history=step, rows=3, inputs=step_inputs(predictor, step + 1, 3))):
                return
            predictor.update(context(step, history=step, rows=3, inputs=step_inputs(predictor, step, 3)), trajectory(step),
                             torch.zeros(3, 6, 8), True)
        assert predictor.ready(context(need + 3, history=need + 2, rows=3, inputs=step_inputs(predictor, need + 3, 3))), (
            f"{self.component!r} is not ready after {need + 2} computed residuals (its min_history is {need}): the engine "
            f"would compute every step (declare the computed residuals it needs in `min_history`, and let ready() follow "
            f"ctx.history, the count the engine keeps)"
        )

    @pytest.mark.parametrize("family", ["dit", "flux", "wan"])
    def test_runs_inside_a_real_sampling_loop(self, options, family):
        """20 steps at 2.5x fewer passes on a tiny ``family`` transformer whose residuals move as a trained model's do
        (:mod:`padecache.testing.loops`): forecasts happen, most are accepted, and they bring the result closer to
        full compute than a zero residual would (a forecast worse than no block stack at all has a sign or a scale
        wrong)."""
        if family not in self.families:
            pytest.skip(f"{family} not in {type(self).__name__}.families")
        config = {"predictor": {"name": self.component, **options}, "policy": {"name": "budget", "speedup": 2.5}}
        try:
            out, stats = sampling_loop(family, config)
        except AssertionError:
            raise
        except Exception as err:
            raise AssertionError(f"{self.named()} failed in a {STEPS}-step sampling loop on a tiny {family}: "
                                 f"{type(err).__name__}: {err}") from err
        where = f"in a {STEPS}-step loop on a tiny {family} at 2.5x fewer passes"
        assert torch.isfinite(out).all(), f"{self.named()} gave a non-finite result {where}"
        assert stats.fallbacks * 2 <= stats.forecast_steps + stats.fallbacks, (
            f"most of {self.named()}'s forecasts were rejected by the guard {where} ({stats.fallbacks} of "
            f"{stats.forecast_steps + stats.fallbacks}: non-finite, or a norm over max_growth x the largest computed one)")
        assert stats.forecast_steps > 0, f"{self.named()} never forecast {where}"
        full = full_compute(family)
        ours, zero = error(out, full), error(zero_forecast(family), full)
        assert ours < zero, (f"{self.named()}'s forecasts {where} are further from full compute than a zero residual "
                             f"(no block stack at all): error {ours:.3g} against {zero:.3g}; is a sign or a scale wrong?")
        if self.psnr_floor is not None:
            got = psnr(out, full)
            assert got >= self.psnr_floor, f"{self.named()} on {family}: {got:.1f} dB < floor {self.psnr_floor} dB"


# -- policies ----------------------------------------------------------------------------------------------------


class PolicyContract(_ComponentContract):
    """The contract every :class:`~padecache.CachePolicy` keeps."""

    kind = "policy"
    families: ClassVar[tuple[str, ...]] = ("dit", "flux", "wan")

    def decide(self, policy: CachePolicy, steps: int = STEPS, rows: int = 3, schedule: Schedule | None = None,
               kind: str = "smooth", start: int = 0) -> list:
        """Run ``policy`` through a generation as the engine does; its decision (a bool, or a per-row list where the
        rows disagree) per step.  As in the engine, rows that disagree split it (:meth:`~CachePolicy.select`), and
        each group of rows is asked, and observes its own outcome, apart from then on.  ``start`` > 0: the run
        starts part-way (img2img), at that step of the ``steps``-step schedule."""
        groups = [(torch.arange(rows), policy)]
        out = []
        for step in range(start, steps):
            inputs = step_inputs(policy, step, rows, kind)  # (core) what an input-aware policy reads
            residual, wants, after = trajectory(step, rows, kind=kind), torch.zeros(rows, dtype=torch.bool), []

            def at(idx, step=step, inputs=inputs):
                ctx = context(step, steps, history=step - start, rows=len(idx), schedule=schedule,
                              inputs=None if inputs is None else inputs.select(idx))
                return attrs.evolve(ctx, span=(start, steps)) if start else ctx

            for idx, member in groups:
                ctx = at(idx)
                want = self.call(member, "should_compute", ctx)
                if isinstance(want, torch.Tensor) and want.dim() > 0:
                    assert not (want.dtype.is_floating_point or want.dtype.is_complex), (
                        f"{self.component!r} returned {want.dtype} decisions at step {step}; return bools (one per row)")
                want = per_row_decision(want, ctx, repr(self.component))  # read as the engine reads it
                if isinstance(want, torch.Tensor):
                    local = torch.arange(len(idx))
                    parts = [(idx[w], self.select(member, ctx, local[w], len(idx)), flag)
                             for w, flag in ((want, True), (~want, False))]
                else:
                    parts = [(idx, member, want)]
                for part, owner, decided in parts:
                    wants[part] = decided
                    self.call(owner, "observe", at(part), residual[part], step == start or decided)
                    after.append((part, owner))
            groups = after
            out.append(wants.tolist() if bool(wants.all()) != bool(wants.any()) else bool(wants[0]))
        return out

    @pytest.mark.parametrize("steps", [1, 2, 7, 20, 28, 50])
    def test_mask_agrees_with_should_compute(self, options, steps):
        policy = self.make(options)
        mask = calling(self.kind, self.component, "mask", lambda _ctx: policy.mask(steps), context(0, steps))
        if mask is None:
            pytest.skip(f"{self.component!r} is adaptive: it has no static mask")
        assert len(mask) == steps, f"{self.component!r}: mask({steps}) has {len(mask)} entries, one per step expected"
        odd = [m for m in mask if not isinstance(m, (bool, numpy.bool_))]
        assert not odd, f"{self.component!r}: mask({steps}) holds {type(odd[0]).__name__} values; give one bool per step"
        mask = [bool(m) for m in mask]
        assert mask[0], f"{self.component!r} does not compute the first step, where no forecast is possible"
        if getattr(self.selection(options).options, "last", False):
            assert mask[-1], f"{self.component!r} has last = true but does not compute the last step"
        decided = self.decide(self.make(options), steps)
        differ = [step for step, (want, planned) in enumerate(zip(decided, mask)) if want != planned]
        assert not differ, (f"{self.component!r}: should_compute disagrees with its mask({steps}) at steps {differ} "
                            f"(decided {[decided[s] for s in differ]}, mask {[mask[s] for s in differ]})")

    @pytest.mark.parametrize("start", [0, 8], ids=["whole", "part-way"])
    def test_plan_is_what_it_decides(self, options, start):
        """``plan(ctx)`` is what forecasts see as ``ctx.plan`` (``passes_left``, ``next_pass``): one bool per step the
        model runs, from ``ctx.first_step`` (a run that starts part-way, as img2img does, included), and the
        decisions the policy then makes."""
        policy, steps = self.make(options), 20
        ctx = context(start, steps)
        ctx = attrs.evolve(ctx, span=(start, steps)) if start else ctx
        plan = calling(self.kind, self.component, "plan", policy.plan, ctx)
        if plan is None:
            pytest.skip(f"{self.component!r} is adaptive: it has no static plan")
        assert len(plan) == steps - start, (f"{self.component!r}: plan() has {len(plan)} entries for a run of "
                                            f"{steps - start} steps (steps {start}-{steps - 1}); cover ctx.span_steps")
        decided = self.decide(self.make(options), steps, start=start)
        differ = [start + i for i, (want, planned) in enumerate(zip(decided, plan)) if want != bool(planned)]
        assert not differ, (f"{self.component!r}: plan() disagrees with should_compute at steps {differ} of a run of "
                            f"steps {start}-{steps - 1}: forecasts would be told of passes that do not come")

    def test_no_state_across_generations(self, options):
        used, fresh = self.make(options), self.make(options)
        self.decide(used, kind="alternating")
        used.reset()
        assert self.decide(used) == self.decide(fresh), f"{self.component!r} carries state from one generation into the next"

    def test_batch_rows_are_independent(self, options):
        batch = self.decide(self.make(options), rows=3)
        for row in range(3):
            alone = self.make(options)
            got = []
            for step in range(STEPS):
                ctx = context(step, STEPS, history=step, rows=1, inputs=step_inputs(alone, step, 3, row=row))
                want = self.call(alone, "should_compute", ctx)
                want = want.tolist()[0] if isinstance(want, torch.Tensor) and want.dim() > 0 else bool(want)
                got.append(want)
                expected = batch[step][row] if isinstance(batch[step], list) else batch[step]
                assert want == expected, (f"{self.component!r}: row {row} of a batch of 3 decides {expected} at step "
                                          f"{step}, alone {want}: one sample's decision depends on the others'")
                self.call(alone, "observe", ctx, trajectory(step, 3)[row : row + 1], step == 0 or want)

    @pytest.mark.parametrize("family", ["dit", "flux", "wan"])
    def test_runs_inside_a_real_sampling_loop(self, options, family):
        if family not in self.families:
            pytest.skip(f"{family} not in {type(self).__name__}.families")
        out, stats = sampling_loop(family, {"predictor": {"name": "taylor"}, "policy": {"name": self.component, **options}})
        assert torch.isfinite(out).all() and stats.total_steps == STEPS
        assert stats.records[0].computed


# -- stage detectors ---------------------------------------------------------------------------------------------


class StageDetectorContract(_ComponentContract):
    """The contract every :class:`~padecache.StageDetector` keeps: stateless, stages in order."""

    kind = "stage"

    @pytest.mark.parametrize("schedule", sorted(TEST_SCHEDULES))
    @pytest.mark.parametrize("steps", [1, 4, 20, 50])
    def test_stages_come_in_order(self, options, schedule, steps):
        detector: StageDetector = self.make(options)
        sched = TEST_SCHEDULES[schedule](steps)
        ctx = context(0, steps, schedule=sched)
        stages = calling(self.kind, self.component, "stages", lambda _ctx: detector.stages(sched), ctx)
        assert len(stages) == steps, f"{self.component!r}: stages() gave {len(stages)} stages for {steps} steps"
        stages = [as_stage(s, repr(self.component)) for s in stages]  # a Stage, or its value, as the engine reads it
        order = {Stage.EARLY: 0, Stage.MID: 1, Stage.LATE: 2}
        assert [order[s] for s in stages] == sorted(order[s] for s in stages), f"{self.component!r}: {stages} is not early -> mid -> late"
        again = [as_stage(s) for s in detector.stages(sched)]
        assert again == stages, f"{self.component!r} is not stateless: stages() changed between two calls"
