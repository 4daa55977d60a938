"""The reversible hooks that run a transformer under padecache: they own the wrappers and every module call.

Three hooks, each undone by a closure written next to it: a stateful diffusers ``ModelHook`` on the transformer
(:mod:`padecache.compat`; ``cache_context`` names and the pipelines' end-of-call reset reach padecache, and a call
that raises ends its generation); an instance ``forward`` on every block (:class:`BlockForward`: it runs the block,
returns its inputs unchanged, or runs it on the rows that compute); a forward pre-hook on the head of each stream.

:class:`Attachment` ties them together for one transformer.  Per call it asks the locator where the call is
(:mod:`padecache.schedule`) and the engine for its context; at the first block of the cached range it packs the
stack input (several streams side by side per row) and asks the engine for the :class:`~padecache.engine.Plan`;
it runs the blocks as the plan says; where the cached range ends (the head, or the first of
``engine.last_blocks``) it writes ``input + forecast`` into the forecast rows and gives the stack output to
:meth:`~padecache.engine.Engine.record`.

All of this runs outside ``torch.compile`` (``torch.compiler.disable``); the block's own ``forward`` inside a
wrapper is compiled as usual (one graph per block class, no decision of ours baked into a graph).  :func:`detach`
leaves each module's ``__dict__`` as it found it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn as nn

from . import compat
from .adapters import Adapter, BlockIO, ModelCall, control_state, position_of, replace_argument
from .batching import block_rows, pack_streams, put_rows, stream_encoder, structure, structure_fits, unpack_stream
from .config import CacheConfig
from .distributed import LOCAL, Reducer, context_parallel_group
from .engine import Engine, Plan
from .errors import ThreadConflictError, Uncopyable, head_shape_error, warn
from .interfaces import Schedule, StepContext
from .readings import Readings
from .schedule import Locator

__all__ = ["attach", "detach", "attachment_of", "Attachment", "BlockForward", "HOOK_NAME"]

HOOK_NAME = "padecache"
_ATTR = "_padecache_engine"


def attachment_of(model: nn.Module) -> Attachment | None:
    """What padecache attached to ``model``, or ``None``."""
    return model.__dict__.get(_ATTR)


def _eager(fn: Callable, recursive: bool = True) -> Callable:
    """``fn``, never traced by dynamo (with ``recursive=False``, functions it calls still are)."""
    return torch.compiler.disable(fn, recursive=recursive)


@attrs.define
class _Call:
    """One transformer call in flight."""

    ctx: StepContext
    readings: Readings  # what the components declared in ``inputs``, gathered as the call runs
    plan: Plan | None = None
    rows: torch.Tensor | None = None  # mixed calls: the rows that run the cached blocks, on the model's device
    shapes: list = attrs.field(factory=list)  # per stream: its shape (several streams are packed into the plan's x_in)
    outputs: list = attrs.field(factory=list)  # per stream, the stack output received
    done: bool = False
    validated: set = attrs.field(factory=set)
    model_call: ModelCall | None = None  # (reach) the call's arguments, for the adapters' HeadInput maps


class Attachment(Uncopyable):
    """padecache on one transformer: its engine, locator, adapter, hooks, and the call in flight."""

    def __init__(self, model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None,
                 span: Callable[[Schedule], tuple[int, int] | None] | None = None):
        self.model, self.adapter = model, adapter
        self.blocks = adapter.blocks(model)
        n, e, name = len(self.blocks), config.engine, type(model).__name__
        if e.first_blocks + e.last_blocks >= n:
            raise ValueError(f"engine.first_blocks + engine.last_blocks = {e.first_blocks + e.last_blocks} leave no block of "
                             f"this {name}'s {n} to cache; keep their sum below {n}")
        self.first, self.stop = e.first_blocks, n - e.last_blocks  # the cached range of blocks: [first, stop)
        self.engine = Engine(config, n, adapter.rows_split, name, adapter.name)
        self.locator = Locator(adapter.time_specs(model), type(model).forward, source, span, name)
        self.applied_source = source
        self.sequence_group: Any = None  # named by the user; otherwise diffusers' context-parallel group, if any
        self.reducer: Reducer = LOCAL
        self.call: _Call | None = None
        self.checked_head = False
        self.undo: list[Callable[[], None]] = []
        self._warned_grad = False

    @property
    def source(self) -> Any:
        return self.locator.source

    @source.setter
    def source(self, value: Any) -> None:
        self.locator.source = value

    def stats(self):
        return self.engine.stats()

    def reset(self) -> None:
        """End the current generation (the pipeline's end-of-call reset, or :func:`padecache.reset`)."""
        self.call = None
        self.engine.reset()
        self.locator.reset()

    def pipeline_call_ended(self) -> None:  # (stopped early or not) unless another thread owns the generation
        if self.engine.owner.thread in (None, threading.current_thread()):
            self.reset()

    def _group_reducer(self) -> Reducer:
        """The reducer of the group this call's tokens are sharded over (found per call: parallelism may be enabled
        after padecache was applied)."""
        group = self.sequence_group if self.sequence_group is not None else context_parallel_group(self.model)
        if group is None:
            return LOCAL
        if self.reducer.group is not group:
            self.reducer = Reducer(group)
        return self.reducer

    # -- the transformer call ------------------------------------------------------------------------------
    def begin(self, args: tuple, kwargs: dict, context: Any | None) -> None:
        try:
            self.engine.claim()
        except ThreadConflictError:
            if self.engine.owner.thread is None:  # it was this thread's generation that another thread interrupted
                self.reset()
            raise
        try:
            ctx = self.engine.start(self.locator.locate(args, kwargs, context), self._group_reducer())
            self.call = _Call(ctx, Readings(self.engine.inputs, self.engine.to_history), model_call=ModelCall(self.model, args, kwargs))
            self.call.readings.at_call(args, kwargs)
        except BaseException:
            self.reset()
            raise

    def failed(self, error: BaseException) -> None:
        """The call raised: its generation cannot go on (the next call starts a new one)."""
        self.reset()

    def end(self, output: Any) -> Any:  # what the call returns (engine.gap_correction may move its sample)
        call, self.call = self.call, None
        if call is not None and call.plan is not None and not call.done:
            heads = [s.head for s in self.adapter.stream_specs(self.model)]
            self.reset()
            raise RuntimeError(
                f"padecache: {type(self.model).__name__}.{heads[len(call.outputs)]} was never called after the block "
                f"stack; the adapter {self.adapter.name!r} does not match this model: its `head` names the module that "
                f"takes the block stack's output (e.g. 'norm_out'; docs/adapters.md)"
            )
        try:
            if call is not None:
                self.engine.finish(call.ctx)
        except ThreadConflictError:
            self.reset()
            raise
        return output if call is None or call.plan is None else self.engine.correct(call.plan, output)

    # -- blocks ----------------------------------------------------------------------------------------------
    def enter(self, block: BlockForward, args: tuple, kwargs: dict) -> tuple[str, tuple, dict]:
        """How ``block`` runs in this call ("compute", "skip" or "mixed"), with its arguments (where the cached
        range ends at a block, forecasts are written into them)."""
        call, k = self.call, block.position
        if call is None:
            return "compute", args, kwargs
        if k == 0 and call.plan is None and self.engine.inputs:
            call.readings.at_first_block(self.adapter, block.module, block.original, args, kwargs,
                                         self._carried[0] if self.first > 0 else None)
        if k == self.first and call.plan is None:
            self._plan(call, block, args, kwargs)
        if call.plan is None or k < self.first:
            return "compute", args, kwargs
        if k >= self.stop:
            if k == self.stop and not call.done:
                args, kwargs = self._range_end(call, block, args, kwargs)
            return "compute", args, kwargs
        return call.plan.mode, args, kwargs

    def embedder_output(self, output: Any) -> None:
        """The output of the module the adapter names for the timestep embedding (its forward hook calls this)."""
        if self.call is not None and self.call.plan is None:
            self.call.readings.from_embedder(self.adapter.time_embedding, output)

    @functools.cached_property
    def _carried(self) -> tuple[list[str], list[str]]:
        """The arguments carrying the cached streams into the first cached block and into the block after the range:
        the hidden stream(s), and where the range ends at a block, the encoder stream both update (later blocks read
        it too)."""
        if self.adapter.streams:
            names = [s.argument for s in self.adapter.streams]
            return names, names
        (start_list, _, start), end = self.blocks[self.first], self.blocks[min(self.stop, len(self.blocks) - 1)]
        ios = self.adapter.block_io(start_list, start), self.adapter.block_io(end[0], end[2])
        if self.stop == len(self.blocks) or not all(stream_encoder(io) for io in ios):
            return [ios[0].hidden], [ios[1].hidden]
        return [ios[0].hidden, stream_encoder(ios[0])], [ios[1].hidden, stream_encoder(ios[1])]

    def _plan(self, call: _Call, block: BlockForward, args: tuple, kwargs: dict) -> None:
        io = BlockIO()
        streams = self._as_heads_get_them(call, [io.argument(block.original, args, kwargs, name) for name in self._carried[0]])
        call.shapes = [tuple(t.shape) for t in streams]
        x_in = pack_streams(streams, self.engine.to_history)
        inputs = call.readings.step_inputs(x_in, call.shapes, self.first == 0, lambda first: self._as_heads_get_them(call, first))
        signature = (len(x_in), *(s[1:] for s in call.shapes),  # (reach) a ControlNet switching on or off restarts
                     *(control_state(call.model_call[a]) for a in self.adapter.control_inputs))
        call.plan = plan = self.engine.plan(call.ctx, x_in, signature, inputs)
        if plan.compute_rows is not None:
            call.rows = plan.compute_rows.to(streams[0].device)
        if plan.forecasts:
            self._check_grad(call.ctx)

    def _as_heads_get_them(self, call: _Call, streams: list) -> list:
        if self.stop == len(self.blocks):  # (reach) the range ends at the heads: keep each stream as its head gets it
            streams = [s.head_input.stack_rows(t, call.model_call) if s.head_input else t
                       for s, t in zip(self._streams, streams)]
        return streams

    def run_other(self, block: BlockForward, mode: str, args: tuple, kwargs: dict) -> Any:
        """A skipped block returns its inputs; in a mixed call it runs on the computing rows alone."""
        skipped = self.adapter.skip_output(block.list_name, block.module, block.original, args, kwargs)
        if mode == "skip":
            return skipped
        rows, batch = self.call.rows, self.call.plan.batch
        args, kwargs = block_rows(block.original, args, kwargs, rows, batch, self.adapter.shared_arguments)
        return put_rows(skipped, block.original(*args, **kwargs), rows, batch)

    def check_block_output(self, block: BlockForward, out: Any, args: tuple, kwargs: dict) -> None:
        """Until the first head check: a skipped block must return what the real block returns (structure, shapes)."""
        call = self.call
        if call is None or block.list_name in call.validated:
            return
        call.validated.add(block.list_name)
        skipped = self.adapter.skip_output(block.list_name, block.module, block.original, args, kwargs)
        if not structure_fits(structure(skipped), structure(out)):
            raise TypeError(
                f"adapter {self.adapter.name!r}: a skipped {type(block.module).__name__} of `{block.list_name}` would "
                f"return {structure(skipped)} but the block returns {structure(out)}; describe what it returns in the "
                f"adapter's BlockIO for `{block.list_name}` (padecache.adapters.BlockIO: hidden/encoder names and indices)"
            )

    # -- where the cached range ends -----------------------------------------------------------------------
    def _range_end(self, call: _Call, block: BlockForward, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The first of ``engine.last_blocks`` is about to run: its stream arguments are the range's output."""
        for stream, name in enumerate(self._carried[1]):
            value = BlockIO().argument(block.original, args, kwargs, name)
            if tuple(value.shape) != call.shapes[stream]:
                raise TypeError(
                    f"engine.last_blocks = {len(self.blocks) - self.stop}: `{name}` entering {block.list_name}[{block.index}] "
                    f"has shape {tuple(value.shape)}, but the cached range started with shape {call.shapes[stream]}; "
                    f"choose first_blocks / last_blocks so that the range ends where its streams keep their shape"
                )
            new = self.receive(value, stream)
            args, kwargs = replace_argument(args, kwargs, name, position_of(block.original, name), new)
        return args, kwargs

    def receive(self, hidden: torch.Tensor, stream: int = 0) -> torch.Tensor:
        """The cached range's output of ``stream``: forecast rows get ``input + forecast``; once every stream has
        arrived, the engine records the call."""
        call = self.call
        if call is None or call.done or call.plan is None or stream != len(call.outputs):
            return hidden
        expected = call.shapes[stream]
        if tuple(hidden.shape) != expected:
            raise head_shape_error(self.adapter.name, type(self.model).__name__, self._streams[stream].head,
                                   tuple(hidden.shape), expected, self.blocks, self.first)
        self.checked_head = True
        call.outputs.append(hidden)
        out, plan = hidden, call.plan
        for part in plan.forecasts:
            x_rows = plan.x_in if part.rows is None else plan.x_in.index_select(0, part.rows.to(plan.x_in.device))
            value = unpack_stream(call.shapes, x_rows, part.prediction, stream).to(device=hidden.device, dtype=hidden.dtype)
            if part.rows is None:
                out = value
            else:
                out = hidden.clone() if out is hidden else out
                out.index_copy_(0, part.rows.to(hidden.device), value)
        if len(call.outputs) == len(call.shapes):
            call.done = True
            self._record(call)
        return out

    @functools.cached_property
    def _streams(self):
        return self.adapter.stream_specs(self.model)

    def receive_head(self, hidden: torch.Tensor, stream: int = 0) -> torch.Tensor:
        """(reach) What the head of ``stream`` receives: through the adapter's HeadInput maps (a head that gets the
        stack's stream sliced, unflattened or sequence-first) to the stream's rows and back, else as it is."""
        spec, call = self._streams[stream].head_input, self.call
        if spec is None or call is None:
            return self.receive(hidden, stream)
        rows = spec.head_rows(hidden, call.model_call)
        out = self.receive(rows, stream)
        return hidden if out is rows else spec.head_value(hidden, out, call.model_call)

    def _record(self, call: _Call) -> None:
        plan, output = call.plan, None
        if plan.mode != "skip":  # the stack output in the history's dtype and device (Wan's head takes float32)
            like = {"device": plan.x_in.device, "dtype": plan.x_in.dtype}
            outs = [t.detach().to(**like) for t in call.outputs]
            output = outs[0] if len(outs) == 1 else torch.cat([t.flatten(1) for t in outs], 1)
        call.outputs = [None] * len(call.outputs)  # drop the references: the model owns these tensors
        self.engine.record(plan, output)

    def _check_grad(self, ctx: StepContext) -> None:
        """Forecasts carry no gradient: refuse in training mode, warn once in eval mode (see padecache.apply)."""
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self.model.parameters()):
            return
        what = (f"padecache forecasts step {ctx.step} of this {type(self.model).__name__} while gradients are recorded, "
                f"but a forecast step passes no gradient to the model's parameters or to anything before the block stack")
        if self.model.training:
            raise RuntimeError(f"{what}. To train through sampling, padecache.remove(model) first (or apply the 'none' "
                               f"preset); to sample, run under torch.inference_mode() or torch.no_grad()")
        if not self._warned_grad:
            self._warned_grad = True
            warn(f"{what}: run sampling under torch.inference_mode() or torch.no_grad() (it also saves memory)",
                 RuntimeWarning, stacklevel=2)

    def _model_name(self) -> str:
        return type(self.model).__name__


# -- the wrappers ------------------------------------------------------------------------------------------------


class BlockForward(Uncopyable):
    """The instance ``forward`` of one hooked block (``position``: its place in the stack's execution order).

    Its own frame is skipped by dynamo, padecache's work runs eagerly, and the block's real ``forward`` is called
    from here directly, so a compiled block (regional or whole-model ``torch.compile``) is traced exactly as without
    padecache: one graph per block class, no decision of ours inside it.
    """

    __slots__ = ("owner", "module", "list_name", "index", "position", "original", "_enter", "_other", "_check",
                 "_call", "__signature__", "__wrapped__")

    def __init__(self, owner: Attachment, module: nn.Module, list_name: str, index: int, position: int, original: Callable):
        self.owner, self.module, self.list_name, self.index, self.position = owner, module, list_name, index, position
        self.original = original
        self.__wrapped__ = original
        try:
            self.__signature__ = inspect.signature(original)
        except (TypeError, ValueError):
            self.__signature__ = None
        self._enter = _eager(owner.enter)
        self._other = _eager(owner.run_other)
        self._check = _eager(owner.check_block_output)
        self._call = _eager(self._forward, recursive=False)

    def _forward(self, *args, **kwargs):
        mode, args, kwargs = self._enter(self, args, kwargs)
        if mode != "compute":
            return self._other(self, mode, args, kwargs)
        out = self.original(*args, **kwargs)
        if self.index == 0 and not self.owner.checked_head:
            self._check(self, out, args, kwargs)
        return out

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def _model_name(self) -> str:
        return type(self.owner.model).__name__


def _wrap_block(owner: Attachment, block: nn.Module, list_name: str, index: int, position: int) -> Callable[[], None]:
    """Put a :class:`BlockForward` in front of ``block``'s forward; returns the closure that takes it out again."""
    link = compat.inner_forward_link(block)
    if link is not None:  # inside diffusers' context-parallel split, around the block's own forward
        original = link.forward
        link.forward = BlockForward(owner, block, list_name, index, position, original)

        def undo_inner():
            link.forward = original

        return undo_inner
    had = "forward" in block.__dict__
    previous = block.__dict__.get("forward")
    wrapper = BlockForward(owner, block, list_name, index, position, block.forward)
    block.forward = wrapper

    def undo():
        if block.__dict__.get("forward") is wrapper:
            if had:
                block.forward = previous
            else:
                del block.forward
            return
        # a hook was put on top of ours since (diffusers' context parallelism, applied after padecache): take
        # ours out of its chain and leave theirs in place
        compat.unlink(block, wrapper, previous if had else wrapper.original)

    return undo


def _head_pre_hook(owner: Attachment, stream: int):
    def hook(module, args, kwargs):
        if owner.call is None:
            return None
        if args:
            return (owner.receive_head(args[0], stream), *args[1:]), kwargs
        for key in ("hidden_states", "x", "input"):
            if key in kwargs:
                return args, {**kwargs, key: owner.receive_head(kwargs[key], stream)}
        return None

    return _eager(hook)


def attach(model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None,
           span: Callable[[Schedule], tuple[int, int] | None] | None = None) -> Attachment:
    """Hook ``model``; everything done here is undone by :func:`detach`, in reverse order."""
    name = type(model).__name__
    if attachment_of(model) is not None:
        raise ValueError(f"padecache is already applied to this {name}; call padecache.remove(...) first")
    compat.refuse_diffusers_cache(model)
    owner = Attachment(model, adapter, config, source, span)
    heads = adapter.head_modules(model)
    for _, _, block in owner.blocks:
        if isinstance(block.__dict__.get("forward"), BlockForward):
            raise ValueError("a block of this model is already wrapped by padecache")
    hook = compat.model_hook(owner.begin, owner.end, owner.reset, owner.failed, _eager)
    owner.undo.append(compat.register_model_hook(model, hook, HOOK_NAME))
    for k, (list_name, index, block) in enumerate(owner.blocks):
        owner.undo.append(_wrap_block(owner, block, list_name, index, k))
    if owner.stop == len(owner.blocks):  # the cached range ends at the heads (else at a block: see Attachment.enter)
        for stream, head in enumerate(heads):
            owner.undo.append(head.register_forward_pre_hook(_head_pre_hook(owner, stream), with_kwargs=True).remove)
    if adapter.time_embedding and adapter.time_embedding.module and "time_embedding" in owner.engine.inputs:
        watch = _eager(lambda module, args, output: owner.embedder_output(output))  # the family's timestep embedding
        owner.undo.append(model.get_submodule(adapter.time_embedding.module).register_forward_hook(watch).remove)
    owner.undo.append(compat.mark_cache_enabled(model))  # diffusers' is_cache_enabled / enable_cache see padecache
    model.__dict__[_ATTR] = owner
    owner.undo.append(functools.partial(model.__dict__.pop, _ATTR, None))
    return owner


def detach(model: nn.Module) -> None:
    owner = attachment_of(model)
    if owner is None:
        raise ValueError(f"padecache is not applied to this {type(model).__name__}")
    while owner.undo:
        owner.undo.pop()()
    owner.reset()
