"""Policy ``tsi``: TC-Padé's Trajectory Stability Indicator decides when to recompute.

TSI = ½ ||u1 − u2||, u1 and u2 the unit directions of the last two residual increments
(arXiv 2603.02943; official ``curvetest``), computed per batch row.  Steps are computed in full when

* they are among the first ``warmup`` steps, the last step (``last``), or the first step of a cache
  interval (``step % interval == 0``, the paper's 𝒩 = 4), or
* the TSI test fails: with ``skip_when = "below"`` (the official code) a row may be predicted only
  while its TSI < ``threshold``, i.e. a sharp turn of its trajectory forces a refresh; with
  ``"above"`` (the paper notes' reading) only while TSI >= ``threshold``.

TSI lies in [0, 1], so the official code's threshold, 1.4, never fires (``tc-pade-official`` keeps it, to
reproduce that code); the default here is the paper's "fast" setting, 0.7.  Residuals that were predicted
feed the TSI only with ``include_predicted = true`` (the official code's behaviour).  Decisions are per
batch row: a sharp turn in one sample refreshes that sample alone.
"""

from __future__ import annotations

import attrs
import torch

from padecache import CachePolicy, StepContext, option
from padecache.math import row_dot, row_sumsq

__all__ = ["TSIPolicy"]


class TSIPolicy(CachePolicy):
    """Compute on interval heads and whenever the Trajectory Stability Indicator flags a sharp turn."""

    name = "tsi"

    @attrs.frozen
    class Config:
        threshold: float = option(0.7, ge=0.0, doc="TSI threshold θ (paper: fast 0.7, slow 1.0; the official code's 1.4 never fires)")
        skip_when: str = option("below", "str", choices=("below", "above"), doc="predict while TSI is below / above θ")
        interval: int = option(4, "int", ge=0, doc="compute every step with step % interval == 0 (paper 𝒩 = 4; 0 = never)")
        warmup: int = option(3, "int", ge=0, doc="steps computed at the start")
        last: bool = option(True, "bool", doc="always compute the final step")
        include_predicted: bool = option(False, "bool", doc="let predicted residuals feed the TSI (official code)")

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def reset(self) -> None:
        self.last_residual: torch.Tensor | None = None
        self.last_direction: torch.Tensor | None = None  # R_n − R_{n−1}, not normalised
        self._stats = None  # group sums per row: |d_n|², <d_n, d_{n−1}>
        self._previous = None  # the same for d_{n−1}
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.last_residual, self.last_direction) if t is not None)

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if not (computed or self.config.include_predicted):
            return
        if self.last_residual is not None:
            direction = residual - self.last_residual
            dot = row_dot(direction, self.last_direction) if self.last_direction is not None else torch.zeros(len(residual))
            # sums over the sequence-parallel group (the local values when the sequence is not sharded)
            self._previous, self._stats = self._stats, ctx.reduce(torch.stack([row_sumsq(direction), dot.to(direction.device)], 1))
            self.last_direction = direction
        self.last_residual = residual

    @property
    def value(self) -> torch.Tensor | None:
        """Per-row TSI of the last three residuals: ½‖u_n − u_{n−1}‖ = ½ √(2 − 2 cos θ), from group sums."""
        if self._previous is None or self._stats is None:
            return None
        now, before = self._stats.value, self._previous.value
        cos = now[:, 1] / (now[:, 0] * before[:, 0]).sqrt().clamp(min=1e-24)
        return 0.5 * (2 - 2 * cos.clamp(-1.0, 1.0)).sqrt()

    def scheduled(self, step: int, num_steps: int) -> bool:
        c = self.config
        return step < c.warmup or (c.last and step == num_steps - 1) or (c.interval > 0 and step % c.interval == 0)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        self._indicators = {}
        if self.scheduled(ctx.step, ctx.num_steps):
            return True
        value = self.value
        if value is None:
            return False
        # one decision per batch row: a sharp turn in one sample refreshes that sample only
        self._indicators = {"tsi": value.max() if self.config.skip_when == "below" else value.min()}
        if self.config.skip_when == "below":
            return value >= self.config.threshold
        return value < self.config.threshold

    def indicators(self) -> dict[str, float | torch.Tensor]:
        return dict(self._indicators)
