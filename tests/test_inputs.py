"""Issue 18 items 1-2: policies that see the model's inputs, and partial block ranges (cache-dit's Fn/Bn).

* Each family's ``Adapter.modulated`` is exactly what its first block hands its attention (oracle: a pre-hook
  on that attention), and an input-aware policy reads it, the stack input and the latents in ``ctx.inputs``,
  per row.
* With ``engine.first_blocks`` / ``last_blocks`` the first and last blocks run on every step, a forecast equal to
  the middle range's true residual reproduces full compute, and passes are counted block by block.
* A third-party input-aware policy passes ``padecache.testing.PolicyContract``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
import torch

import padecache
import tiny
from padecache import CachePolicy, Predictor, option
from padecache.plugins import get_registry
from padecache.testing import PolicyContract
from padecache.testing.families import make_scheduler, run_loop, tiny_transformer

MODULATED = ["flux", "flux2", "wan", "dit", "sd3", "hunyuanvideo", "qwenimage", "chroma", "ltx", "cogvideox"]


class Peek(CachePolicy):
    """Computes every step and keeps what the engine handed it."""

    name = "peek-inputs"
    inputs: ClassVar[frozenset[str]] = frozenset({"stack_input", "modulated", "model_input"})
    seen: ClassVar[list] = []

    def should_compute(self, ctx):
        Peek.seen.append((ctx.step, ctx.branch, ctx.rows, ctx.inputs))
        return True


class RelL1(CachePolicy):
    """A TeaCache-like rule on the stack input: accumulate each row's relative L1 change, compute once it passes
    ``threshold`` (group-wide sums through ``ctx.reduce``); per row, batch-first state."""

    name = "rel-l1"
    inputs: ClassVar[frozenset[str]] = frozenset({"stack_input"})

    @attrs.frozen
    class Config:
        threshold: float = option(0.3, gt=0.0, doc="accumulated relative L1 change that triggers a computed step")

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def reset(self):
        self.previous, self.acc = None, None

    def should_compute(self, ctx):
        x = ctx.inputs.stack_input.flatten(1).double()
        if self.previous is None:
            self.previous, self.acc = x, torch.zeros(len(x), dtype=torch.float64)
            return torch.ones(len(x), dtype=torch.bool)
        sums = ctx.reduce(torch.stack([(x - self.previous).abs().sum(1), self.previous.abs().sum(1)], 1)).value
        self.acc = self.acc + sums[:, 0] / sums[:, 1].clamp_min(1e-12)
        self.previous = x
        compute = self.acc >= self.config.threshold
        self.acc = torch.where(compute, torch.zeros_like(self.acc), self.acc)
        return compute

    def observe(self, ctx, residual, computed):
        if computed and self.acc is not None:
            self.acc = torch.zeros_like(self.acc)


class Tape(Predictor):
    """Records the true residual of every step with policy ``always``, then replays it as a perfect forecast."""

    name = "inputs-tape"
    steps: ClassVar[dict] = {}
    recording: ClassVar[bool] = True

    def update(self, ctx, residual, block_input, computed):
        if Tape.recording:
            Tape.steps[(ctx.branch, ctx.step)] = residual.clone()

    def predict(self, ctx, block_input):
        return Tape.steps[(ctx.branch, ctx.step)].to(block_input.dtype)

    def reset(self):
        pass


class Plugin:
    @padecache.hookimpl
    def padecache_policies(self):
        return [Peek, RelL1]

    @padecache.hookimpl
    def padecache_predictors(self):
        return [Tape]


@pytest.fixture
def plugin():
    p = Plugin()
    padecache.register_plugin(p, name="inputs-test")
    Peek.seen, Tape.steps, Tape.recording = [], {}, True
    yield
    padecache.unregister_plugin(p)


def _first_attention(model):
    adapter, _ = get_registry().adapter_for(model)
    _, _, block = adapter.blocks(model)[0]
    return next(m for m in block.modules() if "Attention" in type(m).__name__ and m is not block)


@pytest.mark.parametrize("family", MODULATED)
def test_modulated_is_what_the_first_block_attends_to(family, plugin):
    model, scheduler = tiny_transformer(family), make_scheduler(family)
    attended = []
    handle = _first_attention(model).register_forward_pre_hook(
        lambda m, args, kwargs: attended.append((args[0] if args else kwargs["hidden_states"]).detach().clone()),
        with_kwargs=True)
    called = []
    model_hook = model.register_forward_pre_hook(
        lambda m, args, kwargs: called.append(kwargs.get("hidden_states", args[0] if args else None)), with_kwargs=True)
    try:
        with tiny.applied(model, {"predictor": "noop", "policy": "peek-inputs"}, scheduler=scheduler):
            run_loop(family, model, steps=2, scheduler=scheduler, batch=2)
    finally:
        handle.remove()
        model_hook.remove()
    step, _, rows, inputs = Peek.seen[0]
    assert step == 0 and rows == inputs.modulated.shape[0] == inputs.stack_input.shape[0]
    torch.testing.assert_close(inputs.modulated, attended[0].to(inputs.modulated.dtype), rtol=1e-5, atol=1e-5)
    if isinstance(called[0], torch.Tensor):
        torch.testing.assert_close(inputs.model_input, called[0].to(inputs.model_input.dtype))


def test_families_without_modulated_hand_none_and_the_rest_still(plugin):
    model, scheduler = tiny_transformer("pixart"), make_scheduler("pixart")
    assert get_registry().adapter_for(model)[0].modulated is None
    with tiny.applied(model, {"predictor": "noop", "policy": "peek-inputs"}, scheduler=scheduler):
        run_loop("pixart", model, steps=2, scheduler=scheduler, batch=1)
    inputs = Peek.seen[0][3]
    assert inputs.modulated is None and inputs.stack_input is not None


def test_only_declared_inputs_are_computed(plugin):
    model, scheduler = tiny_transformer("flux"), make_scheduler("flux")
    with tiny.applied(model, {"predictor": "noop", "policy": {"name": "rel-l1", "threshold": 0.5}}, scheduler=scheduler):
        engine = model.__dict__["_padecache_engine"].engine
        assert engine.inputs == {"stack_input"}
        run_loop("flux", model, steps=8, scheduler=scheduler, batch=1)
        stats = padecache.stats(model)
    assert stats.forecast_steps > 0 and stats.records[0].computed


def test_an_input_aware_policy_decides_per_row_and_a_batch_equals_its_samples(plugin, flux_pipe):
    from test_batches import flux_latents, run_flux

    latents = flux_latents(3)
    latents[1] *= 3.0  # a row whose inputs move differently
    cfg = {"predictor": "linear", "policy": {"name": "rel-l1", "threshold": 0.15}}
    with tiny.applied(flux_pipe, cfg):
        batch = run_flux(flux_pipe, latents)
        stats = padecache.stats(flux_pipe)
        singles = torch.cat([run_flux(flux_pipe, latents[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles, rtol=0, atol=2e-5)
    assert stats.forecast_steps > 0 and any(r.rows is not None for r in stats.records)  # the rows went separate ways


# -- partial block ranges ------------------------------------------------------------------------------------------


class BlockLog:
    """Executions of each block's first attention."""

    def __init__(self, model):
        adapter, _ = get_registry().adapter_for(model)
        self.counts = [0] * len(adapter.blocks(model))
        self.handles = []
        for k, (_, _, block) in enumerate(adapter.blocks(model)):
            attn = next(m for m in block.modules() if "Attention" in type(m).__name__ and m is not block)
            self.handles.append(attn.register_forward_hook(lambda *_, k=k: self.counts.__setitem__(k, self.counts[k] + 1)))

    def close(self):
        for h in self.handles:
            h.remove()


