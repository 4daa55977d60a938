"""Which transformers of a pipeline padecache hooks, and which steps each one runs.

The one place that answers "what are the denoisers of this pipeline": ``padecache.apply`` / ``remove`` /
``stats``, ``padecache generate`` and the benchmark all ask :func:`denoisers`.  A pipeline's ``transformer`` is
hooked, and ``transformer_2`` where there is one: Wan 2.2's two experts, the high-noise ``transformer`` taking
the steps with ``t >= boundary_ratio * num_train_timesteps`` and ``transformer_2`` the rest, exactly as the
pipeline switches, so each expert spends its own budget over its own steps.  ``torch.compile`` wrappers are
looked through: hooks go on the module inside, and the compiled wrapper calls through them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch.nn as nn

from ..interfaces import Schedule

__all__ = ["Denoiser", "denoisers", "TRANSFORMER_ATTRIBUTES"]

#: the pipeline attributes holding transformers, in the order their experts run
TRANSFORMER_ATTRIBUTES = ("transformer", "transformer_2")

Span = Callable[[Schedule], tuple[int, int]]


@attrs.frozen
class Denoiser:
    """One transformer of a pipeline (or a bare transformer).

    Attributes:
        name: the pipeline attribute holding it (``"transformer"``, ``"transformer_2"``), or ``""`` for a bare module.
        module: the transformer itself (the module behind a ``torch.compile`` wrapper).
        span: for a pipeline that hands steps to several experts, ``span(schedule) -> (first, stop)``, the steps
            this one runs; ``None``: every step.
    """

    name: str
    module: nn.Module
    span: Span | None = None


def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "_orig_mod", module)


def denoisers(target: Any) -> list[Denoiser]:
    """The transformers of ``target`` (a diffusers pipeline, or a transformer module), experts included.

    Raises:
        TypeError: ``target`` is neither a module nor a pipeline with a ``transformer``.
    """
    if isinstance(target, nn.Module):
        return [Denoiser("", _unwrap(target))]
    names = [n for n in TRANSFORMER_ATTRIBUTES if isinstance(getattr(target, n, None), nn.Module)]
    if not names:
        raise TypeError(
            f"padecache.apply expects a diffusers pipeline (with a `.transformer`) or a transformer module, "
            f"got {type(target).__name__}"
        )
    spans = _expert_spans(target, names)
    return [Denoiser(n, _unwrap(getattr(target, n)), span) for n, span in zip(names, spans)]


def _expert_spans(target: Any, names: list[str]) -> list[Span | None]:
    """Which steps each expert of a two-expert pipeline runs (Wan 2.2: ``boundary_ratio``), else ``None``."""
    ratio = getattr(getattr(target, "config", None), "boundary_ratio", None)
    scheduler = getattr(target, "scheduler", None)
    if ratio is None or scheduler is None or len(names) < 2:
        return [None] * len(names)
    boundary = float(ratio) * float(getattr(scheduler.config, "num_train_timesteps", 1000))

    def high(schedule: Schedule) -> tuple[int, int]:
        stop = next((i for i, t in enumerate(schedule.timesteps) if t < boundary), schedule.num_steps)
        return 0, stop

    def low(schedule: Schedule) -> tuple[int, int]:
        return high(schedule)[1], schedule.num_steps

    return [high if n == "transformer" else low for n in names]
