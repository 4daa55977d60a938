"""The public one-liners: :func:`apply`, :func:`remove`, :func:`stats`, :func:`set_schedule`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch.nn as nn

from .config import CacheConfig, load_config
from .engine import FixedSource, SchedulerSource, attach, detach, engine_of
from .interfaces import Schedule
from .plugins import get_registry
from .stats import CacheStats

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
            of a bare transformer.

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
    cfg = load_config(config, **sections)
    registry = get_registry()
    models = _transformers(target)
    adapters = [registry.adapter_for(m)[0] for m in models]  # raise before attaching anything
    for model in models:
        if engine_of(model) is not None:
            raise ValueError(
                f"padecache is already applied to this {type(model).__name__}; call padecache.remove(...) first"
            )
    if scheduler is None and not isinstance(target, nn.Module):
        scheduler = getattr(target, "scheduler", None)
    source = SchedulerSource(scheduler) if scheduler is not None else None
    attached = []
    try:
        for model, adapter in zip(models, adapters):
            attach(model, adapter, cfg, source)
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


def set_schedule(target: Any, timesteps: Sequence[float] | Schedule, sigmas: Sequence[float] | None = None) -> None:
    """Tell padecache the sampling schedule of a hand-written loop calling a bare transformer."""
    schedule = timesteps if isinstance(timesteps, Schedule) else Schedule(timesteps, sigmas)
    for model in _transformers(target):
        engine = engine_of(model)
        if engine is None:
            raise ValueError(f"padecache is not applied to this {type(model).__name__}; call padecache.apply first")
        engine.source = FixedSource(schedule)
