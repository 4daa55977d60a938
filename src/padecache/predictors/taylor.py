"""``taylor``: TaylorSeer (Liu et al., "From Reusing to Forecasting", ICCV 2025, arXiv 2503.06923).

Two ways to estimate the derivatives from computed residuals at their actual positions:

* ``mode = "newton"`` (default): the Taylor expansion, about the newest computed step, of the
  polynomial through the last ``order + 1`` computed residuals (Newton divided differences).  Exact
  on polynomials of degree ``order`` for any spacing of the computed steps.
* ``mode = "taylorseer"``: TaylorSeer's own recursion, ``f(k+1) = (fk_new - fk_old) / gap``, which
  reuses stale lower-order estimates.  It is what the published TaylorSeer code computes, and is kept
  so that the baseline in our benchmark is the one users run.  Both agree for ``order <= 1``.

With fewer computed residuals than ``order + 1`` the highest order available is used.
"""

from __future__ import annotations

from collections import deque

import attrs
import torch

from ..interfaces import StepContext
from ..math import newton_extrapolate, taylorseer_extrapolate, taylorseer_update
from ..options import option
from .base import HistoryPredictor, grid_option

__all__ = ["TaylorPredictor", "TaylorSeerRecursion"]


class TaylorPredictor(HistoryPredictor):
    """TaylorSeer forecast of order 0-3 from divided differences over the actual computed positions."""

    name = "taylor"
    min_history = 1

    @attrs.frozen
    class Config:
        order: int = option(1, "int", ge=0, le=3, doc="Taylor order (0 = reuse, 1 = linear, ...)")
        mode: str = option("newton", "str", choices=("newton", "taylorseer"), doc="derivative estimate (see module doc)")
        grid: str = grid_option()

    def __new__(cls, config=None):
        # the one place `mode` is read: each mode is a class of its own
        mode = (config or cls.Config()).mode
        return super().__new__(_MODES[mode] if cls is TaylorPredictor else cls)

    def __init__(self, config=None):
        config = self.Config() if config is None else config
        self.history_size = config.order + 1
        super().__init__(config)

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        xs, ys = self.newest_first(self.config.order + 1)
        return newton_extrapolate(xs, ys, ctx.position(self.grid))


class TaylorSeerRecursion(TaylorPredictor):
    """``taylor`` with ``mode = "taylorseer"``: the published code's recursive derivative estimates."""

    def __init__(self, config=None):
        super().__init__(config)
        self.history_size = 1  # the newest computed value, next to the factors
        self.positions, self.residuals = deque(maxlen=1), deque(maxlen=1)
        self.factors: list[torch.Tensor] = []

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:
            return
        x = ctx.position(self.grid)
        gap = None if not self.positions else x - self.positions[-1]
        self.factors = taylorseer_update(self.factors, residual, gap, self.config.order)
        self.positions.append(x)
        self.residuals.append(residual)

    def reset(self) -> None:
        super().reset()
        self.factors = []

    def state_tensors(self):
        return tuple(self.factors)

    @property
    def num_computed(self) -> int:
        return len(self.factors)

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        return taylorseer_extrapolate(self.factors, ctx.position(self.grid) - self.positions[-1])


_MODES = {"newton": TaylorPredictor, "taylorseer": TaylorSeerRecursion}
