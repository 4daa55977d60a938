"""A component's answers as the engine reads them: a policy's decision (one bool, or one per row) and a stage
detector's stage.  The engine and the contract kit (:mod:`padecache.testing`) both read answers here, so that the
kit never judges an answer the engine would take differently."""

from __future__ import annotations

from typing import Any

import torch

from .interfaces import Stage, StepContext

__all__ = ["per_row_decision", "as_stage"]


def per_row_decision(want: Any, ctx: StepContext, who: str = "the policy") -> bool | torch.Tensor:
    """A policy's answer at ``ctx`` as one bool, or one bool per row when the rows disagree (a tensor of one
    decision per row that is unanimous is that one bool); a list or an array is refused, naming ``who``."""
    if not (isinstance(want, torch.Tensor) and want.dim() > 0):
        if isinstance(want, (list, tuple)) or getattr(want, "ndim", 0) > 0:  # a list is always true: refuse it
            raise TypeError(f"{who} returned a {type(want).__name__} at step {ctx.step}; return a bool, or a bool "
                            f"tensor with one decision per row")
        return bool(want)
    want = want.detach().to("cpu", torch.bool).flatten()
    if len(want) != ctx.rows:
        raise ValueError(f"{who} returned {len(want)} decisions for {ctx.rows} batch rows at step {ctx.step}; return "
                         f"a bool, or one bool per row")
    return want if bool(want.all()) != bool(want.any()) else bool(want[0])


def as_stage(value: Any, who: str = "the stage detector") -> Stage:
    """A stage detector's answer as a :class:`Stage`: a Stage, or its value as a string (``"early"``)."""
    try:
        return Stage(value)
    except ValueError:
        raise ValueError(f"{who} returned {value!r}; return a padecache.Stage "
                         f"({', '.join(s.value for s in Stage)})") from None
