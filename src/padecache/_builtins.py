"""Built-in components, presets and adapters, registered through the same pluggy hooks as any plugin."""

from __future__ import annotations

from .adapters.families import BUILTIN_ADAPTERS
from .markers import hookimpl
from .policies import AlwaysPolicy, BudgetPolicy, FixedPolicy, MaskPolicy
from .predictors import LinearPredictor, NoopPredictor, TaylorPredictor
from .stages import FractionStageDetector


@hookimpl
def padecache_predictors():
    return [NoopPredictor, LinearPredictor, TaylorPredictor]


@hookimpl
def padecache_policies():
    return [AlwaysPolicy, FixedPolicy, MaskPolicy, BudgetPolicy]


@hookimpl
def padecache_stage_detectors():
    return [FractionStageDetector]


@hookimpl
def padecache_presets():
    return {
        "none": {
            "summary": "caching off: every step runs the block stack",
            "predictor": {"name": "noop"},
            "policy": {"name": "always"},
        },
        "fora": {
            "summary": "FORA-style reuse of the last residual, computing every 3rd step",
            "predictor": {"name": "noop"},
            "policy": {"name": "fixed", "interval": 3, "warmup": 2, "last": False},
        },
        "taylorseer": {
            "summary": "TaylorSeer as published for FLUX: order 2, N=5, 3 warm-up steps (its own recursion)",
            "predictor": {"name": "taylor", "order": 2, "mode": "taylorseer"},
            "policy": {"name": "fixed", "interval": 5, "warmup": 3, "last": False},
        },
        "default": {
            "summary": "first-order forecast of the block-stack residual at 2.5x fewer passes, with gap correction",
            "predictor": {"name": "taylor", "order": 1},
            "policy": {"name": "budget", "speedup": 2.5},
            "engine": {"gap_correction": 0.5},
        },
    }


@hookimpl
def padecache_adapters():
    return list(BUILTIN_ADAPTERS)
