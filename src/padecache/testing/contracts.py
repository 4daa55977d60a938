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
loop on tiny DiT, FLUX and Wan pipelines.  :class:`PolicyContract`, :class:`StageDetectorContract` and
:class:`AdapterContract` do the same for the other kinds; a policy that declares ``inputs`` (TeaCache-style) is
given them in ``ctx.inputs`` as the engine gives them (:func:`step_inputs`).  Nothing here needs a GPU or a network.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
import torch

import padecache
from padecache.interfaces import CachePolicy, Predictor, Schedule, Stage, StageDetector, StepContext, StepInputs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["PredictorContract", "PolicyContract", "StageDetectorContract", "AdapterContract", "trajectory", "context",
           "step_inputs"]

STEPS = 20
_SCHEDULES = {
    "uniform": lambda n: Schedule.uniform(n),
    # a shifted flow-matching schedule (shift 3): most steps at high noise, like SD3 / Wan
    "shifted": lambda n: Schedule([1000 * 3 * s / (1 + 2 * s) for s in (1 - i / n for i in range(n))],
                                  [3 * s / (1 + 2 * s) for s in (1 - i / n for i in range(n))]),
}


def context(step: int, num_steps: int = STEPS, history: int = 0, rows: int = 1, schedule: Schedule | None = None,
            branch: str = "main", inputs: StepInputs | None = None) -> StepContext:
    """The :class:`StepContext` the engine would pass at ``step`` (stage from the ``fraction`` detector)."""
    schedule = schedule or Schedule.uniform(num_steps)
    sigma = None if schedule.sigmas is None else schedule.sigmas[step]
    ctx = StepContext(step, num_steps, schedule.timesteps[step], sigma, branch, None, schedule, history=history, rows=rows)
    from padecache.stages import FractionStageDetector

    return StepContext(step, num_steps, ctx.timestep, sigma, branch, FractionStageDetector().stage(ctx), schedule,
                       history=history, rows=rows, inputs=inputs)


def trajectory(step: int, rows: int = 3, shape: Sequence[int] = (6, 8), dtype=torch.float32, kind: str = "smooth") -> torch.Tensor:
    """A residual trajectory: smooth and different for every row, or one of the degenerate histories
    (``constant``, ``zero``, ``alternating`` sign, ``tiny`` magnitude) a predictor must survive."""
    t = float(step)
    base = torch.linspace(-1, 1, math.prod(shape), dtype=torch.float64).reshape(1, *shape)
    scale = torch.arange(1, rows + 1, dtype=torch.float64).reshape(rows, *[1] * len(shape))
    if kind == "constant":
        out = scale * base
    elif kind == "zero":
        out = torch.zeros(rows, *shape, dtype=torch.float64)
    elif kind == "alternating":
        out = scale * base * (-1.0) ** step
    elif kind == "tiny":
        out = 1e-30 * scale * (base + 0.01 * t)
    else:
        out = scale * (base * (1 + 0.05 * t) + 0.01 * t**2 * base.flip(-1)) + 0.1 * torch.sin(0.3 * t + scale)
    return out.to(dtype)


