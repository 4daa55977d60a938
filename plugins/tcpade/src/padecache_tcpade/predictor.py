"""Predictor ``tc-pade``: TC-Padé (Cui et al., CVPR 2026, arXiv 2603.02943) in three variants.

* ``reference``: the official FLUX code's residual predictor (GitHub ``Alibaba-YuFeng/TC_Pade``,
  ``utils/predict.py``): elementwise σ, guarded [2/1] core, clamp band and blend, adaptive order with a
  weighted-extrapolation fallback, stage rules, ``+ 0.2 (x_in − x_in,prev)``, and predicted residuals
  appended to its 6-deep history.  It reproduces the golden vectors of the official behaviour.
* ``paper``: the formula as published: σ = exp(−λ‖R_n−R_{n−1}‖/‖R_n+R_{n−1}‖),
  R = (2σ R_n − σ R_{n−1}) / (1 + (σ/λ) R_{n−2}) with a guarded denominator, and the stage rules.
* ``damped`` (default): the paper's ideas (a rational predictor whose coefficients are modulated by
  how stable recent residuals are), repaired where measurements found them broken
  (``shared/docs/prototype-study.md``, ``docs/methods.md``): the stability factor damps the *trend*
  instead of scaling the whole residual towards zero, the extrapolation uses the real distance to the
  target step, and only computed residuals enter the history.  Stability is measured, per batch row, as
  the share of the previous slope that persisted over the last gap (ρ = <D_n, D_{n−1}>/||D_{n−1}||²),
  shrunk towards 1 (``shrink``); the trend then relaxes exponentially at the rate this implies and the
  forecast is the [1/1] Padé approximant of that relaxation, ``R_n + D d / (1 + λ d / 2)``.  With only
  two computed residuals stability cannot be measured yet, and the early rule ``α1 R_n + α2 R_{n−1}``
  is used.

Stage rules (stage from the engine's stage detector): early ``α1 R_n + α2 R_{n−1}``; mid ``core``; late
``core + β·trend``, the trend being ``R_n − R_{n−1}`` (``reference``, ``paper``) or ``D·d`` scaled to the
real distance (``damped``).  ``reference`` and ``paper`` always apply them; ``damped`` applies them only
with ``stage_rules = true``, because on top of the fitted decay they cost 1-4 dB in our benchmark.
"""

from __future__ import annotations

from collections import deque

import attrs
import torch

from padecache import Predictor, Stage, StepContext, option
from padecache.config import OptionError

from . import _math as pm

__all__ = ["TCPadePredictor"]


