"""Every surveyed diffusers family: the tiny model builds, its spec's structural claims hold, and a 20-step
sampling loop driven the way the family's pipeline drives the transformer finishes with finite latents."""

from __future__ import annotations

import pytest
import torch

import padecache
from padecache.plugins import get_registry
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


class _Alternate(padecache.CachePolicy):
    """Row i computes at steps where i + step is even (every row at step 0): every later call is mixed."""

    name = "test-alternate-rows"

    def should_compute(self, ctx):
        return True if ctx.step == 0 else torch.tensor([(i + ctx.step) % 2 == 0 for i in range(ctx.rows)])


class _Tape(padecache.Predictor):
    """Replays the residuals recorded in a run that computed every step: a perfect forecast."""

    name = "test-tape"
    tape: dict = {}
    recording = True

    def __init__(self, config=None):
        super().__init__(config)
        self.rows = None

    def update(self, ctx, residual, block_input, computed):
        if _Tape.recording:
            _Tape.tape[(ctx.branch, ctx.step)] = residual.clone()

    def predict(self, ctx, block_input):
        full = _Tape.tape[(ctx.branch, ctx.step)]
        return (full if self.rows is None else full[self.rows]).to(block_input.dtype)

    def select(self, rows, batch):
        new = super().select(rows, batch)
        new.rows = (torch.arange(batch) if self.rows is None else self.rows)[rows]
        return new

    def reset(self):
        self.rows = None


class _SplitPlugin:
    @padecache.hookimpl
    def padecache_policies(self):
        return [_Alternate]

    @padecache.hookimpl
    def padecache_predictors(self):
        return [_Tape]


@pytest.fixture(scope="module")
def split_plugin():
    plugin = _SplitPlugin()
    padecache.register_plugin(plugin, name="test-split-rows")
    yield
    padecache.unregister_plugin(plugin)


@pytest.mark.parametrize("name", NAMES)
def test_rows_that_disagree_run_apart_exactly(name, split_plugin):
    """A call where some rows compute and the others are forecast runs the blocks on the computing rows alone
    (or, where the family's adapter says its blocks cannot, on every row): with a perfect forecast the result is
    full compute, for every family (arguments that mix the batch with another axis, or whose first size equals
    the batch by coincidence, once crashed or mixed rows here)."""
    model, scheduler = F.tiny_transformer(name, seed=0), F.make_scheduler(name)
    _Tape.tape, _Tape.recording = {}, True
    padecache.apply(model, {"predictor": "test-tape", "policy": "always"}, scheduler=scheduler)
    try:
        full = F.run_loop(name, model, steps=4, batch=2, scheduler=scheduler)
    finally:
        padecache.remove(model)
    _Tape.recording = False
    padecache.apply(model, {"predictor": "test-tape", "policy": "test-alternate-rows"}, scheduler=scheduler)
    try:
        out = F.run_loop(name, model, steps=4, batch=2, scheduler=scheduler)
        stats = padecache.stats(model)
    finally:
        padecache.remove(model)
    adapter, _ = get_registry().adapter_for(model)
    calls: dict = {}
    for record in stats.records:
        calls.setdefault((record.step, record.branch), set()).add(record.reason == "forecast")
    mixed = sum(kinds == {True, False} for kinds in calls.values())
    # the calls were mixed, or the adapter says its blocks cannot run on some rows alone and every row computed
    assert mixed > 0 if adapter.rows_split else mixed == 0
    torch.testing.assert_close(out, full, rtol=1e-4, atol=1e-5 * float(full.abs().max()))
