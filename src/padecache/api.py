"""The public one-liners: :func:`apply`, :func:`remove`, :func:`stats`, :func:`set_schedule`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch.nn as nn

from .adapters import GenericAdapter
from .config import CacheConfig, load_config
from .hooks import attach, detach, engine_of
from .interfaces import Schedule
from .plugins import get_registry
from .records import CacheStats
from .schedule import FixedSource, SchedulerSource

__all__ = ["apply", "remove", "stats", "set_schedule", "is_applied"]

T = TypeVar("T")
ConfigLike = CacheConfig | Mapping[str, Any] | str | Path | None


def _unwrap(module: nn.Module) -> nn.Module:
    """The module behind ``torch.compile``: hooks go on the original, the compiled wrapper calls through them."""
    return getattr(module, "_orig_mod", module)


def _transformers(target: Any) -> list[nn.Module]:
    if isinstance(target, nn.Module):
        return [_unwrap(target)]
    found = [getattr(target, name, None) for name in ("transformer", "transformer_2")]
    found = [_unwrap(m) for m in found if isinstance(m, nn.Module)]
    if not found:
        raise TypeError(
            f"padecache.apply expects a diffusers pipeline (with a `.transformer`) or a transformer module, "
            f"got {type(target).__name__}"
        )
    return found


def apply(target: T, config: ConfigLike = None, **sections: Mapping[str, Any] | str) -> T:
    """Turn on feature forecasting for a pipeline or a bare transformer; returns ``target``.

    Args:
        target: a diffusers pipeline (its ``transformer`` and, for Wan 2.2, ``transformer_2`` are
            hooked, and its ``scheduler`` gives the step of each call) or a supported transformer
            (then give the schedule with :func:`set_schedule` or the ``scheduler=`` keyword).
        config: a preset name (``padecache list`` shows them), a path to a TOML file, a dict, or a
            :class:`~padecache.config.CacheConfig`.  Default: the ``"default"`` preset.
        **sections: ``predictor=``, ``policy=``, ``stage=``, ``engine=`` replace a section of ``config``:
            a component name or a dict with ``name`` and options.  ``scheduler=`` names the scheduler
            of a bare transformer.  ``sequence_group=`` names the ``torch.distributed`` process group the
            tokens are sharded over (found by itself under diffusers' context parallelism): every decision
            is then taken on group-wide values, identically on every rank.

    Raises:
        ValueError: unknown names, bad options, or padecache already applied (``remove`` it first).
        TypeError: unsupported model (the message lists the supported classes).

    Example::

        import padecache
        padecache.apply(pipe, "tc-pade-fast")                 # one line; pipe(...) now skips most block stacks
        image = pipe("a squirrel", num_inference_steps=20).images[0]
        print(padecache.stats(pipe).full_passes)             # block-stack passes per branch
        padecache.remove(pipe)
    """
    scheduler = sections.pop("scheduler", None)
    group = sections.pop("sequence_group", None)
    cfg = load_config(config, **sections)
    registry = get_registry()
    models = _transformers(target)
    adapters = []
    for m in models:  # raise before attaching anything
        adapter = registry.adapter_for(m)[0]
        adapters.append(adapter.resolve(m) if isinstance(adapter, GenericAdapter) else adapter)
    for model in models:
        if engine_of(model) is not None:
            raise ValueError(
                f"padecache is already applied to this {type(model).__name__}; call padecache.remove(...) first"
            )
    if scheduler is None and not isinstance(target, nn.Module):
        scheduler = getattr(target, "scheduler", None)
    source = SchedulerSource(scheduler) if scheduler is not None else None
    spans = _expert_spans(target, models)
    attached = []
    try:
        for model, adapter, span in zip(models, adapters, spans):
            attach(model, adapter, cfg, source, span).sequence_group = group
            attached.append(model)
    except BaseException:
        for model in attached:
            detach(model)
        raise
    return target


def remove(target: Any) -> None:
    """Detach padecache from a pipeline or transformer, restoring every hooked ``forward`` exactly."""
    models = [m for m in _transformers(target) if engine_of(m) is not None]
    if not models:
        raise ValueError(f"padecache is not applied to this {type(target).__name__}")
    for model in models:
        detach(model)


def is_applied(target: Any) -> bool:
    return any(engine_of(m) is not None for m in _transformers(target))


def stats(target: Any) -> CacheStats:
    """Statistics of the most recent generation (see :class:`~padecache.stats.CacheStats`)."""
    engines = [engine_of(m) for m in _transformers(target)]
    engines = [e for e in engines if e is not None]
    if not engines:
        raise ValueError(f"padecache is not applied to this {type(target).__name__}")
    if len(engines) == 1:
        return engines[0].stats()
    return CacheStats.combine(e.stats() for e in engines)


def set_schedule(target: Any, timesteps: Sequence[float] | Schedule | None, sigmas: Sequence[float] | None = None) -> None:
    """Tell padecache the sampling schedule of a hand-written loop calling a bare transformer.

    ``timesteps=None`` undoes it: the engine follows the scheduler it was applied with again (if any).
    """
    if timesteps is None:
        schedule = None
    else:
        schedule = timesteps if isinstance(timesteps, Schedule) else Schedule(timesteps, sigmas)
    for model in _transformers(target):
        engine = engine_of(model)
        if engine is None:
            raise ValueError(f"padecache is not applied to this {type(model).__name__}; call padecache.apply first")
        if schedule is None:
            engine.source = getattr(engine, "applied_source", None)
        else:
            if not hasattr(engine, "applied_source"):
                engine.applied_source = engine.source
            engine.source = FixedSource(schedule)


def _expert_spans(target: Any, models: list[nn.Module]) -> list:
    """Which steps each transformer of a two-expert pipeline runs (Wan 2.2: ``boundary_ratio``), else ``None``.

    ``transformer`` takes the steps with ``t >= boundary_ratio * num_train_timesteps``, ``transformer_2`` the
    rest, exactly as the pipeline switches; a static policy then spends its budget within each expert's steps.
    """
    ratio = getattr(getattr(target, "config", None), "boundary_ratio", None)
    scheduler = getattr(target, "scheduler", None)
    if ratio is None or scheduler is None or len(models) < 2:
        return [None] * len(models)
    boundary = float(ratio) * float(getattr(scheduler.config, "num_train_timesteps", 1000))

    def high(schedule: Schedule) -> tuple[int, int]:
        stop = next((i for i, t in enumerate(schedule.timesteps) if t < boundary), schedule.num_steps)
        return 0, stop

    def low(schedule: Schedule) -> tuple[int, int]:
        return high(schedule)[1], schedule.num_steps

    names = [n for n in ("transformer", "transformer_2") if isinstance(getattr(target, n, None), nn.Module)]
    return [high if n == "transformer" else low for n in names]
