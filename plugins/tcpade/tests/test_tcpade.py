"""tc-pade against hand-computed values for every stage and variant; the denominator guard; the contract."""

from __future__ import annotations

import math

import pytest
import torch

import padecache
from padecache import Schedule, Stage, StepContext
from padecache_tcpade import _math as pm
from padecache_tcpade.predictor import TCPadePredictor

SCHED = Schedule.uniform(20)


def ctx(step, stage):
    return StepContext(step, 20, SCHED.timesteps[step], SCHED.sigmas[step], "main", stage, SCHED)


def make(variant, values, positions):
    p = TCPadePredictor(TCPadePredictor.Config(variant=variant))
    for v, s in zip(values, positions):
        x = torch.zeros(1, 1)
        p.update(ctx(s, Stage.EARLY), torch.full((1, 1), v), x, computed=True)
    return p


# Hand computation (R_{n-2}, R_{n-1}, R_n) = (0.5, 1, 2):
#   sigma = exp(-10 |2 - 1| / |2 + 1|) = exp(-10/3) = 0.0356739933
#   paper:  (2 sigma 2 - sigma 1) / (1 + (sigma/10) 0.5) = 0.1068314249; late adds 0.3 (2 - 1)
#   damped (R_{n-1} at step 4, R_n at step 8, target 10: h = 4, d = 2):
#           2 + (1/4) 2 / (1 + (1 - sigma) 2/4) = 2.3373448122; late adds 0.3 (1/4) 2 = 0.15
#   early (all variants): 0.9 * 2 + 0.1 * 1 = 1.9
HAND = {
    ("paper", Stage.EARLY): 1.9,
    ("paper", Stage.MID): 0.10683142486476203,
    ("paper", Stage.LATE): 0.40683142486476204,
    ("damped", Stage.EARLY): 1.9,
    ("damped", Stage.MID): 2.3373448121953286,
    ("damped", Stage.LATE): 2.4873448121953285,
}


@pytest.mark.parametrize("variant, stage", sorted(HAND, key=str))
def test_paper_and_damped_match_hand_computation(variant, stage):
    p = make(variant, [0.5, 1.0, 2.0], [0, 4, 8])
    got = p.predict(ctx(10, stage), torch.zeros(1, 1)).item()
    assert got == pytest.approx(HAND[(variant, stage)], rel=1e-6)


