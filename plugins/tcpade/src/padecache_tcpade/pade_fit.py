"""Predictor ``pade-fit``: a genuine [m/n] rational extrapolant of the residual, elementwise.

Fitted by linearised least squares (``P(u) − y Q(u) + y = 0``, Q(0) = 1) to the last computed
residuals at their real positions, u measured from the newest one in units of the last gap.  A pole
guard rejects, element by element, fits whose denominator gets close to zero anywhere between the
oldest sample and the target (Q < ``min_denominator``) or whose value leaves the plausible range
(more than ``max_ratio`` times the largest sampled magnitude); those elements fall back to the Taylor
(Newton) forecast of order ``fallback_order``.  This is padecache's extension of TC-Padé's idea: the
paper's "[2/1]" predictor fixes its coefficients from σ instead of fitting them.
"""

from __future__ import annotations

import attrs
import torch

from padecache import StepContext, option
from padecache.config import OptionError
from padecache.math import newton_extrapolate
from padecache.predictors import HistoryPredictor, grid_option

from . import _math as pm

__all__ = ["PadeFitPredictor"]


class PadeFitPredictor(HistoryPredictor):
    """[m/n] rational fit through the last computed residuals, with a pole guard falling back to Taylor."""

    name = "pade-fit"

    @attrs.frozen
    class Config:
        m: int = option(1, "int", ge=0, le=3, doc="numerator degree")
        n: int = option(1, "int", ge=1, le=2, doc="denominator degree")
        history: int | None = option(None, "int", ge=2, optional=True, doc="samples fitted (default m + n + 1: interpolation)")
        min_denominator: float = option(0.5, gt=0.0, le=1.0, doc="pole guard: smallest Q(u) allowed on the extrapolation path")
        max_ratio: float = option(3.0, gt=1.0, doc="guard: |prediction| <= max_ratio x largest |sample| of the element")
        fallback_order: int = option(1, "int", ge=0, le=3, doc="Taylor order used where the guard rejects the fit")
        grid: str = grid_option()

        def __attrs_post_init__(self):
            if self.history is not None and self.history < self.m + self.n + 1:
                raise OptionError("history", f"must be >= m + n + 1 = {self.m + self.n + 1}, got {self.history}")

    def __init__(self, config=None):
        config = self.Config() if config is None else config
        self.history_size = config.history or (config.m + config.n + 1)
        super().__init__(config)
        self._indicators: dict[str, float] = {}

    @property
    def min_history(self) -> int:  # type: ignore[override]
        return 2

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = ctx.position(self.grid)
        xs, ys = self.newest_first(self.history_size)
        fallback = newton_extrapolate(xs[: c.fallback_order + 1], ys[: c.fallback_order + 1], x)
        if len(xs) < c.m + c.n + 1:
            return fallback
        if (c.m, c.n) == (1, 1) and len(xs) == 3:  # the default: interpolation, in closed form
            value, qmin = pm.pade11_interpolate(xs, ys, x)
        else:
            gap = xs[0] - xs[1]
            a, b = pm.pade_fit(xs, ys, c.m, c.n, center=xs[0], scale=gap)
            u = (x - xs[0]) / gap
            value, _ = pm.pade_eval(a, b, u)
            lo = (min(xs) - xs[0]) / gap
            qmin = pm.denominator_min(b, min(lo, u), max(0.0, u))
        bound = c.max_ratio * torch.stack([y.abs() for y in ys]).amax(dim=0).to(value.dtype)
        ok = (qmin >= c.min_denominator) & torch.isfinite(value) & (value.abs() <= bound + 1e-12)
        self._indicators = {"pade_rejected": 1 - ok.float().mean()}
        return torch.where(ok, value.to(fallback.dtype), fallback)

    def indicators(self) -> dict[str, float]:
        return dict(self._indicators)
