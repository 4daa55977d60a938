"""Which denoising step a transformer call belongs to: the schedule, and the step within it.

The step never comes from counting calls.  In order of preference it is

1. the ``step_index`` of a diffusers ``CacheContext`` the pipeline set (Wan pipelines do);
2. the scheduler's own ``step_index``, when it advanced the way a sampling loop advances it (by one per
   step; the same step again for a second guidance branch): no host sync, so a GPU never waits for it;
3. the timestep value the pipeline passed, matched in ``scheduler.timesteps`` as the model's family passes
   time (:class:`~padecache.adapters.TimeSpec`: ``offset + scale * t``, e.g. ``t / 1000`` for FLUX or
   ``1 - t / 1000`` for Lumina2).  Among equal timesteps (second-order schedulers such as Heun) the first
   one after the branch's previous step wins.

Schedules are pure data (:class:`~padecache.interfaces.Schedule`); a new ``set_timesteps`` gives a new one, which
starts a new generation.  :class:`Locator` turns one transformer call into a :class:`Where`: its step, its guidance
branch (a ``cache_context`` name, or call order within the step) and whether it starts a new generation.

All rows of a call are at one step: a call whose rows carry different timesteps is refused, naming the rows
(per-token timesteps within a row, as Wan 2.2 TI2V passes them, count as that row's largest).  On a GPU the
timestep tensor is read only where the step is not given otherwise (no host sync per step), so there such a
call is caught whenever the value is read: at the first call of each generation at least.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from .adapters import TimeSpec, position_of
from .correction import euler_grid
from .errors import warn
from .interfaces import Schedule

__all__ = ["SchedulerSource", "FixedSource", "TimeResolver", "match_step", "schedule_from", "StepNotFound", "Where",
           "Locator", "is_scheduler"]


class StepNotFound(ValueError):
    """A call's timestep is not in the schedule (as the model's family passes time)."""

    def __init__(self, message: str, value: float = math.nan, shown: Sequence[float] = (), convention: str = ""):
        super().__init__(message)
        self.value, self.shown, self.convention = value, tuple(shown), convention


def is_scheduler(obj: Any) -> bool:
    """Whether ``obj`` looks like a diffusers scheduler: ``set_timesteps`` and ``timesteps``."""
    return callable(getattr(obj, "set_timesteps", None)) and hasattr(obj, "timesteps")


class SchedulerSource:
    """Reads the schedule (and the step index, when it has one) from a diffusers scheduler: ``scheduler``, or the
    ``scheduler`` attribute of ``pipeline`` as it is at each call (``pipe.scheduler = X.from_config(...)`` after
    ``apply`` is followed)."""

    def __init__(self, scheduler: Any = None, pipeline: Any = None):
        self._scheduler, self._pipeline = scheduler, pipeline
        self._key: tuple | None = None
        self._schedule: Schedule | None = None

    @property
    def scheduler(self) -> Any:
        return getattr(self._pipeline, "scheduler", None) if self._pipeline is not None else self._scheduler

    def current(self) -> Schedule | None:
        ts = getattr(self.scheduler, "timesteps", None)
        if ts is None or len(ts) == 0:
            return None
        key = (id(self.scheduler), id(ts), len(ts))
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

    def first_index(self) -> int | None:
        """Where the scheduler says a generation starts: its ``step_index`` if it has set one already (Heun sets it
        before the first call), else its ``begin_index`` (img2img pipelines set it); ``None`` if neither."""
        index = self.step_index()
        if index is None:
            begin = getattr(self.scheduler, "begin_index", None)
            index = begin if isinstance(begin, int) else None
        return index

    def __deepcopy__(self, memo):  # a copied model still follows the same pipeline's scheduler
        return self

    def mismatch(self) -> str:
        """What to suspect when the calls do not follow this schedule."""
        if self._pipeline is None:
            return "a scheduler= for another loop?"
        return (f"padecache follows the scheduler of the {type(self._pipeline).__name__} it was applied to; another "
                f"pipeline sharing this transformer with its own scheduler is not followed: padecache.remove, then "
                f"padecache.apply to the pipeline you call")

    def explain(self, err: StepNotFound) -> str:
        return str(err) if self._pipeline is None else f"{err} ({self.mismatch()})"


def schedule_from(scheduler: Any, ts) -> Schedule:
    timesteps = [float(t) for t in torch.as_tensor(ts).flatten().tolist()]
    n, grid = len(timesteps), euler_grid(scheduler, timesteps)  # grid: where the update is an Euler step (gap_correction)
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas) >= n:
        return Schedule(timesteps, torch.as_tensor(sigmas).flatten().tolist()[:n], euler_sigmas=grid)
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is not None:
        alphas = torch.as_tensor(alphas).flatten()
        idx = [min(len(alphas) - 1, max(0, int(round(t)))) for t in timesteps]
        return Schedule(timesteps, [float((1 - alphas[i]).clamp(min=0).sqrt()) for i in idx], euler_sigmas=grid)
    return Schedule(timesteps)


class FixedSource:
    """A schedule given explicitly with :func:`padecache.set_schedule` (``replaced``: the source it stands in for)."""

    def __init__(self, schedule: Schedule, replaced: Any | None = None):
        self.schedule, self.replaced = schedule, replaced

    def current(self) -> Schedule:
        return self.schedule

    def step_index(self) -> None:
        return None

    def first_index(self) -> None:
        return None

    def mismatch(self) -> str:
        return "a set_schedule for another step count?"

    def explain(self, err: StepNotFound) -> str:
        other = self.replaced.current() if self.replaced is not None else None
        hint = f" (the pipeline's scheduler has {other.num_steps} now)" if other is not None else ""
        return (
            f"timestep {err.value:g} is not in the schedule given with padecache.set_schedule ({self.schedule.num_steps} "
            f"steps, {err.convention}: {list(err.shown)}...){hint}: the set schedule does not match this call. Call "
            f"padecache.set_schedule(model, timesteps) with this loop's timesteps, or padecache.set_schedule(model, None) "
            f"to follow the pipeline's scheduler again"
        )


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
        convention = TimeSpec(scale=scale, offset=offset).describe()
        raise StepNotFound(
            f"timestep {value:g} is not in the scheduler's timesteps as this model's family passes them "
            f"({convention}: {shown}...); padecache finds the step from the "
            f"schedule: call the model from its pipeline, or padecache.set_schedule(model, timesteps) for a "
            f"hand-written sampling loop",
            value, shown, convention,
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

    def offset(self, schedule: Schedule, value: float, step: int) -> float:
        """How far ``value`` is from ``step``'s timestep, in the spacing of the steps around it; 0 within what a
        bfloat16 timestep rounds away (2^-8 of the value)."""
        to_model, ts = self.live[0].to_model, schedule.timesteps
        here = to_model(ts[step])
        dist = abs(here - value)
        gaps = [abs(to_model(ts[i]) - here) for i in (step - 1, step + 1) if 0 <= i < len(ts)]
        gap = min((g for g in gaps if g > 0), default=0.0)
        if gap == 0.0 or dist <= 2 ** -8 * max(abs(value), abs(here)):
            return 0.0
        return dist / gap

    def agrees(self, schedule: Schedule, value: float, step: int) -> bool:
        """Whether ``value`` is what this family passes at ``step`` (checks a step index read elsewhere)."""
        scaled = [s.to_model(schedule.timesteps[step]) for s in self.live]
        tol = 1e-4 * max(1.0, abs(value))
        return any(abs(v - value) <= tol for v in scaled)


# -- one call: its step and branch -------------------------------------------------------------------------------


@attrs.frozen
class Where:
    """Where one transformer call sits in sampling: its step, branch, and whether it starts a new generation."""

    step: int
    num_steps: int
    timestep: float
    sigma: float | None
    branch: str
    schedule: Schedule | None = None
    span: tuple[int, int] | None = None
    fresh: bool = False


def unbound_position(forward: Callable, name: str) -> int | None:
    """Position of ``name`` among the positional arguments of an unbound ``forward`` (``self`` excluded)."""
    pos = position_of(forward, name)
    if pos is None:
        return None
    try:
        first = next(iter(inspect.signature(forward).parameters))
    except (TypeError, ValueError, StopIteration):
        return pos
    return pos - 1 if first == "self" else pos


class Locator:
    """Finds the step and branch of each call of one transformer (see the module docstring).

    ``source`` gives the schedule (a :class:`SchedulerSource` or :class:`FixedSource`, or ``None``), ``span`` the
    steps this model runs of a schedule (Wan 2.2's experts), ``forward`` the model class's ``forward`` (where its
    time argument sits).
    """

    def __init__(self, specs: Sequence[TimeSpec], forward: Callable, source: Any | None = None,
                 span: Callable[[Schedule], tuple[int, int] | None] | None = None, model_name: str = "transformer"):
        self.resolver = TimeResolver(specs)
        self.positions = {a: unbound_position(forward, a) for a in self.resolver.arguments}
        self.source, self.span_fn, self.model_name = source, span, model_name
        # per-token timesteps that differ within a row (read by time_value): their mean per row, this call and the one
        # before (None: one timestep per row)
        self.token_means: tuple[float, ...] | None = None
        self.token_means_before: tuple[float, ...] | None = None
        self.forcing_warned = False  # a loop that starts over mid-run at per-token timesteps was reported (once)
        self.reset()

    def reset(self) -> None:
        """The generation ended: the next call starts a new one."""
        self.open = False
        self.key: Any = None
        self.schedule: Schedule | None = None
        self.span: tuple[int, int] | None = None
        self.last_step = -1
        self.calls_at_step = 0
        self.branch_steps: dict[str, int] = {}
        self.skip_warned = False  # a call that skipped steps was reported this generation
        self.between_warned = False  # a call between two steps of the schedule was reported this generation

    def _start(self, key: Any, schedule: Schedule | None) -> None:
        self.reset()
        self.open, self.key, self.schedule = True, key, schedule
        self.span = self.span_fn(schedule) if (self.span_fn is not None and schedule is not None) else None
        self.resolver.reset()

    def locate(self, args: tuple, kwargs: dict, context: Any | None) -> Where:
        """The :class:`Where` of a call with these arguments, under ``context`` (a diffusers ``CacheContext``)."""
        name = getattr(context, "name", None)
        schedule = self.source.current() if self.source is not None else None
        fresh = False
        if schedule is not None:
            if not self.open or schedule is not self.key:
                self._start(schedule, schedule)
                fresh = True
            num_steps, step = schedule.num_steps, self._find(schedule, args, kwargs, context, name)
            timestep = schedule.timesteps[step]
            sigma = schedule.sigmas[step] if schedule.sigmas is not None else getattr(context, "sigma", None)
        else:
            num_steps, step, timestep, sigma, fresh = self._from_context(args, kwargs, context)
        if self.token_means is not None and step == self.last_step and self.token_means != self.token_means_before:
            self._warn_forcing(step, self.last_step, num_steps)  # a step again, with its frames elsewhere
        if name is None:
            self.calls_at_step = self.calls_at_step + 1 if step == self.last_step else 0
            name = "main" if self.calls_at_step == 0 else f"call{self.calls_at_step}"
        if (step <= self.branch_steps[name] if name in self.branch_steps  # the loop started over (under new
                else self.branch_steps and step < self.last_step):        # branch names: a cache_context now)
            self._start(self.key, self.schedule)
            fresh = True
            name = getattr(context, "name", None) or "main"
        if not 0 <= step < num_steps:
            raise ValueError(f"step {step} is outside this generation's {num_steps} steps")
        if fresh and step > (self.span[0] if self.span else 0):
            # (reach) the pipeline starts later in its schedule (img2img, inpainting: strength < 1): the generation
            # spans the steps that run, so plans, stats and step counts are those of the steps that run
            self.span = (step, self.span[1] if self.span else num_steps)
        before = self.branch_steps.get(name)
        if not fresh and before is not None and step > before + 1 and not self.skip_warned:
            self.skip_warned = True  # (reliability) once per generation
            warn(f"padecache: {self.model_name} was called at step {step} after step {before} of a {num_steps}-step "
                 f"schedule: the schedule padecache follows does not match the loop calling the model "
                 f"({self._suspect()}); its plan and stats are off",
                 RuntimeWarning, stacklevel=2)
        self.last_step = step
        self.branch_steps[name] = step
        return Where(step, num_steps, timestep, sigma, name, self.schedule, self.span, fresh)

    def _suspect(self) -> str:
        """What to suspect when the calls do not follow the schedule (the source's word for it)."""
        return self.source.mismatch() if self.source is not None else "no schedule"

    def _warn_forcing(self, step: int, before: int, num_steps: int) -> None:
        if self.forcing_warned:
            return
        self.forcing_warned = True  # (reliability) once per model: diffusion forcing repeats this at every frame block
        warn(f"padecache: {self.model_name} was called at step {step} after step {before} of a {num_steps}-step "
             f"schedule with a timestep per token that differs within a row (diffusion forcing: frames at "
             f"their own noise levels).  padecache follows each row's largest timestep, so a step that "
             f"repeats with its frames elsewhere is taken for another guidance branch or a new generation: "
             f"forecasts, plan and stats do not follow the frames.  Asynchronous per-frame schedules are not "
             f"supported; call padecache.remove on this model for them", RuntimeWarning, stacklevel=3)

    def _from_context(self, args: tuple, kwargs: dict, context: Any | None) -> tuple:
        """No schedule known: the pipeline's ``cache_context`` may say where the loop is (Wan pipelines do)."""
        if getattr(context, "step_index", None) is None or not getattr(context, "num_inference_steps", None):
            raise ValueError(
                f"padecache cannot tell which denoising step this {self.model_name} call is: no scheduler "
                f"is known. Apply padecache to the pipeline (padecache.apply(pipe, ...)), or call "
                f"padecache.set_schedule(transformer, timesteps) before a hand-written sampling loop."
            )
        num_steps = int(context.num_inference_steps)
        key = ("cache_context", num_steps)
        fresh = not self.open or key != self.key
        if fresh:
            self._start(key, None)
        t = getattr(context, "timestep", None)
        timestep = self.time_value(t if t is not None else self.time_argument(args, kwargs))
        return num_steps, int(context.step_index), timestep, getattr(context, "sigma", None), fresh

    def _find(self, schedule: Schedule, args: tuple, kwargs: dict, context: Any, name: str | None) -> int:
        n = schedule.num_steps
        given = getattr(context, "step_index", None)
        if isinstance(given, int) and 0 <= given < n:
            t = self.time_argument(args, kwargs, required=False)
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                self.time_value(t)  # free on the CPU: rows at different timesteps are refused here too
            return given
        t = None
        index = self.source.step_index() if self.source is not None else None
        if index is not None and self.last_step >= 0 and index in (self.last_step, self.last_step + 1) and index < n:
            t = self.time_argument(args, kwargs)
            if not (isinstance(t, torch.Tensor) and t.device.type == "cpu"):
                return index  # trusted without reading the tensor: no host sync on an accelerator
            if self.resolver.agrees(schedule, self.time_value(t), index):
                return index
        value = self.time_value(self.time_argument(args, kwargs) if t is None else t)
        first = self.source.first_index() if self.source is not None and self.last_step < 0 else None
        if first is not None and 0 <= first < n and self.resolver.agrees(schedule, value, first):
            return first  # a first call where equal timesteps repeat (Heun from part-way): the scheduler knows which
        try:
            step = self.resolver.locate(schedule, value, self.branch_steps.get(name, self.last_step))
        except StepNotFound as err:
            explain = getattr(self.source, "explain", None)
            raise StepNotFound(explain(err) if explain else str(err), err.value, err.shown, err.convention) from None
        off = self.resolver.offset(schedule, value, step)
        if off > 0.2 and not self.between_warned:
            # (reliability) rounding (bf16 timesteps) stays far below this; a loop on another schedule does not
            self.between_warned = True
            warn(f"padecache: {self.model_name} was called at timestep {value:g}, {off:.0%} of a step away from "
                 f"step {step} of the {schedule.num_steps}-step schedule padecache follows: the loop calling "
                 f"the model is on another schedule ({self._suspect()}); its plan and stats are off",
                 RuntimeWarning, stacklevel=4)
        return step

    def time_argument(self, args: tuple, kwargs: dict, required: bool = True) -> Any:
        for name, pos in self.positions.items():
            if name in kwargs and kwargs[name] is not None:
                return kwargs[name]
            if pos is not None and len(args) > pos and args[pos] is not None:
                return args[pos]
        if not required:
            return None
        names = " or ".join(f"`{a}`" for a in self.positions)
        raise ValueError(f"{self.model_name} was called without {names}; padecache needs it to find the step")

    def time_value(self, t: Any) -> float:
        """The call's timestep as a float.  A tensor with one value per row must hold one value: rows at different
        timesteps are refused (per-token values within a row count as the row's largest)."""
        if not isinstance(t, torch.Tensor):
            return _finite(float(t), self.model_name)
        t = t.detach()
        self.token_means_before, self.token_means = self.token_means, None
        if t.dim() == 0 or t.numel() == 1:
            return _finite(float(t.float().reshape(())), self.model_name)
        flat = t.reshape(t.shape[0], -1).float()
        rows, low, mean = torch.stack([flat.amax(1), flat.amin(1), flat.mean(1)]).cpu()  # one transfer to the host
        # per-token values that differ: Wan 2.2 TI2V's conditioning frame at 0, or diffusion forcing
        if bool((rows - low).gt(1e-6 * rows.abs().clamp(min=1.0)).any()):
            self.token_means = tuple(mean.tolist())
        for v in rows.tolist():
            _finite(v, self.model_name)
        lo, hi = float(rows.min()), float(rows.max())
        if hi - lo > 1e-6 * max(1.0, abs(hi)):
            shown = ", ".join(f"row {i}: {v:g}" for i, v in enumerate(rows.tolist()[:8]))
            raise ValueError(
                f"the rows of this {self.model_name} call are at different timesteps ({shown}"
                f"{', ...' if len(rows) > 8 else ''}): padecache takes one step per call. Call the model once per "
                f"timestep (the rows at one step together), or without padecache (padecache.remove) for such calls"
            )
        return hi


def _finite(value: float, model_name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{model_name} was called with a non-finite timestep ({value})")
    return value
