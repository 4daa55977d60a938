"""The plugin's components through padecache.testing's contract suites, as any third-party plugin runs them."""

from __future__ import annotations

from padecache.testing import PredictorContract


class TestResilPhase(PredictorContract):
    component = "resilphase"
    configs = [{}, {"max_order": 4, "mapping": "chebyshev"}, {"max_order": 2, "grid": "sigma"}]


class TestDiCachePredictor(PredictorContract):
    component = "dicache"
    configs = [{}, {"gamma_max": 2.0}]
