"""``magcache`` policy: MagCache (Ma et al., "MagCache: Fast Video Generation with Magnitude-Aware Cache",
arXiv 2506.09045; code github.com/Zehong-Ma/MagCache) with its magnitude ratios measured online and its
threshold set from a pass budget, so that it needs no calibration run.

MagCache skips a step while the accumulated error of reusing the last residual stays small: with
``gamma_t`` the mean over tokens of ``||R_t|| / ||R_{t-1}||`` (per token, norm over channels), each skipped step
multiplies ``ratio *= gamma_t`` and adds ``err += |1 - ratio|``; the block stack runs when ``err`` exceeds the
threshold or after ``K`` consecutive skips, and the first ``retention`` share of the steps always runs.  The
code reads ``gamma_t`` from a per-model table calibrated on one full-compute run; here each computed step
measures it against the previous computed one, ``gamma = (mean_tokens ||R_n|| / ||R_p||)^(1 / gap)`` per step
and batch row, and the skipped steps use the newest value (MagCache's observation is that the curve is
smooth and model-specific but prompt-agnostic).

Budget (``speedup`` or ``full_passes``, like padecache's ``budget``): with ``B`` passes left and the last usable
step ``e`` (the last ``tail`` share is left to the forecast), an even plan computes every
``G = (e - last computed) / B`` steps; the threshold is the error such a segment of ``G - 1`` skips accumulates
at the *average* rate seen so far, ``tau = sum_i |1 - gbar^i|`` with ``log gbar`` the mean ``|log gamma|`` per
step.  The block stack runs when the current segment's error exceeds ``tau`` (the residual changes faster
than on average) or when the segment reaches ``G`` steps; ``G`` is re-planned after every decision, so passes
taken early lengthen the later segments and the budget is spent: never more than ``B`` passes, the remaining
ones forced when the usable steps left equal them.  (The planned gap takes the place of MagCache's ``K``.)
With ``threshold`` set, the budget is ignored and the rule is MagCache's own (``threshold`` and ``K``).
"""

from __future__ import annotations

import math

import attrs
import torch

from padecache import CachePolicy, OptionError, StepContext, option

__all__ = ["MagCachePolicy", "segment_error", "token_norms"]


def token_norms(residual: torch.Tensor) -> torch.Tensor:
    """Per-token norms over the channel (last) dimension, ``(B, tokens)``; a 2-D tensor is one token per row."""
    r = residual.float()
    if r.dim() <= 2:
        return r.reshape(r.shape[0], -1).norm(dim=1, keepdim=True)
    return r.norm(dim=-1).reshape(r.shape[0], -1)


def segment_error(log_rate: torch.Tensor, skips: float) -> torch.Tensor:
    """MagCache's accumulated error after ``skips`` steps at a constant per-step ratio ``exp(log_rate)``:
    ``sum_{i=1..skips} |1 - gamma^i|``, linear in between for a fractional count; per batch row."""
    whole = math.floor(max(skips, 0.0))
    out = torch.zeros_like(log_rate)
    for i in range(1, whole + 1):
        out = out + (1 - torch.exp(i * log_rate)).abs()
    frac = max(skips, 0.0) - whole
    if frac > 0:
        out = out + frac * (1 - torch.exp((whole + 1) * log_rate)).abs()
    return out


