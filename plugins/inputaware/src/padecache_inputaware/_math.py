"""Pure tensor math of the input-aware methods: stateless functions, explicit abscissae, batch-first rows.

Every statistic a decision depends on is split into per-row *partial sums* (``*_sums``) that add over the
shards of a sequence-parallel group, and a function of the reduced sums, so that the components can send the
sums through ``ctx.reduce`` and every rank decides alike.  Nothing here holds state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "abs_sums",
    "rel_l1_sums",
    "rel_l1",
    "polyval",
    "sea_coefficients",
    "sea_gain",
    "sea_filter",
    "easycache_prediction",
    "dicache_gamma",
    "dicache_forecast",
    "phase_positions",
    "barycentric_weights",
    "barycentric_coefficients",
    "resilphase_coefficients",
]


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).float()


def abs_sums(x: torch.Tensor) -> torch.Tensor:
    """``sum |x|`` per batch row, ``(B,)`` in float32 (the numerator or denominator of a mean absolute value)."""
    return _rows(x).abs().sum(dim=1)


def rel_l1_sums(current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Per-row partial sums ``[sum |current - previous|, sum |previous|]``, ``(B, 2)``: the two halves of TeaCache's
    relative L1 distance, which add over sequence shards."""
    cur, prev = _rows(current), _rows(previous)
    return torch.stack([(cur - prev).abs().sum(dim=1), prev.abs().sum(dim=1)], dim=1)


def rel_l1(sums: torch.Tensor) -> torch.Tensor:
    """``mean |a - b| / mean |b|`` per row from :func:`rel_l1_sums` (TeaCache, SeaCache, DiCache); 0 for two zero
    rows, ``inf`` for a change from a zero row."""
    num, den = sums[..., 0], sums[..., 1]
    safe = torch.where(den > 0, den, torch.ones_like(den))
    out = num / safe
    return torch.where(den > 0, out, torch.where(num > 0, torch.full_like(num, math.inf), torch.zeros_like(num)))


