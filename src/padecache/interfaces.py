"""The three questions padecache asks at every denoising step, as three small interfaces.

* :class:`Predictor`: *what* value stands in for the block stack when it is skipped;
* :class:`CachePolicy`: *when* the block stack runs for real;
* :class:`StageDetector`: *which phase* of sampling a step belongs to (early / mid / late).

The engine hands each of them a :class:`StepContext`.  Components are chosen by name from the
registry (:mod:`padecache.plugins`); each carries an attrs ``Config`` class whose fields are its
options.  Nothing in the engine knows a concrete component by name.

The value that is predicted is the residual of the whole block stack, ``R = stack_output - stack_input``,
as a tensor of the stack's hidden-state shape (batch first).  Every built-in component treats batch
rows independently: per-row norms, per-row statistics.  With a fixed schedule a batch therefore gives
exactly what its samples give one by one, and the two CFG halves of a batched call never mix.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs
import torch

from .options import NoOptions
from .step_inputs import StepInputs

__all__ = [
    "Stage",
    "Schedule",
    "StepContext",
    "StepInputs",
    "Predictor",
    "CachePolicy",
    "StageDetector",
    "Grid",
]

Grid = Literal["step", "sigma", "timestep"]


class Stage(str, enum.Enum):
    """Phase of sampling.  Early = high noise (structure forms), late = low noise (detail refines)."""

    EARLY = "early"
    MID = "mid"
    LATE = "late"


def _floats(values: Iterable[float] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(f"pass a sequence of numbers (a list, a tuple or a tensor such as scheduler.timesteps), "
                        f"not {values!r}")
    if isinstance(values, torch.Tensor):
        if values.dim() > 1:
            raise TypeError(f"pass one number per step (a 1-D tensor such as scheduler.timesteps), got a tensor of "
                            f"shape {tuple(values.shape)}")
        values = values.detach().flatten().tolist()
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"pass a sequence of numbers (a list, a tuple or a tensor), got {values!r}") from None


@attrs.frozen
class Schedule:
    """The sampling schedule of one generation: one timestep (and sigma, if known) per denoising step.

    ``sigmas`` is the scheduler's noise level at each step where it has one (flow matching: in [0, 1]);
    for DDPM-style schedulers it is ``sqrt(1 - alphas_cumprod[t])``.  It may be ``None``.
    """

    timesteps: tuple[float, ...] = attrs.field(converter=_floats)
    sigmas: tuple[float, ...] | None = attrs.field(default=None, converter=_floats)
    #: grid of an Euler update x += (sigma[k+1] - sigma[k]) * output (of a scaled x for DDIM), one per step and one more
    euler_sigmas: tuple[float, ...] | None = attrs.field(default=None, converter=_floats, kw_only=True)

    def __attrs_post_init__(self):
        if len(self.timesteps) == 0:
            raise ValueError("a schedule needs at least one timestep")
        if self.sigmas is not None and len(self.sigmas) < len(self.timesteps):
            raise ValueError(f"got {len(self.sigmas)} sigmas for {len(self.timesteps)} timesteps")
        if self.euler_sigmas is not None and len(self.euler_sigmas) != len(self.timesteps) + 1:
            raise ValueError(f"got {len(self.euler_sigmas)} Euler sigmas for {len(self.timesteps)} steps; give one more")

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    @classmethod
    def uniform(cls, num_steps: int) -> Schedule:
        """Rectified-flow schedule with sigma going linearly from 1 to 1/num_steps (timestep = 1000 sigma)."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        sig = [1.0 - i / num_steps for i in range(num_steps)]
        return cls([1000.0 * s for s in sig], sig)

    def position(self, step: int, grid: Grid) -> float:
        """Abscissa of ``step`` on ``grid``: the step index, the sigma, or the timestep value."""
        if grid == "step":
            return float(step)
        if grid == "sigma":
            if self.sigmas is None:
                raise ValueError("this scheduler exposes no sigmas; use grid='step' or grid='timestep'")
            return self.sigmas[step]
        return self.timesteps[step]


