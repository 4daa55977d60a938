"""The diffusers transformer families padecache supports out of the box: one :class:`Adapter` entry each.

Block inputs and outputs come from diffusers' block metadata (``TransformerBlockRegistry``) wherever it has
them and they are right; an entry spells out :class:`BlockIO` only where diffusers has none, or has it wrong
(Bria, Z-Image).  The facts behind each entry (what the pipeline passes as time, how it runs guidance, what
sits between the stack and the head) were read from diffusers 0.42's pipelines and checked by running every
family (:mod:`padecache.testing.families`); ``tests/test_families.py`` runs each one through a 20-step loop.

Adding a family is one entry here (or in a plugin's ``padecache_adapters`` hook) plus its tiny config in
:mod:`padecache.testing.families`.
"""

from __future__ import annotations

from . import Adapter, BlockIO, GenericAdapter, Stream, TimeEmbedding, TimeSpec
from . import modulation as M  # (core) each family's first-block modulated input, for input-aware policies
from .head_input import HeadInput, ModelCall

__all__ = ["FAMILIES", "BUILTIN_ADAPTERS", "UNSUPPORTED", "supported_models_markdown", "unsupported_markdown"]

T = TimeSpec()  # the pipeline passes scheduler.timesteps as they are
CONTROLNET = ("controlnet_block_samples", "controlnet_single_block_samples")  # FLUX-style ControlNet residuals
T1000 = TimeSpec(scale=1e-3)  # FLUX-style pipelines pass t / 1000
REVERSED = TimeSpec(scale=-1e-3, offset=1.0)  # Lumina-style: 1 - t / 1000

ENC_HID = ("encoder_hidden_states", "hidden_states")
HID_ENC = ("hidden_states", "encoder_hidden_states")
HIDDEN = BlockIO(returns="hidden_states")  # a block without diffusers metadata that returns the hidden tensor


def _io(returns, hidden: str = "hidden_states") -> BlockIO:
    return BlockIO(hidden=hidden, returns=returns)


