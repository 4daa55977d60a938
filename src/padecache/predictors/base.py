"""Shared history keeping for predictors that forecast from computed residuals on a time grid."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import torch

from ..interfaces import Predictor, StepContext
from ..options import option

__all__ = ["HistoryPredictor", "grid_option"]


def grid_option():
    """The ``grid`` option: abscissa the forecast extrapolates along."""
    return option(
        "step",
        "str",
        choices=("step", "sigma", "timestep"),
        doc="abscissa of the forecast: step index (TaylorSeer's choice), scheduler sigma, or timestep value",
    )


class HistoryPredictor(Predictor):
    """Keeps the last ``history_size`` *computed* residuals with their positions on ``config.grid``.

    Predicted residuals are never stored: a forecast must not feed the next forecast.
    """

    history_size: int = 2

    def __init__(self, config=None):
        super().__init__(config)
        self.positions: deque[float] = deque(maxlen=self.history_size)
        self.residuals: deque[torch.Tensor] = deque(maxlen=self.history_size)

    @property
    def grid(self) -> str:
        return getattr(self.config, "grid", "step")

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:
            return
        x = ctx.position(self.grid)
        if self.positions and self.positions[-1] == x:  # a second-order scheduler's two calls at one time:
            self.residuals[-1] = residual  # the later one (the corrected state) replaces the earlier
            return
        self.positions.append(x)
        self.residuals.append(residual)

    def ready(self, ctx: StepContext) -> bool:
        return ctx.history >= self.min_history and len(self.residuals) >= self.min_history

    def reset(self) -> None:
        self.positions.clear()
        self.residuals.clear()

    @property
    def num_computed(self) -> int:
        return len(self.residuals)

    def state_tensors(self) -> Iterable[torch.Tensor]:
        return tuple(self.residuals)

    def newest_first(self, k: int) -> tuple[list[float], list[torch.Tensor]]:
        """The ``k`` newest (position, residual) pairs, newest first."""
        k = min(k, len(self.residuals))
        xs = [self.positions[-1 - i] for i in range(k)]
        ys = [self.residuals[-1 - i] for i in range(k)]
        return xs, ys
