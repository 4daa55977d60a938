"""What padecache uses of diffusers beyond its documented API is all in padecache.compat, and checked here: a diffusers
release that changes one of those internals fails this file, naming what changed."""

from __future__ import annotations

import pytest
import torch

import padecache
import tiny
from padecache import compat
from padecache.testing.families import make_scheduler, tiny_transformer


def test_the_installed_diffusers_has_every_internal_padecache_relies_on():
    checked = compat.self_check()
    assert len(checked) >= 7
    assert compat.version_problem() is None, compat.version_problem()


def test_block_metadata_comes_from_diffusers_registry():
    from diffusers.models.transformers.transformer_flux import FluxTransformerBlock

    hidden, encoder, hidden_index, encoder_index = compat.block_metadata(FluxTransformerBlock)
    assert (hidden, encoder) == ("hidden_states", "encoder_hidden_states") and {hidden_index, encoder_index} == {0, 1}
    assert compat.block_metadata(torch.nn.Linear) is None


def test_a_changed_internal_fails_loudly(monkeypatch):
    from diffusers.hooks.hooks import StateManager

    monkeypatch.delattr(StateManager, "context")
    with pytest.raises(compat.CompatError, match=r"diffusers .* changed: StateManager.context .* padecache.compat must be updated"):
        compat.self_check()


def test_a_diffusers_release_outside_the_tested_range_is_named(monkeypatch):
    monkeypatch.setattr(compat, "diffusers_version", lambda: (0, 99))
    assert "diffusers 0.99 is outside the releases padecache was checked with" in compat.version_problem()


def test_the_cache_context_reaches_the_hook_through_the_public_property(wan_pipe):
    """The transformer-level hook reads each call's CacheContext (name, step information) as diffusers sets it."""
    t = wan_pipe.transformer
    x, text = torch.randn(1, 16, 1, 8, 8), torch.randn(1, 4, 32)
    with tiny.applied(t, "none"):
        with t.cache_context("uncond", step_index=0, num_inference_steps=2, sigma=0.9):
            t(hidden_states=x, timestep=torch.tensor([900.0]), encoder_hidden_states=text)
        stats = padecache.stats(t)
    assert stats.branches == ("uncond",) and stats.planned_steps == 2 and stats.total_steps == 1  # one step ran


def test_a_diffusers_cache_applied_by_its_function_is_refused_too():
    """diffusers' apply_first_block_cache / apply_taylorseer_cache set no cache config (DiT, SD3 and PixArt have no
    enable_cache): their hooks are found, and apply refuses to stack on them, naming them."""
    from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache

    model = tiny_transformer("sd3")
    apply_first_block_cache(model, FirstBlockCacheConfig(threshold=0.2))
    with pytest.raises(ValueError, match="a diffusers cache \\(apply_first_block_cache\\) is on this SD3Transformer2DModel"):
        padecache.apply(model, "default", scheduler=make_scheduler("sd3"))
    assert not padecache.is_applied(model)
