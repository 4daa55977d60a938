"""Static policies print their plan for any step count; the plans match their definitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import padecache
from padecache.interfaces import mask_to_str
from padecache.plugins import get_registry


def policy(name, **options):
    cfg = padecache.load_config({"policy": {"name": name, **options}})
    return get_registry().create("policy", name, cfg.policy.options)


def test_fixed_follows_taylorseer_intervals():
    assert mask_to_str(policy("fixed", interval=5, warmup=3).mask(20)) == "###....#....#....#.."
    assert mask_to_str(policy("fixed", interval=5, warmup=2, last=False).mask(20)) == "##....#....#....#..."
    assert mask_to_str(policy("fixed", interval=4, warmup=3, last=True).mask(20)) == "###...#...#...#...##"


def test_always():
    assert policy("always").mask(7) == [True] * 7


@pytest.mark.parametrize("steps", [8, 20, 28, 50])
@pytest.mark.parametrize("speedup", [1.5, 2.0, 2.5, 10 / 3, 4.0])
@pytest.mark.parametrize("last", [False, True])
def test_budget_spends_exactly_its_budget(steps, speedup, last):
    mask = policy("budget", speedup=speedup, last=last, warmup=3, lean_passes=0).mask(steps)
    assert len(mask) == steps
    assert sum(mask) == max(1, min(steps, round(steps / speedup)))
    head = min(3, sum(mask) - int(last))  # with `last`, a small budget keeps it and shortens the warm-up
    assert all(mask[:head]) and (mask[-1] or not last)


def test_budget_shortens_warmup_before_dropping_the_last_step():
    assert mask_to_str(policy("budget", full_passes=3, last=True, warmup=3, lean_passes=0).mask(8)) == "##.....#"
    assert mask_to_str(policy("budget", full_passes=1, last=True).mask(8)) == "#......."


def test_budget_names_the_warmup_that_takes_every_pass():
    """28 steps at 10x with a three-step warm-up: all three passes are warm-up; the warning names that setting."""
    with pytest.warns(RuntimeWarning, match="all in the warm-up") as caught:
        mask = policy("budget", speedup=10, warmup=3, lean_passes=0).mask(28)
    assert mask_to_str(mask) == "###" + "." * 25
    text = str(caught[0].message)
    assert "(policy.warmup = 3)" in text and "policy.warmup = 2 or lower (a pass then comes later)" in text
    assert "policy.min_steps = 29" in text
    with pytest.warns(RuntimeWarning, match="all in the warm-up") as caught:  # 2 passes: only a one-step warm-up helps
        assert mask_to_str(policy("budget", speedup=2, warmup=3, lean_passes=0).mask(4)) == "##.."
    assert "policy.warmup = 1 or lower" in str(caught[0].message)


def test_budget_even_spread():
    # 5 free passes over (2, 17] (tail 0.1 * 20 = 2 steps left to the forecast): 2 + 15k/5 = 5, 8, 11, 14, 17
    assert mask_to_str(policy("budget", full_passes=8, warmup=3, spacing=1.0).mask(20)) == "###..#..#..#..#..#.."
    # with the final step forced: 4 passes inside (2, 19): 5.4, 8.8, 12.2, 15.6 -> 5, 9, 12, 16
    assert mask_to_str(policy("budget", full_passes=8, warmup=3, spacing=1.0, last=True).mask(20)) == "###..#...#..#...#..#"


def test_budget_default_front_loads():
    # warm-up 2; 6 passes over (1, 17] at fractions (k/6)^1.25: 2.7, 5.05, 7.7, 10.6, 13.7, 17 -> 3, 5, 8, 11, 14, 17
    assert mask_to_str(policy("budget", full_passes=8).mask(20)) == "##.#.#..#..#..#..#.."
    # at least two steps between passes: (k/9)^1.25 would put the first one at step 2, right after the warm-up;
    # the last pass round(0.7 * 28 / 11) = 2 steps before the end; rounded, the gaps are 2 2 2 3 2 3 3 4 3, and
    # with `rising_gaps` they rise: 2 2 2 2 3 3 3 3 4
    assert mask_to_str(policy("budget", full_passes=11).mask(28)) == "##.#.#.#..#.#..#..#...#..#.."
    assert mask_to_str(policy("budget", full_passes=11, rising_gaps=True).mask(28)) == "##.#.#.#.#..#..#..#..#...#.."


def _gaps(mask, first):
    on = [s for s in range(first, len(mask)) if mask[s]]
    return [b - a for a, b in zip(on, on[1:])]


@given(st.integers(1, 120).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))), st.integers(1, 4), st.booleans(),
       st.floats(0.5, 3.0), st.floats(0.0, 10.0), st.booleans())
def test_a_front_loaded_plans_gaps_never_shrink(case, warmup, last, spacing, tail_gaps, partial):
    """Rounding each pass to a step can leave a longer gap before a shorter one; ``rising_gaps`` sorts
    them: the same passes, warm-up, gaps and last pass, in rising order.  An even plan (spacing 1 or less) and a
    run that starts part-way (its plan chosen by its own study) are left as rounded (docs/methods.md)."""
    steps, passes = case
    options = dict(full_passes=passes, warmup=warmup, last=last, spacing=spacing, tail_gaps=tail_gaps,
                   partial_spacing=spacing, partial_tail_gaps=tail_gaps)
    rising = policy("budget", rising_gaps=True, **options).mask(steps, partial=partial)
    rounded = policy("budget", **options).mask(steps, partial=partial)
    if spacing <= 1.0 or partial:
        assert rising == rounded
        return
    head = next((s for s in range(steps) if not rounded[s]), steps)  # the warm-up: every step before the first skip
    first = max(head - 1, 0)
    assert rising[:first + 1] == rounded[:first + 1] and sum(rising) == sum(rounded) == passes
    assert max(s for s in range(steps) if rising[s]) == max(s for s in range(steps) if rounded[s])
    gaps = _gaps(rising, first)
    assert gaps == sorted(_gaps(rounded, first)) and gaps == sorted(gaps)


def test_budget_warms_up_with_one_step_when_the_passes_are_few():
    """At 6 passes or fewer a second warm-up step costs a pass the long rest of the run needs (with TC-Padé's
    two-residual gap rule: +1.1 to +5.1 dB at 5 passes, -0.9 to +3.7 at 6, mixed from 7 on; docs/methods.md)."""
    assert mask_to_str(policy("budget", speedup=6.0).mask(20)) == "#....#......#......."
    assert mask_to_str(policy("budget", speedup=5.0).mask(20)) == "#...#....#....#....."
    assert mask_to_str(policy("budget", speedup=4.0).mask(20)) == "#..#...#...#....#..."  # 5 passes
    assert mask_to_str(policy("budget", speedup=10 / 3).mask(20)) == "#.#..#...#...#...#.."  # 6 passes
    assert mask_to_str(policy("budget", full_passes=7).mask(20)).startswith("##")  # 7 passes: the warm-up as set
    assert mask_to_str(policy("budget", speedup=6.0, lean_passes=0).mask(20)) == "##....#............."  # the rule off
    assert mask_to_str(policy("budget", full_passes=5, lean_passes=5, warmup=3).mask(20)).startswith("#.")


def test_budget_leaves_a_share_of_the_mean_gap_to_the_forecast():
    # 0.7 mean gaps: 20 passes in 50 steps -> round(0.7 * 2.5) = 2 final steps; 8 in 50 -> round(4.375) = 4
    for passes, tail in ((20, 2), (8, 4)):
        mask = policy("budget", full_passes=passes).mask(50)
        assert sum(mask) == passes and max(i for i, m in enumerate(mask) if m) == 49 - tail
    # `tail`, a share of the steps, replaces it: 10 % of 50 steps = 5
    share = policy("budget", full_passes=20, tail=0.1).mask(50)
    assert sum(share) == 20 and max(i for i, m in enumerate(share) if m) == 44
    assert policy("budget", full_passes=20, tail_gaps=2.0).mask(50) == policy("budget", full_passes=20, tail=0.1).mask(50)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))), st.integers(1, 4), st.booleans(),
       st.floats(0.5, 3.0), st.one_of(st.none(), st.floats(0.0, 0.5)), st.floats(0.0, 10.0))
def test_budget_is_exact_for_any_settings(case, warmup, last, spacing, tail, tail_gaps):
    steps, passes = case
    mask = policy("budget", full_passes=passes, warmup=warmup, last=last, spacing=spacing, tail=tail,
                  tail_gaps=tail_gaps).mask(steps)
    assert len(mask) == steps and sum(mask) == passes and mask[0]


def test_mask_policy_and_step_count_mismatch():
    p = policy("mask", mask="##..#")
    assert p.mask(5) == [True, True, False, False, True]
    with pytest.raises(ValueError, match="plan for 5 steps but the pipeline runs 7"):
        p.mask(7)
    scaled = policy("mask", mask="##..#", scale=True).mask(10)
    assert scaled[0] and scaled[-1] and sum(scaled) == 3
    assert policy("mask", steps=[0, 2], num_steps=4).mask(4) == [True, False, True, False]


@pytest.mark.parametrize("options, message", [
    ({"mask": "##x."}, "mask"),
    ({}, "exactly one of"),
    ({"steps": [0, 9], "num_steps": 4}, "outside"),
    ({"steps": [0, 1]}, "num_steps"),
])
def test_mask_policy_validation(options, message):
    with pytest.raises(ValueError, match=message):
        policy("mask", **options)


def test_budget_spreads_a_run_that_starts_part_way_more_evenly_and_nearer_the_end():
    """img2img at strength 0.5 of 28 steps runs 14: the same passes, spread more evenly (``partial_spacing``) and
    nearer the end (``partial_tail_gaps``); fixed plans are the same either way."""
    from padecache.interfaces import mask_to_str
    from padecache.policies import BudgetPolicy, FixedPolicy

    budget = BudgetPolicy(BudgetPolicy.Config(speedup=2.5))
    assert mask_to_str(budget.mask(14)) == "#.#.#.#.#..#.."
    assert mask_to_str(budget.mask(14, partial=True)) == "#.#.#..#.#..#."
    assert mask_to_str(budget.mask(22, partial=True)) == "##.#..#.#..#..#..#..#."
    same = BudgetPolicy(BudgetPolicy.Config(speedup=2.5, partial_spacing=1.25, partial_tail_gaps=0.7))
    assert same.mask(14, partial=True) == budget.mask(14)
    fixed = FixedPolicy(FixedPolicy.Config(interval=3, warmup=2))
    assert fixed.mask(14, partial=True) == fixed.mask(14)


@pytest.mark.parametrize("options", [{"mask": ".###"}, {"mask": "0..."}, {"steps": [2, 3], "num_steps": 4}])
def test_a_mask_that_skips_the_first_step_is_refused_as_written(options):
    """The engine computes the first step whatever the plan says (nothing to forecast from): a plan that skips it
    would silently run one more pass than written, so it is an error naming the option."""
    from padecache import ConfigError

    key = "mask" if "mask" in options else "steps"
    with pytest.raises(ConfigError, match=rf"\(mask\)\.{key}: the first step must compute"):
        padecache.load_config({"policy": {"name": "mask", **options}})


def test_rising_start_moves_the_second_pass_of_a_hash_dot_dot_start_to_step_2_and_nothing_else():
    """After a one-step warm-up, a plan starting ``#..#..#`` (the first gap, forecast from one residual, as long as
    the next) takes its second pass at step 2 and plans the rest from there (docs/methods.md: +0.2 to +3.0 dB at 11
    of 12 model-points); of all plans of 4-200 steps exactly five change, none of the sweep's 20/28/50-step ones."""
    from padecache.policies.static import BudgetPolicy

    def plan(steps, passes, **kw):
        return mask_to_str(BudgetPolicy(BudgetPolicy.Config(full_passes=passes, **kw)).build_mask(steps))

    assert plan(24, 6, rising_start=False) == "#..#..#...#....#....#..."
    assert plan(24, 6) == "#.#..#...#....#.....#..."
    assert plan(15, 4) == "#.#..#....#...."
    changed = {(n, p) for n in range(4, 201) for p in range(1, n + 1) if plan(n, p) != plan(n, p, rising_start=False)}
    assert changed == {(14, 4), (15, 4), (19, 5), (23, 6), (24, 6)}
    assert all(plan(n, p).count("#") == p for n, p in changed)