class MagCachePolicy(CachePolicy):
    """MagCache's accumulated magnitude-ratio error, ratios measured online, threshold set by a pass budget."""

    name = "magcache"

    @attrs.frozen
    class Config:
        speedup: float | None = option(2.5, ge=1.0, optional=True, doc="target steps / full block-stack passes")
        full_passes: int | None = option(None, "int", ge=1, optional=True, doc="exact number of passes (overrides speedup)")
        retention: float = option(0.1, ge=0.0, lt=1.0, doc="share of the steps always computed at the start "
                                  "(code: retention_ratio 0.1 for FLUX, 0.2 for Wan / HunyuanVideo)")
        max_skips: int = option(5, "int", ge=1, doc="K, most consecutive skipped steps with a fixed `threshold` "
                                "(code: 5 for FLUX); with a budget the planned gap takes its place")
        tail: float = option(0.1, ge=0.0, lt=1.0, doc="share of the steps at the end left to the forecast "
                             "(padecache's budget default; MagCache has none)")
        threshold: float | None = option(None, gt=0.0, optional=True, doc="fixed MagCache threshold (code: 0.24 "
                                         "for FLUX, 0.12 for Wan): ignore the budget and use MagCache's rule")
        per_row: bool = option(True, "bool", doc="decide per batch row (false: compute when any row asks)")

        def __attrs_post_init__(self):
            if self.threshold is None and self.speedup is None and self.full_passes is None:
                raise OptionError("speedup", "give `speedup`, `full_passes` or `threshold`")

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def reset(self) -> None:
        self.passes = 0
        self.last_step: int | None = None
        self.skips = 0  # consecutive skipped steps since the last computed one
        self.covered = 0.0  # steps spanned by the measured ratios
        self.ref_norms: torch.Tensor | None = None  # (B, tokens) of the last computed residual
        self.log_rate: torch.Tensor | None = None  # (B,) newest per-step log ratio
        self.abs_log_sum: torch.Tensor | None = None  # (B,) sum of |log ratio| over the computed gaps
        self.acc_ratio: torch.Tensor | None = None  # (B,)
        self.acc_err: torch.Tensor | None = None  # (B,)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.ref_norms, self.log_rate, self.abs_log_sum, self.acc_ratio, self.acc_err)
                     if t is not None)

    # -- plan ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _span(ctx: StepContext) -> tuple[int, int]:
        span = getattr(ctx, "span", None)
        return (0, ctx.num_steps) if span is None else (int(span[0]), int(span[1]))

    def budget(self, ctx: StepContext) -> int:
        first, stop = self._span(ctx)
        steps = stop - first
        c = self.config
        if c.full_passes is not None:
            return min(steps, c.full_passes)
        return max(1, min(steps, round(steps / c.speedup)))

    def _decide(self, ctx: StepContext, rows: int) -> torch.Tensor | bool:
        c = self.config
        first, stop = self._span(ctx)
        steps = stop - first
        fixed = c.threshold is not None
        passes = steps if fixed else self.budget(ctx)
        warmup = max(1, int(c.retention * steps + 0.5))
        if not fixed:
            warmup = min(warmup, max(1, passes - 1))
        if ctx.step - first < warmup or self.log_rate is None or self.last_step is None:
            return self.passes < passes
        left = passes - self.passes
        if left <= 0:
            return False
        last_usable = stop - 1 - (0 if fixed else round(c.tail * steps))
        if not fixed and left >= last_usable - ctx.step + 1:  # spend what is left: every usable step computes
            return True
        ratio = self.acc_ratio * torch.exp(self.log_rate)
        err = self.acc_err + (1 - ratio).abs()
        self._pending = (ratio, err)
        if fixed:
            tau = torch.full_like(err, c.threshold)
            self._indicators = {"mag_err": err.mean(), "mag_tau": tau.mean()}
            return (err > tau) | (self.skips + 1 > c.max_skips)
        gap = max(1.0, (last_usable - self.last_step) / left)
        mean_rate = self.abs_log_sum / max(self.covered, 1e-12)
        tau = segment_error(mean_rate, gap - 1.0)
        self._indicators = {"mag_err": err.mean(), "mag_tau": tau.mean()}
        return (err > tau) | (ctx.step - self.last_step >= gap - 1e-9)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        rows = getattr(ctx, "rows", 1)
        want = self._decide(ctx, rows)
        if isinstance(want, bool):
            return want if not self.config.per_row else torch.full((rows,), want, dtype=torch.bool)
        if not self.config.per_row:
            return bool(want.any())
        return want.reshape(-1).cpu()

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if not computed:
            if self._pending is not None:
                self.acc_ratio, self.acc_err = self._pending
            self.skips += 1
            self._pending = None
            return
        norms = token_norms(residual)
        if self.ref_norms is not None and self.last_step is not None and ctx.step > self.last_step:
            gap = ctx.step - self.last_step
            ratio = (norms / self.ref_norms.clamp_min(1e-12)).mean(dim=1).clamp_min(1e-12)
            log_ratio = torch.log(ratio)
            self.log_rate = log_ratio / gap
            self.abs_log_sum = log_ratio.abs() if self.abs_log_sum is None else self.abs_log_sum + log_ratio.abs()
            self.covered += gap
        self.ref_norms = norms
        self.last_step = ctx.step
        self.passes += 1
        self.skips = 0
        self.acc_ratio = torch.ones(norms.shape[0], device=norms.device)
        self.acc_err = torch.zeros(norms.shape[0], device=norms.device)
        self._pending = None

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)