@attrs.frozen
class StepContext:
    """Where sampling is when the engine asks a component something.

    Attributes:
        step: index of the denoising step, 0-based, found from the timestep the pipeline passed.
        num_steps: number of denoising steps of this generation.
        timestep: the timestep value of this step, in the scheduler's units.
        sigma: the noise level of this step, or ``None`` if the scheduler has none.
        branch: the guidance branch this call belongs to (``"cond"``/``"uncond"`` from a diffusers
            ``cache_context``, or ``"main"``, ``"call1"``, ... in call order); batched CFG is one branch.
        stage: the stage the stage detector assigned (``None`` only while detecting it).
        schedule: the whole schedule, for components that look ahead (static masks, time grids).
        reducer: sums over the sequence-parallel group when the generation is sharded (use :meth:`reduce`).
        history: computed residuals the engine has given this predictor since its last reset (what
            :meth:`Predictor.ready` counts).
        span: ``(first, stop)``, the steps this model runs in the generation: all of them, except for
            pipelines that hand steps to several models (Wan 2.2's high- and low-noise experts).
        rows: batch rows this decision is for (a :class:`Predictor`/:class:`CachePolicy` instance holds
            the state of these rows only).
        inputs: when the policy or the predictor declares ``inputs``, what they read (:class:`StepInputs`, these
            rows, each declared field where the engine can give it); else ``None``.
        plan: for :meth:`Predictor.predict`, the policy's static plan over this model's steps (its
            :meth:`CachePolicy.plan`, ``True`` = a pass), so a forecast can see how far the next pass is
            (:attr:`passes_left`, :attr:`next_pass`); ``None`` for a policy that decides as it goes.
        family: the model's family, the name of the adapter padecache hooked it with (``"flux"``, ``"wan"``, ...),
            for components whose published settings differ per model (TeaCache's polynomials); ``None`` where no
            model is hooked (the contract kit's synthetic loops).
    """

    step: int
    num_steps: int
    timestep: float
    sigma: float | None
    branch: str = "main"
    stage: Stage | None = None
    schedule: Schedule | None = None
    history: int = 0
    span: tuple[int, int] | None = None
    rows: int = 1
    reducer: Any = attrs.field(default=None, repr=False, eq=False)
    inputs: StepInputs | None = attrs.field(default=None, repr=False, eq=False)
    plan: tuple[bool, ...] | None = attrs.field(default=None, repr=False, eq=False)
    family: str | None = None

    @property
    def passes_left(self) -> int | None:
        """Passes the policy's plan holds after this step (``None``: no static plan, the policy decides as it goes)."""
        return None if self.plan is None else sum(self.plan[self.step - self.first_step + 1:])

    @property
    def next_pass(self) -> int | None:
        """The step of the next planned pass after this one (``None``: none planned, or no static plan)."""
        if self.plan is None:
            return None
        first = self.first_step
        return next((first + i for i in range(self.step - first + 1, len(self.plan)) if self.plan[i]), None)

    def reduce(self, local: torch.Tensor):
        """The sum of ``local`` over the sequence-parallel group, as a :class:`~padecache.distributed.Deferred`
        (``.value``); the local tensor itself when the generation is not sharded.  Queue every per-row partial
        sum a decision or a forecast depends on through here, so that every rank sees full-sequence values."""
        from .distributed import LOCAL

        return (self.reducer or LOCAL).reduce(local)

    @property
    def sharded(self) -> bool:
        """Whether the tokens inside the block stack are this rank's shard of a sequence-parallel group's sequence."""
        return bool(getattr(self.reducer, "active", False))

    def gather(self, local: torch.Tensor, dim: int = 1, fn=None) -> torch.Tensor:
        """The whole sequence from the ranks' shards of ``local`` (``local`` when not :attr:`sharded`); with ``fn``,
        this rank's part of ``fn(whole)``.  For what mixes tokens (a filter over the token grid); all ranks call it."""
        return self.reducer.gather(local, dim, fn) if self.sharded else (local if fn is None else fn(local))

    @property
    def first_step(self) -> int:
        """First step this model runs (0 unless the pipeline splits the steps between experts)."""
        return 0 if self.span is None else self.span[0]

    @property
    def span_steps(self) -> int:
        """How many steps this model runs in the generation."""
        return self.num_steps if self.span is None else self.span[1] - self.span[0]

    @property
    def fraction(self) -> float:
        """Share of sampling already done before this step, in [0, 1)."""
        return self.step / self.num_steps

    @property
    def is_last(self) -> bool:
        return self.step == self.num_steps - 1

    def position(self, grid: Grid, step: int | None = None) -> float:
        """Abscissa of ``step`` (default: this step) on ``grid``."""
        step = self.step if step is None else step
        if self.schedule is None:
            if grid == "step":
                return float(step)
            if step != self.step:
                raise ValueError("no schedule attached to this context")
            value = self.sigma if grid == "sigma" else self.timestep
            if value is None:
                raise ValueError("this scheduler exposes no sigmas; use grid='step' or grid='timestep'")
            return float(value)
        return self.schedule.position(step, grid)