def polyval(coefficients: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """``numpy.poly1d(coefficients)(x)``: highest power first, by Horner's rule in float64 (TeaCache's rescaling)."""
    x64 = x.double()
    out = torch.zeros_like(x64)
    for c in coefficients:
        out = out * x64 + float(c)
    return out


# -- SeaCache ------------------------------------------------------------------------------------------------------


def sea_coefficients(sigma: float, mode: str = "flow") -> tuple[float, float]:
    """SeaCache's signal and noise scales ``(a_t, b_t)`` of ``x_t = a_t x_0 + b_t eps`` at noise level ``sigma``
    (official ``ab_from_scheduler``): rectified flow ``(1 - sigma, sigma)``, sigma clamped to [1e-6, 1 - 1e-6];
    variance preserving ``(sqrt(abar), sqrt(1 - abar))`` with ``abar = 1 - sigma^2`` (padecache's DDPM sigma)."""
    if mode == "flow":
        s = min(1.0 - 1e-6, max(1e-6, float(sigma)))
        return 1.0 - s, s
    if mode == "vp":
        abar = min(1.0 - 1e-6, max(1e-6, 1.0 - float(sigma) ** 2))
        return math.sqrt(abar), math.sqrt(max(1e-16, 1.0 - abar))
    raise ValueError(f"mode must be 'flow' or 'vp', got {mode!r}")


def sea_gain(sizes: Sequence[int], a: float, b: float, power_exp: float, eps: float = 1e-16,
             device: torch.device | str | None = None) -> torch.Tensor:
    """The SEA (Wiener) filter on an FFT grid of ``sizes``, normalised to unit mean (SeaCache Eq. 7).

    Per axis ``H(f) = a S(f) / (a^2 S(f) + b^2)``, ``S(f) = 1 / (|f|^p + eps)`` (a power-law clean-signal
    spectrum), the axes multiplied (separable), then divided by the mean over the grid."""
    gain = None
    for axis, n in enumerate(sizes):
        f = torch.fft.fftfreq(int(n), device=device, dtype=torch.float32).abs()
        s = 1.0 / (f.pow(power_exp) + eps)
        h = (a * s) / (a * a * s + b * b + eps)
        shape = [1] * len(sizes)
        shape[axis] = int(n)
        gain = h.reshape(shape) if gain is None else gain * h.reshape(shape)
    mean = gain.mean()
    if torch.isfinite(mean) and mean > 0:
        gain = gain / mean
    return gain


def sea_filter(tokens: torch.Tensor, grid: Sequence[int], a: float, b: float, power_exp: float) -> torch.Tensor:
    """SEA-filter token features ``(B, N, C)`` laid out on ``grid`` (``prod(grid) == N``, row-major: frames,
    height, width) over the grid axes; returns float32 ``(B, N, C)``."""
    rows, n, c = tokens.shape[0], tokens.shape[1], tokens.shape[-1]
    if math.prod(grid) != n:
        raise ValueError(f"token grid {tuple(grid)} has {math.prod(grid)} positions, the features have {n} tokens")
    x = tokens.reshape(rows, *grid, c).float()
    dims = tuple(range(1, len(grid) + 1))
    gain = sea_gain(grid, a, b, power_exp, device=x.device).unsqueeze(-1)
    y = torch.fft.ifftn(torch.fft.fftn(x, dim=dims) * gain, dim=dims).real
    return y.reshape(rows, n, c)


# -- EasyCache -----------------------------------------------------------------------------------------------------


def easycache_prediction(rate_sums: torch.Tensor, input_change: torch.Tensor, output_size: torch.Tensor) -> torch.Tensor:
    """EasyCache's predicted relative output change ``k * mean|dx| / mean|o|`` per row, from sums.

    ``rate_sums`` = ``[sum |o_c - o_p|, sum |x_c - x_p|]`` over the last two computed steps (the transformation rate
    ``k`` is their ratio of means), ``input_change`` = ``sum |x_t - x_{t-1}|``, ``output_size`` = ``sum |o_c|``.  The
    element counts cancel, so the sums need not be divided by them (and add over shards)."""
    num, den = rate_sums[..., 0].double(), rate_sums[..., 1].double()
    k = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.full_like(num, math.inf))
    size = output_size.double()
    return k * input_change.double() / torch.where(size > 0, size, torch.full_like(size, 1e-30))


# -- DiCache -------------------------------------------------------------------------------------------------------


def dicache_gamma(progress_sums: torch.Tensor, low: float = 1.0, high: float = 1.5) -> torch.Tensor:
    """DiCache's trajectory-alignment factor per row: ``mean|p - p_2| / mean|p_1 - p_2|`` clipped to
    ``[low, high]`` (official: [1, 1.5] for FLUX and HunyuanVideo, [1, 2] for Wan), from the sums
    ``[sum |p - p_2|, sum |p_1 - p_2|]`` of the probe's residuals now (p) and at the last two computed steps;
    ``low`` where the probe did not move between the last two computed steps (the official code divides by zero)."""
    num, den = progress_sums[..., 0], progress_sums[..., 1]
    ratio = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.full_like(num, low))
    return ratio.clamp(low, high)


