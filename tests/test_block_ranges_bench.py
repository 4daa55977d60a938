"""Block ranges in the benchmark (issue 18 item 2): families that always run the first or last blocks of the stack are
counted in block passes, exactly as ``padecache.stats`` counts them, and planned to meet the block-pass budget.

The tiny DiT pipeline has 3 blocks, so a forecast step of a run with ``first_blocks = 1`` costs 1/3 of a pass.
"""

from __future__ import annotations

import math

import pytest
import torch

import padecache
import padecache.bench as bench
from padecache.bench.families import Family, group_of, range_passes
from padecache.bench.report import budget, equal_compute

STEPS = 10
BLOCKS = 3  # tiny.dit_pipeline()


def generate(pipe, seed):
    return pipe(class_labels=[1, 2], num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                generator=torch.Generator().manual_seed(seed)).images


def mean_abs(images, full):
    return float((images - full).abs().mean())


def stats_of(pipe, config):
    padecache.apply(pipe, config)
    try:
        generate(pipe, 0)
        return padecache.stats(pipe)
    finally:
        padecache.remove(pipe)


def test_the_full_passes_of_a_block_range_are_the_most_that_meet_the_block_pass_budget():
    """Oracle: brute force over every number of full passes, in exact fractions."""
    from fractions import Fraction

    for steps in (4, 10, 20, 28, 50):
        for target in (1.5, 2.0, 2.5, 10 / 3, 4.0, 5.0, 6.0):
            for always, blocks in ((1, 3), (1, 6), (2, 6), (1, 19), (3, 57)):
                share = Fraction(always, blocks)
                cap = budget(steps, target)
                fits = [p for p in range(1, steps + 1) if p + (steps - p) * share <= cap]
                assert range_passes(steps, target, always / blocks) == (max(fits) if fits else None), (steps, target, always, blocks)
    assert range_passes(20, 2.5, 0.0) == 8  # no block range: the plain budget
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        range_passes(20, 2.5, 1.0)


def test_a_family_with_a_block_range_asks_its_schedule_for_fewer_full_passes():
    fam = Family("tc-pade F1B0", {"name": "tc-pade"}, engine={"first_blocks": 1})
    # 20 steps, 2.5x: 8 passes; a forecast step costs 1/6 of a pass on 6 blocks: 5 full passes (7.5 block passes)
    (cfg,) = fam.configs(20, 2.5, num_blocks=6)
    assert cfg["engine"] == {"first_blocks": 1} and cfg["policy"] == {"name": "budget", "speedup": 4.0}
    assert fam.configs(20, 5.0, num_blocks=6) == []  # one pass and the first block on 19 steps cost 4.17 > 4
    assert fam.configs(20, 2.5) == [{"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": 2.5},
                                     "engine": {"first_blocks": 1}}]  # blocks unknown: the target itself
    # a schedule of its own gets the planned target too
    seen = []
    own = Family("own", {"name": "noop"}, lambda steps, target: seen.append(target) or [{"name": "budget", "speedup": target}],
                 engine={"last_blocks": 2})
    own.configs(20, 2.5, num_blocks=6)  # share 1/3: P + (20 - P) / 3 <= 8 -> P = 2
    assert seen == [10.0]
    with pytest.raises(ValueError, match="nothing is left to forecast"):
        Family("x", {"name": "noop"}, engine={"first_blocks": 2, "last_blocks": 1}).configs(20, 2.5, num_blocks=3)
    # plain families are untouched
    assert Family("y", {"name": "noop"}).configs(20, 2.5, num_blocks=6)[0] == {"predictor": {"name": "noop"},
                                                                               "policy": {"name": "budget", "speedup": 2.5}}


def test_a_family_engine_section_is_checked():
    with pytest.raises(ValueError, match="engine.*config section"):
        Family.from_any({"name": "x", "predictor": {"name": "noop"}, "engine": "first_blocks=1"})
    with pytest.raises(ValueError, match="engine.first_blocks.*whole number"):
        Family.from_any({"name": "x", "predictor": {"name": "noop"}, "engine": {"first_blocks": -1}})
    with pytest.raises(ValueError, match="engine.last_blocks.*whole number"):
        Family.from_any({"name": "x", "predictor": {"name": "noop"}, "engine": {"last_blocks": 1.5}})
    assert Family.from_any({"name": "x", "predictor": {"name": "noop"}, "engine": None}).engine == {}


