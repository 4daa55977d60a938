"""A factual survey of diffusers 0.42's transformer families, with tiny random-weight factories.

One :class:`FamilySpec` per family says, for the family's *main* pipeline in diffusers 0.42.1:

* which model class it is and a tiny config (< 0.5M parameters, a forward in a few ms on CPU);
* what the pipeline passes to the transformer (``make_inputs``: every forward kwarg except the time
  argument, in the pipeline's layout), which argument carries time and how its value relates to the
  scheduler's timesteps (``value = offset + scale * t``, ``time_map = (scale, offset)``);
* the scheduler, how guidance runs (``cfg``) and which ``cache_context`` names the pipeline sets;
* where a block-stack cache hooks: the block lists in execution order, the modules that always run
  before them (refiners), the *head* (the module whose first input is the block-stack output) and
  what each block takes and returns, checked against diffusers' ``TransformerBlockRegistry``.

:func:`tiny_transformer` builds a family's model; :func:`run_loop` runs a plain sampling loop that
calls the transformer exactly the way the pipeline does (same time value, same guidance batching,
same ``cache_context`` names), generically from the spec; :func:`verify` re-checks the structural
claims of a spec by running the model (the tests call it for every family).

Everything imports torch and diffusers lazily, inside functions.  All claims were verified by running
code against diffusers 0.42.1 (see ``verify``); pipeline facts were read from each pipeline's
``__call__``.  ``run_loop`` combines guidance with the plain ``uncond + g * (cond - uncond)`` rule;
pipeline-specific extras (CFG renormalisation, CFG truncation, x0-space guidance, Cosmos' EDM
double step) change the numbers, not the calls the transformer sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "FAMILIES",
    "UNSUPPORTED",
    "BlockIO",
    "FamilySpec",
    "count_parameters",
    "family",
    "family_names",
    "make_scheduler",
    "run_loop",
    "tiny_transformer",
    "verify",
]


# ---------------------------------------------------------------------------------------------------------------
# data model
# ---------------------------------------------------------------------------------------------------------------


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
        called: how the model calls the block: ``"keywords"`` or ``"positional"`` (hidden stream is
            then ``args[0]``; a hook must bind the signature to find the other arguments).
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
class FamilySpec:
    """One diffusers transformer family, as its main pipeline (``pipeline``) drives it.

    Survey fields:
        model_class / tiny_config: the diffusers class and kwargs for a < 0.5M-parameter model.
        make_inputs: ``(batch, seed, **size) -> dict``: the forward kwargs the pipeline passes, except the time
            argument, in the pipeline's layout (noise latents included).  Keys starting with ``_`` are not
            forward arguments: fixed conditioning that ``pack`` concatenates to the latents.
        time_argument / time_map / time_layout: the forward argument carrying time; the pipeline passes
            ``offset + scale * t`` for ``t`` in ``scheduler.timesteps`` (``time_map = (scale, offset)``),
            broadcast as ``time_layout`` says.
        scheduler / scheduler_kwargs / scheduler_note: the pipeline's (type-hinted) scheduler class.  The kwargs
            are representative of the hub configs (which cannot be read offline); how the pipeline calls
            ``set_timesteps`` (custom sigmas, ``mu``) is reproduced by ``timesteps_kwargs``.
        cfg: "batched" (cond and uncond rows in one call), "separate" (two calls per step), "distilled"
            (guidance embedding, one call) or "none".
        cfg_contexts: the ``transformer.cache_context`` names the pipeline wraps its calls in (one per call of a
            step), or ``None`` when it sets none.
        block_lists: the ``nn.ModuleList`` s of the main block stack in execution order (dotted paths);
            always_run: modules with blocks of their own that run before the stack (refiners, text stacks).
        head / head_same_shape / head_note: the module whose first positional input is the block-stack output,
            whether that input has the shape of the first block's hidden input, and what happens in between.
        block_io: per block list, a :class:`BlockIO`.
        notes: quirks.

    The remaining fields tell :func:`run_loop` how to replay the pipeline's calls.
    """

    name: str
    model_class: str
    pipeline: str
    tiny_config: Mapping[str, Any]
    make_inputs: Callable[..., dict]
    time_argument: str
    time_map: tuple[float, float]
    time_layout: str
    scheduler: str
    scheduler_kwargs: Mapping[str, Any]
    cfg: str
    cfg_contexts: tuple[str, ...] | None
    block_lists: tuple[str, ...]
    head: str
    head_same_shape: bool
    block_io: Mapping[str, BlockIO]
    always_run: tuple[str, ...] = ()
    head_note: str = ""
    notes: tuple[str, ...] = ()
    scheduler_note: str = ""
    # -- how run_loop drives it -------------------------------------------------------------------------------
    latent_keys: tuple[str, ...] = ("hidden_states",)
    positional: tuple[str, ...] = ()  # inputs the pipeline passes positionally, in order
    timesteps_kwargs: Callable[[Any, int, dict], dict] | None = None  # extra set_timesteps kwargs (sigmas, mu)
    time_fn: Callable[[Any, int], Any] | None = None  # (value, rows) -> tensor; default value.expand(rows)
    pack: Callable[[Any, dict], Any] | None = None  # (latents, inputs) -> value of latent_keys[0]
    unpack_latents: Callable[[dict], Any] | None = None  # inputs -> initial latents of latent_keys[0]
    unpack_output: Callable[[Any], tuple] | None = None  # model output -> predictions, one per latent key
    negate: bool = False  # the pipeline negates the model output before scheduler.step
    learned_sigma: bool = False  # the model outputs 2x channels; the pipeline keeps the first half
    scale_model_input: bool = False  # the pipeline calls scheduler.scale_model_input
    mu: bool = False  # the pipeline passes mu (dynamic shifting) to set_timesteps
    post_build: Callable[[Any], None] | None = None  # shrinks hard-coded oversized submodules of the tiny model
    tail_tokens: bool = False  # the output covers more tokens than the latents; the pipeline keeps the last ones
    cfg_order: str = "uncond_first"  # row order of batched CFG


# ---------------------------------------------------------------------------------------------------------------
# input helpers (shared layouts)
# ---------------------------------------------------------------------------------------------------------------


def _gen(seed: int):
    import torch

    return torch.Generator().manual_seed(int(seed))


def _randn(g, *shape):
    import torch

    return torch.randn(*shape, generator=g)


def _flux_img_ids(h: int, w: int):
    """FLUX.1-style 2-D ids ``(h*w, 3)``: (0, row, col)."""
    import torch

    ids = torch.zeros(h, w, 3)
    ids[..., 1] = torch.arange(h)[:, None]
    ids[..., 2] = torch.arange(w)[None, :]
    return ids.reshape(h * w, 3)


def _flux2_ids(batch: int, t: int, h: int, w: int, n: int):
    """FLUX.2-style 4-axis ids ``(batch, t*h*w*n, 4)`` (cartesian product of (t, h, w, l) with l in range(n))."""
    import torch

    ids = torch.cartesian_prod(torch.arange(t), torch.arange(h), torch.arange(w), torch.arange(n))
    return ids.unsqueeze(0).expand(batch, -1, -1).float()


def _packed(g, batch, channels, h, w):
    """FLUX-style packed latents: 2x2 patches folded into channels, ``(B, (h/2)*(w/2), 4*channels)``."""
    return _randn(g, batch, (h // 2) * (w // 2), channels * 4)


def _video(g, batch, channels, frames, h, w):
    """5-D video latents ``(B, C, F, H, W)``."""
    return _randn(g, batch, channels, frames, h, w)


def _t_expand(value, rows):
    """The pipelines' ``t.expand(batch)`` (dtype as the value has it)."""
    return value.reshape(()).expand(rows)


def _t_expand_float(value, rows):
    return value.reshape(()).float().expand(rows)


def _mu_linear(scheduler, seq_len: int) -> float:
    """diffusers' ``calculate_shift`` with the scheduler's config (FLUX, SD3, Chroma, Lumina2, QwenImage, LTX...)."""
    c = scheduler.config
    base_seq, max_seq = c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096)
    base_shift, max_shift = c.get("base_shift", 0.5), c.get("max_shift", 1.15)
    m = (max_shift - base_shift) / (max_seq - base_seq)
    return seq_len * m + (base_shift - m * base_seq)


def _flow_sigmas(steps: int):
    import numpy as np

    return np.linspace(1.0, 1 / steps, steps)


def _tk_flux(seq_len_of: Callable[[dict], int]):
    """``set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(image_seq_len))`` (FLUX, Chroma, Lumina2...)."""

    def kwargs(scheduler, steps, inputs):
        out = {"sigmas": _flow_sigmas(steps)}
        if scheduler.config.get("use_dynamic_shifting", False):
            out["mu"] = _mu_linear(scheduler, seq_len_of(inputs))
        return out

    return kwargs


def _tk_sigmas_to_zero(scheduler, steps, inputs):
    """``sigmas = linspace(1, 0, N + 1)[:-1]`` (HunyuanVideo, HunyuanImage, HunyuanVideo 1.5)."""
    import numpy as np

    return {"sigmas": np.linspace(1.0, 0.0, steps + 1)[:-1]}


def _seq_packed(inputs):
    return inputs["hidden_states"].shape[1]


def _seq_4d(patch):
    return lambda inputs: (inputs["hidden_states"].shape[-2] // patch) * (inputs["hidden_states"].shape[-1] // patch)


def _shrink_byt5(model) -> None:
    """The ByT5 text projection has a hard-coded 2048-wide hidden layer (4.2M parameters): rebuild it 32 wide."""
    old = model.context_embedder_2
    if old is not None:
        model.context_embedder_2 = type(old)(old.linear_1.in_features, 32, old.linear_3.out_features)


def _outputs(out) -> tuple:
    """A transformer's outputs as a tuple: ``.sample`` (and ``.audio_sample``) or the plain tuple."""
    if hasattr(out, "sample"):
        extra = getattr(out, "audio_sample", None)
        return (out.sample,) if extra is None else (out.sample, extra)
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)


# ---------------------------------------------------------------------------------------------------------------
# the families
# ---------------------------------------------------------------------------------------------------------------

FAMILIES: dict[str, FamilySpec] = {}
UNSUPPORTED: dict[str, str] = {}


def _register(spec: FamilySpec) -> FamilySpec:
    FAMILIES[spec.name] = spec
    return spec


_ENC_HID = ("encoder_hidden_states", "hidden_states")
_HID_ENC = ("hidden_states", "encoder_hidden_states")


# -- SD3 ----------------------------------------------------------------------------------------------------------


def _sd3_inputs(batch, seed, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "pooled_projections": _randn(g, batch, 16),
        "joint_attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="sd3",
    model_class="SD3Transformer2DModel",
    pipeline="StableDiffusion3Pipeline",
    tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                     num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=32,
                     pooled_projection_dim=16, out_channels=4, pos_embed_max_size=16),
    make_inputs=_sd3_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B) (batched rows)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
    scheduler_note="mu only if the scheduler config has use_dynamic_shifting (SD3.5: no)",
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("JointTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _ENC_HID, registered=True, metadata_ok=True,
                                            note="the last block (context_pre_only) returns (None, hidden)")},
    notes=("caption_projection_dim must equal heads*head_dim",
           "last JointTransformerBlock has context_pre_only=True and returns None for the encoder stream",
           "forward(skip_layers=...) (skip-layer guidance) skips blocks inside the model: the pipeline makes a "
           "third call per step when skip_guidance_layers is set"),
))


# -- FLUX.1 -------------------------------------------------------------------------------------------------------


def _flux_inputs(batch, seed, h=8, w=8, txt=8, guidance=3.5):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "guidance": torch.full([1], guidance).expand(batch),
        "pooled_projections": _randn(g, batch, 32),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "txt_ids": torch.zeros(txt, 3),
        "img_ids": _flux_img_ids(h // 2, w // 2),
        "joint_attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="flux",
    model_class="FluxTransformer2DModel",
    pipeline="FluxPipeline",
    tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
                     axes_dims_rope=(4, 4, 8)),
    make_inputs=_flux_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0),
    time_layout="t.expand(B) / 1000, float; the model multiplies by 1000",
    scheduler="FlowMatchEulerDiscreteScheduler",
    scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                          base_image_seq_len=256, max_image_seq_len=4096),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    scheduler_note="set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(image_seq_len))",
    cfg="distilled", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("FluxTransformerBlock", "hidden_states", "encoder_hidden_states", _ENC_HID,
                                      registered=True, metadata_ok=True),
        "single_transformer_blocks": BlockIO("FluxSingleTransformerBlock", "hidden_states", "encoder_hidden_states",
                                             _ENC_HID, registered=True, metadata_ok=True,
                                             note="concatenates text+image inside the block and splits again"),
    },
    notes=("FLUX.1-dev: guidance-distilled (guidance embedding, one call).  true_cfg_scale>1 with a negative "
           "prompt adds a second call; both calls are wrapped in cache_context('cond') / ('uncond')",
           "FLUX.1-schnell: guidance_embeds=False, cfg none",
           "controlnet residuals are added between blocks when controlnet_block_samples is passed"),
))


# -- FLUX.2 -------------------------------------------------------------------------------------------------------


def _flux2_inputs(batch, seed, h=8, w=8, txt=8, guidance=4.0):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 2, h, w),
        "guidance": torch.full([1], guidance).expand(batch),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "txt_ids": _flux2_ids(batch, 1, 1, 1, txt),
        "img_ids": _flux2_ids(batch, 1, h // 2, w // 2, 1),
        "joint_attention_kwargs": None,
        "return_dict": False,
    }


