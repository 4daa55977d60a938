"""Pure tensor math for forecasting on an explicit time grid.

Every function takes the abscissae of its samples (step index, sigma or timestep: whatever grid the
caller chose) as arguments; nothing here holds state.  Tensors are batch-first and all reductions are
per batch row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "row_norm",
    "row_sumsq",
    "row_dot",
    "as_rows",
    "newton_coefficients",
    "newton_extrapolate",
    "taylorseer_update",
    "taylorseer_extrapolate",
    "linear_extrapolate",
]


def as_rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-row values ``(B,)`` to broadcast against ``like`` ``(B, ...)``."""
    return values.reshape(values.shape[0], *([1] * (like.dim() - 1)))


def row_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each batch row, shape ``(B,)``."""
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1).float(), dim=1)


def row_sumsq(x: torch.Tensor) -> torch.Tensor:
    """Sum of squares of each batch row, shape ``(B,)``, in float32: the part of a norm that adds over shards."""
    x = x.reshape(x.shape[0], -1).float()
    return (x * x).sum(dim=1)


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inner product of each pair of batch rows, shape ``(B,)``."""
    return (a.reshape(a.shape[0], -1).float() * b.reshape(b.shape[0], -1).float()).sum(dim=1)


def newton_coefficients(xs: Sequence[float], ys: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Divided differences ``[y0], [y0,y1], ..., [y0..yn]`` of samples ``ys`` at distinct abscissae ``xs``."""
    if len(xs) != len(ys) or not xs:
        raise ValueError(f"need as many abscissae as samples (got {len(xs)} and {len(ys)})")
    if len(set(float(x) for x in xs)) != len(xs):
        raise ValueError(f"abscissae must be distinct, got {list(xs)}")
    coef = [y for y in ys]
    n = len(xs)
    for k in range(1, n):
        for i in range(n - 1, k - 1, -1):
            coef[i] = (coef[i] - coef[i - 1]) / (xs[i] - xs[i - k])
    return coef


def newton_extrapolate(xs: Sequence[float], ys: Sequence[torch.Tensor], x: float) -> torch.Tensor:
    """Value at ``x`` of the polynomial of degree ``len(xs)-1`` through ``(xs, ys)`` (Newton's form).

    Exact on polynomials of that degree whatever the spacing of ``xs``.  Order the samples newest
    first so that the nested product starts at the node nearest the target.
    """
    coef = newton_coefficients(xs, ys)
    out = coef[-1]
    for k in range(len(xs) - 2, -1, -1):
        out = out * (x - xs[k]) + coef[k]
    return out


def linear_extrapolate(x0: float, y0: torch.Tensor, x1: float, y1: torch.Tensor, x: float) -> torch.Tensor:
    """Line through ``(x0, y0)`` and ``(x1, y1)`` evaluated at ``x``."""
    if x0 == x1:
        raise ValueError("abscissae must be distinct")
    return y1 + (y1 - y0) * ((x - x1) / (x1 - x0))


def taylorseer_update(
    factors: Sequence[torch.Tensor], value: torch.Tensor, gap: float | None, order: int
) -> list[torch.Tensor]:
    """TaylorSeer's derivative recursion (Liu et al., ICCV 2025, ``derivative_approximation``).

    ``factors[k]`` estimates the k-th derivative at the previous computed point; ``gap`` is the
    distance from that point to the new one (``None`` for the first sample).  The new factors are
    ``f0 = value`` and ``f(k+1) = (fk_new - fk_old) / gap``: each derivative uses the previous
    estimate of the one below it, which is what distinguishes TaylorSeer from Newton interpolation.
    """
    new = [value]
    if gap is None or not factors:
        return new
    if gap == 0:
        raise ValueError("two computed samples at the same abscissa")
    for k in range(min(order, len(factors))):
        new.append((new[k] - factors[k]) / gap)
    return new


def taylorseer_extrapolate(factors: Sequence[torch.Tensor], distance: float) -> torch.Tensor:
    """``sum_k factors[k] * distance**k / k!`` (TaylorSeer's ``taylor_formula``)."""
    out = factors[0]
    for k in range(1, len(factors)):
        out = out + factors[k] * (distance**k / math.factorial(k))
    return out
