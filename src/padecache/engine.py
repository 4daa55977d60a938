"""The runtime: per-branch state, step resolution, and the reversible hooks on a transformer.

Per transformer call the engine

1. reads the timestep the pipeline passed and finds the step in the sampling schedule (never by
   counting calls), and the guidance branch (a diffusers ``cache_context`` name, or call order within
   the step); a step that does not advance its branch starts a new generation;
2. asks the stage detector, then the branch's policy, whether to compute;
3. at the first block, on a predicted step, asks the branch's predictor for the residual, checks it
   (non-finite or exploding: compute instead, counted as a fallback), and skips every block;
4. at the head, adds the predicted residual to the block-stack input, or records the real residual;
   both predictor and policy see it.

Hooks: a stateful diffusers ``ModelHook`` on the transformer (so ``cache_context`` names and the
pipelines' end-of-call reset reach us), an instance ``forward`` on every block that can return its
inputs unchanged, and a forward pre-hook on the head.  :func:`detach` removes all three and leaves the
model's ``__dict__`` as it found it.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from typing import Any

import attrs
import torch
import torch.nn as nn

from .adapters import Adapter
from .config import CacheConfig
from .interfaces import CachePolicy, Predictor, Schedule, StepContext
from .math import as_rows, row_norm
from .plugins import get_registry
from .stats import StatsRecorder, StepRecord

__all__ = ["Engine", "SchedulerSource", "FixedSource", "attach", "detach", "engine_of", "match_step"]

_ENGINES: weakref.WeakKeyDictionary[nn.Module, Engine] = weakref.WeakKeyDictionary()
_HOOK_NAME = "padecache"


def engine_of(model: nn.Module) -> Engine | None:
    return _ENGINES.get(model)


# -- where the schedule comes from ------------------------------------------------------------------------------


class SchedulerSource:
    """Reads the schedule from a diffusers scheduler (``timesteps``, ``sigmas`` or ``alphas_cumprod``)."""

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
            self._key, self._schedule = key, _schedule_from(self.scheduler, ts)
        return self._schedule


def _schedule_from(scheduler: Any, ts) -> Schedule:
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


def match_step(schedule: Schedule, value: float, after: int = -1, scale: float = 1.0) -> int:
    """Index of ``value`` in ``schedule.timesteps * scale`` (FLUX pipelines pass t/1000: ``scale = 1e-3``).

    Among equal timesteps (second-order schedulers) the first index greater than ``after`` wins.
    Raises ``ValueError`` when no timestep is clearly nearest.
    """
    scaled = [t * scale for t in schedule.timesteps]
    dist = min(abs(t - value) for t in scaled)
    distinct = sorted(set(scaled))
    spacing = min((b - a for a, b in zip(distinct, distinct[1:])), default=abs(distinct[0]) or 1.0)
    tol = max(0.45 * spacing, 1e-6 * max(1.0, abs(value)))
    if dist > tol:
        shown = [round(t, 4) for t in scaled[:4]]
        raise ValueError(
            f"timestep {value:g} is not in the scheduler's timesteps (x{scale:g}: {shown}...); padecache finds the "
            f"step from the schedule: call the model from its pipeline, or padecache.set_schedule(model, timesteps) "
            f"for a hand-written sampling loop"
        )
    candidates = [i for i, t in enumerate(scaled) if abs(t - value) <= dist + 1e-9 * max(1.0, abs(value))]
    later = [i for i in candidates if i > after]
    return later[0] if later else candidates[0]


def _same_key(a: Any, b: Any) -> bool:
    """Schedules are compared by identity (a re-run of set_timesteps is a new generation), other keys by value."""
    if isinstance(a, Schedule) or isinstance(b, Schedule):
        return a is b
    return a == b


# -- per-branch and per-call state ------------------------------------------------------------------------------


class Branch:
    """State of one guidance branch: its own predictor, policy, and largest computed residual norm per row."""

    def __init__(self, name: str, predictor: Predictor, policy: CachePolicy):
        self.name, self.predictor, self.policy = name, predictor, policy
        self.last_step = -1
        self.max_norm: torch.Tensor | None = None


@attrs.define
class Call:
    ctx: StepContext
    branch: Branch
    compute: bool
    reason: str
    skip: bool = False
    x_in: torch.Tensor | None = None
    prediction: torch.Tensor | None = None
    done: bool = False


class Engine:
    """padecache state attached to one transformer."""

    def __init__(self, model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None):
        registry = get_registry()
        self.model, self.adapter, self.config, self.source = model, adapter, config, source
        self.detector = registry.create("stage", config.stage.name, config.stage.options)
        self._registry = registry
        self.recorder = StatsRecorder()
        self.branches: dict[str, Branch] = {}
        self.schedule: Schedule | None = None
        self._key: Any = None
        self.call: Call | None = None
        self._last_step = -1
        self._calls_at_step = 0
        self._generation_open = False
        self._signature = inspect.signature(type(model).forward)
        self.handles: list[Any] = []

    # -- generation lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """End the current generation: forget histories (stats of the finished generation stay readable)."""
        self.branches.clear()
        self.call = None
        self._last_step = -1
        self._calls_at_step = 0
        self._generation_open = False

    def _new_generation(self, num_steps: int, key: Any, schedule: Schedule | None) -> None:
        self.reset()
        self.schedule, self._key = schedule, key
        self._generation_open = True
        self.recorder.generations += 1
        self.recorder.start(num_steps)

    def _branch(self, name: str) -> Branch:
        if name not in self.branches:
            cfg = self.config
            self.branches[name] = Branch(
                name,
                self._registry.create("predictor", cfg.predictor.name, cfg.predictor.options),
                self._registry.create("policy", cfg.policy.name, cfg.policy.options),
            )
        return self.branches[name]

    # -- step resolution -------------------------------------------------------------------------------------
    def _timestep(self, args: tuple, kwargs: dict) -> float:
        try:
            bound = self._signature.bind_partial(self.model, *args, **kwargs).arguments
        except TypeError:
            bound = kwargs
        t = bound.get("timestep")
        if t is None:
            raise ValueError(f"{type(self.model).__name__} was called without `timestep`; padecache needs it to find the step")
        return float(torch.as_tensor(t).detach().float().max())

    def begin(self, args: tuple, kwargs: dict, context: Any | None) -> None:
        """Top-level pre-forward: resolve step, branch and stage, and ask the policy."""
        name = getattr(context, "name", None)
        step_index = getattr(context, "step_index", None)
        schedule = self.source.current() if self.source is not None else None
        if schedule is not None:
            key: Any = schedule  # a new set_timesteps gives a new Schedule object: a new generation
            num_steps = schedule.num_steps
            if step_index is None:
                after = self.branches[name].last_step if name in self.branches else self._last_step
                step = match_step(schedule, self._timestep(args, kwargs), after=after, scale=self.adapter.timestep_scale)
            else:
                step = int(step_index)
            timestep = schedule.timesteps[step]
            sigma = schedule.sigmas[step] if schedule.sigmas is not None else getattr(context, "sigma", None)
        elif step_index is not None and getattr(context, "num_inference_steps", None):
            # no scheduler known, but the pipeline says where the loop is (diffusers CacheContext)
            num_steps = int(context.num_inference_steps)
            key = ("cache_context", num_steps)
            step = int(step_index)
            t = getattr(context, "timestep", None)
            timestep = float(torch.as_tensor(t).float().max()) if t is not None else self._timestep(args, kwargs)
            sigma = getattr(context, "sigma", None)
        else:
            raise ValueError(
                f"padecache cannot tell which denoising step this {type(self.model).__name__} call is: no scheduler "
                f"is known. Apply padecache to the pipeline (padecache.apply(pipe, ...)), or call "
                f"padecache.set_schedule(transformer, timesteps) before a hand-written sampling loop."
            )
        # a new generation: another schedule, or a step that does not advance its branch
        if not self._generation_open or not _same_key(key, self._key):
            self._new_generation(num_steps, key, schedule)
        if name is None:
            self._calls_at_step = self._calls_at_step + 1 if step == self._last_step else 0
            name = "main" if self._calls_at_step == 0 else f"call{self._calls_at_step}"
        if name in self.branches and step <= self.branches[name].last_step:
            self._new_generation(num_steps, key, schedule)
            self._calls_at_step = 0
        if not 0 <= step < num_steps:
            raise ValueError(f"step {step} is outside this generation's {num_steps} steps")
        self._last_step = step
        branch = self._branch(name)
        branch.last_step = step
        ctx = StepContext(step, num_steps, timestep, sigma, name, None, schedule)
        ctx = attrs.evolve(ctx, stage=self.detector.stage(ctx))
        compute = bool(branch.policy.should_compute(ctx))
        reason = "policy"
        if not compute and not branch.predictor.ready(ctx):
            compute, reason = True, "warmup"
        self.call = Call(ctx, branch, compute, reason)

    # -- the block stack ---------------------------------------------------------------------------------------
    def _history_dtype(self, like: torch.Tensor) -> torch.dtype:
        return torch.float32 if self.config.engine.history_dtype == "float32" else like.dtype

    def stack_input(self, hidden: torch.Tensor) -> bool:
        """First block about to run: remember its input; on a predicted step, predict.  True = skip blocks."""
        call = self.call
        if call is None or call.x_in is not None:  # a second pass through the stack in one call: leave it alone
            return bool(call and call.skip)
        call.x_in = hidden.detach().to(self._history_dtype(hidden))
        if call.compute:
            return False
        prediction = call.branch.predictor.predict(call.ctx, call.x_in)
        if self.config.engine.guard and not self._acceptable(call.branch, prediction):
            call.compute, call.reason = True, "fallback"
            return False
        call.prediction, call.skip, call.reason = prediction, True, "forecast"
        return True

    def _acceptable(self, branch: Branch, prediction: torch.Tensor) -> bool:
        """One reduction, one host sync: finite, and no row larger than ``max_growth`` x its largest computed
        residual.  A NaN or inf anywhere in a row makes that row's norm non-finite."""
        norms = row_norm(prediction)
        ok = torch.isfinite(norms).all()
        if branch.max_norm is not None:
            ok = ok & (norms <= branch.max_norm * self.config.engine.max_growth).all()
        return bool(ok)

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """Head about to run on the block-stack output: inject the prediction, or record the real residual."""
        call = self.call
        if call is None or call.done or call.x_in is None:
            return hidden
        call.done = True
        branch, ctx = call.branch, call.ctx
        if call.skip:
            residual = call.prediction
            out = (call.x_in + residual).to(hidden.dtype)
        else:
            residual = hidden.detach().to(call.x_in.dtype) - call.x_in
            norms = row_norm(residual)
            branch.max_norm = norms if branch.max_norm is None else torch.maximum(branch.max_norm, norms)
            out = hidden
        branch.predictor.update(ctx, residual, call.x_in, computed=not call.skip)
        branch.policy.observe(ctx, residual, computed=not call.skip)
        indicators = {**branch.policy.indicators(), **(branch.predictor.indicators() if call.skip else {})}
        self.recorder.add(
            StepRecord(ctx.step, branch.name, not call.skip, call.reason, ctx.stage.value, indicators),
            self.state_bytes(),
        )
        return out

    def end(self) -> None:
        call, self.call = self.call, None
        if call is not None and not call.done and call.x_in is not None:
            raise RuntimeError(
                f"padecache: {type(self.model).__name__}.{self.adapter.head} was never called after the block stack; "
                f"the adapter {self.adapter.name!r} does not match this model"
            )

    def state_bytes(self) -> int:
        seen: dict[int, int] = {}
        for b in self.branches.values():
            for t in (*b.predictor.state_tensors(), *b.policy.state_tensors()):
                if isinstance(t, torch.Tensor):
                    seen[t.data_ptr()] = t.numel() * t.element_size()
        return sum(seen.values())

    def stats(self):
        return self.recorder.snapshot()


