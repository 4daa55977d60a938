"""The public one-liners: :func:`apply`, :func:`remove`, :func:`stats`, :func:`set_schedule`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch.nn as nn

from .adapters import GenericAdapter
from .adapters.pipelines import denoisers
from .config import SECTIONS, CacheConfig, ConfigError, load_config
from .hooks import attach, attachment_of, detach
from .interfaces import Schedule
from .options import suggest
from .plugins import get_registry
from .records import CacheStats
from .schedule import FixedSource, SchedulerSource, is_scheduler

__all__ = ["apply", "remove", "stats", "set_schedule", "is_applied", "reset"]

T = TypeVar("T")
ConfigLike = CacheConfig | Mapping[str, Any] | str | Path | None


def _transformers(target: Any) -> list[nn.Module]:
    return [d.module for d in denoisers(target)]


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
            of a bare transformer (a diffusers scheduler: anything with ``set_timesteps`` and ``timesteps``).
            ``sequence_group=`` names the ``torch.distributed`` process group the tokens are sharded over
            (found by itself under diffusers' context parallelism): every decision is then taken on
            group-wide values, identically on every rank.

    Raises:
        ValueError: unknown names, bad options, padecache already applied (``remove`` it first), or a
            diffusers cache enabled on the transformer (``disable_cache()`` it first).
        TypeError: unsupported model (the message lists the supported classes), or a ``scheduler=`` that is
            not a scheduler.

    Notes:
        * **Gradients** do not flow through forecast steps: a forecast is computed from detached history, so
          the output of such a step depends on neither the model's parameters nor anything before the block
          stack.  Sampling with gradients recorded (``torch.is_grad_enabled()`` and parameters that require
          grad) warns once in eval mode and raises in training mode (``model.train()``), at the first step
          padecache would forecast: to train through sampling, ``remove`` padecache (or apply ``"none"``);
          to sample, use ``torch.inference_mode()``.  Diffusers pipelines already sample without gradients.
        * **Threads**: a hooked pipeline runs one generation at a time, as its scheduler does.  A call from a
          second thread while another thread's generation runs raises :class:`~padecache.ThreadConflictError`
          before it changes anything, and the interrupted generation raises it too at its next call (the
          other thread may have changed the scheduler or the cache context it depends on).  Sequential use
          from several threads (a thread pool) is fine.  Use one pipeline per thread, or a lock.
        * **Stacking**: while padecache is applied, diffusers' ``is_cache_enabled`` is true and
          ``enable_cache`` refuses; padecache refuses a transformer with a diffusers cache enabled.

    Example::

        import padecache
        padecache.apply(pipe, "tc-pade-fast")                 # one line; pipe(...) now skips most block stacks
        image = pipe("a squirrel", num_inference_steps=20).images[0]
        print(padecache.stats(pipe).full_passes)             # block-stack passes per branch
        padecache.remove(pipe)
    """
    keywords = [*SECTIONS, "engine", "scheduler", "sequence_group"]
    for key in sections:
        if key not in keywords:
            raise ConfigError(f"apply(): unknown keyword {key!r}{suggest(key, keywords)}; valid: {', '.join(keywords)}")
    scheduler = sections.pop("scheduler", None)
    group = sections.pop("sequence_group", None)
    if scheduler is not None and not is_scheduler(scheduler):
        raise TypeError(
            f"scheduler={type(scheduler).__name__}(...) is not a diffusers scheduler (one with `set_timesteps` and "
            f"`timesteps`); pass the scheduler your loop steps, or give the timesteps with "
            f"padecache.set_schedule(model, timesteps)"
        )
    cfg = load_config(config, **sections)
    registry = get_registry()
    found = denoisers(target)
    adapters = []
    for d in found:  # raise before attaching anything
        adapter = registry.adapter_for(d.module)[0]
        adapters.append(adapter.resolve(d.module) if isinstance(adapter, GenericAdapter) else adapter)
    for d in found:
        if attachment_of(d.module) is not None:
            raise ValueError(
                f"padecache is already applied to this {type(d.module).__name__}; call padecache.remove(...) first"
            )
    if scheduler is None and not isinstance(target, nn.Module) and getattr(target, "scheduler", None) is not None:
        source = SchedulerSource(pipeline=target)  # the pipeline's scheduler at each call, replaced or not
    else:
        source = SchedulerSource(scheduler) if scheduler is not None else None
    attached = []
    try:
        for d, adapter in zip(found, adapters):
            attach(d.module, adapter, cfg, source, d.span).sequence_group = group
            attached.append(d.module)
    except BaseException:
        for model in attached:
            detach(model)
        raise
    if not isinstance(target, nn.Module):
        _end_generations_with_the_call(target, attached)
    return target


