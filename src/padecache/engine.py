"""The per-call engine: one transformer call from its timestep to the head.

Per call the engine

1. finds the step (:mod:`padecache.schedule`) and the guidance branch (a diffusers ``cache_context`` name, or
   call order within the step); a new schedule, or a step that does not advance its branch, starts a new
   generation;
2. at the first block, asks each row group of the branch (:mod:`padecache.state`) its policy's decision,
   predicts where it says so, and checks every forecast per row (non-finite or exploding: that row computes,
   counted as a fallback); rows that compute go through the block stack, the others skip it;
3. at the head, adds the predicted residual to the block-stack input for the forecast rows and records the
   real residual of the computed ones; predictor and policy of each group see their rows.

The hooks that call into it are in :mod:`padecache.hooks`; nothing here touches a module.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn as nn

from .adapters import Adapter, _position
from .config import CacheConfig
from .distributed import LOCAL, Reducer, context_parallel_group
from .interfaces import Schedule, StepContext
from .math import row_sumsq
from .plugins import get_registry
from .records import StatsRecorder, StepRecord
from .schedule import TimeResolver
from .state import BranchState, Slot

__all__ = ["Engine", "Part", "Call"]


@attrs.define
class Part:
    """One row group's share of a call."""

    slot: Slot
    ctx: StepContext
    compute: bool
    reason: str
    rows: torch.Tensor | None  # indices into the batch (None: every row)
    prediction: torch.Tensor | None = None


@attrs.define
class Call:
    ctx: StepContext
    branch: BranchState
    parts: list[Part] = attrs.field(factory=list)
    mode: str = "pending"  # "compute", "skip" or "mixed" once the first block has run
    compute_rows: torch.Tensor | None = None  # mixed calls: the rows that run the block stack
    batch: int = 0
    x_in: torch.Tensor | None = None  # the block-stack input, in the history dtype (streams packed per row)
    shapes: list = attrs.field(factory=list)  # per stream: its shape (several streams are packed into x_in)
    outputs: list = attrs.field(factory=list)  # per stream, the block-stack output its head received
    done: bool = False
    validated: set = attrs.field(factory=set)


