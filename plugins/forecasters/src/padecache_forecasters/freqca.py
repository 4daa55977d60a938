"""``freqca``: FreqCa (Liu et al., "FreqCa: Accelerating Diffusion Models via Frequency-Aware Caching",
arXiv 2510.08669; the code is announced but not public).

The cached quantity is one Cumulative Residual Feature per branch (the residual of the whole block stack,
which is what padecache forecasts anyway).  It is split by a spatial low-pass ``P`` into a low band, reused
as it was at the last computed step (similar but not continuous across steps), and a high band, forecast
with the second-order scaled Hermite predictor of HiCache (continuous but not similar):

    R(x) = P R_n + (I - P) Hermite_2(R)(x) = R_n + (I - P) [Hermite_2(R)(x) - R_n]

(the band split is linear, so forecasting the high band of each residual equals taking the high band of the
forecast).  ``P`` keeps the 2-D FFT frequencies of the token grid within ``cutoff`` of the Nyquist radius; the
token grid is ``tokens = (h, w)``, or inferred as a square when the token count is one, or the last two
dimensions of a ``(B, C, H, W)`` tensor; otherwise the FFT runs along the token axis.
"""

from __future__ import annotations

import functools
import math

import attrs
import torch

from padecache import OptionError, StepContext, option

from ._common import grid_option
from .hicache import HiCachePredictor

__all__ = ["FreqCaPredictor", "lowpass"]


def _radial_mask(shape: tuple[int, ...], cutoff: float, device) -> torch.Tensor:
    """``True`` where the normalised FFT frequency radius (1 = Nyquist on an axis) is at most ``cutoff``."""
    grids = torch.meshgrid(*[torch.fft.fftfreq(n, device=device) / 0.5 for n in shape], indexing="ij")
    return torch.sqrt(sum(g**2 for g in grids)) <= cutoff + 1e-9


def lowpass(x: torch.Tensor, cutoff: float, tokens: tuple[int, int] | None = None) -> torch.Tensor:
    """Spatial low band of a batch-first feature tensor (per batch row and channel; see the module doc)."""
    if x.dim() == 4:  # (B, C, H, W)
        dims = (2, 3)
        y = x
    elif x.dim() == 3:  # (B, N, C) tokens
        n = x.shape[1]
        h, w = tokens if tokens is not None else (math.isqrt(n), math.isqrt(n))
        if h * w == n:
            y, dims = x.reshape(x.shape[0], h, w, x.shape[2]), (1, 2)
        else:
            y, dims = x, (1,)
    else:
        y, dims = x.reshape(x.shape[0], -1), (1,)
    spec = torch.fft.fftn(y if y.dtype in (torch.float32, torch.float64) else y.float(), dim=dims)
    mask = _radial_mask(tuple(y.shape[d] for d in dims), cutoff, y.device)
    shape = [1] * y.dim()
    for d in dims:
        shape[d] = y.shape[d]
    low = torch.fft.ifftn(spec * mask.reshape(shape), dim=dims).real
    return low.reshape(x.shape).to(x.dtype)


class FreqCaPredictor(HiCachePredictor):
    """Reuse the low band of the last computed residual, forecast its high band with second-order Hermite."""

    name = "freqca"

    @attrs.frozen
    class Config:
        cutoff: float = option(0.25, ge=0.0, le=1.5, doc="radius of the reused low band, as a fraction of the "
                               "Nyquist frequency (not given in the paper's abstract; measured in METHODS.md)")
        tokens: tuple[int, ...] | None = option(None, "ints", ge=1, optional=True, doc="(h, w) token grid of "
                                                "(B, N, C) features; default: a square grid when N is a square")
        order: int = option(2, "int", ge=0, le=4, doc="Hermite order of the high band (paper: second order)")
        scale: float = option(0.5, gt=0.0, doc="sigma of the scaled Hermite basis (HiCache's 0.5)")
        derivative_start: int = option(2, "int", ge=0, doc="first step index at which differences are formed")
        derivatives: str = option("taylorseer", "str", choices=("taylorseer", "newton"), doc="derivative estimates")
        grid: str = grid_option()

        def __attrs_post_init__(self):
            if self.tokens is not None and len(self.tokens) != 2:
                raise OptionError("tokens", f"needs two numbers (h, w), got {list(self.tokens)}")

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        forecast = super().predict(ctx, block_input)
        newest = self.derivatives()[:, 0]
        change = forecast - newest
        # the band split mixes tokens: under sequence parallelism it runs on the whole sequence, each rank keeping its part
        band = functools.partial(lowpass, cutoff=self.config.cutoff, tokens=self.config.tokens)
        low = ctx.gather(change, 1, band) if change.dim() == 3 else band(change)
        return newest + change - low
