"""``resilphase`` predictor: ResilPhase ("ResilPhase: Plug-and-Play Phase Mapping and Noise-Resilient
Macro-Trajectory Extrapolation for Diffusion Acceleration", ECCV 2026; code github.com/zqc214/ResilPhase @ d4afbe9,
``ResilPhase-Diffusers/*/interpolation.py``; diffusers PR #14419).

The residuals of the last ``max_order + 1`` computed steps are interpolated by the barycentric Lagrange formula
on a *phase axis* instead of the step axis: ``balanced`` maps a position x to
``tanh(alpha (x - mean) / max|x_i - mean|)`` (nodes and target alike), which compresses far extrapolation;
``chebyshev`` puts the computed steps on Chebyshev nodes and maps the target piecewise linearly between them.
With two residuals the forecast is the line through them in phase, i.e. a damped linear extrapolation.
"""

from __future__ import annotations

import attrs
import torch

from padecache import Predictor, StepContext, option

from ._math import resilphase_coefficients

__all__ = ["ResilPhasePredictor"]


class ResilPhasePredictor(Predictor):
    """ResilPhase: barycentric Lagrange interpolation of the last computed residuals on a phase axis."""

    name = "resilphase"
    min_history = 1

    @attrs.frozen
    class Config:
        max_order: int = option(1, "int", ge=0, le=8, doc="interpolation order: the last max_order + 1 computed "
                                "residuals (code: 1 for FLUX and HunyuanVideo, 4 for DiT)")
        mapping: str = option("balanced", "str", choices=("balanced", "chebyshev"),
                              doc="phase axis (code: balanced for FLUX and HunyuanVideo, chebyshev for DiT)")
        alpha: float = option(0.55, gt=0.0, doc="compression of the balanced mapping (code: balance_alpha 0.55)")
        grid: str = option("step", "str", choices=("step", "sigma", "timestep"),
                           doc="abscissa before the phase mapping (code: the step index)")

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def reset(self) -> None:
        self.residuals: list[torch.Tensor] = []
        self.positions: list[float] = []
        self._weights: list[float] | None = None

    @property
    def num_computed(self) -> int:
        return len(self.residuals)

    def state_tensors(self):
        return list(self.residuals)

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:
            return
        keep = self.config.max_order + 1
        self.residuals = (self.residuals + [residual.detach()])[-keep:]
        self.positions = (self.positions + [ctx.position(self.config.grid)])[-keep:]

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        c = self.config
        weights = resilphase_coefficients(self.positions, ctx.position(c.grid), c.mapping, c.alpha)
        self._weights = weights
        out = None
        for w, r in zip(weights, self.residuals):
            term = r.to(torch.promote_types(r.dtype, torch.float32)) * w
            out = term if out is None else out + term
        return out.to(block_input.dtype)

    def indicators(self) -> dict[str, float]:
        if not self._weights:
            return {}
        return {"resilphase_newest": float(self._weights[-1])}
