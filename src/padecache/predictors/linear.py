"""``linear``: first-order extrapolation through the last two computed residuals on the actual time grid
(the one residual reused while there is only one, so that a plan may warm up with a single step)."""

from __future__ import annotations

import attrs
import torch

from ..interfaces import StepContext
from ..math import linear_extrapolate
from .base import HistoryPredictor, grid_option

__all__ = ["LinearPredictor"]


class LinearPredictor(HistoryPredictor):
    """Line through the last two computed residuals, evaluated at the target step's real position."""

    name = "linear"
    min_history = 1
    history_size = 2

    @attrs.frozen
    class Config:
        grid: str = grid_option()

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        if self.num_computed < 2:
            return self.newest_first(1)[1][0]
        (x1, x0), (y1, y0) = self.newest_first(2)
        return linear_extrapolate(x0, y0, x1, y1, ctx.position(self.grid))
