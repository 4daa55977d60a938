"""Fit TeaCache's rescaling polynomial on a pipeline, for families without published coefficients.

The TeaCache authors fit it (ali-vilab/TeaCache issues 2, 18, 20) from full-compute generations of many prompts:
for every pair of consecutive steps, ``x`` = relative L1 change of the indicator (the first block's modulated
input) and ``y`` = relative L1 change of the model output, then ``numpy.polyfit(x, y, 4)``.
:func:`calibrate_teacache` does the same through padecache: it runs ``generate`` once per seed with caching off
and the ``teacache-probe`` policy recording both columns, and returns the fit with the config that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import numpy as np
import torch

__all__ = ["TeaCacheCalibration", "calibrate_teacache", "fit_polynomial"]


@attrs.frozen
class TeaCacheCalibration:
    """A fitted TeaCache polynomial.

    Attributes:
        coefficients: highest power first (``numpy.poly1d`` order), for ``teacache``'s ``coefficients``.
        x, y: the fitted pairs (indicator change, output change), one per consecutive step pair, branch and seed.
        r2: coefficient of determination of the fit on those pairs.
        target: what ``y`` measured (``"output"``: the transformer's output, as the authors fit; ``"residual"``:
            the block-stack residual padecache caches).
        indicator: what ``x`` measured.
    """

    coefficients: tuple[float, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    r2: float
    target: str
    indicator: str

    def config(self, threshold: float | None = None) -> dict[str, Any]:
        """The ``policy`` section that runs TeaCache with this polynomial."""
        out: dict[str, Any] = {"name": "teacache", "model": "custom", "coefficients": list(self.coefficients),
                               "indicator": self.indicator}
        if threshold is not None:
            out["threshold"] = threshold
        return out


def fit_polynomial(x: Iterable[float], y: Iterable[float], degree: int = 4) -> tuple[tuple[float, ...], float]:
    """``numpy.polyfit(x, y, degree)`` (highest power first) and the fit's R² (TeaCache's calibration)."""
    xs, ys = np.asarray(list(x), dtype=np.float64), np.asarray(list(y), dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size <= degree:
        raise ValueError(f"a degree-{degree} fit needs more than {degree} finite (x, y) pairs, got {xs.size}: "
                         "run more seeds or more steps")
    coef = np.polyfit(xs, ys, degree)
    residual = ys - np.polyval(coef, xs)
    total = ((ys - ys.mean()) ** 2).sum()
    r2 = 1.0 - float((residual**2).sum() / total) if total > 0 else 1.0
    return tuple(float(c) for c in coef), r2


def _output_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    sample = getattr(out, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _rel_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    den = b.float().abs().mean()
    return float((a.float() - b.float()).abs().mean() / den) if den > 0 else float("nan")


def calibrate_teacache(
    pipe,
    generate: Callable[[Any, int], Any],
    seeds: Iterable[int] = range(8),
    *,
    indicator: str = "modulated",
    target: str = "output",
    degree: int = 4,
    skip: int = 0,
) -> TeaCacheCalibration:
    """Fit TeaCache's polynomial on ``pipe``: ``generate(pipe, seed)`` runs once per seed with full compute.

    Args:
        pipe: a diffusers pipeline (its ``transformer``) or a bare transformer; padecache is applied for the
            duration and removed afterwards (an already applied padecache is an error).
        generate: ``generate(pipe, seed)`` runs one generation (vary the prompt with the seed: the authors used
            70 prompts).
        seeds: one generation per seed.
        indicator: what ``x`` measures (``"modulated"``, the default and the authors' choice; ``"stack_input"``,
            ``"model_input"``, ``"time_embedding"``, ``"time_projection"``).
        target: ``"output"`` (the transformer's output, as the authors fit) or ``"residual"`` (the block-stack
            residual).
        degree: polynomial degree (the authors use 4).
        skip: leave out pairs whose later step is among the first ``skip`` steps (one Wan port skips the
            first five, whose changes do not follow the curve).

    Returns:
        A :class:`TeaCacheCalibration`; ``.config(threshold)`` is the ``policy`` section that uses it.

    Example::

        from padecache_inputaware import calibrate_teacache
        fit = calibrate_teacache(pipe, lambda p, s: p(prompts[s % len(prompts)], generator=torch.manual_seed(s)))
        padecache.apply(pipe, {"predictor": {"name": "noop"}, "policy": fit.config(threshold=0.3)})
    """
    import padecache

    if target not in ("output", "residual"):
        raise ValueError(f"target must be 'output' or 'residual', got {target!r}")
    if padecache.is_applied(pipe):
        raise RuntimeError("padecache is already applied to this pipeline: padecache.remove(pipe) before calibrating")
    transformers = [m for m in (getattr(pipe, n, None) for n in ("transformer", "transformer_2")) if isinstance(m, torch.nn.Module)]
    transformers = transformers or ([pipe] if isinstance(pipe, torch.nn.Module) else [])
    if target == "output" and len(transformers) != 1:
        raise ValueError("target='output' pairs each transformer call with its step; this pipeline has "
                         f"{len(transformers)} transformers: use target='residual'")
    outputs: list[torch.Tensor] = []

    def keep(module, args, out):
        tensor = _output_tensor(out)
        if tensor is not None:
            outputs.append(tensor.detach().float().cpu())

    xs: list[float] = []
    ys: list[float] = []
    padecache.apply(pipe, {"predictor": {"name": "noop"}, "policy": {"name": "teacache-probe", "indicator": indicator, "strict": True}})
    handles = [transformers[0].register_forward_hook(keep)] if target == "output" else []
    try:
        for seed in seeds:
            outputs.clear()
            generate(pipe, seed)
            stats = padecache.stats(pipe)
            records = list(stats.records)
            _check_run(records, outputs, indicator, target)
            _pairs(records, outputs, target, skip, xs, ys)
    finally:
        for h in handles:
            h.remove()
        padecache.remove(pipe)
    coefficients, r2 = fit_polynomial(xs, ys, degree)
    return TeaCacheCalibration(coefficients, tuple(xs), tuple(ys), r2, target, indicator)


def _check_run(records, outputs: list, indicator: str, target: str) -> None:
    """The probe saw the indicator, and (``target="output"``) one transformer output per step record."""
    if any(r.indicators.get("tea_fallback") for r in records):
        raise RuntimeError(f"the engine could not give the {indicator!r} input for this model; "
                           "calibrate with indicator='stack_input'")
    if target == "output" and len(outputs) != len(records):
        raise RuntimeError(f"{len(outputs)} transformer outputs for {len(records)} step records: the "
                           "transformer was called outside the denoising loop; use target='residual'")


def _pairs(records, outputs: list, target: str, skip: int, xs: list[float], ys: list[float]) -> None:
    """Append one generation's (indicator change, output or residual change) pairs, per branch, to ``xs``/``ys``."""
    last: dict[str, tuple[int, torch.Tensor | None]] = {}
    for i, r in enumerate(records):
        out = outputs[i] if target == "output" else None
        prev = last.get(r.branch)
        if r.step >= skip and "tea_x" in r.indicators:
            if target == "residual":
                xs.append(float(r.indicators["tea_x"]))
                ys.append(float(r.indicators["tea_residual"]))
            elif prev is not None and prev[0] == r.step - 1 and prev[1].shape == out.shape:
                xs.append(float(r.indicators["tea_x"]))
                ys.append(_rel_l1(out, prev[1]))
        last[r.branch] = (r.step, out)
