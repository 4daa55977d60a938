"""Pure tensor math of TC-Padé (Cui et al., CVPR 2026, arXiv 2603.02943) and of a fitted [m/n] Padé.

Tensors are batch-first; every "global" norm is taken per batch row, which equals the official code's
whole-tensor norm at batch size 1.  Residual histories are passed newest first: ``r[0]`` is R_n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from padecache.math import as_rows, row_dot, row_norm, row_sumsq

__all__ = [
    "tsi",
    "unit_rows",
    "official_stability_map",
    "official_pade_core",
    "official_weighted_extrapolation",
    "official_adaptive_order",
    "official_stability_scalar",
    "paper_sigma",
    "paper_pade",
    "slope_ratio",
    "decay_pade",
    "decay_rate",
    "decay_pade_step",
    "pade_fit",
    "pade11_interpolate",
    "pade_eval",
    "denominator_min",
]

#: per-row partial sums ``(rows, k)`` of one shard -> the whole sequence's (``lambda t: ctx.reduce(t).value``)
Reduce = Callable[[torch.Tensor], torch.Tensor]


# -- Trajectory Stability Indicator -----------------------------------------------------------------------------


def unit_rows(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``v / (||v|| + eps)`` per batch row (the official ``curvetest`` normalisation)."""
    return v / as_rows(row_norm(v) + eps, v)


def tsi(r_n: torch.Tensor, r_n1: torch.Tensor, r_n2: torch.Tensor, eps: float = 1e-12, reduce: Reduce | None = None) -> torch.Tensor:
    """TSI = ½ ||u1 − u2|| per row, u1 = unit(R_{n-1} − R_{n-2}), u2 = unit(R_n − R_{n-1}); in [0, 1].

    With ``reduce`` (the per-row partial sums of a shard to the whole sequence's, one call): the same value from
    <v1, v2>, ||v1||² and ||v2||², so every rank of a sequence-parallel group computes the unsharded TSI."""
    if reduce is None:
        u1 = unit_rows(r_n1 - r_n2, eps)
        u2 = unit_rows(r_n - r_n1, eps)
        return 0.5 * row_norm(u1 - u2)
    v1, v2 = r_n1 - r_n2, r_n - r_n1
    dot, n1, n2 = reduce(torch.stack([row_dot(v1, v2), row_sumsq(v1), row_sumsq(v2)], 1)).unbind(1)
    a, b = n1.sqrt() + eps, n2.sqrt() + eps
    return 0.5 * (n1 / a**2 + n2 / b**2 - 2 * dot / (a * b)).clamp(min=0).sqrt()


# -- the official FLUX code (`utils/predict.py`), described in shared/docs/tc-pade-paper.md §2.4 ----------------


def official_stability_map(r_n: torch.Tensor, r_n1: torch.Tensor, scale: float = 5.0, eps: float = 1e-7) -> torch.Tensor:
    """Elementwise s = exp(−scale·|ΔR| / (½(|R_n| + |R_{n−1}|) + eps))."""
    delta = (r_n - r_n1).abs()
    mu = 0.5 * (r_n.abs() + r_n1.abs())
    return torch.exp(-scale * delta / (mu + eps))


def official_pade_core(
    r_n: torch.Tensor,
    r_n1: torch.Tensor,
    *,
    curve_ok: bool = True,
    scale: float = 5.0,
    den_gain: float = 0.1,
    den_eps: float = 1e-5,
    clamp_weights: tuple[float, float] = (0.6, 0.4),
    clamp_width: tuple[float, float] = (0.5, 0.1),
    blend: tuple[float, float] = (0.7, 0.3),
) -> torch.Tensor:
    """``_pade_prediction``: elementwise-σ [2/1] core, guarded denominator, clamp band and blend.

    num = 2s R_n − s R_{n−1}; den = 1 − den_gain·s·c (c = the TSI test result as 0/1); the result is
    clamped to m ± max(w0·|ΔR|, w1·μ) around m = 0.6 R_n + 0.4 R_{n−1}, then blended towards m with
    weight 1 − (0.7 s + 0.3).
    """
    s = official_stability_map(r_n, r_n1, scale)
    num = 2 * s * r_n - s * r_n1
    a1 = -den_gain * s
    den = 1 + a1 * (1.0 if curve_ok else 0.0)
    tiny = den.abs() < den_eps
    den = torch.where(tiny, 1 + a1 * r_n, den)
    den = torch.where(den >= 0, 1.0, -1.0) * den.abs().clamp(min=den_eps)
    r = num / den
    delta = (r_n - r_n1).abs()
    mu = 0.5 * (r_n.abs() + r_n1.abs())
    m = clamp_weights[0] * r_n + clamp_weights[1] * r_n1
    d = torch.maximum(clamp_width[0] * delta, clamp_width[1] * mu)
    r = m + torch.maximum(torch.minimum(r - m, d), -d)
    w = blend[0] * s + blend[1]
    return w * r + (1 - w) * m


