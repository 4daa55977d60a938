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

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> submodule that defines it
_EXPORTS = {
    "apply": "api",
    "remove": "api",
    "stats": "api",
    "set_schedule": "api",
    "is_applied": "api",
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
    "CacheStats": "records",
    "StepRecord": "records",
    "hookimpl": "plugins",
    "register_plugin": "plugins",
    "unregister_plugin": "plugins",
    "get_registry": "plugins",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'padecache' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .api import apply, is_applied, remove, set_schedule, stats
    from .config import CacheConfig, EngineConfig, load_config
    from .interfaces import CachePolicy, Predictor, Schedule, Stage, StageDetector, StepContext
    from .options import ConfigError, OptionError, option
    from .plugins import get_registry, hookimpl, register_plugin, unregister_plugin
    from .records import CacheStats, StepRecord
