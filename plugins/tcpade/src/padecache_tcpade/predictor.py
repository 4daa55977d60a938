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
  two computed residuals stability cannot be measured yet: from two adjacent steps (a two-step warm-up)
  the slope is mostly the first step's transient and the early rule ``α1 R_n + α2 R_{n−1}`` is used;
  from two steps further apart (a one-step warm-up, ``lean_passes``) it is the trend over the gap, and it
  relaxes as if none of it were measured to persist (ρ = 0, σ = ``shrink``) until a third residual measures
  the decay.  The decay measured against the first step's transient (the third residual after an adjacent
  warm-up pair) understates how long the trend that follows persists: one step ahead, that trend is
  forecast as a line (``R_n + D d``), further ahead it relaxes at the measured rate (chosen on 45 points, one
  seed: +0.19 to +1.58 dB at every 2x point of 10-20 steps, -0.19 to +0.94 dB at the others;
  ``docs/methods.md``).  When the policy's plan holds no further pass (a two-pass run,
  ``StepContext.passes_left``) the newest residual is reused instead: a trend measured over the run's first
  gap does not hold to its end (plain reuse was 1.1-1.3 dB ahead there, ``docs/methods.md``).

Stage rules (stage from the engine's stage detector): early ``α1 R_n + α2 R_{n−1}``; mid ``core``; late
``core + β·trend``, the trend being ``R_n − R_{n−1}`` (``reference``, ``paper``) or ``D·d`` scaled to the
real distance (``damped``).  ``reference`` and ``paper`` always apply them; ``damped`` applies them only
with ``stage_rules = true``, because on top of the fitted decay they cost 1-4 dB in our benchmark.

Options belong to variants: setting one that the chosen variant does not use is an error (``padecache
list --verbose`` says which variant each option is for).  ``damped`` keeps two residual-sized tensors
per branch (the newest residual and the newest slope) and a rate per row.
"""

from __future__ import annotations

from collections import deque

import attrs
import torch

from padecache import OptionError, Predictor, Stage, StepContext, option
from padecache.math import row_dot, row_sumsq

from . import _math as pm

__all__ = ["TCPadePredictor"]


def _reduce(ctx: StepContext):
    """Per-row partial sums to the whole sequence's when the generation is sharded (else ``None``: the published
    forms' own norms, bit for bit)."""
    return (lambda t: ctx.reduce(t).value) if getattr(ctx, "sharded", False) else None


VARIANTS = ("damped", "reference", "paper")

#: option -> (variants it applies to, default)
VARIANT_OPTIONS = {
    "shrink": (("damped",), 0.25),
    "rho_max": (("damped",), 1.5),
    "grid": (("damped",), "step"),
    "lam": (("paper",), 10.0),
    "den_eps": (("reference", "paper"), 1e-5),
    "order": (("reference",), 3),
    "history_size": (("reference",), 6),
    "input_delta": (("reference",), 0.2),
    "curve_threshold": (("reference",), 1.4),
    "clamp_weights": (("reference",), (0.6, 0.4)),
    "clamp_width": (("reference",), (0.5, 0.1)),
    "blend": (("reference",), (0.7, 0.3)),
}


class TCPadePredictor(Predictor):
    """TC-Padé residual forecast with stability-modulated coefficients and early/mid/late rules."""

    name = "tc-pade"

    @attrs.frozen
    class Config:
        variant: str = option("damped", "str", choices=VARIANTS, doc="which TC-Padé (module doc)")
        alpha: tuple[float, float] = option((0.9, 0.1), "floats", doc="early-stage weights α1, α2 of R_n, R_{n−1} (code: 0.9, 0.1)")
        beta: float = option(0.3, ge=0.0, doc="late-stage weight of the trend term (code: 0.3)")
        stage_rules: bool | None = option(None, "bool", optional=True, doc="apply the early/late rules (default: yes for reference/paper, no for damped)")
        # damped
        shrink: float | None = option(None, ge=0.0, le=1.0, optional=True, doc="damped: weight of the steady-trend prior (σ = 1) in the stability σ (0.25)")
        rho_max: float | None = option(None, ge=0.0, optional=True, doc="damped: largest slope ratio believed, bounds acceleration (1.5)")
        grid: str | None = option(None, "str", choices=("step", "sigma", "timestep"), optional=True, doc="damped: abscissa of the distance (step)")
        # paper
        lam: float | None = option(None, gt=0.0, optional=True, doc="paper: λ, sensitivity of the stability factor σ (10)")
        den_eps: float | None = option(None, gt=0.0, optional=True, doc="reference, paper: smallest |denominator| (1e-5)")
        # official-code constants
        order: int | None = option(None, "int", ge=2, le=4, optional=True, doc="reference: maximum adaptive order (3)")
        history_size: int | None = option(None, "int", ge=3, le=64, optional=True, doc="reference: FIFO length, predicted residuals included (6)")
        input_delta: float | None = option(None, optional=True, doc="reference: weight of x_in − x_in,prev added to the output (0.2)")
        curve_threshold: float | None = option(None, ge=0.0, optional=True, doc="reference: the code's `curvetest` threshold N (1.4, never fails)")
        clamp_weights: tuple[float, float] | None = option(None, "floats", optional=True, doc="reference: clamp centre m = w0 R_n + w1 R_{n−1} (0.6, 0.4)")
        clamp_width: tuple[float, float] | None = option(None, "floats", ge=0.0, optional=True, doc="reference: band max(w0 |ΔR|, w1 μ) (0.5, 0.1)")
        blend: tuple[float, float] | None = option(None, "floats", optional=True, doc="reference: blend weight w = b0 s + b1 towards m (0.7, 0.3)")

        def __attrs_post_init__(self):
            for key in ("alpha", "clamp_weights", "clamp_width", "blend"):
                value = getattr(self, key)
                if value is not None and len(value) != 2:
                    raise OptionError(key, f"needs two numbers, got {list(value)}")
            for key, (variants, _) in VARIANT_OPTIONS.items():
                if getattr(self, key) is not None and self.variant not in variants:
                    raise OptionError(key, f"applies to variant {' and '.join(map(repr, variants))} only, not {self.variant!r}")

        def get(self, key: str):
            """The option's value, or its variant's default when not set."""
            value = getattr(self, key)
            return VARIANT_OPTIONS[key][1] if value is None else value

    def __init__(self, config=None):
        super().__init__(config)
        c = self.config
        size = c.get("history_size") if c.variant == "reference" else 3
        self.history: deque[torch.Tensor] = deque(maxlen=size)  # reference / paper: newest last
        self.positions: deque[float] = deque(maxlen=3)
        self._last_step: int | None = None  # damped: the step of the newest computed residual
        self._gap_rate: torch.Tensor | None = None  # damped: the prior decay of a first trend measured over a gap
        self._after_transient = False  # damped: the first slope was an adjacent warm-up pair's (the early rule's)
        self._transient_fit = False  # damped: the newest decay was measured against that first slope
        self.last_input: torch.Tensor | None = None
        self.current_order = c.get("order") if c.variant == "reference" else 0
        self.stability: torch.Tensor | None = None
        # damped: the newest computed residual, the newest slope and the per-row decay rate of the trend
        self.newest: torch.Tensor | None = None
        self.slope: torch.Tensor | None = None
        self._rate: torch.Tensor | None = None
        self._fit = None  # (group sums <D_n, D_{n-1}>, |D_{n-1}|², spacing) until the rate is settled
        self._indicators: dict[str, torch.Tensor] = {}

    # -- history ------------------------------------------------------------------------------------------------
    @property
    def min_history(self) -> int:  # type: ignore[override]
        # damped: from one computed residual on (reused until a second gives the trend), so a plan may start
        # with a one-step warm-up; the published forms need the three residuals their code starts from
        return 3 if self.config.variant in ("reference", "paper") else 1

    @property
    def stage_rules(self) -> bool:
        c = self.config
        return c.variant != "damped" if c.stage_rules is None else c.stage_rules

    @property
    def num_computed(self) -> int:
        return len(self.positions) if self.config.variant == "damped" else len(self.history)

    def ready(self, ctx: StepContext) -> bool:
        return ctx.history >= self.min_history and self.num_computed >= self.min_history

    def reset(self) -> None:
        self.history.clear()
        self.positions.clear()
        self.last_input = None
        self.current_order = self.config.get("order") if self.config.variant == "reference" else 0
        self.stability = None
        self.newest = self.slope = self._rate = self._fit = None
        self._last_step = self._gap_rate = None
        self._after_transient = self._transient_fit = False
        self._indicators = {}

    def state_tensors(self):
        extra = (self.last_input,) if self.config.variant == "reference" and self.last_input is not None else ()
        damped = tuple(t for t in (self.newest, self.slope, self._rate, self._gap_rate) if t is not None)
        return (*self.history, *extra, *damped)

    def update(self, ctx: StepContext, residual: torch.Tensor, block_input: torch.Tensor, computed: bool) -> None:
        c = self.config
        if c.variant == "damped":
            if computed:
                self._update_damped(ctx, ctx.position(c.get("grid")), residual)
            return
        if c.variant == "paper":
            if computed:
                self.history.append(residual)
            return
        # the official `update_history`: every step is appended, computed or predicted
        self.history.append(residual)
        self.last_input = block_input
        h = self._newest(len(self.history))
        if len(h) >= 3:
            self.current_order = pm.official_adaptive_order(h, c.get("order"), reduce=_reduce(ctx))
        if len(h) >= 2:
            self.stability = pm.official_stability_scalar(h[0], h[1], reduce=_reduce(ctx))

    def _update_damped(self, ctx: StepContext, x: float, residual: torch.Tensor) -> None:
        """Fit the relaxing trend once per computed step: slope D_n, and from ρ = <D_n, D_{n−1}>/||D_{n−1}||² its rate
        (sums over the sequence-parallel group, so a sharded generation forecasts as an unsharded one)."""
        if self.newest is None:
            self.newest, self.positions, self._last_step = residual, deque([x], maxlen=3), ctx.step
            return
        h = x - self.positions[-1]
        if h == 0:  # a second-order scheduler's two calls at one time: the later (corrected) residual replaces
            if self.slope is not None and len(self.positions) >= 2:
                self.slope = self.slope + (residual - self.newest) / (self.positions[-1] - self.positions[-2])
            self.newest = residual
            return
        slope, first_trend = (residual - self.newest) / h, self.slope is None
        if self.slope is not None:
            sums = ctx.reduce(torch.stack([row_dot(slope, self.slope), row_sumsq(self.slope)], 1))
            self._fit = (sums, 0.5 * (x - self.positions[-2]))  # the rate is settled when first needed
        gap, self._last_step = ctx.step - self._last_step, ctx.step
        # a slope over a gap measured against the first, adjacent one: its decay is the transient's.  A third adjacent
        # warm-up step (plans below 2x) measures a decay that is real (docs/methods.md, "Below 2x")
        self._transient_fit = self._after_transient and gap > 1
        self.newest, self.slope = residual, slope
        self.positions.append(x)
        self._after_transient = first_trend and gap == 1
        if first_trend and gap > 1:  # its persistence not measured yet (ρ = 0): it keeps the prior share σ = shrink per gap
            prior = torch.tensor([float(self.config.get("shrink"))], dtype=torch.float64, device=residual.device)
            self._gap_rate = pm.decay_rate(prior, h)

    @property
    def rate(self) -> torch.Tensor | None:
        """Per-row decay rate λ of the trend (``None`` until three residuals were computed)."""
        if self._fit is not None:
            sums, spacing = self._fit
            rho = sums.value[:, 0] / sums.value[:, 1].clamp(min=1e-30)
            c = self.config
            stability = (1 - c.get("shrink")) * rho.clamp(0.0, c.get("rho_max")) + c.get("shrink")
            self._rate, self._fit = pm.decay_rate(stability, spacing), None
            self._indicators = {"sigma": stability.mean()}
        return self._rate

    def _newest(self, k: int) -> list[torch.Tensor]:
        return [self.history[-1 - i] for i in range(min(k, len(self.history)))]

    # -- prediction ---------------------------------------------------------------------------------------------
    def predict(self, ctx: StepContext, block_input: torch.Tensor) -> torch.Tensor:
        variant = self.config.variant
        if variant == "damped":
            return self._damped(ctx)
        out = self._reference(ctx, block_input) if variant == "reference" else self._paper(ctx)
        return out.to(block_input.dtype)  # the published forms compute their factors in float32

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
            pred = self._reference_core(r, ctx)
            if self.stage_rules and ctx.stage is Stage.LATE:
                pred = pred + c.beta * (r[0] - r[1])
        if self.last_input is not None and c.get("input_delta"):
            pred = pred + c.get("input_delta") * (block_input - self.last_input)
        return pred

    def _reference_core(self, r: list[torch.Tensor], ctx: StepContext) -> torch.Tensor:
        c = self.config
        if len(r) < self.current_order + 1:
            return self._weighted(r)
        curve_ok = len(r) < 5 or bool((pm.tsi(r[0], r[1], r[2], reduce=_reduce(ctx)) < c.get("curve_threshold")).all())
        out = pm.official_pade_core(
            r[0], r[1], curve_ok=curve_ok, den_eps=c.get("den_eps"),
            clamp_weights=c.get("clamp_weights"), clamp_width=c.get("clamp_width"), blend=c.get("blend"),
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
        sigma = pm.paper_sigma(r[0], r[1], c.get("lam"), reduce=_reduce(ctx))
        pred, guarded = pm.paper_pade(r[0], r[1], r[2], sigma, c.get("lam"), c.get("den_eps"))
        self._indicators = {"sigma": sigma.mean(), "guarded": guarded.float().mean()}
        if self.stage_rules and ctx.stage is Stage.LATE:
            pred = pred + c.beta * (r[0] - r[1])
        return pred

    def _damped(self, ctx: StepContext) -> torch.Tensor:
        c = self.config
        if self.slope is None:  # one computed residual: no trend yet, it is reused (the early rule with D_n = 0)
            return self.newest
        xs = self.positions
        h, distance = xs[-1] - xs[-2], ctx.position(c.get("grid")) - xs[-1]
        # the early rule in terms of the state kept: a1 R_n + a2 R_{n-1} = (a1 + a2) R_n - a2 h D_n
        if self.rate is None and self._gap_rate is not None and not (self.stage_rules and ctx.stage is Stage.EARLY):
            if ctx.passes_left == 0:  # no pass follows (a two-pass plan): a trend seen early is not carried to the end
                return self.newest
            return pm.decay_pade_step(self.newest, self.slope, self._gap_rate, distance)  # a trend over a gap
        early = self.rate is None or (self.stage_rules and ctx.stage is Stage.EARLY)
        if early:  # two adjacent residuals, stability not measurable yet: the paper's conservative rule
            a1, a2 = c.alpha
            return torch.add((a1 + a2) * self.newest, self.slope, alpha=-a2 * h)
        if self._transient_fit and ctx.step - self._last_step == 1:  # one step ahead of a trend measured against the
            return torch.add(self.newest, self.slope, alpha=distance)  # transient: its persistence is understated
        pred = pm.decay_pade_step(self.newest, self.slope, self.rate, distance)
        if self.stage_rules and ctx.stage is Stage.LATE:
            pred = pred + (c.beta * distance) * self.slope
        return pred

