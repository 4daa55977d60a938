"""What the contract kit feeds components: step contexts as the engine builds them, residual trajectories (smooth,
each row at its own pace, or degenerate), the inputs an input-aware component reads, and the schedules stage
detectors are checked on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from padecache.interfaces import CachePolicy, Predictor, Schedule, StepContext, StepInputs
from padecache.step_inputs import declared_inputs

from .loops import STEPS

__all__ = ["TEST_SCHEDULES", "context", "trajectory", "step_inputs"]

TEST_SCHEDULES = {
    "uniform": lambda n: Schedule.uniform(n),
    # a shifted flow-matching schedule (shift 3): most steps at high noise, like SD3 / Wan
    "shifted": lambda n: Schedule([1000 * 3 * s / (1 + 2 * s) for s in (1 - i / n for i in range(n))],
                                  [3 * s / (1 + 2 * s) for s in (1 - i / n for i in range(n))]),
}


def context(step: int, num_steps: int = STEPS, history: int = 0, rows: int = 1, schedule: Schedule | None = None,
            branch: str = "main", inputs: StepInputs | None = None) -> StepContext:
    """The :class:`StepContext` the engine would pass at ``step`` (stage from the ``fraction`` detector)."""
    schedule = schedule or Schedule.uniform(num_steps)
    sigma = None if schedule.sigmas is None else schedule.sigmas[step]
    ctx = StepContext(step, num_steps, schedule.timesteps[step], sigma, branch, None, schedule, history=history, rows=rows)
    from padecache.stages import FractionStageDetector

    return StepContext(step, num_steps, ctx.timestep, sigma, branch, FractionStageDetector().stage(ctx), schedule,
                       history=history, rows=rows, inputs=inputs)


def trajectory(step: int, rows: int = 3, shape: Sequence[int] = (6, 8), dtype=torch.float32, kind: str = "smooth") -> torch.Tensor:
    """A residual trajectory: smooth and different for every row, or one of the degenerate histories
    (``constant``, ``zero``, ``alternating`` sign, ``tiny`` magnitude) a predictor must survive."""
    t = float(step)
    base = torch.linspace(-1, 1, math.prod(shape), dtype=torch.float64).reshape(1, *shape)
    scale = torch.arange(1, rows + 1, dtype=torch.float64).reshape(rows, *[1] * len(shape))
    if kind == "constant":
        out = scale * base
    elif kind == "zero":
        out = torch.zeros(rows, *shape, dtype=torch.float64)
    elif kind == "alternating":
        out = scale * base * (-1.0) ** step
    elif kind == "tiny":
        out = 1e-30 * scale * (base + 0.01 * t)
    else:  # each row at its own pace, so that a decision from one row's relative change differs between rows
        pace = 1.0 + 0.6 * torch.sin(2.0 * scale)  # 1.55, 0.55, 0.83, ...
        out = scale * (base * (1 + 0.05 * pace * t) + 0.01 * (pace * t) ** 2 * base.flip(-1)) + 0.1 * torch.sin(0.3 * t + scale)
    return out.to(dtype)


def step_inputs(component: CachePolicy | Predictor, step: int, rows: int = 3, kind: str = "smooth",
                row: int | None = None, dtype: torch.dtype = torch.float32) -> StepInputs | None:
    """(core) What the engine hands an input-aware policy or predictor at ``step``: the inputs it declares in
    ``inputs``, as smooth per-row trajectories (or the degenerate ones of ``kind``), all ``rows`` of them or ``row``
    alone, in ``dtype`` (the engine gives them in the history dtype); ``None`` for a component that declares none.
    ``first_input`` has the stack input's shape (what the always-run first blocks received), the timestep
    embeddings are ``(rows, 16)`` and ``(rows, 6, 16)``."""
    wanted = declared_inputs(getattr(component, "inputs", frozenset()))
    if not wanted:
        return None
    base, latents = trajectory(step, rows, kind=kind), trajectory(step + 1, rows, (4, 12), kind=kind)
    embedding = trajectory(step, rows, (16,), kind=kind)
    values = {"stack_input": base, "modulated": 1.0 + 0.5 * base, "model_input": latents,
              "first_input": 0.8 * base - 0.1 * trajectory(step + 2, rows, kind=kind),
              "time_embedding": embedding, "time_projection": torch.stack([(i + 1) * embedding for i in range(6)], 1)}
    return StepInputs(**{name: (v if row is None else v[row : row + 1]).to(dtype) if name in wanted else None
                         for name, v in values.items()})
