"""``hicache``: HiCache (Feng et al., "HiCache: a plug-in scaled-Hermite upgrade for Taylor-style
cache-then-forecast diffusion acceleration", arXiv 2508.16984, ICLR 2026; code: ``models/hicache_fast_impl.py``
of the HiCache repository, mirrored as github.com/yiming-l21/CFGCache).

TaylorSeer's derivative estimates ``D_k`` at the newest computed step, combined with the dual-scaled
(physicists') Hermite basis instead of TaylorSeer's monomials:

    R(x_n + d) = R_n + sum_{k=1..K} D_k * sigma^k H_k(sigma d) / k!

with ``sigma = scale`` (code: 0.5), ``d`` the distance to the target in steps (mean-step units on the sigma
and timestep grids) and ``D_{k+1} = (D_k,new - D_k,old) / gap`` (TaylorSeer's recursion, which reuses the
stale lower-order estimate; ``derivatives = "newton"`` takes the exact derivatives of the polynomial through
the last K+1 computed residuals instead).  As in the code, derivatives are only formed once the step index
reaches ``derivative_start`` (TaylorSeer's ``step > first_enhance - 2``), and with fewer estimates the
highest order available is used (none: plain reuse).
"""

from __future__ import annotations

import math

import attrs
import torch

from padecache import Predictor, StepContext, option

from ._common import combine, grid_option, normalized_position, push, scaled_hermite_weight

__all__ = ["HiCachePredictor", "hicache_weights", "newton_derivative_weights"]


def hicache_weights(order: int, distance: float, scale: float) -> list[float]:
    """Weights of ``[R_n, D_1, ..., D_order]`` in the HiCache forecast at ``distance`` from the newest step."""
    return [1.0] + [scaled_hermite_weight(k, distance, scale) for k in range(1, order + 1)]


def newton_derivative_weights(positions: list[float]) -> torch.Tensor:
    """``W`` (float64, ``(m, m)``) with ``D_k = sum_j W[k, j] R_j``: the k-th derivative, at the newest position
    (last entry), of the polynomial of degree ``m - 1`` through the samples at ``positions``."""
    x = torch.tensor(positions, dtype=torch.float64) - positions[-1]
    m = len(positions)
    vander = torch.stack([x**k / math.factorial(k) for k in range(m)], dim=1)  # R_j = sum_k D_k x_j^k / k!
    return torch.linalg.inv(vander)


class HiCachePredictor(Predictor):
    """Taylor-style forecast with HiCache's dual-scaled Hermite basis sigma^k H_k(sigma d) / k!."""

    name = "hicache"

    @attrs.frozen
    class Config:
        order: int = option(2, "int", ge=0, le=4, doc="highest derivative used (the code's launcher: max_order 2)")
        scale: float = option(0.5, gt=0.0, doc="sigma, the dual scaling of the Hermite basis (code: 0.5)")
        derivative_start: int = option(2, "int", ge=0, doc="first step index at which differences are formed "
                                       "(code: step > first_enhance - 2, first_enhance = 3)")
        derivatives: str = option("taylorseer", "str", choices=("taylorseer", "newton"), doc="derivative estimates: "
                                  "TaylorSeer's recursion (the code) or exact divided differences")
        grid: str = grid_option()

    def __init__(self, config=None):
        super().__init__(config)
        self.factors: torch.Tensor | None = None  # (B, m, ...): [R_n, D_1, ...] (taylorseer) or samples (newton)
        self.positions: list[float] = []  # newton: positions of the stacked samples; taylorseer: [newest]
        self.count = 0

    @property
    def num_computed(self) -> int:
        return self.count

    def reset(self) -> None:
        self.factors, self.positions, self.count = None, [], 0

    def state_tensors(self):
        return () if self.factors is None else (self.factors,)

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:
            return
        c = self.config
        x = normalized_position(ctx, c.grid)
        self.count += 1
        if c.derivatives == "newton":
            self.factors = push(self.factors, residual, c.order + 1)
            self.positions = (self.positions + [x])[-(c.order + 1):]
            return
        new = [residual]
        if self.factors is not None and ctx.step >= c.derivative_start:
            gap = x - self.positions[-1]
            for i in range(min(c.order, self.factors.shape[1])):
                new.append((new[i] - self.factors[:, i].to(residual.dtype)) / gap)
        self.factors = torch.stack(new, dim=1)
        self.positions = [x]

    def derivatives(self) -> torch.Tensor:
        """``(B, m, ...)``: the newest residual and the derivative estimates ``D_1..D_{m-1}``."""
        if self.config.derivatives == "taylorseer":
            return self.factors
        w = newton_derivative_weights(self.positions)
        return torch.stack([combine(self.factors, w[k]) for k in range(w.shape[0])], dim=1)

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        factors = self.derivatives()
        order = min(self.config.order, factors.shape[1] - 1)
        distance = normalized_position(ctx, self.config.grid) - self.positions[-1]
        return combine(factors[:, : order + 1], hicache_weights(order, distance, self.config.scale))
