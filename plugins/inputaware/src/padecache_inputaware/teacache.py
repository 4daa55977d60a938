"""``teacache`` policy: TeaCache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion
Model", CVPR 2025, arXiv 2411.19108; code github.com/ali-vilab/TeaCache @ 7c10efc).

At each step the relative L1 change of the first block's timestep-modulated input,
``d_t = mean|m_t - m_{t-1}| / mean|m_{t-1}|``, is rescaled by a per-model polynomial ``f`` (fitted once per model
family, :data:`TEACACHE_MODELS`) and accumulated; the step reuses the cached residual while the sum stays below
the threshold, and computes (resetting the sum) once it reaches it.  The first step (or the first ``warmup``
steps) and the last step always compute, as the official code does for each family.  Every statistic is per
batch row and summed over the sequence-parallel group, so rows decide independently and ranks alike.
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import torch

from padecache import CachePolicy, OptionError, StepContext, option
from padecache.errors import warn

from ._inputs import MissingInput, read_input
from ._math import polyval, rel_l1, rel_l1_sums

__all__ = ["TeaCacheModel", "TEACACHE_MODELS", "FAMILY_MODELS", "TeaCachePolicy", "TeaCacheProbe"]


@attrs.frozen
class TeaCacheModel:
    """The published TeaCache setting of one model family, as its official script runs it.

    ``indicator``: what the official code measures (``modulated``: the first block's timestep-modulated input;
    ``time_embedding``: the timestep embedding alone, Wan's ``e``, CogVideoX's ``emb``; ``time_projection``: the
    projected embedding the blocks receive, Wan's ``e0`` with ``--use_ret_steps``).  ``warmup``/``warmup_share``:
    steps always computed at the start (``max(warmup, ceil(warmup_share * steps))``); ``last``: the final step is
    always computed.
    ``threshold``: the script's default; ``speedups``: the thresholds and speedups its comments quote.
    """

    coefficients: tuple[float, ...]
    source: str
    indicator: str = "modulated"
    threshold: float = 0.2
    speedups: str = ""
    warmup: int = 1
    warmup_share: float = 0.0
    last: bool = True


_FLUX = (4.98651651e02, -2.83781631e02, 5.58554382e01, -3.82021401e00, 2.64230861e-01)
_COG5B = (-1.53880483e03, 8.43202495e02, -1.34363087e02, 7.97131516e00, -5.23162339e-02)
_LUMINA = (393.76566581, -603.50993606, 209.10239044, -23.00726601, 0.86377344)
_WAN_REPO = "TeaCache4Wan2.1/teacache_generate.py"
_WAN_RET = "with --use_ret_steps: the indicator is the projected embedding e0, 5 steps always computed, last not forced"

#: Every polynomial the official repository publishes (github.com/ali-vilab/TeaCache @ 7c10efc), by family.
TEACACHE_MODELS: dict[str, TeaCacheModel] = {
    "flux": TeaCacheModel(_FLUX, "TeaCache4FLUX/teacache_flux.py", threshold=0.6,
                          speedups="0.25: 1.5x, 0.4: 1.8x, 0.6: 2.0x, 0.8: 2.25x"),
    "tangoflux": TeaCacheModel(_FLUX, "TeaCache4TangoFlux/teacache_tango_flux.py (FLUX's polynomial)", threshold=0.25,
                               speedups="0.25: 1.7x, 0.4: 2.1x"),
    "hunyuanvideo": TeaCacheModel((7.33226126e02, -4.01131952e02, 6.75869174e01, -3.14987800e00, 9.61237896e-02),
                                  "TeaCache4HunyuanVideo/teacache_sample_video.py", threshold=0.15,
                                  speedups="0.1: 1.6x, 0.15: 2.1x"),
    "ltx": TeaCacheModel((2.14700694e01, -1.28016453e01, 2.31279151e00, 7.92487521e-01, 9.69274326e-03),
                         "TeaCache4LTX-Video/teacache_ltx.py", threshold=0.05, speedups="0.03: 1.6x, 0.05: 2.1x"),
    "mochi": TeaCacheModel((-3.51241319e03, 8.11675948e02, -6.09400215e01, 2.42429681e00, 3.05291719e-03),
                           "TeaCache4Mochi/teacache_mochi.py", threshold=0.09, speedups="0.06: 1.5x, 0.09: 2.1x"),
    "lumina_next": TeaCacheModel(_LUMINA, "TeaCache4Lumina-T2X/teacache_lumina_next.py", threshold=0.3,
                                 speedups="0.2: 1.5x, 0.3: 1.9x, 0.4: 2.4x, 0.5: 2.8x"),
    "lumina2": TeaCacheModel(_LUMINA, "TeaCache4Lumina2/teacache_lumina2.py (v1 coefficients, the script's default)",
                             threshold=0.3),
    "lumina2-v2": TeaCacheModel((225.7042019806413, -608.8453716535591, 304.1869942338369, 124.21267720116742,
                                 -1.4089066892956552), "TeaCache4Lumina2/teacache_lumina2.py (v2 coefficients)",
                                threshold=0.3),
    "cosmos": TeaCacheModel((2.71156237e02, -9.19775607e01, 2.24437250e00, 2.08355751e00, 1.41776330e-01),
                            "TeaCache4Cosmos/teacache_sample_video_t2v.py and _i2v.py", threshold=0.3,
                            speedups="0.1: 1.3x, 0.2: 1.8x, 0.3: 2.1x"),
    "hidream": TeaCacheModel((-3.13605009e04, -7.12425503e02, 4.91363285e01, 8.26515490e00, 1.08053901e-01),
                             "TeaCache4HiDream-I1/teacache_hidream_i1.py", indicator="time_embedding", threshold=0.3,
                             speedups="0.17: 1.5x, 0.25: 1.7x, 0.3: 2x, 0.45: 2.6x", warmup=0, warmup_share=0.1,
                             last=False),
    "cogvideox-2b": TeaCacheModel((-3.10658903e01, 2.54732368e01, -5.92380459e00, 1.75769064e00, -3.61568434e-03),
                                  "TeaCache4CogVideoX1.5/teacache_sample_video.py", indicator="time_embedding"),
    "cogvideox-5b": TeaCacheModel(_COG5B, "TeaCache4CogVideoX1.5/teacache_sample_video.py", indicator="time_embedding",
                                  speedups="0.1: 1.3x, 0.2: 1.8x, 0.3: 2.1x"),
    "cogvideox-5b-i2v": TeaCacheModel(_COG5B, "TeaCache4CogVideoX1.5/teacache_sample_video.py",
                                      indicator="time_embedding"),
    "cogvideox1.5-5b": TeaCacheModel((2.50210439e02, -1.65061612e02, 3.57804877e01, -7.81551492e-01, 3.58559703e-02),
                                     "TeaCache4CogVideoX1.5/teacache_sample_video.py", indicator="time_embedding"),
    "cogvideox1.5-5b-i2v": TeaCacheModel((1.22842302e02, -1.04088754e02, 2.62981677e01, -3.06009921e-01,
                                          3.71213220e-02), "TeaCache4CogVideoX1.5/teacache_sample_video.py",
                                         indicator="time_embedding"),
    "consisid": TeaCacheModel(_COG5B, "TeaCache4ConsisID/teacache_sample_video.py (CogVideoX-5B's polynomial)",
                              indicator="time_embedding", threshold=0.1, speedups="0.1: 1.6x, 0.15: 2.1x, 0.2: 2.5x"),
    "wan2.1-t2v-1.3b": TeaCacheModel((2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01),
                                     _WAN_REPO, indicator="time_embedding", speedups="0.1: 2.0x, 0.2: 3.0x"),
    "wan2.1-t2v-1.3b-ret": TeaCacheModel((-5.21862437e04, 9.23041404e03, -5.28275948e02, 1.36987616e01,
                                          -4.99875664e-02), f"{_WAN_REPO} ({_WAN_RET})", indicator="time_projection",
                                         warmup=5, last=False),
    "wan2.1-t2v-14b": TeaCacheModel((-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404),
                                    _WAN_REPO, indicator="time_embedding"),
    "wan2.1-t2v-14b-ret": TeaCacheModel((-3.03318725e05, 4.90537029e04, -2.65530556e03, 5.87365115e01,
                                         -3.15583525e-01), f"{_WAN_REPO} ({_WAN_RET})", indicator="time_projection",
                                        warmup=5, last=False),
    "wan2.1-i2v-480p": TeaCacheModel((-3.02331670e02, 2.23948934e02, -5.25463970e01, 5.87348440e00, -2.01973289e-01),
                                     _WAN_REPO, indicator="time_embedding"),
    "wan2.1-i2v-480p-ret": TeaCacheModel((2.57151496e05, -3.54229917e04, 1.40286849e03, -1.35890334e01,
                                          1.32517977e-01), f"{_WAN_REPO} ({_WAN_RET})", indicator="time_projection",
                                         warmup=5, last=False),
    "wan2.1-i2v-720p": TeaCacheModel((-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683),
                                     _WAN_REPO, indicator="time_embedding"),
    "wan2.1-i2v-720p-ret": TeaCacheModel((8.10705460e03, 2.13393892e03, -3.72934672e02, 1.66203073e01,
                                          -4.17769401e-02), f"{_WAN_REPO} ({_WAN_RET})", indicator="time_projection",
                                         warmup=5, last=False),
    "latte": TeaCacheModel((-2.46434137e03, 3.08044764e02, 8.07447667e01, -4.11385132e00, 1.11001402e-01),
                           "eval/teacache/experiments/latte.py", threshold=0.1, speedups="0.1 and 0.2 evaluated"),
    "opensora": TeaCacheModel((2.17546007e02, -1.18329252e02, 2.68662585e01, -4.59364272e-02, 4.84426240e-02),
                              "eval/teacache/experiments/opensora.py", threshold=0.1, speedups="0.1 and 0.2 evaluated"),
    "opensora-plan": TeaCacheModel((2.05943668e05, -1.48759286e04, 3.06085986e02, 1.31418080e00, 2.39658469e-03),
                                   "eval/teacache/experiments/opensora_plan.py", threshold=0.1,
                                   speedups="0.1 and 0.2 evaluated"),
    # no rescaling: the raw relative L1 distance (TeaCache's ablation; what SeaCache and kijai's first Wan port use)
    "identity": TeaCacheModel((1.0, 0.0), "no polynomial: f(d) = d", threshold=0.1),
}

#: The published setting ``model = "auto"`` uses on each padecache family (StepContext.family), and the others
#: published for it; a family with several (Wan's sizes and tasks, CogVideoX's versions) gets the first, and a warning
#: naming the rest.
FAMILY_MODELS: dict[str, tuple[str, ...]] = {
    "flux": ("flux",), "hunyuanvideo": ("hunyuanvideo",), "ltx": ("ltx",), "mochi": ("mochi",),
    "lumina_next": ("lumina_next",), "lumina2": ("lumina2", "lumina2-v2"), "cosmos": ("cosmos",),
    "hidream": ("hidream",), "latte": ("latte",), "consisid": ("consisid",),
    "cogvideox": ("cogvideox-5b", "cogvideox-2b", "cogvideox-5b-i2v", "cogvideox1.5-5b", "cogvideox1.5-5b-i2v"),
    "wan": ("wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-480p", "wan2.1-i2v-720p", "wan2.1-t2v-1.3b-ret",
            "wan2.1-t2v-14b-ret", "wan2.1-i2v-480p-ret", "wan2.1-i2v-720p-ret"),
}

_INDICATORS = ("auto", "modulated", "time_embedding", "time_projection", "stack_input", "model_input")
#: what to read when the chosen indicator is not available, in order (the spec: modulated falls back to stack_input)
_FALLBACKS = {
    "modulated": ("modulated", "stack_input"),
    "time_embedding": ("time_embedding", "modulated", "stack_input"),
    "time_projection": ("time_projection", "modulated", "stack_input"),
    "stack_input": ("stack_input",),
    "model_input": ("model_input", "stack_input"),
}
#: what the engine is asked to compute for each indicator, fallbacks included
_DECLARE = {
    "modulated": frozenset({"modulated", "stack_input"}),
    "time_embedding": frozenset({"time_embedding", "modulated", "stack_input"}),
    "time_projection": frozenset({"time_projection", "modulated", "stack_input"}),
    "stack_input": frozenset({"stack_input"}),
    "model_input": frozenset({"model_input", "stack_input"}),
}


def _accumulate(acc: torch.Tensor, increment: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One accumulate-and-compare of TeaCache: ``acc += f(d)``; compute where ``not acc < threshold`` (so a NaN
    computes), resetting ``acc`` there.  Returns ``(compute, new_acc)``."""
    acc = acc + increment
    compute = ~(acc < threshold)
    return compute, torch.where(compute, torch.zeros_like(acc), acc)


class _ForcedSteps:
    """The steps every TeaCache-family policy computes whatever the indicator says."""

    @staticmethod
    def forced(ctx: StepContext, warmup: int, warmup_share: float, last: bool) -> bool:
        first, steps = ctx.first_step, ctx.span_steps
        head = max(warmup, math.ceil(warmup_share * steps - 1e-9))
        return ctx.step - first < head or (last and ctx.step == first + steps - 1)


class TeaCachePolicy(CachePolicy):
    """TeaCache: accumulated polynomial-rescaled relative L1 change of the first block's modulated input."""

    name = "teacache"
    inputs: ClassVar[frozenset[str]] = frozenset().union(*_DECLARE.values())

    @attrs.frozen
    class Config:
        model: str = option("auto", "str", choices=("auto", *TEACACHE_MODELS, "custom"),
                            doc="family whose published polynomial, indicator and first/last-step rules to use "
                                "(padecache_inputaware.TEACACHE_MODELS); 'auto': the hooked model's family's "
                                "(FAMILY_MODELS), FLUX's with a warning where none is published; 'custom' with "
                                "`coefficients`")
        coefficients: tuple[float, ...] | None = option(None, "floats", optional=True,
                                                        doc="polynomial, highest power first (numpy.poly1d order); "
                                                            "needs model = 'custom' (e.g. from calibrate_teacache)")
        threshold: float | None = option(None, gt=0.0, optional=True,
                                         doc="accumulated rescaled distance that triggers a compute (default: the "
                                             "model's published value, FLUX 0.6)")
        indicator: str = option("auto", "str", choices=_INDICATORS,
                                doc="what is measured: the model's own ('auto'), the first block's modulated input, "
                                    "the timestep embedding, its per-block projection, the block-stack input or the "
                                    "latents")
        warmup: int | None = option(None, "int", ge=0, optional=True,
                                    doc="steps always computed at the start (default: the model's, 1)")
        last: bool | None = option(None, "bool", optional=True,
                                   doc="always compute the final step (default: the model's, true)")
        per_row: bool = option(True, "bool", doc="decide per batch row (false: the official code's batch-wide mean)")

        def __attrs_post_init__(self):
            if self.model == "custom" and not self.coefficients:
                raise OptionError("coefficients", "model = 'custom' needs `coefficients` (highest power first)")
            if self.coefficients and self.model != "custom":
                raise OptionError("coefficients", f"set model = 'custom' to use your own coefficients (model "
                                                  f"{self.model!r} brings its published ones)")

    def __init__(self, config=None):
        super().__init__(config)
        c = self.config
        self.model: str | None = None  # the published setting in use; found at the first step with model = 'auto'
        if c.model != "auto":
            self._use(c.model)
        # what the engine computes is declared now: before the family is known, what any published setting reads
        if self.model is None and c.indicator == "auto":
            self.inputs = frozenset().union(*(_DECLARE[m.indicator] for m in TEACACHE_MODELS.values()))
        else:
            self.inputs = _DECLARE[c.indicator if c.indicator != "auto" else self.indicator]
        self._warned_fallback = False
        self.reset()

    def _use(self, model: str) -> None:
        c = self.config
        ref = TEACACHE_MODELS.get(model, TEACACHE_MODELS["identity"])
        self.model = model
        self.coefficients = tuple(c.coefficients) if model == "custom" else ref.coefficients
        self.threshold = c.threshold if c.threshold is not None else ref.threshold
        self.indicator = ref.indicator if c.indicator == "auto" else c.indicator
        self.warmup = ref.warmup if c.warmup is None else c.warmup
        self.warmup_share = ref.warmup_share if c.warmup is None else 0.0
        self.last = ref.last if c.last is None else c.last

    def _resolve(self, family: str | None) -> None:
        """model = 'auto': the published setting of ``family``, or FLUX's, saying so where it is a guess."""
        published = FAMILY_MODELS.get(family or "", ())
        self._use(published[0] if published else "flux")
        if len(published) > 1:
            warn(f"padecache: teacache on a {family!r} model uses the published {published[0]!r} polynomial; "
                 f"TeaCache publishes one per model size and task, so set policy.model to the one for this "
                 f"model (one of {list(published)})", RuntimeWarning, stacklevel=3)
        elif not published:
            warn(f"padecache: no TeaCache polynomial is published for {family or 'this'!r} models, so teacache "
                 f"uses FLUX's, fitted on another model: its thresholds will not mean what they mean on FLUX. "
                 f"Fit this model's with padecache_inputaware.calibrate_teacache and set policy.model = "
                 f"'custom' and policy.coefficients, or set policy.model = 'identity' (the raw distance)",
                 RuntimeWarning, stacklevel=3)

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None  # (rows, ...) indicator of the previous step
        self.acc: torch.Tensor | None = None  # (rows,) accumulated rescaled distance
        self._indicators: dict[str, torch.Tensor] = {}

    def state_tensors(self):
        return tuple(t for t in (self.previous, self.acc) if t is not None)

    def should_compute(self, ctx: StepContext) -> bool | torch.Tensor:
        if self.model is None:
            self._resolve(ctx.family)
        value, used = read_input(ctx, _FALLBACKS[self.indicator], "policy 'teacache'")
        if used != self.indicator and not self._warned_fallback and self.model not in ("identity", "custom"):
            self._warned_fallback = True
            warn(f"padecache: teacache's {self.model!r} polynomial was fitted on the {self.indicator} "
                 f"indicator, which this {ctx.family or 'model'!r} family does not give; it measures {used} "
                 f"instead, where the polynomial does not apply (records: tea_fallback = 1). Fit one on this "
                 f"indicator with padecache_inputaware.calibrate_teacache (policy.model = 'custom'), or set "
                 f"policy.model = 'identity'", RuntimeWarning, stacklevel=2)
        rows = value.shape[0]
        forced = _ForcedSteps.forced(ctx, self.warmup, self.warmup_share, self.last)
        if self.acc is None or self.acc.shape[0] != rows:
            self.acc = torch.zeros(rows, dtype=torch.float64, device=value.device)
        fallback = torch.tensor(float(used != self.indicator))
        if forced or self.previous is None or self.previous.shape != value.shape:
            compute = torch.ones(rows, dtype=torch.bool, device=value.device)
            self.acc = torch.zeros_like(self.acc)
            self._indicators = {"tea_fallback": fallback}
        else:
            sums = rel_l1_sums(value, self.previous)
            if not self.config.per_row:
                sums = sums.sum(dim=0, keepdim=True).expand(rows, 2)
            distance = rel_l1(ctx.reduce(sums).value)
            compute, self.acc = _accumulate(self.acc, polyval(self.coefficients, distance), self.threshold)
            self._indicators = {"tea_rel_l1": distance.mean(), "tea_acc": self.acc.float().mean(),
                                "tea_fallback": fallback}
        self.previous = value.detach().clone()
        return compute.cpu()

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if computed and self.acc is not None:  # a refreshed cache (also when the engine computed on its own)
            self.acc = torch.zeros_like(self.acc)

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)


