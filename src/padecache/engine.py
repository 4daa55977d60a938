"""The decision logic of one transformer's cache: at each call, which rows run the block stack and which are forecast.

The hooks (:mod:`padecache.hooks`) locate each call (:mod:`padecache.schedule`), then ask the engine
:meth:`~Engine.start` (the call's :class:`~padecache.StepContext`; a new generation where the locator says so),
:meth:`~Engine.plan` given the block-stack input (per row group of the branch, :mod:`padecache.state`: the policy's
decision, the predictor's forecast, the guard's verdict per row) and :meth:`~Engine.record` given the output of
the rows that ran (each group's residual to its predictor and policy, the step to the stats).  It never touches a
module, an adapter or a hook (``tests/test_plan.py`` drives it with plain tensors); what a component raises is
re-raised naming the component, its plugin, the step and the branch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from .answers import as_stage, per_row_decision
from .config import CacheConfig
from .correction import GapCorrector, computed_rows, output_tensor, uncorrected, with_output_tensor
from .distributed import LOCAL
from .errors import Uncopyable, component_error, fallbacks_message, prediction_problem, warn
from .interfaces import StepContext, StepInputs
from .math import row_sumsq
from .plugins import get_registry
from .records import StatsRecorder, StepRecord
from .schedule import Where
from .state import BranchState, Owner, Part, Plan, Slot
from .step_inputs import declared_inputs

__all__ = ["Engine", "Part", "Plan"]


class Engine(Uncopyable):
    """Decisions and state of one transformer: branches of the current generation, stats, the owning thread.

    ``num_blocks`` is the number of blocks in the stack (for block-pass accounting), ``rows_split`` whether some
    rows of a batch can run the stack alone (else every row computes when rows disagree), ``family`` the adapter's
    name (:attr:`StepContext.family`).
    """

    def __init__(self, config: CacheConfig, num_blocks: int = 1, rows_split: bool = True, model_name: str = "transformer",
                 family: str | None = None):
        registry = get_registry()
        self.config, self.num_blocks, self.rows_split, self.model_name = config, num_blocks, rows_split, model_name
        self.family = family
        self.entries = {kind: registry.get(kind, getattr(config, kind).name) for kind in ("predictor", "policy", "stage")}
        self.detector = self.entries["stage"].cls(config.stage.options)
        #: what the policy reads before deciding and the predictor beside its history: their ``inputs``, as the
        #: configured instances declare them (a TeaCache measuring the time embedding asks for nothing else)
        self.inputs: frozenset[str] = self._declared_inputs()
        always = config.engine.first_blocks + config.engine.last_blocks
        self.forecast_cost = always / num_blocks if always else None  # share of the stack a forecast step runs
        self.recorder = StatsRecorder(num_blocks)
        self.branches: dict[str, BranchState] = {}
        self.correctors: dict[str, GapCorrector] = {}  # per branch, with engine.gap_correction
        self.owner = Owner()
        self._open = False
        self._warned: set[str] = set()

    def _declared_inputs(self) -> frozenset[str]:
        declared = set()
        for kind, component in zip(("predictor", "policy"), self._new_components()):
            try:
                declared |= declared_inputs(getattr(component, "inputs", frozenset()))
            except ValueError as err:
                raise ValueError(f"{self.label(kind)}: {err}") from None
        return frozenset(declared)

    def _new_components(self):
        return tuple(self.entries[k].cls(getattr(self.config, k).options) for k in ("predictor", "policy"))

    def label(self, kind: str) -> str:
        sel = getattr(self.config, kind)
        variant = getattr(sel.options, "variant", None)
        return f"{kind} {sel.name!r}" + (f" (variant {variant!r})" if variant else "")

    def _call(self, kind: str, method: str, ctx: StepContext, fn: Callable, *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)``, a component's method: what it raises is re-raised naming it, step and branch."""
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            entry = self.entries[kind]
            raise component_error(err, self.label(kind), entry.plugin, entry.version, method, ctx) from err

    # -- the generation ----------------------------------------------------------------------------------
    def claim(self) -> None:
        """A call is about to start on the current thread: refused if another thread's generation is running."""
        self.owner.claim(self.model_name)

    def start(self, where: Where, reducer: Any = None) -> StepContext:
        """The context of the call ``where`` locates (a new generation first when it says so)."""
        if where.fresh or not self._open:
            self._clear()
            self._open = True
            self.recorder.generations += 1
            self.recorder.start(where.num_steps if where.span is None else where.span[1] - where.span[0])
        if where.branch not in self.branches:
            self.branches[where.branch] = BranchState(where.branch, self._new_components)
        ctx = StepContext(where.step, where.num_steps, where.timestep, where.sigma, where.branch, None, where.schedule,
                          span=where.span, reducer=reducer, family=self.family)
        ctx = attrs.evolve(ctx, stage=as_stage(self._call("stage", "stage", ctx, self.detector.stage, ctx), self.label("stage")))
        self.owner.where = f"step {where.step} of {where.num_steps}, branch {where.branch!r}"
        return ctx

    def finish(self, ctx: StepContext) -> None:
        """The call at ``ctx`` has returned."""
        self.owner.check(self.model_name)
        if ctx.step == (ctx.num_steps if ctx.span is None else ctx.span[1]) - 1:
            self.owner.finished()

    def reset(self) -> None:
        """End the current generation: forget histories (its stats stay readable)."""
        self._clear()
        self.owner.release()

    def _clear(self) -> None:
        self._finish_generation()
        self.branches.clear()
        self.correctors.clear()
        self._open = False
        self._warned = set()

    def _finish_generation(self) -> None:
        """Warn once about a generation whose forecasts mostly fell back (it ran at nearly full cost)."""
        r = self.recorder
        if not self._open or r.forecast_attempts < 2 or r.fallback_rows * 2 <= r.forecast_attempts or "fallbacks" in self._warned:
            return
        self._warned.add("fallbacks")
        message = fallbacks_message(r.fallback_rows, r.forecast_attempts, r.nonfinite_rows, self.label("predictor"),
                                    self.config.engine.max_growth)
        warn(message, RuntimeWarning, stacklevel=3)

    # -- decisions -----------------------------------------------------------------------------------------
    def to_history(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` detached, in the dtype and on the device the history is kept in."""
        e = self.config.engine
        dtype = torch.float32 if e.history_dtype == "float32" or (e.history_dtype == "auto" and t.dtype == torch.float16) else t.dtype
        return t.detach().to(device="cpu" if e.history_device == "cpu" else t.device, dtype=dtype)

    def plan(self, ctx: StepContext, x_in: torch.Tensor, signature: tuple | None = None,
             inputs: StepInputs | None = None) -> Plan:
        """Decide the call at ``ctx`` whose block-stack input is ``x_in`` (history dtype, batch first).

        ``signature`` identifies the input's layout (default: its shape): another one restarts the branch.
        ``inputs`` are what an input-aware policy reads (:attr:`inputs`), for every row of the batch."""
        branch = self.branches[ctx.branch]
        signature = tuple(x_in.shape) if signature is None else signature
        if branch.signature is not None and branch.signature != signature:
            branch.restart()  # another batch size or resolution: this history does not apply
            self.recorder.restarts += 1
        branch.signature = signature
        parts = [p for slot in list(branch.slots) for p in self._decide(ctx, branch, slot, x_in, inputs)]
        computed = [p for p in parts if p.compute]
        if computed and len(computed) < len(parts) and not self.rows_split:
            for part in parts:  # this family's blocks cannot run on some rows alone: every row computes
                if not part.compute:
                    part.compute, part.reason, part.prediction = True, "batch", None
            computed = parts
        if len(computed) == len(parts):
            return Plan(ctx, branch, x_in, parts, "compute")
        if not computed:
            return Plan(ctx, branch, x_in, parts, "skip")
        return Plan(ctx, branch, x_in, parts, "mixed", torch.cat([p.rows for p in computed]).sort().values)

    def _decide(self, call_ctx: StepContext, branch: BranchState, slot: Slot, x_in: torch.Tensor,
                inputs: StepInputs | None, want: bool | None = None) -> list[Part]:
        batch, rows = x_in.shape[0], slot.rows
        seen = inputs.select(rows) if (inputs is not None and self.inputs) else None
        ctx = attrs.evolve(call_ctx, history=slot.history, rows=slot.size(batch), inputs=seen)
        if want is None:  # each row is asked once per call, as it would be alone
            want = per_row_decision(self._call("policy", "should_compute", ctx, slot.policy.should_compute, ctx), ctx,
                                    self.label("policy"))
        if isinstance(want, torch.Tensor):  # rows disagree: split the group
            yes, no = branch.split(slot, want, batch)
            return (self._decide(call_ctx, branch, yes, x_in, inputs, True)
                    + self._decide(call_ctx, branch, no, x_in, inputs, False))
        if want:
            return [Part(slot, ctx, True, "policy", rows)]
        if not self._call("predictor", "ready", ctx, slot.predictor.ready, ctx):
            self._check_ready(slot, ctx)
            return [Part(slot, ctx, True, "warmup", rows)]
        x_rows = x_in if rows is None else x_in.index_select(0, rows.to(x_in.device))
        ctx = attrs.evolve(ctx, plan=self._plan_of(slot, ctx))
        prediction = self._call("predictor", "predict", ctx, slot.predictor.predict, ctx, x_rows)
        self._check_prediction(prediction, x_rows, ctx)
        self.recorder.forecast_attempts += slot.size(batch)
        ok = self._acceptable(slot, prediction, ctx) if self.config.engine.guard else None
        if ok is None:
            return [Part(slot, ctx, False, "forecast", rows, prediction)]
        if not bool(ok.any()):
            return [Part(slot, ctx, True, "fallback", rows)]
        good, bad = branch.split(slot, ok, batch)
        keep = torch.arange(len(ok))[ok].to(prediction.device)
        return [Part(good, attrs.evolve(ctx, rows=len(good.rows)), False, "forecast", good.rows, prediction.index_select(0, keep)),
                Part(bad, attrs.evolve(ctx, rows=len(bad.rows)), True, "fallback", bad.rows)]

    def _plan_of(self, slot: Slot, ctx: StepContext) -> tuple[bool, ...] | None:
        """The policy's static plan over this model's steps, for the predictor (``None``: it decides as it goes)."""
        plan = self._call("policy", "plan", ctx, slot.policy.plan, ctx)
        if plan is None:
            return None
        if len(plan) != ctx.span_steps:
            raise ValueError(f"{self.label('policy')} returned a plan of {len(plan)} steps for a run of {ctx.span_steps}; "
                             f"return one entry per step, or None for a policy that decides as it goes")
        return tuple(bool(on) for on in plan)

    def _check_ready(self, slot: Slot, ctx: StepContext) -> None:
        need = max(1, getattr(slot.predictor, "min_history", 1))  # (one that forecast before is just stricter)
        if ctx.history >= max(need + 2, ctx.step - ctx.first_step) and "ready" not in self._warned:
            self._warned.add("ready")
            warn(f"padecache: {self.label('predictor')} still says it is not ready after {ctx.history} computed "
                 f"residuals (its min_history is {need}), so every step is computed. Predictor.ready() should "
                 f"follow ctx.history, the count the engine keeps", RuntimeWarning, stacklevel=2)

    def _check_prediction(self, prediction: Any, x_in: torch.Tensor, ctx: StepContext) -> None:
        problem = prediction_problem(prediction, x_in)
        if problem:
            raise ValueError(f"padecache: {self.label('predictor')} {problem} at step {ctx.step} (branch {ctx.branch!r}); "
                             f"a prediction must match the block-stack input it is added to, row for row (it is never "
                             f"broadcast)")

    def _acceptable(self, slot: Slot, prediction: torch.Tensor, ctx: StepContext) -> torch.Tensor | None:
        """None if every row is finite and within ``max_growth`` x its largest computed residual, else the per-row
        verdict (fallbacks counted; rows whose own history is non-finite counted apart).  One reduction and one host
        sync in the common case; under sequence parallelism the sums of squares are the group's."""
        norms = ctx.reduce(row_sumsq(prediction)).value.sqrt()
        ok = torch.isfinite(norms)
        bound = slot.max_norm
        if bound is not None:
            ok = ok & (norms <= bound.to(norms.device) * self.config.engine.max_growth)
        if bool(ok.all()):
            return None
        ok = ok.cpu()
        self.recorder.fallback_rows += int((~ok).sum())
        if bound is not None:
            self.recorder.nonfinite_rows += int((~ok & ~torch.isfinite(bound.cpu())).sum())
        return ok

    # -- what happened -------------------------------------------------------------------------------------
    def record(self, plan: Plan, output: torch.Tensor | None) -> None:
        """The call of ``plan`` is done: ``output`` is the block-stack output (history dtype, batch first; ``None``
        when every row was forecast).  Each group's predictor and policy see their rows; the step is recorded."""
        x_in = plan.x_in
        for part in plan.parts:
            idx = None if part.rows is None else part.rows.to(x_in.device)
            x_rows = x_in if idx is None else x_in.index_select(0, idx)
            if part.compute:
                residual = (output if idx is None else output.index_select(0, idx)) - x_rows
                part.slot.note_residual(part.ctx.reduce(row_sumsq(residual)))
                part.slot.history += 1
            else:
                residual = part.prediction
            slot, ctx = part.slot, part.ctx
            self._call("predictor", "update", ctx, slot.predictor.update, ctx, residual, x_rows, part.compute)
            self._call("policy", "observe", ctx, slot.policy.observe, ctx, residual, part.compute)
            indicators = {**self._call("policy", "indicators", ctx, slot.policy.indicators),
                          **(self._call("predictor", "indicators", ctx, slot.predictor.indicators) if not part.compute else {})}
            rows = None if part.rows is None else tuple(int(r) for r in part.rows)
            self.recorder.add(StepRecord(ctx.step, plan.branch.name, part.compute, part.reason, ctx.stage.value,
                                         indicators, rows=rows, batch=plan.batch,
                                         cost=None if part.compute else self.forecast_cost))
        (plan.ctx.reducer or LOCAL).flush()  # what this step queued (norms, statistics) goes out in one all-reduce now
        self.recorder.observe_bytes(self.state_bytes(extra=(x_in,)))

    def correct(self, plan: Plan, output: Any) -> Any:
        """The model's ``output`` of the call of ``plan``, its sample's rows that computed after skipped steps moved by
        ``engine.gap_correction`` (:mod:`padecache.correction`) where the scheduler and the policy's plan allow it."""
        e, sigmas = self.config.engine, getattr(plan.ctx.schedule, "euler_sigmas", None)
        plans = [self._plan_of(p.slot, p.ctx) for p in plan.parts] if e.gap_correction and sigmas is not None else []
        self.recorder.correction_off = uncorrected(sigmas, plans, e.gap_correction_passes) if e.gap_correction else ""
        sample = output_tensor(output) if plans else None
        if sample is None or sample.shape[0] != plan.batch:
            return output
        computed, eligible = computed_rows(plan, [sum(q or ()) >= e.gap_correction_passes for q in plans])
        corrector = self.correctors.setdefault(plan.branch.name, GapCorrector("cpu" if e.history_device == "cpu" else None))
        sample, done = corrector.apply(plan.ctx.step, sample, computed, eligible, sigmas, e.gap_correction)
        self.recorder.corrected_rows += done
        self.recorder.observe_bytes(self.state_bytes())  # the outputs it keeps now count too
        return with_output_tensor(output, sample) if done else output

    def state_bytes(self, extra: tuple = ()) -> int:
        """Bytes held by every predictor and policy and the gap corrections' outputs, plus ``extra`` (each storage
        counted once, whole)."""
        seen: dict[int, int] = {}
        kept = (t for c in self.correctors.values() for t in c.outputs.values())
        for t in (*(t for b in self.branches.values() for t in b.state_tensors()), *kept, *extra):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
        return sum(seen.values())

    def stats(self):
        self._finish_generation()  # the warning, if any, reaches pipelines that never signal the end of a call
        return self.recorder.snapshot()

    def _model_name(self) -> str:
        return self.model_name