def _tk_flux2(scheduler, steps, inputs):
    from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu

    return {"sigmas": _flow_sigmas(steps), "mu": compute_empirical_mu(inputs["hidden_states"].shape[1], steps)}


_register(FamilySpec(
    name="flux2",
    model_class="Flux2Transformer2DModel",
    pipeline="Flux2Pipeline",
    tiny_config=dict(patch_size=1, in_channels=8, num_layers=1, num_single_layers=1, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=32, timestep_guidance_channels=32,
                     axes_dims_rope=(4, 4, 4, 4), guidance_embeds=True),
    make_inputs=_flux2_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0),
    time_layout="t.expand(B) / 1000, float; the model multiplies by 1000",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux2,
    scheduler_note="set_timesteps(sigmas=linspace(1, 1/N, N), mu=compute_empirical_mu(image_seq_len, N))",
    cfg="distilled", cfg_contexts=None,
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    head_note="text tokens are concatenated in front of the image tokens between the two lists "
              "(torch.cat([encoder, hidden], 1)); after the single blocks the model slices "
              "hidden[:, num_txt_tokens:] and feeds that to norm_out: same shape as the first block's hidden input",
    block_io={
        "transformer_blocks": BlockIO("Flux2TransformerBlock", "hidden_states", "encoder_hidden_states", _ENC_HID,
                                      registered=True, metadata_ok=True),
        "single_transformer_blocks": BlockIO("Flux2SingleTransformerBlock", "hidden_states", "encoder_hidden_states",
                                             "hidden_states", registered=True, metadata_ok=True,
                                             note="called with encoder_hidden_states=None on the joint [text, image] "
                                                  "stream; returns a bare tensor (a tuple only if "
                                                  "split_hidden_states)"),
    },
    notes=("single blocks run on the concatenated [text, image] sequence, so their hidden input is longer than "
           "the stack input",
           "ids are 4-axis (t, h, w, l) and 3-D (B, N, 4); the model drops the batch dim",
           "modulation (double_stream_modulation_img/txt, single_stream_modulation) is computed once, outside "
           "the blocks",
           "Flux2KleinPipeline (no guidance embedding) runs separate cond/uncond calls in "
           "cache_context('cond'/'uncond')",
           "image edit: reference latents are concatenated to hidden_states (token axis) and the prediction is "
           "sliced back noise_pred[:, :latents.size(1)]"),
))


# -- QwenImage ----------------------------------------------------------------------------------------------------


def _qwen_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "guidance": None,
        "encoder_hidden_states_mask": torch.ones(batch, txt, dtype=torch.long),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "img_shapes": [[(1, h // 2, w // 2)]] * batch,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="qwenimage",
    model_class="QwenImageTransformer2DModel",
    pipeline="QwenImagePipeline",
    tiny_config=dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4)),
    make_inputs=_qwen_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000, float",
    scheduler="FlowMatchEulerDiscreteScheduler",
    scheduler_kwargs=dict(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                          base_image_seq_len=256, max_image_seq_len=8192),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("QwenImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _ENC_HID, registered=True, metadata_ok=True)},
    notes=("true CFG only with a negative prompt and true_cfg_scale > 1; the combined prediction is renormalised "
           "to the cond prediction's norm",
           "img_shapes is a list (per sample) of lists of (frames, h/2, w/2); edit pipelines append the reference "
           "image's shape and concatenate its latents on the token axis",
           "zero_cond_t=True (edit-plus) doubles the timestep batch internally"),
))


# -- Z-Image ------------------------------------------------------------------------------------------------------


def _zimage_inputs(batch, seed, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "x": [_randn(g, 4, 1, h, w) for _ in range(batch)],
        "cap_feats": [_randn(g, txt, 16) for _ in range(batch)],
        "joint_attention_kwargs": None,
        "return_dict": False,
    }


def _zimage_pack(latents, inputs):
    return list(latents.unsqueeze(2).unbind(dim=0))


def _zimage_latents(inputs):
    import torch

    return torch.stack(inputs["x"], dim=0).squeeze(2)


def _zimage_output(out):
    import torch

    return (torch.stack([o.float() for o in out[0]], dim=0).squeeze(2),)


def _tk_zimage(scheduler, steps, inputs):
    h, w = inputs["x"][0].shape[-2:]
    return {"sigmas": _flow_sigmas(steps).tolist(), "mu": _mu_linear(scheduler, (h // 2) * (w // 2))}


_register(FamilySpec(
    name="zimage",
    model_class="ZImageTransformer2DModel",
    pipeline="ZImagePipeline",
    tiny_config=dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=2,
                     n_refiner_layers=1, n_heads=2, n_kv_heads=2, qk_norm=True, cap_feat_dim=16,
                     axes_dims=[8, 4, 4], axes_lens=[64, 32, 32]),
    make_inputs=_zimage_inputs,
    time_argument="t", time_map=(-1e-3, 1.0), time_layout="(1000 - t.expand(B)) / 1000; repeat(2) under CFG",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
    mu=True, timesteps_kwargs=_tk_zimage,
    scheduler_note="set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(seq)) (mu ignored unless dynamic)",
    cfg="batched", cfg_contexts=None,
    block_lists=("layers",), always_run=("noise_refiner", "context_refiner", "siglip_refiner"),
    head="all_final_layer.2-1", head_same_shape=True,
    head_note="the head is a ModuleDict entry keyed f'{patch_size}-{f_patch_size}'; its input is the unified "
              "[image, text] sequence, the same tensor layout the first layer receives",
    block_io={"layers": BlockIO("ZImageTransformerBlock", "x", None, "x", registered=True, metadata_ok=False,
                                called="positional",
                                note="forward(x, attn_mask, freqs_cis, adaln_input, ...): the hidden argument is "
                                     "named `x`, but the registry metadata says hidden_states_argument_name="
                                     "'hidden_states', so diffusers' FirstBlockCache raises 'Parameter "
                                     "hidden_states not found in function signature' on Z-Image")},
    latent_keys=("x",), positional=("x", "t", "cap_feats"),
    pack=_zimage_pack, unpack_latents=_zimage_latents, unpack_output=_zimage_output, negate=True,
    notes=("inputs are Python lists of per-sample tensors: x[i] is (C, 1, H, W), cap_feats[i] is (L_i, D)",
           "the pipeline calls transformer(x_list, t, cap_feats_list) positionally; output[0] is a list",
           "batched CFG concatenates the lists (cond first, then uncond) and repeats t; prediction is negated",
           "noise_refiner (image) and context_refiner (text) run before the main `layers` (always_run)",
           "guidance_scale <= 0 disables CFG (one call per step); cfg_truncation can drop CFG for late steps"),
))


# -- Chroma -------------------------------------------------------------------------------------------------------


def _chroma_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    n = (h // 2) * (w // 2)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "txt_ids": torch.zeros(txt, 3),
        "img_ids": _flux_img_ids(h // 2, w // 2),
        "attention_mask": torch.ones(batch, txt + n, dtype=torch.bool),
        "joint_attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="chroma",
    model_class="ChromaTransformer2DModel",
    pipeline="ChromaPipeline",
    tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8),
                     approximator_num_channels=8, approximator_hidden_dim=16, approximator_layers=1),
    make_inputs=_chroma_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000, float",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=None,
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    head_note="text is concatenated in front of the image between the lists; the model slices "
              "hidden[:, txt_len:] before norm_out",
    block_io={
        "transformer_blocks": BlockIO("ChromaTransformerBlock", "hidden_states", "encoder_hidden_states", _ENC_HID,
                                      registered=False),
        "single_transformer_blocks": BlockIO("ChromaSingleTransformerBlock", "hidden_states", None, "hidden_states",
                                             registered=False,
                                             note="takes no encoder_hidden_states: runs on the joint [text, image] "
                                                  "stream, returns a bare tensor"),
    },
    notes=("separate cond/uncond calls WITHOUT cache_context (the pipeline never sets one)",
           "per-block modulation is sliced from one pooled_temb computed by distilled_guidance_layer",
           "attention_mask covers text + image tokens (B, L_txt + N_img)"),
))


# -- HiDream ------------------------------------------------------------------------------------------------------


def _hidream_inputs(batch, seed, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states_t5": _randn(g, batch, txt, 8),
        "encoder_hidden_states_llama3": _randn(g, 2, batch, txt, 4),
        "pooled_embeds": _randn(g, batch, 8),
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="hidream",
    model_class="HiDreamImageTransformer2DModel",
    pipeline="HiDreamImagePipeline",
    tiny_config=dict(patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=1,
                     attention_head_dim=8, num_attention_heads=4, caption_channels=[8, 4], text_emb_dim=8,
                     num_routed_experts=2, num_activated_experts=2, axes_dims_rope=(4, 2, 2),
                     max_resolution=(32, 32), llama_layers=(0, 1)),
    make_inputs=_hidream_inputs,
    time_argument="timesteps", time_map=(1.0, 0.0), time_layout="t.expand(2B) (batched rows)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
    scheduler_note="pipeline passes mu=calculate_shift(transformer.max_seq) (used only with dynamic shifting)",
    cfg="batched", cfg_contexts=None,
    block_lists=("double_stream_blocks", "single_stream_blocks"), head="final_layer", head_same_shape=True,
    head_note="between the lists the text stream is appended after the image tokens; every single block gets "
              "one more Llama layer appended and the model slices back to the pre-block length after it; before "
              "final_layer the model slices hidden[:, :image_tokens]",
    block_io={
        "double_stream_blocks": BlockIO("HiDreamBlock", "hidden_states", "encoder_hidden_states", _HID_ENC,
                                        registered=False,
                                        note="wraps HiDreamImageTransformerBlock; its encoder input is "
                                             "[t5+llama_last, llama_k] and the model truncates the returned encoder"),
        "single_stream_blocks": BlockIO("HiDreamBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                        registered=False,
                                        note="wraps HiDreamImageSingleTransformerBlock; called with "
                                             "encoder_hidden_states=None on [image, text, llama_k]"),
    },
    negate=True,
    notes=("argument is `timesteps` (plural)",
           "encoder_hidden_states_llama3 is stacked per Llama layer: (n_layers, B, L, D); block k reads layer "
           "llama_layers[k], so each block sees a different text input",
           "the pipeline negates the model output",
           "MoE feed-forward (routed experts) in the blocks"),
))


# -- Lumina2 ------------------------------------------------------------------------------------------------------


def _lumina2_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "encoder_attention_mask": torch.ones(batch, txt, dtype=torch.bool),
        "return_dict": False,
        "attention_kwargs": None,
    }


_register(FamilySpec(
    name="lumina2",
    model_class="Lumina2Transformer2DModel",
    pipeline="Lumina2Pipeline",
    tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2, num_refiner_layers=1,
                     num_attention_heads=3, num_kv_heads=1, multiple_of=2, axes_dim_rope=(4, 2, 2),
                     axes_lens=(64, 32, 32), cap_feat_dim=32),
    make_inputs=_lumina2_inputs,
    time_argument="timestep", time_map=(-1e-3, 1.0), time_layout="(1 - t / 1000).expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=6.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_4d(2)),
    cfg="separate", cfg_contexts=None,
    block_lists=("layers",), always_run=("context_refiner", "noise_refiner"),
    head="norm_out", head_same_shape=True,
    head_note="the stack runs on the joint [text, image] sequence built after the refiners; norm_out gets it "
              "whole (the model slices the image tokens out after the head)",
    block_io={"layers": BlockIO("Lumina2TransformerBlock", "hidden_states", None, "hidden_states",
                                registered=False, called="positional",
                                note="layer(hidden, attention_mask, rotary_emb, temb)")},
    negate=True,
    notes=("separate cond/uncond calls WITHOUT cache_context",
           "cfg_trunc_ratio: the uncond call is dropped once (i+1)/N > cfg_trunc_ratio (default 1.0: never)",
           "the pipeline negates the model output"),
))


# -- Sana ---------------------------------------------------------------------------------------------------------


def _sana_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "return_dict": False,
        "attention_kwargs": None,
    }


_register(FamilySpec(
    name="sana",
    model_class="SanaTransformer2DModel",
    pipeline="SanaPipeline",
    tiny_config=dict(patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                     num_attention_heads=2, num_cross_attention_heads=2, cross_attention_head_dim=8,
                     cross_attention_dim=16, caption_channels=16, sample_size=8),
    make_inputs=_sana_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(2B) * transformer.config.timestep_scale (1.0 for Sana; Sana-Sprint differs)",
    scheduler="DPMSolverMultistepScheduler",
    scheduler_kwargs=dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is SanaModulatedNorm, called (hidden, embedded_timestep, scale_shift_table)",
    block_io={"transformer_blocks": BlockIO("SanaTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=False, called="positional",
                                            note="block(hidden, attention_mask, encoder, encoder_mask, timestep, "
                                                 "h, w)")},
    positional=("hidden_states",),
    notes=("the time value is multiplied by transformer.config.timestep_scale in the pipeline",
           "if out_channels // 2 == latent channels the pipeline keeps the first half"),
))


# -- HunyuanDiT ---------------------------------------------------------------------------------------------------


