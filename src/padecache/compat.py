"""Every use padecache makes of diffusers beyond its documented API, in one place.

Public diffusers API is used where it exists: ``HookRegistry`` and ``ModelHook`` (``diffusers.hooks``) for the
transformer-level hook, ``cache_context`` / ``CacheContext`` for branch names and step information,
``is_cache_enabled`` / ``enable_cache`` for stacking with diffusers' own caches.  What has no public form yet is
wrapped here, each in one function, and :func:`self_check` verifies all of it against the installed diffusers
(``tests/test_compat.py`` runs it, so a diffusers release that changes one of these fails loudly, naming it):

* ``diffusers.hooks._helpers.TransformerBlockRegistry``: the block metadata diffusers keeps for its cache hooks
  (which argument is the hidden stream, where it sits in the returned tuple);
* ``diffusers.hooks.hooks.StateManager``: the object a stateful hook must hold for ``cache_context`` to reach it
  (its ``context`` property is public, the class is not exported);
* ``HookRegistry._fn_refs``: the chain of forwards on a block, to sit inside a context-parallel split;
* ``diffusers.hooks.context_parallel.ContextParallelSplitHook`` / ``ContextParallelGatherHook``: which hooks
  shard a block's inputs;
* ``CacheMixin._cache_config``: what ``is_cache_enabled`` reads, so that diffusers sees padecache.

Nothing here is imported by ``import padecache``; diffusers is imported on first use.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

__all__ = [
    "TESTED",
    "CompatError",
    "diffusers_version",
    "version_problem",
    "block_metadata",
    "model_hook",
    "register_model_hook",
    "inner_forward_link",
    "unlink",
    "PadecacheCacheConfig",
    "mark_cache_enabled",
    "diffusers_cache_enabled",
    "refuse_diffusers_cache",
    "self_check",
]

#: the diffusers releases (major, minor), inclusive, whose internals below were checked
TESTED = ((0, 36), (0, 42))


class CompatError(RuntimeError):
    """An internal of diffusers that padecache relies on is missing or changed."""


def diffusers_version() -> tuple[int, int]:
    version = importlib.metadata.version("diffusers")
    major, minor = (int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")[:2])
    return major, minor


def version_problem() -> str | None:
    """``None`` when the installed diffusers is within :data:`TESTED`, else a sentence saying so."""
    found = diffusers_version()
    low, high = TESTED
    if low <= found <= high:
        return None
    return (f"diffusers {found[0]}.{found[1]} is outside the releases padecache was checked with "
            f"({low[0]}.{low[1]}-{high[0]}.{high[1]}); run padecache.compat.self_check() to see whether its internals changed")


# -- block metadata ----------------------------------------------------------------------------------------------

def block_metadata(block_cls: type) -> tuple[str, str, int | None, int | None] | None:
    """``(hidden argument, encoder argument, hidden index, encoder index)`` diffusers registers for ``block_cls``
    (``TransformerBlockRegistry``), or ``None`` when it has none."""
    try:
        from diffusers.hooks._helpers import TransformerBlockRegistry

        meta = TransformerBlockRegistry.get(block_cls)
    except Exception:  # noqa: BLE001 - not registered (or the registry moved: self_check says so)
        return None
    return (meta.hidden_states_argument_name, meta.encoder_hidden_states_argument_name,
            meta.return_hidden_states_index, meta.return_encoder_hidden_states_index)


# -- the transformer-level hook ----------------------------------------------------------------------------------

def model_hook(begin: Callable[[tuple, dict, Any], None], end: Callable[[Any], Any], reset: Callable[[], None],
               failed: Callable[[BaseException], None], eager: Callable[[Callable], Callable]):
    """A stateful diffusers ``ModelHook``: ``begin(args, kwargs, cache_context)`` before the transformer runs,
    ``end(output)`` after it (what it returns is the call's output), ``failed(error)`` when its forward raises,
    ``reset()`` when the pipeline resets its stateful hooks (at the end of every pipeline call).  ``eager`` keeps our
    callbacks out of ``torch.compile``."""
    from diffusers.hooks import ModelHook
    from diffusers.hooks.hooks import BaseState, StateManager

    class _NoState(BaseState):
        def reset(self, *args, **kwargs) -> None:
            pass

    class PadeCacheHook(ModelHook):
        """Transformer-level hook: receives ``cache_context`` and the pipelines' end-of-call reset."""

        _is_stateful = True

        def __init__(self):
            super().__init__()
            self.state = StateManager(_NoState)  # cache_context() sets its context
            self.pre_forward = eager(self._pre_forward)
            self.post_forward = eager(self._post_forward)
            self.new_forward = eager(self._new_forward, recursive=False)

        def _context(self):
            try:
                return self.state.context
            except ValueError:  # no cache_context around this call
                return None

        def _pre_forward(self, module, *args, **kwargs):
            begin(args, kwargs, self._context())
            return args, kwargs

        def _new_forward(self, module, *args, **kwargs):
            try:
                return self.fn_ref.original_forward(*args, **kwargs)
            except BaseException as err:
                failed(err)
                raise

        def _post_forward(self, module, output):
            return end(output)

        def reset_state(self, module):
            reset()
            return module

    return PadeCacheHook()


def register_model_hook(model, hook, name: str) -> Callable[[], None]:
    """Register ``hook`` on ``model`` through diffusers' ``HookRegistry``; returns the closure that removes it and
    leaves ``model.__dict__`` as it was."""
    from diffusers.hooks import HookRegistry

    had_registry = "_diffusers_hook" in model.__dict__
    had_forward = "forward" in model.__dict__
    registry = HookRegistry.check_if_exists_or_initialize(model)
    registry.register_hook(hook, name)

    def undo():
        registry.remove_hook(name, recurse=False)
        if not had_forward and "forward" in model.__dict__:
            del model.forward  # diffusers leaves the bound method as an instance attribute
        if not had_registry and not registry.hooks:
            del model._diffusers_hook

    return undo


# -- blocks inside a context-parallel split ----------------------------------------------------------------------

def _context_parallel_hooks() -> tuple[type, ...]:
    from diffusers.hooks.context_parallel import ContextParallelGatherHook, ContextParallelSplitHook

    return ContextParallelSplitHook, ContextParallelGatherHook


def inner_forward_link(block) -> Any | None:
    """The innermost link of diffusers' hook chain on ``block`` when that chain shards the block's inputs
    (context parallelism), else ``None``.  padecache must sit inside such a split and see the shard, as the
    block's own forward does (other hooks, e.g. offloading, stay inside padecache)."""
    registry = block.__dict__.get("_diffusers_hook")
    if registry is None or not registry._fn_refs:
        return None
    if not any(isinstance(h, _context_parallel_hooks()) for h in registry.hooks.values()):
        return None
    return registry._fn_refs[0]


def unlink(block, wrapper: Callable, replacement: Callable) -> None:
    """Take ``wrapper`` out of diffusers' hook chain on ``block`` (a hook was put on top of it since), putting
    ``replacement`` where it was."""
    registry = block.__dict__.get("_diffusers_hook")
    for link in getattr(registry, "_fn_refs", ()):
        for attr in ("forward", "original_forward"):
            if getattr(link, attr, None) is wrapper:
                setattr(link, attr, replacement)


# -- stacking with diffusers' caches -----------------------------------------------------------------------------

class PadecacheCacheConfig:
    """What diffusers' ``is_cache_enabled`` sees on a transformer padecache is applied to: ``enable_cache`` then
    refuses, naming this class.  Call ``padecache.remove(...)`` before enabling a diffusers cache."""

    def __repr__(self) -> str:
        return "PadecacheCacheConfig(padecache is applied: padecache.remove(...) before enable_cache)"


_CACHE_HOOK_MODULES = ("first_block_cache", "taylorseer_cache", "pyramid_attention_broadcast", "faster_cache",
                       "mag_cache", "sea_cache", "teacache")


def diffusers_cache_enabled(model) -> str | None:
    """The diffusers cache on ``model``, if any: one ``enable_cache`` set, or hooks one of diffusers'
    ``apply_*_cache`` functions registered (they set no config: DiT, SD3 and PixArt have no ``enable_cache``)."""
    if getattr(model, "is_cache_enabled", False):
        return "enable_cache"
    for module in model.modules():
        registry = module.__dict__.get("_diffusers_hook")
        for hook in getattr(registry, "hooks", {}).values():
            kind = type(hook).__module__.rpartition(".")[2]
            if type(hook).__module__.startswith("diffusers.hooks.") and kind in _CACHE_HOOK_MODULES:
                return f"apply_{kind}"
    return None


def refuse_diffusers_cache(model) -> None:
    """Stop ``padecache.apply`` on a model a diffusers cache already skips blocks of (the two would stack)."""
    cache = diffusers_cache_enabled(model)
    if cache:
        undo = "call `.disable_cache()`" if cache == "enable_cache" else "use a model without its hooks"
        raise ValueError(f"a diffusers cache ({cache}) is on this {type(model).__name__}; {undo} before padecache.apply")


def mark_cache_enabled(model) -> Callable[[], None]:
    """Make diffusers' ``is_cache_enabled`` true on ``model`` while padecache is applied; returns the undo."""
    if not hasattr(type(model), "is_cache_enabled"):
        return lambda: None  # not a diffusers CacheMixin: nothing to tell
    had = "_cache_config" in model.__dict__
    previous = model.__dict__.get("_cache_config")
    model._cache_config = PadecacheCacheConfig()

    def undo():
        if had:
            model._cache_config = previous
        else:
            model.__dict__.pop("_cache_config", None)

    return undo


# -- the check ---------------------------------------------------------------------------------------------------

def self_check() -> list[str]:
    """Check every internal above against the installed diffusers; returns what was checked, raises
    :class:`CompatError` naming the first thing that changed."""
    import inspect

    checked = []

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise CompatError(f"diffusers {'.'.join(map(str, diffusers_version()))} changed: {what}; padecache.compat "
                              f"must be updated (tested with {TESTED[0][0]}.{TESTED[0][1]}-{TESTED[1][0]}.{TESTED[1][1]})")
        checked.append(what)

    try:
        from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
        from diffusers.hooks.hooks import CacheContext, HookRegistry, ModelHook, StateManager
        from diffusers.models.cache_utils import CacheMixin
    except ImportError as err:
        raise CompatError(f"diffusers moved a module padecache relies on: {err}") from err
    need(callable(getattr(TransformerBlockRegistry, "get", None)), "TransformerBlockRegistry.get(block class)")
    fields = {"return_hidden_states_index", "return_encoder_hidden_states_index", "hidden_states_argument_name",
              "encoder_hidden_states_argument_name"}
    need(fields <= set(inspect.signature(TransformerBlockMetadata).parameters), "TransformerBlockMetadata's fields")
    need(isinstance(getattr(StateManager, "context", None), property), "StateManager.context (the cache context)")
    need({"name", "step_index", "num_inference_steps", "sigma"} <= set(inspect.signature(CacheContext).parameters),
         "CacheContext's fields")
    registry = HookRegistry(None)
    need(isinstance(getattr(registry, "_fn_refs", None), list), "HookRegistry._fn_refs (the chain of forwards)")
    need("new_forward" not in vars(ModelHook), "ModelHook leaves new_forward to subclasses")
    try:
        _context_parallel_hooks()
        need(True, "ContextParallelSplitHook / ContextParallelGatherHook")
    except ImportError:
        need(False, "diffusers.hooks.context_parallel.ContextParallelSplitHook / ContextParallelGatherHook")
    need(isinstance(getattr(CacheMixin, "is_cache_enabled", None), property) and "_cache_config" in vars(CacheMixin),
         "CacheMixin.is_cache_enabled reads _cache_config")
    return checked
