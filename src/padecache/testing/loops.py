"""The sampling loops the contract suites judge components in, and how they name a component that fails.

A tiny transformer with random weights is a poor judge of a forecast: its timestep embedding mixes every
sinusoid frequency, so its block-stack residual jumps from step to step (second differences larger than first
differences), and a correct second-order forecast looks like an explosion.  A trained model's residual moves
smoothly along a sampling run (dit-mnist: second differences 0.6 of the first).  So the kit's models keep only the
slow part of their timestep embedding, as training teaches a model to (:func:`smooth_in_time`), and an
epsilon-predicting model's output is read as v-prediction without clipping (:func:`judge_scheduler`: an untrained
epsilon estimate makes the run explode or, clipped, turn chaotic).  Their residuals then move as a trained model's
do (:func:`roughness`: 0.1-0.3 instead of 1.2-1.6), and a correct component is judged on what it does, not on the
artefacts of random weights.

:func:`sampling_loop` runs a configuration through such a loop, called as the family's pipeline calls its model;
:func:`full_compute` and :func:`zero_forecast` are its references.  :class:`ComponentFailed` is what the kit raises
when a component's own code raises: the component, its plugin, the step and the branch are named.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch

import padecache
from padecache.interfaces import Predictor

__all__ = ["STEPS", "smooth_in_time", "judge_model", "judge_scheduler", "sampling_loop", "full_compute", "zero_forecast",
           "roughness", "psnr", "error", "ComponentFailed", "provenance", "calling"]

#: steps of every sampling loop the kit runs
STEPS = 20
#: a sinusoid of the timestep embedding is kept when its phase moves at most this much (radians) per step...
MAX_PHASE = 0.3
#: ...of a 20-step run over timesteps 1000..0
STEP_SPACING = 1000 / STEPS


class ComponentFailed(AssertionError):
    """A component's own code raised inside the kit; the message names the component, its plugin, where and why."""


def provenance(kind: str, name: str) -> str:
    """``"predictor 'ab2' (plugin my-plugin 1.0)"``: a component as errors name it."""
    try:
        entry = padecache.get_registry().get(kind, name)
    except ValueError:
        return f"{kind} {name!r}"
    return f"{kind} {name!r} (plugin {entry.plugin} {entry.version})".rstrip()