def _hunyuandit_inputs(batch, seed, h=8, w=8, txt=6, txt_t5=6):
    import torch
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.pipelines.hunyuandit.pipeline_hunyuandit import get_resize_crop_region_for_grid

    g = _gen(seed)
    grid = (h // 2, w // 2)
    crops = get_resize_crop_region_for_grid(grid, 512 // 8 // 2)
    rope = get_2d_rotary_pos_embed(8, crops, grid, output_type="pt")
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "text_embedding_mask": torch.ones(batch, txt, dtype=torch.long),
        "encoder_hidden_states_t5": _randn(g, batch, txt_t5, 16),
        "text_embedding_mask_t5": torch.ones(batch, txt_t5, dtype=torch.long),
        "image_meta_size": torch.tensor([[64.0, 64.0, 64.0, 64.0, 0.0, 0.0]] * batch),
        "style": torch.zeros(batch, dtype=torch.long),
        "image_rotary_emb": rope,
        "return_dict": False,
    }


_register(FamilySpec(
    name="hunyuandit",
    model_class="HunyuanDiT2DModel",
    pipeline="HunyuanDiTPipeline",
    tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_layers=4, attention_head_dim=8,
                     num_attention_heads=2, cross_attention_dim=16, cross_attention_dim_t5=16, pooled_projection_dim=8,
                     hidden_size=16, text_len=6, text_len_t5=6, activation_fn="gelu-approximate"),
    make_inputs=_hunyuandit_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="torch.tensor([t] * 2B), latent dtype; positional arg 1",
    scheduler="DDPMScheduler",
    scheduler_kwargs=dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.018,
                          prediction_type="v_prediction", clip_sample=False, steps_offset=1),
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    block_io={"blocks": BlockIO("HunyuanDiTBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False,
                                note="blocks in the second half take skip= (a long skip connection to the output "
                                     "of a first-half block)")},
    positional=("hidden_states", "timestep"), learned_sigma=True, time_fn=_t_expand_float,
    notes=("U-Net-like long skips: blocks 0..L/2-2 push their outputs on a stack, blocks L/2+1.. pop one and "
           "receive it as `skip=` (a skipped block's pushed output is then its input)",
           "learn_sigma=True: 2x output channels, the pipeline keeps the first half",
           "the pipeline passes hidden_states and the timestep positionally"),
))


# -- AuraFlow -----------------------------------------------------------------------------------------------------


def _auraflow_inputs(batch, seed, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "return_dict": False,
        "attention_kwargs": None,
    }


_register(FamilySpec(
    name="auraflow",
    model_class="AuraFlowTransformer2DModel",
    pipeline="AuraFlowPipeline",
    tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=1,
                     attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
                     out_channels=4, pos_embed_max_size=64),
    make_inputs=_auraflow_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="torch.tensor([t / 1000]).expand(2B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=1.73),
    cfg="batched", cfg_contexts=None,
    block_lists=("joint_transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    head_note="text (with register tokens prepended) is concatenated in front of the image between the lists; "
              "the model slices combined[:, encoder_seq_len:] before norm_out",
    block_io={
        "joint_transformer_blocks": BlockIO("AuraFlowJointTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _ENC_HID, registered=False),
        "single_transformer_blocks": BlockIO("AuraFlowSingleTransformerBlock", "hidden_states", None,
                                             "hidden_states", registered=False,
                                             note="runs on the joint [text, image] stream"),
    },
    positional=("hidden_states",),
    notes=("register_tokens are prepended to the text stream before the blocks",),
))


# -- CogView4 -----------------------------------------------------------------------------------------------------


def _cogview4_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    size = torch.tensor([[h * 8, w * 8]] * batch, dtype=torch.float32)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 8),
        "original_size": size,
        "target_size": size.clone(),
        "crop_coords": torch.zeros(batch, 2),
        "attention_kwargs": None,
        "return_dict": False,
    }


def _tk_cogview4(scheduler, steps, inputs):
    import numpy as np

    n = scheduler.config.num_train_timesteps
    ts = np.linspace(n, 1.0, steps).astype(np.int64).astype(np.float32)
    h, w = inputs["hidden_states"].shape[-2:]
    seq = (h // 2) * (w // 2)
    c = scheduler.config
    mu = (seq / c.get("base_image_seq_len", 256)) ** 0.5 * c.get("max_shift", 0.75) + c.get("base_shift", 0.25)
    return {"timesteps": ts, "sigmas": ts / n, "mu": mu}


_register(FamilySpec(
    name="cogview4",
    model_class="CogView4Transformer2DModel",
    pipeline="CogView4Pipeline",
    tiny_config=dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                     out_channels=4, text_embed_dim=8, time_embed_dim=8, condition_dim=4, rope_axes_dim=(4, 4)),
    make_inputs=_cogview4_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler",
    scheduler_kwargs=dict(base_shift=0.25, max_shift=0.75, base_image_seq_len=256, use_dynamic_shifting=True,
                          time_shift_type="linear"),
    mu=True, timesteps_kwargs=_tk_cogview4,
    scheduler_note="set_timesteps(timesteps=linspace(1000, 1, N), sigmas=timesteps/1000, mu=sqrt(seq/256)*0.75+0.25)",
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("CogView4TransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _HID_ENC, registered=True, metadata_ok=True, called="positional")},
    notes=("blocks are called positionally: block(hidden, encoder, temb, rotary, attention_mask, kwargs)",),
))


# -- HunyuanImage 2.1 ---------------------------------------------------------------------------------------------


def _hunyuanimage_inputs(batch, seed, h=8, w=8, txt=8, txt2=4):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "timestep_r": None,
        "guidance": None,
        "attention_kwargs": None,
        "return_dict": False,
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "encoder_hidden_states_2": _randn(g, batch, txt2, 8),
        "encoder_attention_mask_2": torch.ones(batch, txt2),
    }


_register(FamilySpec(
    name="hunyuanimage",
    model_class="HunyuanImageTransformer2DModel",
    pipeline="HunyuanImagePipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
                     num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=(1, 1),
                     text_embed_dim=16, text_embed_2_dim=8, rope_axes_dim=(4, 4)),
    make_inputs=_hunyuanimage_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B), latent dtype",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=5.0),
    timesteps_kwargs=_tk_sigmas_to_zero, scheduler_note="set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])",
    cfg="separate", cfg_contexts=("pred_cond", "pred_uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), always_run=("context_embedder",),
    head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("HunyuanImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _HID_ENC, registered=True, metadata_ok=True, called="positional"),
        "single_transformer_blocks": BlockIO("HunyuanImageSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _HID_ENC, registered=True, metadata_ok=True,
                                             called="positional",
                                             note="concatenates and splits text/image inside the block"),
    },
    notes=("guidance goes through a diffusers Guider (AdaptiveProjectedMixGuidance): one call per guider batch, "
           "each in cache_context(<guider identifier>) = 'pred_cond' / 'pred_uncond'",
           "the distilled checkpoint (guidance_embeds=True) runs one call with guidance=distilled_guidance_scale*1000"
           " and the guider disabled; use_meanflow checkpoints also pass timestep_r = next timestep",
           "context_embedder is a token refiner (HunyuanImageTokenRefiner, with its own blocks) that always runs",
           "tiny_transformer rebuilds context_embedder_2 (ByT5 projection, hidden width hard-coded to 2048) 32 wide"),
    post_build=_shrink_byt5,
))


# -- HunyuanVideo -------------------------------------------------------------------------------------------------


def _hunyuanvideo_inputs(batch, seed, f=2, h=8, w=8, txt=8, guidance=6.0):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "pooled_projections": _randn(g, batch, 8),
        "guidance": torch.tensor([guidance] * batch) * 1000.0,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="hunyuanvideo",
    model_class="HunyuanVideoTransformer3DModel",
    pipeline="HunyuanVideoPipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
                     num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
                     text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4)),
    make_inputs=_hunyuanvideo_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B), latent dtype",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=7.0),
    timesteps_kwargs=_tk_sigmas_to_zero, scheduler_note="set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])",
    cfg="distilled", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), always_run=("context_embedder",),
    head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("HunyuanVideoTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _HID_ENC, registered=True, metadata_ok=True, called="positional"),
        "single_transformer_blocks": BlockIO("HunyuanVideoSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _HID_ENC, registered=True, metadata_ok=True,
                                             called="positional"),
    },
    notes=("guidance-distilled: guidance = guidance_scale * 1000 in one call in cache_context('cond'); "
           "true_cfg_scale > 1 with a negative prompt adds an uncond call in cache_context('uncond')",
           "blocks are called positionally (hidden, encoder, temb, attention_mask, rotary, token_replace_emb, "
           "first_frame_num_tokens)",
           "context_embedder is a token refiner with its own transformer blocks (always runs)"),
))


# -- HunyuanVideo 1.5 ---------------------------------------------------------------------------------------------


def _hv15_inputs(batch, seed, f=2, h=8, w=8, txt=6, txt2=4, img=3):
    import torch

    g = _gen(seed)
    lat = _video(g, batch, 4, f, h, w)
    return {
        "hidden_states": _hv15_pack(lat, None),
        "image_embeds": torch.zeros(batch, img, 8),
        "attention_kwargs": None,
        "return_dict": False,
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "encoder_hidden_states_2": _randn(g, batch, txt2, 8),
        "encoder_attention_mask_2": torch.ones(batch, txt2),
    }


def _hv15_pack(latents, inputs):
    """t2v: ``cat([latents, cond_latents (zeros), mask (zeros)], dim=1)``."""
    import torch

    b, c, f, h, w = latents.shape
    return torch.cat([latents, latents.new_zeros(b, c, f, h, w), latents.new_zeros(b, 1, f, h, w)], dim=1)


def _hv15_latents(inputs):
    return inputs["hidden_states"][:, : (inputs["hidden_states"].shape[1] - 1) // 2]


_register(FamilySpec(
    name="hunyuanvideo15",
    model_class="HunyuanVideo15Transformer3DModel",
    pipeline="HunyuanVideo15Pipeline",
    tiny_config=dict(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                     num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
                     text_embed_2_dim=8, image_embed_dim=8, rope_axes_dim=(2, 2, 4), target_size=16, task_type="t2v"),
    make_inputs=_hv15_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B), latent dtype",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=5.0),
    timesteps_kwargs=_tk_sigmas_to_zero, scheduler_note="set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])",
    cfg="separate", cfg_contexts=("pred_cond", "pred_uncond"),
    block_lists=("transformer_blocks",), always_run=("context_embedder",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("HunyuanVideo15TransformerBlock", "hidden_states",
                                            "encoder_hidden_states", _HID_ENC, registered=False, called="positional")},
    pack=_hv15_pack, unpack_latents=_hv15_latents, post_build=_shrink_byt5,
    notes=("tiny_transformer rebuilds context_embedder_2 (ByT5 projection, hidden width hard-coded to 2048) "
           "32 wide to stay tiny",
           "hidden_states = cat([latents, cond_latents, mask], dim=1): in_channels = 2*C + 1 (zeros for t2v)",
           "guidance through a ClassifierFreeGuidance guider: calls in cache_context('pred_cond'/'pred_uncond')",
           "image_embeds all-zero means t2v (the image tokens are masked out)"),
))


# -- CogVideoX ----------------------------------------------------------------------------------------------------


def _cogvideox_inputs(batch, seed, f=2, h=8, w=8):
    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, f, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, 8, 8),
        "image_rotary_emb": None,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="cogvideox",
    model_class="CogVideoXTransformer3DModel",
    pipeline="CogVideoXPipeline",
    tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
                     text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2,
                     patch_size_t=None, temporal_compression_ratio=4, max_text_seq_length=8),
    make_inputs=_cogvideox_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B) (int64 from the DDIM-style scheduler)",
    scheduler="CogVideoXDDIMScheduler",
    scheduler_kwargs=dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
                          timestep_spacing="trailing"),
    scale_model_input=True,
    cfg="batched", cfg_contexts=("cond_uncond",),
    block_lists=("transformer_blocks",), head="norm_final", head_same_shape=True,
    head_note="norm_final (a LayerNorm) receives the stack output; norm_out (AdaLayerNorm) follows it",
    block_io={"transformer_blocks": BlockIO("CogVideoXBlock", "hidden_states", "encoder_hidden_states", _HID_ENC,
                                            registered=True, metadata_ok=True)},
    notes=("latents are frame-major (B, F, C, H, W), unlike most video models",
           "batched CFG inside cache_context('cond_uncond')",
           "patch_embed embeds text and video together and the model splits them before the blocks",
           "checkpoints with use_rotary_positional_embeddings get image_rotary_emb from the pipeline",
           "use_dynamic_cfg changes the guidance scale per step"),
))


# -- LTX-Video ----------------------------------------------------------------------------------------------------


def _ltx_inputs(batch, seed, f=2, h=4, w=4, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, f * h * w, 4),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "num_frames": f,
        "height": h,
        "width": w,
        "rope_interpolation_scale": (8 / 25, 32, 32),
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="ltx",
    model_class="LTXVideoTransformer3DModel",
    pipeline="LTXPipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
                     num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=16),
    make_inputs=_ltx_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="FlowMatchEulerDiscreteScheduler",
    scheduler_kwargs=dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                          max_image_seq_len=4096),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="batched", cfg_contexts=("cond_uncond",),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is a plain LayerNorm; the model applies scale_shift_table modulation after it",
    block_io={"transformer_blocks": BlockIO("LTXVideoTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=True, metadata_ok=True)},
    notes=("latents are packed tokens (B, F*H*W, C) (patch size 1); num_frames/height/width are latent sizes",
           "LTXConditionPipeline/image2video pass a per-token timestep (B, N) for conditioning frames"),
))


# -- LTX-2 (audio + video) ----------------------------------------------------------------------------------------


