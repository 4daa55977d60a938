"""``fraction``: early / mid / late by the share of steps done, as TC-Padé's official code does.

TC-Padé (arXiv 2603.02943) calls a step late when ``step > 0.8 T`` and mid when ``step > 0.3 T``;
its code hard-codes ``T = 20``, we use the generation's own step count.
"""

from __future__ import annotations

import attrs

from ..interfaces import Stage, StageDetector, StepContext
from ..options import OptionError, option

__all__ = ["FractionStageDetector"]


class FractionStageDetector(StageDetector):
    """Early until ``early`` of the steps are done, late after ``late``; boundaries scale with the step count."""

    name = "fraction"

    @attrs.frozen
    class Config:
        early: float = option(0.3, ge=0.0, le=1.0, doc="steps with index <= early * num_steps are early")
        late: float = option(0.8, ge=0.0, le=1.0, doc="steps with index > late * num_steps are late")

        def __attrs_post_init__(self):
            if self.late < self.early:
                raise OptionError("late", f"must be >= early ({self.early}), got {self.late}")

    def stage(self, ctx: StepContext) -> Stage:
        if ctx.step > self.config.late * ctx.num_steps:
            return Stage.LATE
        if ctx.step > self.config.early * ctx.num_steps:
            return Stage.MID
        return Stage.EARLY