def step_inputs(policy: CachePolicy, step: int, rows: int = 3, kind: str = "smooth",
                row: int | None = None) -> StepInputs | None:
    """(core) What the engine hands an input-aware policy at ``step``: the inputs it declares in ``inputs``, as smooth
    per-row trajectories (or the degenerate ones of ``kind``), all ``rows`` of them or ``row`` alone; ``None`` for a
    policy that declares none."""
    wanted = getattr(policy, "inputs", frozenset())
    if not wanted:
        return None
    base, latents = trajectory(step, rows, kind=kind), trajectory(step + 1, rows, (4, 12), kind=kind)
    values = {"stack_input": base, "modulated": 1.0 + 0.5 * base, "model_input": latents}
    return StepInputs(**{name: (v if row is None else v[row : row + 1]) if name in wanted else None for name, v in values.items()})


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

    # -- checks every kind shares ------------------------------------------------------------------------
    def test_registered_and_listed(self):
        assert self.component, f"{type(self).__name__} must set `component` to the registered name"
        entry = _registry().get(self.kind, self.component)
        rows = [r for r in _registry().rows() if r["kind"] == self.kind]
        assert any(r["name"] in (entry.name, entry.qualified_name) for r in rows), f"{self.component!r} is not listed"
        assert entry.summary, f"{self.component!r} has no docstring: `padecache list` shows its first line"

    def test_config_round_trips(self, options):
        cfg = padecache.load_config({self.kind: {"name": self.component, **options}})
        assert padecache.CacheConfig.from_dict(cfg.to_dict()) == cfg
        assert padecache.CacheConfig.from_dict(json.loads(cfg.to_json())) == cfg
        assert padecache.CacheConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


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
            ctx = context(step, history=history, rows=n)
            if step in self.computed or not predictor.ready(ctx):
                residual = trajectory(step, rows, shape, dtype, kind)
                predictor.update(ctx, residual if row is None else residual[row : row + 1], x_in, computed=True)
                history += 1
            else:
                pred = predictor.predict(ctx, x_in)
                predictor.update(ctx, pred, x_in, computed=False)
        ctx = context(until, history=history, rows=n)
        assert predictor.ready(ctx), f"{self.component!r} is not ready after {history} computed residuals"
        return predictor.predict(ctx, x_in), ctx

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
        for row in range(3):
            single, _ = self.run_history(self.make(options), rows=3, row=row)
            torch.testing.assert_close(single[0], batch[row], rtol=1e-5, atol=1e-6,
                                       msg=lambda m, row=row: f"{self.component!r}: row {row} of a batch differs from that sample alone: {m}")

    def test_select_keeps_the_state_of_the_chosen_rows(self, options):
        """What the engine does when rows of a batch go separate ways: ``select`` keeps those rows' state."""
        predictor = self.make(options)
        batch, ctx = self.run_history(predictor, rows=3)
        rows = torch.tensor([0, 2])
        part = predictor.select(rows, 3)
        got = part.predict(context(13, history=ctx.history, rows=2), torch.zeros(2, 6, 8))
        torch.testing.assert_close(got, batch[rows], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{self.component!r}: after select(rows=[0, 2]) the forecast differs: {m}")
        # and it keeps working on its two rows
        part.update(context(13, history=ctx.history, rows=2), trajectory(13, 3)[rows], torch.zeros(2, 6, 8), computed=True)
        assert part.predict(context(15, history=ctx.history + 1, rows=2), torch.zeros(2, 6, 8)).shape == (2, 6, 8)

    def test_reset_forgets(self, options):
        used, fresh = self.make(options), self.make(options)
        self.run_history(used, kind="alternating")
        used.reset()
        assert not used.ready(context(0, history=0)), f"{self.component!r} is ready with no history after reset()"
        torch.testing.assert_close(self.run_history(used)[0], self.run_history(fresh)[0], rtol=0, atol=0)

    def test_inputs_are_not_mutated(self, options):
        predictor = self.make(options)
        history, x_in = 0, torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(0))
        for step in range(12):
            ctx = context(step, history=history, rows=3)
            x_copy = x_in.clone()
            if step in self.computed or not predictor.ready(ctx):
                residual = trajectory(step)
                r_copy = residual.clone()
                predictor.update(ctx, residual, x_in, computed=True)
                history += 1
                assert torch.equal(residual, r_copy), f"{self.component!r} changed the residual it was given at step {step}"
            else:
                pred = predictor.predict(ctx, x_in)
                predictor.update(ctx, pred, x_in, computed=False)
            assert torch.equal(x_in, x_copy), f"{self.component!r} changed the block-stack input at step {step}"

    @pytest.mark.parametrize("kind", ["constant", "zero", "alternating", "tiny"])
    def test_finite_on_degenerate_histories(self, options, kind):
        pred, _ = self.run_history(self.make(options), kind=kind)
        assert torch.isfinite(pred).all(), f"{self.component!r} forecasts non-finite values on a {kind} history"

    def test_ready_follows_the_history_the_engine_counts(self, options):
        predictor = self.make(options)
        assert not predictor.ready(context(0, history=0)), "no forecast is possible before any computed residual"
        need = getattr(predictor, "min_history", 1)
        for step in range(need):
            predictor.update(context(step, history=step), trajectory(step), torch.zeros(3, 6, 8), computed=True)
        assert predictor.ready(context(need + 1, history=need)), (
            f"{self.component!r} is not ready after min_history = {need} computed residuals: the engine would never forecast"
        )

    @pytest.mark.parametrize("family", ["dit", "flux", "wan"])
    def test_runs_inside_a_real_sampling_loop(self, options, family):
        if family not in self.families:
            pytest.skip(f"{family} not in {type(self).__name__}.families")
        config = {"predictor": {"name": self.component, **options}, "policy": {"name": "budget", "speedup": 2.5}}
        out, stats = _loop(family, config)
        assert torch.isfinite(out).all()
        assert stats.forecast_steps > 0, f"{self.component!r} never forecast in a 20-step loop on {family}"
        assert stats.fallbacks * 2 <= stats.forecast_steps + stats.fallbacks, f"most of {self.component!r}'s forecasts were rejected"
        if self.psnr_floor is not None:
            psnr = _psnr(out, _loop(family, "none")[0])
            assert psnr >= self.psnr_floor, f"{self.component!r} on {family}: {psnr:.1f} dB < floor {self.psnr_floor} dB"


