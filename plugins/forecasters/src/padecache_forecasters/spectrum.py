"""``spectrum``: Spectrum (Han et al., "Adaptive Spectral Feature Forecasting for Diffusion Sampling
Acceleration", CVPR 2026, arXiv 2603.01623; code github.com/hanjq17/Spectrum, ``src/utils/basis_utils.py``).

Every computed residual ``h_i`` at time ``t_i`` is kept (up to ``window`` of them, the code's K = 100); time is
mapped affinely onto ``tau in [-1, 1]`` and the coefficients ``C`` of the Chebyshev polynomials ``T_0..T_M``
are fitted by ridge regression, ``C = (X^T X + lam I)^{-1} X^T H`` with ``X_im = T_m(tau_i)``.  The forecast
at ``t*`` is ``x(tau*)^T C``, optionally mixed with the code's local first-order term (``w < 1``):
``(1 - w) [h_n + k (h_n - h_{n-1})] + w x(tau*)^T C`` with ``k = (t* - t_n) / (t_n - t_{n-1})``.

Because ``X`` depends on the positions only, the forecast is a fixed linear combination of the stored
residuals: ``sum_i a_i h_i`` with ``a = x*^T (X^T X + lam I)^{-1} X^T``, computed once per target in float64
and applied per batch row.  ``SpectrumWindowPolicy`` (``spectrum-window``) is the code's flexible window
schedule (``window_size`` N, ``flex_window`` alpha, ``warmup_steps``).
"""

from __future__ import annotations

import math

import attrs
import torch

from padecache import Predictor, StepContext, option
from padecache.policies import StaticPolicy

from ._common import combine, grid_option, grid_unit, push

__all__ = ["SpectrumPredictor", "SpectrumWindowPolicy", "chebyshev_design", "ridge_weights"]


def chebyshev_design(taus: torch.Tensor, degree: int) -> torch.Tensor:
    """``X[i, m] = T_m(taus[i])`` for ``m = 0..degree`` (three-term recurrence), shape ``(len(taus), degree + 1)``."""
    taus = taus.reshape(-1, 1)
    cols = [torch.ones_like(taus)]
    if degree >= 1:
        cols.append(taus)
    for _ in range(2, degree + 1):
        cols.append(2 * taus * cols[-1] - cols[-2])
    return torch.cat(cols[: degree + 1], dim=1)


def ridge_weights(taus: list[float], target: float, degree: int, lam: float) -> torch.Tensor:
    """Weights ``a`` (float64, one per sample) with ``forecast = sum_i a_i h_i`` for the Chebyshev ridge fit.

    Solves ``(X^T X + lam I) C = X^T`` by Cholesky like the official code; if the normal matrix is singular
    (``lam = 0`` with fewer samples than basis functions) it adds the code's jitter ``1e-6 * mean(diag)``.
    """
    x = chebyshev_design(torch.tensor(taus, dtype=torch.float64), degree)
    normal = x.T @ x + lam * torch.eye(degree + 1, dtype=torch.float64)
    chol, info = torch.linalg.cholesky_ex(normal)
    if int(info) != 0:
        jitter = 1e-6 * normal.diagonal().mean()
        chol = torch.linalg.cholesky(normal + jitter * torch.eye(degree + 1, dtype=torch.float64))
    coef = torch.cholesky_solve(x.T, chol)  # (P, n): C = coef @ H
    x_star = chebyshev_design(torch.tensor([target], dtype=torch.float64), degree)
    return (x_star @ coef).reshape(-1)