def _ltx2_inputs(batch, seed, f=2, h=4, w=4, audio_frames=5, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, f * h * w, 4),
        "audio_hidden_states": _randn(g, batch, audio_frames, 4),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "audio_encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "audio_encoder_attention_mask": torch.ones(batch, txt),
        "num_frames": f,
        "height": h,
        "width": w,
        "fps": 24.0,
        "audio_num_frames": audio_frames,
        "isolate_modalities": False,
        "spatio_temporal_guidance_blocks": None,
        "perturbation_mask": None,
        "use_cross_timestep": False,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="ltx2",
    model_class="LTX2VideoTransformer3DModel",
    pipeline="LTX2Pipeline",
    tiny_config=dict(in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
                     attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
                     audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
                     num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=16,
                     rope_double_precision=False),
    make_inputs=_ltx2_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(2B); the same tensor is also passed as sigma= (LTX-2.3 prompt AdaLN)",
    scheduler="FlowMatchEulerDiscreteScheduler",
    scheduler_kwargs=dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                          max_image_seq_len=4096),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    scheduler_note="a copy of the scheduler steps the audio latents",
    cfg="batched", cfg_contexts=("cond_uncond",),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="TWO streams: norm_out gets the video stream (same shape as the first block's hidden input); the "
              "audio stream leaves the stack into audio_norm_out, which a single-head cache does not cover",
    block_io={"transformer_blocks": BlockIO("LTX2VideoTransformerBlock", "hidden_states", "audio_hidden_states",
                                            ("hidden_states", "audio_hidden_states"), registered=False,
                                            note="returns (video, audio); text streams are not updated by the blocks")},
    latent_keys=("hidden_states", "audio_hidden_states"),
    notes=("joint audio-video model: two latent streams, two outputs (video, audio), two heads "
           "(norm_out, audio_norm_out): caching the stack needs both residuals",
           "the pipeline passes timestep and sigma=timestep (two time arguments); audio_timestep defaults to timestep",
           "optional extra calls per step in cache_context('uncond_stg') and ('uncond_modality') for STG / "
           "modality-isolation guidance",
           "guidance is combined in x0 space (convert_velocity_to_x0); equivalent to plain CFG on velocities"),
))


# -- Mochi --------------------------------------------------------------------------------------------------------


def _mochi_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt, dtype=torch.bool),
        "attention_kwargs": None,
        "return_dict": False,
    }


def _tk_mochi(scheduler, steps, inputs):
    import numpy as np
    from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule

    return {"sigmas": np.array(linear_quadratic_schedule(steps, 0.025))}


_register(FamilySpec(
    name="mochi",
    model_class="MochiTransformer3DModel",
    pipeline="MochiPipeline",
    tiny_config=dict(patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
                     in_channels=4, qk_norm="rms_norm", text_embed_dim=16, time_embed_dim=4,
                     activation_fn="swiglu", max_sequence_length=16),
    make_inputs=_mochi_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(2B), latent dtype; with the hub scheduler (invert_sigmas=True) t = 1000 * (1 - sigma)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(invert_sigmas=True),
    timesteps_kwargs=_tk_mochi, scheduler_note="set_timesteps(sigmas=linear_quadratic_schedule(N, 0.025))",
    cfg="batched", cfg_contexts=("cond_uncond",),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("MochiTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _HID_ENC, registered=True, metadata_ok=True,
                                            note="the last block (context_pre_only) returns the encoder input "
                                                 "unchanged")},
    notes=("the pipeline passes t itself; the scheduler is inverted (invert_sigmas=True) so t already equals "
           "1000 - 1000*sigma (pipeline._current_timestep = 1000 - t is only bookkeeping)",
           "batched CFG inside cache_context('cond_uncond')"),
))


# -- SkyReels-V2 --------------------------------------------------------------------------------------------------


def _skyreels_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "attention_kwargs": None,
        "return_dict": False,
    }


_WAN_NOTE = "blocks are called positionally: block(hidden, encoder, timestep_proj, rotary_emb)"

_register(FamilySpec(
    name="skyreels_v2",
    model_class="SkyReelsV2Transformer3DModel",
    pipeline="SkyReelsV2Pipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                     out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32),
    make_inputs=_skyreels_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="UniPCMultistepScheduler",
    scheduler_kwargs=dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is a plain LayerNorm; scale_shift_table modulation is applied by the model after it",
    block_io={"blocks": BlockIO("SkyReelsV2TransformerBlock", "hidden_states", "encoder_hidden_states",
                                "hidden_states", registered=False, called="positional", note=_WAN_NOTE)},
    notes=("diffusion-forcing pipelines pass a per-frame timestep (B, F) and enable_diffusion_forcing=True",),
))


# -- Cosmos (1.0 text-to-world) -----------------------------------------------------------------------------------


def _cosmos_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "fps": 30,
        "padding_mask": torch.zeros(1, 1, h, w),
        "return_dict": False,
    }


_register(FamilySpec(
    name="cosmos",
    model_class="CosmosTransformer3DModel",
    pipeline="CosmosTextToWorldPipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
                     mlp_ratio=2, text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
                     rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable"),
    make_inputs=_cosmos_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(B) where t = EDM precondition_noise(sigma) = 0.25*log(sigma)",
    scheduler="EDMEulerScheduler",
    scheduler_kwargs=dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, sigma_schedule="karras", rho=7.0,
                          prediction_type="epsilon", final_sigmas_type="sigma_min"),
    scale_model_input=True,
    cfg="separate", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("CosmosTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=False, called="positional",
                                            note="block(hidden, encoder, embedded_timestep, temb, rotary, "
                                                 "extra_pos_emb, attention_mask, controlnet_residual)")},
    notes=("tiny config uses concat_padding_mask=False: the real checkpoints set it True, which resizes the "
           "padding mask with torchvision (not installable here)",
           "separate cond/uncond calls WITHOUT cache_context; guidance is applied to the x0 prediction and the "
           "EDM step is taken twice (scheduler._step_index -= 1)",
           "Cosmos 2 (Cosmos2TextToImagePipeline) passes timestep = sigma / (sigma + 1) (not affine in t) and "
           "scales the input by c_in; Cosmos 2.5 passes sigma (per frame (B,1,T,1,1) when conditioning frames)"),
))


# -- Wan VACE -----------------------------------------------------------------------------------------------------


def _wan_vace_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "control_hidden_states": _video(g, batch, 8, f, h, w),
        "control_hidden_states_scale": None,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="wan_vace",
    model_class="WanVACETransformer3DModel",
    pipeline="WanVACEPipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                     out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 1], vace_in_channels=8),
    make_inputs=_wan_vace_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=5.0),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("vace_blocks", "blocks"), head="norm_out", head_same_shape=True,
    head_note="all vace_blocks run first (on the control stream, reading the main hidden stream); their hints are "
              "added to the main stream after blocks vace_layers[i]",
    block_io={
        "vace_blocks": BlockIO("WanVACETransformerBlock", "hidden_states", "encoder_hidden_states",
                               ("zeros:control_hidden_states", "control_hidden_states"), registered=False,
                               called="positional",
                               note="block(hidden, encoder, control, temb, rotary) -> (hint, control); the hidden "
                                    "stream is only read; a skipped VACE block must return a zero hint"),
        "blocks": BlockIO("WanTransformerBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                          registered=True, metadata_ok=True, called="positional", note=_WAN_NOTE),
    },
    notes=("the VACE branch is part of the stack (it depends on the hidden stream and is as costly as the main "
           "blocks); the first block is vace_blocks[0], whose hidden_states is the stack input",
           "control_hidden_states = conditioning latents (video + mask), fixed over the loop",
           "Wan2.2 VACE can switch to transformer_2 below boundary_ratio"),
))


# -- Allegro ------------------------------------------------------------------------------------------------------


def _allegro_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch
    from diffusers.models.embeddings import get_3d_rotary_pos_embed_allegro

    g = _gen(seed)
    freqs_t, freqs_h, freqs_w, grid_t, grid_h, grid_w = get_3d_rotary_pos_embed_allegro(
        embed_dim=12, crops_coords=((0, 0), (h // 2, w // 2)), grid_size=(h // 2, w // 2), temporal_size=f,
        interpolation_scale=(2.2, 2.0, 2.0))
    pos = torch.cartesian_prod(grid_t.long(), grid_h.long(), grid_w.long()).reshape(-1, 3).transpose(0, 1)
    grid_t, grid_h, grid_w = pos.reshape(3, 1, -1).contiguous()
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 8),
        "encoder_attention_mask": torch.ones(batch, txt),
        "image_rotary_emb": ((freqs_t, freqs_h, freqs_w), (grid_t, grid_h, grid_w)),
        "return_dict": False,
    }


_register(FamilySpec(
    name="allegro",
    model_class="AllegroTransformer3DModel",
    pipeline="AllegroPipeline",
    tiny_config=dict(num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=2,
                     cross_attention_dim=24, sample_width=8, sample_height=8, sample_frames=8, caption_channels=8),
    make_inputs=_allegro_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="EulerAncestralDiscreteScheduler", scheduler_kwargs=dict(),
    scheduler_note="pipeline type hint: KarrasDiffusionSchedulers",
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("AllegroTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=False)},
))


# -- Latte --------------------------------------------------------------------------------------------------------


def _latte_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 8),
        "enable_temporal_attentions": True,
        "return_dict": False,
    }


_register(FamilySpec(
    name="latte",
    model_class="LatteTransformer3DModel",
    pipeline="LattePipeline",
    tiny_config=dict(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2,
                     caption_channels=8, in_channels=4, cross_attention_dim=16, out_channels=8, attention_bias=True,
                     activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
                     norm_elementwise_affine=False, norm_eps=1e-6, video_length=2),
    make_inputs=_latte_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="DDIMScheduler", scheduler_kwargs=dict(beta_schedule="linear", clip_sample=False),
    scheduler_note="pipeline type hint: KarrasDiffusionSchedulers",
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks", "temporal_transformer_blocks"), head="norm_out", head_same_shape=True,
    head_note="the two lists are INTERLEAVED (spatial[0], temporal[0], spatial[1], ...), with reshapes "
              "(B*F, N, D) <-> (B*N, F, D) between them and temp_pos_embed added before temporal[0]; norm_out "
              "gets (B*F, N, D), the layout of the first spatial block's input",
    block_io={
        "transformer_blocks": BlockIO("BasicTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      "hidden_states", registered=True, metadata_ok=True, called="positional"),
        "temporal_transformer_blocks": BlockIO("BasicTransformerBlock", "hidden_states", None, "hidden_states",
                                               registered=True, metadata_ok=True, called="positional",
                                               note="runs on the (B*N, F, D) layout"),
    },
    learned_sigma=True,
    notes=("block execution order interleaves the two lists; the stack input is the first spatial block's "
           "(B*F, N, D) input",
           "temp_pos_embed is added between spatial[0] and temporal[0] (inside the stack)",
           "the model needs frames == video_length when frames > 1 (temp_pos_embed)",
           "learned sigma: the pipeline keeps the first half of the output channels"),
))


# -- Bria ---------------------------------------------------------------------------------------------------------


def _bria_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "attention_kwargs": None,
        "return_dict": False,
        "txt_ids": torch.zeros(txt, 3),
        "img_ids": _flux_img_ids(h // 2, w // 2),
    }


_register(FamilySpec(
    name="bria",
    model_class="BriaTransformer2DModel",
    pipeline="BriaPipeline",
    tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
                     num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=None,
                     axes_dims_rope=[0, 4, 4]),
    make_inputs=_bria_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B) (raw 0..1000, no /1000)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("BriaTransformerBlock", "hidden_states", "encoder_hidden_states", _ENC_HID,
                                      registered=True, metadata_ok=False,
                                      note="registry says hidden at index 0, encoder None: wrong, the block "
                                           "returns (encoder, hidden)"),
        "single_transformer_blocks": BlockIO("BriaSingleTransformerBlock", "hidden_states", "encoder_hidden_states",
                                             _ENC_HID, registered=False),
    },
    notes=("FLUX-like, but the pipeline passes raw t (no /1000) and batches cond/uncond",
           "TransformerBlockRegistry metadata for BriaTransformerBlock is wrong (index 0 is the encoder stream)"),
))


# -- DiT ----------------------------------------------------------------------------------------------------------


def _dit_inputs(batch, seed, h=8, w=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "class_labels": torch.randint(0, 1000, (batch,), generator=g),
    }


_register(FamilySpec(
    name="dit",
    model_class="DiTTransformer2DModel",
    pipeline="DiTPipeline",
    tiny_config=dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                     sample_size=8, patch_size=2, num_embeds_ada_norm=1000),
    make_inputs=_dit_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B) (int64)",
    scheduler="DDIMScheduler", scheduler_kwargs=dict(),
    scheduler_note="pipeline type hint: KarrasDiffusionSchedulers (docstring: DDIMScheduler)",
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is a plain LayerNorm; conditioning for the output modulation is recomputed with "
              "transformer_blocks[0].norm1.emb(...) AFTER the stack",
    block_io={"transformer_blocks": BlockIO("BasicTransformerBlock", "hidden_states", None, "hidden_states",
                                            registered=True, metadata_ok=True)},
    positional=("hidden_states",), learned_sigma=True,
    notes=("the head calls a block's submodule outside the block: transformer_blocks[0].norm1.emb",
           "the pipeline reads `.sample` (return_dict=True) and uses class id 1000 as the null class for CFG, "
           "so num_embeds_ada_norm must be >= 1000 with guidance",
           "learned sigma: the pipeline keeps the first half of the output channels (CFG only on eps)"),
))


# -- PixArt -------------------------------------------------------------------------------------------------------


def _pixart_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "encoder_attention_mask": torch.ones(batch, txt),
        "added_cond_kwargs": {"resolution": None, "aspect_ratio": None},
        "return_dict": False,
    }


