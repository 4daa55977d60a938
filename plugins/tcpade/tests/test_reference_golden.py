"""The `reference` variant reproduces the official TC-Padé code's behaviour (golden vectors, every step)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from padecache import Schedule, StepContext
from padecache.stages import FractionStageDetector
from padecache_tcpade import _math as pm
from padecache_tcpade.predictor import TCPadePredictor

DATA = json.loads((Path(__file__).parent / "data" / "tc_pade_reference_vectors.json").read_text())
CASES = {case["name"]: case for case in DATA["cases"]}


def replay(case):
    """The protocol of data/README.md, driving our predictor exactly as the engine does."""
    shape = case["shape"]
    steps = case["num_steps"]
    total = case["settings"]["stage_total_steps"]
    tensors = {k: [torch.tensor(v, dtype=torch.float32).reshape(shape) for v in case[k]]
               for k in ("block_input", "true_block_output")}
    predictor = TCPadePredictor(TCPadePredictor.Config(variant="reference", order=case["settings"]["order"],
                                                        history_size=case["settings"]["history_size"]))
    detector = FractionStageDetector()
    schedule = Schedule.uniform(total)
    outputs, predicted, tsis = [], [], []
    computed = 0  # what the engine passes as ctx.history
    for s in range(steps):
        x_in = tensors["block_input"][s]
        ctx = StepContext(s, total, schedule.timesteps[min(s, total - 1)], None, schedule=None)
        ctx = ctx.__class__(s, total, ctx.timestep, None, "main", detector.stage(ctx), None, history=computed)
        h = list(reversed(predictor.history))
        tsis.append(None if len(h) < 3 else float(pm.tsi(h[0], h[1], h[2])))
        use_prediction = s not in case["computed_steps"] and predictor.ready(ctx)
        if use_prediction:
            out = x_in + predictor.predict(ctx, x_in)
        else:
            out = tensors["true_block_output"][s]
        predictor.update(ctx, out - x_in, x_in, computed=not use_prediction)
        computed += not use_prediction
        outputs.append(out)
        predicted.append(use_prediction)
    return outputs, predicted, tsis


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_reproduces_golden_vectors(name):
    case = CASES[name]
    outputs, predicted, tsis = replay(case)
    assert predicted == case["predicted"]
    for s, (out, expected) in enumerate(zip(outputs, case["expected_block_output"])):
        expected = torch.tensor(expected, dtype=torch.float32).reshape(case["shape"])
        scale = expected.abs().max().item()
        err = (out - expected).abs().max().item()
        assert err <= 1e-5 * scale, f"{name} step {s}: max error {err:.3g} vs tolerance {1e-5 * scale:.3g}"
    for s, (got, want) in enumerate(zip(tsis, case["tsi"])):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, abs=1e-5), f"{name} step {s}: TSI"