_END = "maybe_free_model_hooks"  # what every diffusers pipeline calls last in __call__, interrupted or not
_LOOP = "progress_bar"  # the context every diffusers pipeline runs its denoising loop in: an exception leaves through it


def _end_generations_with_the_call(pipe: Any, models: list) -> None:
    """End the hooked models' generations when ``pipe``'s call ends, also where the transformer has no diffusers
    cache hooks to be reset by (SD3, DiT, PixArt), the run stopped early (``pipe._interrupt``) or the loop raised
    outside the transformer (a ``callback_on_step_end`` that cancels a request): a generation left claimed would
    refuse the next call from another thread.  Instance attributes only; undone by :func:`remove`."""

    known = _applied_through(pipe)
    if known is not None:  # applied again after its transformer was swapped: the wrappers end the new one's too
        known.extend(m for m in models if m not in known)
        return
    models = list(models)

    def end() -> None:
        for model in models:
            attachment = attachment_of(model)
            if attachment is not None:
                attachment.pipeline_call_ended()

    original = getattr(pipe, _END, None)
    if callable(original) and _END not in vars(pipe):
        def end_then_free(*args, **kwargs):
            end()
            return original(*args, **kwargs)

        end_then_free.padecache, end_then_free.models = True, models
        setattr(pipe, _END, end_then_free)
    bar = getattr(pipe, _LOOP, None)
    if callable(bar) and _LOOP not in vars(pipe):
        def loop_that_ends_on_error(*args, **kwargs):
            return _EndsOnError(bar(*args, **kwargs), end)

        loop_that_ends_on_error.padecache, loop_that_ends_on_error.models = True, models
        setattr(pipe, _LOOP, loop_that_ends_on_error)


def _wrappers(pipe: Any) -> dict[str, Any]:
    """padecache's end-of-call wrappers on ``pipe`` (instance attributes), by name."""
    found = getattr(pipe, "__dict__", {})
    return {name: found[name] for name in (_END, _LOOP) if getattr(found.get(name), "padecache", False)}


def _applied_through(pipe: Any) -> list | None:
    """The models padecache was applied to through ``pipe`` (its end-of-call wrappers hold them), or ``None``."""
    return next((wrapper.models for wrapper in _wrappers(pipe).values()), None)


class _EndsOnError:
    """The pipeline's progress bar, unchanged, except that an exception leaving its ``with`` block ends the
    generation (the pipeline's own end, ``maybe_free_model_hooks``, never runs then)."""

    def __init__(self, bar: Any, end: Any):
        self._bar, self._end = bar, end

    def __enter__(self):
        entered = self._bar.__enter__()
        return self if entered is self._bar else entered

    def __exit__(self, kind, error, trace):
        try:
            return self._bar.__exit__(kind, error, trace)
        finally:
            if kind is not None:
                self._end()

    def __iter__(self):
        return iter(self._bar)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bar, name)


def _undo_call_end(pipe: Any) -> None:
    for name in _wrappers(pipe):
        delattr(pipe, name)


