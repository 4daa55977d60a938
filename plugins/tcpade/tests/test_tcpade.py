"""tc-pade against hand-computed values for every stage and variant; the denominator guard; the contract."""

from __future__ import annotations

import math

import attrs
import pytest
import torch

import padecache
from padecache import Schedule, Stage, StepContext
from padecache_tcpade import _math as pm
from padecache_tcpade.predictor import TCPadePredictor

SCHED = Schedule.uniform(20)


def ctx(step, stage):
    return StepContext(step, 20, SCHED.timesteps[step], SCHED.sigmas[step], "main", stage, SCHED)


def make(variant, values, positions, **options):
    p = TCPadePredictor(TCPadePredictor.Config(variant=variant, **options))
    for v, s in zip(values, positions):
        x = torch.zeros(1, 1)
        p.update(ctx(s, Stage.EARLY), torch.full((1, 1), v), x, computed=True)
    return p


# Hand computation, paper variant, (R_{n-2}, R_{n-1}, R_n) = (0.5, 1, 2):
#   sigma = exp(-10 |2 - 1| / |2 + 1|) = exp(-10/3) = 0.0356739933
#   (2 sigma 2 - sigma 1) / (1 + (sigma/10) 0.5) = 0.1068314249; late adds 0.3 (2 - 1); early 0.9*2 + 0.1*1
PAPER = {Stage.EARLY: 1.9, Stage.MID: 0.10683142486476203, Stage.LATE: 0.40683142486476204}

# Hand computation, damped variant, R = (0.5, 1.0, 1.4) at steps (0, 4, 8), target step 10:
#   slopes D_n = 0.4/4 = 0.1, D_{n-1} = 0.5/4 = 0.125; rho = 0.1*0.125/0.125^2 = 0.8
#   sigma = 0.75*0.8 + 0.25 = 0.85; spacing = (8 - 0)/2 = 4; lambda = -ln(0.85)/4 = 0.0406297
#   1.4 + 0.1 * 2 / (1 + lambda * 2/2) = 1.5921913; with stage rules: late adds 0.3 * 0.4 * 2/4 = 0.06,
#   early is 0.9 * 1.4 + 0.1 * 1.0 = 1.36
DAMPED = {Stage.EARLY: 1.5921913181777465, Stage.MID: 1.5921913181777465, Stage.LATE: 1.5921913181777465}
DAMPED_STAGED = {Stage.EARLY: 1.36, Stage.MID: 1.5921913181777465, Stage.LATE: 1.6521913181777466}


@pytest.mark.parametrize("stage", list(Stage))
def test_paper_matches_hand_computation(stage):
    p = make("paper", [0.5, 1.0, 2.0], [0, 4, 8])
    assert p.predict(ctx(10, stage), torch.zeros(1, 1)).item() == pytest.approx(PAPER[stage], rel=1e-6)


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("staged", [False, True])
def test_damped_matches_hand_computation(stage, staged):
    p = TCPadePredictor(TCPadePredictor.Config(stage_rules=staged))
    for v, s in zip([0.5, 1.0, 1.4], [0, 4, 8]):
        p.update(ctx(s, Stage.EARLY), torch.full((1, 1), v), torch.zeros(1, 1), computed=True)
    want = (DAMPED_STAGED if staged else DAMPED)[stage]
    assert p.predict(ctx(10, stage), torch.zeros(1, 1)).item() == pytest.approx(want, rel=1e-6)


def test_damped_reuses_its_one_residual_and_the_published_forms_wait_for_three():
    """A one-step warm-up (budget plans of 4 passes or fewer): damped forecasts from one computed residual by
    reusing it; the reference and paper forms keep the three residuals their code starts from."""
    p = make("damped", [1.5], [0])
    assert p.min_history == 1 and p.predict(ctx(3, Stage.EARLY), torch.zeros(1, 1)).item() == 1.5
    assert make("reference", [1.5], [0]).min_history == make("paper", [1.5], [0]).min_history == 3


