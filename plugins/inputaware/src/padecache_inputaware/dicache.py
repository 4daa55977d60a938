"""``dicache`` policy and predictor: DiCache (Bu et al., "DiCache: Let Diffusion Model Determine Its Own Cache",
arXiv 2508.17356; code github.com/Bujiazi/DiCache @ dd7f0de).

*Online probe profiling* (policy): the first ``probe_depth`` blocks always run (padecache's
``engine.first_blocks``); their output, the probe state ``y_t``, is the block-stack input the policy sees.  Its
relative L1 change ``mean|y_t - y_{t-1}| / mean|y_{t-1}|`` (``error = "delta_y"``, the code's default) -- or its
difference from the input's change (``"delta_minus"``) -- is accumulated; the rest of the stack is skipped while
the sum stays below the threshold.

*Dynamic cache trajectory alignment* (predictor): with the probe residuals ``p = y - x`` (what the probe
blocks added to the stack input ``x``) at the last two computed steps and now, ``gamma = mean|p - p_2| /
mean|p_1 - p_2|`` clipped to [1, 1.5] says how far along its last computed segment the trajectory has moved;
the cached residuals are moved as far, ``R_2 + gamma (R_1 - R_2)``.  With fewer than two computed residuals the
last one is reused.  Per batch row; sums over the sequence-parallel group.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from padecache import CachePolicy, Predictor, StepContext, option
from padecache.errors import warn

from ._inputs import MissingInput, read_input
from ._math import abs_sums, dicache_forecast, dicache_gamma, rel_l1, rel_l1_sums
from .teacache import _accumulate

__all__ = ["DiCachePolicy", "DiCachePredictor"]


def _first_input(ctx) -> torch.Tensor | None:
    """The input of block 0 of the stack (before the always-run probe blocks), where the engine gives it."""
    return getattr(getattr(ctx, "inputs", None), "first_input", None)


class DiCachePolicy(CachePolicy):
    """DiCache's online probe profiling: accumulated relative change of the shallow probe blocks' output."""

    name = "dicache"
    inputs: ClassVar[frozenset[str]] = frozenset({"stack_input", "first_input"})

    @attrs.frozen
    class Config:
        threshold: float = option(0.4, gt=0.0, doc="accumulated error that triggers a compute (code: FLUX 0.4 with "
                                  "delta_y, 0.08 with delta_minus; Wan 0.08; HunyuanVideo 0.1)")
        error: str = option("delta_y", "str", choices=("delta_y", "delta_minus"),
                            doc="the probe output's relative change (code default), or |its change - the input's|")
        ret_ratio: float = option(0.2, ge=0.0, lt=1.0, doc="share of the steps always computed at the start "
                                  "(code: 0.2; 0.0 with delta_minus)")
        ret_inclusive: bool = option(True, "bool", doc="compute steps 0..int(ret_ratio N) inclusive (FLUX code); "
                                     "false: the first int(ret_ratio N) steps (Wan, HunyuanVideo code)")
        last: bool = option(True, "bool", doc="always compute the final step (FLUX code; not Wan's)")

    def __init__(self, config=None):
        super().__init__(config)
        self.inputs = frozenset({"stack_input", "first_input"})  # block 0's input: also to see that a probe ran
        self._checked_probe = False
        self.reset()

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None  # probe state y of the previous step
        self.previous_input: torch.Tensor | None = None  # stack input x of the previous step (delta_minus)
        self.acc: torch.Tensor | None = None
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.previous, self.previous_input, self.acc) if t is not None)

    def forced(self, ctx: StepContext) -> bool:
        c = self.config
        first, steps = ctx.first_step, ctx.span_steps
        head = int(c.ret_ratio * steps)
        i = ctx.step - first
        return (i <= head if c.ret_inclusive else i < head) or (c.last and i == steps - 1)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        c = self.config
        probe, _ = read_input(ctx, ("stack_input",), "policy 'dicache'")
        x = _first_input(ctx)
        if c.error == "delta_minus" and x is None:
            raise MissingInput("policy 'dicache' with error = 'delta_minus' needs the input of block 0 "
                               "(`inputs.first_input`), which the engine gives only where block 0 takes the streams "
                               "the cached range does (same shapes); use error = 'delta_y' for this model")
        if not self._checked_probe:
            self._checked_probe = True
            if x is not None and (x is probe or torch.equal(x, probe)):
                warn("padecache: policy 'dicache' runs without a probe: engine.first_blocks is 0, so it "
                     "measures the block-stack input itself, not the output of shallow blocks as DiCache "
                     "does. Set engine.first_blocks = 1 (the 'dicache' preset does)", RuntimeWarning,
                     stacklevel=2)
        rows = probe.shape[0]
        if self.acc is None or self.acc.shape[0] != rows:
            self.acc = torch.zeros(rows, dtype=torch.float64, device=probe.device)
        if self.forced(ctx) or self.previous is None or self.previous.shape != probe.shape:
            compute = torch.ones(rows, dtype=torch.bool)
            self.acc = torch.zeros_like(self.acc)
            self._indicators = {}
        else:
            sums = rel_l1_sums(probe, self.previous)
            if c.error == "delta_minus":
                sums = torch.cat([sums, rel_l1_sums(x, self.previous_input)], dim=1)
            sums = ctx.reduce(sums).value
            delta_y = rel_l1(sums[:, :2])
            error = delta_y if c.error == "delta_y" else (delta_y - rel_l1(sums[:, 2:])).abs()
            compute, self.acc = _accumulate(self.acc, error.double(), c.threshold)
            compute = compute.cpu()
            self._indicators = {"dicache_delta_y": delta_y.mean(), "dicache_acc": self.acc.float().mean()}
        self.previous = probe.detach().clone()
        self.previous_input = None if x is None else x.detach().clone()
        return compute

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if computed and self.acc is not None:
            self.acc = torch.zeros_like(self.acc)

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)


class DiCachePredictor(Predictor):
    """DiCache's dynamic cache trajectory alignment: the last two computed residuals moved along by the probe."""

    name = "dicache"
    min_history = 1
    inputs: ClassVar[frozenset[str]] = frozenset({"first_input"})  # the probe residual y - x (the code's exact form)

    @attrs.frozen
    class Config:
        gamma_min: float = option(1.0, ge=0.0, doc="lower clip of the alignment factor (code: 1)")
        gamma_max: float = option(1.5, ge=0.0, doc="upper clip (code: 1.5 for FLUX and HunyuanVideo, 2 for Wan)")

        def __attrs_post_init__(self):
            if self.gamma_max < self.gamma_min:
                from padecache import OptionError

                raise OptionError("gamma_max", f"must be >= gamma_min ({self.gamma_min}), got {self.gamma_max}")

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def reset(self) -> None:
        self.residuals: list[torch.Tensor] = []  # the last two computed residuals, oldest first
        self.probes: list[torch.Tensor] = []  # the probe residuals (or states) at those steps
        self.exact: bool = True  # probes are residuals p = y - x (the engine gave the input of block 0)
        self._gamma: torch.Tensor | None = None

    @property
    def num_computed(self) -> int:
        return len(self.residuals)

    def state_tensors(self):
        return [*self.residuals, *self.probes]

    def _probe(self, ctx, block_input: torch.Tensor) -> tuple[torch.Tensor, bool]:
        x = _first_input(ctx)
        if x is None or x.shape != block_input.shape:
            return block_input, False
        return block_input - x.to(block_input.dtype), True

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        if not computed:
            return
        probe, exact = self._probe(ctx, block_input)
        if self.residuals and exact != self.exact:  # the engine started or stopped giving block 0's input
            self.residuals, self.probes = [], []
        self.exact = exact
        self.residuals = (self.residuals + [residual.detach()])[-2:]
        self.probes = (self.probes + [probe.detach()])[-2:]

    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        probe, exact = self._probe(ctx, block_input)
        exact = exact and self.exact
        if len(self.residuals) < 2:  # the code reuses the last residual of the whole stack
            self._gamma = None
            out = self.residuals[-1] + (self.probes[-1] - probe) if exact else self.residuals[-1].clone()
            return out.to(block_input.dtype)
        (r2, r1), (p2, p1) = self.residuals, self.probes
        sums = ctx.reduce(torch.stack([abs_sums(probe - p2), abs_sums(p1 - p2)], dim=1)).value
        gamma = dicache_gamma(sums, self.config.gamma_min, self.config.gamma_max)
        self._gamma = gamma
        out = dicache_forecast(r2, r1, gamma)
        if exact:
            # the code moves the residual of the whole stack (block 0 to the end); padecache forecasts the part after
            # the probe, so the probe's own residual is moved along too and the actual one taken off
            out = out + dicache_forecast(p2, p1, gamma) - probe
        return out.to(block_input.dtype)

    def indicators(self) -> dict[str, torch.Tensor]:
        return {} if self._gamma is None else {"dicache_gamma": self._gamma.float().mean()}
