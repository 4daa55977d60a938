"""padecache: feature forecasting for diffusion transformers.

Skip the block stack of a diffusers transformer on most denoising steps and predict its residual from
earlier steps.  Three pluggable questions: what is predicted (:class:`Predictor`), when the stack runs
(:class:`CachePolicy`), which phase sampling is in (:class:`StageDetector`).

    >>> import padecache
    >>> padecache.apply(pipe, "tc-pade-fast")      # doctest: +SKIP
    >>> padecache.stats(pipe).full_passes           # doctest: +SKIP

The public names are resolved on first use (PEP 562), so ``import padecache`` -- and the command line's
``--help`` -- import neither torch nor diffusers.  Nothing here imports plotting, metrics or distributed code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> submodule that defines it
_EXPORTS = {
    "apply": "api",
    "remove": "api",
    "stats": "api",
    "set_schedule": "api",
    "is_applied": "api",
    "reset": "api",
    "load_config": "config",
    "CacheConfig": "config",
    "EngineConfig": "config",
    "ConfigError": "options",
    "OptionError": "options",
    "option": "options",
    "Predictor": "interfaces",
    "CachePolicy": "interfaces",
    "StageDetector": "interfaces",
    "StepContext": "interfaces",
    "Schedule": "interfaces",
    "Stage": "interfaces",
    "ComponentError": "errors",
    "ThreadConflictError": "errors",
    "StepInputs": "interfaces",
    "CacheStats": "records",
    "StepRecord": "records",
    "hookimpl": "plugins",
    "register_plugin": "plugins",
    "unregister_plugin": "plugins",
    "get_registry": "plugins",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .api import apply, is_applied, remove, reset, set_schedule, stats
    from .config import CacheConfig, EngineConfig, load_config
    from .errors import ComponentError, ThreadConflictError
    from .interfaces import CachePolicy, Predictor, Schedule, Stage, StageDetector, StepContext, StepInputs
    from .options import ConfigError, OptionError, option
    from .plugins import get_registry, hookimpl, register_plugin, unregister_plugin
    from .records import CacheStats, StepRecord