def official_stability_scalar(r_n: torch.Tensor, r_n1: torch.Tensor, gain: float = 10.0, lo: float = 0.8, hi: float = 1.2,
                              reduce: Reduce | None = None) -> torch.Tensor:
    """Per row ``clip(1 / (1 + gain·||R_n − R_{n−1}||), lo, hi)``, used by the weighted fallback (``reduce``: as
    :func:`tsi`'s)."""
    norm = row_norm(r_n - r_n1) if reduce is None else reduce(row_sumsq(r_n - r_n1)[:, None])[:, 0].sqrt()
    return (1.0 / (1.0 + gain * norm)).clamp(lo, hi)


def official_weighted_extrapolation(
    newest_first: Sequence[torch.Tensor], k: int, stability: torch.Tensor, weights: Sequence[float] = (0.4, 0.3, 0.2, 0.1)
) -> torch.Tensor:
    """``_weighted_extrapolation``: stability · Σ w_i R_{n−i} over the k newest, weights renormalised."""
    k = max(1, min(k, len(newest_first), len(weights)))
    w = list(weights[:k])
    total = sum(w)
    out = sum((wi / total) * r for wi, r in zip(w, newest_first[:k]))
    return as_rows(stability, out).to(out.dtype) * out


def official_adaptive_order(newest_first: Sequence[torch.Tensor], order: int, hi: float = 0.98, mid: float = 0.90,
                            reduce: Reduce | None = None) -> int:
    """``_adaptive_order_selection``: mean of cos(R_n, R_{n−1}) and cos(R_{n−1}, R_{n−2}) picks the order.

    The cosines are averaged over batch rows; with one row (the official setting) this is exact.  ``reduce``: as
    :func:`tsi`'s.
    """
    r0, r1, r2 = newest_first[:3]
    if reduce is None:
        def cos(a, b):
            return row_dot(a, b) / (row_norm(a) * row_norm(b)).clamp(min=1e-12)

        avg = float(((cos(r0, r1) + cos(r1, r2)) / 2).mean())
    else:
        d01, d12, s0, s1, s2 = reduce(torch.stack([row_dot(r0, r1), row_dot(r1, r2), row_sumsq(r0), row_sumsq(r1),
                                                   row_sumsq(r2)], 1)).unbind(1)
        cos01 = d01 / (s0.sqrt() * s1.sqrt()).clamp(min=1e-12)
        cos12 = d12 / (s1.sqrt() * s2.sqrt()).clamp(min=1e-12)
        avg = float(((cos01 + cos12) / 2).mean())
    if avg > hi:
        return min(order, 4)
    if avg > mid:
        return min(order, 3)
    return 2


# -- the formula as published ------------------------------------------------------------------------------------


def paper_sigma(r_n: torch.Tensor, r_n1: torch.Tensor, lam: float = 10.0, eps: float = 1e-12,
                reduce: Reduce | None = None) -> torch.Tensor:
    """σ_stab = exp(−λ ||R_n − R_{n−1}|| / ||R_n + R_{n−1}||), one value per row (``reduce``: as :func:`tsi`'s)."""
    if reduce is None:
        return torch.exp(-lam * row_norm(r_n - r_n1) / (row_norm(r_n + r_n1) + eps))
    diff, total = reduce(torch.stack([row_sumsq(r_n - r_n1), row_sumsq(r_n + r_n1)], 1)).sqrt().unbind(1)
    return torch.exp(-lam * diff / (total + eps))


