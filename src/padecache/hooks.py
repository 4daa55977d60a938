"""The reversible hooks that connect a transformer to its :class:`~padecache.engine.Engine`.

Three hooks, each undone by a closure written next to it:

* a stateful diffusers ``ModelHook`` on the transformer, so ``cache_context`` names and the pipelines'
  end-of-call reset reach the engine;
* an instance ``forward`` on every block of the stack (:class:`BlockForward`), which asks the engine and
  either runs the block, returns its inputs unchanged, or runs it on some rows of the batch;
* a forward pre-hook on the head, where the engine swaps in ``input + predicted residual``.

All engine work runs outside ``torch.compile`` (``torch.compiler.disable``); a block wrapper is skipped by
dynamo but the block's own ``forward`` inside it is compiled as usual, so regional compilation
(``compile_repeated_blocks``) keeps one graph per block class and no decision of ours is baked into a graph.
:func:`detach` leaves each module's ``__dict__`` as it found it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from .adapters import Adapter
from .config import CacheConfig
from .engine import _COPY_MESSAGE, Engine
from .interfaces import Schedule

__all__ = ["attach", "detach", "engine_of", "BlockForward", "HOOK_NAME"]

HOOK_NAME = "padecache"
_ENGINE_ATTR = "_padecache_engine"


def engine_of(model: nn.Module) -> Engine | None:
    return model.__dict__.get(_ENGINE_ATTR)


def _eager(fn: Callable, recursive: bool = True) -> Callable:
    """``fn``, never traced by dynamo (with ``recursive=False``, functions it calls still are)."""
    return torch.compiler.disable(fn, recursive=recursive)


class BlockForward:
    """The instance ``forward`` of one hooked block.

    Its own frame is skipped by dynamo, the engine's work runs eagerly, and the block's real ``forward``
    is called from here directly, so a compiled block (regional or whole-model ``torch.compile``) is
    traced exactly as without padecache: one graph per block class, no decision of ours inside it.
    """

    __slots__ = ("engine", "module", "list_name", "index", "first", "original", "_enter", "_other", "_check",
                 "_call", "__signature__", "__wrapped__")

    def __init__(self, engine: Engine, module: nn.Module, list_name: str, index: int, first: bool, original: Callable):
        self.engine, self.module, self.list_name, self.index, self.first = engine, module, list_name, index, first
        self.original = original
        self.__wrapped__ = original
        try:
            self.__signature__ = inspect.signature(original)
        except (TypeError, ValueError):
            self.__signature__ = None
        self._enter = _eager(engine.block_mode)
        self._other = _eager(engine.run_block_other)
        self._check = _eager(engine.check_block_output)
        self._call = _eager(self._forward, recursive=False)

    def _forward(self, *args, **kwargs):
        mode = self._enter(self, args, kwargs)
        if mode != "compute":
            return self._other(self, mode, args, kwargs)
        out = self.original(*args, **kwargs)
        if self.index == 0 and not self.engine.checked_head:
            self._check(self, out, args, kwargs)
        return out

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __deepcopy__(self, memo):
        raise TypeError(_COPY_MESSAGE.format(name=type(self.engine.model).__name__, what="copied"))

    def __reduce_ex__(self, protocol):
        raise TypeError(_COPY_MESSAGE.format(name=type(self.engine.model).__name__, what="pickled"))


def _model_hook(engine: Engine):
    from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

    class _NoState(BaseState):
        def reset(self, *args, **kwargs) -> None:
            pass

    class PadeCacheHook(ModelHook):
        """Transformer-level hook: receives ``cache_context`` and the pipelines' end-of-call reset."""

        _is_stateful = True

        def __init__(self):
            super().__init__()
            self.engine = engine
            self.context = StateManager(_NoState)
            self.pre_forward = _eager(self._pre_forward)
            self.post_forward = _eager(self._post_forward)

        def _pre_forward(self, module, *args, **kwargs):
            engine.begin(args, kwargs, self.context._context)
            return args, kwargs

        def _post_forward(self, module, output):
            engine.end()
            return output

        def reset_state(self, module):
            engine.reset()
            return module

    return PadeCacheHook()


