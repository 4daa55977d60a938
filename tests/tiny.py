"""The test suite's tiny pipelines: the ones padecache ships for plugin authors (:mod:`padecache.testing.pipelines`)."""

import torch

from padecache.testing.pipelines import *  # noqa: F401,F403
from padecache.testing.pipelines import (  # noqa: F401
    applied,
    dit_pipeline,
    flux_pipeline,
    pixart_pipeline,
    run_dit,
    run_flux,
    run_pixart,
    run_sd3,
    run_wan,
    sd3_pipeline,
    wan_pipeline,
)


def assert_batch_matches_singles(batch, singles, full, atol=2e-5, rtol=0.0, factor=4.0):
    """A batch gives what its samples give alone, up to what the model itself gives at full compute.

    A CPU's matrix kernels may round a batch of 3 differently from a batch of 1 (an AMD EPYC does, by up to 3e-5 on
    the tiny PixArt; the machine these tests were written on did not), so the allowance grows with the
    batch-versus-singles difference of the uncached model, ``full`` = (batch, singles), measured on this machine:
    ``atol + factor * that`` (and ``rtol``).  A row that borrowed another row's history would be off by far more.
    """
    noise = (full[0] - full[1]).abs().max().item()
    torch.testing.assert_close(batch, singles, rtol=rtol, atol=atol + factor * noise)


# -- the pipeline variants of tests/test_variants.py --------------------------------------------------------------------


def _redraw_zeros(module):
    """Zero-initialised layers (a ControlNet's zero convolutions) would make the variant's input inert: redraw them."""
    with torch.no_grad():
        for param in module.parameters():
            if param.numel() and not param.any():
                param.normal_(0.0, 0.02)
    return module.eval()


def flux_controlnet_pipeline(flux_pipe, seed=1):
    from diffusers import FluxControlNetModel, FluxControlNetPipeline

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = _redraw_zeros(FluxControlNetModel(
            patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8]))
    parts = ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer")
    pipe = FluxControlNetPipeline(**{k: flux_pipe.components[k] for k in parts}, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd3_controlnet_pipeline(sd3_pipe, seed=1):
    from diffusers import SD3ControlNetModel, StableDiffusion3ControlNetPipeline

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = _redraw_zeros(SD3ControlNetModel(
            sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
            joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64, out_channels=4))
    pipe = StableDiffusion3ControlNetPipeline(**{k: v for k, v in sd3_pipe.components.items()}, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwenimage_parts(seed=0):
    """A tiny Qwen-Image transformer, VAE and scheduler: the pipelines run on prompt embeddings (no Qwen2.5-VL)."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
            joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4)).eval()
        vae = AutoencoderKLQwenImage(base_dim=4, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
                                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                base_image_seq_len=256, max_image_seq_len=8192)
    return {"transformer": transformer, "vae": vae, "scheduler": scheduler, "text_encoder": None, "tokenizer": None}


def qwenimage_controlnet_pipeline(seed=1):
    from diffusers import QwenImageControlNetModel, QwenImageControlNetPipeline

    parts = qwenimage_parts()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = _redraw_zeros(QwenImageControlNetModel(
            patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
            joint_attention_dim=16, axes_dims_rope=(8, 4, 4), extra_condition_channels=0))
    pipe = QwenImageControlNetPipeline(**parts, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwenimage_edit_pipeline():
    from diffusers import QwenImageEditPipeline

    pipe = QwenImageEditPipeline(**qwenimage_parts(), processor=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwen_prompt(seed=3):
    g = torch.Generator().manual_seed(seed)
    return {"prompt_embeds": torch.randn(1, 8, 16, generator=g), "prompt_embeds_mask": torch.ones(1, 8, dtype=torch.long)}