# -- policies ----------------------------------------------------------------------------------------------------


class PolicyContract(_ComponentContract):
    """The contract every :class:`~padecache.CachePolicy` keeps."""

    kind = "policy"
    families: ClassVar[tuple[str, ...]] = ("dit", "flux", "wan")

    def decide(self, policy: CachePolicy, steps: int = STEPS, rows: int = 3, schedule: Schedule | None = None,
               kind: str = "smooth") -> list:
        """Run ``policy`` through a generation as the engine does; its decision (a bool or per-row list) per step."""
        out = []
        for step in range(steps):
            ctx = context(step, steps, history=step, rows=rows, schedule=schedule,
                          inputs=step_inputs(policy, step, rows, kind))  # (core) what an input-aware policy reads
            want = policy.should_compute(ctx)
            if isinstance(want, torch.Tensor) and want.dim() > 0:
                assert tuple(want.shape) == (rows,), f"{self.component!r} returned {tuple(want.shape)} decisions for {rows} rows"
                assert want.dtype == torch.bool, f"{self.component!r} returned {want.dtype} decisions; use bools"
                want = want.tolist()
            else:
                want = bool(want)
            out.append(want)
            computed = step == 0 or (all(want) if isinstance(want, list) else want)
            policy.observe(ctx, trajectory(step, rows, kind=kind), computed=computed)
        return out

    @pytest.mark.parametrize("steps", [1, 2, 7, 20, 28, 50])
    def test_mask_agrees_with_should_compute(self, options, steps):
        policy = self.make(options)
        mask = policy.mask(steps)
        if mask is None:
            pytest.skip(f"{self.component!r} is adaptive: it has no static mask")
        assert len(mask) == steps and all(isinstance(m, bool) for m in mask)
        assert mask[0], f"{self.component!r} does not compute the first step, where no forecast is possible"
        if getattr(self.selection(options).options, "last", False):
            assert mask[-1], f"{self.component!r} has last = true but does not compute the last step"
        assert self.decide(self.make(options), steps) == mask

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
                want = alone.should_compute(ctx)
                want = want.tolist()[0] if isinstance(want, torch.Tensor) and want.dim() > 0 else bool(want)
                got.append(want)
                expected = batch[step][row] if isinstance(batch[step], list) else batch[step]
                assert want == expected, f"{self.component!r}: row {row} decides differently alone at step {step}"
                computed = step == 0 or (all(batch[step]) if isinstance(batch[step], list) else batch[step])
                alone.observe(ctx, trajectory(step, 3)[row : row + 1], computed=computed)

    @pytest.mark.parametrize("family", ["dit", "flux", "wan"])
    def test_runs_inside_a_real_sampling_loop(self, options, family):
        if family not in self.families:
            pytest.skip(f"{family} not in {type(self).__name__}.families")
        out, stats = _loop(family, {"predictor": {"name": "taylor"}, "policy": {"name": self.component, **options}})
        assert torch.isfinite(out).all() and stats.total_steps == STEPS
        assert stats.records[0].computed


