"""The built-in components through padecache.testing's contract suites, exactly as a plugin author runs them."""

from __future__ import annotations

from padecache.testing import PolicyContract, PredictorContract, StageDetectorContract


class TestNoop(PredictorContract):
    component = "noop"


class TestLinear(PredictorContract):
    component = "linear"
    configs = [{}, {"grid": "sigma"}]
    families = ("dit", "flux", "wan")


class TestTaylor(PredictorContract):
    component = "taylor"
    configs = [{}, {"order": 2}, {"order": 3, "mode": "taylorseer"}, {"order": 0, "grid": "timestep"}]


class TestAlways(PolicyContract):
    component = "always"


class TestFixed(PolicyContract):
    component = "fixed"
    configs = [{}, {"interval": 5, "warmup": 3, "last": True}]


class TestBudget(PolicyContract):
    component = "budget"
    configs = [{}, {"speedup": 6.0, "spacing": 1.0}, {"full_passes": 3, "last": True}]


class TestMask(PolicyContract):
    component = "mask"
    configs = [{"mask": "##.#..#.", "scale": True}, {"steps": [0, 1, 5], "num_steps": 8, "scale": True}]


class TestFraction(StageDetectorContract):
    component = "fraction"
    configs = [{}, {"early": 0.1, "late": 0.5}]
