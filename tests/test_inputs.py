"""Issue 18 items 1-2: policies that see the model's inputs, and partial block ranges (cache-dit's Fn/Bn).

* Each family's ``Adapter.modulated`` is exactly what its first block hands its attention (oracle: a pre-hook
  on that attention), and an input-aware policy reads it, the stack input and the latents in ``ctx.inputs``,
  per row.
* With ``engine.first_blocks`` / ``last_blocks`` the first and last blocks run on every step, a forecast equal to
  the middle range's true residual reproduces full compute, and passes are counted block by block.
* Block 0's input (``first_input``, DiCache's probe residual ``stack_input - first_input``) and the timestep
  embeddings TeaCache's official code measures on Wan, CogVideoX, ConsisID and HiDream (``time_embedding``,
  ``time_projection``) are exactly what the model computes (oracle: hooks on the block and the embedder), and a
  predictor that declares inputs gets them too.
* A third-party input-aware policy passes ``padecache.testing.PolicyContract``.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import attrs
import pytest
import torch

import padecache
import tiny
from padecache import CachePolicy, Predictor, option
from padecache.plugins import get_registry
from padecache.step_inputs import INPUTS
from padecache.testing import PolicyContract, PredictorContract
from padecache.testing.families import make_scheduler, run_loop, tiny_transformer

MODULATED = ["flux", "flux2", "wan", "dit", "sd3", "hunyuanvideo", "qwenimage", "chroma", "ltx", "cogvideox"]


class Peek(CachePolicy):
    """Computes every step and keeps what the engine handed it."""

    name = "peek-inputs"
    inputs = ("stack_input", "modulated", "model_input")  # a tuple, as an author may write it: as good as a frozenset
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


class PeekAll(Peek):
    """Declares every input the engine can give."""

    name = "peek-all-inputs"
    inputs: ClassVar[frozenset[str]] = INPUTS


class Sees(Predictor):
    """A predictor that reads block 0's input: keeps what the engine handed it at each predict and update."""

    name = "sees-first-input"
    inputs: ClassVar[frozenset[str]] = frozenset({"first_input"})
    seen: ClassVar[list] = []

    def update(self, ctx, residual, block_input, computed):
        Sees.seen.append(("update", ctx.step, ctx.inputs, block_input.clone()))
        self.last = residual

    def predict(self, ctx, block_input):
        Sees.seen.append(("predict", ctx.step, ctx.inputs, block_input.clone()))
        return self.last

    def reset(self):
        self.last = None


class InputShift(Predictor):
    """Reuse, moved by what the stack input gained since the last computed step over block 0's input (a toy
    input-aware forecast: R_n + 0.5 ((x - x0) - (x_n - x0_n))); per row, batch-first state."""

    name = "input-shift"
    inputs: ClassVar[frozenset[str]] = frozenset({"first_input"})

    def reset(self):
        self.residual, self.probe = None, None

    def update(self, ctx, residual, block_input, computed):
        if computed:
            self.residual, self.probe = residual.clone(), block_input - ctx.inputs.first_input

    def predict(self, ctx, block_input):
        return torch.add(self.residual, (block_input - ctx.inputs.first_input) - self.probe, alpha=0.5)

    def state_tensors(self):
        return tuple(t for t in (self.residual, self.probe) if t is not None)


class Plugin:
    @padecache.hookimpl
    def padecache_policies(self):
        return [Peek, PeekAll, RelL1]

    @padecache.hookimpl
    def padecache_predictors(self):
        return [Tape, Sees, InputShift]


@pytest.fixture
def plugin():
    p = Plugin()
    padecache.register_plugin(p, name="inputs-test")
    Peek.seen, Tape.steps, Tape.recording, Sees.seen = [], {}, True, []
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


def test_every_input_has_one_row_per_stack_row_where_the_blocks_see_frames_as_rows(plugin):
    """Latte's blocks see each (sample, frame) as a row: the latents (one row per sample) are repeated for each
    sample's frames, so a per-row decision from them has as many rows as the stack (it once had one per sample,
    and EasyCache's default indicator failed at step 0)."""
    model, scheduler = tiny_transformer("latte"), make_scheduler("latte")
    with tiny.applied(model, {"predictor": "noop", "policy": "peek-all-inputs"}, scheduler=scheduler):
        run_loop("latte", model, steps=2, scheduler=scheduler, batch=2)
    step, _, rows, inputs = Peek.seen[0]
    latents = inputs.model_input
    assert rows == inputs.stack_input.shape[0] == latents.shape[0] and rows % 4 == 0  # (2 samples x CFG) x frames
    frames = rows // 4
    for sample in range(4):  # each sample's rows are its latents, repeated
        block = latents[sample * frames:(sample + 1) * frames]
        assert torch.equal(block, block[:1].expand_as(block))
    assert not torch.equal(latents[0], latents[frames])  # and the samples differ
    with tiny.applied(model, {"predictor": "noop", "policy": "easycache"}, scheduler=scheduler):
        run_loop("latte", model, steps=4, scheduler=scheduler, batch=2)