_register(FamilySpec(
    name="pixart",
    model_class="PixArtTransformer2DModel",
    pipeline="PixArtSigmaPipeline",
    tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
                     cross_attention_dim=16, sample_size=8, patch_size=2, caption_channels=32,
                     norm_type="ada_norm_single", use_additional_conditions=False),
    make_inputs=_pixart_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="DPMSolverMultistepScheduler", scheduler_kwargs=dict(),
    scheduler_note="pipeline type hint: KarrasDiffusionSchedulers",
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is a plain LayerNorm; scale_shift_table modulation follows it",
    block_io={"transformer_blocks": BlockIO("BasicTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=True, metadata_ok=True)},
    positional=("hidden_states",), learned_sigma=True,
    notes=("PixArtAlphaPipeline calls the model the same way (use_additional_conditions for 1024px alpha)",),
))


# -- Wan 2.1 / 2.2 ------------------------------------------------------------------------------------------------


def _wan_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 16, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="wan",
    model_class="WanTransformer3DModel",
    pipeline="WanPipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                     out_channels=16, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32),
    make_inputs=_wan_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(B); Wan2.2 TI2V (expand_timesteps) passes a per-token (B, N) timestep",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=5.0),
    scheduler_note="hub checkpoints ship UniPCMultistepScheduler(flow_prediction, use_flow_sigmas, flow_shift)",
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    head_note="norm_out is a plain FP32LayerNorm; scale_shift_table modulation follows it",
    block_io={"blocks": BlockIO("WanTransformerBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=True, metadata_ok=True, called="positional", note=_WAN_NOTE)},
    notes=("cache_context('cond'/'uncond', step_index=i, sigma=scheduler.sigmas[i], num_inference_steps=N): "
           "diffusers 0.42 passes the step position in the context",
           "Wan2.2 A14B switches from transformer to transformer_2 when t < boundary_ratio * 1000 (two models, "
           "one loop)"),
))


# ===============================================================================================================
# further families (beyond the required 28)
# ===============================================================================================================


# -- ChronoEdit (Wan-based image editing as a 2-frame video) ------------------------------------------------------


def _chronoedit_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    lat = _video(g, batch, 4, f, h, w)
    condition = _video(g, batch, 8, f, h, w)  # [mask (4), encoded condition video (C)]
    return {
        "hidden_states": _cat_condition(lat, {"_condition": condition}),
        "_condition": condition,
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_hidden_states_image": _randn(g, batch, 4, 8),
        "attention_kwargs": None,
        "return_dict": False,
    }


def _cat_condition(latents, inputs):
    """``cat([latents, condition], dim=1)`` (Wan-I2V style channel concatenation; ``condition`` is fixed)."""
    import torch

    cond = inputs["_condition"]
    if cond.shape[0] != latents.shape[0]:
        cond = cond.repeat(latents.shape[0] // cond.shape[0], *([1] * (cond.ndim - 1)))
    return torch.cat([latents, cond], dim=1)


def _first_channels(n):
    return lambda inputs: inputs["hidden_states"][:, :n]


_register(FamilySpec(
    name="chronoedit",
    model_class="ChronoEditTransformer3DModel",
    pipeline="ChronoEditPipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=12,
                     out_channels=4, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", image_dim=8, rope_max_seq_len=64, rope_temporal_skip_len=8),
    make_inputs=_chronoedit_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=5.0),
    scheduler_note="the pipeline also pokes UniPC internals (model_outputs/last_sample) when temporal reasoning ends",
    cfg="separate", cfg_contexts=None,
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    block_io={"blocks": BlockIO("WanTransformerBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False, called="positional",
                                note="transformer_chronoedit defines its OWN WanTransformerBlock class (a copy); the "
                                     "registry only knows transformer_wan.WanTransformerBlock, so lookups by class "
                                     "fail for ChronoEdit. " + _WAN_NOTE)},
    pack=_cat_condition, unpack_latents=_first_channels(4),
    notes=("hidden_states = cat([latents, condition], dim=1) (condition = mask + encoded input image)",
           "separate cond/uncond calls WITHOUT cache_context",
           "enable_temporal_reasoning: after num_temporal_reasoning_steps the latents shrink to frames [0, -1], so "
           "the token count changes in the middle of sampling",
           "encoder_hidden_states_image (CLIP image tokens) are prepended to the text tokens inside the model"),
))


# -- Sana-Video ---------------------------------------------------------------------------------------------------


def _sana_video_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "return_dict": False,
        "attention_kwargs": None,
    }


_register(FamilySpec(
    name="sana_video",
    model_class="SanaVideoTransformer3DModel",
    pipeline="SanaVideoPipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
                     num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
                     caption_channels=16, mlp_ratio=2.5, sample_size=8, patch_size=(1, 2, 2),
                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32),
    make_inputs=_sana_video_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="DPMSolverMultistepScheduler",
    scheduler_kwargs=dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0),
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("SanaVideoTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            "hidden_states", registered=False, called="positional",
                                            note="block(hidden, attention_mask, encoder, encoder_mask, timestep, "
                                                 "frames, h, w, rotary)")},
    positional=("hidden_states",),
    notes=("like Sana: norm_out is SanaModulatedNorm(hidden, embedded_timestep, scale_shift_table)",),
))


# -- EasyAnimate --------------------------------------------------------------------------------------------------


def _easyanimate_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    g = _gen(seed)
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "return_dict": False,
    }


_register(FamilySpec(
    name="easyanimate",
    model_class="EasyAnimateTransformer3DModel",
    pipeline="EasyAnimatePipeline",
    tiny_config=dict(attention_head_dim=16, num_attention_heads=2, in_channels=4, mmdit_layers=2, num_layers=2,
                     out_channels=4, patch_size=2, sample_height=16, sample_width=16, text_embed_dim=16,
                     time_embed_dim=8, time_position_encoding_type="3d_rope", timestep_activation_fn="silu"),
    make_inputs=_easyanimate_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="torch.tensor([t] * 2B) in the latent dtype; positional arg 1",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(),
    scheduler_note="set_timesteps(N, mu=1) for FlowMatchEuler",
    scale_model_input=False, time_fn=_t_expand_float,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_final", head_same_shape=True,
    head_note="norm_final (LayerNorm) gets the stack output; norm_out (AdaLayerNorm) follows",
    block_io={"transformer_blocks": BlockIO("EasyAnimateTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _HID_ENC, registered=False, called="positional")},
    positional=("hidden_states", "timestep"),
    notes=("inpaint/control variants concatenate inpaint_latents/control_latents on the channel axis inside the model",
           "text_embed_dim_t5 adds a second text stream concatenated after the first"),
))


# -- CogView3-Plus ------------------------------------------------------------------------------------------------


_register(FamilySpec(
    name="cogview3plus",
    model_class="CogView3PlusTransformer2DModel",
    pipeline="CogView3PlusPipeline",
    tiny_config=dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                     out_channels=4, text_embed_dim=8, time_embed_dim=8, condition_dim=2, pos_embed_max_size=8,
                     sample_size=8),
    make_inputs=lambda batch, seed, **size: {k: v for k, v in _cogview4_inputs(batch, seed, **size).items()
                                             if k != "attention_kwargs"},
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="CogVideoXDDIMScheduler",
    scheduler_kwargs=dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
                          timestep_spacing="trailing"),
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("CogView3PlusTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _HID_ENC, registered=False)},
    notes=("patch_embed embeds text and image together; the model splits them before the blocks",),
))


# -- ConsisID (CogVideoX + identity adapter) ----------------------------------------------------------------------


def _consisid_inputs(batch, seed, f=2, h=8, w=8):
    import torch

    g = _gen(seed)
    image = _randn(g, batch, f, 4, h, w)
    return {
        "hidden_states": torch.cat([_randn(g, batch, f, 4, h, w), image], dim=2),
        "_image_latents": image,
        "encoder_hidden_states": _randn(g, batch, 8, 8),
        "image_rotary_emb": None,
        "attention_kwargs": None,
        "return_dict": False,
        "id_vit_hidden": [torch.ones(batch, 2, 2)],
        "id_cond": torch.ones(batch, 2),
    }


def _consisid_pack(latents, inputs):
    import torch

    image = inputs["_image_latents"]
    return torch.cat([latents, image.repeat(latents.shape[0] // image.shape[0], 1, 1, 1, 1)], dim=2)


_register(FamilySpec(
    name="consisid",
    model_class="ConsisIDTransformer3DModel",
    pipeline="ConsisIDPipeline",
    tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, out_channels=4, time_embed_dim=2,
                     text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2,
                     temporal_compression_ratio=4, max_text_seq_length=8, cross_attn_interval=1, is_kps=False,
                     is_train_face=True, cross_attn_dim_head=1, cross_attn_num_heads=1, LFE_id_dim=2, LFE_vit_dim=2,
                     LFE_depth=5, LFE_dim_head=8, LFE_num_heads=2, LFE_num_id_token=1, LFE_num_querie=1,
                     LFE_output_dim=10, LFE_ff_mult=1, LFE_num_scale=1),
    make_inputs=_consisid_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B)",
    scheduler="CogVideoXDDIMScheduler",
    scheduler_kwargs=dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
                          timestep_spacing="trailing"),
    scheduler_note="the pipeline's type hint is CogVideoXDPMScheduler (its step() takes extra arguments); "
                   "run_loop uses the CogVideoXDDIMScheduler branch the pipeline also supports",
    scale_model_input=True,
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks",), always_run=("local_facial_extractor",),
    head="norm_final", head_same_shape=False,
    head_note="NOT the same shape: the model concatenates [encoder_out, hidden_out] and feeds the joint "
              "(B, L_txt + N, D) sequence to norm_final, then slices [:, L_txt:]; the image part of the head input "
              "is head_input[:, text_seq_length:] (norm_final is per-token, so norm_out's input equals "
              "norm_final(hidden) for the image tokens)",
    block_io={"transformer_blocks": BlockIO("ConsisIDBlock", "hidden_states", "encoder_hidden_states", _HID_ENC,
                                            registered=False)},
    pack=_consisid_pack, unpack_latents=lambda inputs: inputs["hidden_states"][:, :, :4],
    notes=("identity adapter: perceiver_cross_attention[k] runs BETWEEN blocks (every cross_attn_interval blocks) "
           "and adds face features to the hidden stream; local_facial_extractor runs before the stack",
           "image latents are concatenated on the channel axis of the frame-major (B, F, C, H, W) latents",
           "batched CFG without cache_context; use_dynamic_cfg changes the scale per step"),
))



# -- FLUX-like image models: LongCat-Image, Ovis-Image --------------------------------------------------------------


def _flux_like_inputs(guidance: bool, attention_kwargs_name: str | None):
    def make(batch, seed, h=8, w=8, txt=8):
        import torch

        g = _gen(seed)
        out = {
            "hidden_states": _packed(g, batch, 4, h, w),
            "encoder_hidden_states": _randn(g, batch, txt, 32),
            "txt_ids": torch.zeros(txt, 3),
            "img_ids": _flux_img_ids(h // 2, w // 2),
            "return_dict": False,
        }
        if guidance:
            out["guidance"] = None
        if attention_kwargs_name:
            out[attention_kwargs_name] = None
        return out

    return make


_register(FamilySpec(
    name="longcat_image",
    model_class="LongCatImageTransformer2DModel",
    pipeline="LongCatImagePipeline",
    tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8]),
    make_inputs=_flux_like_inputs(guidance=True, attention_kwargs_name=None),
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("LongCatImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _ENC_HID, registered=False),
        "single_transformer_blocks": BlockIO("LongCatImageSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _ENC_HID, registered=False),
    },
    notes=("FLUX.1 layout; the pipeline passes guidance=None (no guidance embedding) and runs true CFG with "
           "optional CFG renormalisation",),
))

_register(FamilySpec(
    name="ovis_image",
    model_class="OvisImageTransformer2DModel",
    pipeline="OvisImagePipeline",
    tiny_config=dict(patch_size=1, in_channels=16, out_channels=16, num_layers=1, num_single_layers=1,
                     attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8)),
    make_inputs=_flux_like_inputs(guidance=False, attention_kwargs_name="joint_attention_kwargs"),
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("OvisImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _ENC_HID, registered=False),
        "single_transformer_blocks": BlockIO("OvisImageSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _ENC_HID, registered=False),
    },
    notes=("FLUX.1 layout without pooled projections or guidance embedding",),
))


# -- ERNIE-Image (sequence-first layout) --------------------------------------------------------------------------


def _ernie_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 16, h, w),
        "text_bth": _randn(g, batch, txt, 16),
        "text_lens": torch.full((batch,), txt, dtype=torch.long),
        "return_dict": False,
    }


def _tk_ernie(scheduler, steps, inputs):
    import torch

    return {"sigmas": torch.linspace(1.0, 0.0, steps + 1)[:-1]}


_register(FamilySpec(
    name="ernie_image",
    model_class="ErnieImageTransformer2DModel",
    pipeline="ErnieImagePipeline",
    tiny_config=dict(hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=32, in_channels=16,
                     out_channels=16, patch_size=1, text_in_dim=16, rope_theta=256, rope_axes_dim=(8, 4, 4),
                     eps=1e-6, qk_layernorm=True),
    make_inputs=_ernie_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="torch.full((2B,), t.item()) in the model dtype",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0), time_fn=_t_expand_float,
    timesteps_kwargs=_tk_ernie, scheduler_note="set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])",
    cfg="batched", cfg_contexts=None,
    block_lists=("layers",), head="final_norm", head_same_shape=True,
    head_note="the stream is SEQUENCE-FIRST (S, B, D) with S = image tokens + text tokens; final_norm gets the "
              "whole joint sequence, the model keeps [:N_img] after final_linear",
    block_io={"layers": BlockIO("ErnieImageSharedAdaLNBlock", "x", None, "x", registered=False,
                                called="positional", note="layer(x, rotary_pos_emb, temb, attention_mask); "
                                                          "x is (S, B, D)")},
    notes=("sequence-first hidden stream (S, B, D): the batch is dim 1 inside the stack",
           "one shared adaLN modulation (adaLN_modulation) computed outside the layers",
           "text is padded to text_bth (B, T, D) with text_lens; cond+uncond batched (uncond first)"),
))