class TCPadePredictor(Predictor):
    """TC-Padé residual forecast with stability-modulated coefficients and early/mid/late rules."""

    name = "tc-pade"

    @attrs.frozen
    class Config:
        variant: str = option("damped", "str", choices=("damped", "reference", "paper"), doc="which TC-Padé (module doc)")
        lam: float = option(10.0, gt=0.0, doc="λ, sensitivity of the stability factor σ (paper: 10)")
        alpha: tuple[float, float] = option((0.9, 0.1), "floats", doc="early-stage weights α1, α2 of R_n, R_{n−1} (code: 0.9, 0.1)")
        beta: float = option(0.3, ge=0.0, doc="late-stage weight of the trend term (code: 0.3)")
        # the repaired variant
        shrink: float = option(0.25, ge=0.0, le=1.0, doc="damped: weight of the steady-trend prior (σ = 1) in the stability σ")
        rho_max: float = option(1.5, ge=0.0, doc="damped: largest slope ratio believed (bounds acceleration)")
        stage_rules: bool | None = option(None, "bool", optional=True, doc="apply the early/late rules (default: yes for reference/paper, no for damped)")
        grid: str = option("step", "str", choices=("step", "sigma", "timestep"), doc="damped: abscissa of the distance")
        # official-code constants (reference variant)
        order: int = option(3, "int", ge=2, le=4, doc="reference: maximum adaptive order (code: 3)")
        history_size: int = option(6, "int", ge=3, doc="reference: FIFO length, predicted residuals included (code: 6)")
        input_delta: float = option(0.2, doc="reference: weight of x_in − x_in,prev added to the output (code: 0.2)")
        curve_threshold: float = option(1.4, ge=0.0, doc="reference: the code's `curvetest` threshold N (1.4 never fails)")
        clamp_weights: tuple[float, float] = option((0.6, 0.4), "floats", doc="reference: clamp centre m = w0 R_n + w1 R_{n−1}")
        clamp_width: tuple[float, float] = option((0.5, 0.1), "floats", ge=0.0, doc="reference: band max(w0 |ΔR|, w1 μ)")
        blend: tuple[float, float] = option((0.7, 0.3), "floats", doc="reference: blend weight w = b0 s + b1 towards m")
        den_eps: float = option(1e-5, gt=0.0, doc="reference/paper: smallest |denominator|")

        def __attrs_post_init__(self):
            for key in ("alpha", "clamp_weights", "clamp_width", "blend"):
                if len(getattr(self, key)) != 2:
                    raise OptionError(key, f"needs two numbers, got {list(getattr(self, key))}")

    def __init__(self, config=None):
        super().__init__(config)
        c = self.config
        size = c.history_size if c.variant == "reference" else 3
        self.history: deque[torch.Tensor] = deque(maxlen=size)  # newest last
        self.positions: deque[float] = deque(maxlen=size)
        self.last_input: torch.Tensor | None = None
        self.current_order = c.order
        self.stability: torch.Tensor | None = None
        self._damped_fit: tuple[torch.Tensor, torch.Tensor] | None = None
        self._indicators: dict[str, float] = {}

    # -- history ------------------------------------------------------------------------------------------------
    @property
    def min_history(self) -> int:  # type: ignore[override]
        return 3 if self.config.variant in ("reference", "paper") else 2

    @property
    def stage_rules(self) -> bool:
        c = self.config
        return c.variant != "damped" if c.stage_rules is None else c.stage_rules

    @property
    def num_computed(self) -> int:
        return len(self.history)

    def reset(self) -> None:
        self.history.clear()
        self.positions.clear()
        self.last_input = None
        self.current_order = self.config.order
        self.stability = None
        self._damped_fit = None

    def state_tensors(self):
        extra = (self.last_input,) if self.config.variant == "reference" and self.last_input is not None else ()
        fit = (self._damped_fit[0],) if self._damped_fit is not None else ()
        return (*self.history, *extra, *fit)

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        c = self.config
        if c.variant != "reference":
            if computed:
                self.history.append(residual)
                self.positions.append(ctx.position(c.grid))
                self._damped_fit = None  # the damped trend (slope, decay rate) is fitted lazily, once per computed step
            return
        # the official `update_history`: every step is appended, computed or predicted
        self.history.append(residual)
        self.last_input = block_input
        h = self._newest(len(self.history))
        if len(h) >= 3:
            self.current_order = pm.official_adaptive_order(h, c.order)
        if len(h) >= 2:
            self.stability = pm.official_stability_scalar(h[0], h[1])

    def _newest(self, k: int) -> list[torch.Tensor]:
        return [self.history[-1 - i] for i in range(min(k, len(self.history)))]

    # -- prediction ---------------------------------------------------------------------------------------------
    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        variant = self.config.variant
        if variant == "reference":
            return self._reference(ctx, block_input)
        if variant == "paper":
            return self._paper(ctx)
        return self._damped(ctx)

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)

    def _early(self, r: list[torch.Tensor]) -> torch.Tensor:
        a1, a2 = self.config.alpha
        return a1 * r[0] + a2 * r[1]

    def _reference(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        c = self.config
        r = self._newest(len(self.history))
        if self.stage_rules and ctx.stage is Stage.EARLY:
            pred = self._early(r)
        else:
            pred = self._reference_core(r)
            if self.stage_rules and ctx.stage is Stage.LATE:
                pred = pred + c.beta * (r[0] - r[1])
        if self.last_input is not None and c.input_delta:
            pred = pred + c.input_delta * (block_input - self.last_input)
        return pred

    def _reference_core(self, r: list[torch.Tensor]) -> torch.Tensor:
        c = self.config
        if len(r) < self.current_order + 1:
            return self._weighted(r)
        curve_ok = len(r) < 5 or bool((pm.tsi(r[0], r[1], r[2]) < c.curve_threshold).all())
        out = pm.official_pade_core(
            r[0], r[1], curve_ok=curve_ok, den_eps=c.den_eps,
            clamp_weights=c.clamp_weights, clamp_width=c.clamp_width, blend=c.blend,
        )
        if not torch.isfinite(out).all():  # the code's NaN/Inf guard
            out = r[0] + 0.5 * (r[0] - r[1])
            if not torch.isfinite(out).all():
                out = self._weighted(r)
        return out

    def _weighted(self, r: list[torch.Tensor]) -> torch.Tensor:
        stability = self.stability if self.stability is not None else torch.ones(r[0].shape[0])
        return pm.official_weighted_extrapolation(r, min(len(r), self.current_order), stability)

    def _paper(self, ctx: StepContext) -> torch.Tensor:
        c = self.config
        r = self._newest(3)
        if self.stage_rules and ctx.stage is Stage.EARLY:
            return self._early(r)
        sigma = pm.paper_sigma(r[0], r[1], c.lam)
        pred, guarded = pm.paper_pade(r[0], r[1], r[2], sigma, c.lam, c.den_eps)
        self._indicators = {"sigma": sigma.mean(), "guarded": guarded.float().mean()}
        if self.stage_rules and ctx.stage is Stage.LATE:
            pred = pred + c.beta * (r[0] - r[1])
        return pred

    def _damped(self, ctx: StepContext) -> torch.Tensor:
        c = self.config
        r = self._newest(3)
        if self.stage_rules and ctx.stage is Stage.EARLY:
            return self._early(r)
        if len(r) < 3:  # stability cannot be measured from two residuals yet: the paper's conservative rule
            return self._early(r)
        xs = [self.positions[-1 - i] for i in range(3)]
        h, distance = xs[0] - xs[1], ctx.position(c.grid) - xs[0]
        if self._damped_fit is None:  # depends on the history only: shared by every forecast until the next compute
            rho = pm.slope_ratio(r[0], r[1], r[2], h, xs[1] - xs[2])
            stability = (1 - c.shrink) * rho.clamp(0.0, c.rho_max) + c.shrink
            self._damped_fit = ((r[0] - r[1]) / h, pm.decay_rate(stability, spacing=0.5 * (xs[0] - xs[2])))
            self._indicators = {"sigma": stability.mean()}
        slope, rate = self._damped_fit
        pred = pm.decay_pade_step(r[0], slope, rate, distance)
        if self.stage_rules and ctx.stage is Stage.LATE:
            pred = pred + c.beta * (r[0] - r[1]) * (distance / h)
        return pred