def test_damped_is_exact_on_lines_and_with_two_residuals_conservative_after_adjacent_steps_relaxing_after_a_gap():
    p = make("damped", [1.0, 3.0], [2, 3])  # two adjacent residuals: the first step's transient, 0.9 * 3 + 0.1 * 1
    assert p.predict(ctx(9, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.8)
    # a trend over a gap of 4 steps, slope 0.5, persistence unmeasured: sigma = shrink = 0.25 per gap,
    # lambda = ln(4) / 4 = 0.3465736, 3 + 0.5 * 3 / (1 + lambda * 3 / 2) = 3.9869328
    p = make("damped", [1.0, 3.0], [2, 6])
    assert p.predict(ctx(9, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(3.9869328, rel=1e-6)
    assert make("damped", [1.0, 3.0], [2, 6], stage_rules=True).predict(ctx(9, Stage.EARLY), torch.zeros(1, 1)).item() == pytest.approx(2.8)
    p = make("damped", [1.0, 2.0, 4.0], [0, 2, 6])  # slopes 0.5 and 0.5: rho = 1, sigma = 1
    assert p.predict(ctx(11, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(6.5)



def test_damped_forecasts_a_line_one_step_ahead_of_a_trend_measured_against_the_first_steps_transient():
    """After an adjacent warm-up pair, the decay measured at the third residual is against the first step's steep
    slope: one step ahead the trend is a line, further ahead it relaxes at the measured rate; from the fourth
    residual on, and when the first slope spans a gap, every forecast relaxes."""
    # R = (0, 2, 2.4) at steps (0, 1, 3): slopes 2 and 0.2, rho = 0.1, sigma = 0.325, spacing 1.5,
    # lambda = -ln(0.325) / 1.5; step 4: 2.4 + 0.2 = 2.6; step 5: 2.4 + 0.2 * 2 / (1 + lambda) = 2.6286646
    p = make("damped", [0.0, 2.0, 2.4], [0, 1, 3])
    assert p.predict(ctx(4, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.6)
    assert p.predict(ctx(5, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.6286646, rel=1e-6)
    # a fourth residual 2.7 at step 5: slopes 0.2 and 0.15, rho = 0.75, sigma = 0.8125, spacing 2,
    # lambda = -ln(0.8125) / 2; step 6: 2.7 + 0.15 / (1 + lambda / 2) = 2.8425978
    p.update(ctx(5, Stage.MID), torch.full((1, 1), 2.7), torch.zeros(1, 1), computed=True)
    assert p.predict(ctx(6, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.8425978, rel=1e-6)
    # the first slope over a gap (steps 0, 2, 4): slopes 1 and 0.2, rho = 0.2, sigma = 0.4, spacing 2;
    # step 5: 2.4 + 0.2 / (1 + lambda / 2) = 2.5627243, not the line's 2.6
    p = make("damped", [0.0, 2.0, 2.4], [0, 2, 4])
    assert p.predict(ctx(5, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.5627243, rel=1e-6)
    # a third adjacent warm-up step (steps 0, 1, 2: plans below 2x): the decay it measures is real, so one step
    # ahead relaxes too.  Slopes 2 and 0.4, rho = 0.2, sigma = 0.4, spacing 1, lambda = -ln(0.4);
    # step 3: 2.4 + 0.4 / (1 + lambda / 2) = 2.6743211, not the line's 2.8 (which cost 0.4-4.1 dB there)
    p = make("damped", [0.0, 2.0, 2.4], [0, 1, 2])
    assert p.predict(ctx(3, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(2.6743211, rel=1e-6)

def test_damped_reuses_after_a_gap_when_the_plan_holds_no_further_pass():
    """A two-pass plan: the trend over the run's only gap is not carried to the end of the run; with a pass still
    planned, or no plan to see (an adaptive policy), the gap rule forecasts as before."""
    p = make("damped", [1.0, 3.0], [2, 6])
    plan = tuple(s in (2, 6) for s in range(20))
    last = attrs.evolve(ctx(9, Stage.MID), plan=plan)
    assert last.passes_left == 0 and last.next_pass is None
    assert p.predict(last, torch.zeros(1, 1)).item() == 3.0
    more = attrs.evolve(ctx(9, Stage.MID), plan=tuple(s in (2, 6, 12) for s in range(20)))
    assert more.passes_left == 1 and more.next_pass == 12
    assert p.predict(more, torch.zeros(1, 1)).item() == pytest.approx(3.9869328, rel=1e-6)
    # three residuals: the decay is measured, and the plan changes nothing
    p = make("damped", [0.5, 1.0, 1.4], [0, 4, 8])
    end = attrs.evolve(ctx(10, Stage.MID), plan=tuple(s in (0, 4, 8) for s in range(20)))
    assert p.predict(end, torch.zeros(1, 1)).item() == pytest.approx(DAMPED[Stage.MID], rel=1e-6)


def test_damped_on_a_grid_that_runs_down_is_the_mirror_of_one_that_runs_up():
    """On the sigma grid positions decrease; a residual linear in sigma is extrapolated exactly, and a decaying trend
    is damped by the distance travelled, as on the step grid."""
    up = TCPadePredictor(TCPadePredictor.Config(grid="step"))
    down = TCPadePredictor(TCPadePredictor.Config(grid="sigma"))
    values, steps = [0.5, 1.0, 1.4], [0, 4, 8]
    for v, s in zip(values, steps):
        up.update(ctx(s, Stage.MID), torch.full((1, 1), v), torch.zeros(1, 1), computed=True)
        down.update(ctx(s, Stage.MID), torch.full((1, 1), v), torch.zeros(1, 1), computed=True)
    # the uniform schedule's sigma is affine in the step (sigma = 1 - step/20): the same forecast on both grids
    assert down.predict(ctx(10, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(DAMPED[Stage.MID], rel=1e-5)
    line = TCPadePredictor(TCPadePredictor.Config(grid="sigma"))
    for s in (0, 2, 6):
        line.update(ctx(s, Stage.MID), torch.full((1, 1), 3.0 - 2.0 * SCHED.sigmas[s]), torch.zeros(1, 1), computed=True)
    assert line.predict(ctx(11, Stage.MID), torch.zeros(1, 1)).item() == pytest.approx(3.0 - 2.0 * SCHED.sigmas[11], rel=1e-5)


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


def test_decay_pade_is_the_pade_approximant_of_a_relaxing_trend():
    """A slope decaying like e^{-lam t}: the forecast matches (1 - e^{-lam d})/lam up to O(lam^2 d^3)."""
    lam, d = 0.2, 1.5
    r_n1, r_n = torch.zeros(1, 1), torch.ones(1, 1)  # slope 1 over h = 1
    sigma = torch.tensor([math.exp(-lam * 2.0)])  # the slope keeps this share over a spacing of 2
    out = pm.decay_pade(r_n, r_n1, h=1.0, distance=d, stability=sigma, spacing=2.0).item()
    assert out == pytest.approx(1 + d / (1 + lam * d / 2), rel=1e-6)  # float32
    # x/(1 + x/2) = x - x^2/2 + x^3/4 - ... against 1 - e^{-x} = x - x^2/2 + x^3/6 - ...: the first
    # difference is x^3/12, i.e. lam^2 d^3 / 12 in displacement
    assert abs((out - 1) - (1 - math.exp(-lam * d)) / lam) < lam**2 * d**3 / 10
    fast = pm.decay_pade(r_n, r_n1, h=1.0, distance=1e6, stability=torch.tensor([1e-9]), spacing=1.0)
    assert torch.isfinite(fast).all() and fast.item() < 1.2  # a dead trend cannot run away
    accel = pm.decay_pade(r_n, r_n1, h=1.0, distance=50.0, stability=torch.tensor([1e3]), spacing=1.0)
    assert accel.item() <= 1 + 50 / 0.5  # the denominator guard bounds acceleration


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
        padecache.load_config({"predictor": {"name": "tc-pade", "variant": "paper", "lam": 0}})
    assert math.isclose(padecache.load_config({"predictor": {"name": "tc-pade"}}).predictor.options.get("lam"), 10.0)


@pytest.mark.parametrize("variant, key, value", [("damped", "lam", 5.0), ("damped", "clamp_width", [0.5, 0.1]),
                                                 ("reference", "shrink", 0.5), ("paper", "order", 3), ("damped", "den_eps", 1e-4)])
def test_an_option_of_another_variant_is_an_error(variant, key, value):
    with pytest.raises(ValueError, match=rf"{key}: applies to variant .* only, not '{variant}'"):
        padecache.load_config({"predictor": {"name": "tc-pade", "variant": variant, key: value}})