def _inner_chain(block: nn.Module):
    """diffusers' hook chain on ``block`` when it holds a context-parallel split: its innermost link.

    Such a hook shards the block's inputs; padecache must sit inside it and see the shard, as the model's own
    forward does.  (Other hooks, e.g. offloading, stay inside padecache: a skipped block need not load its
    weights.)"""
    registry = block.__dict__.get("_diffusers_hook")
    if registry is None or not registry._fn_refs:
        return None
    if not any(type(h).__name__.startswith("ContextParallel") for h in registry.hooks.values()):
        return None
    return registry._fn_refs[0]


def _wrap_block(engine: Engine, block: nn.Module, list_name: str, index: int, first: bool) -> Callable[[], None]:
    """Put a :class:`BlockForward` in front of ``block``'s forward; returns the closure that takes it out again."""
    link = _inner_chain(block)
    if link is not None:  # inside diffusers' context-parallel split, around the block's own forward
        original = link.forward
        wrapper = BlockForward(engine, block, list_name, index, first, original)
        link.forward = wrapper

        def undo_inner():
            link.forward = original

        return undo_inner
    had = "forward" in block.__dict__
    previous = block.__dict__.get("forward")
    wrapper = BlockForward(engine, block, list_name, index, first, block.forward)
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
        registry = block.__dict__.get("_diffusers_hook")
        for link in getattr(registry, "_fn_refs", ()):
            for attr in ("forward", "original_forward"):
                if getattr(link, attr, None) is wrapper:
                    setattr(link, attr, previous if had else wrapper.original)

    return undo


def _head_pre_hook(engine: Engine, stream: int):
    def hook(module, args, kwargs):
        if engine.call is None:
            return None
        if args:
            return (engine.head_input(args[0], stream), *args[1:]), kwargs
        for key in ("hidden_states", "x", "input"):
            if key in kwargs:
                return args, {**kwargs, key: engine.head_input(kwargs[key], stream)}
        return None

    return _eager(hook)


def attach(model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None,
           span: Callable[[Schedule], tuple[int, int] | None] | None = None) -> Engine:
    """Hook ``model``; everything done here is undone by :func:`detach`, in reverse order."""
    from diffusers.hooks.hooks import HookRegistry

    if engine_of(model) is not None:
        raise ValueError(f"padecache is already applied to this {type(model).__name__}; call padecache.remove(...) first")
    if getattr(model, "is_cache_enabled", False):
        raise ValueError(f"a diffusers cache is enabled on this {type(model).__name__}; call `.disable_cache()` before padecache.apply")
    blocks = adapter.blocks(model)
    heads = adapter.head_modules(model)
    for _, _, block in blocks:
        if isinstance(block.__dict__.get("forward"), BlockForward):
            raise ValueError("a block of this model is already wrapped by padecache")
    engine = Engine(model, adapter, config, source, span)

    # the transformer-level diffusers hook
    had_registry = "_diffusers_hook" in model.__dict__
    had_forward = "forward" in model.__dict__
    registry = HookRegistry.check_if_exists_or_initialize(model)
    registry.register_hook(_model_hook(engine), HOOK_NAME)

    def undo_registry():
        registry.remove_hook(HOOK_NAME, recurse=False)
        if not had_forward and "forward" in model.__dict__:
            del model.forward  # diffusers leaves the bound method as an instance attribute
        if not had_registry and not registry.hooks:
            del model._diffusers_hook

    engine.undo.append(undo_registry)

    # the blocks
    for k, (list_name, index, block) in enumerate(blocks):
        engine.undo.append(_wrap_block(engine, block, list_name, index, first=(k == 0)))

    # the head of each stream
    for stream, head in enumerate(heads):
        handle = head.register_forward_pre_hook(_head_pre_hook(engine, stream), with_kwargs=True)
        engine.undo.append(handle.remove)

    model.__dict__[_ENGINE_ATTR] = engine
    engine.undo.append(functools.partial(model.__dict__.pop, _ENGINE_ATTR, None))
    return engine


def detach(model: nn.Module) -> None:
    engine = engine_of(model)
    if engine is None:
        raise ValueError(f"padecache is not applied to this {type(model).__name__}")
    while engine.undo:
        engine.undo.pop()()
    engine.reset()
