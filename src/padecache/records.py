"""What happened during a generation: which steps ran the block stack, fallbacks, memory, indicators."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["StepRecord", "CacheStats", "StatsRecorder"]

#: why a step was computed or predicted
REASONS = ("policy", "warmup", "fallback", "batch", "forecast")


@attrs.frozen
class StepRecord:
    """One transformer call, or one row group of it when the rows of a batch went separate ways.

    ``reason``: ``"policy"`` (the policy asked to compute), ``"warmup"`` (the policy asked to predict but
    the predictor had too little history), ``"fallback"`` (the prediction was non-finite or exploding, so
    the step was computed instead), ``"batch"`` (rows of this family cannot run the stack alone, so they
    computed with the others) or ``"forecast"`` (the block stack was skipped).  ``rows`` are the batch
    rows this record is about (``None``: all ``batch`` rows).  ``cost``: the share of the block stack these
    rows ran, when the engine always runs some blocks (``engine.first_blocks`` / ``last_blocks``); ``None``:
    the whole stack when computed, none of it when forecast.
    """

    step: int
    branch: str
    computed: bool
    reason: str
    stage: str
    indicators: dict[str, float] = attrs.field(factory=dict)
    rows: tuple[int, ...] | None = None
    batch: int = 1
    cost: float | None = None

    @property
    def share(self) -> float:
        """Fraction of the call's rows this record covers."""
        return 1.0 if self.rows is None else len(self.rows) / self.batch

    @property
    def passes(self) -> float:
        """Block-stack passes this record stands for, per row: 1 computed, 0 forecast, or the share run."""
        return float(self.computed) if self.cost is None else self.cost

    def covers(self, row: int) -> bool:
        return self.rows is None or row in self.rows


def _count(x: float) -> float | int:
    return int(round(x)) if abs(x - round(x)) < 1e-9 else x


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.2f}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


