"""Helpers shared by the forecasters: the grid option, grid units, batch-first stacked histories, Hermite.

State conventions (so that the engine's generic ``select(rows)`` can split a batch): every per-sample
tensor is batch-first, histories are stacked into one ``(B, n, ...)`` tensor, positions are Python floats,
and every statistic is computed per batch row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from padecache import StepContext, option

__all__ = ["combine", "grid_option", "grid_unit", "hermite_h", "normalized_position", "push", "scaled_hermite_weight"]


def grid_option():
    """The ``grid`` option: abscissa of the forecast (as padecache's built-in predictors have it)."""
    return option(
        "step",
        "str",
        choices=("step", "sigma", "timestep"),
        doc="abscissa of the forecast: step index (the papers' choice), scheduler sigma, or timestep value",
    )


def grid_unit(ctx: StepContext, grid: str) -> float:
    """Signed mean spacing of one step on ``grid`` over the whole schedule (1 on the step grid).

    Dividing positions by it expresses distances in "mean steps" on any grid, so that constants tuned on
    the step grid (HiCache's scale σ, Spectrum's domain) keep their meaning on the sigma and timestep grids,
    while the forecast still uses the real (non-uniform) spacing of the schedule.
    """
    if grid == "step" or ctx.schedule is None or ctx.num_steps < 2:
        return 1.0
    first, last = ctx.position(grid, 0), ctx.position(grid, ctx.num_steps - 1)
    unit = (last - first) / (ctx.num_steps - 1)
    return unit if unit != 0 else 1.0


def normalized_position(ctx: StepContext, grid: str, step: int | None = None) -> float:
    """Position of ``step`` on ``grid`` in mean-step units (equal to the step index on the step grid)."""
    return ctx.position(grid, step) / grid_unit(ctx, grid)


def push(stack: torch.Tensor | None, value: torch.Tensor, maxlen: int | None = None) -> torch.Tensor:
    """Append ``value`` ``(B, ...)`` to a batch-first stack ``(B, n, ...)``, keeping the newest ``maxlen``."""
    value = value.unsqueeze(1)
    out = value if stack is None else torch.cat([stack, value.to(stack.dtype)], dim=1)
    if maxlen is not None and out.shape[1] > maxlen:
        out = out[:, -maxlen:]
    return out


def combine(stack: torch.Tensor, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """``sum_i weights[i] * stack[:, i]`` for a batch-first stack ``(B, n, ...)``."""
    w = torch.as_tensor(weights, dtype=stack.dtype, device=stack.device)
    if w.numel() != stack.shape[1]:
        raise ValueError(f"{w.numel()} weights for {stack.shape[1]} stacked tensors")
    return torch.tensordot(w, stack.movedim(1, 0), dims=1)


def hermite_h(n: int, x: float) -> float:
    """Physicists' Hermite polynomial ``H_n(x)`` by ``H_{k+1} = 2x H_k - 2k H_{k-1}`` (HiCache's recurrence)."""
    if n == 0:
        return 1.0
    prev, cur = 1.0, 2.0 * x
    for k in range(1, n):
        prev, cur = cur, 2.0 * x * cur - 2.0 * k * prev
    return cur


def scaled_hermite_weight(k: int, x: float, scale: float) -> float:
    """HiCache's dual-scaled basis ``sigma^k H_k(sigma x) / k!`` (the weight of the k-th derivative estimate)."""
    return (scale**k) * hermite_h(k, scale * x) / math.factorial(k)