# -- PRX (Photon) -------------------------------------------------------------------------------------------------


def _prx_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "attention_mask": torch.ones(batch, txt, dtype=torch.bool),
        "return_dict": False,
    }


_register(FamilySpec(
    name="prx",
    model_class="PRXTransformer2DModel",
    pipeline="PRXPipeline",
    tiny_config=dict(in_channels=4, patch_size=2, context_in_dim=16, hidden_size=32, mlp_ratio=2.0, num_heads=2,
                     depth=2, axes_dim=[8, 8], theta=10_000),
    make_inputs=_prx_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0),
    time_layout="(t / 1000).view(1).repeat(2) under CFG: shape (2,), not (2B,)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
    cfg="batched", cfg_contexts=None,
    block_lists=("blocks",), head="final_layer", head_same_shape=True,
    block_io={"blocks": BlockIO("PRXBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False, note="the text stream is an input only (not updated)")},
    notes=("the pipeline builds the time tensor as (t/1000).view(1).repeat(2) under CFG (or view(1) without): its "
           "length does not follow the batch size",),
))



# -- Lumina-Next --------------------------------------------------------------------------------------------------


def _lumina_next_inputs(batch, seed, h=8, w=8, txt=8):
    import torch
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "encoder_mask": torch.ones(batch, txt),
        "image_rotary_emb": get_2d_rotary_pos_embed_lumina(8, 384, 384, linear_factor=1.0, ntk_factor=1.0),
        "cross_attention_kwargs": {},
        "return_dict": False,
    }


_register(FamilySpec(
    name="lumina_next",
    model_class="LuminaNextDiT2DModel",
    pipeline="LuminaPipeline",
    tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2, num_attention_heads=3,
                     num_kv_heads=1, multiple_of=16, learn_sigma=True, qk_norm=True, cross_attention_dim=32),
    make_inputs=_lumina_next_inputs,
    time_argument="timestep", time_map=(-1e-3, 1.0), time_layout="(1 - t / 1000).expand(2B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(),
    cfg="batched", cfg_contexts=None,
    block_lists=("layers",), head="norm_out", head_same_shape=True,
    block_io={"layers": BlockIO("LuminaNextDiTBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False, called="positional",
                                note="layer(hidden, mask, rotary, encoder, encoder_mask, temb=..., ...)")},
    learned_sigma=True, negate=True,
    notes=("image_rotary_emb (a 384x384 table) is recomputed by the pipeline every step: linear vs NTK scaling "
           "switches at scaling_watershed",
           "the pipeline's CFG guides only the first 3 channels (noise_pred[:, :3]) DiT-style, then negates",
           "learned sigma: the pipeline always keeps the first half of the output channels"),
))


# -- GLM-Image ----------------------------------------------------------------------------------------------------


def _glm_image_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    n = (h // 2) * (w // 2)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "prior_token_id": torch.randint(0, 64, (batch, n), generator=g),
        "prior_token_drop": torch.zeros(batch, n, dtype=torch.bool),
        "target_size": torch.tensor([[h * 8.0, w * 8.0]] * batch),
        "crop_coords": torch.zeros(batch, 2),
        "attention_kwargs": None,
        "return_dict": False,
        "kv_caches": None,
    }


def _tk_glm(scheduler, steps, inputs):
    import numpy as np

    n = scheduler.config.num_train_timesteps
    ts = np.linspace(n, 1.0, steps + 1)[:-1].astype(np.int64).astype(np.float32)
    h, w = inputs["hidden_states"].shape[-2:]
    return {"timesteps": ts, "sigmas": ts / n, "mu": _mu_linear(scheduler, (h // 2) * (w // 2))}


_register(FamilySpec(
    name="glm_image",
    model_class="GlmImageTransformer2DModel",
    pipeline="GlmImagePipeline",
    tiny_config=dict(patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                     num_attention_heads=2, text_embed_dim=32, time_embed_dim=16, condition_dim=8,
                     prior_vq_quantizer_codebook_size=64),
    make_inputs=_glm_image_inputs,
    time_argument="timestep", time_map=(1.0, -1.0), time_layout="t.expand(B) - 1",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_glm,
    cfg="separate", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("GlmImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                            _HID_ENC, registered=False, called="positional")},
    notes=("the pipeline passes t - 1 (not t)",
           "prior_token_id (per image token, from the autoregressive stage) is embedded and ADDED to the hidden "
           "stream before the blocks; the uncond call uses prior_token_drop=True",
           "image-edit mode reuses a kv_caches object across the two calls (read / skip modes)",
           "separate cond/uncond calls WITHOUT cache_context"),
))


# -- Qwen-Image 2.1 (single-stream, block-causal) -----------------------------------------------------------------


def _qwen21_inputs(batch, seed, h=4, w=4, txt=4):
    import torch

    g = _gen(seed)
    img_mask = torch.zeros(batch, txt + (h * w) // 4, dtype=torch.bool)
    img_mask[:, txt:] = True  # one vision slot per 2x2 group of target latents, after the text
    return {
        "hidden_states": _randn(g, batch, h * w, 4),
        "encoder_hidden_states": _randn(g, batch, txt, 8),
        "encoder_hidden_states_mask": torch.ones(batch, txt, dtype=torch.long),
        "img_shapes": [[(1, h, w)]] * batch,
        "img_mask": img_mask,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="qwenimage21",
    model_class="QwenImage21Transformer2DModel",
    pipeline="QwenImage21Pipeline",
    tiny_config=dict(patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16,
                     num_attention_heads=2, context_in_dim=8, mlp_ratio=2, axes_dims_rope=(4, 6, 6)),
    make_inputs=_qwen21_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    head_note="a single joint stream [text, (condition images), target] runs through the blocks and the head; "
              "the model output covers every token and the pipeline keeps the last N target tokens",
    block_io={"transformer_blocks": BlockIO("QwenImage21TransformerBlock", "hidden_states", None, "hidden_states",
                                            registered=False)},
    tail_tokens=True,
    notes=("the pipeline's default use_kv_cache=True prefills text/condition tokens on step 0 "
           "(kv_cache_mode='extract') and then runs ONLY the target tokens (kv_cache_mode='cached'): the stack "
           "input is shorter from step 1 on.  run_loop uses use_kv_cache=False (full joint sequence every step)",
           "block-causal attention mask over the joint sequence; causal_condition modulates text/condition tokens "
           "with t=0 (the model appends a zero timestep)",
           "img_mask marks the vision slots in the text sequence (4 latent tokens per slot)"),
))



# -- Kandinsky 5 --------------------------------------------------------------------------------------------------


def _kandinsky5_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _randn(g, batch, f, h, w, 4),
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "pooled_projections": _randn(g, batch, 16),
        "visual_rope_pos": [torch.arange(f), torch.arange(h // 2), torch.arange(w // 2)],
        "text_rope_pos": torch.arange(txt),
        "scale_factor": (1.0, 1.0, 1.0),
        "sparse_params": None,
        "return_dict": True,
    }


_register(FamilySpec(
    name="kandinsky5",
    model_class="Kandinsky5Transformer3DModel",
    pipeline="Kandinsky5T2VPipeline",
    tiny_config=dict(in_visual_dim=4, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=4,
                     patch_size=(1, 2, 2), model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2,
                     axes_dims=(1, 1, 2), visual_cond=False, attention_type="regular"),
    make_inputs=_kandinsky5_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.unsqueeze(0).repeat(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=7.0),
    cfg="separate", cfg_contexts=None,
    block_lists=("visual_transformer_blocks",), always_run=("text_transformer_blocks",),
    head="out_layer", head_same_shape=False,
    head_note="NOT the same shape, same elements: the blocks run on the flattened visual tokens (B, F*H*W, D) "
              "(fractal_flatten), the model unflattens them to (B, F, H, W, D) (fractal_unflatten) before "
              "out_layer; with sparse (fractal) attention the flatten also permutes tokens",
    block_io={"visual_transformer_blocks": BlockIO("Kandinsky5TransformerDecoderBlock", "visual_embed", "text_embed",
                                                   "visual_embed", registered=True, metadata_ok=True,
                                                   called="positional",
                                                   note="block(visual_embed, text_embed, time_embed, rope, "
                                                        "sparse_params); the registry names the hidden argument "
                                                        "visual_embed")},
    notes=("latents are CHANNEL-LAST (B, F, H, W, C); visual_cond models append condition channels and the "
           "pipeline steps latents[..., :C] only",
           "text_transformer_blocks (a text encoder stack) run before the visual blocks (always_run)",
           "the pipeline reads `.sample` (return_dict=True); separate cond/uncond calls WITHOUT cache_context",
           "out_layer(visual_embed, text_embed, time_embed) is the head"),
))


# -- Motif-Video --------------------------------------------------------------------------------------------------


def _motif_inputs(batch, seed, f=2, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    lat = _video(g, batch, 4, f, h, w)
    condition = torch.cat([torch.zeros(batch, 4, f, h, w), torch.zeros(batch, 1, f, h, w)], dim=1)
    return {
        "hidden_states": torch.cat([lat, condition], dim=1),
        "_condition": condition,
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="motif_video",
    model_class="MotifVideoTransformer3DModel",
    pipeline="MotifVideoPipeline",
    tiny_config=dict(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=1,
                     num_single_layers=1, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm",
                     text_embed_dim=16, rope_axes_dim=(4, 4, 4)),
    make_inputs=_motif_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=7.0),
    timesteps_kwargs=_tk_flux(lambda inputs: inputs["hidden_states"][0, 0].numel()),
    cfg="separate", cfg_contexts=("pred_cond", "pred_uncond"),
    block_lists=("transformer_blocks", "single_transformer_blocks"), always_run=("context_embedder",),
    head="norm_out", head_same_shape=True,
    block_io={
        "transformer_blocks": BlockIO("MotifVideoTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _HID_ENC, registered=True, metadata_ok=True, called="positional"),
        "single_transformer_blocks": BlockIO("MotifVideoSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _HID_ENC, registered=True, metadata_ok=True,
                                             called="positional"),
    },
    pack=_cat_condition, unpack_latents=_first_channels(4),
    notes=("hidden_states = cat([latents, latent_condition, latent_mask], dim=1) (zeros for t2v)",
           "guidance through a guider (AdaptiveProjectedGuidance in the tests): calls in "
           "cache_context('pred_cond'/'pred_uncond')",
           "num_decoder_layers > 0 turns the last single blocks into decoder blocks on a separate stream"),
))


# -- OmniGen ------------------------------------------------------------------------------------------------------


def _omnigen_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    seq = txt + 1 + (h // 2) * (w // 2)
    return {
        "hidden_states": _randn(g, batch, 4, h, w),
        "input_ids": torch.randint(0, 100, (batch, txt), generator=g),
        "input_img_latents": [],
        "input_image_sizes": {},
        "attention_mask": torch.ones(batch, seq, seq),
        "position_ids": torch.arange(seq).unsqueeze(0).repeat(batch, 1),
        "return_dict": False,
    }


_register(FamilySpec(
    name="omnigen",
    model_class="OmniGenTransformer2DModel",
    pipeline="OmniGenPipeline",
    tiny_config=dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=4, intermediate_size=32,
                     num_layers=2, pad_token_id=0, vocab_size=100, in_channels=4, time_step_dim=4,
                     rope_scaling={"long_factor": [1, 2], "short_factor": [1, 2]}),
    make_inputs=_omnigen_inputs,
    time_argument="timestep", time_map=(1.0, 0.0),
    time_layout="t.expand(2B); the hub scheduler has num_train_timesteps=1 and invert_sigmas=True, so t runs 0 -> 1",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(invert_sigmas=True, num_train_timesteps=1),
    timesteps_kwargs=lambda sch, n, inp: {"sigmas": __import__("numpy").linspace(1, 0, n + 1)[:n]},
    cfg="batched", cfg_contexts=None, cfg_order="cond_first",
    block_lists=("layers",), head="norm", head_same_shape=True,
    head_note="norm (RMSNorm) gets the whole joint sequence [prompt/condition tokens, time token, image tokens]; "
              "the model keeps the image tokens after it",
    block_io={"layers": BlockIO("OmniGenBlock", "hidden_states", None, "hidden_states", registered=False)},
    notes=("a Phi-3-style LLM: the prompt (token ids, with input-image latents spliced in) and a time token are "
           "prepended to the image tokens and everything runs through one stack",
           "batched CFG in the order [cond, uncond] (and [cond, uncond, img_cond] with an input image): the "
           "reverse of most pipelines"),
))


# -- HunyuanVideo FramePack ---------------------------------------------------------------------------------------


def _framepack_inputs(batch, seed, f=2, h=4, w=4, txt=8, history=(4, 2, 1)):
    import torch

    g = _gen(seed)
    idx = torch.arange(0, sum([1, *history, f]))
    _, i4x, i2x, i1x, ilat = idx.split([1, *history, f])
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_attention_mask": torch.ones(batch, txt),
        "pooled_projections": _randn(g, batch, 8),
        "image_embeds": _randn(g, batch, 4, 16),
        "indices_latents": ilat,
        "guidance": torch.tensor([6.0] * batch) * 1000.0,
        "latents_clean": _video(g, batch, 4, 1 + history[2], h, w),
        "indices_latents_clean": torch.cat([idx[:1], i1x]),
        "latents_history_2x": _video(g, batch, 4, history[1], h, w),
        "indices_latents_history_2x": i2x,
        "latents_history_4x": _video(g, batch, 4, history[0], h, w),
        "indices_latents_history_4x": i4x,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="hunyuan_video_framepack",
    model_class="HunyuanVideoFramepackTransformer3DModel",
    pipeline="HunyuanVideoFramepackPipeline",
    tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
                     num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
                     text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None,
                     has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True),
    make_inputs=_framepack_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
    timesteps_kwargs=_tk_sigmas_to_zero, scheduler_note="sigmas=linspace(1, 0, N+1)[:-1] (+ mu)",
    cfg="distilled", cfg_contexts=None,
    block_lists=("transformer_blocks", "single_transformer_blocks"), always_run=("context_embedder",),
    head="norm_out", head_same_shape=False,
    head_note="NOT the same shape: the clean/history latent tokens (latents_clean, latents_history_2x/4x) are "
              "PREPENDED to the window's tokens before the stack; before norm_out the model keeps "
              "hidden[:, -original_context_length:] (the window's tokens only), so the head input is the last "
              "N tokens of the stack's hidden stream",
    block_io={
        "transformer_blocks": BlockIO("HunyuanVideoTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _HID_ENC, registered=True, metadata_ok=True, called="positional"),
        "single_transformer_blocks": BlockIO("HunyuanVideoSingleTransformerBlock", "hidden_states",
                                             "encoder_hidden_states", _HID_ENC, registered=True, metadata_ok=True,
                                             called="positional"),
    },
    notes=("sections are sampled one after another (an outer loop); each section's loop conditions on history "
           "latents of the previous sections",
           "guidance-distilled (guidance * 1000); true CFG (no cache_context) only with true_cfg_scale > 1",
           "image_embeds (SigLIP) are projected and prepended to the text stream"),
))


# -- Wan-Animate --------------------------------------------------------------------------------------------------


def _wan_animate_inputs(batch, seed, f=2, h=8, w=8, txt=8, face=16):
    g = _gen(seed)
    reference = _video(g, batch, 20, f, h, w)
    return {
        "hidden_states": _cat_condition(_video(g, batch, 16, f, h, w), {"_condition": reference}),
        "_condition": reference,
        "encoder_hidden_states": _randn(g, batch, txt, 32),
        "encoder_hidden_states_image": _randn(g, batch, 4, 4),
        "pose_hidden_states": _video(g, batch, 16, f - 1, h, w),
        "face_pixel_values": _video(g, batch, 3, f - 1, face, face),
        "motion_encode_batch_size": None,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="wan_animate",
    model_class="WanAnimateTransformer3DModel",
    pipeline="WanAnimatePipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
                     latent_channels=16, out_channels=16, text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2,
                     cross_attn_norm=True, qk_norm="rms_norm_across_heads", image_dim=4, rope_max_seq_len=32,
                     motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16,
                     motion_style_dim=8, motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16,
                     face_encoder_num_heads=2, inject_face_latents_blocks=2),
    make_inputs=_wan_animate_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B)",
    scheduler="UniPCMultistepScheduler",
    scheduler_kwargs=dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0),
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    block_io={"blocks": BlockIO("WanTransformerBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False, called="positional",
                                note="transformer_wan_animate defines its OWN WanTransformerBlock class (a copy), "
                                     "unknown to the registry. " + _WAN_NOTE)},
    pack=_cat_condition, unpack_latents=_first_channels(16), always_run=("motion_encoder", "face_encoder"),
    notes=("face_adapter[k] (cross-attention to motion features) runs BETWEEN blocks: after every "
           "inject_face_latents_blocks-th block it adds to the hidden stream",
           "motion_encoder + face_encoder run on face_pixel_values before the stack (always)",
           "pose latents are added to the patch-embedded frames 1.. before the stack",
           "the uncond call passes face_pixel_values * 0 - 1; segments of the video are sampled one after another"),
))