@pytest.mark.parametrize("first, last", [(1, 1), (1, 0), (0, 1), (2, 1)])
def test_a_perfect_forecast_of_the_middle_reproduces_full_compute(first, last, plugin, flux_pipe):
    """FLUX: 2 double + 2 single blocks; the range may end inside the single blocks, where the text stream the later
    blocks read is forecast along with the image stream."""
    engine = {"first_blocks": first, "last_blocks": last}
    reference = tiny.run_flux(flux_pipe, steps=8, true_cfg=2.0)
    with tiny.applied(flux_pipe, {"predictor": "inputs-tape", "policy": "always", "engine": engine}):
        full = tiny.run_flux(flux_pipe, steps=8, true_cfg=2.0)
    assert (full - reference).abs().max().item() <= 1e-6  # caching off with partial ranges is exact
    Tape.recording = False
    with tiny.applied(flux_pipe, {"predictor": "inputs-tape", "policy": {"name": "budget", "speedup": 2.0}, "engine": engine}):
        replayed = tiny.run_flux(flux_pipe, steps=8, true_cfg=2.0)
        stats = padecache.stats(flux_pipe)
    assert stats.forecast_steps > 0
    # (forecasting the image stream alone, without the text stream the last blocks read, is off by ~2e-4 here)
    assert (replayed - full).abs().max().item() <= 1e-5 * max(1.0, full.abs().max().item())


def test_partial_ranges_run_the_outer_blocks_always_and_count_block_passes(dit_pipe):
    """DiT with 3 blocks, the first always run: a forecast step costs 1 of 3 blocks."""
    cfg = {"predictor": "linear", "policy": {"name": "fixed", "interval": 3, "warmup": 2}, "engine": {"first_blocks": 1}}
    mask = get_registry().create("policy", "fixed", padecache.load_config(cfg).policy.options).mask(8)
    with tiny.applied(dit_pipe, cfg):
        log = BlockLog(dit_pipe.transformer)
        try:
            out = tiny.run_dit(dit_pipe, steps=8)
            stats = padecache.stats(dit_pipe)
        finally:
            log.close()
    computed = sum(mask)
    assert log.counts == [8, computed, computed]
    assert stats.full_passes == pytest.approx(computed + (8 - computed) / 3)
    assert stats.block_passes == pytest.approx(sum(log.counts)) and stats.num_blocks == 3
    assert stats.pass_speedup == pytest.approx(8 / (computed + (8 - computed) / 3))
    assert torch.isfinite(out).all()


def test_a_range_with_no_block_left_is_refused(dit_pipe):
    with pytest.raises(ValueError, match=r"first_blocks \+ engine.last_blocks = 3 leave no block .* 3 to cache"):
        padecache.apply(dit_pipe, "default", engine={"first_blocks": 2, "last_blocks": 1})
    assert not padecache.is_applied(dit_pipe)


# -- the kit ---------------------------------------------------------------------------------------------------


class TestAnInputAwarePolicyPassesTheKit(PolicyContract):
    component = "rel-l1"
    configs: ClassVar[list] = [{}, {"threshold": 0.05}]

    def setup_method(self):
        self._plugin = Plugin()
        padecache.register_plugin(self._plugin, name="inputs-kit")

    def teardown_method(self):
        padecache.unregister_plugin(self._plugin)