def calling(kind: str, name: str, method: str, fn: Callable[..., Any], ctx: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(ctx, *args, **kwargs)``; an exception it raises comes back as :class:`ComponentFailed` naming the
    component, its plugin, the method, the step and the branch (the original exception is its cause)."""
    try:
        return fn(ctx, *args, **kwargs)
    except ComponentFailed:
        raise
    except Exception as err:
        where = f"at step {getattr(ctx, 'step', '?')}, branch {getattr(ctx, 'branch', '?')!r}"
        raise ComponentFailed(f"{provenance(kind, name)} raised {type(err).__name__} in {method}() {where}: {err}") from err


def smooth_in_time(model: torch.nn.Module, max_phase: float = MAX_PHASE, spacing: float = STEP_SPACING) -> int:
    """Keep only the slow sinusoids of ``model``'s diffusers timestep embeddings; returns the embeddings changed.

    A channel of ``Timesteps`` at frequency ``f`` turns by ``f * spacing`` radians per step; the input weights of the
    ``TimestepEmbedding`` reading it are zeroed where that exceeds ``max_phase``.  Models without diffusers'
    sinusoidal embeddings are left as they are.
    """
    from diffusers.models.embeddings import TimestepEmbedding, Timesteps

    projections = [m for m in model.modules() if isinstance(m, Timesteps)]
    embeddings = [m for m in model.modules() if isinstance(m, TimestepEmbedding)]
    changed = 0
    for proj in projections:
        half = proj.num_channels // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half) / (half - proj.downscale_freq_shift))
        fast = torch.cat([freqs, freqs]) * spacing > max_phase  # sin and cos halves (either order)
        for emb in embeddings:
            if emb.linear_1.in_features == 2 * half:
                with torch.no_grad():
                    emb.linear_1.weight[:, fast] = 0
                changed += 1
    return changed


@functools.cache
def judge_model(family: str) -> torch.nn.Module:
    """The tiny ``family`` transformer the kit judges components on (:func:`smooth_in_time` applied; built once)."""
    from .families import tiny_transformer

    model = tiny_transformer(family)
    smooth_in_time(model)
    return model


def judge_scheduler(family: str) -> Any:
    """The family's scheduler, reading an epsilon-predicting model's output as v-prediction, without clipping.

    An untrained model's epsilon estimate is unrelated to the noise, so the x0 it implies is divided by
    ``sqrt(alpha_bar)`` (about 0.006 at the first step): the run explodes, or with ``clip_sample`` turns chaotic, and
    every method lands far from full compute.  Read as v-prediction the same outputs give a bounded, smooth run, as a
    trained model's are.  The model is called exactly as before; flow-matching schedulers are left as they are.
    """
    from .families import make_scheduler

    scheduler = make_scheduler(family)
    config = scheduler.config
    changes = {}
    if config.get("prediction_type") == "epsilon":
        changes["prediction_type"] = "v_prediction"
    if config.get("clip_sample", False):
        changes["clip_sample"] = False
    return type(scheduler).from_config(config, **changes) if changes else scheduler


def sampling_loop(family: str, config: Any, steps: int = STEPS, batch: int = 2) -> tuple[torch.Tensor, Any]:
    """A ``steps``-step loop on :func:`judge_model`, called as the family's pipeline calls it, with ``config``
    applied: the final latents and padecache's stats."""
    from .families import run_loop
    from .pipelines import applied

    model, scheduler = judge_model(family), judge_scheduler(family)
    with applied(model, config, scheduler=scheduler):
        out = run_loop(family, model, steps=steps, scheduler=scheduler, batch=batch)
        stats = padecache.stats(model)
    return out, stats


@functools.cache
def full_compute(family: str) -> torch.Tensor:
    """The loop's result with caching off."""
    return sampling_loop(family, "none")[0]


class _Zero(Predictor):
    """Forecasts a zero residual: the skipped block stack contributes nothing (what any forecast must beat)."""

    name = "contract-zero"

    def update(self, ctx, residual, block_input, computed):
        pass

    def predict(self, ctx, block_input):
        return torch.zeros_like(block_input)

    def reset(self):
        pass


class _ZeroPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [_Zero]


@functools.cache
def zero_forecast(family: str, policy: tuple = (("name", "budget"), ("speedup", 2.5))) -> torch.Tensor:
    """The loop's result when every skipped step forecasts a zero residual, on ``policy``."""
    plugin = _ZeroPlugin()
    padecache.register_plugin(plugin, name="padecache-testing-zero")
    try:
        return sampling_loop(family, {"predictor": {"name": "contract-zero"}, "policy": dict(policy)})[0]
    finally:
        padecache.unregister_plugin(plugin)


class _Recorder(Predictor):
    """Records every computed residual (policy ``always``)."""

    name = "contract-recorder"
    seen: list = []

    def update(self, ctx, residual, block_input, computed):
        _Recorder.seen.append((ctx.branch, residual.detach().float().clone()))

    def predict(self, ctx, block_input):
        raise RuntimeError("the recorder never forecasts")

    def reset(self):
        pass


class _RecorderPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [_Recorder]


def roughness(family: str) -> float:
    """How rough the loop's residual trajectory is: sum of second differences over sum of first differences, per branch
    (below 1 for a smooth trajectory, as a trained model's: dit-mnist 0.6; the kit's models 0.1-0.3; random weights
    on the families' own schedulers 1.2-1.6)."""
    plugin = _RecorderPlugin()
    padecache.register_plugin(plugin, name="padecache-testing-recorder")
    _Recorder.seen = []
    try:
        sampling_loop(family, {"predictor": {"name": "contract-recorder"}, "policy": {"name": "always"}})
    finally:
        padecache.unregister_plugin(plugin)
    branches: dict[str, list[torch.Tensor]] = {}
    for branch, r in _Recorder.seen:
        branches.setdefault(branch, []).append(r)
    _Recorder.seen = []
    d1 = sum((b - a).norm().item() for rs in branches.values() for a, b in zip(rs, rs[1:]))
    d2 = sum((c - 2 * b + a).norm().item() for rs in branches.values() for a, b, c in zip(rs, rs[1:], rs[2:]))
    return d2 / d1 if d1 else 0.0


def error(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean squared difference."""
    return (x.float() - ref.float()).pow(2).mean().item()


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB with the reference's span as the peak."""
    mse = error(x, ref)
    span = (ref.max() - ref.min()).item() or 1.0
    return math.inf if mse == 0 else 10 * math.log10(span**2 / mse)
