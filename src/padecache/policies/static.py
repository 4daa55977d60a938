"""Static policies: the plan depends only on the step index and the number of steps.

Each one can print its mask for any step count (``padecache mask POLICY --steps N``).
"""

from __future__ import annotations

from abc import abstractmethod

import attrs

from ..errors import warn
from ..interfaces import CachePolicy, StepContext
from ..options import OptionError, option

__all__ = ["StaticPolicy", "AlwaysPolicy", "FixedPolicy", "MaskPolicy", "BudgetPolicy", "budget_mask"]


class StaticPolicy(CachePolicy):
    """A policy whose decisions are a precomputed mask (cached per step count)."""

    def __init__(self, config=None):
        super().__init__(config)
        self._masks: dict[tuple[int, bool], list[bool]] = {}

    @abstractmethod
    def build_mask(self, num_steps: int) -> list[bool]:
        """``True`` = compute, one entry per step."""

    def build_partial_mask(self, num_steps: int) -> list[bool]:
        """The plan of a run that starts part-way through its schedule (img2img, inpainting, Wan 2.2's second
        expert) over the ``num_steps`` steps it runs; default: the same as a whole run's."""
        return self.build_mask(num_steps)

    def mask(self, num_steps: int, partial: bool = False) -> list[bool]:
        """The plan for ``num_steps`` steps; ``partial``: of a run that starts part-way (:meth:`build_partial_mask`)."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        key = (num_steps, bool(partial))
        if key not in self._masks:
            self._masks[key] = self.build_partial_mask(num_steps) if partial else self.build_mask(num_steps)
        return list(self._masks[key])

    def plan(self, ctx: StepContext) -> list[bool]:
        # the plan covers the steps this model runs (all of them, or the last ones of an img2img run, or one
        # expert's share for Wan 2.2); a run whose first step is not its schedule's first starts part-way
        return self.mask(ctx.span_steps, partial=ctx.first_step > 0)

    def should_compute(self, ctx: StepContext) -> bool:
        return self.plan(ctx)[ctx.step - ctx.first_step]


class AlwaysPolicy(StaticPolicy):
    """Compute every step (caching off; the reference for 'same image')."""

    name = "always"

    @attrs.frozen
    class Config:
        """``always`` has no options."""

    def build_mask(self, num_steps: int) -> list[bool]:
        return [True] * num_steps


class FixedPolicy(StaticPolicy):
    """Compute the first ``warmup`` steps, then every ``interval``-th step, and the last step if ``last``.

    Intervals are counted from the last warm-up step, as TaylorSeer's ``fresh_threshold`` /
    ``first_enhance`` do: ``interval=5, warmup=3`` computes steps 0, 1, 2, 7, 12, 17.  TaylorSeer does not
    force the final step, and neither do we by default: a pass spent there only corrects the last
    update, while spent earlier it shortens every forecast after it (see docs/methods.md).
    """

    name = "fixed"

    @attrs.frozen
    class Config:
        interval: int = option(3, "int", ge=1, doc="compute every N-th step after warm-up (TaylorSeer's N)")
        warmup: int = option(3, "int", ge=1, doc="steps computed at the start (TaylorSeer's first_enhance)")
        last: bool = option(False, "bool", doc="always compute the final step")

    def build_mask(self, num_steps: int) -> list[bool]:
        c = self.config
        anchor = c.warmup - 1
        out = [s < c.warmup or (s - anchor) % c.interval == 0 for s in range(num_steps)]
        if c.last:
            out[-1] = True
        return out


class MaskPolicy(StaticPolicy):
    """An explicit plan: ``mask = "###.#..."`` (``#``/``1`` compute) or ``steps = [0, 1, 2, 5, ...]``.

    A plan is tied to its step count: running another number of steps is an error, unless
    ``scale = true``, which maps the plan onto the new count by step fraction.
    """

    name = "mask"

    @attrs.frozen
    class Config:
        mask: str | None = option(None, "str", optional=True, doc='"#" or "1" = compute, "." or "0" = predict')
        steps: tuple[int, ...] | None = option(None, "ints", ge=0, optional=True, doc="indices of the computed steps")
        num_steps: int | None = option(None, "int", ge=1, optional=True, doc="step count of `steps` (required with it)")
        scale: bool = option(False, "bool", doc="map the plan onto other step counts by step fraction")

        def __attrs_post_init__(self):
            if (self.mask is None) == (self.steps is None):
                raise OptionError("mask", "give exactly one of `mask` (a plan such as \"##..#..#\") or `steps` (the computed steps, with num_steps)")
            if self.mask is not None:
                bad = set(self.mask) - set("#.10")
                if bad or not self.mask:
                    raise OptionError("mask", f"use '#'/'1' for compute and '.'/'0' for predict, got {self.mask!r}")
                if self.mask[0] not in "#1":  # the engine would compute it anyway: a plan it would not run as written
                    raise OptionError("mask", f"the first step must compute (there is nothing to forecast from before "
                                              f"it): start the plan with '#', got {self.mask!r}")
            else:
                if self.num_steps is None:
                    raise OptionError("num_steps", "is required with `steps`")
                if self.steps and max(self.steps) >= self.num_steps:
                    raise OptionError("steps", f"step {max(self.steps)} is outside 0..{self.num_steps - 1}")
                if 0 not in self.steps:
                    raise OptionError("steps", f"the first step must compute (there is nothing to forecast from before "
                                               f"it): include step 0, got {list(self.steps)}")

    def _plan(self) -> list[bool]:
        c = self.config
        if c.mask is not None:
            return [ch in "#1" for ch in c.mask]
        chosen = set(c.steps)
        return [s in chosen for s in range(c.num_steps)]

    def build_mask(self, num_steps: int) -> list[bool]:
        plan = self._plan()
        if len(plan) == num_steps:
            return plan
        if not self.config.scale:
            raise ValueError(
                f"policy 'mask' has a plan for {len(plan)} steps but the pipeline runs {num_steps}; "
                f"pass a plan for {num_steps} steps or set scale = true"
            )
        out = [False] * num_steps
        span = (num_steps - 1) / max(1, len(plan) - 1)  # first and last steps map onto themselves
        for s, on in enumerate(plan):
            if on:
                out[round(s * span)] = True
        return out


def budget_mask(num_steps: int, passes: int, warmup: int, last: bool, spacing: float = 1.0, tail: float = 0.0,
                short_first_gap: bool = False, tail_gaps: float | None = None, rising_gaps: bool = False) -> list[bool]:
    """``passes`` computed steps: the first ``warmup``, then the rest spread over the run.

    Without ``last`` the remaining passes end ``round(tail * num_steps)`` steps before the final step, or
    with ``tail_gaps`` ``round(tail_gaps * num_steps / passes)`` steps, a share of the mean gap (those are
    left to the forecast); with ``last`` the final step is one of them.  ``spacing`` > 1
    front-loads them: pass k of K sits at fraction (k / (K + c)) ** spacing of the free span, at least two
    steps after the previous pass while the budget allows, with c = 0, or c = 1 / K² with
    ``short_first_gap``: with few passes left after the warm-up the first of them then comes earlier, so the
    gap forecast from the warm-up's two residuals stays short (docs/methods.md).  With ``rising_gaps`` a
    front-loaded plan (``spacing`` > 1) gets its gaps after the warm-up in rising order: rounding each pass to a
    step can leave a longer gap before a shorter one (``...#...#..#...``), which is not what front-loading
    means; the same gaps sorted keep the warm-up, the last pass and the budget.  When the budget is too small
    for both, the warm-up shrinks (to one step at least) before the final step goes.
    """
    passes = max(1, min(num_steps, passes))
    head = min(warmup, max(1, passes - int(last)))
    out = [s < head for s in range(num_steps)]
    rest = passes - head
    if rest <= 0:
        return out
    lo = head - 1
    if last:
        out[-1] = True
        rest -= 1
        hi, fractions = num_steps - 1, [(k / (rest + 1)) ** spacing for k in range(1, rest + 1)]
    else:
        n_tail = round(tail * num_steps) if tail_gaps is None else round(tail_gaps * num_steps / passes)
        hi = max(head, num_steps - 1 - n_tail, lo + rest)  # the tail gives way to the budget
        c = 1 / rest**2 if short_first_gap else 0.0
        fractions = [(k / (rest + c)) ** spacing for k in range(1, rest + 1)]
    # consecutive passes at least two steps apart while the budget allows: a forecast one step ahead is
    # cheap to get right, so a pass right after another is the least useful one
    end = hi - 1 if last else hi  # the latest step this loop may place a pass on
    prev = lo
    for k, f in enumerate(fractions):
        remaining = len(fractions) - k - 1
        top = end - remaining  # room for the rest at gaps of one
        gap = 2 if prev + 2 + 2 * remaining <= end else 1
        pos = min(max(round(lo + f * (hi - lo)), prev + gap), top)
        out[pos] = True
        prev = pos
    if rising_gaps and spacing > 1.0:
        _rise(out, head - 1)
    return out


def _rise(mask: list[bool], first: int) -> None:
    """Reorder the gaps between the computed steps from ``first`` on, shortest first (in place)."""
    on = [s for s in range(first, len(mask)) if mask[s]]
    gaps = sorted(b - a for a, b in zip(on, on[1:]))
    for s in on[1:]:
        mask[s] = False
    for gap in gaps:
        first += gap
        mask[first] = True


class BudgetPolicy(StaticPolicy):
    """Spend a fixed budget: ``speedup`` (steps / passes) or ``full_passes``, spread after a warm-up.

    The computed steps after the warm-up are spread over the rest of the run, evenly or front-loaded
    (``spacing``), the last one ``tail_gaps`` mean gaps (steps / passes) before the end, or ``tail`` of the
    run when that is given; ``last = true`` forces the final step instead, which measurably wastes the pass
    (docs/methods.md).  A budget of ``lean_passes`` passes or fewer, above 2x, warms up with one step: a second
    warm-up step would leave one or two passes for the long rest of the run.  A predictor that needs two computed residuals
    before it forecasts (``min_history = 2``) then computes the second step anyway, and stats say so.  A run that
    starts part-way through its schedule (img2img, inpainting, Wan 2.2's second expert) has no steep first steps to
    front-load for: its passes follow ``partial_spacing`` and ``partial_tail_gaps`` instead.
    """

    name = "budget"

    @attrs.frozen
    class Config:
        speedup: float | None = option(2.5, ge=1.0, optional=True,
                                       doc="target steps / full block-stack passes (passes: steps / speedup, rounded, at least 1)")
        full_passes: int | None = option(None, "int", ge=1, optional=True, doc="exact number of passes (overrides speedup)")
        warmup: int = option(2, "int", ge=1, doc="steps computed at the start")
        last: bool = option(False, "bool", doc="always compute the final step")
        spacing: float = option(1.25, ge=0.5, le=3.0, doc="> 1 front-loads the passes after the warm-up (1 = even)")
        tail_gaps: float = option(0.7, ge=0.0, le=10.0,
                                  doc="final steps left to the forecast (without `last`), in mean gaps (steps / passes), rounded")
        tail: float | None = option(None, ge=0.0, lt=1.0, optional=True,
                                    doc="instead of `tail_gaps`: the share of the steps at the end left to the forecast")
        short_first_gap: bool = option(True, "bool", doc="with few passes, bring the passes after the warm-up forward (see budget_mask)")
        rising_gaps: bool = option(False, "bool", doc="a front-loaded plan's gaps after the warm-up never shrink (a run from the start; see budget_mask)")
        partial_spacing: float = option(1.1, ge=0.5, le=3.0, doc="`spacing` of a run that starts part-way (img2img, inpainting, a second expert)")
        partial_tail_gaps: float = option(0.5, ge=0.0, le=10.0, doc="`tail_gaps` of a run that starts part-way")
        lean_passes: int = option(6, "int", ge=0, doc="budgets of this many passes or fewer, above 2x, warm up with one step, not `warmup` (0: never)")
        rising_start: bool = option(True, "bool", doc="after a one-step warm-up, 4 passes or more: a first gap as long as "
                                                      "the next (#..#..#) becomes a pass at step 2, the rest planned from there")
        min_steps: int = option(1, "int", ge=1, doc="runs of fewer steps compute every step, and say so")  # (reach)

        def __attrs_post_init__(self):
            if self.speedup is None and self.full_passes is None:
                raise OptionError("speedup", "give `speedup` or `full_passes`")

    def passes(self, num_steps: int) -> int:
        c = self.config
        if c.full_passes is not None:
            return min(num_steps, c.full_passes)
        return max(1, min(num_steps, round(num_steps / c.speedup)))

    def build_mask(self, num_steps: int) -> list[bool]:
        c = self.config
        mask = self._budget_mask(num_steps, c.spacing, c.tail_gaps, c.rising_gaps)
        on = [s for s, computed in enumerate(mask) if computed]
        if c.rising_start and len(on) >= 4 and on[1] >= 3 and on[2] - on[1] <= on[1]:
            # a one-step warm-up whose first gap (forecast from one residual) is as long as the next (#..#..#, at
            # 14/4, 15/4, 19/5, 23/6 and 24/6 steps/passes): the second pass at step 2, the rest planned from there
            # (docs/methods.md, "where the first pass after a one-step warm-up goes")
            tail, gaps = (c.tail, None) if c.tail is not None else (0.0, c.tail_gaps)
            mask = [True, False] + budget_mask(num_steps - 2, len(on) - 1, 1, c.last, c.spacing, tail, c.short_first_gap,
                                               gaps, c.rising_gaps)
        return mask

    def build_partial_mask(self, num_steps: int) -> list[bool]:
        # a run that starts part-way has no steep first steps to front-load for, and its last steps still move:
        # passes spread more evenly, nearer the end (docs/methods.md, "img2img")
        # (its plan was chosen as rounded, gaps and all: `rising_gaps` is for runs from the start)
        return self._budget_mask(num_steps, self.config.partial_spacing, self.config.partial_tail_gaps, False)

    def _budget_mask(self, num_steps: int, spacing: float, tail_gaps: float, rising: bool) -> list[bool]:
        c = self.config
        if num_steps < c.min_steps:  # (reach) a few-step run: every step computes, and the user is told why
            warn(f"padecache: a {num_steps}-step run is shorter than the budget policy's min_steps = "
                 f"{c.min_steps}: every step is computed (lower policy.min_steps to forecast anyway)",
                 RuntimeWarning, stacklevel=2)
            return [True] * num_steps
        passes = self.passes(num_steps)
        warmup = 1 if passes <= c.lean_passes and num_steps > 2 * passes else c.warmup
        if c.full_passes is None and passes <= min(warmup, num_steps - 1):  # (reach) no pass after the warm-up
            fewer = f"policy.warmup = {passes - 1} or lower (a pass then comes later), " if passes > 1 else ""
            warn(f"padecache: a {num_steps}-step run at speedup {c.speedup:.3g} computes {passes} of its "
                 f"steps, all in the warm-up (policy.warmup = {warmup}): the others are forecast from the "
                 f"warm-up's residuals alone. Set {fewer}policy.min_steps = {num_steps + 1} (or more) to "
                 f"compute every step of runs this short, or policy.speedup lower", RuntimeWarning, stacklevel=2)
        tail, gaps = (c.tail, None) if c.tail is not None else (0.0, tail_gaps)  # a share replaces the gaps
        return budget_mask(num_steps, passes, warmup, c.last, spacing, tail, c.short_first_gap, gaps, rising)