def dicache_forecast(older: torch.Tensor, newer: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``older + gamma (newer - older)`` per row: the cached residuals moved along their trajectory by ``gamma``."""
    g = gamma.to(newer.dtype).reshape(-1, *[1] * (newer.dim() - 1))
    return older + g * (newer - older)


# -- ResilPhase ----------------------------------------------------------------------------------------------------


def phase_positions(xs: Sequence[float], targets: Sequence[float], mapping: str = "balanced",
                    alpha: float = 0.55) -> tuple[list[float], list[float]]:
    """ResilPhase's phase axis: the nodes of the computed positions ``xs`` (in order) and the phases of ``targets``.

    ``balanced``: ``s = tanh(alpha (x - mean) / max|x - mean|)`` for nodes and targets alike.
    ``chebyshev``: the sorted positions get the Chebyshev nodes ``cos((2k+1) pi / 2n)`` in decreasing order;
    a target between two positions is mapped linearly between their nodes, beyond them by the nearest
    segment's slope, through ``max(-1, .)`` before the first and ``min(1, .)`` after the last, as the official code
    does (bounds that never bind, the nodes decreasing with the position)."""
    xs = [float(x) for x in xs]
    n = len(xs)
    if n == 0:
        return [], [0.0 for _ in targets]
    if mapping == "balanced":
        mean = sum(xs) / n
        reach = max(abs(x - mean) for x in xs)
        if reach == 0:
            return [0.0] * n, [0.0 for _ in targets]
        nodes = [math.tanh(alpha * (x - mean) / reach) for x in xs]
        return nodes, [math.tanh(alpha * (float(t) - mean) / reach) for t in targets]
    if mapping != "chebyshev":
        raise ValueError(f"mapping must be 'balanced' or 'chebyshev', got {mapping!r}")
    cheb = sorted((math.cos((2 * k + 1) * math.pi / (2 * n)) for k in range(n)), reverse=True) if n > 1 else [0.0]
    order = sorted(range(n), key=lambda i: xs[i])
    node_of = {}
    for rank, i in enumerate(order):
        node_of[i] = cheb[rank]
    nodes = [node_of[i] for i in range(n)]
    sx = [xs[i] for i in order]
    sn = [node_of[i] for i in order]

    def phase(t: float) -> float:
        if n == 1:
            return 0.0
        for i, x in enumerate(sx):
            if t == x:
                return sn[i]
        if t <= sx[0]:
            slope = (sn[1] - sn[0]) / (sx[1] - sx[0])
            return max(-1.0, sn[0] + slope * (t - sx[0]))
        if t >= sx[-1]:
            slope = (sn[-1] - sn[-2]) / (sx[-1] - sx[-2])
            return min(1.0, sn[-1] + slope * (t - sx[-1]))
        j = next(i for i in range(1, n) if sx[i] >= t)
        ratio = (t - sx[j - 1]) / (sx[j] - sx[j - 1])
        return sn[j - 1] + ratio * (sn[j] - sn[j - 1])

    return nodes, [phase(float(t)) for t in targets]


def barycentric_weights(nodes: Sequence[float]) -> list[float]:
    """Second-form barycentric weights ``w_j = 1 / prod_{k != j}(s_j - s_k)``, computed in logs and scaled to sum
    of magnitudes = n (ResilPhase's ``compute_stable_barycentric_weights``; the scale cancels in the formula)."""
    n = len(nodes)
    if n <= 1:
        return [1.0] * n
    out = []
    for j in range(n):
        log_w, sign, dup = 0.0, 1, False
        for k in range(n):
            if k == j:
                continue
            diff = nodes[j] - nodes[k]
            if abs(diff) < 1e-12:
                dup = True
                break
            log_w -= math.log(abs(diff))
            sign = -sign if diff < 0 else sign
        out.append(0.0 if dup else sign * math.exp(max(-700.0, min(700.0, log_w))))
    total = sum(abs(w) for w in out)
    if total > 1e-12:
        out = [w / total * n for w in out]
    return out


def barycentric_coefficients(nodes: Sequence[float], weights: Sequence[float], s: float) -> list[float]:
    """Coefficients ``c_j`` with ``p(s) = sum_j c_j f_j`` for the barycentric interpolant through ``(nodes_j, f_j)``:
    ``c_j = (w_j / (s - s_j)) / sum_k (w_k / (s - s_k))``; one-hot where ``s`` hits a node (within 1e-12)."""
    n = len(nodes)
    if n == 1:
        return [1.0]
    lam = []
    for j in range(n):
        d = s - nodes[j]
        if abs(d) < 1e-12:
            return [1.0 if i == j else 0.0 for i in range(n)]
        lam.append(weights[j] / d)
    total = sum(lam)
    return [v / total for v in lam]


def resilphase_coefficients(xs: Sequence[float], x: float, mapping: str = "balanced", alpha: float = 0.55) -> list[float]:
    """ResilPhase's forecast at ``x`` as weights of the residuals computed at ``xs``: barycentric Lagrange
    interpolation on the phase axis (:func:`phase_positions`)."""
    nodes, (s,) = phase_positions(xs, [x], mapping, alpha)
    return barycentric_coefficients(nodes, barycentric_weights(nodes), s)
