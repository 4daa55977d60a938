"""pluggy hooks of the forecasters plugin: what it adds to padecache's registry."""

from __future__ import annotations

import padecache

from .foca import FoCaPredictor
from .freqca import FreqCaPredictor
from .hicache import HiCachePredictor
from .magcache import MagCachePolicy
from .spectrum import SpectrumPredictor, SpectrumWindowPolicy

__version__ = "0.1.0"


@padecache.hookimpl
def padecache_predictors():
    return [SpectrumPredictor, HiCachePredictor, FoCaPredictor, FreqCaPredictor]


@padecache.hookimpl
def padecache_policies():
    return [SpectrumWindowPolicy, MagCachePolicy]


@padecache.hookimpl
def padecache_presets():
    # The papers' settings were published for 50 steps (FLUX.1-dev); the TaylorSeer-style intervals below are
    # counted from the last warm-up step, as padecache's `fixed` policy does (`padecache mask fixed ...`).
    return {
        "spectrum": {
            "summary": "Spectrum (CVPR 2026): Chebyshev ridge M=4, lambda=0.1, w=1; flexible window N=2, alpha=0.75, "
                       "5 warm-up steps (14 passes in 50 steps, 3.6x)",
            "predictor": {"name": "spectrum"},
            "policy": {"name": "spectrum-window", "warmup": 5, "window": 2.0, "flex": 0.75},
        },
        "spectrum-fast": {
            "summary": "Spectrum, the paper's alpha=3 setting (10 passes in 50 steps, 5x)",
            "predictor": {"name": "spectrum"},
            "policy": {"name": "spectrum-window", "warmup": 5, "window": 2.0, "flex": 3.0},
        },
        "hicache": {
            "summary": "HiCache: scaled Hermite order 2, sigma=0.5; interval 7 after 3 warm-up steps (the paper's "
                       "FLUX setting, 9 passes in 50 steps)",
            "predictor": {"name": "hicache", "order": 2, "scale": 0.5},
            "policy": {"name": "fixed", "interval": 7, "warmup": 3},
        },
        "foca": {
            "summary": "FoCa: BDF2 forecast + Heun calibration; interval 7 after 3 warm-up steps (9 passes in 50 "
                       "steps, the paper's 5.5x on FLUX)",
            "predictor": {"name": "foca"},
            "policy": {"name": "fixed", "interval": 7, "warmup": 3},
        },
        "freqca": {
            "summary": "FreqCa: low band reused, high band by second-order Hermite; interval 8 after 3 warm-up "
                       "steps (8 passes in 50 steps, 6.25x: the paper's 6-7x on FLUX)",
            "predictor": {"name": "freqca"},
            "policy": {"name": "fixed", "interval": 8, "warmup": 3},
        },
        "magcache": {
            "summary": "MagCache's error rule with online magnitude ratios, threshold set by a 2.5x pass budget, "
                       "reusing the last residual (MagCache's own forecast)",
            "predictor": {"name": "noop"},
            "policy": {"name": "magcache", "speedup": 2.5},
        },
    }


@padecache.hookimpl
def padecache_bench_families():
    from .bench import FAMILIES  # plain dicts: the benchmark itself is imported only when it runs

    return FAMILIES
