"""``seacache`` policy: SeaCache (Chung et al., "SeaCache: Spectral-Evolution-Aware Cache for Accelerating Diffusion
Models", CVPR 2026, arXiv 2602.18993; code github.com/jiwoogit/SeaCache; diffusers ``hooks/sea_cache.py``).

TeaCache's rule -- accumulate the relative L1 change of the first block's modulated input, compute once the sum
reaches the threshold -- on a *spectrally filtered* input and without a fitted polynomial: the features, laid
out on their token grid, are multiplied in the Fourier domain by the SEA filter, the Wiener filter of a clean
signal with a power-law spectrum ``1/|f|^p`` observed at the step's noise level,
``H(f) = a S(f) / (a^2 S(f) + b^2)`` per axis (``a = 1 - sigma``, ``b = sigma`` for rectified flow), normalised
to unit mean.  Early (noisy) steps keep only low frequencies, late ones the whole band, so the distance follows
the content that is forming rather than the noise.  Per batch row; under sequence parallelism every rank filters
the whole token grid, gathered from the shards (``ctx.gather``), so the decisions are the unsharded run's.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from padecache import CachePolicy, StepContext, option

from ._inputs import read_input, token_grid
from ._math import rel_l1, rel_l1_sums, sea_coefficients, sea_filter
from .teacache import _accumulate, _ForcedSteps

__all__ = ["SeaCachePolicy"]

_ORDER = {"modulated": ("modulated", "stack_input"), "stack_input": ("stack_input",), "model_input": ("model_input",)}


def _as_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, N, C)`` tokens from a token tensor, or from latents ``(B, C, [F,] H, W)`` (channels last)."""
    if x.dim() == 3:
        return x
    if x.dim() in (4, 5):
        return x.flatten(2).transpose(1, 2)
    return x.reshape(x.shape[0], -1, 1)


class SeaCachePolicy(CachePolicy):
    """SeaCache: TeaCache's accumulated relative L1 rule on SEA-filtered (spectrally denoised) modulated inputs."""

    name = "seacache"
    inputs: ClassVar[frozenset[str]] = frozenset({"modulated", "stack_input", "model_input"})

    @attrs.frozen
    class Config:
        threshold: float = option(0.3, gt=0.0, doc="accumulated filtered distance that triggers a compute (code: FLUX "
                                  "0.3 = 2x, 0.6 = 3x; Wan 0.2; diffusers 0.25)")
        power_exp: float | None = option(None, gt=0.0, optional=True, doc="p of the clean spectrum 1/|f|^p (code: 2 "
                                         "for images, 3 for video; default: by the grid's dimension)")
        warmup: int = option(1, "int", ge=0, doc="steps always computed at the start (code: 1; Wan --use_ret_steps 5)")
        last: bool = option(True, "bool", doc="always compute the final step (code: yes)")
        max_skips: int = option(0, "int", ge=0, doc="most consecutive reuses before a forced compute (0: no limit, "
                                "the official code; the diffusers hook uses 2)")
        indicator: str = option("modulated", "str", choices=tuple(_ORDER),
                                doc="what is filtered: the first block's modulated input (official code), the "
                                    "block-stack input, or the latents (the diffusers hook)")
        mode: str = option("flow", "str", choices=("flow", "vp"),
                           doc="noise model of the schedule: rectified flow (a = 1 - sigma) or variance preserving")
        grid: tuple[int, ...] | None = option(None, "ints", ge=1, optional=True,
                                              doc="token layout ([frames,] height, width); default: the engine's, or "
                                                  "inferred from the latents' shape")
        filter_warmup: bool = option(True, "bool", doc="filter the indicator on forced steps too (paper, diffusers); "
                                     "false: the official code, which keeps the unfiltered input there, so its first "
                                     "comparison after a forced step mixes filtered and unfiltered features")

    def __init__(self, config=None):
        super().__init__(config)
        self.inputs = frozenset({"stack_input", self.config.indicator})
        self.reset()

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None
        self.acc: torch.Tensor | None = None
        self.skips: torch.Tensor | None = None  # (rows,) consecutive reuses
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.previous, self.acc, self.skips) if t is not None)

    def filtered(self, ctx: StepContext, value: torch.Tensor) -> torch.Tensor:
        """The SEA-filtered indicator ``(B, N, C)`` at ``ctx``'s noise level."""
        c = self.config
        tokens = _as_tokens(value)
        if value.dim() in (4, 5):  # latents: their own spatial layout
            grid = tuple(value.shape[2:])
        else:
            grid = token_grid(tokens.shape[1], ctx, c.grid)
        sigma = ctx.sigma if ctx.sigma is not None else ctx.timestep / 1000.0
        a, b = sea_coefficients(float(sigma), c.mode)
        power = c.power_exp if c.power_exp is not None else (3.0 if len(grid) >= 3 else 2.0)
        return sea_filter(tokens, grid, a, b, power)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        c = self.config
        value, used = read_input(ctx, _ORDER[c.indicator], "policy 'seacache'")
        # the block stack's features are this rank's shard of the tokens under sequence parallelism; the filter needs
        # the whole token grid, so every rank filters the gathered sequence (the model's input is whole everywhere)
        whole = used != "model_input" and ctx.sharded
        if whole:
            value = ctx.gather(_as_tokens(value), 1)
        rows = value.shape[0]
        if self.acc is None or self.acc.shape[0] != rows:
            self.acc = torch.zeros(rows, dtype=torch.float64, device=value.device)
            self.skips = torch.zeros(rows, dtype=torch.long)
        forced = _ForcedSteps.forced(ctx, c.warmup, 0.0, c.last)
        fallback = torch.tensor(float(used != c.indicator))
        if forced or self.previous is None:
            compute = torch.ones(rows, dtype=torch.bool)
            self.acc = torch.zeros_like(self.acc)
            self.previous = (self.filtered(ctx, value) if c.filter_warmup else _as_tokens(value).float()).detach()
            self._indicators = {"sea_fallback": fallback}
        else:
            current = self.filtered(ctx, value)
            if current.shape != self.previous.shape:
                raise RuntimeError(f"policy 'seacache': the indicator changed shape from {tuple(self.previous.shape)} "
                                   f"to {tuple(current.shape)} within a generation")
            sums = rel_l1_sums(current, self.previous)
            distance = rel_l1(sums if whole else ctx.reduce(sums).value)
            compute, self.acc = _accumulate(self.acc, distance.double(), c.threshold)
            compute = compute.cpu()
            if c.max_skips:
                compute = compute | (self.skips >= c.max_skips)
                self.acc = torch.where(compute.to(self.acc.device), torch.zeros_like(self.acc), self.acc)
            self.previous = current.detach()
            self._indicators = {"sea_rel_l1": distance.mean(), "sea_acc": self.acc.float().mean(),
                                "sea_fallback": fallback}
        compute = compute.cpu()
        self.skips = torch.where(compute, torch.zeros_like(self.skips), self.skips + 1)
        return compute

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if computed and self.acc is not None:
            self.acc = torch.zeros_like(self.acc)
            self.skips = torch.zeros_like(self.skips)

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)
