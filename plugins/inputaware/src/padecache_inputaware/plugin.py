"""pluggy hooks of the input-aware plugin: what it adds to padecache's registry."""

from __future__ import annotations

import attrs

import padecache

from .dicache import DiCachePolicy, DiCachePredictor
from .easycache import EasyCachePolicy
from .resilphase import ResilPhasePredictor
from .seacache import SeaCachePolicy
from .teacache import TeaCachePolicy, TeaCacheProbe

__version__ = "0.1.0"


def engine_has(option: str) -> bool:
    """Whether this padecache's ``[engine]`` section has ``option`` (partial block ranges came with issue 18)."""
    from padecache.config import EngineConfig

    return any(f.name == option for f in attrs.fields(EngineConfig))


@padecache.hookimpl
def padecache_predictors():
    return [DiCachePredictor, ResilPhasePredictor]


@padecache.hookimpl
def padecache_policies():
    return [TeaCachePolicy, TeaCacheProbe, EasyCachePolicy, SeaCachePolicy, DiCachePolicy]


@padecache.hookimpl
def padecache_presets():
    presets = {
        "teacache": {
            "summary": "TeaCache (CVPR 2025) as published for the model's family (FLUX: polynomial-rescaled relative "
                       "L1 of the first block's modulated input, threshold 0.6, the code's 2x; FLUX's with a warning "
                       "where none is published), reusing the last residual",
            "predictor": {"name": "noop"},
            "policy": {"name": "teacache"},
        },
        "easycache": {
            "summary": "EasyCache: runtime transformation rate, threshold 0.05 and 10 warm-up steps (the Wan 2.1 code), "
                       "reusing the last residual",
            "predictor": {"name": "noop"},
            "policy": {"name": "easycache"},
        },
        "seacache": {
            "summary": "SeaCache (CVPR 2026) as published for FLUX: TeaCache's rule on SEA-filtered modulated inputs, "
                       "threshold 0.3 (the code's 2x), reusing the last residual",
            "predictor": {"name": "noop"},
            "policy": {"name": "seacache"},
        },
        "resilphase": {
            "summary": "ResilPhase (ECCV 2026) as published for FLUX: barycentric Lagrange order 1 on the balanced phase "
                       "axis, a pass every 6 steps after 3 warm-up steps",
            "predictor": {"name": "resilphase"},
            "policy": {"name": "fixed", "interval": 6, "warmup": 3},
        },
        "resilphase-dit": {
            "summary": "ResilPhase as published for DiT: order 4 on Chebyshev nodes, a pass every 4 steps after 2",
            "predictor": {"name": "resilphase", "max_order": 4, "mapping": "chebyshev"},
            "policy": {"name": "fixed", "interval": 4, "warmup": 2},
        },
    }
    if engine_has("first_blocks"):  # DiCache's probe is the always-run first block
        presets["dicache"] = {
            "summary": "DiCache as published for FLUX: a 1-block probe, accumulated probe change (delta_y) against 0.4, "
                       "20 % warm-up, residuals moved along the probe's trajectory",
            "predictor": {"name": "dicache"},
            "policy": {"name": "dicache"},
            "engine": {"first_blocks": 1},
        }
    return presets


@padecache.hookimpl
def padecache_bench_families():
    from .bench import families  # plain dicts: loading the plugin imports no benchmark code

    return families()  # DiCache's with an `engine` section: its 1-block probe