class Engine:
    """padecache's state attached to one transformer."""

    def __init__(self, model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None,
                 span: Callable[[Schedule], tuple[int, int] | None] | None = None):
        registry = get_registry()
        self.model, self.adapter, self.config, self.source, self.span_fn = model, adapter, config, source, span
        self._predictor = registry.get("predictor", config.predictor.name)
        self._policy = registry.get("policy", config.policy.name)
        stage = registry.get("stage", config.stage.name)
        self.detector = stage.cls(config.stage.options)
        self.resolver = TimeResolver(adapter.time_specs(model))
        forward = type(model).forward
        self._time_positions = {a: _unbound_position(forward, a) for a in self.resolver.arguments}
        self.recorder = StatsRecorder()
        self.branches: dict[str, BranchState] = {}
        self.schedule: Schedule | None = None
        self.span: tuple[int, int] | None = None
        self._key: Any = None
        self.call: Call | None = None
        self._last_step = -1
        self._calls_at_step = 0
        self._generation_open = False
        self._warned: set[str] = set()
        self.checked_head = False
        self.undo: list[Callable[[], None]] = []
        self.sequence_group: Any = None  # named by the user; otherwise diffusers' context-parallel group, if any
        self.reducer = LOCAL

    def _group_reducer(self) -> Reducer:
        """The reducer of the group this call's tokens are sharded over (found per call: parallelism may be enabled
        after padecache was applied)."""
        group = self.sequence_group if self.sequence_group is not None else context_parallel_group(self.model)
        if group is None:
            return LOCAL
        if self.reducer.group is not group:
            self.reducer = Reducer(group)
        return self.reducer

    # -- components ------------------------------------------------------------------------------------
    def _new_components(self):
        return (self._predictor.cls(self.config.predictor.options), self._policy.cls(self.config.policy.options))

    def _label(self, kind: str) -> str:
        sel = getattr(self.config, kind)
        variant = getattr(sel.options, "variant", None)
        return f"{kind} {sel.name!r}" + (f" (variant {variant!r})" if variant else "")

    # -- generation lifecycle --------------------------------------------------------------------------
    def reset(self) -> None:
        """End the current generation: forget histories (its stats stay readable)."""
        self._finish_generation()
        self.branches.clear()
        self.call = None
        self._last_step = -1
        self._calls_at_step = 0
        self._generation_open = False

    def _new_generation(self, num_steps: int, key: Any, schedule: Schedule | None) -> None:
        self.reset()
        self.schedule, self._key = schedule, key
        self.span = self.span_fn(schedule) if (self.span_fn is not None and schedule is not None) else None
        self.resolver.reset()
        self._generation_open = True
        self._warned = set()
        self.recorder.generations += 1
        self.recorder.start(num_steps if self.span is None else self.span[1] - self.span[0])

    def _finish_generation(self) -> None:
        """Warn once about a generation whose forecasts mostly fell back (it ran at nearly full cost)."""
        if not self._generation_open:
            return
        attempts, fallbacks = self.recorder.forecast_attempts, self.recorder.fallback_rows
        if attempts >= 2 and fallbacks * 2 > attempts and "fallbacks" not in self._warned:
            self._warned.add("fallbacks")
            warnings.warn(
                f"padecache: {fallbacks} of {attempts} forecasts of {self._label('predictor')} were rejected by the guard "
                f"(non-finite, or larger than engine.max_growth = {self.config.engine.max_growth:g} x the largest "
                f"computed residual) and computed instead: this generation ran at nearly full cost. Check the "
                f"predictor, or its options",
                RuntimeWarning,
                stacklevel=2,
            )

    def _branch(self, name: str) -> BranchState:
        if name not in self.branches:
            self.branches[name] = BranchState(name, self._new_components)
        return self.branches[name]

    # -- step resolution -------------------------------------------------------------------------------
    def _time_argument(self, args: tuple, kwargs: dict) -> Any:
        for name, pos in self._time_positions.items():
            if name in kwargs and kwargs[name] is not None:
                return kwargs[name]
            if pos is not None and len(args) > pos and args[pos] is not None:
                return args[pos]
        names = " or ".join(f"`{a}`" for a in self._time_positions)
        raise ValueError(f"{type(self.model).__name__} was called without {names}; padecache needs it to find the step")

    def _time_value(self, t: Any) -> float:
        value = float(torch.as_tensor(t).detach().float().max()) if isinstance(t, torch.Tensor) else float(t)
        if not math.isfinite(value):
            raise ValueError(f"{type(self.model).__name__} was called with a non-finite timestep ({value})")
        return value

    def _locate(self, schedule: Schedule, args: tuple, kwargs: dict, context: Any, name: str | None) -> int:
        n = schedule.num_steps
        given = getattr(context, "step_index", None)
        if isinstance(given, int) and 0 <= given < n:
            return given
        t = None
        index = self.source.step_index() if self.source is not None else None
        if index is not None and self._last_step >= 0 and index in (self._last_step, self._last_step + 1) and index < n:
            t = self._time_argument(args, kwargs)
            if not (isinstance(t, torch.Tensor) and t.device.type == "cpu"):
                return index  # trusted without reading the tensor: no host sync on an accelerator
            if self.resolver.agrees(schedule, self._time_value(t), index):
                return index
        value = self._time_value(self._time_argument(args, kwargs) if t is None else t)
        after = self.branches[name].last_step if name in self.branches else self._last_step
        return self.resolver.locate(schedule, value, after)

    def begin(self, args: tuple, kwargs: dict, context: Any | None) -> None:
        """Top-level pre-forward: resolve step, branch and stage."""
        name = getattr(context, "name", None)
        schedule = self.source.current() if self.source is not None else None
        if schedule is not None:
            if not self._generation_open or schedule is not self._key:
                self._new_generation(schedule.num_steps, schedule, schedule)
            num_steps = schedule.num_steps
            step = self._locate(schedule, args, kwargs, context, name)
            timestep = schedule.timesteps[step]
            sigma = schedule.sigmas[step] if schedule.sigmas is not None else getattr(context, "sigma", None)
        elif getattr(context, "step_index", None) is not None and getattr(context, "num_inference_steps", None):
            # no scheduler known, but the pipeline says where the loop is (diffusers CacheContext)
            num_steps = int(context.num_inference_steps)
            key = ("cache_context", num_steps)
            if not self._generation_open or key != self._key:
                self._new_generation(num_steps, key, None)
            step = int(context.step_index)
            t = getattr(context, "timestep", None)
            timestep = self._time_value(t if t is not None else self._time_argument(args, kwargs))
            sigma = getattr(context, "sigma", None)
        else:
            raise ValueError(
                f"padecache cannot tell which denoising step this {type(self.model).__name__} call is: no scheduler "
                f"is known. Apply padecache to the pipeline (padecache.apply(pipe, ...)), or call "
                f"padecache.set_schedule(transformer, timesteps) before a hand-written sampling loop."
            )
        if name is None:
            self._calls_at_step = self._calls_at_step + 1 if step == self._last_step else 0
            name = "main" if self._calls_at_step == 0 else f"call{self._calls_at_step}"
        if name in self.branches and step <= self.branches[name].last_step:  # the loop started over
            self._new_generation(num_steps, self._key, self.schedule)
            self._calls_at_step = 0
            name = getattr(context, "name", None) or "main"
        if not 0 <= step < num_steps:
            raise ValueError(f"step {step} is outside this generation's {num_steps} steps")
        self._last_step = step
        branch = self._branch(name)
        branch.last_step = step
        ctx = StepContext(step, num_steps, timestep, sigma, name, None, self.schedule, span=self.span,
                          reducer=self._group_reducer())
        ctx = attrs.evolve(ctx, stage=self.detector.stage(ctx))
        self.call = Call(ctx, branch)

    # -- decisions, at the first block -----------------------------------------------------------------
    def _history(self, t: torch.Tensor) -> torch.Tensor:
        e = self.config.engine
        if e.history_dtype == "float32" or (e.history_dtype == "auto" and t.dtype == torch.float16):
            dtype = torch.float32
        else:
            dtype = t.dtype
        device = "cpu" if e.history_device == "cpu" else t.device
        return t.detach().to(device=device, dtype=dtype)

    def stack_input(self, streams: torch.Tensor | list[torch.Tensor]) -> str:
        """The first block is about to run on ``streams`` (the hidden stream, or several): decide, predict and check.
        Returns the call's mode."""
        call = self.call
        if call is None:
            return "compute"
        if call.x_in is not None:  # a second pass through the stack within one call: leave it alone
            return call.mode
        streams = [streams] if isinstance(streams, torch.Tensor) else list(streams)
        hidden = streams[0]
        branch, batch = call.branch, hidden.shape[0]
        call.shapes = [tuple(t.shape) for t in streams]
        signature = (batch, *(shape[1:] for shape in call.shapes))
        if branch.signature is not None and branch.signature != signature:
            branch.restart()  # another batch size or resolution: this history does not apply
            self.recorder.restarts += 1
        branch.signature = signature
        call.batch = batch
        call.x_in = self._history(hidden) if len(streams) == 1 else torch.cat([self._history(t).flatten(1) for t in streams], 1)
        parts: list[Part] = []
        for slot in list(branch.slots):
            parts.extend(self._decide(call, slot))
        call.parts = parts
        computed = [p for p in parts if p.compute]
        if computed and len(computed) < len(parts) and not self.adapter.rows_split:
            for part in parts:  # this family's blocks cannot run on some rows alone: every row computes
                if not part.compute:
                    part.compute, part.reason, part.prediction = True, "batch", None
            computed = parts
        if len(computed) == len(parts):
            call.mode = "compute"
        elif not computed:
            call.mode = "skip"
        else:
            call.mode = "mixed"
            call.compute_rows = torch.cat([p.rows for p in computed]).sort().values.to(hidden.device)
        return call.mode

    def _replace(self, branch: BranchState, slot: Slot, new: tuple[Slot, Slot]) -> None:
        i = branch.slots.index(slot)
        branch.slots[i:i + 1] = list(new)

    def _decide(self, call: Call, slot: Slot) -> list[Part]:
        batch, branch = call.batch, call.branch
        rows = None if slot.rows is None else slot.rows
        ctx = attrs.evolve(call.ctx, history=slot.history, rows=slot.size(batch))
        want = slot.policy.should_compute(ctx)
        if isinstance(want, torch.Tensor) and want.dim() > 0:
            want = want.detach().to("cpu", torch.bool).flatten()
            if len(want) != slot.size(batch):
                raise ValueError(
                    f"{self._label('policy')} returned {len(want)} decisions for {slot.size(batch)} batch rows at step "
                    f"{ctx.step}; return a bool, or one bool per row"
                )
            if bool(want.all()) != bool(want.any()):  # rows disagree: split the group
                yes, no = slot.split(want, batch)
                self._replace(branch, slot, (yes, no))
                return self._decide(call, yes) + self._decide(call, no)
            want = bool(want[0])
        if bool(want):
            return [Part(slot, ctx, True, "policy", rows)]
        if not slot.predictor.ready(ctx):
            self._check_ready(slot, ctx)
            return [Part(slot, ctx, True, "warmup", rows)]
        x_in = call.x_in if rows is None else call.x_in.index_select(0, rows.to(call.x_in.device))
        prediction = slot.predictor.predict(ctx, x_in)
        self._check_prediction(prediction, x_in, ctx)
        self.recorder.forecast_attempts += slot.size(batch)
        if self.config.engine.guard:
            ok = self._acceptable(slot, prediction, ctx)
            if ok is not None:  # some rows failed
                self.recorder.fallback_rows += int((~ok).sum())
                if not bool(ok.any()):
                    return [Part(slot, ctx, True, "fallback", rows)]
                good, bad = slot.split(ok, batch)
                self._replace(branch, slot, (good, bad))
                local = torch.arange(len(ok))
                keep = local[ok].to(prediction.device)
                return [
                    Part(good, attrs.evolve(ctx, rows=len(good.rows)), False, "forecast", good.rows, prediction.index_select(0, keep)),
                    Part(bad, attrs.evolve(ctx, rows=len(bad.rows)), True, "fallback", bad.rows),
                ]
        return [Part(slot, ctx, False, "forecast", rows, prediction)]

    def _check_ready(self, slot: Slot, ctx: StepContext) -> None:
        need = max(1, getattr(slot.predictor, "min_history", 1))
        if ctx.history >= need + 2 and "ready" not in self._warned:
            self._warned.add("ready")
            warnings.warn(
                f"padecache: {self._label('predictor')} still says it is not ready after {ctx.history} computed "
                f"residuals (its min_history is {need}), so every step is computed. Predictor.ready() should "
                f"follow ctx.history, the count the engine keeps",
                RuntimeWarning,
                stacklevel=2,
            )

    def _check_prediction(self, prediction: Any, x_in: torch.Tensor, ctx: StepContext) -> None:
        problem = None
        if not isinstance(prediction, torch.Tensor):
            problem = f"returned a {type(prediction).__name__}, not a tensor"
        elif prediction.shape != x_in.shape:
            problem = f"returned shape {tuple(prediction.shape)} for a block stack of shape {tuple(x_in.shape)}"
        elif prediction.dtype != x_in.dtype:
            problem = f"returned dtype {prediction.dtype}, the history dtype is {x_in.dtype}"
        elif prediction.device != x_in.device:
            problem = f"returned a tensor on {prediction.device}, the block-stack input is on {x_in.device}"
        if problem:
            raise ValueError(
                f"padecache: {self._label('predictor')} {problem} at step {ctx.step} (branch {ctx.branch!r}); a "
                f"prediction must match the block-stack input it is added to, row for row (it is never broadcast)"
            )

    def _acceptable(self, slot: Slot, prediction: torch.Tensor, ctx: StepContext) -> torch.Tensor | None:
        """None if every row is finite and within ``max_growth`` x its largest computed residual, else the
        per-row verdict.  One reduction and one host sync in the common case; under sequence parallelism the
        sums of squares are the group's (a non-finite value on any rank's shard makes the sum non-finite)."""
        norms = ctx.reduce(row_sumsq(prediction)).value.sqrt()
        ok = torch.isfinite(norms)
        bound = slot.max_norm
        if bound is not None:
            ok = ok & (norms <= bound.to(norms.device) * self.config.engine.max_growth)
        if bool(ok.all()):
            return None
        return ok.cpu()

    # -- the block stack -------------------------------------------------------------------------------
    def block_mode(self, block: Any, args: tuple, kwargs: dict) -> str:
        """How a wrapped block runs in this call: "compute", "skip" or "mixed" (see :mod:`padecache.hooks`)."""
        call = self.call
        if call is None:
            return "compute"
        if block.first and call.x_in is None:
            self.stack_input(self.adapter.stack_inputs(block.list_name, block.module, block.original, args, kwargs))
        return call.mode

    def run_block_other(self, block: Any, mode: str, args: tuple, kwargs: dict) -> Any:
        """A skipped block returns its inputs; in a mixed call it runs on the computing rows alone."""
        if mode == "skip":
            return self.adapter.skip_output(block.list_name, block.module, block.original, args, kwargs)
        return self._run_rows(block, self.call, args, kwargs)

    def _run_rows(self, block: Any, call: Call, args: tuple, kwargs: dict) -> Any:
        """A mixed call: the block runs on the computing rows alone; the others pass through."""
        rows, batch = call.compute_rows, call.batch
        out = block.original(*_take(args, rows, batch), **_take(kwargs, rows, batch))
        return _put(self.adapter.skip_output(block.list_name, block.module, block.original, args, kwargs), out, rows, batch)

    def check_block_output(self, block: Any, out: Any, args: tuple, kwargs: dict) -> None:
        """Until the first head check: a skipped block must return what the real block returns (structure, shapes)."""
        call = self.call
        if call is None or block.list_name in call.validated:
            return
        call.validated.add(block.list_name)
        skipped = self.adapter.skip_output(block.list_name, block.module, block.original, args, kwargs)
        if _structure(out) != _structure(skipped):
            raise TypeError(
                f"adapter {self.adapter.name!r}: a skipped {type(block.module).__name__} of `{block.list_name}` would "
                f"return {_structure(skipped)} but the block returns {_structure(out)}; give the adapter a BlockIO for "
                f"`{block.list_name}` (padecache.adapters.BlockIO: hidden/encoder argument names and output indices)"
            )

    # -- the head --------------------------------------------------------------------------------------
    def head_input(self, hidden: torch.Tensor, stream: int = 0) -> torch.Tensor:
        """A head is about to run on the block-stack output of ``stream``: inject forecasts for the forecast rows;
        once every stream's head has been reached, record the real residuals of the computed rows."""
        call = self.call
        if call is None or call.done or call.x_in is None or stream != len(call.outputs):
            return hidden
        expected = call.shapes[stream]
        if tuple(hidden.shape) != expected:
            head = self.adapter.stream_specs(self.model)[stream].head
            raise TypeError(
                f"adapter {self.adapter.name!r}: the head `{head}` of {type(self.model).__name__} receives shape "
                f"{tuple(hidden.shape)}, but the block stack's input has shape {expected}; the adapter's `head` must "
                f"be the module that takes the block-stack output"
            )
        self.checked_head = True
        call.outputs.append(hidden)
        out = hidden
        for part in call.parts:
            if part.compute:
                continue
            value = self._stream(call, call.x_in if part.rows is None else call.x_in.index_select(0, part.rows.to(call.x_in.device)),
                                 stream, part.prediction)
            value = value.to(device=hidden.device, dtype=hidden.dtype)
            if part.rows is None:
                out = value
            else:
                if out is hidden:
                    out = hidden.clone()
                out.index_copy_(0, part.rows.to(hidden.device), value)
        if len(call.outputs) == len(call.shapes):
            call.done = True
            self._record(call)
        return out

    def _stream(self, call: Call, x_rows: torch.Tensor, stream: int, prediction: torch.Tensor) -> torch.Tensor:
        """``x_rows + prediction`` for one stream, in that stream's shape."""
        if len(call.shapes) == 1:
            return x_rows + prediction
        start = sum(math.prod(s[1:]) for s in call.shapes[:stream])
        shape = call.shapes[stream]
        size = math.prod(shape[1:])
        return (x_rows[:, start:start + size] + prediction[:, start:start + size]).reshape(len(x_rows), *shape[1:])

    def _record(self, call: Call) -> None:
        """Every head has run: give each row group its residual (real or predicted) and record the step."""
        x_in, batch = call.x_in, call.batch
        hist = None
        if call.mode != "skip":  # the heads' inputs in the history's dtype and device (Wan's head takes float32)
            like = {"device": x_in.device, "dtype": x_in.dtype}
            hist = call.outputs[0].detach().to(**like) if len(call.outputs) == 1 else torch.cat(
                [t.detach().to(**like).flatten(1) for t in call.outputs], 1)
        for part in call.parts:
            idx = None if part.rows is None else part.rows.to(x_in.device)
            x_rows = x_in if idx is None else x_in.index_select(0, idx)
            if part.compute:
                residual = (hist if idx is None else hist.index_select(0, idx)) - x_rows
                part.slot.note_residual(part.ctx.reduce(row_sumsq(residual)))
                part.slot.history += 1
            else:
                residual = part.prediction
            part.slot.predictor.update(part.ctx, residual, x_rows, computed=part.compute)
            part.slot.policy.observe(part.ctx, residual, computed=part.compute)
            indicators = {**part.slot.policy.indicators(), **(part.slot.predictor.indicators() if not part.compute else {})}
            rows = None if part.rows is None else tuple(int(r) for r in part.rows)
            self.recorder.add(StepRecord(part.ctx.step, call.branch.name, part.compute, part.reason,
                                         part.ctx.stage.value, indicators, rows=rows, batch=batch))
        call.outputs = [None] * len(call.outputs)  # drop the references: the model owns these tensors
        call.ctx.reducer.flush()  # what this step queued (norms, statistics) goes out in one all-reduce now
        self.recorder.observe_bytes(self.state_bytes(extra=(x_in,)))

    def end(self) -> None:
        call, self.call = self.call, None
        if call is not None and not call.done and call.x_in is not None:
            heads = [s.head for s in self.adapter.stream_specs(self.model)]
            raise RuntimeError(
                f"padecache: {type(self.model).__name__}.{heads[len(call.outputs)]} was never called after the block "
                f"stack; the adapter {self.adapter.name!r} does not match this model"
            )

    def state_bytes(self, extra: tuple = ()) -> int:
        """Bytes held by every predictor and policy, plus ``extra`` (each storage counted once, whole)."""
        seen: dict[int, int] = {}
        for branch in self.branches.values():
            for t in (*branch.state_tensors(), *extra):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    seen[storage.data_ptr()] = storage.nbytes()
        return sum(seen.values())

    def stats(self):
        self._finish_generation()  # the warning, if any, reaches pipelines that never signal the end of a call
        return self.recorder.snapshot()

    def __deepcopy__(self, memo):
        raise TypeError(_COPY_MESSAGE.format(name=type(self.model).__name__, what="copied"))

    def __reduce_ex__(self, protocol):
        raise TypeError(_COPY_MESSAGE.format(name=type(self.model).__name__, what="pickled"))


