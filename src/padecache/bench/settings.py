"""The types a benchmark method is made of: :class:`Setting` (one point of a sweep), :class:`Attached` (a method
turned on for one pipeline), :class:`Method` (one entry of ``methods``, resolved) and :class:`RunContext` (what a
method may know about the pipeline).  :mod:`padecache.bench.methods` resolves names into them, and
:mod:`padecache.bench.peers` builds the other tools' settings from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

__all__ = ["Attached", "Setting", "Method", "RunContext"]


def _noop() -> None:
    return None


@attrs.define
class Attached:
    """A method turned on for one pipeline.

    ``reset()`` runs before each generation; ``suspend()`` takes the method off the pipeline so that full
    compute can be timed in between, ``resume()`` puts it back; ``close()`` releases it (called suspended);
    ``stats()`` returns padecache's :class:`~padecache.records.CacheStats` of the last generation, or ``None``.
    """

    reset: Callable[[], None] = _noop
    suspend: Callable[[], None] = _noop
    resume: Callable[[], None] = _noop
    close: Callable[[], None] = _noop
    stats: Callable[[], Any] = lambda: None


@attrs.frozen
class Setting:
    """One point of a sweep.

    Attributes:
        method: label shown in tables and plots (the family, preset or peer name).
        config: what ``results.json`` records about it.
        attach: ``attach(pipe) -> Attached``: turn the method on (the pipeline runs it until ``suspend``).
        target: the nominal pass speedup of this sweep point (``None``: run as given).
        kind: ``"padecache"`` or ``"peer"``.
        plugin, version: who provided the method.
        group, published: see :class:`~padecache.bench.families.Family`.
        components: per section, ``{"name", "plugin", "version"}``.
        skip: why this setting cannot run here (a peer that is not installed); recorded, never attached.
        summary: the settings in a few words, for tables (``results.json`` keeps it with the record).
    """

    method: str
    config: dict
    attach: Callable[[Any], Attached]
    target: float | None = None
    kind: str = "padecache"
    plugin: str = "padecache"
    version: str = ""
    group: str = ""
    published: bool = False
    components: dict = attrs.field(factory=dict)
    skip: str | None = None
    summary: str = ""


@attrs.frozen
class RunContext:
    """What a method may need to know about the pipeline it will run on (peers calibrate on it).

    Attributes:
        pipe, generate, seeds: as given to :func:`~padecache.bench.compare`.
        steps: denoising steps per generation (``None`` if unknown).
        calls_per_step: transformer calls per step (2 for pipelines that run guidance as two calls).
        block_lists: names of the transformer's block lists, in execution order (from its adapter).
        num_blocks: blocks in its stack (``None`` if unknown): what a block range's share of a pass is counted in.
    """

    pipe: Any = None
    generate: Callable[[Any, int], Any] | None = None
    seeds: tuple[int, ...] = (0,)
    steps: int | None = None
    calls_per_step: int = 1
    block_lists: tuple[str, ...] = ()
    num_blocks: int | None = None


@attrs.frozen
class Method:
    """One entry of ``methods``, resolved (its settings depend on the step count and targets)."""

    label: str
    kind: str  # "family", "sweep", "config", "peer", "setting"
    expand: Callable[[int | None, Sequence[float], Any], list[Setting]]
    plugin: str = ""
    version: str = ""

    def settings(self, steps: int | None, targets: Sequence[float], context: Any = None) -> list[Setting]:
        out, seen = [], set()
        for s in self.expand(steps, targets, context):
            key = (s.method, repr(sorted((k, repr(v)) for k, v in s.config.items() if k != "calibrated_on")))
            if key not in seen:  # one config reached from two targets runs once (at the first)
                seen.add(key)
                out.append(s)
        return out