class TeaCacheProbe(CachePolicy):
    """Always compute, and record TeaCache's calibration data: the indicator's and the residual's relative L1 change.

    Used by :func:`padecache_inputaware.calibrate_teacache`; its per-step indicators ``tea_x`` (relative L1 change
    of the indicator) and ``tea_residual`` (of the block-stack residual) are the two columns TeaCache fits.
    """

    name = "teacache-probe"
    inputs: ClassVar[frozenset[str]] = frozenset().union(*_DECLARE.values())

    @attrs.frozen
    class Config:
        indicator: str = option("modulated", "str", choices=_INDICATORS[1:], doc="what is measured (as `teacache`)")
        strict: bool = option(False, "bool", doc="fail at the first step when the model does not give `indicator` "
                              "(calibrate_teacache), instead of measuring a fallback")

    def __init__(self, config=None):
        super().__init__(config)
        self.inputs = _DECLARE[self.config.indicator]
        self.reset()

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None
        self.previous_residual: torch.Tensor | None = None
        self._x: torch.Tensor | None = None
        self._indicators: dict[str, torch.Tensor] = {}

    def should_compute(self, ctx: StepContext) -> bool:
        value, used = read_input(ctx, _FALLBACKS[self.config.indicator], "policy 'teacache-probe'")
        if self.config.strict and used != self.config.indicator:
            raise MissingInput(f"this {ctx.family or 'model'!r} model does not give the {self.config.indicator!r} "
                               f"indicator (it gives {used!r}): calibrate with indicator={used!r}")
        self._x = None
        if self.previous is not None and self.previous.shape == value.shape:
            self._x = rel_l1(ctx.reduce(rel_l1_sums(value, self.previous).sum(0, keepdim=True)).value)[0]
        self.previous = value.detach().clone()
        self._indicators = {"tea_fallback": torch.tensor(float(used != self.config.indicator))}
        return True

    def observe(self, ctx: StepContext, residual: torch.Tensor, computed: bool) -> None:
        if self._x is not None and self.previous_residual is not None and self.previous_residual.shape == residual.shape:
            y = rel_l1(ctx.reduce(rel_l1_sums(residual, self.previous_residual).sum(0, keepdim=True)).value)[0]
            self._indicators.update({"tea_x": self._x, "tea_residual": y})
        self.previous_residual = residual.detach().clone()

    def indicators(self) -> dict[str, torch.Tensor]:
        return dict(self._indicators)
