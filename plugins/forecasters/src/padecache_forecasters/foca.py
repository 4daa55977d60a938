"""``foca``: FoCa (Zheng et al., "Forecast then Calibrate: Feature Caching as ODE for Efficient Diffusion
Transformers", AAAI 2026, arXiv 2508.16211; the authors' code is not public).

The residual is treated as the solution of a feature ODE ``dR/dx = g(R, x)`` on the chosen grid, and a skipped
step is one predictor-corrector step of length ``d = x - x_n`` from the newest computed residual:

* slope at the anchor, by the backward differentiation formula of order 2 on the last three computed
  residuals (variable step): ``g_n = p'(x_n)`` for the quadratic ``p`` through them (order 1, the backward
  difference, while only two exist);
* **forecast**: ``R~ = R_n + d g_n``;
* slope at the target, by the same BDF2 formula through ``(x_{n-1}, R_{n-1}), (x_n, R_n), (x, R~)``:
  ``g~ = [(1 + 2w)/(1 + w) R~ - (1 + w) R_n + w^2/(1 + w) R_{n-1}] / d`` with ``w = d / (x_n - x_{n-1})``;
* **calibrate** (Heun / trapezoidal rule): ``R = R_n + d/2 (g_n + g~)``.

The corrector is exact when its slopes are (the trapezoidal rule integrates a linear slope exactly), so the
whole step is exact on straight lines for any spacing; on a parabola it keeps ``h / (2 (d + h))`` of the
curvature term, less the farther it forecasts.  ``variant = "cache-dit"`` is cache-dit's ``FoCaCalibrator``
(``cache_contexts/calibrators/foca.py``) reproduced step for step, for comparison (see METHODS.md).
"""

from __future__ import annotations

import attrs
import torch

from padecache import Predictor, StepContext, option

from ._common import grid_option, push

__all__ = ["FoCaPredictor", "bdf_slope", "foca_step", "trapezoid"]


def bdf_slope(xs: list[float], ys: list[torch.Tensor]) -> torch.Tensor:
    """Slope at the newest sample (last entry) of the polynomial through 2 or 3 samples (BDF1 / BDF2)."""
    if len(xs) == 2:
        return (ys[1] - ys[0]) / (xs[1] - xs[0])
    (x0, x1, x2), (y0, y1, y2) = xs, ys
    d_new = (y2 - y1) / (x2 - x1)
    d_old = (y1 - y0) / (x1 - x0)
    return d_new + (x2 - x1) * (d_new - d_old) / (x2 - x0)


def trapezoid(y: torch.Tensor, slope_start: torch.Tensor, slope_end: torch.Tensor, distance: float) -> torch.Tensor:
    """The calibration: Heun's corrector ``y + d/2 (g_start + g_end)``."""
    return y + 0.5 * distance * (slope_start + slope_end)


def foca_step(xs: list[float], ys: list[torch.Tensor], x: float, corrector: bool = True) -> torch.Tensor:
    """FoCa's forecast-then-calibrate step to ``x`` from computed samples ``ys`` at ``xs`` (oldest first, 2-3)."""
    (x_prev, x_n), (y_prev, y_n) = xs[-2:], ys[-2:]
    d = x - x_n
    slope = bdf_slope(xs, ys)
    forecast = y_n + d * slope
    if not corrector:
        return forecast
    w = d / (x_n - x_prev)
    slope_end = ((1 + 2 * w) / (1 + w) * forecast - (1 + w) * y_n + w * w / (1 + w) * y_prev) / d
    return trapezoid(y_n, slope, slope_end, d)


class FoCaPredictor(Predictor):
    """Feature-ODE step from the newest computed residual: BDF2 slopes, Euler forecast, Heun calibration."""

    name = "foca"

    @attrs.frozen
    class Config:
        variant: str = option("paper", "str", choices=("paper", "cache-dit"), doc="the method as published "
                              "(module doc) or cache-dit's FoCaCalibrator, reproduced for comparison")
        order: int = option(2, "int", ge=1, le=2, doc="BDF order of the slope estimates (paper: BDF2)")
        corrector: bool = option(True, "bool", doc="apply the Heun calibration (false: forecast only)")
        max_horizon: float = option(3.0, gt=0.0, doc="cache-dit variant: beyond this many steps the forecast is "
                                    "blended towards reuse with weight horizon / elapsed (cache-dit: 3)")
        grid: str = grid_option()

    def __init__(self, config=None):
        super().__init__(config)
        self.values: torch.Tensor | None = None  # paper: (B, n<=3, ...) computed residuals, oldest first
        self.positions: list[float] = []
        # cache-dit variant: F_k, F_km1 (last two values used, computed or predicted), F_full, F_full_prev
        self.rolling: torch.Tensor | None = None  # (B, 2, ...): [F_km1, F_k]
        self.anchors: torch.Tensor | None = None  # (B, 2, ...): [F_full_prev, F_full]
        self.last_full_step: int | None = None
        self._advance = False  # cache-dit: whether the last forecast advanced its rolling window

    @property
    def min_history(self) -> int:  # type: ignore[override]
        return 2 if self.config.variant == "paper" else 1

    @property
    def num_computed(self) -> int:
        return len(self.positions) if self.config.variant == "paper" else (0 if self.anchors is None else self.anchors.shape[1])

    def reset(self) -> None:
        self.values, self.positions = None, []
        self.rolling, self.anchors, self.last_full_step = None, None, None
        self._advance = False

    def state_tensors(self):
        return tuple(t for t in (self.values, self.rolling, self.anchors) if t is not None)

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if self.config.variant == "cache-dit":
            # FoCaState.update (computed) or the state advance at the end of FoCaState.approximate (predicted;
            # approximate returns F_full without advancing while it lacks two values or two anchors)
            if computed or self._advance:
                self.rolling = push(self.rolling, residual, 2)
            self._advance = False
            if computed:
                self.anchors = push(self.anchors, residual, 2)
                self.last_full_step = ctx.step
            return
        if computed:
            keep = self.config.order + 1
            self.values = push(self.values, residual, keep)
            self.positions = (self.positions + [ctx.position(self.config.grid)])[-keep:]

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        if self.config.variant == "cache-dit":
            return self._cache_dit(ctx)
        ys = [self.values[:, i] for i in range(self.values.shape[1])]
        if len(ys) < 2:
            return ys[-1]
        return foca_step(self.positions, ys, ctx.position(self.config.grid), self.config.corrector)

    def _cache_dit(self, ctx: StepContext) -> torch.Tensor:
        """cache-dit's ``FoCaState.approximate``: unit steps, anchor difference not divided by its gap."""
        full = self.anchors[:, -1]
        self._advance = self.rolling.shape[1] >= 2 and self.anchors.shape[1] >= 2
        if not self._advance:
            return full
        elapsed = float(ctx.step - self.last_full_step)
        deriv_full = full - self.anchors[:, 0]
        deriv_curr = self.rolling[:, 1] - self.rolling[:, 0]
        horizon = self.config.max_horizon
        if elapsed <= horizon:
            return full + (elapsed / 2.0) * (deriv_full + deriv_curr)
        weight = horizon / elapsed
        return weight * (full + (horizon / 2.0) * (deriv_full + deriv_curr)) + (1.0 - weight) * full
