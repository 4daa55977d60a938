"""Every surveyed diffusers family: the tiny model builds, its spec's structural claims hold, and a 20-step
sampling loop driven the way the family's pipeline drives the transformer finishes with finite latents."""

from __future__ import annotations

import pytest
import torch

from padecache.testing import families as F

NAMES = F.family_names()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run several times faster on one thread (no OpenMP hand-offs), more so on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REQUIRED = ("sd3", "flux2", "qwenimage", "zimage", "chroma", "hidream", "lumina2", "sana", "hunyuandit", "auraflow",
            "cogview4", "hunyuanimage", "hunyuanvideo", "hunyuanvideo15", "cogvideox", "ltx", "ltx2", "mochi",
            "skyreels_v2", "cosmos", "wan_vace", "allegro", "latte", "bria", "dit", "pixart", "flux", "wan")


def test_required_families_are_surveyed():
    assert set(REQUIRED) <= set(NAMES)
    assert not {F.family(n).model_class for n in NAMES} & set(F.UNSUPPORTED)


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_consistent(name):
    spec = F.family(name)
    assert spec.cfg in ("batched", "separate", "distilled", "none")
    assert set(spec.block_io) == set(spec.block_lists)
    assert len(spec.time_map) == 2
    assert spec.latent_keys and spec.time_argument


@pytest.mark.parametrize("name", NAMES)
def test_tiny_model_and_structural_claims(name):
    spec = F.family(name)
    report = F.verify(name)
    assert report["params"] < 500_000
    # every block of the listed block lists ran exactly once, starting with the first list's first block
    assert len(report["order"]) == len(set(report["order"])) == report["n_blocks"]
    assert report["order"][0] == (spec.block_lists[0], 0)
    assert report["same_shape"] is spec.head_same_shape
    assert all(report["returns_ok"].values()), report["returns_ok"]
    for io in spec.block_io.values():
        meta = report["metadata"][io.block_class]
        assert meta["registered"] is io.registered, (io.block_class, meta)
        if io.registered:
            assert meta["ok"] is io.metadata_ok, (io.block_class, meta)
    # skipping every block and substituting the head input reproduces the main output exactly
    assert report["skip_reproduces"][0] and all(report["output_nonzero"])


@pytest.mark.parametrize("name", NAMES)
def test_run_loop_20_steps(name):
    spec = F.family(name)
    model = F.tiny_transformer(name, seed=0)
    out = F.run_loop(name, model, steps=20, batch=1, seed=0)
    start = F.initial_latents(spec, spec.make_inputs(1, 0))[spec.latent_keys[0]]
    assert out.shape == start.shape
    assert torch.isfinite(out).all()
    assert not torch.equal(out, start)


@pytest.mark.parametrize("name", ["flux", "hunyuandit", "allegro", "zimage", "ltx2"])
def test_run_loop_is_deterministic(name):
    """Seeded noise, conditioning and ancestral/DDPM step noise: two runs agree bit for bit."""
    model = F.tiny_transformer(name, seed=0)
    first = F.run_loop(name, model, steps=5, batch=2, seed=3, return_all=True)
    again = F.run_loop(name, F.tiny_transformer(name, seed=0), steps=5, batch=2, seed=3, return_all=True)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["flux", "wan", "chroma", "ltx", "sd3", "hunyuanimage", "cogvideox", "lumina2"])
def test_call_pattern_matches_the_pipeline(name):
    """Calls per step and the cache_context each call runs in, as the family's pipeline makes them."""
    import contextlib

    spec = F.family(name)
    model = F.tiny_transformer(name)
    current, seen = [None], []
    if hasattr(model, "cache_context"):
        original = model.cache_context

        @contextlib.contextmanager
        def spy(ctx_name, **kwargs):
            current[0] = ctx_name
            with original(ctx_name, **kwargs):
                yield
            current[0] = None

        model.cache_context = spy
    model.register_forward_pre_hook(lambda m, a, k: seen.append(current[0]), with_kwargs=True)
    F.run_loop(name, model, steps=3)
    per_step = 2 if spec.cfg == "separate" else 1
    assert len(seen) == 3 * per_step
    expected = list(spec.cfg_contexts)[:per_step] if spec.cfg_contexts else [None] * per_step
    assert seen[:per_step] == expected, seen


def test_ltx2_audio_stream_needs_its_own_head():
    report = F.verify("ltx2")
    assert report["skip_reproduces"] == [True, False]