# -- hooks ----------------------------------------------------------------------------------------------------


def _diffusers_hook_cls():
    from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

    class _NoState(BaseState):
        def reset(self, *args, **kwargs) -> None:
            pass

    class PadeCacheHook(ModelHook):
        """Transformer-level hook: receives ``cache_context`` and the pipelines' end-of-call reset."""

        _is_stateful = True

        def __init__(self, engine: Engine):
            super().__init__()
            self.engine = engine
            self.context = StateManager(_NoState)

        def pre_forward(self, module, *args, **kwargs):
            self.engine.begin(args, kwargs, self.context._context)
            return args, kwargs

        def post_forward(self, module, output):
            self.engine.end()
            return output

        def reset_state(self, module):
            self.engine.reset()
            return module

    return PadeCacheHook


def _wrap_block(engine: Engine, list_name: str, block: nn.Module, first: bool) -> None:
    original = block.forward  # bound method of the class (or a user's override, restored as is)

    @functools.wraps(original)
    def forward(*args, **kwargs):
        if first and engine.call is not None and engine.call.x_in is None:
            engine.stack_input(engine.adapter.stack_input(args, kwargs))
        call = engine.call
        if call is not None and call.skip:
            return engine.adapter.skip_output(list_name, args, kwargs)
        return original(*args, **kwargs)

    forward.__padecache_original__ = original
    block.forward = forward