def test_reference_matches_hand_computation_in_every_stage():
    # three residuals: order 3 needs 4, so the weighted fallback runs:
    #   0.8 (clip of 1/(1 + 10 |2 - 1|)) * (4/9 * 2 + 3/9 * 1 + 2/9 * 0.5) = 1.0666666667
    p = make("reference", [0.5, 1.0, 2.0], [0, 1, 2])
    assert p.predict(ctx(10, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(1.0666666666666669, rel=1e-6)
    # four residuals: the Pade core. s = exp(-5 * 1 / 1.5); r = (2 s 2 - s 1) / (1 - 0.1 s) = 0.1074 is
    # clamped to m - d = 1.6 - 0.5 = 1.1, then blended: w = 0.7 s + 0.3, w 1.1 + (1 - w) 1.6 = 1.4375140996
    p = make("reference", [0.25, 0.5, 1.0, 2.0], [0, 1, 2, 3])
    assert p.predict(ctx(10, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(1.4375140995538178, rel=1e-6)
    assert p.predict(ctx(18, Stage.LATE), torch.zeros(1, 1)).item() == pytest.approx(1.7375140995538179, rel=1e-6)
    assert p.predict(ctx(5, Stage.EARLY), torch.zeros(1, 1)).item() == pytest.approx(1.9, rel=1e-6)


def test_reference_adds_the_input_delta_and_feeds_predictions_back():
    p = make("reference", [0.5, 1.0, 2.0], [0, 1, 2])  # last input was 0
    x_in = torch.full((1, 1), 10.0)
    pred = p.predict(ctx(5, Stage.EARLY), x_in)
    assert pred.item() == pytest.approx(1.9 + 0.2 * 10.0)
    p.update(ctx(5, Stage.EARLY), pred, x_in, computed=False)
    assert len(p.history) == 4 and p.history[-1].item() == pytest.approx(3.9)


def test_paper_denominator_guard():
    sigma = torch.tensor([1.0])
    r_n2 = torch.full((1, 3), -10.0)  # 1 + (1/10)(-10) = 0: a pole
    r_n2[0, 1] = 0.0
    pred, guarded = pm.paper_pade(torch.ones(1, 3), torch.ones(1, 3), r_n2, sigma, lam=10.0, den_eps=1e-5)
    assert guarded.tolist() == [[True, False, True]]
    assert torch.isfinite(pred).all()
    assert pred[0, 0].item() == pytest.approx(1.0 / 1e-5)  # numerator 2 - 1 = 1 over the guard value
    assert pred[0, 1].item() == pytest.approx(1.0)


def test_a_paper_pole_in_a_generation_falls_back_and_is_counted(dit_pipe):
    """The guarded value is finite but enormous: the engine rejects it and computes the step."""
    import tiny

    padecache.apply(dit_pipe, {"predictor": {"name": "tc-pade", "variant": "paper", "lam": 0.05},
                               "policy": {"name": "fixed", "interval": 4, "warmup": 3}})
    try:
        out = tiny.run_dit(dit_pipe, steps=12)
        stats = padecache.stats(dit_pipe)
    finally:
        padecache.remove(dit_pipe)
    assert torch.isfinite(out).all()
    assert stats.fallbacks >= 1 and all(r.computed for r in stats.records if r.reason == "fallback")


def test_damped_has_no_pole_for_any_stability():
    r_n1, r_n = torch.randn(4, 8), torch.randn(4, 8)
    for s in (0.0, 0.3, 1.0):
        out = pm.damped_rational(r_n, r_n1, gap=2.0, distance=7.0, sigma=torch.full((4,), s))
        assert torch.isfinite(out).all()
    saturated = pm.damped_rational(r_n, r_n1, gap=2.0, distance=1e9, sigma=torch.zeros(4))
    torch.testing.assert_close(saturated, r_n + (r_n - r_n1), rtol=1e-5, atol=1e-5)  # at most one gap's increment


@pytest.mark.parametrize("variant", ["reference", "paper", "damped"])
def test_contract_per_variant(variant):
    """Rows are independent and predictions finite for every variant (the engine's contract)."""
    torch.manual_seed(0)
    traj = [torch.randn(3, 5, 4) * 0.1 + k * torch.ones(3, 5, 4) for k in range(5)]
    full = TCPadePredictor(TCPadePredictor.Config(variant=variant))
    for k, s in enumerate([0, 1, 2, 5, 8]):
        full.update(ctx(s, Stage.MID), traj[k], torch.zeros(3, 5, 4), computed=True)
    pred = full.predict(ctx(10, Stage.MID), torch.zeros(3, 5, 4))
    assert torch.isfinite(pred).all()
    for row in range(3):
        single = TCPadePredictor(TCPadePredictor.Config(variant=variant))
        for k, s in enumerate([0, 1, 2, 5, 8]):
            single.update(ctx(s, Stage.MID), traj[k][row : row + 1], torch.zeros(1, 5, 4), computed=True)
        torch.testing.assert_close(single.predict(ctx(10, Stage.MID), torch.zeros(1, 5, 4))[0], pred[row])


def test_bad_options():
    with pytest.raises(ValueError, match="variant: must be one of"):
        padecache.load_config({"predictor": {"name": "tc-pade", "variant": "oficial"}})
    with pytest.raises(ValueError, match="alpha: needs two numbers"):
        padecache.load_config({"predictor": {"name": "tc-pade", "alpha": [1.0]}})
    with pytest.raises(ValueError, match="lam: must be > 0"):
        padecache.load_config({"predictor": {"name": "tc-pade", "lam": 0}})
    assert math.isclose(padecache.load_config({"predictor": {"name": "tc-pade"}}).predictor.options.lam, 10.0)
