"""padecache-inputaware: the input-aware caches serving engines ship, as padecache components.

Policies ``teacache`` (with every polynomial the official code publishes, :data:`TEACACHE_MODELS`, chosen per
family by default (:data:`FAMILY_MODELS`), and
:func:`calibrate_teacache` for the others), ``easycache``, ``seacache`` and ``dicache``; predictors ``dicache``
(trajectory alignment) and ``resilphase`` (barycentric Lagrange on a phase axis).  See docs/methods.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "calibrate_teacache": "calibrate",
    "TeaCacheCalibration": "calibrate",
    "fit_polynomial": "calibrate",
    "TEACACHE_MODELS": "teacache",
    "FAMILY_MODELS": "teacache",
    "TeaCacheModel": "teacache",
    "TeaCachePolicy": "teacache",
    "EasyCachePolicy": "easycache",
    "SeaCachePolicy": "seacache",
    "DiCachePolicy": "dicache",
    "DiCachePredictor": "dicache",
    "ResilPhasePredictor": "resilphase",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:  # PEP 562: importing the package imports neither torch nor numpy
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .calibrate import TeaCacheCalibration, calibrate_teacache, fit_polynomial
    from .dicache import DiCachePolicy, DiCachePredictor
    from .easycache import EasyCachePolicy
    from .resilphase import ResilPhasePredictor
    from .seacache import SeaCachePolicy
    from .teacache import FAMILY_MODELS, TEACACHE_MODELS, TeaCacheModel, TeaCachePolicy
