"""The family table: one :class:`~padecache.testing.family_spec.FamilySpec` row per diffusers transformer family.

Each row is what diffusers 0.42.1's main pipeline for the family does, read from its ``__call__`` and checked by
running the tiny model (:func:`padecache.testing.families.verify`): a tiny config (< 0.5M parameters), the inputs in
the pipeline's layout, the time convention, scheduler and guidance, and where a block-stack cache hooks.  Adding a
family is a row here (plus its adapter in :mod:`padecache.adapters.families`); the builders the rows are written
with are in :mod:`padecache.testing.family_spec`.
"""

from __future__ import annotations

import torch

from ..adapters.families import UNSUPPORTED as _ADAPTERS_UNSUPPORTED
from .family_spec import (
    REVERSED,
    T1000,
    BlockIO,
    FamilySpec,
    In,
    T,
    Time,
    audio,
    cat_condition,
    derived,
    expand_time_float,
    first_channels,
    flow_sigmas,
    flux2_ids,
    flux_img_ids,
    frames_first,
    full,
    image,
    mu_linear,
    ones,
    packed,
    per_sample,
    randint,
    randn,
    seq_4d,
    seq_packed,
    text,
    text_mask,
    tk_flux,
    tk_sigmas_to_zero,
    tokens,
    txt_ids,
    video,
    zeros,
)

__all__ = ["FAMILIES", "UNSUPPORTED"]

