"""Gap correction: at a computed step, take back part of what the forecasts of the skipped steps before it got wrong.

Between two computed steps ``m < k`` a cache forecasts the model output of each skipped step ``i`` and an Euler
flow-matching sampler adds ``(sigma[i+1] - sigma[i]) * output_i`` to the latent.  Once step ``k`` is computed, the
outputs at ``m`` and ``k`` bracket the skipped ones: interpolated linearly in sigma between them they are closer
to what the model would have returned than the forecasts made before ``k`` was known (interpolation against
extrapolation).  The output returned at ``k`` is moved so that the next latent gains ``weight`` times the
difference (``engine.gap_correction``; docs/methods.md, "Gap correction", for what it gains and where it loses)::

    output_k += weight * sum_i (sigma[i+1] - sigma[i]) * (interpolated_i - forecast_i) / (sigma[k+1] - sigma[k])

It needs the sampler's update to be that Euler step (:attr:`padecache.Schedule.euler_sigmas`, filled for
diffusers' ``FlowMatchEulerDiscreteScheduler``); with any other scheduler nothing is corrected.  Each row keeps its
own last computed step, so one sample of a batch never changes another's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["euler_update", "gap_correction", "GapCorrector", "computed_rows", "output_tensor", "with_output_tensor"]


def euler_update(scheduler: Any) -> bool:
    """Whether ``scheduler.step`` is ``x + (sigma[k+1] - sigma[k]) * output`` on ``scheduler.sigmas``."""
    config = getattr(scheduler, "config", None)
    return (type(scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
            and not getattr(config, "stochastic_sampling", False) and not getattr(config, "invert_sigmas", False))


def gap_correction(sigmas: Sequence[float], m: int, k: int, at_m: torch.Tensor, at_k: torch.Tensor,
                   skipped: Sequence[torch.Tensor]) -> torch.Tensor:
    """The change of the output at step ``k`` that moves the next latent by the integral of (linear interpolation
    between the outputs ``at_m`` and ``at_k``, in sigma) minus ``skipped`` (the outputs returned at steps ``m+1 ..
    k-1``), on the Euler grid ``sigmas`` (one entry per step and the final one).  Float32, rows as given."""
    if len(skipped) != k - m - 1 or k - m < 2:
        raise ValueError(f"steps {m} and {k} bracket {k - m - 1} skipped steps, got {len(skipped)} outputs")
    at_m, at_k = at_m.float(), at_k.float()
    total = torch.zeros_like(at_k)
    span = sigmas[k] - sigmas[m]
    for i, forecast in zip(range(m + 1, k), skipped):
        between = torch.lerp(at_m, at_k, (sigmas[i] - sigmas[m]) / span)
        total += (sigmas[i + 1] - sigmas[i]) * (between - forecast.float())
    return total / (sigmas[k + 1] - sigmas[k])


class GapCorrector:
    """One guidance branch: each row's last computed step and the outputs returned since (float32 copies, on
    ``device``, or the output's device when it is ``None``)."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = device
        self.last: torch.Tensor | None = None  # per row: the last computed step, -1 before the first
        self.outputs: dict[int, torch.Tensor] = {}  # step -> the output returned (before any correction)
        self.step = -1

    def apply(self, step: int, output: torch.Tensor, computed: torch.Tensor, eligible: torch.Tensor,
              sigmas: Sequence[float], weight: float) -> tuple[torch.Tensor, int]:
        """``output`` of ``step`` (``computed``/``eligible``: a bool per row), corrected where a row computed after
        skipped steps; returns it and the number of rows corrected (rows whose correction is not finite are not).
        What is kept is a copy: the caller may change ``output`` in place afterwards."""
        kept = output.detach().to(device=self.device or output.device, dtype=torch.float32, copy=True)
        if self.last is None or step <= self.step or kept.shape != next(iter(self.outputs.values()), kept).shape:
            self.last, self.outputs = torch.full((len(kept),), -1, dtype=torch.long), {}  # a new run, or another layout
        self.step = step
        delta, done = None, 0
        for m in sorted({int(v) for v in self.last[computed & eligible]}):
            rows = torch.nonzero(computed & eligible & (self.last == m)).flatten()
            if m < 0 or m >= step - 1 or any(i not in self.outputs for i in range(m, step)):
                continue
            pick = rows.to(kept.device)
            change = gap_correction(sigmas, m, step, self.outputs[m][pick], kept[pick],
                                    [self.outputs[i][pick] for i in range(m + 1, step)])
            finite = torch.isfinite(change.flatten(1)).all(1)
            delta = torch.zeros_like(kept) if delta is None else delta
            delta[pick[finite]] = weight * change[finite]
            done += int(finite.sum())
        self.last[computed] = step
        oldest = int(self.last.min()) if bool((self.last >= 0).all()) else 0
        self.outputs = {i: t for i, t in self.outputs.items() if i >= oldest}  # pruned before this step's is kept
        self.outputs[step] = kept
        if delta is None:
            return output, 0
        return (output.float() + delta.to(output.device)).to(output.dtype), done


def computed_rows(plan: Any, corrects: Callable[[Any], bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a call's :class:`~padecache.engine.Plan`: whether it computed, and whether it may be corrected
    (it computed, and ``corrects(part)`` holds for its part)."""
    computed, eligible = torch.zeros(plan.batch, dtype=torch.bool), torch.zeros(plan.batch, dtype=torch.bool)
    for part in plan.parts:
        if part.compute:
            rows = slice(None) if part.rows is None else part.rows.cpu()
            computed[rows] = True
            eligible[rows] = bool(corrects(part))
    return computed, eligible


def output_tensor(output: Any) -> torch.Tensor | None:
    """The sample tensor of a transformer's output (a tensor, a tuple's first item, or ``.sample``), else None."""
    tensor = output[0] if isinstance(output, tuple) and output else getattr(output, "sample", output)
    return tensor if isinstance(tensor, torch.Tensor) else None


def with_output_tensor(output: Any, tensor: torch.Tensor) -> Any:
    """``output`` with its sample tensor replaced by ``tensor`` (the structure the model returned)."""
    if isinstance(output, torch.Tensor):
        return tensor
    if isinstance(output, tuple):
        return (tensor, *output[1:])
    output.sample = tensor  # diffusers' BaseOutput keeps its attribute and its item in step
    return output
