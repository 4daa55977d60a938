"""Drive a predictor on explicit trajectories, on the step grid or on a custom (non-uniform) sigma grid."""

from __future__ import annotations

import itertools

import torch
from hypothesis import strategies as st

from padecache import Schedule, StepContext


def sigma_schedule(sigmas):
    """A schedule whose sigmas are ``sigmas`` (decreasing), timesteps 1000 sigma."""
    return Schedule([1000.0 * s for s in sigmas], list(sigmas))


def ctx_at(schedule: Schedule, step: int, history: int = 0) -> StepContext:
    sig = None if schedule.sigmas is None else schedule.sigmas[step]
    return StepContext(step, schedule.num_steps, schedule.timesteps[step], sig, schedule=schedule, history=history)


def feed(predictor, schedule, values: dict[int, torch.Tensor]):
    """Give ``predictor`` the computed residuals ``values`` (step -> tensor), in step order."""
    for n, step in enumerate(sorted(values)):
        v = values[step]
        predictor.update(ctx_at(schedule, step, n), v, torch.zeros_like(v), computed=True)
    return predictor


def at(predictor, schedule, step: int, like: torch.Tensor, history: int) -> torch.Tensor:
    return predictor.predict(ctx_at(schedule, step, history), torch.zeros_like(like))


#: strictly decreasing, non-uniform sigma grids (8-12 steps, spacings above 1e-3)
sigma_grids = (
    st.lists(st.floats(0.01, 1.0), min_size=8, max_size=12, unique=True)
    .map(lambda v: sorted(v, reverse=True))
    .filter(lambda v: min(a - b for a, b in itertools.pairwise(v)) > 1e-3)
)