ENC_HID = ("encoder_hidden_states", "hidden_states")
HID_ENC = ("hidden_states", "encoder_hidden_states")
VIDEO_SIZES = {"f": 2, "h": 8, "w": 8, "txt": 8}
AUDIO_SIZES = {"t": 8, "txt": 8}
IMG_IDS = derived(lambda s: flux_img_ids(s.h // 2, s.w // 2))
SIZE_F, SIZE_H, SIZE_W = derived(lambda s: s.f), derived(lambda s: s.h), derived(lambda s: s.w)
COGVIDEOX_DDIM = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                      prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
                      timestep_spacing="trailing")


# -- inputs and loops that are more than data -----------------------------------------------------------------------


def HISTORY_SIZES(h: int, w: int) -> dict:  # noqa: N802 - reads as the constant it stands for
    """Sizes of a chunked video model (FramePack, Helios): a 2-frame window and 1x/2x/4x history latents."""
    return {"f": 2, "h": h, "w": w, "txt": 8, "clean": 2, "history_2x": 2, "history_4x": 4}


def _history_indices(s):
    """``(prefix, 4x, 2x, 1x, window)`` frame indices, as the chunked pipelines split ``arange``."""
    split = [1, s.history_4x, s.history_2x, s.clean - 1, s.f]
    return torch.arange(0, sum(split)).split(split)


def _clean_indices(s):
    prefix, _, _, one_x, _ = _history_indices(s)
    return torch.cat([prefix, one_x])


CAT_CONDITION = In(lambda s, g, got: torch.cat([got["_latents"], got["_condition"]], dim=1))


def _cogview_size(s):
    return torch.tensor([[s.h * 8, s.w * 8]] * s.B, dtype=torch.float32)


COGVIEW = dict(hidden_states=image(4), encoder_hidden_states=text(8), original_size=derived(_cogview_size),
               target_size=derived(_cogview_size), crop_coords=zeros("B", 2))


def _hunyuandit_rope(s):
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.pipelines.hunyuandit.pipeline_hunyuandit import get_resize_crop_region_for_grid

    grid = (s.h // 2, s.w // 2)
    return get_2d_rotary_pos_embed(8, get_resize_crop_region_for_grid(grid, 512 // 8 // 2), grid, output_type="pt")


def _allegro_rope(s):
    from diffusers.models.embeddings import get_3d_rotary_pos_embed_allegro

    freqs_t, freqs_h, freqs_w, grid_t, grid_h, grid_w = get_3d_rotary_pos_embed_allegro(
        embed_dim=12, crops_coords=((0, 0), (s.h // 2, s.w // 2)), grid_size=(s.h // 2, s.w // 2),
        temporal_size=s.f, interpolation_scale=(2.2, 2.0, 2.0))
    pos = torch.cartesian_prod(grid_t.long(), grid_h.long(), grid_w.long()).reshape(-1, 3).transpose(0, 1)
    grid_t, grid_h, grid_w = pos.reshape(3, 1, -1).contiguous()
    return (freqs_t, freqs_h, freqs_w), (grid_t, grid_h, grid_w)


def _lumina_next_rope(s):
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    return get_2d_rotary_pos_embed_lumina(8, 384, 384, linear_factor=1.0, ntk_factor=1.0)


def _qwen21_img_mask(s):
    mask = torch.zeros(s.B, s.txt + s.hw // 4, dtype=torch.bool)
    mask[:, s.txt:] = True  # one vision slot per 2x2 group of target latents, after the text
    return mask


def _krea2_positions(s):
    pos = torch.zeros(s.txt + s.hw, 3)
    pos[s.txt:, 1] = torch.arange(s.h).repeat_interleave(s.w)
    pos[s.txt:, 2] = torch.arange(s.w).repeat(s.h)
    return pos


def _kandinsky5_rope_pos(s):
    return [torch.arange(s.f), torch.arange(s.h // 2), torch.arange(s.w // 2)]


def _hv15_pack(latents, inputs):
    """t2v: ``cat([latents, cond_latents (zeros), mask (zeros)], dim=1)``."""
    b, c, f, h, w = latents.shape
    return torch.cat([latents, latents.new_zeros(b, c, f, h, w), latents.new_zeros(b, 1, f, h, w)], dim=1)


def _hv15_hidden(s, g, got):
    return _hv15_pack(torch.randn(s.B, 4, s.f, s.h, s.w, generator=g), None)


def _hv15_latents(inputs):
    return inputs["hidden_states"][:, : (inputs["hidden_states"].shape[1] - 1) // 2]


def _consisid_hidden(s, g, got):
    return torch.cat([torch.randn(s.B, s.f, 4, s.h, s.w, generator=g), got["_image_latents"]], dim=2)


def _consisid_pack(latents, inputs):
    image = inputs["_image_latents"]
    return torch.cat([latents, image.repeat(latents.shape[0] // image.shape[0], 1, 1, 1, 1)], dim=2)


def _consisid_latents(inputs):
    return inputs["hidden_states"][:, :, :4]


def _motif_hidden(s, g, got):
    """t2v: ``cat([latents, latent_condition (zeros), latent_mask (zeros)], dim=1)``."""
    return torch.cat([torch.randn(s.B, 4, s.f, s.h, s.w, generator=g), torch.zeros(s.B, 5, s.f, s.h, s.w)], dim=1)


def _wan_animate_hidden(s, g, got):
    return cat_condition(torch.randn(s.B, 16, s.f, s.h, s.w, generator=g), got)


def _bria_fibo_layers(s, g, got):
    return [torch.randn(s.B, s.txt, 32, generator=g) for _ in range(2)]


def _zimage_pack(latents, inputs):
    return list(latents.unsqueeze(2).unbind(dim=0))


def _zimage_latents(inputs):
    return torch.stack(inputs["x"], dim=0).squeeze(2)


def _zimage_output(out):
    return (torch.stack([o.float() for o in out[0]], dim=0).squeeze(2),)


def _tk_zimage(scheduler, steps, inputs):
    h, w = inputs["x"][0].shape[-2:]
    return {"sigmas": flow_sigmas(steps).tolist(), "mu": mu_linear(scheduler, (h // 2) * (w // 2))}


def _tk_flux2(scheduler, steps, inputs):
    from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu

    return {"sigmas": flow_sigmas(steps), "mu": compute_empirical_mu(inputs["hidden_states"].shape[1], steps)}


def _tk_cogview4(scheduler, steps, inputs):
    import numpy as np

    n = scheduler.config.num_train_timesteps
    ts = np.linspace(n, 1.0, steps).astype(np.int64).astype(np.float32)
    h, w = inputs["hidden_states"].shape[-2:]
    c = scheduler.config
    mu = ((h // 2) * (w // 2) / c.get("base_image_seq_len", 256)) ** 0.5 * c.get("max_shift", 0.75) + c.get(
        "base_shift", 0.25)
    return {"timesteps": ts, "sigmas": ts / n, "mu": mu}


def _tk_mochi(scheduler, steps, inputs):
    import numpy as np
    from diffusers.pipelines.mochi.pipeline_mochi import linear_quadratic_schedule

    return {"sigmas": np.array(linear_quadratic_schedule(steps, 0.025))}


def _tk_ernie(scheduler, steps, inputs):
    return {"sigmas": torch.linspace(1.0, 0.0, steps + 1)[:-1]}


def _tk_glm(scheduler, steps, inputs):
    import numpy as np

    n = scheduler.config.num_train_timesteps
    ts = np.linspace(n, 1.0, steps + 1)[:-1].astype(np.int64).astype(np.float32)
    h, w = inputs["hidden_states"].shape[-2:]
    return {"timesteps": ts, "sigmas": ts / n, "mu": mu_linear(scheduler, (h // 2) * (w // 2))}


def _tk_helios(scheduler, steps, inputs):
    import numpy as np

    return {"sigmas": np.linspace(0.999, 0.0, steps + 1)[:-1].astype(np.float32)}


def _tk_omnigen(scheduler, steps, inputs):
    import numpy as np

    return {"sigmas": np.linspace(1, 0, steps + 1)[:steps]}


def _shrink_byt5(model) -> None:
    """The ByT5 text projection has a hard-coded 2048-wide hidden layer (4.2M parameters): rebuild it 32 wide."""
    old = model.context_embedder_2
    if old is not None:
        model.context_embedder_2 = type(old)(old.linear_1.in_features, 32, old.linear_3.out_features)


def _stable_audio_rope(s):
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(4, s.t + 1, use_real=True, repeat_interleave_real=False)


def _tk_flow_sigmas(scheduler, steps, inputs):
    return {"sigmas": flow_sigmas(steps).tolist()}


def _tk_logsnr(scheduler, steps, inputs):
    from diffusers.pipelines.stable_audio_3.pipeline_stable_audio_3 import logsnr_sigma_schedule

    return {"sigmas": logsnr_sigma_schedule(steps, -6.0, 2.0)}


def _tk_ace_step(scheduler, steps, inputs, shift=3.0):
    grid = flow_sigmas(steps)
    return {"sigmas": (shift * grid / (1 + (shift - 1) * grid)).tolist()}


def _ideogram4_pack(latents, inputs):
    """The conditional call's packed sequence: zero padding for the text tokens, then the image latents."""
    pad = latents.new_zeros(latents.shape[0], inputs["_text_tokens"], latents.shape[2])
    return torch.cat([pad, latents], dim=1)


def _ideogram4_hidden(s, g, got):
    return _ideogram4_pack(torch.randn(s.B, s.hw, 16, generator=g), got)


def _ideogram4_text(s, g, got):
    out = torch.zeros(s.B, s.txt + s.hw, 24)
    out[:, : s.txt] = torch.randn(s.B, s.txt, 24, generator=g)
    return out


def _ideogram4_positions(s):
    from diffusers.models.transformers.transformer_ideogram4 import IMAGE_POSITION_OFFSET

    pos = torch.zeros(s.B, s.txt + s.hw, 3, dtype=torch.long)
    pos[:, : s.txt] = torch.arange(s.txt)[:, None]
    pos[:, s.txt:, 0] = IMAGE_POSITION_OFFSET
    pos[:, s.txt:, 1] = torch.arange(s.h).repeat_interleave(s.w) + IMAGE_POSITION_OFFSET
    pos[:, s.txt:, 2] = torch.arange(s.w).repeat(s.h) + IMAGE_POSITION_OFFSET
    return pos


def _ideogram4_indicator(s):
    from diffusers.models.transformers.transformer_ideogram4 import LLM_TOKEN_INDICATOR, OUTPUT_IMAGE_INDICATOR

    out = torch.full((s.B, s.txt + s.hw), OUTPUT_IMAGE_INDICATOR, dtype=torch.long)
    out[:, : s.txt] = LLM_TOKEN_INDICATOR
    return out


def _prev_timestep(scheduler, i):
    """UnCLIP's scheduler.step takes the next timestep of the schedule (None at the last step)."""
    ts = scheduler.timesteps
    return {"prev_timestep": ts[i + 1] if i + 1 < len(ts) else None}


def _per_frame_time(value, rows, kwargs):
    """``t`` for every frame of frame-major latents: ``(rows, F)``."""
    return value.reshape(1, 1).expand(rows, kwargs["hidden_states"].shape[1])


def _k6sr_pack(latents, inputs):
    """``[latent | anchor latent | anchor mask]`` on the channel-last axis (zeros for the anchor)."""
    anchor = inputs["_anchor"]
    return torch.cat([latents, anchor.repeat(latents.shape[0] // anchor.shape[0], 1, 1, 1, 1)], dim=-1)


# -- the table --------------------------------------------------------------------------------------------------------

FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec(
        name='sd3', model_class='SD3Transformer2DModel', pipeline='StableDiffusion3Pipeline',
        tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                         num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=32,
                         pooled_projection_dim=16, out_channels=4, pos_embed_max_size=16),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32), pooled_projections=randn("B", 16),
                    joint_attention_kwargs=None, return_dict=False),
        time=T('t.expand(2B) (batched rows)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        scheduler_note='mu only if the scheduler config has use_dynamic_shifting (SD3.5: no)',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('JointTransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=True, metadata_ok=True,
                                          note='the last block (context_pre_only) returns (None, hidden)'),
        },
        notes=(
            'caption_projection_dim must equal heads*head_dim',
            'last JointTransformerBlock has context_pre_only=True and returns None for the encoder stream',
            ('forward(skip_layers=...) (skip-layer guidance) skips blocks inside the model: the pipeline makes a '
             'third call per step when skip_guidance_layers is set'),
        ),
    ),
    FamilySpec(
        name='flux', model_class='FluxTransformer2DModel', pipeline='FluxPipeline',
        tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
                         axes_dims_rope=(4, 4, 8)),
        inputs=dict(hidden_states=packed(4), guidance=full(3.5, "B"), pooled_projections=randn("B", 32),
                    encoder_hidden_states=text(32), txt_ids=txt_ids(), img_ids=IMG_IDS, joint_attention_kwargs=None,
                    return_dict=False),
        time=T1000('t.expand(B) / 1000, float; the model multiplies by 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler',
        scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                              base_image_seq_len=256, max_image_seq_len=4096),
        scheduler_note='set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(image_seq_len))',
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='distilled', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('FluxTransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=True, metadata_ok=True),
            'single_transformer_blocks': BlockIO('FluxSingleTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                                 ENC_HID, registered=True, metadata_ok=True,
                                                 note='concatenates text+image inside the block and splits again'),
        },
        notes=(
            ('FLUX.1-dev: guidance-distilled (guidance embedding, one call).  true_cfg_scale>1 with a negative '
             "prompt adds a second call; both calls are wrapped in cache_context('cond') / ('uncond')"),
            'FLUX.1-schnell: guidance_embeds=False, cfg none',
            'controlnet residuals are added between blocks when controlnet_block_samples is passed',
        ),
    ),
    FamilySpec(
        name='flux2', model_class='Flux2Transformer2DModel', pipeline='Flux2Pipeline',
        tiny_config=dict(patch_size=1, in_channels=8, num_layers=1, num_single_layers=1, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=32, timestep_guidance_channels=32,
                         axes_dims_rope=(4, 4, 4, 4), guidance_embeds=True),
        inputs=dict(hidden_states=packed(2), guidance=full(4.0, "B"), encoder_hidden_states=text(32),
                    txt_ids=derived(lambda s: flux2_ids(s.B, 1, 1, 1, s.txt)),
                    img_ids=derived(lambda s: flux2_ids(s.B, 1, s.h // 2, s.w // 2, 1)), joint_attention_kwargs=None,
                    return_dict=False),
        time=T1000('t.expand(B) / 1000, float; the model multiplies by 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
        scheduler_note='set_timesteps(sigmas=linspace(1, 1/N, N), mu=compute_empirical_mu(image_seq_len, N))',
        timesteps_kwargs=_tk_flux2,
        cfg='distilled', cfg_contexts=None,
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        head_note=('text tokens are concatenated in front of the image tokens between the two lists '
                   '(torch.cat([encoder, hidden], 1)); after the single blocks the model slices hidden[:, '
                   "num_txt_tokens:] and feeds that to norm_out: same shape as the first block's hidden input"),
        block_io={
            'transformer_blocks': BlockIO('Flux2TransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=True, metadata_ok=True),
            'single_transformer_blocks': BlockIO('Flux2SingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', 'hidden_states', registered=True,
                                                 metadata_ok=True,
                                                 note=('called with encoder_hidden_states=None on the joint [text, '
                                                       'image] stream; returns a bare tensor (a tuple only if '
                                                       'split_hidden_states)')),
        },
        notes=(
            ('single blocks run on the concatenated [text, image] sequence, so their hidden input is longer than the '
             'stack input'),
            'ids are 4-axis (t, h, w, l) and 3-D (B, N, 4); the model drops the batch dim',
            ('modulation (double_stream_modulation_img/txt, single_stream_modulation) is computed once, outside the '
             'blocks'),
            ('Flux2KleinPipeline (no guidance embedding) runs separate cond/uncond calls in '
             "cache_context('cond'/'uncond')"),
            ('image edit: reference latents are concatenated to hidden_states (token axis) and the prediction is '
             'sliced back noise_pred[:, :latents.size(1)]'),
        ),
    ),
    FamilySpec(
        name='qwenimage', model_class='QwenImageTransformer2DModel', pipeline='QwenImagePipeline',
        tiny_config=dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False,
                         axes_dims_rope=(8, 4, 4)),
        inputs=dict(hidden_states=packed(4), guidance=None, encoder_hidden_states_mask=text_mask(torch.long),
                    encoder_hidden_states=text(16), img_shapes=derived(lambda s: [[(1, s.h // 2, s.w // 2)]] * s.B),
                    attention_kwargs=None, return_dict=False),
        time=T1000('t.expand(B) / 1000, float'),
        scheduler='FlowMatchEulerDiscreteScheduler',
        scheduler_kwargs=dict(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                              base_image_seq_len=256, max_image_seq_len=8192),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('QwenImageTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          ENC_HID, registered=True, metadata_ok=True),
        },
        notes=(
            ('true CFG only with a negative prompt and true_cfg_scale > 1; the combined prediction is renormalised '
             "to the cond prediction's norm"),
            ('img_shapes is a list (per sample) of lists of (frames, h/2, w/2); edit pipelines append the reference '
             "image's shape and concatenate its latents on the token axis"),
            'zero_cond_t=True (edit-plus) doubles the timestep batch internally',
        ),
    ),
    FamilySpec(
        name='zimage', model_class='ZImageTransformer2DModel', pipeline='ZImagePipeline',
        tiny_config=dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=2,
                         n_refiner_layers=1, n_heads=2, n_kv_heads=2, qk_norm=True, cap_feat_dim=16,
                         axes_dims=[8, 4, 4], axes_lens=[64, 32, 32]),
        inputs=dict(x=per_sample(4, 1, "h", "w"), cap_feats=per_sample("txt", 16), joint_attention_kwargs=None,
                    return_dict=False),
        time=REVERSED('(1000 - t.expand(B)) / 1000; repeat(2) under CFG', argument='t'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        scheduler_note='set_timesteps(sigmas=linspace(1, 1/N, N), mu=calculate_shift(seq)) (mu ignored unless dynamic)',
        timesteps_kwargs=_tk_zimage,
        cfg='batched', cfg_contexts=None,
        block_lists=('layers',), head='all_final_layer.2-1',
        always_run=('noise_refiner', 'context_refiner', 'siglip_refiner'),
        head_note=("the head is a ModuleDict entry keyed f'{patch_size}-{f_patch_size}'; its input is the unified "
                   '[image, text] sequence, the same tensor layout the first layer receives'),
        block_io={
            'layers': BlockIO('ZImageTransformerBlock', 'x', None, 'x', registered=True, metadata_ok=False,
                              called='positional',
                              note=('forward(x, attn_mask, freqs_cis, adaln_input, ...): the hidden argument is '
                                    'named `x`, but the registry metadata says '
                                    "hidden_states_argument_name='hidden_states', so diffusers' FirstBlockCache "
                                    "raises 'Parameter hidden_states not found in function signature' on Z-Image")),
        },
        latent_keys=('x',), positional=('x', 't', 'cap_feats'), pack=_zimage_pack, unpack_latents=_zimage_latents,
        unpack_output=_zimage_output, negate=True,
        notes=(
            'inputs are Python lists of per-sample tensors: x[i] is (C, 1, H, W), cap_feats[i] is (L_i, D)',
            'the pipeline calls transformer(x_list, t, cap_feats_list) positionally; output[0] is a list',
            'batched CFG concatenates the lists (cond first, then uncond) and repeats t; prediction is negated',
            'noise_refiner (image) and context_refiner (text) run before the main `layers` (always_run)',
            'guidance_scale <= 0 disables CFG (one call per step); cfg_truncation can drop CFG for late steps',
        ),
    ),
    FamilySpec(
        name='chroma', model_class='ChromaTransformer2DModel', pipeline='ChromaPipeline',
        tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8),
                         approximator_num_channels=8, approximator_hidden_dim=16, approximator_layers=1),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(32), txt_ids=txt_ids(), img_ids=IMG_IDS,
                    attention_mask=derived(lambda s: torch.ones(s.B, s.txt + s.n, dtype=torch.bool)),
                    joint_attention_kwargs=None, return_dict=False),
        time=T1000('t.expand(B) / 1000, float'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=None,
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        head_note=('text is concatenated in front of the image between the lists; the model slices hidden[:, '
                   'txt_len:] before norm_out'),
        block_io={
            'transformer_blocks': BlockIO('ChromaTransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=False),
            'single_transformer_blocks': BlockIO('ChromaSingleTransformerBlock', 'hidden_states', None, 'hidden_states',
                                                 registered=False,
                                                 note=('takes no encoder_hidden_states: runs on the joint [text, '
                                                       'image] stream, returns a bare tensor')),
        },
        notes=(
            'separate cond/uncond calls WITHOUT cache_context (the pipeline never sets one)',
            'per-block modulation is sliced from one pooled_temb computed by distilled_guidance_layer',
            'attention_mask covers text + image tokens (B, L_txt + N_img)',
        ),
    ),
    FamilySpec(
        name='hidream', model_class='HiDreamImageTransformer2DModel', pipeline='HiDreamImagePipeline',
        tiny_config=dict(patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=1,
                         attention_head_dim=8, num_attention_heads=4, caption_channels=[8, 4], text_emb_dim=8,
                         num_routed_experts=2, num_activated_experts=2, axes_dims_rope=(4, 2, 2),
                         max_resolution=(32, 32), llama_layers=(0, 1)),
        inputs=dict(hidden_states=image(4), encoder_hidden_states_t5=text(8),
                    encoder_hidden_states_llama3=randn(2, "B", "txt", 4), pooled_embeds=randn("B", 8),
                    attention_kwargs=None, return_dict=False),
        time=T('t.expand(2B) (batched rows)', argument='timesteps'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        scheduler_note='pipeline passes mu=calculate_shift(transformer.max_seq) (used only with dynamic shifting)',
        cfg='batched', cfg_contexts=None,
        block_lists=('double_stream_blocks', 'single_stream_blocks'), head='final_layer',
        head_note=('between the lists the text stream is appended after the image tokens; every single block gets '
                   'one more Llama layer appended and the model slices back to the pre-block length after it; before '
                   'final_layer the model slices hidden[:, :image_tokens]'),
        block_io={
            'double_stream_blocks': BlockIO('HiDreamBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                            registered=False,
                                            note=('wraps HiDreamImageTransformerBlock; its encoder input is '
                                                  '[t5+llama_last, llama_k] and the model truncates the returned '
                                                  'encoder')),
            'single_stream_blocks': BlockIO('HiDreamBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                                            registered=False,
                                            note=('wraps HiDreamImageSingleTransformerBlock; called with '
                                                  'encoder_hidden_states=None on [image, text, llama_k]')),
        },
        negate=True,
        notes=(
            'argument is `timesteps` (plural)',
            ('encoder_hidden_states_llama3 is stacked per Llama layer: (n_layers, B, L, D); block k reads layer '
             'llama_layers[k], so each block sees a different text input'),
            'the pipeline negates the model output',
            'MoE feed-forward (routed experts) in the blocks',
        ),
    ),
    FamilySpec(
        name='lumina2', model_class='Lumina2Transformer2DModel', pipeline='Lumina2Pipeline',
        tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2, num_refiner_layers=1,
                         num_attention_heads=3, num_kv_heads=1, multiple_of=2, axes_dim_rope=(4, 2, 2),
                         axes_lens=(64, 32, 32), cap_feat_dim=32),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32),
                    encoder_attention_mask=text_mask(torch.bool), return_dict=False, attention_kwargs=None),
        time=REVERSED('(1 - t / 1000).expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=6.0, use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_4d(2)),
        cfg='separate', cfg_contexts=None,
        block_lists=('layers',), head='norm_out',
        always_run=('context_refiner', 'noise_refiner'),
        head_note=('the stack runs on the joint [text, image] sequence built after the refiners; norm_out gets it '
                   'whole (the model slices the image tokens out after the head)'),
        block_io={
            'layers': BlockIO('Lumina2TransformerBlock', 'hidden_states', None, 'hidden_states', registered=False,
                              called='positional',
                              note='layer(hidden, attention_mask, rotary_emb, temb)'),
        },
        negate=True,
        notes=(
            'separate cond/uncond calls WITHOUT cache_context',
            'cfg_trunc_ratio: the uncond call is dropped once (i+1)/N > cfg_trunc_ratio (default 1.0: never)',
            'the pipeline negates the model output',
        ),
    ),
    FamilySpec(
        name='sana', model_class='SanaTransformer2DModel', pipeline='SanaPipeline',
        tiny_config=dict(patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                         num_attention_heads=2, num_cross_attention_heads=2, cross_attention_head_dim=8,
                         cross_attention_dim=16, caption_channels=16, sample_size=8),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    return_dict=False, attention_kwargs=None),
        time=T('t.expand(2B) * transformer.config.timestep_scale (1.0 for Sana; Sana-Sprint differs)'),
        scheduler='DPMSolverMultistepScheduler',
        scheduler_kwargs=dict(prediction_type='flow_prediction', use_flow_sigmas=True, flow_shift=3.0),
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        head_note='norm_out is SanaModulatedNorm, called (hidden, embedded_timestep, scale_shift_table)',
        block_io={
            'transformer_blocks': BlockIO('SanaTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=False, called='positional',
                                          note='block(hidden, attention_mask, encoder, encoder_mask, timestep, h, w)'),
        },
        positional=('hidden_states',),
        notes=(
            'the time value is multiplied by transformer.config.timestep_scale in the pipeline',
            'if out_channels // 2 == latent channels the pipeline keeps the first half',
        ),
    ),
    FamilySpec(
        name='hunyuandit', model_class='HunyuanDiT2DModel', pipeline='HunyuanDiTPipeline',
        tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_layers=4, attention_head_dim=8,
                         num_attention_heads=2, cross_attention_dim=16, cross_attention_dim_t5=16,
                         pooled_projection_dim=8, hidden_size=16, text_len=6, text_len_t5=6,
                         activation_fn='gelu-approximate'),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(16), text_embedding_mask=text_mask(torch.long),
                    encoder_hidden_states_t5=text(16, "txt_t5"), text_embedding_mask_t5=text_mask(torch.long, "txt_t5"),
                    image_meta_size=derived(lambda s: torch.tensor([[64.0, 64.0, 64.0, 64.0, 0.0, 0.0]] * s.B)),
                    style=zeros("B", dtype=torch.long), image_rotary_emb=derived(_hunyuandit_rope), return_dict=False),
        size=dict(h=8, w=8, txt=6, txt_t5=6),
        time=T('torch.tensor([t] * 2B), latent dtype; positional arg 1'),
        scheduler='DDPMScheduler',
        scheduler_kwargs=dict(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.018,
                              prediction_type='v_prediction', clip_sample=False, steps_offset=1),
        cfg='batched', cfg_contexts=None,
        block_lists=('blocks',), head='norm_out',
        block_io={
            'blocks': BlockIO('HunyuanDiTBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False,
                              note=('blocks in the second half take skip= (a long skip connection to the output of a '
                                    'first-half block)')),
        },
        positional=('hidden_states', 'timestep'), time_fn=expand_time_float, learned_sigma=True, scale_model_input=True,
        notes=(
            ('U-Net-like long skips: blocks 0..L/2-2 push their outputs on a stack, blocks L/2+1.. pop one and '
             "receive it as `skip=` (a skipped block's pushed output is then its input)"),
            'learn_sigma=True: 2x output channels, the pipeline keeps the first half',
            'the pipeline passes hidden_states and the timestep positionally',
        ),
    ),
    FamilySpec(
        name='auraflow', model_class='AuraFlowTransformer2DModel', pipeline='AuraFlowPipeline',
        tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=1,
                         attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
                         out_channels=4, pos_embed_max_size=64),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32), return_dict=False, attention_kwargs=None),
        time=T1000('torch.tensor([t / 1000]).expand(2B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=1.73),
        cfg='batched', cfg_contexts=None,
        block_lists=('joint_transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        head_note=('text (with register tokens prepended) is concatenated in front of the image between the lists; '
                   'the model slices combined[:, encoder_seq_len:] before norm_out'),
        block_io={
            'joint_transformer_blocks': BlockIO('AuraFlowJointTransformerBlock', 'hidden_states',
                                                'encoder_hidden_states', ENC_HID, registered=False),
            'single_transformer_blocks': BlockIO('AuraFlowSingleTransformerBlock', 'hidden_states', None,
                                                 'hidden_states', registered=False,
                                                 note='runs on the joint [text, image] stream'),
        },
        positional=('hidden_states',),
        notes=(
            'register_tokens are prepended to the text stream before the blocks',
        ),
    ),
    FamilySpec(
        name='cogview4', model_class='CogView4Transformer2DModel', pipeline='CogView4Pipeline',
        tiny_config=dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                         out_channels=4, text_embed_dim=8, time_embed_dim=8, condition_dim=4, rope_axes_dim=(4, 4)),
        inputs=dict(**COGVIEW, attention_kwargs=None, return_dict=False),
        time=T('t.expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler',
        scheduler_kwargs=dict(base_shift=0.25, max_shift=0.75, base_image_seq_len=256, use_dynamic_shifting=True,
                              time_shift_type='linear'),
        scheduler_note=('set_timesteps(timesteps=linspace(1000, 1, N), sigmas=timesteps/1000, '
                        'mu=sqrt(seq/256)*0.75+0.25)'),
        timesteps_kwargs=_tk_cogview4,
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('CogView4TransformerBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                          registered=True, metadata_ok=True, called='positional'),
        },
        notes=(
            'blocks are called positionally: block(hidden, encoder, temb, rotary, attention_mask, kwargs)',
        ),
    ),
    FamilySpec(
        name='hunyuanimage', model_class='HunyuanImageTransformer2DModel', pipeline='HunyuanImagePipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
                         num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=(1, 1), text_embed_dim=16,
                         text_embed_2_dim=8, rope_axes_dim=(4, 4)),
        inputs=dict(hidden_states=image(4), timestep_r=None, guidance=None, attention_kwargs=None, return_dict=False,
                    encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    encoder_hidden_states_2=text(8, "txt2"), encoder_attention_mask_2=text_mask(count="txt2")),
        size=dict(h=8, w=8, txt=8, txt2=4),
        time=T('t.expand(B), latent dtype'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=5.0),
        scheduler_note='set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])',
        timesteps_kwargs=tk_sigmas_to_zero,
        cfg='separate', cfg_contexts=('pred_cond', 'pred_uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        always_run=('context_embedder',),
        block_io={
            'transformer_blocks': BlockIO('HunyuanImageTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=True, metadata_ok=True, called='positional'),
            'single_transformer_blocks': BlockIO('HunyuanImageSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', HID_ENC, registered=True, metadata_ok=True,
                                                 called='positional',
                                                 note='concatenates and splits text/image inside the block'),
        },
        post_build=_shrink_byt5,
        notes=(
            ('guidance goes through a diffusers Guider (AdaptiveProjectedMixGuidance): one call per guider batch, '
             "each in cache_context(<guider identifier>) = 'pred_cond' / 'pred_uncond'"),
            ('the distilled checkpoint (guidance_embeds=True) runs one call with '
             'guidance=distilled_guidance_scale*1000 and the guider disabled; use_meanflow checkpoints also pass '
             'timestep_r = next timestep'),
            'context_embedder is a token refiner (HunyuanImageTokenRefiner, with its own blocks) that always runs',
            'tiny_transformer rebuilds context_embedder_2 (ByT5 projection, hidden width hard-coded to 2048) 32 wide',
        ),
    ),
    FamilySpec(
        name='hunyuanvideo', model_class='HunyuanVideoTransformer3DModel', pipeline='HunyuanVideoPipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
                         num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
                         text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4)),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    pooled_projections=randn("B", 8), guidance=derived(lambda s: torch.tensor([6.0] * s.B) * 1000.0),
                    attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B), latent dtype'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=7.0),
        scheduler_note='set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])',
        timesteps_kwargs=tk_sigmas_to_zero,
        cfg='distilled', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        always_run=('context_embedder',),
        block_io={
            'transformer_blocks': BlockIO('HunyuanVideoTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=True, metadata_ok=True, called='positional'),
            'single_transformer_blocks': BlockIO('HunyuanVideoSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', HID_ENC, registered=True, metadata_ok=True,
                                                 called='positional'),
        },
        notes=(
            ("guidance-distilled: guidance = guidance_scale * 1000 in one call in cache_context('cond'); "
             "true_cfg_scale > 1 with a negative prompt adds an uncond call in cache_context('uncond')"),
            ('blocks are called positionally (hidden, encoder, temb, attention_mask, rotary, token_replace_emb, '
             'first_frame_num_tokens)'),
            'context_embedder is a token refiner with its own transformer blocks (always runs)',
        ),
    ),
    FamilySpec(
        name='hunyuanvideo15', model_class='HunyuanVideo15Transformer3DModel', pipeline='HunyuanVideo15Pipeline',
        tiny_config=dict(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                         num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
                         text_embed_2_dim=8, image_embed_dim=8, rope_axes_dim=(2, 2, 4), target_size=16,
                         task_type='t2v'),
        inputs=dict(hidden_states=In(_hv15_hidden), image_embeds=zeros("B", "img", 8), attention_kwargs=None,
                    return_dict=False, encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    encoder_hidden_states_2=text(8, "txt2"), encoder_attention_mask_2=text_mask(count="txt2")),
        size=dict(f=2, h=8, w=8, txt=6, txt2=4, img=3),
        time=T('t.expand(B), latent dtype'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=5.0),
        scheduler_note='set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])',
        timesteps_kwargs=tk_sigmas_to_zero,
        cfg='separate', cfg_contexts=('pred_cond', 'pred_uncond'),
        block_lists=('transformer_blocks',), head='norm_out',
        always_run=('context_embedder',),
        block_io={
            'transformer_blocks': BlockIO('HunyuanVideo15TransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=False, called='positional'),
        },
        pack=_hv15_pack, unpack_latents=_hv15_latents, post_build=_shrink_byt5,
        notes=(
            ('tiny_transformer rebuilds context_embedder_2 (ByT5 projection, hidden width hard-coded to 2048) 32 '
             'wide to stay tiny'),
            'hidden_states = cat([latents, cond_latents, mask], dim=1): in_channels = 2*C + 1 (zeros for t2v)',
            "guidance through a ClassifierFreeGuidance guider: calls in cache_context('pred_cond'/'pred_uncond')",
            'image_embeds all-zero means t2v (the image tokens are masked out)',
        ),
    ),
    FamilySpec(
        name='cogvideox', model_class='CogVideoXTransformer3DModel', pipeline='CogVideoXPipeline',
        tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
                         text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2,
                         patch_size_t=None, temporal_compression_ratio=4, max_text_seq_length=8),
        inputs=dict(hidden_states=frames_first(4), encoder_hidden_states=text(8), image_rotary_emb=None,
                    attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(2B) (int64 from the DDIM-style scheduler)'),
        scheduler='CogVideoXDDIMScheduler',
        scheduler_kwargs=COGVIDEOX_DDIM,
        cfg='batched', cfg_contexts=('cond_uncond',),
        block_lists=('transformer_blocks',), head='norm_final',
        head_note='norm_final (a LayerNorm) receives the stack output; norm_out (AdaLayerNorm) follows it',
        block_io={
            'transformer_blocks': BlockIO('CogVideoXBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                          registered=True, metadata_ok=True),
        },
        scale_model_input=True,
        notes=(
            'latents are frame-major (B, F, C, H, W), unlike most video models',
            "batched CFG inside cache_context('cond_uncond')",
            'patch_embed embeds text and video together and the model splits them before the blocks',
            'checkpoints with use_rotary_positional_embeddings get image_rotary_emb from the pipeline',
            'use_dynamic_cfg changes the guidance scale per step',
        ),
    ),
    FamilySpec(
        name='ltx', model_class='LTXVideoTransformer3DModel', pipeline='LTXPipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8,
                         cross_attention_dim=16, num_layers=2, qk_norm='rms_norm_across_heads', caption_channels=16),
        inputs=dict(hidden_states=tokens(4), encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    num_frames=SIZE_F, height=SIZE_H, width=SIZE_W, rope_interpolation_scale=(8 / 25, 32, 32),
                    attention_kwargs=None, return_dict=False),
        size=dict(f=2, h=4, w=4, txt=8),
        time=T('t.expand(2B)'),
        scheduler='FlowMatchEulerDiscreteScheduler',
        scheduler_kwargs=dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                              max_image_seq_len=4096),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='batched', cfg_contexts=('cond_uncond',),
        block_lists=('transformer_blocks',), head='norm_out',
        head_note='norm_out is a plain LayerNorm; the model applies scale_shift_table modulation after it',
        block_io={
            'transformer_blocks': BlockIO('LTXVideoTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=True, metadata_ok=True),
        },
        notes=(
            'latents are packed tokens (B, F*H*W, C) (patch size 1); num_frames/height/width are latent sizes',
            'LTXConditionPipeline/image2video pass a per-token timestep (B, N) for conditioning frames',
        ),
    ),
    FamilySpec(
        name='ltx2', model_class='LTX2VideoTransformer3DModel', pipeline='LTX2Pipeline',
        tiny_config=dict(in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
                         attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
                         audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8,
                         num_layers=2, qk_norm='rms_norm_across_heads', caption_channels=16,
                         rope_double_precision=False),
        inputs=dict(hidden_states=tokens(4), audio_hidden_states=tokens(4, "audio_frames"),
                    encoder_hidden_states=text(16), audio_encoder_hidden_states=text(16),
                    encoder_attention_mask=text_mask(), audio_encoder_attention_mask=text_mask(), num_frames=SIZE_F,
                    height=SIZE_H, width=SIZE_W, fps=24.0, audio_num_frames=derived(lambda s: s.audio_frames),
                    isolate_modalities=False, spatio_temporal_guidance_blocks=None, perturbation_mask=None,
                    use_cross_timestep=False, attention_kwargs=None, return_dict=False),
        size=dict(f=2, h=4, w=4, txt=8, audio_frames=5),
        time=T('t.expand(2B); the same tensor is also passed as sigma= (LTX-2.3 prompt AdaLN)'),
        scheduler='FlowMatchEulerDiscreteScheduler',
        scheduler_kwargs=dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                              max_image_seq_len=4096),
        scheduler_note='a copy of the scheduler steps the audio latents',
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='batched', cfg_contexts=('cond_uncond',),
        block_lists=('transformer_blocks',), head='norm_out',
        head_note=("TWO streams: norm_out gets the video stream (same shape as the first block's hidden input); the "
                   'audio stream leaves the stack into audio_norm_out, which a single-head cache does not cover'),
        block_io={
            'transformer_blocks': BlockIO('LTX2VideoTransformerBlock', 'hidden_states', 'audio_hidden_states',
                                          ('hidden_states', 'audio_hidden_states'), registered=False,
                                          note='returns (video, audio); text streams are not updated by the blocks'),
        },
        latent_keys=('hidden_states', 'audio_hidden_states'),
        notes=(
            ('joint audio-video model: two latent streams, two outputs (video, audio), two heads (norm_out, '
             'audio_norm_out): caching the stack needs both residuals'),
            'the pipeline passes timestep and sigma=timestep (two time arguments); audio_timestep defaults to timestep',
            ("optional extra calls per step in cache_context('uncond_stg') and ('uncond_modality') for STG / "
             'modality-isolation guidance'),
            'guidance is combined in x0 space (convert_velocity_to_x0); equivalent to plain CFG on velocities',
        ),
    ),
    FamilySpec(
        name='mochi', model_class='MochiTransformer3DModel', pipeline='MochiPipeline',
        tiny_config=dict(patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                         pooled_projection_dim=16, in_channels=4, qk_norm='rms_norm', text_embed_dim=16,
                         time_embed_dim=4, activation_fn='swiglu', max_sequence_length=16),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16),
                    encoder_attention_mask=text_mask(torch.bool), attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(2B), latent dtype; with the hub scheduler (invert_sigmas=True) t = 1000 * (1 - sigma)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(invert_sigmas=True),
        scheduler_note='set_timesteps(sigmas=linear_quadratic_schedule(N, 0.025))',
        timesteps_kwargs=_tk_mochi,
        cfg='batched', cfg_contexts=('cond_uncond',),
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('MochiTransformerBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                          registered=True, metadata_ok=True,
                                          note='the last block (context_pre_only) returns the encoder input unchanged'),
        },
        notes=(
            ('the pipeline passes t itself; the scheduler is inverted (invert_sigmas=True) so t already equals 1000 '
             '- 1000*sigma (pipeline._current_timestep = 1000 - t is only bookkeeping)'),
            "batched CFG inside cache_context('cond_uncond')",
        ),
    ),
    FamilySpec(
        name='skyreels_v2', model_class='SkyReelsV2Transformer3DModel', pipeline='SkyReelsV2Pipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                         out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                         qk_norm='rms_norm_across_heads', rope_max_seq_len=32),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B)'),
        scheduler='UniPCMultistepScheduler',
        scheduler_kwargs=dict(prediction_type='flow_prediction', use_flow_sigmas=True, flow_shift=8.0),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('blocks',), head='norm_out',
        head_note='norm_out is a plain LayerNorm; scale_shift_table modulation is applied by the model after it',
        block_io={
            'blocks': BlockIO('SkyReelsV2TransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False, called='positional',
                              note='blocks are called positionally: block(hidden, encoder, timestep_proj, rotary_emb)'),
        },
        notes=(
            'diffusion-forcing pipelines pass a per-frame timestep (B, F) and enable_diffusion_forcing=True',
        ),
    ),
    FamilySpec(
        name='cosmos', model_class='CosmosTransformer3DModel', pipeline='CosmosTextToWorldPipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
                         mlp_ratio=2, text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
                         rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type='learnable'),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), fps=30, padding_mask=zeros(1, 1, "h", "w"),
                    return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B) where t = EDM precondition_noise(sigma) = 0.25*log(sigma)'),
        scheduler='EDMEulerScheduler',
        scheduler_kwargs=dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, sigma_schedule='karras', rho=7.0,
                              prediction_type='epsilon', final_sigmas_type='sigma_min'),
        cfg='separate', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('CosmosTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=False, called='positional',
                                          note=('block(hidden, encoder, embedded_timestep, temb, rotary, '
                                                'extra_pos_emb, attention_mask, controlnet_residual)')),
        },
        scale_model_input=True,
        notes=(
            ('tiny config uses concat_padding_mask=False: the real checkpoints set it True, which resizes the '
             'padding mask with torchvision (not installable here)'),
            ('separate cond/uncond calls WITHOUT cache_context; guidance is applied to the x0 prediction and the EDM '
             'step is taken twice (scheduler._step_index -= 1)'),
            ('Cosmos 2 (Cosmos2TextToImagePipeline) passes timestep = sigma / (sigma + 1) (not affine in t) and '
             'scales the input by c_in; Cosmos 2.5 passes sigma (per frame (B,1,T,1,1) when conditioning frames)'),
        ),
    ),
    FamilySpec(
        name='wan_vace', model_class='WanVACETransformer3DModel', pipeline='WanVACEPipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                         out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                         qk_norm='rms_norm_across_heads', rope_max_seq_len=32, vace_layers=[0, 1], vace_in_channels=8),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), control_hidden_states=video(8),
                    control_hidden_states_scale=None, attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=5.0),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('vace_blocks', 'blocks'), head='norm_out',
        head_note=('all vace_blocks run first (on the control stream, reading the main hidden stream); their hints '
                   'are added to the main stream after blocks vace_layers[i]'),
        block_io={
            'vace_blocks': BlockIO('WanVACETransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                   ('zeros:control_hidden_states', 'control_hidden_states'), registered=False,
                                   called='positional',
                                   note=('block(hidden, encoder, control, temb, rotary) -> (hint, control); the '
                                         'hidden stream is only read; a skipped VACE block must return a zero hint')),
            'blocks': BlockIO('WanTransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=True, metadata_ok=True, called='positional',
                              note='blocks are called positionally: block(hidden, encoder, timestep_proj, rotary_emb)'),
        },
        notes=(
            ('the VACE branch is part of the stack (it depends on the hidden stream and is as costly as the main '
             'blocks); the first block is vace_blocks[0], whose hidden_states is the stack input'),
            'control_hidden_states = conditioning latents (video + mask), fixed over the loop',
            'Wan2.2 VACE can switch to transformer_2 below boundary_ratio',
        ),
    ),
    FamilySpec(
        name='allegro', model_class='AllegroTransformer3DModel', pipeline='AllegroPipeline',
        tiny_config=dict(num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=2,
                         cross_attention_dim=24, sample_width=8, sample_height=8, sample_frames=8, caption_channels=8),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(8), encoder_attention_mask=text_mask(),
                    image_rotary_emb=derived(_allegro_rope), return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(2B)'),
        scheduler='EulerAncestralDiscreteScheduler', scheduler_kwargs=dict(),
        scheduler_note='pipeline type hint: KarrasDiffusionSchedulers',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('AllegroTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=False),
        },
        scale_model_input=True,
    ),
    FamilySpec(
        name='latte', model_class='LatteTransformer3DModel', pipeline='LattePipeline',
        tiny_config=dict(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2,
                         caption_channels=8, in_channels=4, cross_attention_dim=16, out_channels=8, attention_bias=True,
                         activation_fn='gelu-approximate', num_embeds_ada_norm=1000, norm_type='ada_norm_single',
                         norm_elementwise_affine=False, norm_eps=1e-06, video_length=2),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(8), enable_temporal_attentions=True,
                    return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(2B)'),
        scheduler='DDIMScheduler', scheduler_kwargs=dict(beta_schedule='linear', clip_sample=False),
        scheduler_note='pipeline type hint: KarrasDiffusionSchedulers',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks', 'temporal_transformer_blocks'), head='norm_out',
        head_note=('the two lists are INTERLEAVED (spatial[0], temporal[0], spatial[1], ...), with reshapes (B*F, N, '
                   'D) <-> (B*N, F, D) between them and temp_pos_embed added before temporal[0]; norm_out gets (B*F, '
                   "N, D), the layout of the first spatial block's input"),
        block_io={
            'transformer_blocks': BlockIO('BasicTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=True, metadata_ok=True, called='positional'),
            'temporal_transformer_blocks': BlockIO('BasicTransformerBlock', 'hidden_states', None, 'hidden_states',
                                                   registered=True, metadata_ok=True, called='positional',
                                                   note='runs on the (B*N, F, D) layout'),
        },
        learned_sigma=True, scale_model_input=True,
        notes=(
            ("block execution order interleaves the two lists; the stack input is the first spatial block's (B*F, N, "
             'D) input'),
            'temp_pos_embed is added between spatial[0] and temporal[0] (inside the stack)',
            'the model needs frames == video_length when frames > 1 (temp_pos_embed)',
            'learned sigma: the pipeline keeps the first half of the output channels',
        ),
    ),
    FamilySpec(
        name='bria', model_class='BriaTransformer2DModel', pipeline='BriaPipeline',
        tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=None,
                         axes_dims_rope=[0, 4, 4]),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(32), attention_kwargs=None, return_dict=False,
                    txt_ids=txt_ids(), img_ids=IMG_IDS),
        time=T('t.expand(2B) (raw 0..1000, no /1000)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('BriaTransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=True, metadata_ok=False,
                                          note=('registry says hidden at index 0, encoder None: wrong, the block '
                                                'returns (encoder, hidden)')),
            'single_transformer_blocks': BlockIO('BriaSingleTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                                 ENC_HID, registered=False),
        },
        notes=(
            'FLUX-like, but the pipeline passes raw t (no /1000) and batches cond/uncond',
            'TransformerBlockRegistry metadata for BriaTransformerBlock is wrong (index 0 is the encoder stream)',
        ),
    ),
    FamilySpec(
        name='dit', model_class='DiTTransformer2DModel', pipeline='DiTPipeline',
        tiny_config=dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                         sample_size=8, patch_size=2, num_embeds_ada_norm=1000),
        inputs=dict(hidden_states=image(4), class_labels=randint(1000, "B")),
        time=T('t.expand(2B) (int64)'),
        scheduler='DDIMScheduler', scheduler_kwargs=dict(),
        scheduler_note='pipeline type hint: KarrasDiffusionSchedulers (docstring: DDIMScheduler)',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        head_note=('norm_out is a plain LayerNorm; conditioning for the output modulation is recomputed with '
                   'transformer_blocks[0].norm1.emb(...) AFTER the stack'),
        block_io={
            'transformer_blocks': BlockIO('BasicTransformerBlock', 'hidden_states', None, 'hidden_states',
                                          registered=True, metadata_ok=True),
        },
        positional=('hidden_states',), learned_sigma=True, scale_model_input=True,
        notes=(
            "the head calls a block's submodule outside the block: transformer_blocks[0].norm1.emb",
            ('the pipeline reads `.sample` (return_dict=True) and uses class id 1000 as the null class for CFG, so '
             'num_embeds_ada_norm must be >= 1000 with guidance'),
            'learned sigma: the pipeline keeps the first half of the output channels (CFG only on eps)',
        ),
    ),
    FamilySpec(
        name='pixart', model_class='PixArtTransformer2DModel', pipeline='PixArtSigmaPipeline',
        tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
                         cross_attention_dim=16, sample_size=8, patch_size=2, caption_channels=32,
                         norm_type='ada_norm_single', use_additional_conditions=False),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32), encoder_attention_mask=text_mask(),
                    added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False),
        time=T('t.expand(2B)'),
        scheduler='DPMSolverMultistepScheduler', scheduler_kwargs=dict(),
        scheduler_note='pipeline type hint: KarrasDiffusionSchedulers',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        head_note='norm_out is a plain LayerNorm; scale_shift_table modulation follows it',
        block_io={
            'transformer_blocks': BlockIO('BasicTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=True, metadata_ok=True),
        },
        positional=('hidden_states',), learned_sigma=True, scale_model_input=True,
        notes=(
            'PixArtAlphaPipeline calls the model the same way (use_additional_conditions for 1024px alpha)',
        ),
    ),
    FamilySpec(
        name='wan', model_class='WanTransformer3DModel', pipeline='WanPipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                         out_channels=16, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                         qk_norm='rms_norm_across_heads', rope_max_seq_len=32),
        inputs=dict(hidden_states=video(16), encoder_hidden_states=text(32), attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B); Wan2.2 TI2V (expand_timesteps) passes a per-token (B, N) timestep'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=5.0),
        scheduler_note='hub checkpoints ship UniPCMultistepScheduler(flow_prediction, use_flow_sigmas, flow_shift)',
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('blocks',), head='norm_out',
        head_note='norm_out is a plain FP32LayerNorm; scale_shift_table modulation follows it',
        block_io={
            'blocks': BlockIO('WanTransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=True, metadata_ok=True, called='positional',
                              note='blocks are called positionally: block(hidden, encoder, timestep_proj, rotary_emb)'),
        },
        notes=(
            ("cache_context('cond'/'uncond', step_index=i, sigma=scheduler.sigmas[i], num_inference_steps=N): "
             'diffusers 0.42 passes the step position in the context'),
            ('Wan2.2 A14B switches from transformer to transformer_2 when t < boundary_ratio * 1000 (two models, one '
             'loop)'),
        ),
    ),
    FamilySpec(
        name='chronoedit', model_class='ChronoEditTransformer3DModel', pipeline='ChronoEditPipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=12,
                         out_channels=4, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                         qk_norm='rms_norm_across_heads', image_dim=8, rope_max_seq_len=64, rope_temporal_skip_len=8),
        inputs=dict(_latents=video(4), _condition=video(8), hidden_states=CAT_CONDITION, encoder_hidden_states=text(16),
                    encoder_hidden_states_image=randn("B", 4, 8), attention_kwargs=None, return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=5.0),
        scheduler_note=('the pipeline also pokes UniPC internals (model_outputs/last_sample) when temporal reasoning '
                        'ends'),
        cfg='separate', cfg_contexts=None,
        block_lists=('blocks',), head='norm_out',
        block_io={
            'blocks': BlockIO('WanTransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False, called='positional',
                              note=('transformer_chronoedit defines its OWN WanTransformerBlock class (a copy); the '
                                    'registry only knows transformer_wan.WanTransformerBlock, so lookups by class '
                                    'fail for ChronoEdit. blocks are called positionally: block(hidden, encoder, '
                                    'timestep_proj, rotary_emb)')),
        },
        pack=cat_condition, unpack_latents=first_channels(4),
        notes=(
            'hidden_states = cat([latents, condition], dim=1) (condition = mask + encoded input image)',
            'separate cond/uncond calls WITHOUT cache_context',
            ('enable_temporal_reasoning: after num_temporal_reasoning_steps the latents shrink to frames [0, -1], so '
             'the token count changes in the middle of sampling'),
            'encoder_hidden_states_image (CLIP image tokens) are prepended to the text tokens inside the model',
        ),
    ),
    FamilySpec(
        name='sana_video', model_class='SanaVideoTransformer3DModel', pipeline='SanaVideoPipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
                         num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
                         caption_channels=16, mlp_ratio=2.5, sample_size=8, patch_size=(1, 2, 2),
                         qk_norm='rms_norm_across_heads', rope_max_seq_len=32),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    return_dict=False, attention_kwargs=None),
        size=VIDEO_SIZES,
        time=T('t.expand(2B)'),
        scheduler='DPMSolverMultistepScheduler',
        scheduler_kwargs=dict(prediction_type='flow_prediction', use_flow_sigmas=True, flow_shift=8.0),
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('SanaVideoTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=False, called='positional',
                                          note=('block(hidden, attention_mask, encoder, encoder_mask, timestep, '
                                                'frames, h, w, rotary)')),
        },
        positional=('hidden_states',),
        notes=(
            'like Sana: norm_out is SanaModulatedNorm(hidden, embedded_timestep, scale_shift_table)',
        ),
    ),
    FamilySpec(
        name='easyanimate', model_class='EasyAnimateTransformer3DModel', pipeline='EasyAnimatePipeline',
        tiny_config=dict(attention_head_dim=16, num_attention_heads=2, in_channels=4, mmdit_layers=2, num_layers=2,
                         out_channels=4, patch_size=2, sample_height=16, sample_width=16, text_embed_dim=16,
                         time_embed_dim=8, time_position_encoding_type='3d_rope', timestep_activation_fn='silu'),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), return_dict=False),
        size=VIDEO_SIZES,
        time=T('torch.tensor([t] * 2B) in the latent dtype; positional arg 1'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(),
        scheduler_note='set_timesteps(N, mu=1) for FlowMatchEuler',
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_final',
        head_note='norm_final (LayerNorm) gets the stack output; norm_out (AdaLayerNorm) follows',
        block_io={
            'transformer_blocks': BlockIO('EasyAnimateTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=False, called='positional'),
        },
        positional=('hidden_states', 'timestep'), time_fn=expand_time_float,
        notes=(
            'inpaint/control variants concatenate inpaint_latents/control_latents on the channel axis inside the model',
            'text_embed_dim_t5 adds a second text stream concatenated after the first',
        ),
    ),
    FamilySpec(
        name='cogview3plus', model_class='CogView3PlusTransformer2DModel', pipeline='CogView3PlusPipeline',
        tiny_config=dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                         out_channels=4, text_embed_dim=8, time_embed_dim=8, condition_dim=2, pos_embed_max_size=8,
                         sample_size=8),
        inputs=dict(**COGVIEW, return_dict=False),
        time=T('t.expand(2B)'),
        scheduler='CogVideoXDDIMScheduler',
        scheduler_kwargs=COGVIDEOX_DDIM,
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('CogView3PlusTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=False),
        },
        scale_model_input=True,
        notes=(
            'patch_embed embeds text and image together; the model splits them before the blocks',
        ),
    ),
    FamilySpec(
        name='consisid', model_class='ConsisIDTransformer3DModel', pipeline='ConsisIDPipeline',
        tiny_config=dict(num_attention_heads=2, attention_head_dim=8, in_channels=8, out_channels=4, time_embed_dim=2,
                         text_embed_dim=8, num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2,
                         temporal_compression_ratio=4, max_text_seq_length=8, cross_attn_interval=1, is_kps=False,
                         is_train_face=True, cross_attn_dim_head=1, cross_attn_num_heads=1, LFE_id_dim=2, LFE_vit_dim=2,
                         LFE_depth=5, LFE_dim_head=8, LFE_num_heads=2, LFE_num_id_token=1, LFE_num_querie=1,
                         LFE_output_dim=10, LFE_ff_mult=1, LFE_num_scale=1),
        inputs=dict(_image_latents=frames_first(4), hidden_states=In(_consisid_hidden), encoder_hidden_states=text(8),
                    image_rotary_emb=None, attention_kwargs=None, return_dict=False,
                    id_vit_hidden=derived(lambda s: [torch.ones(s.B, 2, 2)]), id_cond=ones("B", 2)),
        size=VIDEO_SIZES,
        time=T('t.expand(2B)'),
        scheduler='CogVideoXDDIMScheduler',
        scheduler_kwargs=COGVIDEOX_DDIM,
        scheduler_note=("the pipeline's type hint is CogVideoXDPMScheduler (its step() takes extra arguments); "
                        'run_loop uses the CogVideoXDDIMScheduler branch the pipeline also supports'),
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_final', head_same_shape=False,
        always_run=('local_facial_extractor',),
        head_note=('NOT the same shape: the model concatenates [encoder_out, hidden_out] and feeds the joint (B, '
                   'L_txt + N, D) sequence to norm_final, then slices [:, L_txt:]; the image part of the head input '
                   "is head_input[:, text_seq_length:] (norm_final is per-token, so norm_out's input equals "
                   'norm_final(hidden) for the image tokens)'),
        block_io={
            'transformer_blocks': BlockIO('ConsisIDBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                          registered=False),
        },
        pack=_consisid_pack, unpack_latents=_consisid_latents, scale_model_input=True,
        notes=(
            ('identity adapter: perceiver_cross_attention[k] runs BETWEEN blocks (every cross_attn_interval blocks) '
             'and adds face features to the hidden stream; local_facial_extractor runs before the stack'),
            'image latents are concatenated on the channel axis of the frame-major (B, F, C, H, W) latents',
            'batched CFG without cache_context; use_dynamic_cfg changes the scale per step',
        ),
    ),
    FamilySpec(
        name='longcat_image', model_class='LongCatImageTransformer2DModel', pipeline='LongCatImagePipeline',
        tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                         axes_dims_rope=[4, 4, 8]),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(32), txt_ids=txt_ids(), img_ids=IMG_IDS,
                    return_dict=False, guidance=None),
        time=T1000('t.expand(B) / 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('LongCatImageTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          ENC_HID, registered=False),
            'single_transformer_blocks': BlockIO('LongCatImageSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', ENC_HID, registered=False),
        },
        notes=(
            ('FLUX.1 layout; the pipeline passes guidance=None (no guidance embedding) and runs true CFG with '
             'optional CFG renormalisation'),
        ),
    ),
    FamilySpec(
        name='ovis_image', model_class='OvisImageTransformer2DModel', pipeline='OvisImagePipeline',
        tiny_config=dict(patch_size=1, in_channels=16, out_channels=16, num_layers=1, num_single_layers=1,
                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                         axes_dims_rope=(4, 4, 8)),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(32), txt_ids=txt_ids(), img_ids=IMG_IDS,
                    return_dict=False, joint_attention_kwargs=None),
        time=T1000('t.expand(B) / 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('OvisImageTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          ENC_HID, registered=False),
            'single_transformer_blocks': BlockIO('OvisImageSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', ENC_HID, registered=False),
        },
        notes=(
            'FLUX.1 layout without pooled projections or guidance embedding',
        ),
    ),
    FamilySpec(
        name='ernie_image', model_class='ErnieImageTransformer2DModel', pipeline='ErnieImagePipeline',
        tiny_config=dict(hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=32, in_channels=16,
                         out_channels=16, patch_size=1, text_in_dim=16, rope_theta=256, rope_axes_dim=(8, 4, 4),
                         eps=1e-06, qk_layernorm=True),
        inputs=dict(hidden_states=image(16), text_bth=text(16),
                    text_lens=derived(lambda s: torch.full((s.B,), s.txt, dtype=torch.long)), return_dict=False),
        time=T('torch.full((2B,), t.item()) in the model dtype'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        scheduler_note='set_timesteps(sigmas=linspace(1, 0, N+1)[:-1])',
        timesteps_kwargs=_tk_ernie,
        cfg='batched', cfg_contexts=None,
        block_lists=('layers',), head='final_norm',
        head_note=('the stream is SEQUENCE-FIRST (S, B, D) with S = image tokens + text tokens; final_norm gets the '
                   'whole joint sequence, the model keeps [:N_img] after final_linear'),
        block_io={
            'layers': BlockIO('ErnieImageSharedAdaLNBlock', 'x', None, 'x', registered=False, called='positional',
                              note='layer(x, rotary_pos_emb, temb, attention_mask); x is (S, B, D)'),
        },
        time_fn=expand_time_float,
        notes=(
            'sequence-first hidden stream (S, B, D): the batch is dim 1 inside the stack',
            'one shared adaLN modulation (adaLN_modulation) computed outside the layers',
            'text is padded to text_bth (B, T, D) with text_lens; cond+uncond batched (uncond first)',
        ),
    ),
    FamilySpec(
        name='prx', model_class='PRXTransformer2DModel', pipeline='PRXPipeline',
        tiny_config=dict(in_channels=4, patch_size=2, context_in_dim=16, hidden_size=32, mlp_ratio=2.0, num_heads=2,
                         depth=2, axes_dim=[8, 8], theta=10000),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(16), attention_mask=text_mask(torch.bool),
                    return_dict=False),
        time=T1000('(t / 1000).view(1).repeat(2) under CFG: shape (2,), not (2B,)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        cfg='batched', cfg_contexts=None,
        block_lists=('blocks',), head='final_layer',
        block_io={
            'blocks': BlockIO('PRXBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states', registered=False,
                              note='the text stream is an input only (not updated)'),
        },
        notes=(
            ('the pipeline builds the time tensor as (t/1000).view(1).repeat(2) under CFG (or view(1) without): its '
             'length does not follow the batch size'),
        ),
    ),
    FamilySpec(
        name='lumina_next', model_class='LuminaNextDiT2DModel', pipeline='LuminaPipeline',
        tiny_config=dict(sample_size=8, patch_size=2, in_channels=4, hidden_size=24, num_layers=2,
                         num_attention_heads=3, num_kv_heads=1, multiple_of=16, learn_sigma=True, qk_norm=True,
                         cross_attention_dim=32),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32), encoder_mask=text_mask(),
                    image_rotary_emb=derived(_lumina_next_rope), cross_attention_kwargs={}, return_dict=False),
        time=REVERSED('(1 - t / 1000).expand(2B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(),
        cfg='batched', cfg_contexts=None,
        block_lists=('layers',), head='norm_out',
        block_io={
            'layers': BlockIO('LuminaNextDiTBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False, called='positional',
                              note='layer(hidden, mask, rotary, encoder, encoder_mask, temb=..., ...)'),
        },
        negate=True, learned_sigma=True,
        notes=(
            ('image_rotary_emb (a 384x384 table) is recomputed by the pipeline every step: linear vs NTK scaling '
             'switches at scaling_watershed'),
            "the pipeline's CFG guides only the first 3 channels (noise_pred[:, :3]) DiT-style, then negates",
            'learned sigma: the pipeline always keeps the first half of the output channels',
        ),
    ),
    FamilySpec(
        name='glm_image', model_class='GlmImageTransformer2DModel', pipeline='GlmImagePipeline',
        tiny_config=dict(patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                         num_attention_heads=2, text_embed_dim=32, time_embed_dim=16, condition_dim=8,
                         prior_vq_quantizer_codebook_size=64),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=text(32), prior_token_id=randint(64, "B", "n"),
                    prior_token_drop=zeros("B", "n", dtype=torch.bool),
                    target_size=derived(lambda s: torch.tensor([[s.h * 8.0, s.w * 8.0]] * s.B)),
                    crop_coords=zeros("B", 2), attention_kwargs=None, return_dict=False, kv_caches=None),
        time=Time(scale=1.0, offset=-1.0)('t.expand(B) - 1'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(use_dynamic_shifting=True),
        timesteps_kwargs=_tk_glm,
        cfg='separate', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('GlmImageTransformerBlock', 'hidden_states', 'encoder_hidden_states', HID_ENC,
                                          registered=False, called='positional'),
        },
        notes=(
            'the pipeline passes t - 1 (not t)',
            ('prior_token_id (per image token, from the autoregressive stage) is embedded and ADDED to the hidden '
             'stream before the blocks; the uncond call uses prior_token_drop=True'),
            'image-edit mode reuses a kv_caches object across the two calls (read / skip modes)',
            'separate cond/uncond calls WITHOUT cache_context',
        ),
    ),
    FamilySpec(
        name='qwenimage21', model_class='QwenImage21Transformer2DModel', pipeline='QwenImage21Pipeline',
        tiny_config=dict(patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16,
                         num_attention_heads=2, context_in_dim=8, mlp_ratio=2, axes_dims_rope=(4, 6, 6)),
        inputs=dict(hidden_states=tokens(4, "hw"), encoder_hidden_states=text(8),
                    encoder_hidden_states_mask=text_mask(torch.long),
                    img_shapes=derived(lambda s: [[(1, s.h, s.w)]] * s.B), img_mask=derived(_qwen21_img_mask),
                    attention_kwargs=None, return_dict=False),
        size=dict(h=4, w=4, txt=4),
        time=T1000('t.expand(B) / 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0, use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('transformer_blocks',), head='norm_out',
        head_note=('a single joint stream [text, (condition images), target] runs through the blocks and the head; '
                   'the model output covers every token and the pipeline keeps the last N target tokens'),
        block_io={
            'transformer_blocks': BlockIO('QwenImage21TransformerBlock', 'hidden_states', None, 'hidden_states',
                                          registered=False),
        },
        tail_tokens=True,
        notes=(
            ("the pipeline's default use_kv_cache=True prefills text/condition tokens on step 0 "
             "(kv_cache_mode='extract') and then runs ONLY the target tokens (kv_cache_mode='cached'): the stack "
             'input is shorter from step 1 on.  run_loop uses use_kv_cache=False (full joint sequence every step)'),
            ('block-causal attention mask over the joint sequence; causal_condition modulates text/condition tokens '
             'with t=0 (the model appends a zero timestep)'),
            'img_mask marks the vision slots in the text sequence (4 latent tokens per slot)',
        ),
    ),
    FamilySpec(
        name='kandinsky5', model_class='Kandinsky5Transformer3DModel', pipeline='Kandinsky5T2VPipeline',
        tiny_config=dict(in_visual_dim=4, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=4,
                         patch_size=(1, 2, 2), model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2,
                         axes_dims=(1, 1, 2), visual_cond=False, attention_type='regular'),
        inputs=dict(hidden_states=randn("B", "f", "h", "w", 4), encoder_hidden_states=text(32),
                    pooled_projections=randn("B", 16), visual_rope_pos=derived(_kandinsky5_rope_pos),
                    text_rope_pos=derived(lambda s: torch.arange(s.txt)), scale_factor=(1.0, 1.0, 1.0),
                    sparse_params=None, return_dict=True),
        size=VIDEO_SIZES,
        time=T('t.unsqueeze(0).repeat(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=7.0),
        cfg='separate', cfg_contexts=None,
        block_lists=('visual_transformer_blocks',), head='out_layer', head_same_shape=False,
        always_run=('text_transformer_blocks',),
        head_note=('NOT the same shape, same elements: the blocks run on the flattened visual tokens (B, F*H*W, D) '
                   '(fractal_flatten), the model unflattens them to (B, F, H, W, D) (fractal_unflatten) before '
                   'out_layer; with sparse (fractal) attention the flatten also permutes tokens'),
        block_io={
            'visual_transformer_blocks': BlockIO('Kandinsky5TransformerDecoderBlock', 'visual_embed', 'text_embed',
                                                 'visual_embed', registered=True, metadata_ok=True, called='positional',
                                                 note=('block(visual_embed, text_embed, time_embed, rope, '
                                                       'sparse_params); the registry names the hidden argument '
                                                       'visual_embed')),
        },
        notes=(
            ('latents are CHANNEL-LAST (B, F, H, W, C); visual_cond models append condition channels and the '
             'pipeline steps latents[..., :C] only'),
            'text_transformer_blocks (a text encoder stack) run before the visual blocks (always_run)',
            'the pipeline reads `.sample` (return_dict=True); separate cond/uncond calls WITHOUT cache_context',
            'out_layer(visual_embed, text_embed, time_embed) is the head',
        ),
    ),
    FamilySpec(
        name='motif_video', model_class='MotifVideoTransformer3DModel', pipeline='MotifVideoPipeline',
        tiny_config=dict(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=1,
                         num_single_layers=1, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm='rms_norm',
                         text_embed_dim=16, rope_axes_dim=(4, 4, 4)),
        inputs=dict(hidden_states=In(_motif_hidden), _condition=zeros("B", 5, "f", "h", "w"),
                    encoder_hidden_states=text(16), encoder_attention_mask=text_mask(), attention_kwargs=None,
                    return_dict=False),
        size=VIDEO_SIZES,
        time=T('t.expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=7.0),
        timesteps_kwargs=tk_flux(lambda inputs: inputs["hidden_states"][0, 0].numel()),
        cfg='separate', cfg_contexts=('pred_cond', 'pred_uncond'),
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        always_run=('context_embedder',),
        block_io={
            'transformer_blocks': BlockIO('MotifVideoTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=True, metadata_ok=True, called='positional'),
            'single_transformer_blocks': BlockIO('MotifVideoSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', HID_ENC, registered=True, metadata_ok=True,
                                                 called='positional'),
        },
        pack=cat_condition, unpack_latents=first_channels(4),
        notes=(
            'hidden_states = cat([latents, latent_condition, latent_mask], dim=1) (zeros for t2v)',
            ('guidance through a guider (AdaptiveProjectedGuidance in the tests): calls in '
             "cache_context('pred_cond'/'pred_uncond')"),
            'num_decoder_layers > 0 turns the last single blocks into decoder blocks on a separate stream',
        ),
    ),
    FamilySpec(
        name='omnigen', model_class='OmniGenTransformer2DModel', pipeline='OmniGenPipeline',
        tiny_config=dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=4, intermediate_size=32,
                         num_layers=2, pad_token_id=0, vocab_size=100, in_channels=4, time_step_dim=4,
                         rope_scaling={'long_factor': [1, 2], 'short_factor': [1, 2]}),
        inputs=dict(hidden_states=image(4), input_ids=randint(100, "B", "txt"), input_img_latents=[],
                    input_image_sizes={},
                    attention_mask=derived(lambda s: torch.ones(s.B, s.txt + 1 + s.n, s.txt + 1 + s.n)),
                    position_ids=derived(lambda s: torch.arange(s.txt + 1 + s.n).unsqueeze(0).repeat(s.B, 1)),
                    return_dict=False),
        time=T('t.expand(2B); the hub scheduler has num_train_timesteps=1 and invert_sigmas=True, so t runs 0 -> 1'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(invert_sigmas=True, num_train_timesteps=1),
        timesteps_kwargs=_tk_omnigen,
        cfg='batched', cfg_contexts=None, cfg_order='cond_first',
        block_lists=('layers',), head='norm',
        head_note=('norm (RMSNorm) gets the whole joint sequence [prompt/condition tokens, time token, image '
                   'tokens]; the model keeps the image tokens after it'),
        block_io={
            'layers': BlockIO('OmniGenBlock', 'hidden_states', None, 'hidden_states', registered=False),
        },
        notes=(
            ('a Phi-3-style LLM: the prompt (token ids, with input-image latents spliced in) and a time token are '
             'prepended to the image tokens and everything runs through one stack'),
            ('batched CFG in the order [cond, uncond] (and [cond, uncond, img_cond] with an input image): the '
             'reverse of most pipelines'),
        ),
    ),
    FamilySpec(
        name='hunyuan_video_framepack', model_class='HunyuanVideoFramepackTransformer3DModel',
        pipeline='HunyuanVideoFramepackPipeline',
        tiny_config=dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
                         num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
                         text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None,
                         has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16), encoder_attention_mask=text_mask(),
                    pooled_projections=randn("B", 8), image_embeds=randn("B", 4, 16),
                    indices_latents=derived(lambda s: _history_indices(s)[4]),
                    guidance=derived(lambda s: torch.tensor([6.0] * s.B) * 1000.0), latents_clean=video(4, "clean"),
                    indices_latents_clean=derived(_clean_indices), latents_history_2x=video(4, "history_2x"),
                    indices_latents_history_2x=derived(lambda s: _history_indices(s)[2]),
                    latents_history_4x=video(4, "history_4x"),
                    indices_latents_history_4x=derived(lambda s: _history_indices(s)[1]), attention_kwargs=None,
                    return_dict=False),
        size=HISTORY_SIZES(h=4, w=4),
        time=T('t.expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(shift=3.0),
        scheduler_note='sigmas=linspace(1, 0, N+1)[:-1] (+ mu)',
        timesteps_kwargs=tk_sigmas_to_zero,
        cfg='distilled', cfg_contexts=None,
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out', head_same_shape=False,
        always_run=('context_embedder',),
        head_note=('NOT the same shape: the clean/history latent tokens (latents_clean, latents_history_2x/4x) are '
                   "PREPENDED to the window's tokens before the stack; before norm_out the model keeps hidden[:, "
                   "-original_context_length:] (the window's tokens only), so the head input is the last N tokens of "
                   "the stack's hidden stream"),
        block_io={
            'transformer_blocks': BlockIO('HunyuanVideoTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          HID_ENC, registered=True, metadata_ok=True, called='positional'),
            'single_transformer_blocks': BlockIO('HunyuanVideoSingleTransformerBlock', 'hidden_states',
                                                 'encoder_hidden_states', HID_ENC, registered=True, metadata_ok=True,
                                                 called='positional'),
        },
        notes=(
            ("sections are sampled one after another (an outer loop); each section's loop conditions on history "
             'latents of the previous sections'),
            'guidance-distilled (guidance * 1000); true CFG (no cache_context) only with true_cfg_scale > 1',
            'image_embeds (SigLIP) are projected and prepended to the text stream',
        ),
    ),
    FamilySpec(
        name='wan_animate', model_class='WanAnimateTransformer3DModel', pipeline='WanAnimatePipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
                         latent_channels=16, out_channels=16, text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2,
                         cross_attn_norm=True, qk_norm='rms_norm_across_heads', image_dim=4, rope_max_seq_len=32,
                         motion_encoder_channel_sizes={'4': 16, '8': 16, '16': 16}, motion_encoder_size=16,
                         motion_style_dim=8, motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16,
                         face_encoder_num_heads=2, inject_face_latents_blocks=2),
        inputs=dict(_condition=video(20), hidden_states=In(_wan_animate_hidden), encoder_hidden_states=text(32),
                    encoder_hidden_states_image=randn("B", 4, 4), pose_hidden_states=video(16, "f1"),
                    face_pixel_values=randn("B", 3, "f1", "face", "face"), motion_encode_batch_size=None,
                    attention_kwargs=None, return_dict=False),
        size=dict(f=2, f1=1, h=8, w=8, txt=8, face=16),
        time=T('t.expand(B)'),
        scheduler='UniPCMultistepScheduler',
        scheduler_kwargs=dict(prediction_type='flow_prediction', use_flow_sigmas=True, flow_shift=5.0),
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('blocks',), head='norm_out',
        always_run=('motion_encoder', 'face_encoder'),
        block_io={
            'blocks': BlockIO('WanTransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False, called='positional',
                              note=('transformer_wan_animate defines its OWN WanTransformerBlock class (a copy), '
                                    'unknown to the registry. blocks are called positionally: block(hidden, encoder, '
                                    'timestep_proj, rotary_emb)')),
        },
        pack=cat_condition, unpack_latents=first_channels(16),
        notes=(
            ('face_adapter[k] (cross-attention to motion features) runs BETWEEN blocks: after every '
             'inject_face_latents_blocks-th block it adds to the hidden stream'),
            'motion_encoder + face_encoder run on face_pixel_values before the stack (always)',
            'pose latents are added to the patch-embedded frames 1.. before the stack',
            'the uncond call passes face_pixel_values * 0 - 1; segments of the video are sampled one after another',
        ),
    ),
    FamilySpec(
        name='bria_fibo', model_class='BriaFiboTransformer2DModel', pipeline='BriaFiboPipeline',
        tiny_config=dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
                         num_attention_heads=2, joint_attention_dim=64, text_encoder_dim=32, pooled_projection_dim=None,
                         axes_dims_rope=[0, 4, 4]),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(64), text_encoder_layers=In(_bria_fibo_layers),
                    joint_attention_kwargs=None, return_dict=False, txt_ids=zeros("B", "txt", 3), img_ids=IMG_IDS),
        time=T('t.expand(2B) (raw 0..1000)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='batched', cfg_contexts=None,
        block_lists=('transformer_blocks', 'single_transformer_blocks'), head='norm_out',
        head_note=('between blocks the model rebuilds the text stream (half of it replaced by the next text-encoder '
                   'layer); single blocks run on [text, image] and the model splits after each one'),
        block_io={
            'transformer_blocks': BlockIO('BriaFiboTransformerBlock', 'hidden_states', 'encoder_hidden_states', ENC_HID,
                                          registered=False),
            'single_transformer_blocks': BlockIO('BriaFiboSingleTransformerBlock', 'hidden_states', None,
                                                 'hidden_states', registered=False,
                                                 note='runs on the joint [text, image] stream'),
        },
        notes=(
            ('every block gets a different text input: encoder[..., :inner/2] concatenated with '
             'caption_projection[k](text_encoder_layers[k])'),
        ),
    ),
    FamilySpec(
        name='krea2', model_class='Krea2Transformer2DModel', pipeline='Krea2Pipeline',
        tiny_config=dict(in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=32, timestep_embed_dim=8, text_hidden_dim=16,
                         num_text_layers=3, text_num_attention_heads=2, text_num_key_value_heads=1,
                         text_intermediate_size=16, num_layerwise_text_blocks=1, num_refiner_text_blocks=1,
                         axes_dims_rope=(4, 2, 2), rope_theta=1000.0, norm_eps=1e-05),
        inputs=dict(hidden_states=tokens(16, "hw"), encoder_hidden_states=randn("B", "txt", 3, 16),
                    position_ids=derived(_krea2_positions), encoder_attention_mask=text_mask(torch.bool),
                    attention_kwargs=None, return_dict=False),
        size=dict(h=4, w=4, txt=4),
        time=T1000('(t / 1000).expand(B)'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='final_layer', head_same_shape=False,
        always_run=('text_fusion', 'txt_in'),
        head_note=('NOT the same shape: the stack runs on cat([text, image]) and the model slices hidden[:, '
                   'text_len:] before final_layer; the image part of the stack input is stack_input[:, text_len:]'),
        block_io={
            'transformer_blocks': BlockIO('Krea2TransformerBlock', 'hidden_states', None, 'hidden_states',
                                          registered=False, called='positional',
                                          note='block(hidden, temb_mod, rotary, attention_mask)'),
        },
        notes=(
            ('encoder_hidden_states stacks several LLM layers (B, L, n_layers, D); text_fusion and txt_in (with '
             'their own text blocks) run before the stack'),
            'CFG is written noise_pred + g * (noise_pred - neg) (g = scale - 1); separate calls WITHOUT cache_context',
        ),
    ),
    FamilySpec(
        name='nucleusmoe_image', model_class='NucleusMoEImageTransformer2DModel', pipeline='NucleusMoEImagePipeline',
        tiny_config=dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
                         num_attention_heads=2, joint_attention_dim=16, axes_dims_rope=(8, 4, 4), moe_enabled=False,
                         capacity_factors=[8.0, 8.0]),
        inputs=dict(hidden_states=packed(4), encoder_hidden_states=text(16),
                    encoder_hidden_states_mask=text_mask(torch.long),
                    img_shapes=derived(lambda s: [(1, s.h // 2, s.w // 2)] * s.B), attention_kwargs=None,
                    return_dict=False),
        time=T1000('t.expand(B) / 1000'),
        scheduler='FlowMatchEulerDiscreteScheduler', scheduler_kwargs=dict(use_dynamic_shifting=True),
        timesteps_kwargs=tk_flux(seq_packed),
        cfg='separate', cfg_contexts=None,
        block_lists=('transformer_blocks',), head='norm_out',
        block_io={
            'transformer_blocks': BlockIO('NucleusMoEImageTransformerBlock', 'hidden_states', 'encoder_hidden_states',
                                          'hidden_states', registered=False,
                                          note='the text stream is read, not updated'),
        },
        negate=True,
        notes=(
            'separate cond/uncond calls WITHOUT cache_context; CFG renormalised to the cond norm; prediction negated',
            'moe_enabled=True (the real model) routes the feed-forward through experts',
        ),
    ),
    FamilySpec(
        name='helios', model_class='HeliosTransformer3DModel', pipeline='HeliosPipeline',
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                         out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                         qk_norm='rms_norm_across_heads', rope_dim=(4, 4, 4), has_multi_term_memory_patch=True,
                         guidance_cross_attn=True, zero_history_timestep=True, is_amplify_history=False),
        inputs=dict(hidden_states=video(4), encoder_hidden_states=text(16),
                    indices_hidden_states=derived(lambda s: _history_indices(s)[4].unsqueeze(0)),
                    indices_latents_history_short=derived(lambda s: _clean_indices(s).unsqueeze(0)),
                    indices_latents_history_mid=derived(lambda s: _history_indices(s)[2].unsqueeze(0)),
                    indices_latents_history_long=derived(lambda s: _history_indices(s)[1].unsqueeze(0)),
                    latents_history_short=video(4, "clean"), latents_history_mid=video(4, "history_2x"),
                    latents_history_long=video(4, "history_4x"), attention_kwargs=None, return_dict=False),
        size=HISTORY_SIZES(h=8, w=8),
        time=T('t.expand(B); history tokens get timestep 0'),
        scheduler='HeliosScheduler', scheduler_kwargs=dict(stages=1),
        scheduler_note='set_timesteps(N, sigmas=linspace(0.999, 0, N+1)[:-1], mu=...)',
        timesteps_kwargs=_tk_helios,
        cfg='separate', cfg_contexts=('cond', 'uncond'),
        block_lists=('blocks',), head='norm_out',
        head_note=("history tokens (short/mid/long memory patches) are PREPENDED to the chunk's tokens before the "
                   'stack; norm_out (HeliosOutputNorm) receives the full sequence plus original_context_length and '
                   'drops the history tokens itself'),
        block_io={
            'blocks': BlockIO('HeliosTransformerBlock', 'hidden_states', 'encoder_hidden_states', 'hidden_states',
                              registered=False, called='positional',
                              note='block(hidden, encoder, timestep_proj, rotary, original_context_length)'),
        },
        notes=(
            "video is generated chunk by chunk (outer loop); each chunk's loop conditions on history latents",
            ('the pyramid pipeline (HeliosPyramidPipeline) changes resolution between stages: the token count '
             'changes mid-sampling'),
        ),
    ),
    # -- further image families ----------------------------------------------------------------------------------------
    FamilySpec(
        name="ideogram4", model_class="Ideogram4Transformer2DModel", pipeline="Ideogram4Pipeline",
        tiny_config=dict(in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
                         intermediate_size=32, adaln_dim=16, llm_features_dim=24, rope_theta=10_000,
                         mrope_section=(2, 1, 1), norm_eps=1e-5),
        inputs=dict(_text_tokens=derived(lambda s: s.txt), hidden_states=In(_ideogram4_hidden),
                    encoder_hidden_states=In(_ideogram4_text), position_ids=derived(_ideogram4_positions),
                    segment_ids=derived(lambda s: torch.ones(s.B, s.txt + s.hw, dtype=torch.long)),
                    indicator=derived(_ideogram4_indicator), attention_kwargs=None, return_dict=False),
        size=dict(h=2, w=2, txt=4),
        time=REVERSED("(1 - t / 1000).expand(B): model time in [0, 1], 0 = noise"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(),
        timesteps_kwargs=_tk_flow_sigmas,
        scheduler_note="set_timesteps(sigmas=logit-normal schedule with a resolution-aware mu)",
        cfg="none", cfg_contexts=None,
        block_lists=("layers",), head="final_layer",
        head_note="one packed sequence [text padding, image latents] runs through the blocks and the head; the "
                  "pipeline keeps the image tokens of the output",
        block_io={"layers": BlockIO("Ideogram4TransformerBlock", "hidden_states", None, "hidden_states",
                                    registered=False, called="positional")},
        pack=_ideogram4_pack, unpack_latents=lambda inputs: inputs["hidden_states"][:, inputs["_text_tokens"]:],
        tail_tokens=True, negate=True,
        notes=("guidance runs the unconditional branch on a SECOND model, pipe.unconditional_transformer (image "
               "tokens only, zero text features): each model sees one call per step, and each is hooked on its own",
               "v = g * v_pos + (1 - g) * v_neg with a per-step guidance schedule; the pipeline steps -v"),
    ),
    FamilySpec(
        name="joyimage_edit", model_class="JoyImageEditTransformer3DModel", pipeline="JoyImageEditPipeline",
        tiny_config=dict(patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2, text_dim=16,
                         num_layers=2, rope_dim_list=[4, 6, 6], theta=256),
        inputs=dict(hidden_states=randn("B", "items", 16, 1, "h", "w"), encoder_hidden_states=text(16),
                    return_dict=False),
        size=dict(items=2, h=4, w=4, txt=12),
        time=T("t.repeat(B)"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
        cfg="separate", cfg_contexts=None,
        block_lists=("double_blocks",), head="norm_out",
        head_note="the items (reference images, then the target) are laid out along time and patchified together; "
                  "norm_out gets every item's tokens",
        block_io={"double_blocks": BlockIO("JoyImageTransformerBlock", "hidden_states", "encoder_hidden_states",
                                           HID_ENC, registered=False)},
        notes=("latents are (B, items, C, T, H, W): the reference latents are restored after every scheduler step",
               "separate cond/uncond calls WITHOUT cache_context; the combined prediction is renormalised to the "
               "cond prediction's norm"),
    ),
    FamilySpec(
        name="joyimage_edit_plus", model_class="JoyImageEditPlusTransformer3DModel",
        pipeline="JoyImageEditPlusPipeline",
        tiny_config=dict(patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2, text_dim=16,
                         num_layers=2, rope_dim_list=[4, 6, 6], theta=256),
        inputs=dict(hidden_states=randn("B", "patches", 16, 1, 2, 2), encoder_hidden_states=text(16),
                    encoder_hidden_states_mask=text_mask(), shape_list=derived(lambda s: [[(1, 1, 1)] * s.patches] * s.B),
                    return_dict=False),
        size=dict(patches=2, txt=12),
        time=T("t.repeat(2B) (batched rows)"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
        cfg="batched", cfg_contexts=None,
        block_lists=("double_blocks",), head="norm_out",
        head_note="per-sample lists of (t, h, w) item shapes are padded to max_patches tokens; norm_out gets them all",
        block_io={"double_blocks": BlockIO("JoyImageEditPlusTransformerBlock", "hidden_states",
                                           "encoder_hidden_states", HID_ENC, registered=False)},
        notes=("latents are patch sequences (B, max_patches, C, pt, ph, pw) with a shape_list per sample",
               "batched CFG [uncond, cond] without cache_context; renormalised to the cond prediction's norm"),
    ),
    FamilySpec(
        name="prior", model_class="PriorTransformer", pipeline="KandinskyV22PriorPipeline",
        tiny_config=dict(num_attention_heads=2, attention_head_dim=4, num_layers=2, embedding_dim=8, num_embeddings=7,
                         additional_embeddings=4),
        inputs=dict(hidden_states=randn("B", 8), proj_embedding=randn("B", 8), encoder_hidden_states=text(8),
                    attention_mask=text_mask(torch.bool), return_dict=False),
        size=dict(txt=7),
        time=T("t itself (a 0-dim tensor): the model broadcasts it over the 2B rows"),
        time_fn=lambda value, rows, kwargs: value.reshape(()),
        scheduler="UnCLIPScheduler",
        scheduler_kwargs=dict(variance_type="fixed_small_log", prediction_type="sample", clip_sample=True,
                              clip_sample_range=10.0),
        step_kwargs=_prev_timestep,
        cfg="batched", cfg_contexts=None,
        block_lists=("transformer_blocks",), head="norm_out",
        head_note="the stream is [text tokens, prompt embedding, time, the noisy image embedding, a learned "
                  "prediction token]; norm_out gets all of it and the model keeps the prediction token",
        block_io={"transformer_blocks": BlockIO("BasicTransformerBlock", "hidden_states", None, "hidden_states",
                                                registered=True, metadata_ok=True)},
        notes=("denoises a CLIP image embedding (B, D), not latents: Kandinsky 2.1/2.2, unCLIP and Shap-E priors",
               "the pipelines hold it as `prior`, not `transformer`: apply padecache to pipe.prior with "
               "scheduler=pipe.scheduler",
               "scheduler.step takes prev_timestep (the next timestep of the schedule)"),
    ),
    FamilySpec(
        name="anyflow", model_class="AnyFlowTransformer3DModel", pipeline="AnyFlowPipeline",
        tiny_config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4,
                         out_channels=4, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                         rope_max_seq_len=32, gate_value=0.25, deltatime_type="r"),
        inputs=dict(hidden_states=frames_first(4), encoder_hidden_states=text(16), attention_kwargs=None,
                    return_dict=False),
        size=VIDEO_SIZES,
        time=T("t per frame, (2B, F); r_timestep = the next sigma * 1000 per frame (mean velocity), else t"),
        time_fn=_per_frame_time, time_copies=("r_timestep",),
        scheduler="FlowMapEulerDiscreteScheduler", scheduler_kwargs=dict(),
        cfg="batched", cfg_contexts=None,
        block_lists=("blocks",), head="norm_out",
        block_io={"blocks": BlockIO("AnyFlowTransformerBlock", "hidden_states", "encoder_hidden_states",
                                    "hidden_states", registered=False, called="positional")},
        notes=("latents are frame-major (B, F, C, H, W); video extension sets the context frames' timestep to 0",
               "steps whose target time r equals t are skipped by the pipeline (no transformer call)"),
    ),
    FamilySpec(
        name="bria_fibo2", model_class="BriaFibo2Transformer2DModel", pipeline="BriaFibo2Pipeline",
        tiny_config=dict(in_channels=4, patch_size=2, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2,
                         cap_feat_dim=16, injection_layer_ids=(1,), perceiver_num_layers=1, min_num_gist_tokens=2,
                         max_num_gist_tokens=4, gist_step=2, gist_min_text_len=4, gist_max_text_len=16,
                         axes_dims=(4, 6, 6), axes_lens=(64, 32, 32)),
        inputs=dict(hidden_states=image(4), encoder_hidden_states=randn("B", 2, "txt", 16),
                    encoder_attention_mask=text_mask(torch.bool), context_latents=None, return_dict=False),
        time=T1000("t.expand(B) / 1000: the noise level in [0, 1]"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
        cfg="separate", cfg_contexts=None,
        block_lists=("layers",), always_run=("noise_refiner", "perceiver"), head="final_layer",
        head_same_shape=False,
        head_note="one stream [gist tokens, image, context images] (the gist last when a batch pads it) runs "
                  "through the blocks; final_layer gets the image tokens only",
        block_io={"layers": BlockIO("BriaFibo2TransformerBlock", "x", None, "x", registered=False,
                                    called="positional", note="Z-Image's block: block(x, attn_mask, freqs_cis, ...)")},
        notes=("encoder_hidden_states stacks text-encoder bundles (B, bundles, L, D): a Perceiver turns the first "
               "into gist tokens (their count grows with the prompt length), injection layers cross-attend to "
               "the others",
               "the negative prompt runs as a second call WITHOUT cache_context (its gist count can differ)"),
    ),
    FamilySpec(
        name="kandinsky6_sr", model_class="Kandinsky6SRTransformer3DModel", pipeline="Kandinsky6SRPipeline",
        tiny_config=dict(in_visual_dim=4, out_visual_dim=4, time_dim=16, patch_size=(1, 2, 2), model_dim=24,
                         ff_dim=32, num_visual_blocks=1, axes_dims=(4, 4, 4)),
        inputs=dict(_anchor=derived(lambda s: torch.zeros(s.B, s.f, s.h, s.w, 5)),
                    hidden_states=In(lambda s, g, got: torch.cat(
                        [torch.randn(s.B, s.f, s.h, s.w, 4, generator=g), got["_anchor"]], dim=-1)),
                    return_dict=False),
        size=dict(f=1, h=16, w=16),
        time=T("t.expand(B)"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=3.0),
        cfg="none", cfg_contexts=None,
        block_lists=("visual_transformer_blocks",), head="out_layer", head_same_shape=False,
        head_note="NABLA attention: the (T, H, W) token grid is flattened in 8x8 spatial groups before the blocks "
                  "and merged back to (B, T, H, W, D) before out_layer",
        block_io={"visual_transformer_blocks": BlockIO("Kandinsky6SRTransformerBlock", "hidden_states", None,
                                                       "hidden_states", registered=False, called="positional")},
        pack=_k6sr_pack, unpack_latents=lambda inputs: inputs["hidden_states"][..., :4],
        notes=("latents are channel-last (B, T, H, W, C) tiles; the input is [latent | anchor latent | anchor mask] "
               "with the anchor channels zero in the released checkpoints",
               "super-resolution of a video tile by tile: one call per step, no guidance"),
    ),
    # -- audio ----------------------------------------------------------------------------------------------------------
    FamilySpec(
        name="stable_audio", model_class="StableAudioDiTModel", pipeline="StableAudioPipeline",
        tiny_config=dict(sample_size=8, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                         num_key_value_attention_heads=1, out_channels=4, cross_attention_dim=16, time_proj_dim=8,
                         global_states_input_dim=8, cross_attention_input_dim=8),
        inputs=dict(hidden_states=audio(4), encoder_hidden_states=text(8), global_hidden_states=randn("B", 1, 8),
                    rotary_embedding=derived(_stable_audio_rope), return_dict=False),
        size=AUDIO_SIZES,
        time=T("t.unsqueeze(0): shape (1,), broadcast over the 2B rows; positional arg 1"),
        time_fn=lambda value, rows, kwargs: value.reshape(1),
        scheduler="EDMDPMSolverMultistepScheduler",
        scheduler_kwargs=dict(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                              sigma_schedule="exponential"),
        scheduler_note="the pipeline's type hint; the hub checkpoint ships CosineDPMSolverMultistepScheduler, which "
                       "needs torchsde",
        scale_model_input=True,
        cfg="batched", cfg_contexts=None,
        block_lists=("transformer_blocks",), head="proj_out",
        head_note="the global (duration) token is prepended to the audio tokens before the blocks; proj_out gets the "
                  "whole sequence and the model drops the global token after it",
        block_io={"transformer_blocks": BlockIO("StableAudioDiTBlock", "hidden_states", "encoder_hidden_states",
                                                "hidden_states", registered=False,
                                                note="the text stream is read, not updated")},
        positional=("hidden_states", "timestep"),
        notes=("latents are (B, C, T) audio latents; the pipeline builds 1-D RoPE for T + 1 tokens every call",
               "batched CFG [negative, prompt] without cache_context"),
    ),
    FamilySpec(
        name="stable_audio3", model_class="StableAudio3DiTModel", pipeline="StableAudio3Pipeline",
        tiny_config=dict(io_channels=8, patch_size=1, embed_dim=32, depth=2, num_heads=4, cond_token_dim=16,
                         global_cond_dim=12, local_add_cond_dim=5, timestep_features_dim=16, ff_mult=2,
                         num_memory_tokens=3, use_differential_attention=False),
        inputs=dict(hidden_states=audio(8, "t2"), encoder_hidden_states=text(16), global_hidden_states=randn("B", 12),
                    encoder_attention_mask=text_mask(torch.bool), return_dict=False),
        size=dict(t2=16, txt=4),
        time=T("t.expand(B); flow-matching sigma in [0, 1] (the scheduler has num_train_timesteps=1)"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(num_train_timesteps=1, shift=1.0),
        timesteps_kwargs=_tk_logsnr,
        scheduler_note="set_timesteps(sigmas=logsnr_sigma_schedule(N, logsnr_min, logsnr_max))",
        cfg="batched", cfg_contexts=None,
        block_lists=("transformer_blocks",), head="proj_out", head_same_shape=False,
        head_note="num_memory_tokens learned memory tokens are prepended before the blocks and cut off before "
                  "proj_out: the head receives the stream minus its first num_memory_tokens tokens",
        block_io={"transformer_blocks": BlockIO("StableAudio3DiTBlock", "hidden_states", None, "hidden_states",
                                                registered=False, called="positional")},
        positional=("hidden_states", "timestep"),
        notes=("the distilled checkpoint samples 8 steps with stochastic_sampling (ping-pong re-noising)",
               "inpainting passes local_add_cond (B, local_add_cond_dim, T), added inside every block"),
    ),
    FamilySpec(
        name="ace_step", model_class="AceStepTransformer1DModel", pipeline="AceStepPipeline",
        tiny_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=8, in_channels=24, audio_acoustic_hidden_dim=8, patch_size=2,
                         rope_theta=10000.0, rms_norm_eps=1e-6, sliding_window=16),
        inputs=dict(hidden_states=tokens(8, "t"), encoder_hidden_states=text(32), context_latents=tokens(16, "t"),
                    attention_kwargs=None, return_dict=False),
        size=dict(t=8, txt=10),
        time=T("t * ones(B) (a sigma in [0, 1]); timestep_r is passed the same value"),
        time_copies=("timestep_r",),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(num_train_timesteps=1, shift=1.0),
        timesteps_kwargs=_tk_ace_step,
        scheduler_note="set_timesteps(sigmas=shift * s / (1 + (shift - 1) * s)) on a linear grid (shift 3)",
        cfg="batched", cfg_contexts=None, cfg_order="cond_first",
        block_lists=("layers",), head="norm_out",
        block_io={"layers": BlockIO("AceStepTransformerBlock", "hidden_states", None, "hidden_states", registered=False)},
        notes=("batched guidance [cond, null] (cond first) combined by APG, inside cfg_interval only: outside it "
               "the call has B rows instead of 2B (padecache restarts the history then)",
               "latents (B, T, C) are patchified by a Conv1d together with context_latents (source + chunk mask)"),
    ),
    FamilySpec(
        name="longcat_audio_dit", model_class="LongCatAudioDiTTransformer", pipeline="LongCatAudioDiTPipeline",
        tiny_config=dict(dit_dim=64, dit_depth=2, dit_heads=4, dit_text_dim=32, latent_dim=8, text_conv=False),
        inputs=dict(hidden_states=tokens(8, "t"), encoder_hidden_states=text(32),
                    encoder_attention_mask=text_mask(torch.bool), attention_mask=ones("B", "t", dtype=torch.bool),
                    latent_cond=zeros("B", "t", 8)),
        size=dict(t=16, txt=10),
        time=T1000("(t / num_train_timesteps).expand(B)"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(shift=1.0, invert_sigmas=True),
        timesteps_kwargs=_tk_flow_sigmas, scheduler_note="set_timesteps(sigmas=linspace(1, 1/N, N))",
        cfg="separate", cfg_contexts=None,
        block_lists=("blocks",), head="norm_out",
        block_io={"blocks": BlockIO("AudioDiTBlock", "hidden_states", None, "hidden_states", registered=False)},
        notes=("separate cond/null calls WITHOUT cache_context (the null prompt is zeros unless a negative prompt is "
               "given); the pipeline reads `.sample`",
               "latent_cond (zeros for text-to-audio) is concatenated to the latents inside the model"),
    ),
    FamilySpec(
        name="minimax_music3", model_class="MiniMaxMusic3Transformer1DModel", pipeline="MiniMaxMusic3ModularPipeline",
        tiny_config=dict(in_channels=8, condition_dim=16, num_layers=2, num_attention_heads=2, attention_head_dim=8,
                         ff_inner_dim=32, rotary_dim=4, fourier_embedding_dim=8),
        inputs=dict(hidden_states=audio(8), encoder_hidden_states=randn("B", "t", 16), return_dict=False),
        size=dict(t=24),
        time=T("t.expand(B): flow-matching time in [0, 1], 0 = noise"),
        scheduler="FlowMatchEulerDiscreteScheduler", scheduler_kwargs=dict(num_train_timesteps=1, invert_sigmas=True),
        timesteps_kwargs=_tk_flow_sigmas, scheduler_note="set_timesteps(sigmas=linspace(1, 1/N, N)) per window",
        cfg="separate", cfg_contexts=None,
        block_lists=("transformer_blocks",), head="proj_out", head_same_shape=False,
        head_note="the timestep embedding is prepended to the tokens as one extra token and cut off before proj_out",
        block_io={"transformer_blocks": BlockIO("MiniMaxMusic3TransformerBlock", "hidden_states", None,
                                                "hidden_states", registered=False, called="positional")},
        notes=("a modular pipeline: a ClassifierFreeGuidance guider runs the cond call and an uncond call on zero "
               "conditioning, WITHOUT cache_context",
               "the song is generated window by window (an outer loop); overlapping latents are re-noised each step"),
    ),
)

#: the transformer classes of diffusers 0.42.1 with no row, and why: the adapters' list (no adapter, no row)
UNSUPPORTED: dict[str, str] = dict(_ADAPTERS_UNSUPPORTED)