class _Component(ABC):  # noqa: B024 - abstract through its three subclasses
    """Shared shape of the three component kinds: a registered ``name`` and an attrs ``Config``.

    A component without options needs no ``Config``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoOptions

    def __init__(self, config=None):
        self.config = self.Config() if config is None else config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def select(self, rows: torch.Tensor, batch: int) -> Any:
        """A new instance holding the state of batch ``rows`` only (indices into the current ``batch`` rows).

        The engine calls this when rows of one batch must go separate ways (a per-row decision, a guard that
        fires for one row).  The default copies the instance and slices every tensor whose first dimension
        is ``batch``, inside lists, tuples, deques, dicts, sets, attrs classes and dataclasses; everything else is
        deep-copied.  Override it
        if your state holds per-row values in another form.
        """
        new = copy.copy(self)
        new.__dict__ = {k: _select(v, rows, batch) for k, v in self.__dict__.items()}
        return new


class Predictor(_Component):
    """What stands in for the block stack on a skipped step.

    The engine calls :meth:`update` after *every* step, with the residual that was used (the real one
    on computed steps, the predicted one otherwise, flagged by ``computed``), and :meth:`predict` on
    the steps the policy skips, once :meth:`ready` says the history suffices.  A predictor keeps its own
    history; it never reads another branch's.  Subclasses document their source (paper, code) in one line.
    """

    #: computed residuals needed before :meth:`predict` may be called
    min_history: ClassVar[int] = 1
    #: what the predictor reads beside its history (names of :class:`StepInputs` fields); the engine then gives them
    #: in ``ctx.inputs`` to :meth:`predict` and :meth:`update`, as it does for an input-aware policy's
    inputs: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        """Record the residual used at ``ctx.step`` and the block-stack input it was added to."""

    @abstractmethod
    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        """Predicted residual at ``ctx.step``, to be added to ``block_input``."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything (a new generation starts)."""

    def ready(self, ctx: StepContext) -> bool:
        """Whether :meth:`predict` can be called at ``ctx``: by default, once the engine has given it
        ``min_history`` computed residuals (``ctx.history``).  Override to be stricter (ready within two more than
        ``min_history``, or declare the history it needs there), never to count on
        your own: the engine warns when a predictor stays unready although its history suffices."""
        return ctx.history >= self.min_history

    @property
    def num_computed(self) -> int:
        """Computed residuals currently held (informative; :meth:`ready` uses ``ctx.history``)."""
        return 0

    def state_tensors(self) -> Iterable[torch.Tensor]:
        """Tensors held between steps (for ``cache_bytes``)."""
        return ()

    def indicators(self) -> dict[str, float | torch.Tensor]:
        """Cheap scalar diagnostics of the last prediction, reported per step in the stats.

        Return 0-d tensors rather than floats to avoid a host sync per step: the engine converts them
        only when :func:`padecache.stats` is read.
        """
        return {}


