"""What an input-aware component reads from ``ctx.inputs``, with the fallbacks the spec asks for, and token grids.

``ctx.inputs`` is the engine's ``StepInputs`` (``stack_input``, ``modulated``, ``model_input``, each restricted to
the decision's rows, or ``None`` where not declared or not available); attributes are read with ``getattr`` so
that fields the engine adds later (``time_embedding``, ``first_input``, ``grid``) are used where present.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["read_input", "token_grid", "MissingInput"]


class MissingInput(RuntimeError):
    """The engine gave none of the inputs a component can use."""


def read_input(ctx, order: Sequence[str], who: str) -> tuple[torch.Tensor, str]:
    """The first of ``order`` that ``ctx.inputs`` holds, and its name; an error naming what is missing otherwise."""
    inputs = getattr(ctx, "inputs", None)
    if inputs is not None:
        for name in order:
            value = getattr(inputs, name, None)
            if value is not None:
                return value, name
    raise MissingInput(
        f"{who} needs one of the block-stack inputs {list(order)} at step {ctx.step}, and the engine passed "
        f"{'no inputs' if inputs is None else 'none of them'}: this padecache engine does not support input-aware "
        "policies (issue 18), or the policy's `inputs` were not declared")


def _exact_root(n: int, k: int) -> int | None:
    r = round(n ** (1.0 / k))
    for c in (r - 1, r, r + 1):
        if c > 0 and c**k == n:
            return c
    return None


def token_grid(tokens: int, ctx=None, explicit: Sequence[int] | None = None) -> tuple[int, ...]:
    """The layout of ``tokens`` token positions: ``explicit`` if given, else the engine's ``inputs.grid``, else
    inferred from the latents' shape (``(B, C, H, W)`` or ``(B, C, F, H, W)``: the patch size that divides them
    into ``tokens`` positions), else a square, else one axis."""
    if explicit:
        grid = tuple(int(g) for g in explicit)
        if math.prod(grid) != tokens:
            raise ValueError(f"grid {grid} has {math.prod(grid)} positions, the features have {tokens} tokens")
        return grid
    inputs = getattr(ctx, "inputs", None) if ctx is not None else None
    grid = getattr(inputs, "grid", None)
    if grid and math.prod(grid) == tokens:
        return tuple(int(g) for g in grid)
    latents = getattr(inputs, "model_input", None)
    if isinstance(latents, torch.Tensor) and latents.dim() in (4, 5):
        spatial = tuple(latents.shape[2:])
        h, w = spatial[-2:]
        frames = spatial[0] if len(spatial) == 3 else 1
        for pt in (1, 2, 4):  # temporal patch (video), then square spatial patches
            if frames % pt:
                continue
            for p in (1, 2, 4, 8, 16):
                if h % p == 0 and w % p == 0 and (frames // pt) * (h // p) * (w // p) == tokens:
                    out = (h // p, w // p)
                    return (frames // pt, *out) if len(spatial) == 3 else out  # video keeps its frame axis
    side = _exact_root(tokens, 2)
    if side is not None:
        return (side, side)
    return (tokens,)