_COPY_MESSAGE = (
    "this {name} has padecache applied and cannot be {what} with it: padecache.remove(model) first, then apply "
    "padecache to the copy (and to the original again) -- each needs its own hooks and state"
)


def _unbound_position(forward: Callable, name: str) -> int | None:
    """Position of ``name`` among the positional arguments of an unbound ``forward`` (``self`` excluded)."""
    pos = _position(forward, name)
    if pos is None:
        return None
    try:
        first = next(iter(inspect.signature(forward).parameters))
    except (TypeError, ValueError, StopIteration):
        return pos
    return pos - 1 if first == "self" else pos


def _take(value: Any, rows: torch.Tensor, batch: int) -> Any:
    """The rows ``rows`` of every batch-first tensor in ``value`` (arguments of a block call)."""
    if isinstance(value, torch.Tensor):
        return value.index_select(0, rows.to(value.device)) if value.dim() >= 1 and value.shape[0] == batch else value
    if isinstance(value, tuple):
        items = [_take(v, rows, batch) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_take(v, rows, batch) for v in value]
    if isinstance(value, dict):
        return {k: _take(v, rows, batch) for k, v in value.items()}
    return value


def _put(full: Any, part: Any, rows: torch.Tensor, batch: int) -> Any:
    """``full`` (a skipped block's output for every row) with ``part`` (the block's output for ``rows``) written in."""
    if isinstance(full, torch.Tensor) and isinstance(part, torch.Tensor):
        if full.dim() >= 1 and full.shape[0] == batch and part.shape[0] == len(rows):
            return full.index_copy(0, rows.to(full.device), part.to(full.dtype))
        return part
    if isinstance(full, tuple) and isinstance(part, tuple) and len(full) == len(part):
        return tuple(_put(f, p, rows, batch) if p is not None else None for f, p in zip(full, part))
    return part


def _structure(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return ("tensor", tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return tuple(_structure(o) if isinstance(o, torch.Tensor) else ("none" if o is None else type(o).__name__) for o in out)
    return type(out).__name__

