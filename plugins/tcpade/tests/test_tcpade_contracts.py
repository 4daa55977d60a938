"""TC-Padé's components through padecache.testing's contract suites, as any third-party plugin would test them."""

from __future__ import annotations

from padecache.testing import PolicyContract, PredictorContract, StageDetectorContract


class TestTCPade(PredictorContract):
    component = "tc-pade"
    configs = [{}, {"variant": "reference"}, {"variant": "paper"}, {"stage_rules": True, "grid": "sigma"}]


class TestPadeFit(PredictorContract):
    component = "pade-fit"
    configs = [{}, {"m": 2, "n": 1}]


class TestTSI(PolicyContract):
    component = "tsi"
    configs = [{}, {"threshold": 0.3, "interval": 0, "skip_when": "above"}, {"threshold": 1.4, "include_predicted": True}]


class TestSigma(StageDetectorContract):
    component = "sigma"