@attrs.frozen
class CacheStats:
    """Statistics of the most recent generation of one transformer (or, combined, of a pipeline's experts).

    Attributes:
        total_steps: denoising steps this transformer ran in the generation (for Wan 2.2's experts, each
            expert's own share; combined, all of them); a run stopped early counts the steps it ran.
        planned_steps: the steps the generation was set up for (``total_steps`` unless it stopped early).
        branches: guidance branches seen (``("main",)`` for batched CFG or no CFG).
        full_passes: block-stack executions per branch, i.e. full passes per generation (rows that went
            separate ways count by their share of the batch; with ``engine.first_blocks`` / ``last_blocks`` a
            forecast step counts the share of the blocks that ran, so this may be fractional).
        block_passes: block executions per branch (``full_passes`` times the number of blocks).
        num_blocks: blocks in the stack.
        computed_steps: transformer calls that ran the block stack (all branches; row-weighted).
        forecast_steps: transformer calls whose block stack was predicted (row-weighted).
        fallbacks: row forecasts rejected (non-finite or exploding) and computed instead.
        corrections: computed row outputs that ``engine.gap_correction`` moved (:mod:`padecache.correction`).
        correction_off: why ``engine.gap_correction``, though on, can move nothing (the scheduler's update is not an
            Euler step, a policy without a static plan, a plan of too few passes); "" where it can or is off.
        restarts: branches whose history restarted because the batch size or resolution changed.
        cache_bytes: peak bytes held by padecache during the generation: histories, policy state and the outputs a
            gap correction keeps from step to step, plus the block-stack input it keeps during a call (its float32
            copy, or the model's own tensor kept alive); each storage counted once and whole.
        records: one :class:`StepRecord` per transformer call (per row group), in call order.
        generations: generations this transformer has run since padecache was applied.
        experts: the stats of each transformer, when these are combined (Wan 2.2).
    """

    total_steps: int = 0
    branches: tuple[str, ...] = ()
    full_passes: float = 0.0
    computed_steps: float = 0
    forecast_steps: float = 0
    fallbacks: int = 0
    restarts: int = 0
    cache_bytes: int = 0
    records: tuple[StepRecord, ...] = attrs.field(default=(), repr=lambda r: f"<{len(r)} records>")
    generations: int = 0
    experts: tuple[CacheStats, ...] = attrs.field(default=(), repr=lambda e: f"<{len(e)} experts>")
    num_blocks: int = 0
    block_passes: float = 0.0
    planned_steps: int = 0
    corrections: int = 0
    correction_off: str = ""

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few readable lines: steps, passes, fallbacks, memory, and the computed/forecast mask of each branch."""
        if not self.records:
            return f"padecache: no steps recorded yet ({self.generations} generations)"
        names = ", ".join(self.branches)
        lines = [
            f"padecache: {self.total_steps} steps, {_fmt(self.full_passes)} full block-stack passes per branch "
            f"({self.pass_speedup:.2f}x fewer), branches: {names}",
            f"  calls computed {_fmt(self.computed_steps)}, forecast {_fmt(self.forecast_steps)}; fallbacks "
            f"{self.fallbacks}, restarts {self.restarts}; cache {_bytes(self.cache_bytes)}; generation {self.generations}"
            + (f"; gap corrections {self.corrections}" if self.corrections else "")
            + (f"; gap correction off: {self.correction_off}" if self.correction_off else "")
            + (f"; stopped after {self.total_steps} of {self.planned_steps} steps"
               if self.planned_steps > self.total_steps else ""),
        ]
        unplanned = sum(r.share for r in self.records if r.computed and r.reason == "warmup")
        if unplanned:  # the budget the plan promised was exceeded: say so, with the knob that plans them
            lines.append(f"  planned forecasts computed instead: {_fmt(unplanned)} (the predictor needed more computed "
                         f"steps first; plan them with a longer policy warm-up)")
        split = any(r.rows is not None for r in self.records)
        for branch in self.branches:
            ran = {r.step for r in self.records if r.branch == branch}
            mask = "".join(("#" if m else ".") if i in ran else " " for i, m in enumerate(self.mask(branch)))
            lines.append(f"  {branch:>8}: {mask}" + ("  (row 0; rows went separate ways)" if split else ""))
        skipped = any(len({r.step for r in self.records if r.branch == b}) < len(self.mask(b)) for b in self.branches)
        lines.append("  (# computed, . forecast" + (", blank: not run (img2img, another expert)" if skipped else "")
                     + (", experts combined" if self.experts else "") + ")")
        return "\n".join(lines)

    @property
    def pass_speedup(self) -> float:
        """``total_steps / full_passes`` (1.0 with caching off)."""
        return self.total_steps / self.full_passes if self.full_passes else float("inf")

    def mask(self, branch: str | None = None, row: int = 0) -> list[bool]:
        """Computed (True) or predicted, per step, for ``branch`` (default: the first one) and batch ``row``.

        Steps the transformer did not run (another expert's) are ``False``.
        """
        branch = self._checked(branch, row)
        steps = max([self.total_steps, *(r.step + 1 for r in self.records)])
        out = [False] * steps
        for r in self.records:
            if r.branch == branch and r.covers(row):
                out[r.step] = r.computed
        return out

    def indicator(self, name: str, branch: str | None = None, row: int = 0) -> list[float | None]:
        """Per-step values of indicator ``name`` (e.g. ``"tsi"``) for ``branch``; ``None`` where absent."""
        branch = self._checked(branch, row)
        steps = max([self.total_steps, *(r.step + 1 for r in self.records)])
        out: list[float | None] = [None] * steps
        for r in self.records:
            if r.branch == branch and r.covers(row) and name in r.indicators:
                out[r.step] = r.indicators[name]
        return out

    def _checked(self, branch: str | None, row: int) -> str | None:
        """``branch`` (default: the first), ``ValueError`` naming the branches and rows there are."""
        if branch is not None and self.records and branch not in self.branches:
            raise ValueError(f"no branch {branch!r} in these stats; branches: {', '.join(map(repr, self.branches))}")
        batch = max((r.batch for r in self.records), default=0)
        if self.records and not 0 <= row < batch:
            raise ValueError(f"row {row} is outside the batch of {batch} rows (0-{batch - 1})")
        return branch if branch is not None else self.branches[0] if self.branches else None

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=True)
        d["records"] = [attrs.asdict(r) for r in self.records]
        d["branches"] = list(self.branches)
        d["pass_speedup"] = self.pass_speedup
        d["experts"] = [e.as_dict() for e in self.experts]
        return d

    @classmethod
    def combine(cls, parts: Iterable[CacheStats]) -> CacheStats:
        """Merge the stats of several transformers of one pipeline (Wan 2.2's experts share the steps)."""
        parts = [p for p in parts if p.total_steps]
        if not parts:
            return cls()
        branches = tuple(dict.fromkeys(b for p in parts for b in p.branches))
        passes = round(sum(sum(r.share * r.passes for r in p.records) for p in parts) / max(1, len(branches)), 9)  # no float dust
        return cls(
            total_steps=sum(p.total_steps for p in parts),
            planned_steps=sum(p.planned_steps for p in parts),
            branches=branches,
            full_passes=passes,
            num_blocks=max(p.num_blocks for p in parts),
            block_passes=sum(p.block_passes for p in parts),
            computed_steps=_count(sum(p.computed_steps for p in parts)),
            forecast_steps=_count(sum(p.forecast_steps for p in parts)),
            fallbacks=sum(p.fallbacks for p in parts),
            restarts=sum(p.restarts for p in parts),
            corrections=sum(p.corrections for p in parts),
            correction_off=next((p.correction_off for p in parts if p.correction_off), ""),
            cache_bytes=sum(p.cache_bytes for p in parts),
            records=tuple(sorted((r for p in parts for r in p.records), key=lambda r: r.step)),
            generations=max(p.generations for p in parts),
            experts=tuple(parts),
        )


class StatsRecorder:
    """Mutable accumulator behind :class:`CacheStats` (one per engine, reset at each generation)."""

    def __init__(self, num_blocks: int = 0):
        self.generations = 0
        self.num_blocks = num_blocks
        self.start(0)

    def start(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.nonfinite_rows = 0  # rejected forecasts whose history was non-finite (the input's fault)
        self.records: list[StepRecord] = []
        self.peak_bytes = 0
        self.restarts = 0
        self.forecast_attempts = 0
        self.fallback_rows = 0
        self.corrected_rows = 0  # rows whose output engine.gap_correction moved
        self.correction_off = ""  # why engine.gap_correction, though on, moved nothing (uncorrected)

    def add(self, record: StepRecord) -> None:
        self.records.append(record)

    def observe_bytes(self, nbytes: int) -> None:
        self.peak_bytes = max(self.peak_bytes, nbytes)

    def snapshot(self) -> CacheStats:
        # indicators may arrive as 0-d tensors: they become floats here, when stats are read, not per step
        self.records = [
            r if all(isinstance(v, float) for v in r.indicators.values())
            else attrs.evolve(r, indicators={k: float(v) for k, v in r.indicators.items()})
            for r in self.records
        ]
        branches = tuple(dict.fromkeys(r.branch for r in self.records))
        computed = sum(r.share for r in self.records if r.computed)
        forecast = sum(r.share for r in self.records if not r.computed)
        passes = sum(r.share * r.passes for r in self.records) / max(1, len(branches))
        ran = len({r.step for r in self.records})  # the steps that ran: fewer than planned where the run stopped early
        return CacheStats(
            total_steps=min(self.total_steps, ran) if self.records else self.total_steps,
            planned_steps=self.total_steps,
            branches=branches,
            full_passes=round(passes, 9),  # no float dust: 7.0, not 7.000000000000005
            num_blocks=self.num_blocks,
            block_passes=round(passes * self.num_blocks, 6),  # block executions: whole numbers where rows run whole
            computed_steps=_count(computed),
            forecast_steps=_count(forecast),
            fallbacks=self.fallback_rows,
            restarts=self.restarts,
            corrections=self.corrected_rows,
            correction_off=self.correction_off,
            cache_bytes=self.peak_bytes,
            records=tuple(self.records),
            generations=self.generations,
        )
