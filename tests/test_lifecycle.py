"""Copies and pickles of hooked models, and the memory the cache holds (what ``cache_bytes`` reports)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import padecache
import tiny


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_a_hooked_model_cannot_be_copied_silently(how, tmp_path):
    model = tiny.dit_transformer()
    padecache.apply(model, "default")
    try:
        with pytest.raises(TypeError, match=r"padecache.remove\(model\) first, then apply padecache to the copy"):
            if how == "deepcopy":
                copy.deepcopy(model)
            elif how == "pickle":
                pickle.dumps(model)
            else:
                torch.save(model, tmp_path / "model.pt")
    finally:
        padecache.remove(model)
    clone = copy.deepcopy(model)  # unhooked: an ordinary copy
    padecache.apply(clone, "default")
    padecache.apply(model, "none")
    try:
        assert padecache.stats(model).generations == 0 and padecache.is_applied(clone)
    finally:
        padecache.remove(clone)
        padecache.remove(model)


def _stack_bytes(dtype, batch=2, tokens=64, width=32):
    return batch * tokens * width * torch.tensor([], dtype=dtype).element_size()


@pytest.mark.parametrize("history_dtype", ["float32", "model", "auto"])
def test_cache_bytes_is_what_a_first_order_predictor_holds(history_dtype):
    """linear keeps its two last residuals, and during a call the engine holds the block-stack input (a float32
    copy, or the model's own bf16 tensor kept alive): three stack-sized tensors, in the history dtype."""
    pipe = tiny.flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    pipe.to(torch.bfloat16)
    cfg = {"predictor": "linear", "policy": {"name": "budget", "speedup": 2.0}, "engine": {"history_dtype": history_dtype}}
    with tiny.applied(pipe, cfg):
        pipe("a squirrel", num_inference_steps=8, guidance_scale=3.5, height=16, width=16, max_sequence_length=48,
             output_type="latent", generator=torch.Generator().manual_seed(0))
        stats = padecache.stats(pipe)
    one = _stack_bytes(torch.float32 if history_dtype == "float32" else torch.bfloat16, batch=1)
    assert stats.cache_bytes == 3 * one
    assert stats.forecast_steps > 0


def test_history_on_the_cpu_gives_the_same_images(wan_pipe):
    out = {}
    for device in ("model", "cpu"):
        with tiny.applied(wan_pipe, "default", engine={"history_device": device}):
            out[device] = tiny.run_wan(wan_pipe, steps=8)
    assert torch.equal(out["model"], out["cpu"])


def test_a_bf16_model_whose_head_runs_in_float32_forecasts_in_bf16(wan_pipe):
    """Wan calls norm_out(hidden_states.float()): the head sees float32 while the history is bf16 (auto)."""
    pipe = tiny.wan_pipeline()
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.to(torch.bfloat16)
    pipe.text_encoder.to(torch.bfloat16)
    with tiny.applied(pipe, "tc-pade-fast"):
        out = tiny.run_wan(pipe, steps=10)
        stats = padecache.stats(pipe)
    assert torch.isfinite(out).all() and stats.forecast_steps > 0 and stats.fallbacks == 0


def test_is_applied_answers_false_for_what_padecache_cannot_be_applied_to():
    """It raised apply's TypeError ("padecache.apply expects a diffusers pipeline") for a string."""
    import padecache

    assert padecache.is_applied("x") is False and padecache.is_applied(object()) is False
