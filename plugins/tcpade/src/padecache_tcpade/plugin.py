"""pluggy hooks of the TC-Padé plugin: what it adds to padecache's registry."""

from __future__ import annotations

import padecache

from .pade_fit import PadeFitPredictor
from .predictor import TCPadePredictor
from .stage import SigmaStageDetector
from .tsi import TSIPolicy

__version__ = "0.1.0"


@padecache.hookimpl
def padecache_predictors():
    return [TCPadePredictor, PadeFitPredictor]


@padecache.hookimpl
def padecache_policies():
    return [TSIPolicy]


@padecache.hookimpl
def padecache_stage_detectors():
    return [SigmaStageDetector]


@padecache.hookimpl
def padecache_presets():
    return {
        "tc-pade-fast": {
            "summary": "TC-Padé (damped) with the TSI policy, about 2.9x fewer passes at 20 steps",
            "predictor": {"name": "tc-pade"},
            "policy": {"name": "tsi", "interval": 5, "warmup": 3, "last": True, "threshold": 0.95},
            "stage": {"name": "fraction"},
        },
        "tc-pade-slow": {
            "summary": "TC-Padé (damped) with the TSI policy, about 2.2x fewer passes at 20 steps",
            "predictor": {"name": "tc-pade"},
            "policy": {"name": "tsi", "interval": 4, "warmup": 3, "last": True, "threshold": 0.9},
            "stage": {"name": "fraction"},
        },
    }