def _window_tokens(call: ModelCall) -> int:
    """FramePack: the tokens of the latents being denoised, ``hidden_states`` (B, C, F, H, W) after patching."""
    _, _, f, h, w = call["hidden_states"].shape
    c = call.model.config
    return (f // c.patch_size_t) * (h // c.patch_size) * (w // c.patch_size)


def _fractal(call: ModelCall) -> bool:
    params = call["sparse_params"]
    return bool(params is not None and params["to_fractal"])


def _kandinsky5_rows(h, call: ModelCall):
    """Kandinsky 5's head receives the visual tokens as a (B, F, H, W, D) grid: back to the stack's token order."""
    if not _fractal(call):
        return h.flatten(1, 3)
    from diffusers.models.transformers.transformer_kandinsky import local_patching

    return local_patching(h, h.shape[:4], (1, 8, 8), dim=1).flatten(1, 2)


def _kandinsky5_grid(h, value, call: ModelCall):
    if not _fractal(call):
        return value.reshape(h.shape)
    from diffusers.models.transformers.transformer_kandinsky import fractal_unflatten

    return fractal_unflatten(value, h.shape[:4], block_mask=True)


def _nabla_rows(h, call: ModelCall):
    """Kandinsky 6 SR's head receives the (B, T, H, W, D) grid; its blocks run on it in 8x8 spatial groups."""
    from diffusers.models.transformers.transformer_kandinsky6_sr import FRACTAL_BLOCK_SIZE as G
    from diffusers.models.transformers.transformer_kandinsky6_sr import _local_patch

    return _local_patch(h, h.shape[1:4], (1, G, G), dim=1).flatten(1, 2)


def _nabla_grid(h, value, call: ModelCall):
    from diffusers.models.transformers.transformer_kandinsky6_sr import FRACTAL_BLOCK_SIZE as G
    from diffusers.models.transformers.transformer_kandinsky6_sr import _local_merge

    return _local_merge(value.reshape(value.shape[0], -1, G * G, value.shape[-1]), h.shape[1:4], (1, G, G), dim=1)


def _fibo2_image_tokens(x, call: ModelCall):
    """Bria FIBO 2: the image tokens of the stream [gist, image, context] (the gist last when a batch pads it), located
    with the model's own gist-count rule."""
    from diffusers.models.transformers.transformer_bria_fibo2 import compute_gist_count

    c, hidden, text, mask = call.model.config, call["hidden_states"], call["encoder_hidden_states"], \
        call["encoder_attention_mask"]
    lengths = mask.sum(dim=1).tolist() if mask is not None else [text.shape[2]] * hidden.shape[0]
    counts = compute_gist_count(lengths, min_gist=c.min_num_gist_tokens, max_gist=c.max_num_gist_tokens,
                                gist_step=c.gist_step, min_text_len=c.gist_min_text_len, max_text_len=c.gist_max_text_len)
    start = max(counts) if min(counts) == max(counts) else 0
    return x[:, start:start + (hidden.shape[2] // c.patch_size) * (hidden.shape[3] // c.patch_size)]


KANDINSKY5_GRID = HeadInput(rows=_kandinsky5_rows, inject=_kandinsky5_grid,
                            describe="the visual tokens unflattened (and, with sparse attention, un-permuted)")


FAMILIES: tuple[Adapter, ...] = (
    # -- image, batched CFG -------------------------------------------------------------------------------------
    Adapter("dit", ("DiTTransformer2DModel",), ("transformer_blocks",), modulated=M.dit, cfg="batched",
            always_run=("pos_embed", "norm_out", "proj_out_1/2 (the head reads transformer_blocks[0].norm1.emb)")),
    Adapter("pixart", ("PixArtTransformer2DModel",), ("transformer_blocks",), cfg="batched",
            always_run=("pos_embed", "adaln_single", "caption_projection", "norm_out", "proj_out")),
    Adapter("sd3", ("SD3Transformer2DModel",), ("transformer_blocks",), modulated=M.ada_norm_zero, cfg="batched",
            control_inputs=("block_controlnet_hidden_states",),
            always_run=("pos_embed", "time_text_embed", "context_embedder", "norm_out", "proj_out"),
            notes="SD3.5's last block returns no encoder stream; skip-layer guidance adds a third call"),
    Adapter("hidream", ("HiDreamImageTransformer2DModel",), ("double_stream_blocks", "single_stream_blocks"),
            head="final_layer", time=TimeSpec("timesteps"), cfg="batched", time_embedding=TimeEmbedding("t_embedder"),
            io={"double_stream_blocks": _io(HID_ENC), "single_stream_blocks": HIDDEN},
            always_run=("x_embedder", "t_embedder", "p_embedder", "caption_projection", "final_layer"),
            notes="a Llama layer is concatenated into the text stream before each block, outside the blocks"),
    Adapter("sana", ("SanaTransformer2DModel",), ("transformer_blocks",), cfg="batched",
            control_inputs=("controlnet_block_samples",),
            time=lambda model: TimeSpec(scale=float(getattr(model.config, "timestep_scale", 1.0) or 1.0)),
            io={"transformer_blocks": HIDDEN}, always_run=("patch_embed", "time_embed", "caption_projection", "norm_out"),
            notes="time is scaled by the model's timestep_scale (1 for Sana, other values for Sana-Sprint)"),
    Adapter("hunyuandit", ("HunyuanDiT2DModel",), ("blocks",), cfg="batched", io={"blocks": HIDDEN},
            control_inputs=("controlnet_block_samples",),
            always_run=("pos_embed", "time_extra_emb", "text_embedder", "norm_out", "proj_out"),
            notes="long skip connections: the second half of the blocks takes the first half's outputs as `skip`"),
    Adapter("auraflow", ("AuraFlowTransformer2DModel",), ("joint_transformer_blocks", "single_transformer_blocks"),
            time=T1000, cfg="batched",
            io={"joint_transformer_blocks": _io(ENC_HID), "single_transformer_blocks": HIDDEN},
            always_run=("pos_embed", "time_step_embed", "context_embedder", "register_tokens", "norm_out")),
    Adapter("bria", ("BriaTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"), cfg="batched",
            control_inputs=CONTROLNET,
            io={"transformer_blocks": _io(ENC_HID), "single_transformer_blocks": _io(ENC_HID)},
            always_run=("x_embedder", "time_embed", "context_embedder", "pos_embed", "norm_out"),
            notes="diffusers' block metadata for BriaTransformerBlock is wrong (it returns (encoder, hidden)); "
                  "time is passed raw, 0..1000"),
    Adapter("zimage", ("ZImageTransformer2DModel",), ("layers",),
            control_inputs=("controlnet_block_samples",),
            head=lambda model: f"all_final_layer.{model.config.all_patch_size[0]}-{model.config.all_f_patch_size[0]}",
            time=TimeSpec("t", scale=-1e-3, offset=1.0), cfg="batched (lists of samples)",
            io={"layers": _io("x", hidden="x")},
            always_run=("all_x_embedder", "t_embedder", "cap_embedder", "noise_refiner", "context_refiner", "all_final_layer"),
            notes="the stack runs on the joint [image, caption] sequence; blocks take `x` positionally (diffusers' "
                  "metadata says hidden_states)"),
    # -- image, guidance distilled or two calls per step ------------------------------------------------------------
    Adapter("flux", ("FluxTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            control_inputs=CONTROLNET,
            modulated=M.ada_norm_zero, time=T1000,
            cfg="distilled; true CFG: separate (cache_context)",
            always_run=("x_embedder", "context_embedder", "time_text_embed", "pos_embed", "norm_out", "proj_out")),
    Adapter("flux2", ("Flux2Transformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            modulated=M.flux2,
            time=T1000, cfg="distilled (Klein: separate, cache_context)",
            always_run=("x_embedder", "context_embedder", "time_guidance_embed", "pos_embed", "norm_out"),
            notes="text tokens are joined to the image tokens between the two block lists and cut off before the head"),
    Adapter("chroma", ("ChromaTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            control_inputs=CONTROLNET,
            modulated=M.chroma, time=T1000,
            cfg="separate", io={"transformer_blocks": _io(ENC_HID), "single_transformer_blocks": HIDDEN},
            always_run=("x_embedder", "context_embedder", "time_text_embed", "distilled_guidance_layer", "norm_out"),
            notes="single blocks take no encoder stream"),
    Adapter("qwenimage", ("QwenImageTransformer2DModel",), ("transformer_blocks",), modulated=M.qwenimage, time=T1000,
            control_inputs=("controlnet_block_samples",),
            cfg="separate (cache_context)", always_run=("img_in", "txt_in", "time_text_embed", "pos_embed", "norm_out")),
    Adapter("lumina2", ("Lumina2Transformer2DModel",), ("layers",), time=REVERSED, cfg="separate",
            io={"layers": HIDDEN},
            always_run=("x_embedder", "time_caption_embed", "noise_refiner", "context_refiner", "rope_embedder", "norm_out"),
            notes="time runs reversed (1 - t/1000); the stack runs on the joint [image, caption] sequence"),
    Adapter("cogview4", ("CogView4Transformer2DModel",), ("transformer_blocks",), cfg="separate (cache_context)",
            always_run=("patch_embed", "time_condition_embed", "rope", "norm_out", "proj_out")),
    Adapter("hunyuanimage", ("HunyuanImageTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            cfg="separate through the guider (cache_context pred_cond / pred_uncond); distilled: one call",
            always_run=("x_embedder", "context_embedder", "time_guidance_embed", "rope", "norm_out")),
    Adapter("longcat_image", ("LongCatImageTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            time=T1000, cfg="separate (cache_context)",
            io={"transformer_blocks": _io(ENC_HID), "single_transformer_blocks": _io(ENC_HID)}),
    Adapter("ovis_image", ("OvisImageTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            time=T1000, cfg="separate (cache_context)",
            io={"transformer_blocks": _io(ENC_HID), "single_transformer_blocks": _io(ENC_HID)}),
    Adapter("cogview3plus", ("CogView3PlusTransformer2DModel",), ("transformer_blocks",), cfg="batched",
            io={"transformer_blocks": _io(HID_ENC)}),
    Adapter("lumina_next", ("LuminaNextDiT2DModel",), ("layers",), time=REVERSED, cfg="batched", io={"layers": HIDDEN}),
    Adapter("glm_image", ("GlmImageTransformer2DModel",), ("transformer_blocks",), time=TimeSpec(offset=-1.0),
            cfg="separate", io={"transformer_blocks": _io(HID_ENC)}, notes="time is passed as t - 1"),
    Adapter("qwenimage21", ("QwenImage21Transformer2DModel",), ("transformer_blocks",), time=T1000,
            cfg="separate (cache_context)", io={"transformer_blocks": HIDDEN},
            notes="its key-value cache shortens the stack input after the first step: padecache restarts the history "
                  "then; run with use_kv_cache=False to forecast from the start"),
    Adapter("omnigen", ("OmniGenTransformer2DModel",), ("layers",), head="norm", cfg="batched (cond first)",
            io={"layers": HIDDEN}),
    Adapter("prx", ("PRXTransformer2DModel",), ("blocks",), head="final_layer", time=T1000, cfg="batched",
            io={"blocks": HIDDEN}),
    Adapter("bria_fibo", ("BriaFiboTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
            cfg="batched", io={"transformer_blocks": _io(ENC_HID), "single_transformer_blocks": HIDDEN}),
    Adapter("nucleusmoe_image", ("NucleusMoEImageTransformer2DModel",), ("transformer_blocks",), time=T1000,
            cfg="separate", io={"transformer_blocks": HIDDEN}),
    # -- video --------------------------------------------------------------------------------------------------
    Adapter("wan", ("WanTransformer3DModel",), ("blocks",),
            modulated=M.wan, cfg="separate (cache_context with step_index)",
            time_embedding=TimeEmbedding("condition_embedder", output=0),
            always_run=("patch_embedding", "condition_embedder", "rope", "norm_out", "proj_out"),
            notes="Wan 2.2: transformer and transformer_2 (the experts) each keep their own state and budget"),
    Adapter("wan_vace", ("WanVACETransformer3DModel",), ("vace_blocks", "blocks"), cfg="separate (cache_context)",
            io={"vace_blocks": _io(("zeros:control_hidden_states", "control_hidden_states"))},
            always_run=("patch_embedding", "vace_patch_embedding", "condition_embedder", "rope", "norm_out"),
            notes="VACE blocks are part of the stack: a skipped one hands back a zero hint"),
    Adapter("skyreels_v2", ("SkyReelsV2Transformer3DModel",), ("blocks",), cfg="separate (cache_context)",
            io={"blocks": HIDDEN}, notes="diffusion-forcing pipelines pass per-frame times; the step is matched on their maximum"),
    Adapter("chronoedit", ("ChronoEditTransformer3DModel",), ("blocks",), cfg="separate", io={"blocks": HIDDEN},
            notes="temporal reasoning steps change the token count: the history restarts (stats().restarts)"),
    Adapter("wan_animate", ("WanAnimateTransformer3DModel",), ("blocks",), cfg="separate (cache_context)",
            io={"blocks": HIDDEN}, always_run=("motion_encoder", "face_encoder"),
            notes="the face adapter, called between blocks, is skipped with them"),
    Adapter("helios", ("HeliosTransformer3DModel",), ("blocks",), cfg="separate (cache_context)", io={"blocks": HIDDEN}),
    Adapter("hunyuanvideo", ("HunyuanVideoTransformer3DModel",), ("transformer_blocks", "single_transformer_blocks"),
            modulated=M.ada_norm_zero,
            cfg="distilled (cache_context); true CFG: separate",
            always_run=("x_embedder", "context_embedder", "time_text_embed", "rope", "norm_out")),
    Adapter("hunyuanvideo15", ("HunyuanVideo15Transformer3DModel",), ("transformer_blocks",),
            cfg="separate through the guider (cache_context pred_cond / pred_uncond)",
            io={"transformer_blocks": _io(HID_ENC)}, always_run=("x_embedder", "context_embedder", "time_embed", "rope", "norm_out")),
    Adapter("cogvideox", ("CogVideoXTransformer3DModel",), ("transformer_blocks",),
            modulated=M.cogvideox, head="norm_final", time_embedding=TimeEmbedding(argument="temb"),
            cfg="batched (cache_context cond_uncond)",
            always_run=("patch_embed", "time_embedding", "norm_final", "norm_out", "proj_out")),
    Adapter("ltx", ("LTXVideoTransformer3DModel",), ("transformer_blocks",),
            modulated=M.ltx, cfg="batched (cache_context cond_uncond)",
            always_run=("proj_in", "time_embed", "caption_projection", "rope", "norm_out", "proj_out")),
    Adapter("ltx2", ("LTX2VideoTransformer3DModel",), ("transformer_blocks",), cfg="batched (cache_context cond_uncond)",
            streams=(Stream("hidden_states", "norm_out"), Stream("audio_hidden_states", "audio_norm_out")),
            io={"transformer_blocks": _io(("hidden_states", "audio_hidden_states"))},
            always_run=("proj_in", "audio_proj_in", "time_embed", "audio_time_embed", "norm_out", "audio_norm_out"),
            notes="video and audio streams are forecast together (one residual per row)"),
    Adapter("mochi", ("MochiTransformer3DModel",), ("transformer_blocks",), cfg="batched (cache_context cond_uncond)",
            always_run=("patch_embed", "time_embed", "rope", "norm_out", "proj_out")),
    Adapter("cosmos", ("CosmosTransformer3DModel",), ("transformer_blocks",), cfg="separate",
            control_inputs=("block_controlnet_hidden_states",),
            io={"transformer_blocks": HIDDEN}, notes="EDM time: the scheduler's timesteps are 0.25 log sigma"),
    Adapter("allegro", ("AllegroTransformer3DModel",), ("transformer_blocks",), cfg="batched",
            io={"transformer_blocks": HIDDEN}, shared_arguments=("image_rotary_emb",)),
    Adapter("latte", ("LatteTransformer3DModel",), ("transformer_blocks", "temporal_transformer_blocks"), cfg="batched",
            rows_split=False,  # the temporal blocks' rows are (sample, token) pairs, the stack's (sample, frame)
            notes="spatial and temporal blocks alternate (reshaped in between); the stack is all of them; its rows are "
                  "(sample, frame) pairs, so rows that disagree all compute"),
    Adapter("sana_video", ("SanaVideoTransformer3DModel",), ("transformer_blocks",), cfg="batched",
            control_inputs=("controlnet_block_samples",),
            io={"transformer_blocks": HIDDEN}),
    Adapter("easyanimate", ("EasyAnimateTransformer3DModel",), ("transformer_blocks",), head="norm_final", cfg="batched",
            io={"transformer_blocks": _io(HID_ENC)}),
    Adapter("motif_video", ("MotifVideoTransformer3DModel",), ("transformer_blocks", "single_transformer_blocks"),
            cfg="separate through the guider (cache_context pred_cond / pred_uncond)"),
    # -- heads that receive the stack's stream changed (a HeadInput says how) ---------------------------------------
    Adapter("consisid", ("ConsisIDTransformer3DModel",), ("transformer_blocks",), head="norm_final", cfg="batched",
            time_embedding=TimeEmbedding(argument="temb"),
            io={"transformer_blocks": _io(HID_ENC)}, head_input=HeadInput.after_leading("encoder_hidden_states"),
            always_run=("patch_embed", "time_embedding", "local_facial_extractor", "norm_final", "norm_out"),
            notes="the head receives [text, image]; the identity adapter between blocks is skipped with them"),
    Adapter("hunyuan_video_framepack", ("HunyuanVideoFramepackTransformer3DModel",),
            ("transformer_blocks", "single_transformer_blocks"), cfg="distilled; true CFG: separate",
            head_input=HeadInput.keep_trailing(_window_tokens),
            always_run=("x_embedder", "clean_x_embedder", "image_projection", "context_embedder", "norm_out"),
            notes="history tokens ride through the stack in front of the window; only the window's are forecast"),
    Adapter("krea2", ("Krea2Transformer2DModel",), ("transformer_blocks",), head="final_layer", time=T1000,
            cfg="separate", io={"transformer_blocks": HIDDEN},
            head_input=HeadInput.drop_leading("encoder_hidden_states"),
            always_run=("text_fusion", "txt_in", "img_in", "final_layer"),
            notes="the stack runs on [text, image]; the image tokens are forecast"),
    Adapter("kandinsky5", ("Kandinsky5Transformer3DModel",), ("visual_transformer_blocks",), head="out_layer",
            cfg="separate", head_input=KANDINSKY5_GRID,
            always_run=("text_transformer_blocks", "visual_embeddings", "out_layer"),
            notes="the head receives the visual tokens unflattened (permuted back with sparse attention)"),
    Adapter("ernie_image", ("ErnieImageTransformer2DModel",), ("layers",), head="final_norm", cfg="batched",
            io={"layers": _io("x", hidden="x")}, head_input=HeadInput.sequence_first(), rows_split=False,
            always_run=("x_embedder", "text_proj", "time_embedding", "adaLN_modulation", "final_norm"),
            notes="its stream is sequence-first (S, B, D); rows of a batch compute together"),
    Adapter("ideogram4", ("Ideogram4Transformer2DModel",), ("layers",), head="final_layer", time=REVERSED,
            cfg="two models: transformer (cond) and unconditional_transformer (uncond), one call each per step",
            always_run=("input_proj", "t_embedding", "adaln_proj", "llm_cond_proj", "final_layer"),
            notes="hook unconditional_transformer too: padecache.apply(pipe.unconditional_transformer, ..., "
                  "scheduler=pipe.scheduler)"),
    Adapter("joyimage_edit", ("JoyImageEditTransformer3DModel",), ("double_blocks",), cfg="separate",
            io={"double_blocks": _io(HID_ENC)}, always_run=("img_in", "condition_embedder", "norm_out", "proj_out")),
    Adapter("joyimage_edit_plus", ("JoyImageEditPlusTransformer3DModel",), ("double_blocks",), cfg="batched",
            io={"double_blocks": _io(HID_ENC)}, always_run=("img_in", "condition_embedder", "norm_out", "proj_out")),
    Adapter("bria_fibo2", ("BriaFibo2Transformer2DModel",), ("layers",), head="final_layer", time=T1000,
            cfg="separate", io={"layers": _io("x", hidden="x")},
            head_input=HeadInput(stack=_fibo2_image_tokens, describe="the image tokens between gist and context"),
            always_run=("x_embedder", "t_embedder", "noise_refiner", "perceiver", "final_layer"),
            notes="gist and context-image tokens ride through the stack with the image; the image tokens are forecast"),
    Adapter("kandinsky6_sr", ("Kandinsky6SRTransformer3DModel",), ("visual_transformer_blocks",), head="out_layer",
            cfg="none", head_input=HeadInput(rows=_nabla_rows, inject=_nabla_grid,
                                             describe="the token grid, grouped 8x8 for NABLA attention in the stack"),
            always_run=("time_embeddings", "visual_embeddings", "out_layer"),
            notes="the head receives the token grid; the stack runs on it in 8x8 spatial groups"),
    Adapter("prior", ("PriorTransformer",), ("transformer_blocks",), cfg="batched",
            rows_split=False,  # its attention mask is (batch * heads, N, N)
            always_run=("time_embedding", "proj_in", "embedding_proj", "encoder_hidden_states_proj", "norm_out"),
            notes="denoises a CLIP image embedding (Kandinsky 2.x, unCLIP, Shap-E priors); pipelines hold it as "
                  "`prior`: padecache.apply(pipe.prior, ..., scheduler=pipe.scheduler)"),
    Adapter("anyflow", ("AnyFlowTransformer3DModel",), ("blocks",), cfg="batched", io={"blocks": HIDDEN},
            always_run=("patch_embedding", "condition_embedder", "rope", "norm_out", "proj_out"),
            notes="time is passed per frame (the step is matched on its maximum); r_timestep rides along"),
    # -- audio ----------------------------------------------------------------------------------------------------
    Adapter("stable_audio", ("StableAudioDiTModel",), ("transformer_blocks",), head="proj_out", cfg="batched",
            always_run=("preprocess_conv", "proj_in", "global_proj", "timestep_proj", "proj_out", "postprocess_conv"),
            notes="the global (duration) token rides through the stack with the audio tokens"),
    Adapter("stable_audio3", ("StableAudio3DiTModel",), ("transformer_blocks",), head="proj_out", cfg="batched",
            head_input=HeadInput.drop_leading("config.num_memory_tokens"),
            always_run=("preprocess_conv", "proj_in", "to_cond_embed", "to_global_embed", "proj_out"),
            notes="memory tokens ride through the stack in front of the audio; the audio tokens are forecast"),
    Adapter("ace_step", ("AceStepTransformer1DModel",), ("layers",), cfg="batched (cond first)",
            shared_arguments=("position_embeddings",),
            always_run=("proj_in_conv", "time_embed", "time_embed_r", "condition_embedder", "norm_out"),
            notes="outside the pipeline's cfg_interval a call has half the rows: padecache restarts the history then"),
    Adapter("longcat_audio_dit", ("LongCatAudioDiTTransformer",), ("blocks",), time=T1000, cfg="separate",
            always_run=("input_embed", "time_embed", "text_embed", "norm_out", "proj_out")),
    Adapter("minimax_music3", ("MiniMaxMusic3Transformer1DModel",), ("transformer_blocks",), head="proj_out",
            cfg="separate through the guider", head_input=HeadInput.drop_leading(1),
            always_run=("preprocess_conv", "proj_in", "time_embed", "proj_out", "postprocess_conv"),
            notes="the timestep token rides through the stack in front of the audio tokens"),
)

#: every other transformer ModelMixin of diffusers 0.42.1, and why no adapter claims it (a test keeps this complete)
UNSUPPORTED = {
    # not denoisers
    "TransformerTemporalModel": "not a denoiser: the temporal attention layer inside video UNets (AnimateDiff, SVD)",
    "Transformer2DModel": "not a denoiser on its own: the attention layer of UNets (SD, AudioLDM 2); its standalone "
                          "use, VQ-Diffusion, denoises discrete tokens in a deprecated pipeline",
    "DreamLiteTransformer2DModel": "not a denoiser on its own: a layer inside DreamLiteUNetModel, the pipeline's "
                                   "denoiser",
    "T5FilmDecoder": "the decoder of the deprecated spectrogram-diffusion pipeline (MIDI to mel frames, FiLM time "
                     "conditioning, T5 encoders): no maintained pipeline drives it",
    "MiniMaxMusic3RVQDepthDecoder": "not a denoiser: an autoregressive decoder of residual-vector-quantised codes",
    # denoisers not claimed yet
    "Flux3Transformer2DModel": "no diffusers 0.42 pipeline drives it yet (no time convention or guidance to follow)",
    "Kandinsky6Transformer3DModel": "not yet: its audio stream is optional per call (video-only or video+audio "
                                    "generation); the hooks take a fixed set of streams",
    "MiniMaxH3Transformer3DModel": "not yet: one call carries rows at several noise levels (video, audio and "
                                   "conditioning rows on their own schedules); padecache locates a step by one time",
    "WanAnimate2Transformer3DModel": "not yet: a reference pass fills a key-value cache that the generation passes "
                                     "read; the cached pass runs a different token set",
    "AnyFlowFARTransformer3DModel": "not yet: frame-autoregressive; each chunk is denoised against a key-value cache "
                                    "of the previous ones",
    "Cosmos3OmniTransformer": "not yet: a mixture-of-transformers VLM whose understanding and generation token "
                              "streams share layers",
    "SanaWMTransformer3DModel": "not yet: SANA-WM's camera-conditioned world-model DiT (UCPE attention in every "
                                "block); its pipeline is not surveyed",
    "SanaWMLTX2RefinerTransformer3DModel": "not yet: SANA-WM's chunk-causal refiner (LTX-2 weights): each window's "
                                           "self-attention reads a sliding key-value cache of the refined history",
    "RFD4ProteinaTransformer": "not yet: a protein-structure velocity denoiser over paired backbone and local-latent "
                               "modalities; its pipeline is not surveyed",
}

#: every built-in adapter, the generic one last (registry order decides who claims a model first)
BUILTIN_ADAPTERS: tuple[Adapter, ...] = (*FAMILIES, GenericAdapter())


def supported_models_markdown() -> str:
    """The README's supported-models table, from the adapters themselves (a test keeps the README in sync)."""
    lines = ["| family | transformer class | blocks forecast | time passed as | guidance in its pipelines |",
             "|---|---|---|---|---|"]
    for a in FAMILIES:
        row = a.describe()
        lines.append(f"| {a.name} | `{row['classes']}` | {row['blocks']} | {row['time']} | {row['cfg']} |")
    return "\n".join(lines)


def unsupported_markdown() -> str:
    """The README's list of diffusers' transformers no adapter claims, with the reasons (a test keeps it in sync)."""
    lines = [f"Not claimed ({len(UNSUPPORTED)} of diffusers 0.42.1's transformers), and why:", ""]
    lines += [f"* `{name}`: {reason}" for name, reason in UNSUPPORTED.items()]
    return "\n".join(lines)
