"""``noop``: plain reuse of the last computed residual (FORA, Selvaraju et al. 2024; TeaCache's reuse)."""

from __future__ import annotations

import attrs
import torch

from ..interfaces import StepContext
from .base import HistoryPredictor

__all__ = ["NoopPredictor"]


class NoopPredictor(HistoryPredictor):
    """Reuse the last computed block-stack residual unchanged (FORA / TeaCache-style caching)."""

    name = "noop"
    min_history = 1
    history_size = 1

    @attrs.frozen
    class Config:
        """``noop`` has no options."""

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        return self.residuals[-1]
