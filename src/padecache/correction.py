"""Gap correction: at a computed step, take back part of what the forecasts of the skipped steps before it got wrong.

Between two computed steps ``m < k`` a cache forecasts the model output of each skipped step ``i`` and an Euler
flow-matching sampler adds ``(sigma[i+1] - sigma[i]) * output_i`` to the latent.  Once step ``k`` is computed, the
outputs at ``m`` and ``k`` bracket the skipped ones: interpolated linearly in sigma between them they are closer
to what the model would have returned than the forecasts made before ``k`` was known (interpolation against
extrapolation).  The output returned at ``k`` is moved so that the next latent gains ``weight`` times the
difference (``engine.gap_correction``; docs/methods.md, "Gap correction", for what it gains and where it loses)::

    output_k += weight * sum_i (sigma[i+1] - sigma[i]) * (interpolated_i - forecast_i) / (sigma[k+1] - sigma[k])

It needs the sampler's update to be that Euler step (:attr:`padecache.Schedule.euler_sigmas`), which three of
diffusers' schedulers are (:func:`euler_grid`): ``FlowMatchEulerDiscreteScheduler`` (the flow-matching models), and,
for models that predict the noise, ``EulerDiscreteScheduler`` (k-diffusion's Euler) and ``DDIMScheduler`` with
``eta = 0`` (its default), which is an Euler step of the scaled latent ``x / sqrt(alpha_bar)`` on the grid
``sqrt((1 - alpha_bar) / alpha_bar)``; with any other scheduler (multistep solvers, Heun, ancestral samplers, a
predicted ``v`` or ``x0``, clipped ``x0``) nothing is corrected.  Each row keeps its own last computed step, so one
sample of a batch never changes another's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["euler_update", "euler_grid", "gap_correction", "GapCorrector", "computed_rows", "uncorrected", "output_tensor", "with_output_tensor"]


def euler_update(scheduler: Any) -> bool:
    """Whether ``scheduler.step`` is ``x + (sigma[k+1] - sigma[k]) * output`` on ``scheduler.sigmas``."""
    config, name = getattr(scheduler, "config", None), type(scheduler).__name__
    if name == "FlowMatchEulerDiscreteScheduler":
        return not getattr(config, "stochastic_sampling", False) and not getattr(config, "invert_sigmas", False)
    # k-diffusion's Euler: x0 = x - sigma * eps, so the step adds (sigma[k+1] - sigma[k]) * eps (s_churn = 0, the default)
    return name == "EulerDiscreteScheduler" and getattr(config, "prediction_type", None) == "epsilon"


def euler_grid(scheduler: Any, timesteps: Sequence[float]) -> list[float] | None:
    """The sigmas (one per step of ``timesteps`` and the final one) on which ``scheduler.step`` is an Euler step in the
    model output, or ``None`` where it is not one.  ``DDIMScheduler`` with ``eta = 0`` on a noise prediction moves
    ``y = x / sqrt(alpha_bar)`` by ``(s[k+1] - s[k]) * eps`` with ``s = sqrt((1 - alpha_bar) / alpha_bar)``, provided
    each step lands on the next step's timestep and ``x0`` is neither clipped nor thresholded."""
    if euler_update(scheduler):
        sigmas = torch.as_tensor(scheduler.sigmas).flatten().tolist()
        return sigmas[:len(timesteps) + 1] if len(sigmas) > len(timesteps) else None
    config = getattr(scheduler, "config", None)
    if (type(scheduler).__name__ != "DDIMScheduler" or getattr(config, "prediction_type", None) != "epsilon"
            or getattr(config, "clip_sample", True) or getattr(config, "thresholding", True)
            or not getattr(scheduler, "num_inference_steps", None) or len(timesteps) == 0):
        return None
    stride = config.num_train_timesteps // scheduler.num_inference_steps
    steps = [int(t) for t in timesteps]
    if any(float(t) != s for t, s in zip(timesteps, steps, strict=True)) or any(a - stride != b for a, b in zip(steps, steps[1:])):
        return None  # a step that does not land where the next one starts: not one Euler chain
    alphas = [scheduler.alphas_cumprod[t] if t >= 0 else scheduler.final_alpha_cumprod for t in (*steps, steps[-1] - stride)]
    grid = [float(((1 - a) / a).sqrt()) for a in map(torch.as_tensor, alphas)]
    return grid if all(math.isfinite(v) for v in grid) else None  # zero terminal SNR: alpha_bar = 0 at the start


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


def computed_rows(plan: Any, corrects: Sequence[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a call's :class:`~padecache.engine.Plan`: whether it computed, and whether it may be corrected
    (it computed, and ``corrects`` holds for its part: one entry per part)."""
    computed, eligible = torch.zeros(plan.batch, dtype=torch.bool), torch.zeros(plan.batch, dtype=torch.bool)
    for part, ok in zip(plan.parts, corrects, strict=True):
        if part.compute:
            rows = slice(None) if part.rows is None else part.rows.cpu()
            computed[rows] = True
            eligible[rows] = bool(ok)
    return computed, eligible


def uncorrected(sigmas: Sequence[float] | None, plans: Sequence[Sequence[bool] | None], passes: int) -> str:
    """Why ``engine.gap_correction`` can move no row of a call, for :attr:`padecache.CacheStats.correction_off` ("" where
    it can): ``sigmas`` the schedule's Euler grid, ``plans`` each row group's static plan (``None``: a policy that
    decides as it goes), ``passes`` ``engine.gap_correction_passes``."""
    if sigmas is None:
        return "the scheduler's update is not an Euler step in the model output (padecache.correction.euler_grid)"
    if all(p is None for p in plans):
        return "the policy decides as it goes; the correction needs a static plan"
    if all(p is None or sum(p) < passes for p in plans):
        return f"the plan has fewer passes than engine.gap_correction_passes = {passes}"
    return ""


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
