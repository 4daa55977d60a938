"""The adapter contract, as a pytest mixin: caching off is exact, forecasts happen, a perfect forecast reproduces full
compute, and ``remove`` restores every module.

    from padecache.testing import AdapterContract

    class TestMyFamily(AdapterContract):
        family = "my-family"          # a name of padecache.testing.families, or override make_model / run
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

import pytest
import torch

import padecache
from padecache.interfaces import CachePolicy, Predictor

from .loops import STEPS
from .pipelines import applied

__all__ = ["AdapterContract"]



class _Tape(Predictor):
    """Records the real residual of every step (policy ``always``), then replays it as a perfect forecast, for the
    rows this instance holds (a call whose rows disagree splits it, :meth:`select`)."""

    name = "contract-tape"
    steps: ClassVar[dict] = {}
    recording: ClassVar[bool] = True

    def __init__(self, config=None):
        super().__init__(config)
        self.rows: torch.Tensor | None = None

    def update(self, ctx, residual, block_input, computed):
        if _Tape.recording:
            _Tape.steps[(ctx.branch, ctx.step)] = residual.clone()

    def predict(self, ctx, block_input):
        full = _Tape.steps[(ctx.branch, ctx.step)]
        return (full if self.rows is None else full.index_select(0, self.rows.to(full.device))).to(block_input.dtype)

    def select(self, rows, batch):
        new = super().select(rows, batch)
        new.rows = (torch.arange(batch) if self.rows is None else self.rows)[rows.cpu()]
        return new

    def reset(self):
        self.rows = None


class _AlternateRows(CachePolicy):
    """Row i computes where i + step is even (every row at step 0): every later call with several rows is mixed."""

    name = "contract-alternate-rows"

    def should_compute(self, ctx):
        return True if ctx.step == 0 else torch.tensor([(i + ctx.step) % 2 == 0 for i in range(ctx.rows)])


class _TapePlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [_Tape]

    @padecache.hookimpl
    def padecache_policies(self):
        return [_AlternateRows]


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

    def run(self, model, scheduler, steps: int, batch: int = 1) -> torch.Tensor:
        """The final latents of a sampling loop of ``batch`` samples, every stream flattened per row (LTX-2: video
        and audio).  A model of your own: one row per sample; ``batch`` may be ignored if your loop has several."""
        from .families import run_loop

        out = run_loop(self.family, model, steps=steps, scheduler=scheduler, return_all=True, batch=batch)
        parts = out if isinstance(out, (tuple, list)) else (out,)
        return torch.cat([p.reshape(p.shape[0], -1).float() for p in parts], 1)

    def _run_rows(self, model, scheduler) -> torch.Tensor:
        """A short loop with two samples where :meth:`run` takes ``batch`` (a ``run`` of your own without it runs
        as it is)."""
        if "batch" in inspect.signature(self.run).parameters:
            return self.run(model, scheduler, 4, batch=2)
        return self.run(model, scheduler, 4)

    @functools.cached_property
    def _model(self):
        return self.make_model()

    def test_adapter_claims_the_model(self):
        adapter, _ = padecache.get_registry().adapter_for(self._model)
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
            with applied(model, {"predictor": "contract-tape", "policy": "always"}, scheduler=scheduler):
                full = self.run(model, scheduler, self.steps)
            _Tape.recording = False
            with applied(model, {"predictor": "contract-tape", "policy": {"name": "budget", "speedup": 3.0}}, scheduler=scheduler):
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

    def test_rows_that_disagree_run_apart_exactly(self):
        """A call where some rows compute and the others are forecast runs the blocks on the computing rows alone
        (every argument with the batch first sliced, ``shared_arguments`` passed whole), or on every row where the
        adapter says its blocks cannot (``rows_split = False``): with a perfect forecast, full compute's output."""
        model, scheduler = self._model, self.make_scheduler()
        adapter, _ = padecache.get_registry().adapter_for(model)
        plugin = _TapePlugin()
        padecache.register_plugin(plugin, name="padecache-testing-tape")
        try:
            _Tape.steps, _Tape.recording = {}, True
            with applied(model, {"predictor": "contract-tape", "policy": "always"}, scheduler=scheduler):
                full = self._run_rows(model, scheduler)
            _Tape.recording = False
            with applied(model, {"predictor": "contract-tape", "policy": "contract-alternate-rows"}, scheduler=scheduler):
                split = self._run_rows(model, scheduler)
                stats = padecache.stats(model)
        finally:
            _Tape.steps = {}
            padecache.unregister_plugin(plugin)
        calls: dict = {}
        for record in stats.records:
            calls.setdefault((record.step, record.branch), set()).add(record.reason == "forecast")
        mixed = sum(kinds == {True, False} for kinds in calls.values())
        if adapter.rows_split and not mixed:
            pytest.skip(f"{type(model).__name__}: no call of this loop had two rows that could disagree")
        assert adapter.rows_split or not mixed, "rows_split = False, yet some rows computed while others were forecast"
        scale = max(1.0, full.abs().max().item())
        err = (split - full).abs().max().item()
        assert err <= 1e-4 * scale, (
            f"with some rows computing and the others forecast exactly, the output changed by {err:.3g}: a block "
            f"argument of {type(model).__name__} is not batch-first (set rows_split = False on the adapter), or holds "
            f"no batch axis but has the batch's size first (name it in shared_arguments)"
        )



def _signature(model):
    return inspect.signature(model.forward)
