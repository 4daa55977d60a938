"""``easycache`` policy: EasyCache (Zhou et al., "Less is Enough: Training-Free Video Diffusion Acceleration via
Runtime-Adaptive Caching", arXiv 2507.02860; code github.com/H-EmbodVis/EasyCache @ 5127804).

The *transformation rate* ``k = mean|o_c - o_p| / mean|x_c - x_p|`` (output change over input change between the
last two computed steps c and p) is assumed locally constant, so at a later step t the output change is
predicted as ``k * mean|x_t - x_{t-1}| / mean|o_c|`` (relative to the last computed output).  It is accumulated;
the step reuses the cache while the sum stays below the threshold and computes (resetting it) otherwise.  The
first ``warmup`` steps and the last step always compute.  No calibration: ``k`` is measured at run time.

Here ``x`` is the transformer's latent input (``inputs.model_input``, the official code's ``raw_input``) and ``o``
the block stack's output (stack input + residual), the nearest thing to the model output a policy observes
(``output = "residual"`` uses the residual alone).  Statistics are per batch row and summed over the
sequence-parallel group.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from padecache import CachePolicy, StepContext, option

from ._inputs import read_input
from ._math import abs_sums, easycache_prediction
from .teacache import _accumulate, _ForcedSteps

__all__ = ["EasyCachePolicy"]

_ORDER = {"model_input": ("model_input", "stack_input"), "stack_input": ("stack_input",)}


class EasyCachePolicy(CachePolicy):
    """EasyCache: accumulated output change predicted by the runtime transformation rate k."""

    name = "easycache"
    inputs: ClassVar[frozenset[str]] = frozenset({"model_input", "stack_input"})

    @attrs.frozen
    class Config:
        threshold: float = option(0.05, gt=0.0, doc="accumulated predicted relative change that triggers a compute "
                                  "(code: 0.05 for Wan 2.1, 0.025 for HunyuanVideo)")
        warmup: int = option(10, "int", ge=1, doc="steps always computed at the start (code: 10 for Wan 2.1, 5 for "
                             "HunyuanVideo, at 50 steps)")
        last: bool = option(True, "bool", doc="always compute the final step (code: yes)")
        input: str = option("model_input", "str", choices=tuple(_ORDER),
                            doc="x: the latents (the code's raw_input) or the block-stack input")
        output: str = option("stack_output", "str", choices=("stack_output", "residual"),
                             doc="o: the block stack's output (stack input + residual) or its residual")

    def __init__(self, config=None):
        super().__init__(config)
        self.inputs = frozenset({"stack_input", self.config.input})
        self.reset()

    def reset(self) -> None:
        self.x_prev: torch.Tensor | None = None  # (rows, ...) input of the previous step
        self.x_computed: torch.Tensor | None = None  # input of the last computed step
        self.o_computed: torch.Tensor | None = None  # output of the last computed step
        self.rate: torch.Tensor | None = None  # (rows, 2) sums behind k: [sum |do|, sum |dx|]
        self.o_size: torch.Tensor | None = None  # (rows,) sum |o| of the last computed step
        self.acc: torch.Tensor | None = None
        self._stack: torch.Tensor | None = None
        self._x: torch.Tensor | None = None
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.x_prev, self.x_computed, self.o_computed, self.rate, self.o_size, self.acc)
                     if t is not None)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        c = self.config
        x, _ = read_input(ctx, _ORDER[c.input], "policy 'easycache'")
        stack, _ = read_input(ctx, ("stack_input",), "policy 'easycache'")
        rows = x.shape[0]
        if self.acc is None or self.acc.shape[0] != rows:
            self.acc = torch.zeros(rows, dtype=torch.float64, device=x.device)
        forced = _ForcedSteps.forced(ctx, c.warmup, 0.0, c.last)
        ready = (self.x_prev is not None and self.x_prev.shape == x.shape and self.rate is not None
                 and self.o_size is not None)
        if forced or not ready:
            compute = torch.ones(rows, dtype=torch.bool)
            self.acc = torch.zeros_like(self.acc)
            self._indicators = {}
        else:
            change = ctx.reduce(abs_sums(x - self.x_prev)).value
            predicted = easycache_prediction(self.rate, change, self.o_size)
            compute, self.acc = _accumulate(self.acc, predicted.to(self.acc.device), c.threshold)
            self._indicators = {"easy_pred": predicted.float().mean(), "easy_acc": self.acc.float().mean()}
        self.x_prev = x.detach().clone()
        self._x, self._stack = self.x_prev, stack
        return compute.cpu()

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if not computed or self._x is None:
            return
        o = residual if self.config.output == "residual" else self._stack + residual
        o = o.detach()
        if self.o_computed is not None and self.x_computed is not None and self.o_computed.shape == o.shape:
            do = abs_sums(o - self.o_computed)
            dx = abs_sums(self._x - self.x_computed)
            self.rate = ctx.reduce(torch.stack([do, dx], dim=1)).value
            self._indicators["easy_k"] = (self.rate[:, 0] / self.rate[:, 1].clamp_min(1e-30)).mean()
        self.o_size = ctx.reduce(abs_sums(o)).value
        self.o_computed, self.x_computed = o.clone(), self._x
        if self.acc is not None:
            self.acc = torch.zeros_like(self.acc)

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)
