"""padecache: feature forecasting for diffusion transformers.

Skip the block stack of a diffusers transformer on most denoising steps and predict its residual from
earlier steps.  Three pluggable questions: what is predicted (:class:`Predictor`), when the stack runs
(:class:`CachePolicy`), which phase sampling is in (:class:`StageDetector`).

    >>> import padecache
    >>> padecache.apply(pipe, "tc-pade-fast")      # doctest: +SKIP
    >>> padecache.stats(pipe).full_passes           # doctest: +SKIP

This module imports no plotting, metrics or distributed code.
"""

from .api import apply, is_applied, remove, set_schedule, stats
from .config import CacheConfig, ConfigError, EngineConfig, OptionError, load_config, option
from .interfaces import CachePolicy, Predictor, Schedule, Stage, StageDetector, StepContext
from .plugins import get_registry, hookimpl, register_plugin, unregister_plugin
from .stats import CacheStats, StepRecord

__version__ = "0.1.0"

__all__ = [
    "apply",
    "remove",
    "stats",
    "set_schedule",
    "is_applied",
    "load_config",
    "CacheConfig",
    "EngineConfig",
    "ConfigError",
    "OptionError",
    "option",
    "Predictor",
    "CachePolicy",
    "StageDetector",
    "StepContext",
    "Schedule",
    "Stage",
    "CacheStats",
    "StepRecord",
    "hookimpl",
    "register_plugin",
    "unregister_plugin",
    "get_registry",
]