def paper_pade(
    r_n: torch.Tensor, r_n1: torch.Tensor, r_n2: torch.Tensor, sigma: torch.Tensor, lam: float = 10.0, den_eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """R = (2σ R_n − σ R_{n−1}) / (1 + (σ/λ) R_{n−2}) with |den| >= den_eps (sign kept).

    Returns the prediction and a boolean mask of the elements whose denominator was guarded.
    """
    s = as_rows(sigma, r_n).to(r_n.dtype)
    num = 2 * s * r_n - s * r_n1
    den = 1 + (s / lam) * r_n2
    guarded = den.abs() < den_eps
    den = torch.where(den >= 0, 1.0, -1.0) * den.abs().clamp(min=den_eps)
    return num / den, guarded


# -- the repaired ("damped") variant -----------------------------------------------------------------------------


def slope_ratio(r_n: torch.Tensor, r_n1: torch.Tensor, r_n2: torch.Tensor, h: float, h_prev: float) -> torch.Tensor:
    """ρ = <D_n, D_{n−1}> / ||D_{n−1}||² per row: the share of the previous trend that persisted.

    D_n = (R_n − R_{n−1}) / h and D_{n−1} = (R_{n−1} − R_{n−2}) / h_prev are the slopes over the last two
    computed gaps.  ρ ≈ 1 on a steady trajectory, → 0 when the trend dies out, < 0 when it reverses.
    """
    d_n = (r_n - r_n1) / h
    d_p = (r_n1 - r_n2) / h_prev
    return row_dot(d_n, d_p) / row_dot(d_p, d_p).clamp(min=1e-30)


def decay_rate(stability: torch.Tensor, spacing: float) -> torch.Tensor:
    """λ = −ln(σ) / |spacing|: the rate at which a slope that keeps a share σ per ``spacing`` decays."""
    if spacing == 0:
        raise ValueError("the computed residuals must sit at distinct positions")
    return -torch.log(stability.clamp(min=1e-6)) / abs(spacing)


def decay_pade_step(r_n: torch.Tensor, slope: torch.Tensor, rate: torch.Tensor, distance: float, den_min: float = 0.5) -> torch.Tensor:
    """R_n + D d / (1 + λ |d| / 2) for a slope D and per-row rate λ, as one fused multiply-add.

    The decay acts on the distance travelled, so a grid that runs downwards (sigma) works as one that runs up."""
    den = (1 + as_rows(rate, r_n).to(r_n.dtype) * (abs(distance) / 2)).clamp(min=den_min)
    return torch.addcmul(r_n, slope, distance / den)


def decay_pade(
    r_n: torch.Tensor, r_n1: torch.Tensor, h: float, distance: float, stability: torch.Tensor, spacing: float, den_min: float = 0.5
) -> torch.Tensor:
    """R_n + D d / (1 + λ d / 2) with λ = −ln(σ) / spacing: the [1/1] Padé approximant of a relaxing trend.

    If the slope D = (R_n − R_{n−1}) / h keeps a share σ of itself per ``spacing`` (the distance
    between the midpoints of the last two gaps), it decays like e^{−λ t} and the residual moves by
    D (1 − e^{−λ d}) / λ over a distance d, whose [1/1] Padé approximant is D d / (1 + λ d / 2).  σ = 1
    gives the linear forecast.  The denominator is kept >= ``den_min`` (σ is bounded by the caller,
    so this only matters for strongly accelerating trends).
    """
    if h == 0:
        raise ValueError("the computed residuals must sit at distinct positions")
    return decay_pade_step(r_n, (r_n - r_n1) / h, decay_rate(stability, spacing), distance, den_min)


# -- a genuine [m/n] Padé-type extrapolant fitted by linearised least squares ------------------------------------


def pade_fit(
    xs: Sequence[float], ys: Sequence[torch.Tensor], m: int, n: int, *, center: float = 0.0, scale: float = 1.0, ridge: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise [m/n] rational fit y(u) ≈ P(u)/Q(u), u = (x − center)/scale, Q(0) = 1.

    Linearised least squares: Σ_j a_j u_i^j − y_i Σ_k b_k u_i^k = y_i for every sample i, solved per
    element through the normal equations of the column-equilibrated system with a tiny ridge (so
    constant or degenerate data give a finite answer), then refined twice against the unregularised
    equations (the ridge's bias, ridge × condition number, would otherwise reach 1e-6 on ill-conditioned
    grids).  Needs at least m + n + 1 samples; with exactly that many it interpolates.

    Returns ``(a, b)``: numerator coefficients ``(m+1, *shape)`` and denominator coefficients
    ``(n, *shape)`` (b_1..b_n).
    """
    k = len(xs)
    if k != len(ys) or k < m + n + 1:
        raise ValueError(f"an [{m}/{n}] fit needs at least {m + n + 1} samples, got {k}")
    us = torch.tensor([(float(x) - center) / scale for x in xs], dtype=torch.float64)
    y = torch.stack([t.to(torch.float64) for t in ys], dim=-1)  # (*shape, k)
    shape = y.shape[:-1]
    y = y.reshape(-1, k)
    poly = torch.stack([us**j for j in range(m + 1)], dim=-1).expand(y.shape[0], k, m + 1)
    rat = torch.stack([-y * us**j for j in range(1, n + 1)], dim=-1)  # (E, k, n)
    a_mat = torch.cat([poly, rat], dim=-1)  # (E, k, m+n+1)
    # equilibrate the columns, so that the ridge acts the same on every coefficient
    col = torch.linalg.vector_norm(a_mat, dim=1, keepdim=True).clamp(min=1e-30)  # (E, 1, m+n+1)
    a_mat = a_mat / col
    ata = a_mat.transpose(1, 2) @ a_mat
    regular = ata + ridge * torch.eye(m + n + 1, dtype=ata.dtype)
    atb = (a_mat.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1)
    coef = _solve_spd(regular, atb)
    for _ in range(2):  # iterative refinement towards the unregularised solution
        coef = coef + _solve_spd(regular, atb - (ata @ coef.unsqueeze(-1)).squeeze(-1))
    coef = coef / col.squeeze(1)  # (E, m+n+1)
    a = coef[:, : m + 1].T.reshape(m + 1, *shape)
    b = coef[:, m + 1 :].T.reshape(n, *shape)
    return a, b


def _solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched ``solve(a, b)`` for small symmetric positive definite (E, k, k) systems, by an LDLᵀ
    factorisation written as elementwise arithmetic over the batch (LAPACK's per-matrix calls cost
    ~100x more for the hundreds of thousands of 3x3 systems of one residual).  Stable without pivoting
    because the fit's normal matrices are SPD (equilibrated, plus a ridge)."""
    k = a.shape[-1]
    low = [[None] * k for _ in range(k)]
    d = [None] * k
    for j in range(k):
        d[j] = a[:, j, j] - sum(low[j][p] ** 2 * d[p] for p in range(j)) if j else a[:, j, j]
        for i in range(j + 1, k):
            acc = a[:, i, j] - sum(low[i][p] * low[j][p] * d[p] for p in range(j)) if j else a[:, i, j]
            low[i][j] = acc / d[j]
    y = [None] * k
    for i in range(k):  # L y = b
        y[i] = b[:, i] - sum(low[i][p] * y[p] for p in range(i)) if i else b[:, i]
    x = [None] * k
    for i in reversed(range(k)):  # D Lᵀ x = y
        x[i] = y[i] / d[i] - sum(low[p][i] * x[p] for p in range(i + 1, k)) if i < k - 1 else y[i] / d[i]
    return torch.stack(x, dim=-1)


def pade11_interpolate(xs: Sequence[float], ys: Sequence[torch.Tensor], x: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The [1/1] rational through three samples, in closed form, at ``x``; elementwise, in float64.

    With u = (x − x_0)/(x_0 − x_1) and y(u) = (a_0 + a_1 u)/(1 + b u): a_0 = y_0, and for the two
    older samples a_1 − b y_i = (y_i − y_0)/u_i =: s_i, so b = (s_1 − s_2)/(y_2 − y_1), a_1 = s_1 + b y_1.
    The same interpolant as :func:`pade_fit` with ``m = n = 1`` and three samples, at a small fraction
    of its cost.  Returns the value and the smallest denominator 1 + b u between the oldest sample and
    the target (linear in u, so at an end).  Coincident y_1, y_2 give a non-finite b; callers guard.
    """
    gap = xs[0] - xs[1]
    u1, u2, u = (xs[1] - xs[0]) / gap, (xs[2] - xs[0]) / gap, (x - xs[0]) / gap
    y0, y1, y2 = (y.double() for y in ys[:3])
    s1, s2 = (y1 - y0) / u1, (y2 - y0) / u2
    b = (s1 - s2) / (y2 - y1)
    value = (y0 + (s1 + b * y1) * u) / (1 + b * u)
    qmin = torch.minimum(1 + b * min(u2, u), 1 + b * max(0.0, u))
    return value, qmin


def pade_eval(a: torch.Tensor, b: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Numerator/denominator value P(u)/Q(u) and Q(u) for coefficients from :func:`pade_fit`."""
    num = sum(a[j] * u**j for j in range(a.shape[0]))
    den = 1 + sum(b[j] * u ** (j + 1) for j in range(b.shape[0]))
    return num / den, den


def denominator_min(b: torch.Tensor, lo: float, hi: float, samples: int = 9) -> torch.Tensor:
    """Smallest value of Q(u) = 1 + Σ b_k u^k over ``samples`` points of [lo, hi] (elementwise)."""
    out = None
    for i in range(samples):
        u = lo + (hi - lo) * i / (samples - 1)
        q = 1 + sum(b[j] * u ** (j + 1) for j in range(b.shape[0]))
        out = q if out is None else torch.minimum(out, q)
    return out

