"""The plugin's components through padecache.testing's contract suites, as any third-party plugin runs them."""

from __future__ import annotations

from padecache.testing import PolicyContract, PredictorContract


class TestResilPhase(PredictorContract):
    component = "resilphase"
    configs = [{}, {"max_order": 4, "mapping": "chebyshev"}, {"max_order": 2, "grid": "sigma"}]


class TestDiCachePredictor(PredictorContract):
    component = "dicache"
    configs = [{}, {"gamma_max": 2.0}]


class TestTeaCache(PolicyContract):
    component = "teacache"
    configs = [{}, {"model": "identity", "threshold": 0.05}, {"model": "hidream"},
               {"model": "custom", "coefficients": [2.0, 0.1], "indicator": "model_input", "warmup": 3, "last": False}]


class TestTeaCacheProbe(PolicyContract):
    component = "teacache-probe"


class TestEasyCache(PolicyContract):
    component = "easycache"
    configs = [{}, {"threshold": 0.02, "warmup": 2, "input": "stack_input", "output": "residual"}]


class TestSeaCache(PolicyContract):
    component = "seacache"
    configs = [{}, {"threshold": 0.05, "max_skips": 2, "indicator": "model_input", "power_exp": 3.0},
               {"threshold": 0.1, "filter_warmup": False, "mode": "vp"}]


class TestDiCachePolicy(PolicyContract):
    component = "dicache"
    configs = [{}, {"threshold": 0.05, "ret_ratio": 0.0, "ret_inclusive": False, "last": False}]
