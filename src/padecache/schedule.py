"""Which denoising step a transformer call belongs to: the schedule, and the step within it.

The step never comes from counting calls.  In order of preference it is

1. the ``step_index`` of a diffusers ``CacheContext`` the pipeline set (Wan pipelines do);
2. the scheduler's own ``step_index``, when it advanced the way a sampling loop advances it (by one per
   step; the same step again for a second guidance branch): no host sync, so a GPU never waits for it;
3. the timestep value the pipeline passed, matched in ``scheduler.timesteps`` as the model's family passes
   time (:class:`~padecache.adapters.TimeSpec`: ``offset + scale * t``, e.g. ``t / 1000`` for FLUX or
   ``1 - t / 1000`` for Lumina2).  Among equal timesteps (second-order schedulers such as Heun) the first
   one after the branch's previous step wins.

Schedules are pure data (:class:`~padecache.interfaces.Schedule`); a new ``set_timesteps`` gives a new one,
which starts a new generation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .adapters import TimeSpec
from .interfaces import Schedule

__all__ = ["SchedulerSource", "FixedSource", "TimeResolver", "match_step", "schedule_from"]


class SchedulerSource:
    """Reads the schedule (and the step index, when it has one) from a diffusers scheduler."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self._key: tuple | None = None
        self._schedule: Schedule | None = None

    def current(self) -> Schedule | None:
        ts = getattr(self.scheduler, "timesteps", None)
        if ts is None or len(ts) == 0:
            return None
        key = (id(ts), len(ts))
        if key != self._key:
            self._key, self._schedule = key, schedule_from(self.scheduler, ts)
        return self._schedule

    def step_index(self) -> int | None:
        """The scheduler's ``step_index`` (a Python int; ``None`` before its first ``step``)."""
        try:
            index = getattr(self.scheduler, "step_index", None)
        except Exception:  # noqa: BLE001 - some schedulers raise before set_timesteps
            return None
        return index if isinstance(index, int) else None

    def __deepcopy__(self, memo):  # a copied model still follows the same pipeline's scheduler
        return self


def schedule_from(scheduler: Any, ts) -> Schedule:
    timesteps = [float(t) for t in torch.as_tensor(ts).flatten().tolist()]
    n = len(timesteps)
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas) >= n:
        return Schedule(timesteps, torch.as_tensor(sigmas).flatten()[:n].tolist())
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is not None:
        alphas = torch.as_tensor(alphas).flatten()
        idx = [min(len(alphas) - 1, max(0, int(round(t)))) for t in timesteps]
        return Schedule(timesteps, [float((1 - alphas[i]).clamp(min=0).sqrt()) for i in idx])
    return Schedule(timesteps)


class FixedSource:
    """A schedule given explicitly with :func:`padecache.set_schedule`."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def current(self) -> Schedule:
        return self.schedule

    def step_index(self) -> None:
        return None


def _spacing(values: Sequence[float]) -> float:
    distinct = sorted(set(values))
    return min((b - a for a, b in zip(distinct, distinct[1:])), default=abs(distinct[0]) or 1.0)


def match_step(schedule: Schedule, value: float, after: int = -1, scale: float = 1.0, offset: float = 0.0) -> int:
    """Index of ``value`` in ``offset + scale * schedule.timesteps``.

    Among equal timesteps the first index greater than ``after`` wins.  Raises ``ValueError`` when no
    timestep is clearly nearest (further than 0.45 of the smallest spacing).
    """
    if not math.isfinite(value):
        raise ValueError(f"the transformer was called with a non-finite timestep ({value}); check the sampling loop")
    scaled = [offset + t * scale for t in schedule.timesteps]
    dist = min(abs(t - value) for t in scaled)
    tol = max(0.45 * _spacing(scaled), 1e-6 * max(1.0, abs(value)))
    if dist > tol:
        shown = [round(t, 4) for t in scaled[:4]]
        raise ValueError(
            f"timestep {value:g} is not in the scheduler's timesteps as this model's family passes them "
            f"({TimeSpec(scale=scale, offset=offset).describe()}: {shown}...); padecache finds the step from the "
            f"schedule: call the model from its pipeline, or padecache.set_schedule(model, timesteps) for a "
            f"hand-written sampling loop"
        )
    candidates = [i for i, t in enumerate(scaled) if abs(t - value) <= dist + 1e-9 * max(1.0, abs(value))]
    later = [i for i in candidates if i > after]
    return later[0] if later else candidates[0]


class TimeResolver:
    """Matches the time a model was called with against a schedule, trying each of the adapter's conventions.

    Conventions that fail to match are dropped for the rest of the generation, so a generic adapter settles on
    its family's convention after the first calls.
    """

    def __init__(self, specs: Sequence[TimeSpec]):
        self.specs = tuple(specs)
        self.live = list(self.specs)

    def reset(self) -> None:
        self.live = list(self.specs)

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.argument for s in self.specs))

    def locate(self, schedule: Schedule, value: float, after: int) -> int:
        errors, found = [], []
        for spec in self.live:
            try:
                found.append((spec, match_step(schedule, value, after, spec.scale, spec.offset)))
            except ValueError as err:
                errors.append(err)
        if not found:
            raise errors[0]
        if len(found) < len(self.live):
            self.live = [spec for spec, _ in found]
        return found[0][1]

    def agrees(self, schedule: Schedule, value: float, step: int) -> bool:
        """Whether ``value`` is what this family passes at ``step`` (checks a step index read elsewhere)."""
        scaled = [s.to_model(schedule.timesteps[step]) for s in self.live]
        tol = 1e-4 * max(1.0, abs(value))
        return any(abs(v - value) <= tol for v in scaled)
