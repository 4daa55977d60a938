"""Tiny diffusers pipelines built from configs: offline, seeded, a few milliseconds a step on a CPU.

``tiny_pipeline(family)`` builds one (``"dit"``, ``"pixart"``, ``"flux"``, ``"wan"``, ``"sd3"``) with text
encoders and tokenizers made in memory; ``run(pipe, family, steps=..., seed=...)`` samples from it the way
its family is used (two-call true CFG for FLUX, ``negative_prompt`` for Wan).  ``tiny_transformer(family)``
(in :mod:`padecache.testing.families`) covers every supported family without a pipeline.
"""

from __future__ import annotations

import contextlib
import functools
import string

import torch

import padecache

__all__ = ["tiny_pipeline", "run", "PIPELINES", "applied", "tiny_vae", "tiny_t5", "tiny_clip_text",
           "tiny_clip_tokenizer", "tiny_t5_tokenizer", "dit_transformer", "flux_transformer", "wan_transformer"]


def _seeded(build):
    """Run a builder with torch's global RNG seeded from its ``seed`` argument and restored afterwards: building a
    tiny model never changes the caller's random state."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return build(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def applied(target, config=None, **kwargs):
    """``padecache.apply`` for the ``with`` block; removed on the way out, even when the block fails."""
    padecache.apply(target, config, **kwargs)
    try:
        yield target
    finally:
        padecache.remove(target)


def _bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer(max_len=77):
    from transformers import CLIPTokenizer

    chars, vocab = _bytes_to_unicode(), {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    tok.model_max_length = max_len
    return tok


def tiny_t5_tokenizer(max_len=512):
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(c, -1.0) for c in string.ascii_letters + string.digits + "▁.,!?'-"]
    tok = T5Tokenizer(vocab=pieces, extra_ids=0)
    tok.model_max_length = max_len
    return tok


def tiny_clip_text(hidden=32, proj=32, with_projection=False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=hidden, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=514, max_position_embeddings=77,
        projection_dim=proj, hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg).eval()


def tiny_t5(d_model=32, umt5=False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    cls, cfgcls = (UMT5EncoderModel, UMT5Config) if umt5 else (T5EncoderModel, T5Config)
    return cls(cfgcls(
        vocab_size=100, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()


def tiny_vae(latent_channels=4, sf=1.5035, shift=None):
    from diffusers import AutoencoderKL

    kw = dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
              latent_channels=latent_channels, norm_num_groups=1, scaling_factor=sf)
    if shift is not None:
        kw.update(shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False)
    return AutoencoderKL(**kw).eval()


@_seeded
def dit_transformer(seed=0, num_layers=3):
    from diffusers import DiTTransformer2DModel

    torch.manual_seed(seed)
    return DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=num_layers,
        sample_size=8, patch_size=2, num_embeds_ada_norm=1000,
    ).eval()


@_seeded
def flux_transformer(seed=0):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    ).eval()


@_seeded
def wan_transformer(seed=0):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ).eval()


@_seeded
def dit_pipeline(seed=0):
    from diffusers import DDIMScheduler, DiTPipeline

    torch.manual_seed(seed)
    return DiTPipeline(transformer=dit_transformer(seed), vae=tiny_vae(4, sf=0.18215), scheduler=DDIMScheduler())


@_seeded
def flux_pipeline(seed=0):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    torch.manual_seed(seed)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(4, shift=0.0609),
        text_encoder=tiny_clip_text(), tokenizer=tiny_clip_tokenizer(), text_encoder_2=tiny_t5(32),
        tokenizer_2=tiny_t5_tokenizer(), transformer=flux_transformer(seed), image_encoder=None,
        feature_extractor=None,
    )


@_seeded
def wan_pipeline(seed=0):
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline

    torch.manual_seed(seed)
    return WanPipeline(
        tokenizer=tiny_t5_tokenizer(), text_encoder=tiny_t5(32, umt5=True),
        vae=AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                             temperal_downsample=[False, True, True]),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), transformer=wan_transformer(seed),
    )


def run_dit(pipe, steps=20, labels=(1, 2), guidance=4.0, seed=0):
    return pipe(class_labels=list(labels), num_inference_steps=steps, guidance_scale=guidance, output_type="pt",
                generator=torch.Generator().manual_seed(seed)).images


def run_flux(pipe, steps=20, seed=0, true_cfg=1.0):
    kw = dict(negative_prompt="blurry", true_cfg_scale=true_cfg) if true_cfg > 1 else {}
    return pipe("a squirrel", num_inference_steps=steps, guidance_scale=3.5, height=16, width=16,
                max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(seed), **kw).images


def run_wan(pipe, steps=20, seed=0, guidance=5.0):
    return pipe("a cat", negative_prompt="bad", num_inference_steps=steps, guidance_scale=guidance, height=16,
                width=16, num_frames=5, max_sequence_length=16, output_type="pt",
                generator=torch.Generator().manual_seed(seed)).frames


@_seeded
def pixart_pipeline(seed=0):
    from diffusers import DDIMScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    torch.manual_seed(seed)
    transformer = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
        cross_attention_dim=16, sample_size=8, patch_size=2, caption_channels=32, norm_type="ada_norm_single",
        use_additional_conditions=False,
    ).eval()
    return PixArtAlphaPipeline(tokenizer=tiny_t5_tokenizer(), text_encoder=tiny_t5(32), vae=tiny_vae(4),
                               transformer=transformer, scheduler=DDIMScheduler())


def run_pixart(pipe, steps=20, seed=0):
    return pipe("a squirrel", num_inference_steps=steps, height=16, width=16, max_sequence_length=48, output_type="pt",
                use_resolution_binning=False, clean_caption=False, generator=torch.Generator().manual_seed(seed)).images


@_seeded
def sd3_pipeline(seed=0):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=64, pooled_projection_dim=64, out_channels=4,
    ).eval()
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(4, shift=0.0609),
        text_encoder=tiny_clip_text(with_projection=True), tokenizer=tiny_clip_tokenizer(),
        text_encoder_2=tiny_clip_text(with_projection=True), tokenizer_2=tiny_clip_tokenizer(),
        text_encoder_3=tiny_t5(64), tokenizer_3=tiny_t5_tokenizer(),
    )


def run_sd3(pipe, steps=20, seed=0, guidance=4.0):
    return pipe("a squirrel", negative_prompt="blurry", num_inference_steps=steps, guidance_scale=guidance, height=16,
                width=16, max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(seed)).images


PIPELINES = {
    "dit": (dit_pipeline, run_dit),
    "pixart": (pixart_pipeline, run_pixart),
    "flux": (flux_pipeline, lambda pipe, **kw: run_flux(pipe, true_cfg=2.0, **kw)),
    "wan": (wan_pipeline, run_wan),
    "sd3": (sd3_pipeline, run_sd3),
}


def tiny_pipeline(family: str, seed: int = 0):
    """A tiny, seeded pipeline of ``family`` (one of :data:`PIPELINES`), progress bar off."""
    if family not in PIPELINES:
        raise ValueError(f"no tiny pipeline for {family!r}; families: {', '.join(PIPELINES)}")
    pipe = PIPELINES[family][0](seed)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, family: str, steps: int = 20, seed: int = 0) -> torch.Tensor:
    """Sample from a tiny pipeline of ``family`` the way that family is used; images (or video frames) as a tensor."""
    return PIPELINES[family][1](pipe, steps=steps, seed=seed)