def test_only_declared_inputs_are_computed(plugin):
    model, scheduler = tiny_transformer("flux"), make_scheduler("flux")
    with tiny.applied(model, {"predictor": "noop", "policy": {"name": "rel-l1", "threshold": 0.5}}, scheduler=scheduler):
        engine = model.__dict__["_padecache_engine"].engine
        assert engine.inputs == {"stack_input"}
        run_loop("flux", model, steps=8, scheduler=scheduler, batch=1)
        stats = padecache.stats(model)
    assert stats.forecast_steps > 0 and stats.records[0].computed


def test_an_input_aware_policy_decides_per_row_and_a_batch_equals_its_samples(plugin, flux_pipe):
    from test_batches import assert_matches, flux_latents, run_flux

    latents = flux_latents(3)
    latents[1] *= 3.0  # a row whose inputs move differently
    cfg = {"predictor": "linear", "policy": {"name": "rel-l1", "threshold": 0.15}}
    with tiny.applied(flux_pipe, cfg):
        batch = run_flux(flux_pipe, latents)
        stats = padecache.stats(flux_pipe)
        singles = torch.cat([run_flux(flux_pipe, latents[i : i + 1]) for i in range(3)])
    assert_matches(batch, singles, flux_pipe, run_flux, latents)
    assert stats.forecast_steps > 0 and any(r.rows is not None for r in stats.records)  # the rows went separate ways


# -- block 0's input and the timestep embeddings -------------------------------------------------------------------


class Calls:
    """What ``module`` received (``pre``: its arguments by name) or returned, call by call, while open."""

    def __init__(self, module, pre: bool = True):
        self.seen = []
        if pre:
            names = list(inspect.signature(module.forward).parameters)
            self.handle = module.register_forward_pre_hook(
                lambda m, args, kwargs: self.seen.append({**dict(zip(names, args)), **kwargs}), with_kwargs=True)
        else:
            self.handle = module.register_forward_hook(lambda m, args, output: self.seen.append(output))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _block(model, k):
    adapter, _ = get_registry().adapter_for(model)
    return adapter.blocks(model)[k][2]


@pytest.mark.parametrize("family, first", [("dit", 1), ("flux", 1), ("sd3", 1), ("wan", 1), ("dit", 0)])
def test_first_input_is_block_0s_input_and_the_probe_residual_what_the_first_blocks_added(family, first, plugin):
    model, scheduler = tiny_transformer(family), make_scheduler(family)
    with Calls(_block(model, 0)) as block0, Calls(_block(model, first)) as entering:
        with tiny.applied(model, {"predictor": "noop", "policy": "peek-all-inputs", "engine": {"first_blocks": first}},
                          scheduler=scheduler):
            run_loop(family, model, steps=2, scheduler=scheduler, batch=2)
    for call, (_, _, rows, inputs) in enumerate(Peek.seen):
        x0, xf = block0.seen[call]["hidden_states"], entering.seen[call]["hidden_states"]
        assert inputs.first_input.shape == inputs.stack_input.shape and rows == len(inputs.first_input)
        torch.testing.assert_close(inputs.first_input, x0.to(inputs.first_input.dtype), rtol=0, atol=0)
        torch.testing.assert_close(inputs.stack_input, xf.to(inputs.stack_input.dtype), rtol=0, atol=0)
        if first == 0:
            assert inputs.first_input is inputs.stack_input
        else:  # the probe residual: what the always-run blocks added, non-zero
            assert (inputs.stack_input - inputs.first_input).abs().max() > 1e-4


@pytest.mark.parametrize("family, module, output", [("wan", "condition_embedder", 0), ("hidream", "t_embedder", None),
                                                     ("cogvideox", None, None), ("consisid", None, None)])
def test_time_embedding_is_the_one_teacaches_code_measures(family, module, output, plugin):
    """Wan: the condition embedder's ``temb`` (the code's ``e``); HiDream: the timestep embedder's output; CogVideoX
    and ConsisID: ``emb``, which their blocks receive as ``temb``.  ``time_projection`` is block 0's ``temb``
    (Wan: ``timestep_proj``, the code's ``e0``)."""
    model, scheduler = tiny_transformer(family), make_scheduler(family)
    embedder = Calls(model.get_submodule(module), pre=False) if module else None
    try:
        with Calls(_block(model, 0)) as block0:
            with tiny.applied(model, {"predictor": "noop", "policy": "peek-all-inputs"}, scheduler=scheduler):
                run_loop(family, model, steps=2, scheduler=scheduler, batch=2)
    finally:
        if embedder:
            embedder.handle.remove()
    assert len(Peek.seen) >= 2
    for call, (_, _, rows, inputs) in enumerate(Peek.seen):
        temb = block0.seen[call].get("temb")
        want = temb if module is None else (embedder.seen[call] if output is None else embedder.seen[call][output])
        assert inputs.time_embedding.shape[0] == rows
        torch.testing.assert_close(inputs.time_embedding, want.to(inputs.time_embedding.dtype), rtol=0, atol=0)
        if isinstance(temb, torch.Tensor):
            torch.testing.assert_close(inputs.time_projection, temb.to(inputs.time_projection.dtype), rtol=0, atol=0)
    if family == "wan":  # e0 is the projection of e: another quantity, with six modulation rows per sample
        assert inputs.time_projection.shape[1:2] == (6,) and inputs.time_projection.shape != inputs.time_embedding.shape