# -- stage detectors ---------------------------------------------------------------------------------------------


class StageDetectorContract(_ComponentContract):
    """The contract every :class:`~padecache.StageDetector` keeps: stateless, stages in order."""

    kind = "stage"

    @pytest.mark.parametrize("schedule", sorted(_SCHEDULES))
    @pytest.mark.parametrize("steps", [1, 4, 20, 50])
    def test_stages_come_in_order(self, options, schedule, steps):
        detector: StageDetector = self.make(options)
        sched = _SCHEDULES[schedule](steps)
        stages = detector.stages(sched)
        order = {Stage.EARLY: 0, Stage.MID: 1, Stage.LATE: 2}
        assert len(stages) == steps and all(isinstance(s, Stage) for s in stages)
        assert [order[s] for s in stages] == sorted(order[s] for s in stages), f"{self.component!r}: {stages} is not early -> mid -> late"
        assert detector.stages(sched) == stages, f"{self.component!r} is not stateless"


# -- adapters ----------------------------------------------------------------------------------------------------


class _Tape(Predictor):
    """Records the real residual of every step (policy ``always``), then replays it as a perfect forecast."""

    name = "contract-tape"
    steps: ClassVar[dict] = {}
    recording: ClassVar[bool] = True

    def update(self, ctx, residual, block_input, computed):
        if _Tape.recording:
            _Tape.steps[(ctx.branch, ctx.step)] = residual.clone()

    def predict(self, ctx, block_input):
        return _Tape.steps[(ctx.branch, ctx.step)].to(block_input.dtype)

    def reset(self):
        pass


class _TapePlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [_Tape]


