"""Stage detector ``sigma``: early / mid / late by noise level instead of step fraction.

TC-Padé's early stage is "t > 0.7 T" and its late stage "t < 0.2 T" (arXiv 2603.02943).  Read on the
noise level σ / σ_max instead of the step index, the boundaries follow shifted schedules such as Wan's
shift 7, where most steps sit at high noise.  On an unshifted flow-matching schedule both agree.
"""

from __future__ import annotations

import attrs

from padecache import Stage, StageDetector, StepContext, option
from padecache.config import OptionError

__all__ = ["SigmaStageDetector"]


class SigmaStageDetector(StageDetector):
    """Early while σ/σ_max >= ``early``, late once σ/σ_max < ``late``; needs a scheduler with sigmas."""

    name = "sigma"

    @attrs.frozen
    class Config:
        early: float = option(0.7, ge=0.0, le=1.0, doc="relative noise level above which a step is early")
        late: float = option(0.2, ge=0.0, le=1.0, doc="relative noise level below which a step is late")

        def __attrs_post_init__(self):
            if self.late > self.early:
                raise OptionError("late", f"must be <= early ({self.early}), got {self.late}")

    def stage(self, ctx: StepContext) -> Stage:
        if ctx.sigma is None:
            raise ValueError(
                "stage detector 'sigma' needs the scheduler's noise levels, and this one exposes none; "
                "use stage = 'fraction'"
            )
        top = max(ctx.schedule.sigmas) if ctx.schedule is not None and ctx.schedule.sigmas else 1.0
        level = ctx.sigma / top if top > 0 else 0.0
        if level >= self.config.early - 1e-9:  # ">=": on a uniform schedule this equals `fraction`'s step <= 0.3 T
            return Stage.EARLY
        if level < self.config.late - 1e-9:
            return Stage.LATE
        return Stage.MID
