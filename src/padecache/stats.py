"""What happened during a generation: which steps ran the block stack, fallbacks, memory, indicators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["StepRecord", "CacheStats", "StatsRecorder"]

#: why a step was computed or predicted
REASONS = ("policy", "warmup", "fallback", "forecast")


@attrs.frozen
class StepRecord:
    """One transformer call.

    ``reason``: ``"policy"`` (the policy asked to compute), ``"warmup"`` (the policy asked to predict but
    the predictor had too little history), ``"fallback"`` (the prediction was non-finite or exploding, so
    the step was computed instead) or ``"forecast"`` (the block stack was skipped).
    """

    step: int
    branch: str
    computed: bool
    reason: str
    stage: str
    indicators: dict[str, float] = attrs.field(factory=dict)


@attrs.frozen
class CacheStats:
    """Statistics of the most recent generation of one transformer.

    Attributes:
        total_steps: denoising steps of the generation.
        branches: guidance branches seen (``("main",)`` for batched CFG or no CFG).
        full_passes: block-stack executions per branch, i.e. full passes per generation.
        computed_steps: transformer calls that ran the block stack (all branches).
        forecast_steps: transformer calls whose block stack was predicted.
        fallbacks: predictions rejected (non-finite or exploding) and replaced by a computed step.
        cache_bytes: peak bytes held by predictor and policy state during the generation.
        records: one :class:`StepRecord` per transformer call, in call order.
        generations: generations this transformer has run since padecache was applied.
    """

    total_steps: int = 0
    branches: tuple[str, ...] = ()
    full_passes: float = 0.0
    computed_steps: int = 0
    forecast_steps: int = 0
    fallbacks: int = 0
    cache_bytes: int = 0
    records: tuple[StepRecord, ...] = ()
    generations: int = 0

    @property
    def pass_speedup(self) -> float:
        """``total_steps / full_passes`` (1.0 with caching off)."""
        return self.total_steps / self.full_passes if self.full_passes else float("inf")

    def mask(self, branch: str | None = None) -> list[bool]:
        """Computed (True) or predicted, per step, for ``branch`` (default: the first one)."""
        branch = self.branches[0] if branch is None and self.branches else branch
        out = [False] * self.total_steps
        for r in self.records:
            if r.branch == branch:
                out[r.step] = r.computed
        return out

    def indicator(self, name: str, branch: str | None = None) -> list[float | None]:
        """Per-step values of indicator ``name`` (e.g. ``"tsi"``) for ``branch``; ``None`` where absent."""
        branch = self.branches[0] if branch is None and self.branches else branch
        out: list[float | None] = [None] * self.total_steps
        for r in self.records:
            if r.branch == branch and name in r.indicators:
                out[r.step] = r.indicators[name]
        return out

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=True)
        d["records"] = [attrs.asdict(r) for r in self.records]
        d["branches"] = list(self.branches)
        d["pass_speedup"] = self.pass_speedup
        return d

    @classmethod
    def combine(cls, parts: Iterable[CacheStats]) -> CacheStats:
        """Merge the stats of several transformers of one pipeline (e.g. Wan 2.2's two experts)."""
        parts = [p for p in parts if p.total_steps]
        if not parts:
            return cls()
        branches = tuple(dict.fromkeys(b for p in parts for b in p.branches))
        computed = sum(p.computed_steps for p in parts)
        return cls(
            total_steps=max(p.total_steps for p in parts),
            branches=branches,
            full_passes=computed / max(1, len(branches)),
            computed_steps=computed,
            forecast_steps=sum(p.forecast_steps for p in parts),
            fallbacks=sum(p.fallbacks for p in parts),
            cache_bytes=sum(p.cache_bytes for p in parts),
            records=tuple(r for p in parts for r in p.records),
            generations=max(p.generations for p in parts),
        )


class StatsRecorder:
    """Mutable accumulator behind :class:`CacheStats` (one per engine, reset at each generation)."""

    def __init__(self):
        self.generations = 0
        self.start(0)

    def start(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.records: list[StepRecord] = []
        self.peak_bytes = 0

    def add(self, record: StepRecord, state_bytes: int) -> None:
        self.records.append(record)
        self.peak_bytes = max(self.peak_bytes, state_bytes)

    def snapshot(self) -> CacheStats:
        # indicators may arrive as 0-d tensors: they become floats here, when stats are read, not per step
        self.records = [
            r if all(isinstance(v, float) for v in r.indicators.values())
            else attrs.evolve(r, indicators={k: float(v) for k, v in r.indicators.items()})
            for r in self.records
        ]
        branches = tuple(dict.fromkeys(r.branch for r in self.records))
        computed = sum(r.computed for r in self.records)
        return CacheStats(
            total_steps=self.total_steps,
            branches=branches,
            full_passes=computed / max(1, len(branches)),
            computed_steps=computed,
            forecast_steps=len(self.records) - computed,
            fallbacks=sum(r.reason == "fallback" for r in self.records),
            cache_bytes=self.peak_bytes,
            records=tuple(self.records),
            generations=self.generations,
        )