def _head_pre_hook(engine: Engine):
    def hook(module, args, kwargs):
        if engine.call is None:
            return None
        if args:
            return (engine.head_input(args[0]), *args[1:]), kwargs
        for key in ("hidden_states", "x", "input"):
            if key in kwargs:
                return args, {**kwargs, key: engine.head_input(kwargs[key])}
        return None

    return hook


def attach(model: nn.Module, adapter: Adapter, config: CacheConfig, source: Any | None) -> Engine:
    from diffusers.hooks.hooks import HookRegistry

    if model in _ENGINES:
        raise ValueError(
            f"padecache is already applied to this {type(model).__name__}; call padecache.remove(...) first"
        )
    if getattr(model, "is_cache_enabled", False):
        raise ValueError(
            f"a diffusers cache is enabled on this {type(model).__name__}; call `.disable_cache()` before padecache.apply"
        )
    engine = Engine(model, adapter, config, source)
    blocks = adapter.blocks(model)
    head = adapter.head_module(model)
    had_registry = hasattr(model, "_diffusers_hook")
    had_forward = "forward" in model.__dict__
    registry = HookRegistry.check_if_exists_or_initialize(model)
    registry.register_hook(_diffusers_hook_cls()(engine), _HOOK_NAME)
    engine.handles.append(("registry", had_registry, had_forward))
    for k, (list_name, _, block) in enumerate(blocks):
        if "forward" in block.__dict__ and hasattr(block.forward, "__padecache_original__"):
            raise ValueError("a block of this model is already wrapped by padecache")
        had = "forward" in block.__dict__
        _wrap_block(engine, list_name, block, first=(k == 0))
        engine.handles.append(("block", block, had))
    engine.handles.append(("head", head.register_forward_pre_hook(_head_pre_hook(engine), with_kwargs=True)))
    _ENGINES[model] = engine
    return engine


def detach(model: nn.Module) -> None:
    engine = _ENGINES.pop(model, None)
    if engine is None:
        raise ValueError(f"padecache is not applied to this {type(model).__name__}")
    for handle in reversed(engine.handles):
        kind = handle[0]
        if kind == "head":
            handle[1].remove()
        elif kind == "block":
            _, block, had = handle
            original = block.forward.__padecache_original__
            if had:
                block.forward = original
            else:
                del block.forward
        elif kind == "registry":
            _, had_registry, had_forward = handle
            registry = model._diffusers_hook
            registry.remove_hook(_HOOK_NAME, recurse=False)
            if not had_forward and "forward" in model.__dict__:
                del model.forward  # diffusers leaves the bound method as an instance attribute
            if not had_registry and not registry.hooks:
                del model._diffusers_hook
    engine.reset()