# -- Bria FIBO ----------------------------------------------------------------------------------------------------


def _bria_fibo_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 64),
        "text_encoder_layers": [_randn(g, batch, txt, 32) for _ in range(2)],
        "joint_attention_kwargs": None,
        "return_dict": False,
        "txt_ids": torch.zeros(batch, txt, 3),
        "img_ids": _flux_img_ids(h // 2, w // 2),
    }


_register(FamilySpec(
    name="bria_fibo",
    model_class="BriaFiboTransformer2DModel",
    pipeline="BriaFiboPipeline",
    tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
                     num_attention_heads=2, joint_attention_dim=64, text_encoder_dim=32, pooled_projection_dim=None,
                     axes_dims_rope=[0, 4, 4]),
    make_inputs=_bria_fibo_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(2B) (raw 0..1000)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="batched", cfg_contexts=None,
    block_lists=("transformer_blocks", "single_transformer_blocks"), head="norm_out", head_same_shape=True,
    head_note="between blocks the model rebuilds the text stream (half of it replaced by the next text-encoder "
              "layer); single blocks run on [text, image] and the model splits after each one",
    block_io={
        "transformer_blocks": BlockIO("BriaFiboTransformerBlock", "hidden_states", "encoder_hidden_states",
                                      _ENC_HID, registered=False),
        "single_transformer_blocks": BlockIO("BriaFiboSingleTransformerBlock", "hidden_states", None,
                                             "hidden_states", registered=False,
                                             note="runs on the joint [text, image] stream"),
    },
    notes=("every block gets a different text input: encoder[..., :inner/2] concatenated with "
           "caption_projection[k](text_encoder_layers[k])",),
))


# -- Krea 2 -------------------------------------------------------------------------------------------------------


def _krea2_inputs(batch, seed, h=4, w=4, txt=4):
    import torch

    g = _gen(seed)
    pos = torch.zeros(txt + h * w, 3)
    pos[txt:, 1] = torch.arange(h).repeat_interleave(w)
    pos[txt:, 2] = torch.arange(w).repeat(h)
    return {
        "hidden_states": _randn(g, batch, h * w, 16),
        "encoder_hidden_states": _randn(g, batch, txt, 3, 16),
        "position_ids": pos,
        "encoder_attention_mask": torch.ones(batch, txt, dtype=torch.bool),
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="krea2",
    model_class="Krea2Transformer2DModel",
    pipeline="Krea2Pipeline",
    tiny_config=dict(in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4, num_key_value_heads=2,
                     intermediate_size=32, timestep_embed_dim=8, text_hidden_dim=16, num_text_layers=3,
                     text_num_attention_heads=2, text_num_key_value_heads=1, text_intermediate_size=16,
                     num_layerwise_text_blocks=1, num_refiner_text_blocks=1, axes_dims_rope=(4, 2, 2),
                     rope_theta=1000.0, norm_eps=1e-5),
    make_inputs=_krea2_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="(t / 1000).expand(B)",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=None,
    block_lists=("transformer_blocks",), always_run=("text_fusion", "txt_in"),
    head="final_layer", head_same_shape=False,
    head_note="NOT the same shape: the stack runs on cat([text, image]) and the model slices hidden[:, text_len:] "
              "before final_layer; the image part of the stack input is stack_input[:, text_len:]",
    block_io={"transformer_blocks": BlockIO("Krea2TransformerBlock", "hidden_states", None, "hidden_states",
                                            registered=False, called="positional",
                                            note="block(hidden, temb_mod, rotary, attention_mask)")},
    notes=("encoder_hidden_states stacks several LLM layers (B, L, n_layers, D); text_fusion and txt_in (with "
           "their own text blocks) run before the stack",
           "CFG is written noise_pred + g * (noise_pred - neg) (g = scale - 1); separate calls WITHOUT cache_context"),
))


# -- NucleusMoE-Image ---------------------------------------------------------------------------------------------