class CachePolicy(_Component):
    """When the block stack runs for real.

    :meth:`should_compute` is asked once per transformer call.  The engine computes anyway while the
    predictor is not ready, and records what was actually done.  Static policies return their whole
    plan from :meth:`mask` for any step count; adaptive ones return ``None`` there and may watch the
    residuals through :meth:`observe`.

    Decisions may differ between batch rows: return a bool tensor of shape ``(ctx.rows,)`` and the
    engine runs the block stack for the rows that need it only, keeping each group's history apart, so
    a batch decides exactly as its samples would alone.

    A policy that decides from the model's inputs (TeaCache, EasyCache ...) names them in :attr:`inputs`;
    ``should_compute`` then finds them in ``ctx.inputs`` (a :class:`StepInputs`, restricted to ``ctx.rows``).
    Only what is declared is computed.  Sum statistics over the sequence-parallel group with ``ctx.reduce``
    so every rank decides alike, and keep per-row state batch-first so :meth:`select` works.
    """

    #: what the policy reads before deciding, beside the StepContext: names of :class:`StepInputs` fields
    #: (``"stack_input"``, ``"modulated"``, ``"model_input"``, ``"first_input"``, ``"time_embedding"``,
    #: ``"time_projection"``); empty: nothing, and the engine computes nothing extra
    inputs: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        """True: run the block stack at this step; False: predict it; or one bool per batch row."""

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        """See the residual used at ``ctx.step`` (adaptive policies keep what they need)."""

    def reset(self) -> None:
        """Forget everything (a new generation starts)."""

    def mask(self, num_steps: int) -> list[bool] | None:
        """The static plan, ``True`` = compute, or ``None`` for adaptive policies."""
        return None

    def plan(self, ctx: StepContext) -> list[bool] | None:
        """The static plan of the run ``ctx`` belongs to, over the steps this model runs (``ctx.span_steps``), or
        ``None`` for adaptive policies; what forecasts see as ``ctx.plan``.  Default: ``mask(ctx.span_steps)``.  A
        static policy whose plan depends on more than the step count (a run that starts part-way) says so here."""
        return self.mask(ctx.span_steps)

    def indicators(self) -> dict[str, float]:
        """Scalar indicators behind the last decision (e.g. the TSI), reported per step in the stats."""
        return {}

    def state_tensors(self) -> Iterable[torch.Tensor]:
        return ()


class StageDetector(_Component):
    """Which phase of sampling a step belongs to.  Stateless; called once per step."""

    @abstractmethod
    def stage(self, ctx: StepContext) -> Stage:
        """Stage of ``ctx.step`` (``ctx.stage`` is not yet set)."""

    def stages(self, schedule: Schedule) -> list[Stage]:
        """Stage of every step of ``schedule``."""
        n = schedule.num_steps
        return [
            self.stage(StepContext(i, n, schedule.timesteps[i], None if schedule.sigmas is None else schedule.sigmas[i], schedule=schedule))
            for i in range(n)
        ]


def _select(value: Any, rows: torch.Tensor, batch: int) -> Any:
    """``value`` with every batch-first tensor restricted to ``rows``; containers rebuilt, the rest copied."""
    from .distributed import Deferred

    if isinstance(value, Deferred):  # a pending group sum: settle it, then keep these rows of it
        return Deferred(None, _select(value.value, rows, batch))
    if isinstance(value, torch.Tensor):
        if value.dim() >= 1 and value.shape[0] == batch:
            return value.index_select(0, rows.to(value.device))
        return value.clone()
    if isinstance(value, deque):
        return deque((_select(v, rows, batch) for v in value), maxlen=value.maxlen)
    if isinstance(value, list):
        return [_select(v, rows, batch) for v in value]
    if isinstance(value, tuple):
        items = [_select(v, rows, batch) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: _select(v, rows, batch) for k, v in value.items()}
    if attrs.has(type(value)):  # options and small records: rebuilt field by field
        return attrs.evolve(value, **{f.alias: _select(getattr(value, f.name), rows, batch)
                                      for f in attrs.fields(type(value)) if f.init})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _select(getattr(value, f.name), rows, batch)
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, (set, frozenset)):
        return type(value)(_select(v, rows, batch) for v in value)
    return copy.deepcopy(value)


def mask_to_str(mask: Sequence[bool]) -> str:
    """``[True, False, ...]`` -> ``"#.##."`` (``#`` = computed)."""
    return "".join("#" if m else "." for m in mask)
