"""The data model of the family survey (:mod:`padecache.testing.family_table`) and the builders its rows use.

A family is one :class:`FamilySpec` row: the diffusers class and a tiny config, the inputs its main pipeline passes
(``inputs``: a dict written with the builders below, drawn in order from one seeded generator), how that pipeline
passes time (:class:`Time`), its scheduler and guidance, and where a block-stack cache hooks (block lists, head,
:class:`BlockIO` per list).  The remaining fields tell :func:`padecache.testing.families.run_loop` how to replay the
pipeline's calls (how latents are packed into ``hidden_states`` and unpacked from the output, learned sigma, ...).

Input builders take the sizes by name: ``randn("B", "txt", 32)`` is a ``(batch, text tokens, 32)`` normal draw;
``"n"`` is the number of 2x2 latent patches ``(h/2)*(w/2)``, ``"hw"`` ``h*w`` and ``"fhw"`` ``f*h*w``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = [
    "BlockIO", "FamilySpec", "In", "Sizes", "Time", "T", "T1000", "REVERSED",
    "randn", "ones", "zeros", "full", "randint", "derived", "per_sample", "image", "packed", "video", "audio",
    "frames_first",
    "tokens", "text", "text_mask", "flux_img_ids", "txt_ids", "flux2_ids",
    "cat_condition", "first_channels", "expand_time", "expand_time_float",
    "flow_sigmas", "mu_linear", "tk_flux", "tk_sigmas_to_zero", "seq_packed", "seq_4d", "outputs",
]


# -- data model ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BlockIO:
    """What one block list's blocks take and return.

    Attributes:
        block_class: the block's class name.
        hidden: forward argument carrying the (image/video) hidden stream.
        encoder: forward argument carrying the text stream, or ``None``.
        returns: what the block returns, written as the forward arguments a skipped block must hand
            back in their place: a ``str`` for a bare tensor, a ``tuple`` for a tuple output (element by
            element).  ``"zeros:<arg>"`` means a tensor shaped like ``<arg>`` that a skipped block
            should return as zeros (e.g. a hint that is added to the main stream).
        registered: diffusers' ``TransformerBlockRegistry`` has metadata for ``block_class``.
        metadata_ok: that metadata matches what the block really returns (``None``: not registered).
        called: how the model calls the block: ``"keywords"`` or ``"positional"``.
        note: anything else a hook needs to know.
    """

    block_class: str
    hidden: str
    encoder: str | None
    returns: str | tuple[str, ...]
    registered: bool
    metadata_ok: bool | None = None
    called: str = "keywords"
    note: str = ""

    @property
    def returns_text(self) -> str:
        if isinstance(self.returns, str):
            return "tensor"
        short = {"hidden_states": "hidden", "encoder_hidden_states": "encoder"}
        return "(" + ", ".join(short.get(r, r) for r in self.returns) + ")"


@dataclasses.dataclass(frozen=True)
class Time:
    """The time argument: the pipeline passes ``offset + scale * t`` for ``t`` in ``scheduler.timesteps``."""

    argument: str = "timestep"
    scale: float = 1.0
    offset: float = 0.0
    layout: str = ""  # how the pipeline broadcasts it (documentation)

    def __call__(self, layout: str = "", argument: str | None = None) -> Time:
        """This convention with a layout note (``T1000("t.expand(B) / 1000")``) or another argument name."""
        return dataclasses.replace(self, layout=layout, argument=argument or self.argument)


T = Time()  # scheduler.timesteps as they are
T1000 = Time(scale=1e-3)  # FLUX-style: t / 1000
REVERSED = Time(scale=-1e-3, offset=1.0)  # Lumina-style: 1 - t / 1000


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """One diffusers transformer family, as its main pipeline (``pipeline``) drives it: one row of the table.

    Survey fields:
        model_class / tiny_config: the diffusers class and kwargs for a < 0.5M-parameter model.
        inputs: the forward kwargs the pipeline passes, except the time argument, in the pipeline's layout (noise
            latents included): constants, or builders (:class:`In`) drawn in order from one generator seeded per
            call.  Keys starting with ``_`` are not forward arguments: fixed conditioning that ``pack`` reads.
        size: the default sizes the builders read (``h``, ``w``, ``txt``, ``f``, ...); ``make_inputs`` overrides them.
        time: the forward argument carrying time and its relation to the scheduler's timesteps (:class:`Time`).
        scheduler / scheduler_kwargs: the pipeline's (type-hinted) scheduler class; kwargs representative of the
            hub configs (which cannot be read offline); ``timesteps_kwargs`` reproduces how the pipeline calls
            ``set_timesteps`` (custom sigmas, ``mu``).
        cfg: "batched" (cond and uncond rows in one call), "separate" (two calls per step), "distilled"
            (guidance embedding, one call) or "none".
        cfg_contexts: the ``transformer.cache_context`` names the pipeline wraps its calls in (one per call of a
            step), or ``None`` when it sets none.
        block_lists: the ``nn.ModuleList`` s of the main block stack in execution order (dotted paths);
            always_run: modules with blocks of their own that run before the stack (refiners, text stacks).
        head / head_same_shape: the module whose first positional input is the block-stack output, and whether
            that input has the shape of the first block's hidden input.
        block_io: per block list, a :class:`BlockIO`.
        notes: quirks (``head_note`` / ``scheduler_note``: what sits between stack and head, how time is set).
    """

    name: str
    model_class: str
    pipeline: str
    tiny_config: Mapping[str, Any]
    inputs: Mapping[str, Any]
    time: Time
    scheduler: str
    scheduler_kwargs: Mapping[str, Any]
    cfg: str
    cfg_contexts: tuple[str, ...] | None
    block_lists: tuple[str, ...]
    head: str
    block_io: Mapping[str, BlockIO]
    head_same_shape: bool = True
    size: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"h": 8, "w": 8, "txt": 8})
    always_run: tuple[str, ...] = ()
    head_note: str = ""
    notes: tuple[str, ...] = ()
    scheduler_note: str = ""
    # -- how run_loop drives it -------------------------------------------------------------------------------
    latent_keys: tuple[str, ...] = ("hidden_states",)
    positional: tuple[str, ...] = ()  # inputs the pipeline passes positionally, in order
    timesteps_kwargs: Callable[[Any, int, dict], dict] | None = None  # extra set_timesteps kwargs (sigmas, mu)
    time_fn: Callable[[Any, int, dict], Any] | None = None  # (value, rows, call kwargs) -> tensor; default expand
    step_kwargs: Callable[[Any, int], dict] | None = None  # (scheduler, step index) -> extra scheduler.step kwargs
    pack: Callable[[Any, dict], Any] | None = None  # (latents, inputs) -> value of latent_keys[0]
    unpack_latents: Callable[[dict], Any] | None = None  # inputs -> initial latents of latent_keys[0]
    unpack_output: Callable[[Any], tuple] | None = None  # model output -> predictions, one per latent key
    negate: bool = False  # the pipeline negates the model output before scheduler.step
    learned_sigma: bool = False  # the model outputs 2x channels; the pipeline keeps the first half
    scale_model_input: bool = False  # the pipeline calls scheduler.scale_model_input
    post_build: Callable[[Any], None] | None = None  # shrinks hard-coded oversized submodules of the tiny model
    tail_tokens: bool = False  # the output covers more tokens than the latents; the pipeline keeps the last ones
    cfg_order: str = "uncond_first"  # row order of batched CFG
    time_copies: tuple[str, ...] = ()  # further arguments the pipeline passes the same time value in (ACE-Step's r)

    @property
    def time_argument(self) -> str:
        return self.time.argument

    @property
    def time_map(self) -> tuple[float, float]:
        """``(scale, offset)``: the pipeline passes ``offset + scale * t``."""
        return (self.time.scale, self.time.offset)

    def make_inputs(self, batch: int, seed: int, **size: int) -> dict:
        """The forward kwargs (time excepted) for ``batch`` samples, deterministic given ``seed``."""
        sizes = Sizes(batch, {**self.size, **size})
        g = torch.Generator().manual_seed(int(seed))
        out: dict[str, Any] = {}
        for key, value in self.inputs.items():
            out[key] = value(sizes, g, out) if isinstance(value, In) else copy.copy(value)
        return out


# -- input builders -----------------------------------------------------------------------------------------------


class Sizes:
    """The sizes an input builder reads: ``B`` (batch rows) and the family's sizes, plus ``n``, ``hw`` and ``fhw``."""

    def __init__(self, batch: int, sizes: Mapping[str, int]):
        self.B = batch
        self.__dict__.update(sizes)

    @property
    def n(self) -> int:  # 2x2 patches of an h x w latent (FLUX-style packing)
        return (self.h // 2) * (self.w // 2)

    @property
    def hw(self) -> int:
        return self.h * self.w

    @property
    def fhw(self) -> int:
        return self.f * self.h * self.w

    def dims(self, dims: tuple) -> tuple[int, ...]:
        return tuple(getattr(self, d) if isinstance(d, str) else int(d) for d in dims)


class In:
    """An input computed per call: ``fn(sizes, generator, inputs so far)``."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Sizes, torch.Generator, dict], Any]):
        self.fn = fn

    def __call__(self, s: Sizes, g: torch.Generator, got: dict) -> Any:
        return self.fn(s, g, got)


def randn(*dims) -> In:
    """A standard normal draw of shape ``dims`` (size names or ints)."""
    return In(lambda s, g, got: torch.randn(*s.dims(dims), generator=g))


def ones(*dims, dtype=None) -> In:
    return In(lambda s, g, got: torch.ones(*s.dims(dims), dtype=dtype))


def zeros(*dims, dtype=None) -> In:
    return In(lambda s, g, got: torch.zeros(*s.dims(dims), dtype=dtype))


def full(value: float, *dims) -> In:
    """``value`` broadcast to ``dims`` (the pipelines' ``torch.full([1], g).expand(B)``)."""
    return In(lambda s, g, got: torch.full([1], value).expand(*s.dims(dims)))


def randint(high: int, *dims) -> In:
    return In(lambda s, g, got: torch.randint(0, high, s.dims(dims), generator=g))


def derived(fn: Callable[[Sizes], Any]) -> In:
    """A non-random input computed from the sizes (ids, shapes, masks)."""
    return In(lambda s, g, got: fn(s))


def per_sample(*dims) -> In:
    """A Python list of ``B`` per-sample normal draws of shape ``dims`` (Z-Image)."""
    return In(lambda s, g, got: [torch.randn(*s.dims(dims), generator=g) for _ in range(s.B)])


# the latent layouts
def image(channels: int) -> In:
    """``(B, C, H, W)`` latents."""
    return randn("B", channels, "h", "w")


def packed(channels: int) -> In:
    """FLUX-style packed latents: 2x2 patches folded into channels, ``(B, (h/2)*(w/2), 4*channels)``."""
    return randn("B", "n", 4 * channels)


def video(channels: int, frames: str | int = "f") -> In:
    """``(B, C, F, H, W)`` latents."""
    return randn("B", channels, frames, "h", "w")


def audio(channels: int, length: str | int = "t") -> In:
    """``(B, C, T)`` audio latents."""
    return randn("B", channels, length)


def frames_first(channels: int) -> In:
    """``(B, F, C, H, W)`` latents (CogVideoX)."""
    return randn("B", "f", channels, "h", "w")


def tokens(channels: int, count: str | int = "fhw") -> In:
    """Packed tokens with patch size 1, ``(B, count, C)`` (LTX)."""
    return randn("B", count, channels)


def text(dim: int, count: str | int = "txt") -> In:
    """Prompt embeddings ``(B, tokens, dim)``."""
    return randn("B", count, dim)


def text_mask(dtype=None, count: str | int = "txt") -> In:
    return ones("B", count, dtype=dtype)


def flux_img_ids(h: int, w: int) -> torch.Tensor:
    """FLUX.1-style 2-D ids ``(h*w, 3)``: (0, row, col)."""
    ids = torch.zeros(h, w, 3)
    ids[..., 1] = torch.arange(h)[:, None]
    ids[..., 2] = torch.arange(w)[None, :]
    return ids.reshape(h * w, 3)


def txt_ids() -> In:
    return zeros("txt", 3)


def flux2_ids(batch: int, t: int, h: int, w: int, n: int) -> torch.Tensor:
    """FLUX.2-style 4-axis ids ``(batch, t*h*w*n, 4)`` (cartesian product of (t, h, w, l) with l in range(n))."""
    ids = torch.cartesian_prod(torch.arange(t), torch.arange(h), torch.arange(w), torch.arange(n))
    return ids.unsqueeze(0).expand(batch, -1, -1).float()


# -- how latents enter and leave the model ------------------------------------------------------------------------


def cat_condition(latents, inputs):
    """``cat([latents, condition], dim=1)`` (Wan-I2V style channel concatenation; ``inputs["_condition"]`` is fixed)."""
    cond = inputs["_condition"]
    if cond.shape[0] != latents.shape[0]:
        cond = cond.repeat(latents.shape[0] // cond.shape[0], *([1] * (cond.ndim - 1)))
    return torch.cat([latents, cond], dim=1)


def first_channels(n: int):
    """Initial latents = the first ``n`` channels of ``hidden_states`` (the rest is conditioning)."""
    return lambda inputs: inputs["hidden_states"][:, :n]


def expand_time(value, rows, kwargs=None):
    """The pipelines' ``t.expand(batch)`` (dtype as the value has it)."""
    return value.reshape(()).expand(rows)


def expand_time_float(value, rows, kwargs=None):
    return value.reshape(()).float().expand(rows)


def outputs(out) -> tuple:
    """A transformer's outputs as a tuple: ``.sample`` (and ``.audio_sample``) or the plain tuple."""
    if hasattr(out, "sample"):
        extra = getattr(out, "audio_sample", None)
        return (out.sample,) if extra is None else (out.sample, extra)
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)


# -- how the pipelines set their timesteps ------------------------------------------------------------------------


def flow_sigmas(steps: int):
    import numpy as np

    return np.linspace(1.0, 1 / steps, steps)


def mu_linear(scheduler, seq_len: int) -> float:
    """diffusers' ``calculate_shift`` with the scheduler's config (FLUX, SD3, Chroma, Lumina2, QwenImage, LTX...)."""
    c = scheduler.config
    base_seq, max_seq = c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096)
    base_shift, max_shift = c.get("base_shift", 0.5), c.get("max_shift", 1.15)
    m = (max_shift - base_shift) / (max_seq - base_seq)
    return seq_len * m + (base_shift - m * base_seq)


def tk_flux(seq_len_of: Callable[[dict], int]):
    """``set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(image_seq_len))`` (FLUX, Chroma, Lumina2...)."""

    def kwargs(scheduler, steps, inputs):
        out = {"sigmas": flow_sigmas(steps)}
        if scheduler.config.get("use_dynamic_shifting", False):
            out["mu"] = mu_linear(scheduler, seq_len_of(inputs))
        return out

    return kwargs


def tk_sigmas_to_zero(scheduler, steps, inputs):
    """``sigmas = linspace(1, 0, N + 1)[:-1]`` (HunyuanVideo, HunyuanImage, HunyuanVideo 1.5)."""
    import numpy as np

    return {"sigmas": np.linspace(1.0, 0.0, steps + 1)[:-1]}


def seq_packed(inputs):
    return inputs["hidden_states"].shape[1]


def seq_4d(patch):
    return lambda inputs: (inputs["hidden_states"].shape[-2] // patch) * (inputs["hidden_states"].shape[-1] // patch)