def remove(target: Any) -> None:
    """Detach padecache from a pipeline or transformer, restoring every hooked ``forward`` exactly."""
    models = [m for m in _transformers(target) if attachment_of(m) is not None]
    if not isinstance(target, nn.Module):  # also a transformer swapped out of the pipeline after apply
        models += [m for m in _applied_through(target) or () if attachment_of(m) is not None and m not in models]
        _undo_call_end(target)
    if not models:
        raise ValueError(f"padecache is not applied to this {type(target).__name__}")
    for model in models:
        detach(model)


def is_applied(target: Any) -> bool:
    """Whether padecache is applied to ``target`` (a pipeline or transformer; anything else: ``False``)."""
    try:
        models = _transformers(target)
    except TypeError:  # not a pipeline or a module: nothing padecache could be applied to
        return False
    return any(attachment_of(m) is not None for m in models)


def _attachments(target: Any) -> list:
    found = [a for a in (attachment_of(m) for m in _transformers(target)) if a is not None]
    if not found:
        raise ValueError(f"padecache is not applied to this {type(target).__name__}; call padecache.apply first")
    return found


def stats(target: Any) -> CacheStats:
    """Statistics of the most recent generation (see :class:`~padecache.records.CacheStats`; ``print`` it for a
    summary)."""
    found = _attachments(target)
    if len(found) == 1:
        return found[0].stats()
    return CacheStats.combine(a.stats() for a in found)


def reset(target: Any) -> None:
    """End the current generation of a pipeline or transformer: histories are forgotten (stats stay readable) and
    the next call starts a new generation.  Pipelines do this themselves at the end of every call; use it after a
    hand-written loop stopped midway, or to free a model whose generation another thread abandoned."""
    for attachment in _attachments(target):
        attachment.reset()


def set_schedule(target: Any, timesteps: Sequence[float] | Schedule | None, sigmas: Sequence[float] | None = None, *,
                 euler_sigmas: Sequence[float] | None = None) -> None:
    """Tell padecache the sampling schedule of a hand-written loop calling a bare transformer.

    ``timesteps`` is a sequence of numbers (a list, a tuple, a tensor such as ``scheduler.timesteps``) or a
    :class:`~padecache.Schedule`; ``timesteps=None`` undoes it: the engine follows the scheduler it was applied
    with again (if any).  ``euler_sigmas`` (one more than the steps, the final sigma last: a
    ``FlowMatchEulerDiscreteScheduler``'s ``sigmas``; for other schedulers ``padecache.correction.euler_grid(scheduler,
    scheduler.timesteps)``, ``None`` where there is none) says the loop's update is ``x += (sigma[k+1] - sigma[k]) *
    output``, which ``engine.gap_correction`` needs; without it the correction is off.

    Example::

        padecache.set_schedule(transformer, scheduler.timesteps, euler_sigmas=scheduler.sigmas)
    """
    schedule = timesteps
    if timesteps is not None and not isinstance(timesteps, Schedule):
        try:
            schedule = Schedule(timesteps, sigmas, euler_sigmas=euler_sigmas)
        except (TypeError, ValueError) as err:
            raise type(err)(f"padecache.set_schedule: {err}") from None
    if schedule is not None:
        given = schedule.timesteps + (schedule.sigmas or ()) + (schedule.euler_sigmas or ())
        bad = next((v for v in given if not math.isfinite(v)), None)
        if bad is not None:
            raise ValueError(f"padecache.set_schedule: the timesteps and sigmas must be finite numbers, got {bad}")
        if schedule.timesteps[0] < schedule.timesteps[-1]:  # (reliability) else every call starts a new generation
            raise ValueError(f"padecache.set_schedule: the timesteps go up ({schedule.timesteps[0]:g} ... "
                             f"{schedule.timesteps[-1]:g}); pass them in sampling order, from the noisiest step, as "
                             f"scheduler.timesteps holds them")
    for attachment in _attachments(target):
        if schedule is None:
            attachment.source = attachment.applied_source
        else:
            attachment.source = FixedSource(schedule, attachment.applied_source)