class AdapterContract:
    """The contract every adapter keeps on its family: caching off is exact, forecasts happen, ``remove`` restores.

    Set ``family`` to a name of :mod:`padecache.testing.families` (``padecache.testing.families.family_names()``),
    or override :meth:`make_model`, :meth:`make_scheduler` and :meth:`run` for a model of your own.
    """

    family: ClassVar[str] = ""
    #: the adapter that must claim the model (``None``: do not check)
    adapter: ClassVar[str | None] = None
    #: a configuration that forecasts
    forecast_config: ClassVar[Any] = {"predictor": {"name": "taylor"}, "policy": {"name": "budget", "speedup": 2.5}}
    steps: ClassVar[int] = STEPS

    def make_model(self):
        from .families import tiny_transformer

        return tiny_transformer(self.family)

    def make_scheduler(self):
        from .families import make_scheduler

        return make_scheduler(self.family)

    def run(self, model, scheduler, steps: int) -> torch.Tensor:
        """The final latents of a sampling loop, every stream flattened per row (LTX-2: video and audio)."""
        from .families import run_loop

        out = run_loop(self.family, model, steps=steps, scheduler=scheduler, return_all=True)
        parts = out if isinstance(out, (tuple, list)) else (out,)
        return torch.cat([p.reshape(p.shape[0], -1).float() for p in parts], 1)

    @functools.cached_property
    def _model(self):
        return self.make_model()

    def test_adapter_claims_the_model(self):
        adapter, _ = _registry().adapter_for(self._model)
        if self.adapter is not None:
            assert adapter.name == self.adapter, f"{type(self._model).__name__} is claimed by adapter {adapter.name!r}"

    def test_caching_off_is_exact_forecasting_works_and_remove_restores(self):
        model, scheduler = self._model, self.make_scheduler()
        reference = self.run(model, scheduler, self.steps)
        before = {name: dict(m.__dict__) for name, m in model.named_modules()}  # (a cache_context adds diffusers' registry)
        signature = _signature(model)
        padecache.apply(model, "none", scheduler=scheduler)
        try:
            exact = self.run(model, scheduler, self.steps)
            off = padecache.stats(model)
        finally:
            padecache.remove(model)
        scale = max(1.0, reference.abs().max().item())
        assert off.total_steps >= self.steps and off.forecast_steps == 0
        assert (exact - reference).abs().max().item() <= 1e-6 * scale, "caching off changed the output"
        padecache.apply(model, self.forecast_config, scheduler=scheduler)
        try:
            out = self.run(model, scheduler, self.steps)
            on = padecache.stats(model)
        finally:
            padecache.remove(model)
        assert torch.isfinite(out).all()
        assert on.forecast_steps > 0 and on.full_passes < on.total_steps, f"no forecast on {self.family or type(model).__name__}"
        assert on.fallbacks * 2 <= on.forecast_steps + on.fallbacks
        after = {name: dict(m.__dict__) for name, m in model.named_modules()}
        for name in before:  # remove put every module back as it was: no attribute left behind, forward restored
            assert after[name].keys() == before[name].keys(), f"remove left {set(after[name]) ^ set(before[name])} on {name or 'the model'}"
            assert after[name].get("forward") is before[name].get("forward"), f"remove did not restore {name or 'the model'}.forward"
            assert len(after[name]["_forward_pre_hooks"]) == len(before[name]["_forward_pre_hooks"])
        assert _signature(model) == signature

    def test_a_perfect_forecast_reproduces_full_compute(self):
        """Forecasts equal to the true residuals must give exactly full compute's output: this checks the skip path
        (what a skipped block returns, the head, every stream) whatever the predictor."""
        model, scheduler = self._model, self.make_scheduler()
        plugin = _TapePlugin()
        padecache.register_plugin(plugin, name="padecache-testing-tape")
        try:
            _Tape.steps, _Tape.recording = {}, True
            with _applied(model, {"predictor": "contract-tape", "policy": "always"}, scheduler=scheduler):
                full = self.run(model, scheduler, self.steps)
            _Tape.recording = False
            with _applied(model, {"predictor": "contract-tape", "policy": {"name": "budget", "speedup": 3.0}}, scheduler=scheduler):
                replayed = self.run(model, scheduler, self.steps)
                stats = padecache.stats(model)
        finally:
            _Tape.steps = {}
            padecache.unregister_plugin(plugin)
        assert stats.forecast_steps > 0
        scale = max(1.0, full.abs().max().item())
        err = (replayed - full).abs().max().item()
        assert err <= 1e-4 * scale, (
            f"a forecast equal to the true residual changed the output by {err:.3g}: the adapter's skip path (what a skipped "
            f"block returns, the head, the streams) does not match {type(model).__name__}"
        )


# -- shared helpers ----------------------------------------------------------------------------------------------


def _signature(model):
    import inspect

    return inspect.signature(model.forward)


@functools.cache
def _model(family: str):
    from .families import tiny_transformer

    return tiny_transformer(family)


def _loop(family: str, config) -> tuple[torch.Tensor, Any]:
    """A 20-step loop on a tiny ``family`` transformer, called as the family's pipeline calls it, with ``config``."""
    from .families import make_scheduler, run_loop

    model, scheduler = _model(family), make_scheduler(family)
    with _applied(model, config, scheduler=scheduler):
        out = run_loop(family, model, steps=STEPS, scheduler=scheduler, batch=2)
        stats = padecache.stats(model)
    return out, stats


def _applied(pipe, config, **kwargs):
    from .pipelines import applied

    return applied(pipe, config, **kwargs)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    mse = (x.float() - ref.float()).pow(2).mean().item()
    span = (ref.max() - ref.min()).item() or 1.0
    return math.inf if mse == 0 else 10 * math.log10(span**2 / mse)
