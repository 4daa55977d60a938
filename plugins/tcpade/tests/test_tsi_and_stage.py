"""The TSI policy and the sigma stage detector."""

from __future__ import annotations

import math

import pytest
import torch

import padecache
from padecache import Schedule, Stage, StepContext
from padecache.plugins import get_registry
from padecache_tcpade import _math as pm


def test_tsi_geometry():
    straight = [torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])]
    assert pm.tsi(straight[2], straight[1], straight[0]).item() == pytest.approx(0.0)
    reversal = [torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])]
    assert pm.tsi(reversal[2], reversal[1], reversal[0]).item() == pytest.approx(1.0)
    corner = [torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])]
    assert pm.tsi(corner[2], corner[1], corner[0]).item() == pytest.approx(math.sqrt(2) / 2)


def policy(**options):
    cfg = padecache.load_config({"policy": {"name": "tsi", **options}})
    return get_registry().create("policy", "tsi", cfg.policy.options)


def feed(p, points):
    sched = Schedule.uniform(20)
    for s, pt in enumerate(points):
        p.observe(StepContext(s, 20, sched.timesteps[s], sched.sigmas[s], schedule=sched), torch.tensor([pt]), computed=True)


def at(step):
    sched = Schedule.uniform(20)
    return StepContext(step, 20, sched.timesteps[step], sched.sigmas[step], schedule=sched)


def test_sharp_turn_forces_a_refresh_with_the_official_comparison():
    p = policy(threshold=0.5, interval=0, warmup=3, last=True)
    feed(p, [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # a right angle: TSI = 0.707
    assert p.should_compute(at(5)) and p.indicators()["tsi"] == pytest.approx(math.sqrt(2) / 2)
    q = policy(threshold=0.5, interval=0)
    feed(q, [[0.0, 0.0], [1.0, 0.0], [2.0, 0.1]])  # nearly straight
    assert not q.should_compute(at(5))
    r = policy(threshold=0.5, interval=0, skip_when="above")  # the paper notes' reading
    feed(r, [[0.0, 0.0], [1.0, 0.0], [2.0, 0.1]])
    assert r.should_compute(at(5))


def test_official_threshold_never_fires_and_schedule_heads_are_computed():
    p = policy(threshold=1.4)  # the official code's value: above max TSI = 1
    feed(p, [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # a full reversal, TSI = 1
    plan = [bool(p.should_compute(at(s))) for s in range(20)]
    assert [s for s, c in enumerate(plan) if c] == [0, 1, 2, 4, 8, 12, 16, 19]


def test_the_default_threshold_fires_on_a_sharp_turn():
    p = policy()
    feed(p, [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # a full reversal, TSI = 1 > 0.7
    assert bool(p.should_compute(at(5)))
    q = policy()
    feed(q, [[0.0, 0.0], [1.0, 0.0], [2.0, 0.1]])  # nearly straight on: TSI = 0.05
    assert not bool(q.should_compute(at(5)))


def test_tsi_decides_per_row():
    p = policy(threshold=0.5, interval=0)
    feed(p, [[[0.0, 0.0]], [[1.0, 0.0]], [[2.0, 0.0]]])
    assert p.should_compute(at(6)).tolist() == [False]
    rows = [torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0], [1.0, 1.0]])]
    q = policy(threshold=0.5, interval=0)
    sched = Schedule.uniform(20)
    for s, r in enumerate(rows):
        q.observe(StepContext(s, 20, sched.timesteps[s], sched.sigmas[s], schedule=sched), r, computed=True)
    assert q.should_compute(at(6)).tolist() == [False, True]  # row 1 turned by 45 degrees: it alone refreshes


def test_sigma_stages_follow_the_noise_level_on_a_shifted_schedule():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from padecache.schedule import SchedulerSource

    sched = FlowMatchEulerDiscreteScheduler(shift=7.0)
    sched.set_timesteps(20)
    schedule = SchedulerSource(sched).current()
    by_sigma = get_registry().create("stage", "sigma").stages(schedule)
    by_fraction = get_registry().create("stage", "fraction").stages(schedule)
    n_early = by_sigma.count(Stage.EARLY)
    assert n_early > by_fraction.count(Stage.EARLY)  # shift 7 keeps most steps at high noise
    for stage, sigma in zip(by_sigma, schedule.sigmas):
        expected = Stage.EARLY if sigma >= 0.7 else Stage.LATE if sigma < 0.2 else Stage.MID
        assert stage == expected
    uniform = Schedule.uniform(20)
    assert get_registry().create("stage", "sigma").stages(uniform) == get_registry().create("stage", "fraction").stages(uniform)


def test_sigma_stage_without_sigmas_explains():
    with pytest.raises(ValueError, match="use stage = 'fraction'"):
        get_registry().create("stage", "sigma").stage(StepContext(0, 10, 999.0, None))


def _two_shards(fn, *tensors):
    """``fn(*shard, reduce=...)`` on the first half of the tokens, its ``reduce`` adding the second half's partial
    sums: what rank 0 of a two-rank sequence-parallel group computes."""
    n = tensors[0].shape[1] // 2
    second = []
    fn(*(t[:, n:] for t in tensors), reduce=lambda sums: second.append(sums) or sums)
    return fn(*(t[:, :n] for t in tensors), reduce=lambda sums: sums + second.pop(0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_published_forms_norms_from_shards_equal_the_whole_sequences(seed):
    """TSI, the stability scalar, the paper's sigma and the adaptive order from two shards' reduced partial sums are
    the unsharded values (oracle: the formulas on the whole tensors)."""
    g = torch.Generator().manual_seed(seed)
    r2 = torch.randn(3, 8, 4, generator=g, dtype=torch.float64)
    r1 = r2 + 0.1 * torch.randn(3, 8, 4, generator=g, dtype=torch.float64)
    r0 = r1 + 0.1 * torch.randn(3, 8, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_two_shards(pm.tsi, r0, r1, r2), pm.tsi(r0, r1, r2), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(_two_shards(pm.official_stability_scalar, r0, r1), pm.official_stability_scalar(r0, r1))
    torch.testing.assert_close(_two_shards(pm.paper_sigma, r0, r1), pm.paper_sigma(r0, r1), rtol=1e-6, atol=1e-9)
    order = _two_shards(lambda a, b, c, reduce: pm.official_adaptive_order([a, b, c], 4, reduce=reduce), r0, r1, r2)
    assert order == pm.official_adaptive_order([r0, r1, r2], 4) == 4  # the trajectories are nearly collinear
    far = torch.randn(3, 8, 4, generator=g, dtype=torch.float64)
    assert _two_shards(lambda a, b, c, reduce: pm.official_adaptive_order([a, b, c], 4, reduce=reduce), far, r1, r2) \
        == pm.official_adaptive_order([far, r1, r2], 4) == 2