class SpectrumPredictor(Predictor):
    """Chebyshev basis fitted by ridge regression over every computed residual, evaluated far ahead."""

    name = "spectrum"

    @attrs.frozen
    class Config:
        degree: int = option(4, "int", ge=0, le=16, doc="M: Chebyshev polynomials T_0..T_M (paper and code: m = 4)")
        lam: float = option(0.1, ge=0.0, doc="ridge strength lambda on the coefficients (paper and code: 0.1)")
        w: float = option(1.0, ge=0.0, le=1.0, doc="weight of the Chebyshev forecast against the code's local "
                          "linear term (paper / config default 1.0; the README suggests 0.5-1.0, its scripts use 0.5)")
        window: int = option(100, "int", ge=1, doc="K: newest computed residuals kept for the fit (code: 100)")
        span: float | None = option(None, gt=0.0, optional=True, doc="length of the tau-domain in steps from the "
                                    "first step (official code: 50 whatever the step count); default: the step count")
        target: str = option("residual", "str", choices=("residual", "output"), doc="what is fitted: the block-stack "
                             "residual (padecache) or its output (the official code's hidden states)")
        min_points: int = option(2, "int", ge=1, doc="computed residuals before the first forecast (the code "
                                 "always warms up 5 steps; its disabled readiness check asked for M + 2)")
        grid: str = grid_option()

    def __init__(self, config=None):
        super().__init__(config)
        self.values: torch.Tensor | None = None  # (B, n, ...) stacked computed residuals (or outputs)
        self.taus: list[float] = []
        self.positions: list[float] = []
        self._domain: tuple[float, float] | None = None
        self._weights_key: tuple | None = None
        self._weights: tuple[float, ...] | None = None  # floats, not a tensor: select(rows) must not slice them

    @property
    def min_history(self) -> int:  # type: ignore[override]
        return self.config.min_points

    @property
    def num_computed(self) -> int:
        return len(self.taus)

    def reset(self) -> None:
        self.values = None
        self.taus, self.positions = [], []
        self._domain = None
        self._weights_key, self._weights = None, None

    def state_tensors(self):
        return () if self.values is None else (self.values,)

    # -- time -> tau -------------------------------------------------------------------------------------------
    def _domain_of(self, ctx: StepContext) -> tuple[float, float]:
        """``[a, b]`` mapped onto ``[-1, 1]``: from step 0 over ``span`` steps (default: all of them)."""
        if self._domain is None:
            grid = self.config.grid
            start = ctx.position(grid, 0) if (ctx.schedule is not None or grid == "step") else ctx.position(grid)
            length = self.config.span if self.config.span is not None else float(ctx.num_steps)
            self._domain = (start, start + length * grid_unit(ctx, grid))
        return self._domain

    def _tau(self, ctx: StepContext, position: float) -> float:
        a, b = self._domain_of(ctx)
        return 2.0 * (position - a) / (b - a) - 1.0

    # -- contract ------------------------------------------------------------------------------------------------
    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:  # the code updates its forecaster on full passes only
            return
        value = residual + block_input if self.config.target == "output" else residual
        position = ctx.position(self.config.grid)
        self.values = push(self.values, value, self.config.window)
        self.taus = (self.taus + [self._tau(ctx, position)])[-self.config.window:]
        self.positions = (self.positions + [position])[-self.config.window:]
        self._weights_key = None

    def weights(self, ctx: StepContext) -> tuple[float, ...]:
        """Weights of the stored samples (oldest first) in the forecast at ``ctx.step``."""
        c = self.config
        position = ctx.position(c.grid)
        key = (position, len(self.taus), self.taus[-1])
        if self._weights_key == key and self._weights is not None:
            return self._weights
        n = len(self.taus)
        out = c.w * ridge_weights(self.taus, self._tau(ctx, position), c.degree, c.lam)
        if c.w < 1.0:
            local = torch.zeros(n, dtype=torch.float64)
            if n < 2:
                local[-1] = 1.0
            else:
                k = (position - self.positions[-1]) / (self.positions[-1] - self.positions[-2])
                local[-1], local[-2] = 1.0 + k, -k
            out = out + (1.0 - c.w) * local
        self._weights_key, self._weights = key, tuple(out.tolist())
        return self._weights

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        pred = combine(self.values, self.weights(ctx))
        return pred - block_input.to(pred.dtype) if self.config.target == "output" else pred


class SpectrumWindowPolicy(StaticPolicy):
    """Spectrum's flexible window: after the warm-up, a gap of floor(window) steps, window growing by flex.

    From ``flux_forward.py``: after ``warmup`` computed steps, compute when ``(skipped + 1) % floor(window) == 0``,
    and grow ``window`` by ``flex`` after each computed step.

    ``warmup=5, window=2, flex=0.75`` is the paper's alpha = 0.75 setting (14 passes in 50 steps); ``flex=3`` its
    alpha = 3 setting (10 passes).  The plan depends on the step count only (``padecache mask``).
    """

    name = "spectrum-window"

    @attrs.frozen
    class Config:
        warmup: int = option(5, "int", ge=1, doc="steps computed at the start (code: warmup_steps = 5)")
        window: float = option(2.0, ge=1.0, doc="N, the initial window (code: window_size = 2)")
        flex: float = option(0.75, ge=0.0, doc="alpha, window growth after each computed step (code: flex_window)")

    def build_mask(self, num_steps: int) -> list[bool]:
        c = self.config
        out, skipped, window = [], 0, c.window
        for step in range(num_steps):
            compute = step < c.warmup or (skipped + 1) % math.floor(window) == 0
            if compute and step >= c.warmup:
                window = round(window + c.flex, 3)  # the code rounds against float drift
            skipped = 0 if compute else skipped + 1
            out.append(compute)
        return out