def test_block_range_families_report_the_block_passes_the_stats_count_within_their_budget(dit_pipe):
    """At 10 steps, 1.5x (7 passes): 5 full passes + 5 forecast steps at 1/3 = 6.6667; 1.8x (6): 4 + 6/3 = 6."""
    dicache_rows = Family("dicache-3", {"name": "dicache"}, lambda steps, target: [{"name": "dicache", "threshold": 0.4}],
                          engine={"first_blocks": 1})
    records = bench.compare(dit_pipe, generate, ["tc-pade F1B0", "tc-pade F0B1", dicache_rows], targets=(1.5, 1.8),
                            scorers={"mean_abs": mean_abs}, repeats=0, progress=False, name="tiny-dit")
    full, *runs = records
    assert full.passes == STEPS
    f1 = [r for r in runs if r.method == "tc-pade F1B0"]
    f0 = [r for r in runs if r.method == "tc-pade F0B1"]
    expected = {1.5: 5 + 5 / BLOCKS, 1.8: 4 + 6 / BLOCKS}
    for r in f1 + f0:
        assert r.status == "ok" and r.passes == pytest.approx(expected[r.target], abs=1e-4), (r.method, r.target, r.passes)
        assert r.passes <= budget(STEPS, r.target)
        assert r.pass_speedup == pytest.approx(STEPS / r.passes, abs=1e-3)
        computed = r.mask.count("#")
        assert r.passes == pytest.approx(computed + (STEPS - computed) / BLOCKS, abs=1e-4)  # forecast steps: 1 of 3 blocks
        assert r.scores["mean_abs"] > 0
    assert [r.target for r in f1] == [1.5, 1.8] and [r.target for r in f0] == [1.5, 1.8]
    assert f1[0].config["engine"]["first_blocks"] == 1 and f0[0].config["engine"]["last_blocks"] == 1
    assert f1[0].summary.endswith("+ engine(first_blocks=1)") and f0[0].summary.endswith("+ engine(last_blocks=1)")
    assert not math.isclose(f1[0].passes, round(f1[0].passes))  # fractional
    # the records' passes are what padecache.stats says, also for a policy whose rows go separate ways
    (dicache,) = [r for r in runs if r.method == "dicache-3"]
    for r in (f1[0], f1[1], f0[0], dicache):
        stats = stats_of(dit_pipe, r.config)
        assert stats.num_blocks == BLOCKS and r.passes == pytest.approx(stats.full_passes, abs=1e-4), r.method
        assert stats.block_passes == pytest.approx(stats.full_passes * BLOCKS)
    # and they count at equal block-pass cost in the tables
    assert {"tc-pade F1B0", "tc-pade F0B1"} <= set(equal_compute(records, STEPS, 1.5))
    tight = equal_compute(records, STEPS, 1.8)  # 6 passes: only the run planned for it fits
    assert tight["tc-pade F1B0"].passes == tight["tc-pade F0B1"].passes == pytest.approx(6.0)
    assert not padecache.is_applied(dit_pipe)


def test_the_dicache_family_runs_its_probe_and_apply_takes_the_dicache_preset(dit_pipe):
    from padecache.bench.methods import resolve

    (method,) = resolve(["dicache"])
    settings = method.settings(STEPS, (2.5, 4.0))
    assert settings and all(s.config["engine"]["first_blocks"] == 1 and s.config["policy"]["name"] == "dicache"
                            for s in settings)
    assert {s.plugin for s in settings} == {"inputaware"}
    padecache.apply(dit_pipe, "dicache")  # the preset: a 1-block probe
    counter = bench.PassCounter(dit_pipe.transformer)
    try:
        generate(dit_pipe, 0)
        stats = padecache.stats(dit_pipe)
    finally:
        counter.close()
        padecache.remove(dit_pipe)
    assert stats.num_blocks == BLOCKS and stats.forecast_steps > 0
    # one branch (batched guidance): the blocks that ran, a block on some rows counting their share
    assert stats.full_passes == pytest.approx(counter.count / BLOCKS) and STEPS / BLOCKS < stats.full_passes < STEPS


def test_presets_and_block_range_families_keep_their_own_groups():
    tcpade = {"name": "tc-pade"}
    assert group_of({"predictor": tcpade, "policy": {"name": "budget", "speedup": 2.86}}) == "tc-pade"
    assert group_of({"predictor": tcpade, "policy": {"name": "budget"}, "engine": {"first_blocks": 1}}) == "tc-pade F1B0"
    assert group_of({"predictor": tcpade, "policy": {"name": "budget"}, "engine": {"last_blocks": 1, "first_blocks": 0}}) == "tc-pade F0B1"
    assert group_of({"predictor": tcpade, "policy": {"name": "budget"}, "engine": {"first_blocks": 2}}) is None


def test_the_cache_dit_peer_is_planned_at_equal_block_pass_cost():
    from padecache.bench.peers import _cache_dit
    from padecache.bench.settings import RunContext

    for num_blocks, passes in ((None, 8), (6, 5)):  # 20 steps, 2.5x: 8 passes; 5 + 15/6 = 7.5 with Fn = 1 of 6
        (first, *_) = _cache_dit(RunContext(steps=20, num_blocks=num_blocks), [2.5])
        assert sum(first.config["steps_computation_mask"]) == passes
    assert _cache_dit(RunContext(steps=20, num_blocks=6), [5.0]) == []


def test_list_shows_the_block_range_families(capsys):
    from padecache.cli import main

    assert main(["list"]) == 0
    families = capsys.readouterr().out.split("\nbench families")[1].split("\nbench peers")[0].splitlines()[1:]
    listed = {line.strip().split("  ")[0] for line in families}
    assert {"tc-pade F1B0", "tc-pade F0B1", "dicache", "tc-pade"} <= listed


def test_the_cache_dit_peer_meets_the_block_pass_budget_where_it_runs(dit_pipe):
    from padecache.bench.peers import peer_status

    reason = peer_status("cache-dit")
    if reason is not None:
        pytest.skip(f"cache-dit: {reason}")
    records = bench.compare(dit_pipe, generate, ["cache-dit"], targets=(1.5,), scorers={"mean_abs": mean_abs}, repeats=0,
                            progress=False)
    runs = records[1:]
    assert runs and all(r.status == "ok" for r in runs)
    for r in runs:  # 10 steps, 1.5x: 7 passes; its first block on every step: 5 full passes + 5 / 3
        assert sum(r.config["steps_computation_mask"]) == 5
        assert r.passes == pytest.approx(5 + 5 / BLOCKS, abs=1e-4) and r.passes <= budget(STEPS, 1.5)