def test_families_without_a_time_embedding_hand_none_and_nothing_is_hooked(plugin):
    model, scheduler = tiny_transformer("flux"), make_scheduler("flux")
    assert get_registry().adapter_for(model)[0].time_embedding is None
    hooks_before = {name: dict(m._forward_hooks) for name, m in model.named_modules()}
    with tiny.applied(model, {"predictor": "noop", "policy": "peek-all-inputs"}, scheduler=scheduler):
        run_loop("flux", model, steps=2, scheduler=scheduler, batch=1)
    inputs = Peek.seen[0][3]
    assert inputs.time_embedding is None and inputs.time_projection is not None  # FLUX blocks take a temb
    wan, wan_scheduler = tiny_transformer("wan"), make_scheduler("wan")
    embedder = wan.get_submodule("condition_embedder")
    with tiny.applied(wan, {"predictor": "noop", "policy": "peek-all-inputs"}, scheduler=wan_scheduler):
        assert len(embedder._forward_hooks) == 1
    assert len(embedder._forward_hooks) == 0  # removed with padecache
    with tiny.applied(wan, {"predictor": "noop", "policy": "peek-inputs"}, scheduler=wan_scheduler):
        assert len(embedder._forward_hooks) == 0  # nobody asked for it
    assert {name: dict(m._forward_hooks) for name, m in model.named_modules()} == hooks_before


def test_a_time_embedding_entry_names_one_place():
    from padecache.adapters import TimeEmbedding

    assert TimeEmbedding("condition_embedder", output=0).describe() == "`condition_embedder` output[0]"
    assert TimeEmbedding(argument="temb").describe() == "first block's `temb`"
    for bad in ({}, {"module": "t_embedder", "argument": "temb"}, {"argument": "temb", "output": 0}):
        with pytest.raises(ValueError, match="TimeEmbedding"):
            TimeEmbedding(**bad)


def test_a_predictor_that_declares_inputs_gets_them_with_any_policy(plugin):
    model, scheduler = tiny_transformer("dit"), make_scheduler("dit")
    cfg = {"predictor": "sees-first-input", "policy": {"name": "budget", "speedup": 2.0}, "engine": {"first_blocks": 1}}
    with Calls(_block(model, 0)) as block0:
        with tiny.applied(model, cfg, scheduler=scheduler):
            engine = model.__dict__["_padecache_engine"].engine
            assert engine.inputs == {"first_input"}
            run_loop("dit", model, steps=8, scheduler=scheduler, batch=1)
            stats = padecache.stats(model)
    assert stats.forecast_steps > 0
    assert {kind for kind, *_ in Sees.seen} == {"predict", "update"}
    by_step = {}
    for _, step, inputs, _ in Sees.seen:
        assert inputs.stack_input is None and inputs.modulated is None  # only what was declared
        by_step.setdefault(step, inputs.first_input)
        assert inputs.first_input is by_step[step]  # predict and update of a step see the same input
    for step, x0 in by_step.items():
        torch.testing.assert_close(x0, block0.seen[step]["hidden_states"].to(x0.dtype), rtol=0, atol=0)


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
    assert stats.block_passes == sum(log.counts) and stats.num_blocks == 3  # exactly: block executions, no float dust
    assert stats.pass_speedup == pytest.approx(8 / (computed + (8 - computed) / 3))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("family", ["flux2", "hidream"])
def test_a_range_starting_where_the_model_reshapes_the_stream_is_refused_by_name(family):
    """FLUX.2 and HiDream concatenate [text, image] before their single-stream blocks and slice the image back out
    before the head: a range starting there cannot be forecast.  The first call says so, naming the fix, and the
    model stays usable."""
    model, scheduler = tiny_transformer(family), make_scheduler(family)
    with pytest.raises(TypeError, match=r"engine.first_blocks = 1: the cached range starts at single_(transformer|stream)"
                                        r"_blocks\[0\] .* \(engine.first_blocks = 0\)"):
        with tiny.applied(model, {"predictor": "linear", "policy": "always", "engine": {"first_blocks": 1}}, scheduler=scheduler):
            run_loop(family, model, steps=2, scheduler=scheduler, batch=1)
    assert not padecache.is_applied(model)
    with tiny.applied(model, {"predictor": "linear", "policy": {"name": "budget", "speedup": 2.0}}, scheduler=scheduler):
        out = run_loop(family, model, steps=8, scheduler=scheduler, batch=1)
    assert all(torch.isfinite(t).all() for t in (out.values() if isinstance(out, dict) else [out]))


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


class TestAnInputAwarePredictorPassesTheKit(PredictorContract):
    """The kit hands a predictor that declares ``inputs`` what the engine would, at every call."""

    component = "input-shift"

    def setup_method(self):
        self._plugin = Plugin()
        padecache.register_plugin(self._plugin, name="inputs-kit-predictor")

    def teardown_method(self):
        padecache.unregister_plugin(self._plugin)