def _nucleus_inputs(batch, seed, h=8, w=8, txt=8):
    import torch

    g = _gen(seed)
    return {
        "hidden_states": _packed(g, batch, 4, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "encoder_hidden_states_mask": torch.ones(batch, txt, dtype=torch.long),
        "img_shapes": [(1, h // 2, w // 2)] * batch,
        "attention_kwargs": None,
        "return_dict": False,
    }


_register(FamilySpec(
    name="nucleusmoe_image",
    model_class="NucleusMoEImageTransformer2DModel",
    pipeline="NucleusMoEImagePipeline",
    tiny_config=dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=16, axes_dims_rope=(8, 4, 4), moe_enabled=False,
                     capacity_factors=[8.0, 8.0]),
    make_inputs=_nucleus_inputs,
    time_argument="timestep", time_map=(1e-3, 0.0), time_layout="t.expand(B) / 1000",
    scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(use_dynamic_shifting=True),
    mu=True, timesteps_kwargs=_tk_flux(_seq_packed),
    cfg="separate", cfg_contexts=None,
    block_lists=("transformer_blocks",), head="norm_out", head_same_shape=True,
    block_io={"transformer_blocks": BlockIO("NucleusMoEImageTransformerBlock", "hidden_states",
                                            "encoder_hidden_states", "hidden_states", registered=False,
                                            note="the text stream is read, not updated")},
    negate=True,
    notes=("separate cond/uncond calls WITHOUT cache_context; CFG renormalised to the cond norm; prediction negated",
           "moe_enabled=True (the real model) routes the feed-forward through experts"),
))



# -- Helios (chunked autoregressive video) ------------------------------------------------------------------------


def _helios_inputs(batch, seed, f=2, h=8, w=8, txt=8, history=(4, 2, 1)):
    import torch

    g = _gen(seed)
    idx = torch.arange(0, sum([1, *history, f]))
    prefix, i_long, i_mid, i_1x, i_lat = idx.split([1, *history, f])
    return {
        "hidden_states": _video(g, batch, 4, f, h, w),
        "encoder_hidden_states": _randn(g, batch, txt, 16),
        "indices_hidden_states": i_lat.unsqueeze(0),
        "indices_latents_history_short": torch.cat([prefix, i_1x]).unsqueeze(0),
        "indices_latents_history_mid": i_mid.unsqueeze(0),
        "indices_latents_history_long": i_long.unsqueeze(0),
        "latents_history_short": _video(g, batch, 4, 1 + history[2], h, w),
        "latents_history_mid": _video(g, batch, 4, history[1], h, w),
        "latents_history_long": _video(g, batch, 4, history[0], h, w),
        "attention_kwargs": None,
        "return_dict": False,
    }


def _tk_helios(scheduler, steps, inputs):
    import numpy as np

    return {"sigmas": np.linspace(0.999, 0.0, steps + 1)[:-1].astype(np.float32)}


_register(FamilySpec(
    name="helios",
    model_class="HeliosTransformer3DModel",
    pipeline="HeliosPipeline",
    tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
                     text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", rope_dim=(4, 4, 4), has_multi_term_memory_patch=True,
                     guidance_cross_attn=True, zero_history_timestep=True, is_amplify_history=False),
    make_inputs=_helios_inputs,
    time_argument="timestep", time_map=(1.0, 0.0), time_layout="t.expand(B); history tokens get timestep 0",
    scheduler="HeliosScheduler", scheduler_kwargs=dict(stages=1),
    timesteps_kwargs=_tk_helios, scheduler_note="set_timesteps(N, sigmas=linspace(0.999, 0, N+1)[:-1], mu=...)",
    cfg="separate", cfg_contexts=("cond", "uncond"),
    block_lists=("blocks",), head="norm_out", head_same_shape=True,
    head_note="history tokens (short/mid/long memory patches) are PREPENDED to the chunk's tokens before the "
              "stack; norm_out (HeliosOutputNorm) receives the full sequence plus original_context_length and "
              "drops the history tokens itself",
    block_io={"blocks": BlockIO("HeliosTransformerBlock", "hidden_states", "encoder_hidden_states", "hidden_states",
                                registered=False, called="positional",
                                note="block(hidden, encoder, timestep_proj, rotary, original_context_length)")},
    notes=("video is generated chunk by chunk (outer loop); each chunk's loop conditions on history latents",
           "the pyramid pipeline (HeliosPyramidPipeline) changes resolution between stages: the token count changes "
           "mid-sampling"),
))



# -- not covered --------------------------------------------------------------------------------------------------

UNSUPPORTED.update({
    "flux3": "Flux3Transformer2DModel exists in 0.42.1 but no pipeline uses it, so there is no pipeline call to "
             "describe (time map, guidance); structurally: txt_mode_blocks (text only) -> mode_blocks['image'] "
             "-> single_transformer_blocks, head norm_out after slicing the image tokens",
    "cosmos3": "Cosmos3OmniTransformer is a VLM-style mixture-of-transformers (und_seq/gen_seq streams); not surveyed",
    "ideogram4": "not surveyed (packed text+image sequence with segment/indicator ids); time ran out",
    "joyimage": "JoyImageEditTransformer3DModel / JoyImageEditPlus: not surveyed (time)",
    "kandinsky6": "Kandinsky6Transformer3DModel (+ _sr): not surveyed (time)",
    "anyflow": "AnyFlowTransformer3DModel / AnyFlowFAR: not surveyed (time)",
    "wan_animate_2": "WanAnimate2Transformer3DModel: not surveyed (time)",
    "minimax_h3": "MiniMaxH3Transformer3DModel: not surveyed (time)",
    "sana_wm": "SanaWMTransformer3DModel / SanaWMLTX2RefinerTransformer3DModel: not surveyed (time)",
    "dreamlite": "DreamLiteTransformer2DModel: not surveyed (time)",
    "audio": "audio/music/protein transformers (StableAudio(3), ACE-Step, LongCat-Audio-DiT, MiniMax-Music3, "
             "RFD4-Proteina): out of scope (not image/video), not surveyed",
})


# ---------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------


def family(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None


def family_names() -> list[str]:
    return list(FAMILIES)


def tiny_transformer(name: str, seed: int = 0):
    """The family's model built from ``tiny_config`` with random weights (``torch.manual_seed(seed)``), in eval mode.

    Parameters the model initialises to all-zeros (adaLN-zero gates, zero-initialised output projections, as in
    ERNIE-Image) are redrawn from N(0, 0.02), so a random model's prediction is not identically zero.
    """
    import diffusers
    import torch

    spec = family(name)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model = getattr(diffusers, spec.model_class)(**dict(spec.tiny_config))
        if spec.post_build is not None:
            spec.post_build(model)
        with torch.no_grad():  # zero-initialised gates/output layers would make every prediction 0
            for param in model.parameters():
                if param.numel() and not param.any():
                    param.normal_(0.0, 0.02)
    return model.eval()


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_scheduler(name: str):
    """The family's default scheduler (class and kwargs from the spec)."""
    import diffusers

    spec = family(name)
    return getattr(diffusers, spec.scheduler)(**dict(spec.scheduler_kwargs))


def _set_timesteps(spec: FamilySpec, scheduler, steps: int, inputs: dict) -> None:
    """``set_timesteps`` as the pipeline's ``retrieve_timesteps`` does it (sigmas/timesteps/mu when it passes them)."""
    import inspect

    kwargs = dict(spec.timesteps_kwargs(scheduler, steps, inputs)) if spec.timesteps_kwargs else {}
    accepted = set(inspect.signature(scheduler.set_timesteps).parameters)
    if not scheduler.config.get("use_dynamic_shifting", False):
        kwargs.pop("mu", None)
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    params = inspect.signature(scheduler.set_timesteps).parameters
    steps_required = params["num_inference_steps"].default is inspect.Parameter.empty
    if ("sigmas" in kwargs or "timesteps" in kwargs) and not steps_required:
        scheduler.set_timesteps(**kwargs)
    else:
        scheduler.set_timesteps(steps, **kwargs)


def _time_value(spec: FamilySpec, t, rows: int):
    import torch

    t = torch.as_tensor(t)
    scale, offset = spec.time_map
    value = t if (scale, offset) == (1.0, 0.0) else offset + scale * t.float()
    return (spec.time_fn or _t_expand)(value, rows)


def _forward(model, spec: FamilySpec, inputs: dict, latents: dict, t, rows: int, context: str | None, scheduler):
    """One transformer call, laid out as the pipeline lays it out; returns the per-latent predictions."""
    import contextlib

    kwargs = _model_kwargs(inputs)
    for key, value in latents.items():
        if spec.scale_model_input and scheduler is not None:
            value = scheduler.scale_model_input(value, t)
        kwargs[key] = spec.pack(value, inputs) if (spec.pack and key == spec.latent_keys[0]) else value
    kwargs[spec.time_argument] = _time_value(spec, t, rows)
    args = [kwargs.pop(n) for n in spec.positional]
    ctx = model.cache_context(context) if (context and hasattr(model, "cache_context")) else contextlib.nullcontext()
    with ctx:
        out = model(*args, **kwargs)
    preds = spec.unpack_output(out) if spec.unpack_output else _outputs(out)[: len(spec.latent_keys)]
    result = []
    for key, pred in zip(spec.latent_keys, preds):
        if spec.learned_sigma:
            pred = pred[:, : latents[key].shape[1]]
        if spec.tail_tokens:
            pred = pred[:, -latents[key].shape[1]:]
        result.append(-pred if spec.negate else pred)
    return result


def _model_kwargs(inputs: dict) -> dict:
    """Inputs minus the private entries (``_name``) that only ``pack`` reads."""
    return {k: v for k, v in inputs.items() if not k.startswith("_")}


def _initial_latents(spec: FamilySpec, inputs: dict) -> dict:
    first = spec.latent_keys[0]
    out = {first: spec.unpack_latents(inputs) if spec.unpack_latents else inputs[first]}
    for key in spec.latent_keys[1:]:
        out[key] = inputs[key]
    return {k: v.clone() for k, v in out.items()}


def run_loop(name: str, model, steps: int = 20, batch: int = 1, seed: int = 0, scheduler=None,
             guidance_scale: float = 2.0, return_all: bool = False, **size):
    """A plain sampling loop that calls ``model`` exactly as the family's main pipeline does.

    ``scheduler.set_timesteps`` as the pipeline calls it, then for each ``t`` of ``scheduler.timesteps``: the time
    argument is ``offset + scale * t`` broadcast as the pipeline does; guidance as the pipeline runs it ("batched":
    one call on [uncond, cond] rows; "separate": a cond and an uncond call, each inside ``model.cache_context``
    only if the pipeline sets one; "distilled"/"none": one call); then ``scheduler.step``.  Deterministic given
    ``seed`` (initial noise and conditioning come from ``make_inputs``).  Returns the final latents (a tuple of all
    latent streams with ``return_all=True``; LTX-2 has video and audio).
    """
    import copy
    import inspect

    import torch

    spec = family(name)
    scheduler = scheduler if scheduler is not None else make_scheduler(name)
    cond = spec.make_inputs(batch, seed, **size)
    latents = _initial_latents(spec, cond)
    _set_timesteps(spec, scheduler, steps, cond)
    latents = {k: v * getattr(scheduler, "init_noise_sigma", 1.0) for k, v in latents.items()}
    schedulers = {k: (scheduler if i == 0 else copy.deepcopy(scheduler)) for i, k in enumerate(spec.latent_keys)}
    contexts = spec.cfg_contexts or (None, None)
    step_kwargs = {}
    if "generator" in inspect.signature(scheduler.step).parameters:  # ancestral/DDPM noise, as the pipelines seed it
        step_kwargs["generator"] = torch.Generator().manual_seed(seed)
    if spec.cfg == "batched":
        both = spec.make_inputs(2 * batch, seed + 1, **size)
    elif spec.cfg == "separate":
        uncond = spec.make_inputs(batch, seed + 1, **size)

    with torch.inference_mode():
        for t in scheduler.timesteps:
            if spec.cfg == "batched":
                doubled = {k: torch.cat([v, v]) for k, v in latents.items()}
                preds = _forward(model, spec, both, doubled, t, 2 * batch, contexts[0], scheduler)
                halves = [p.chunk(2) for p in preds]
                if spec.cfg_order == "cond_first":
                    halves = [(u, c) for c, u in halves]
                preds = [u + guidance_scale * (c - u) for u, c in halves]
            elif spec.cfg == "separate":
                pc = _forward(model, spec, cond, latents, t, batch, contexts[0], scheduler)
                pu = _forward(model, spec, uncond, latents, t, batch, contexts[1] if len(contexts) > 1 else None,
                              scheduler)
                preds = [u + guidance_scale * (c - u) for c, u in zip(pc, pu)]
            else:
                preds = _forward(model, spec, cond, latents, t, batch, contexts[0], scheduler)
            for key, pred in zip(spec.latent_keys, preds):
                latents[key] = schedulers[key].step(pred, t, latents[key], return_dict=False, **step_kwargs)[0]
    out = tuple(latents[k] for k in spec.latent_keys)
    return out if return_all else out[0]


# ---------------------------------------------------------------------------------------------------------------
# verification: re-check a spec's structural claims by running the model
# ---------------------------------------------------------------------------------------------------------------


def _bind(fn, args, kwargs) -> dict:
    import inspect

    bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else None


def _passthrough(io: BlockIO, bound: dict):
    import torch

    def one(src):
        if src.startswith("zeros:"):
            return torch.zeros_like(bound[src[6:]])
        return bound[src]

    return one(io.returns) if isinstance(io.returns, str) else tuple(one(s) for s in io.returns)


def _head_input(args, kwargs):
    if args:
        return args[0]
    for key in ("hidden_states", "x"):
        if key in kwargs:
            return kwargs[key]
    raise TypeError("head called without a hidden input")


def verify(name: str, seed: int = 0) -> dict:
    """Run the tiny model once and check the spec's structural claims; returns a report.

    Keys: ``order`` (blocks in call order), ``stack_input_shape`` (the first block's hidden input),
    ``head_input_shape``, ``same_shape``, ``returns_ok`` (per list: each block returned what ``block_io.returns``
    says), ``metadata`` (per block class: registered, and whether the registry's indices match the real output),
    ``skip_reproduces`` (per model output: with every block returning its inputs and the head's input replaced by
    the recorded head input, the model reproduces its normal output exactly; ``False`` means something after the
    stack depends on the blocks outside the head's input).
    """
    import torch

    with torch.inference_mode():
        return _verify(name, seed)


def _verify(name: str, seed: int) -> dict:
    import torch
    from diffusers.hooks._helpers import TransformerBlockRegistry

    spec = family(name)
    model = tiny_transformer(name, seed)
    inputs = spec.make_inputs(1, seed)
    sched = make_scheduler(name)
    _set_timesteps(spec, sched, 4, inputs)
    t = sched.timesteps[1]
    latents = _initial_latents(spec, inputs)

    blocks = [(ln, i, b) for ln in spec.block_lists for i, b in enumerate(model.get_submodule(ln))]
    head = model.get_submodule(spec.head)
    calls, handles = [], []

    def block_hook(ln, i):
        def hook(module, args, kwargs, output):
            calls.append((ln, i, _bind(module.forward, args, kwargs), output, args, kwargs))
        return hook

    head_in = {}

    def head_hook(module, args, kwargs):
        head_in.setdefault("x", _head_input(args, kwargs).detach().clone())

    for ln, i, b in blocks:
        handles.append(b.register_forward_hook(block_hook(ln, i), with_kwargs=True))
    handles.append(head.register_forward_pre_hook(head_hook, with_kwargs=True))
    try:
        ref = _forward(model, spec, inputs, latents, t, 1, None, sched)
    finally:
        for h in handles:
            h.remove()

    report: dict[str, Any] = {"order": [(ln, i) for ln, i, *_ in calls], "n_blocks": len(blocks)}
    first_ln, _, first_bound, *_ = calls[0]
    stack_in = first_bound[spec.block_io[first_ln].hidden]
    report["stack_input_shape"] = _shape(stack_in)
    report["head_input_shape"] = _shape(head_in["x"])
    report["same_shape"] = report["stack_input_shape"] == report["head_input_shape"]

    returns_ok, metadata = {}, {}
    for ln, i, bound, out, raw_args, raw_kwargs in calls:
        io = spec.block_io[ln]
        expect = _passthrough(io, bound)
        if isinstance(expect, tuple):
            ok = isinstance(out, tuple) and len(out) == len(expect) and all(
                o is None or _shape(o) == _shape(e) for o, e in zip(out, expect))
        else:
            ok = torch.is_tensor(out) and _shape(out) == _shape(expect)
        returns_ok[ln] = returns_ok.get(ln, True) and ok
        cls = type(getattr(model, ln)[i])
        assert cls.__name__ == io.block_class, (ln, cls.__name__, io.block_class)
        try:
            meta = TransformerBlockRegistry.get(cls)
        except ValueError:
            metadata[cls.__name__] = {"registered": False, "ok": None}
            continue
        try:  # how diffusers' cache hooks read the block's hidden input
            h_in = meta._get_parameter_from_args_kwargs(meta.hidden_states_argument_name, raw_args, raw_kwargs)
        except (ValueError, KeyError, IndexError):
            h_in = None
        e_in = bound.get(meta.encoder_hidden_states_argument_name)
        if isinstance(out, tuple):
            good = h_in is not None and _shape(out[meta.return_hidden_states_index]) == _shape(h_in)
            if meta.return_encoder_hidden_states_index is not None:
                enc_out = out[meta.return_encoder_hidden_states_index]
                good = good and (enc_out is None or _shape(enc_out) == _shape(e_in))
            elif len(out) > 1:
                good = False  # a tuple output with no encoder index: caches would drop the second element
        else:
            good = meta.return_encoder_hidden_states_index is None and _shape(out) == _shape(h_in)
        prev = metadata.get(cls.__name__, {"ok": True})["ok"]
        metadata[cls.__name__] = {"registered": True, "ok": bool(prev and good),
                                  "hidden_arg_found": h_in is not None}
    report["returns_ok"] = returns_ok
    report["metadata"] = metadata

    # skip every block, substitute the recorded head input: the outputs must come back unchanged
    patched = []
    for ln, _, b in blocks:
        io, fwd = spec.block_io[ln], b.forward

        def skipped(*args, _io=io, _fwd=fwd, **kwargs):
            return _passthrough(_io, _bind(_fwd, args, kwargs))

        b.forward = skipped
        patched.append(b)
    h = head.register_forward_pre_hook(
        lambda m, a, k: ((head_in["x"],) + tuple(a[1:]), k) if a else (a, {**k, next(
            n for n in ("hidden_states", "x") if n in k): head_in["x"]}), with_kwargs=True)
    try:
        again = _forward(model, spec, inputs, latents, t, 1, None, sched)
    finally:
        h.remove()
        for b in patched:
            del b.forward
    report["skip_reproduces"] = [bool(torch.allclose(a, b, atol=1e-6, rtol=1e-5)) for a, b in zip(ref, again)]
    report["output_nonzero"] = [bool(r.abs().max() > 0) for r in ref]
    report["params"] = count_parameters(model)
    return report
