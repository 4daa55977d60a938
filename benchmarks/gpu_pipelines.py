"""GPU wall-clock of padecache and its peers through the real diffusers pipelines (issue #10, item 3).

``benchmarks/gpu_walltime.py`` times hand-written sampling loops; this script runs the pipelines themselves,
``FluxPipeline``, ``WanPipeline`` and ``DiTPipeline``, at full size with random weights (the cost of a
block-stack pass does not depend on the weights; quality is measured on trained models by ``padecache
bench``), with no text encoders (prompt embeddings are passed in) and latent output:

* ``flux``: FLUX.1-dev transformer config, 1024x1024 (4096 image + 512 text tokens), guidance 3.5, one
  transformer call per step, FlowMatchEuler with FLUX.1-dev's dynamic shifting;
* ``wan``: Wan 2.1 T2V 1.3B transformer config, 832x480, 33 frames, CFG 5 as two calls per step
  (``cache_context("cond")`` / ``("uncond")``), UniPC with flow shift 3;
* ``dit``: DiT-XL/2 256, 8 images with CFG 4 batched in one call (16 rows), DDIM.  ``DiTPipeline`` has no
  ``output_type="latent"``: it always calls ``vae.decode``, so its VAE is a pass-through that returns the
  latents (:class:`LatentPassthrough`), and the measured work matches the other two pipelines.

Methods, at the same pass counts, each timed in eager mode and, with ``--compile``, with regional
compilation (``transformer.compile_repeated_blocks()``, DiT: each block's ``compile()``, since DiT defines no
``_repeated_blocks``), the method attached before the blocks are compiled:

* ``full``: full compute, no hooks;
* ``padecache-none``: padecache's hooks with caching off (the overhead of the hooks alone);
* ``tc-pade-2.5x`` / ``-3.33x`` / ``-4x``: ``{"predictor": {"name": "tc-pade"}, "policy": {"name": "budget",
  "speedup": S}}`` (8, 6 and 5 passes of 20 steps) and the preset ``tc-pade-fast`` (7 passes);
* peers, set to the pass count of one of those (``--peer-at``, default ``tc-pade-2.5x``): diffusers'
  ``TaylorSeerCacheConfig`` (order 1, whole blocks as ``cache_identifiers``, warm-up and interval chosen to
  give exactly the pass count), ``MagCacheConfig`` (uniform magnitude ratios, so its decisions depend on
  ``retention_ratio`` and ``max_skip_steps`` alone, chosen likewise) and cache-dit's ``DBCache`` (F1B0, a
  static ``steps_computation_mask`` equal to padecache's plan; its first block runs on every step and is
  counted).  A peer that is not installed or fails is recorded with its error, never faked.

Measured per run: wall time (median of the repeats after one warm-up, ``torch.cuda.synchronize`` around
each), wall speedup against full compute of the same mode, block-stack passes (padecache's stats; for the
others, executions of each block's first attention module are counted, as ``padecache.bench`` does; the
counter is a device tensor, so it is the same for every method and does not break compiled graphs), the
cost of a forecast step (CUDA events around every transformer call: median forecast call / median computed
call), peak memory (``torch.cuda.max_memory_allocated``, reset per run, weights included) and padecache's
``cache_bytes``.  A wall speedup more than 5 % above the pass speedup is physically impossible (embeddings,
head and sampler always run): the method is timed again once and, if it persists, the row is marked
``suspect``.  Each row also says whether the steps that really ran the whole block stack are the method's
schedule (``schedule_ok``), and eager full compute is run again after the other methods (when the budget
allows) to check that every method was removed cleanly.  Peers' own removal is not trusted: every module's
attributes are restored after a peer (cache-dit's ``disable_cache`` leaves FLUX's forward patched and its block
lists reordered).

With more than one GPU (or ``--cp N``), FLUX and Wan are also run with diffusers' context parallelism
(Ulysses over N ranks) under ``torchrun``: the script re-launches itself for that part, records the wall
speedups (against context-parallel full compute, and against full compute on one device) and whether every
rank took the same decisions (``padecache.stats(...).records`` gathered with ``all_gather_object``).

    python benchmarks/gpu_pipelines.py OUTDIR [--smoke] [--models flux,wan,dit] [--compile] [--repeats N]
    timeout 470 python benchmarks/gpu_pipelines.py results/gpu-pipelines --compile     # one H100, ~7 minutes

Writes ``OUTDIR/gpu_pipelines.json`` (after every run: an interrupted run keeps what it measured) and
``OUTDIR/gpu_pipelines.md`` (a table per model).  Every model runs eager first; the compiled sweeps follow,
cheapest first (DiT, FLUX, Wan), each on a freshly built model.  ``--budget S`` (default 420 s) keeps the whole
run within about S seconds: the number of timed repeats (at most ``--repeats``, the same for every remaining
sweep) is chosen from the measured cost of a full generation, and a method that would start after the budget
is spent is recorded as ``skipped``, never guessed.

Runtime (20 steps, every method timed once after its warm-up, i.e. 10.5 full-compute generations of work per
model and mode): at the pessimistic 0.35 s per FLUX call (7 s a generation, Wan 15 s, DiT 0.6 s) the eager
sweeps take ~240 s and the compiled ones ~400 s (with ~90/45/30 s of compilation): the 420 s budget then cuts
the last compiled sweep(s).  At the H200's measured step costs (``docs/results/gpu-h200``: 3.5/7.3/0.5 s) the
whole run takes ~400 s with one repeat.  Split it (``--models flux,dit`` and ``--models wan``) for more.

``--smoke`` runs the same code on the CPU in float32 (``torch.set_num_threads(1)``) with one block per block
list (two for the single-list Wan and DiT: cache-dit's DBCache always computes its first block), tiny inputs
and 12 steps (at 4 steps the 3.33x, 4x and tc-pade-fast plans all collapse to one pass, which tc-pade cannot
honour: it computes a second for its history), in seconds; ``--compile`` there uses dynamo's ``eager``
backend (the same tracing and guards as inductor, no kernels generated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

JSON_NAME = "gpu_pipelines.json"
MD_NAME = "gpu_pipelines.md"
CP_JSON_NAME = "gpu_pipelines_cp.json"
SUSPECT_TOLERANCE = 0.05  # a wall speedup this much above the pass speedup is rejected


def _budget(speedup: float) -> dict:
    return {"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": speedup}}


#: padecache methods: (name, config)
PADECACHE_METHODS = [
    ("padecache-none", "none"),
    ("tc-pade-2.5x", _budget(2.5)),
    ("tc-pade-3.33x", _budget(10 / 3)),
    ("tc-pade-4x", _budget(4.0)),
    ("tc-pade-fast", "tc-pade-fast"),
]
PEERS = ("diffusers-taylorseer", "diffusers-magcache", "cache-dit")
CP_METHODS = ("full", "padecache-none", "tc-pade-2.5x", "tc-pade-3.33x", "tc-pade-4x", "tc-pade-fast")

#: pessimistic H100 priors for planning the repeats before a model has run: seconds per 20-step full-compute
#: generation, and seconds of regional compilation (first compile plus the recompiles of the methods' hooks)
PRIOR_GEN_S = {"flux": 7.0, "wan": 15.0, "dit": 0.6}
PRIOR_COMPILE_S = {"flux": 90.0, "wan": 45.0, "dit": 30.0}
PRIOR_BUILD_S = {"flux": 15.0, "wan": 3.0, "dit": 2.0}  # random init on the GPU, per sweep (each sweep builds afresh)


# ----------------------------------------------------------------------------------------------- devices


@dataclass
class Device:
    kind: str  # "cuda" or "cpu"
    index: int = 0

    @property
    def torch(self) -> torch.device:
        return torch.device(self.kind, self.index) if self.kind == "cuda" else torch.device("cpu")

    def sync(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.torch)

    def marker(self):
        """A point in time on the device's stream: a recorded CUDA event, or ``perf_counter`` on the CPU."""
        if self.kind == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def elapsed_ms(self, start, end) -> float:
        if self.kind == "cuda":
            return float(start.elapsed_time(end))
        return (end - start) * 1e3

    def reset_peak(self) -> None:
        if self.kind == "cuda":
            torch.cuda.reset_peak_memory_stats(self.torch)

    def peak_gb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.torch) / 2**30 if self.kind == "cuda" else None

    def allocated_gb(self) -> float | None:
        return torch.cuda.memory_allocated(self.torch) / 2**30 if self.kind == "cuda" else None

    def name(self) -> str:
        return torch.cuda.get_device_name(self.torch) if self.kind == "cuda" else f"CPU ({platform.processor() or platform.machine()})"


# ----------------------------------------------------------------------------------------------- models


class LatentPassthrough(torch.nn.Module):
    """Stands in for DiTPipeline's VAE, which it always decodes with: ``decode`` returns the latents."""

    def __init__(self):
        super().__init__()
        from diffusers.configuration_utils import FrozenDict

        self.config = FrozenDict(scaling_factor=1.0)
        self.register_buffer("anchor", torch.empty(0), persistent=False)  # where the pipeline asks for its device

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    def decode(self, latents):
        return SimpleNamespace(sample=latents)


@dataclass
class Built:
    pipe: Any
    generate: Callable[[], torch.Tensor]
    info: dict


def _default_dtype(dtype):
    class _Ctx:
        def __enter__(self):
            self.old = torch.get_default_dtype()
            torch.set_default_dtype(dtype)  # weights are created in their final dtype: no float32 copy of 12B params

        def __exit__(self, *exc):
            torch.set_default_dtype(self.old)

    return _Ctx()


def _as_loaded(tr: torch.nn.Module, dev: Device, dtype: torch.dtype) -> torch.nn.Module:
    """``tr`` as ``from_pretrained(torch_dtype=dtype)`` leaves it: the model's ``_keep_in_fp32_modules`` (Wan: rope,
    time embedder, norms, scale-shift tables) stay in float32, everything else in ``dtype``."""
    keep = set(getattr(tr, "_keep_in_fp32_modules", None) or ())
    tr = tr.to(dev.torch)
    for name, p in [*tr.named_parameters(), *tr.named_buffers()]:
        want = torch.float32 if keep & set(name.split(".")) else dtype
        if p.is_floating_point() and p.dtype != want:
            p.data = p.data.to(want)
    return tr.eval()


def build_flux(smoke: bool, dev: Device, dtype: torch.dtype, steps: int) -> Built:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    with _default_dtype(dtype), dev.torch:
        if smoke:
            tr = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
                                        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
                                        guidance_embeds=True, axes_dims_rope=(4, 6, 6))
        else:  # black-forest-labs/FLUX.1-dev transformer/config.json
            tr = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                                        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                                        guidance_embeds=True, axes_dims_rope=(16, 56, 56))
    tr = _as_loaded(tr, dev, dtype)
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                            base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(scheduler=sched, vae=None, text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                        transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    d, p, ntxt, side = (32, 16, 8, 64) if smoke else (4096, 768, 512, 1024)
    g = torch.Generator(dev.torch).manual_seed(0)
    pe = torch.randn(1, ntxt, d, device=dev.torch, dtype=dtype, generator=g)
    pp = torch.randn(1, p, device=dev.torch, dtype=dtype, generator=g)

    def generate():
        return pipe(prompt_embeds=pe, pooled_prompt_embeds=pp, height=side, width=side, num_inference_steps=steps,
                    guidance_scale=3.5, generator=torch.Generator(dev.torch).manual_seed(1), output_type="latent",
                    return_dict=False)[0]

    return Built(pipe, generate, dict(label=f"FLUX.1-dev {side}x{side} (FluxPipeline)", resolution=f"{side}x{side}",
                                      text_tokens=ntxt, calls_per_step=1))


def build_wan(smoke: bool, dev: Device, dtype: torch.dtype, steps: int) -> Built:
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    with _default_dtype(dtype), dev.torch:
        if smoke:
            tr = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16, out_channels=16,
                                       text_dim=32, freq_dim=16, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                       qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
        else:  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json
            tr = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
                                       text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                                       qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    tr = _as_loaded(tr, dev, dtype)
    sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0)
    pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=sched, transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    d, ntxt = (32, 8) if smoke else (4096, 512)
    h, w, f = (32, 32, 5) if smoke else (480, 832, 33)
    g = torch.Generator(dev.torch).manual_seed(0)
    pe = torch.randn(1, ntxt, d, device=dev.torch, dtype=dtype, generator=g)
    ne = torch.randn(1, ntxt, d, device=dev.torch, dtype=dtype, generator=g)

    def generate():
        return pipe(prompt_embeds=pe, negative_prompt_embeds=ne, height=h, width=w, num_frames=f, num_inference_steps=steps,
                    guidance_scale=5.0, generator=torch.Generator(dev.torch).manual_seed(1), output_type="latent",
                    return_dict=False)[0]

    return Built(pipe, generate, dict(label=f"Wan 2.1 1.3B {w}x{h}, {f} frames (WanPipeline)", resolution=f"{w}x{h}x{f}",
                                      text_tokens=ntxt, calls_per_step=2))


def build_dit(smoke: bool, dev: Device, dtype: torch.dtype, steps: int) -> Built:
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    torch.manual_seed(0)
    with _default_dtype(dtype), dev.torch:
        if smoke:
            tr = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                                       sample_size=8, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
        else:  # facebook/DiT-XL-2-256 transformer/config.json
            tr = DiTTransformer2DModel(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
                                       sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
    tr = _as_loaded(tr, dev, dtype)
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02, clip_sample=False)
    pipe = DiTPipeline(transformer=tr, vae=LatentPassthrough().to(dev.torch), scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    labels = list(range(8))

    def generate():
        return pipe(class_labels=labels, guidance_scale=4.0, num_inference_steps=steps, output_type="pt",
                    generator=torch.Generator(dev.torch).manual_seed(1), return_dict=False)[0]

    side = 8 * tr.config.sample_size
    return Built(pipe, generate, dict(label=f"DiT-XL/2 {side}x{side} x8, batched CFG (DiTPipeline)", resolution=f"{side}x{side}x8",
                                      calls_per_step=1))


MODELS = {"flux": build_flux, "wan": build_wan, "dit": build_dit}


# ----------------------------------------------------------------------------------------------- probe


def _blocks(transformer) -> tuple[list[str], list[torch.nn.Module]]:
    """The block lists and blocks of ``transformer``, as padecache's adapter for it names them."""
    from padecache.plugins import get_registry

    adapter, _ = get_registry().adapter_for(transformer)
    if hasattr(adapter, "resolve"):
        adapter = adapter.resolve(transformer)
    found = adapter.blocks(transformer)
    return list(dict.fromkeys(name for name, _, _ in found)), [b for _, _, b in found]


class Probe:
    """Counts block executions and times every transformer call, identically for every method.

    Each block's first attention module (a skipped or cached block never runs it) adds one to a device tensor:
    no host sync, and inside a compiled block the increment is part of the graph, so it neither breaks nor
    recompiles it.  Forward pre/post hooks on the transformer record a device marker (a CUDA event) and the
    counter at both ends of each call: after the run, one sync gives every call's time and blocks.
    """

    def __init__(self, transformer: torch.nn.Module, dev: Device):
        self.dev = dev
        self.block_lists, blocks = _blocks(transformer)
        self.blocks_per_pass = len(blocks)
        self.hits = torch.zeros((), dtype=torch.int64, device=dev.torch)
        self.handles = []
        for block in blocks:
            attn = next((m for m in block.children() if type(m).__name__.endswith("Attention")), None)
            targets = [attn] if attn is not None else [m for m in block.modules() if isinstance(m, torch.nn.Linear)][:1]
            self.handles += [m.register_forward_hook(self._hit) for m in targets]
        self.handles.append(transformer.register_forward_pre_hook(self._pre, prepend=True))
        self.handles.append(transformer.register_forward_hook(self._post))
        self.calls: list = []

    def _hit(self, module, args, output):
        self.hits.add_(1)

    def _pre(self, module, args):
        self.calls.append([self.dev.marker(), self.hits.clone(), None, None])

    def _post(self, module, args, output):
        self.calls[-1][2:] = [self.dev.marker(), self.hits.clone()]

    def start(self) -> None:
        self.calls = []

    def finish(self) -> list[tuple[float, int]]:
        """``(milliseconds, blocks run)`` of each transformer call since :meth:`start`."""
        self.dev.sync()
        counts = torch.stack([c for call in self.calls for c in (call[1], call[3])]).tolist() if self.calls else []
        out = [(self.dev.elapsed_ms(s, e), int(counts[2 * i + 1] - counts[2 * i])) for i, (s, _, e, _) in enumerate(self.calls)]
        self.calls = []
        return out

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


# ----------------------------------------------------------------------------------------------- methods


@dataclass
class Method:
    name: str
    kind: str  # "full", "padecache" or "peer"
    config: Any = None  # padecache: its config; peer: the peer's name
    target: str | None = None  # peer: the padecache method whose pass count (and plan) it is set to


@dataclass
class Attached:
    detach: Callable[[], None] = lambda: None
    before_run: Callable[[], None] = lambda: None
    stats: Callable[[], Any] | None = None
    params: dict = field(default_factory=dict)
    expected_mask: list[bool] | None = None


def plan_mask(config, steps: int) -> list[bool]:
    """padecache's static plan for ``config`` at ``steps`` steps (True = the block stack runs)."""
    from padecache.config import load_config
    from padecache.plugins import get_registry

    cfg = load_config(config)
    policy = get_registry().create("policy", cfg.policy.name, cfg.policy.options)
    mask = policy.mask(steps)
    if mask is None:
        raise ValueError(f"policy {cfg.policy.name!r} is adaptive: no static plan")
    return list(mask)


def taylorseer_schedule(steps: int, passes: int) -> tuple[int, int, list[bool]] | None:
    """``(disable_cache_before_step, cache_interval, mask)`` giving exactly ``passes`` computed steps.

    diffusers computes step s when ``s < before`` or ``(s - before - 1) % interval == 0``; a warm-up of 2 (as
    padecache's budget policy) is preferred, the densest interval first."""
    for before in (2, 1, 3, 4):
        for interval in range(1, steps + 1):
            mask = [s < before or (s - before - 1) % interval == 0 for s in range(steps)]
            if sum(mask) == passes:
                return before, interval, mask
    return None


def magcache_mask(steps: int, retention: int, max_skip: int) -> list[bool]:
    """diffusers' MagCache decisions with uniform magnitude ratios (1.0: the accumulated error stays 0)."""
    mask, skipped, have_residual = [], 0, False
    for s in range(steps):
        compute = True
        if s >= retention:
            skipped += 1
            if have_residual and skipped <= max_skip:
                compute = False
            else:
                skipped = 0
        have_residual = have_residual or compute
        mask.append(compute)
    return mask


def magcache_schedule(steps: int, passes: int) -> tuple[int, int, list[bool]] | None:
    """``(retention steps, max_skip_steps, mask)`` giving exactly ``passes`` computed steps."""
    for retention in (2, 1, 3, 4, 0):
        for max_skip in range(1, steps):
            mask = magcache_mask(steps, retention, max_skip)
            if sum(mask) == passes:
                return retention, max_skip, mask
    return None


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class PeerMissing(RuntimeError):
    pass


def _diffusers_peer(pipe, config, apply_fn, hook_names) -> tuple[Callable, Callable]:
    """Attach a diffusers cache hook; returns ``(before_run, detach)``.

    CacheMixin models (FLUX, Wan) go through ``enable_cache``/``disable_cache``; DiT has no CacheMixin: the hook
    is applied directly, and as its pipeline never names a cache context, the runner sets one ("cond": CFG is
    batched) and resets the hook state before every generation (environment.md, "diffusers cache hooks")."""
    from diffusers.hooks.hooks import CacheContext, HookRegistry, _set_cache_context

    tr = pipe.transformer
    mixin = hasattr(tr, "enable_cache")
    if mixin:
        tr.enable_cache(config)
    else:
        apply_fn(tr, config)
    registry = HookRegistry.check_if_exists_or_initialize(tr)
    registry.invalidate_child_registries_cache()  # earlier runs cached "no child hooks"
    named = hasattr(tr, "cache_context")

    def before_run():
        registry.reset_stateful_hooks()
        if not named:
            _set_cache_context(tr, CacheContext("cond"))

    def detach():
        if mixin:
            tr.disable_cache()
        else:
            for name in hook_names:
                registry.remove_hook(name, recurse=True)
            registry.invalidate_child_registries_cache()

    return before_run, detach


def _snapshot(root: torch.nn.Module) -> list:
    """Every module's attributes (and the contents of its plain dicts: children, hooks) under ``root``."""
    out = []
    for m in root.modules():
        attrs = dict(m.__dict__)
        contents = {k: list(v.items()) for k, v in attrs.items() if type(v) in (dict, OrderedDict)}
        out.append((m, attrs, contents))
    return out


def _restore(snapshot: list) -> None:
    """Put back what :func:`_snapshot` saw, in place (hook handles keep pointing at the same dicts)."""
    for m, attrs, contents in snapshot:
        for k in [k for k in m.__dict__ if k not in attrs]:
            del m.__dict__[k]
        m.__dict__.update(attrs)
        for k, items in contents.items():
            attrs[k].clear()
            attrs[k].update(items)


def attach_method(method: Method, pipe, sweep: Sweep) -> Attached:
    if method.kind == "full":
        return Attached()
    if method.kind == "peer":
        # a peer's own removal is not trusted to undo everything: cache-dit's disable_cache leaves the transformer's
        # forward patched and its block lists reordered (diffusers' MagCache then takes the wrong block as its head)
        snapshot = _snapshot(pipe.transformer)
        att = _attach_peer(method, pipe, sweep)
        own = att.detach

        def detach():
            try:
                own()
            finally:
                _restore(snapshot)

        att.detach = detach
        return att
    if method.kind == "padecache":
        import padecache

        padecache.apply(pipe, method.config, **({"engine": sweep.engine} if sweep.engine else {}))
        return Attached(detach=lambda: padecache.remove(pipe), stats=lambda: padecache.stats(pipe),
                        params={"padecache": method.config}, expected_mask=plan_mask(method.config, sweep.steps))
    raise ValueError(f"unknown method {method}")


def _attach_peer(method: Method, pipe, sweep: Sweep) -> Attached:
    # peers: the same pass count as their target's plan (padecache's static plan, whether or not its run succeeded)
    steps = sweep.steps
    mask = plan_mask(dict(PADECACHE_METHODS)[method.target], steps)
    passes = sum(mask)
    if method.config == "diffusers-taylorseer":
        from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache
        from diffusers.hooks.taylorseer_cache import _TAYLORSEER_CACHE_HOOK

        found = taylorseer_schedule(steps, passes)
        if found is None:
            raise RuntimeError(f"no TaylorSeer warm-up/interval gives {passes} passes of {steps} steps")
        before, interval, expected = found
        patterns = [rf"^{name}\.\d+$" for name in sweep.model.block_lists]  # whole blocks (Wan/DiT: default ids match nothing)
        params = dict(cache_interval=interval, disable_cache_before_step=before, max_order=1, cache_identifiers=patterns)
        before_run, detach = _diffusers_peer(pipe, TaylorSeerCacheConfig(**params), apply_taylorseer_cache, [_TAYLORSEER_CACHE_HOOK])
        return Attached(detach=detach, before_run=before_run, params={"peer": "diffusers.TaylorSeerCacheConfig", **params},
                        expected_mask=expected)
    if method.config == "diffusers-magcache":
        from diffusers.hooks import MagCacheConfig, apply_mag_cache
        from diffusers.hooks.mag_cache import _MAG_CACHE_BLOCK_HOOK, _MAG_CACHE_LEADER_BLOCK_HOOK

        found = magcache_schedule(steps, passes)
        if found is None:
            raise RuntimeError(f"no MagCache retention/max_skip_steps gives {passes} passes of {steps} steps")
        retention, max_skip, expected = found
        params = dict(threshold=0.06, max_skip_steps=max_skip, retention_ratio=retention / steps, num_inference_steps=steps)
        cfg = MagCacheConfig(**params, mag_ratios=[1.0] * steps)
        before_run, detach = _diffusers_peer(pipe, cfg, apply_mag_cache, [_MAG_CACHE_LEADER_BLOCK_HOOK, _MAG_CACHE_BLOCK_HOOK])
        return Attached(detach=detach, before_run=before_run,
                        params={"peer": "diffusers.MagCacheConfig", **params, "mag_ratios": "uniform 1.0"}, expected_mask=expected)
    if method.config == "cache-dit":
        os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")  # read at its import; its INFO lines drown the progress
        try:
            import cache_dit
            from cache_dit import DBCacheConfig
        except Exception as err:  # noqa: BLE001 - any import failure means "not available here"
            raise PeerMissing(f"cache-dit is not importable ({type(err).__name__}: {err}); pip install --no-deps cache-dit") from err
        int_mask = [int(m) for m in mask]
        warmup = next((i for i, m in enumerate(int_mask) if not m), steps)
        params = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=10.0, max_warmup_steps=max(1, warmup),
                      num_inference_steps=steps, steps_computation_mask=int_mask, steps_computation_policy="static",
                      enable_separate_cfg=sweep.model.calls_per_step > 1)
        tr = pipe.transformer
        cache_dit.enable_cache(tr, cache_config=DBCacheConfig(**params))

        def before_run():
            refresh = getattr(cache_dit, "refresh_context", None)
            if refresh is not None:
                refresh(tr, num_inference_steps=steps)

        return Attached(detach=lambda: cache_dit.disable_cache(tr), before_run=before_run,
                        params={"peer": "cache_dit.DBCacheConfig", "cache_dit": _version("cache-dit"), **params},
                        expected_mask=list(mask))
    raise ValueError(f"unknown method {method}")


# ----------------------------------------------------------------------------------------------- runner


@dataclass
class ModelState:
    key: str
    built: Built
    probe: Probe
    steps: int
    block_lists: list[str]
    calls_per_step: int


@dataclass
class Sweep:
    model: ModelState
    mode: str  # "eager" or "compile"
    steps: int
    repeats: int = 1
    rows: list = field(default_factory=list)
    engine: dict | None = None  # --engine: padecache engine options for every padecache method


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _dynamo_counts() -> dict:
    try:
        from torch._dynamo.utils import counters
    except Exception:  # noqa: BLE001
        return {}
    return {"graphs": int(counters["stats"].get("unique_graphs", 0)), "graph_breaks": int(sum(counters["graph_break"].values())),
            "recompiles": int(sum(counters["recompiles"].values())) if "recompiles" in counters else 0}


class Bench:
    def __init__(self, args, dev: Device, dtype: torch.dtype):
        self.args, self.dev, self.dtype = args, dev, dtype
        self.out = Path(args.outdir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.t0 = time.perf_counter()
        self.rows: list[dict] = []
        self.cp_rows: list[dict] = []
        self.meta = self._meta()
        self.gen_scale: list[float] = []  # measured / prior generation time, for models not yet run
        self.measured: dict[str, float] = {}  # model -> seconds per full-compute generation (eager)
        self.reference: dict[str, torch.Tensor] = {}  # model -> eager full compute's final latents
        self.sweeps: list[tuple[str, str]] = []
        self.sweep_index = 0

    def _meta(self) -> dict:
        import diffusers

        import padecache

        a = self.args
        return dict(device=self.dev.name(), device_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
                    torch=torch.__version__, cuda=torch.version.cuda, diffusers=diffusers.__version__, padecache=padecache.__version__,
                    cache_dit=_version("cache-dit"), python=sys.version.split()[0], dtype=str(self.dtype).replace("torch.", ""),
                    steps=a.steps, repeats_max=a.repeats, budget_s=a.budget, smoke=a.smoke, compile=a.compile,
                    compile_backend=a.compile_backend if a.compile else None, models=a.models, peer_at=a.peer_at, engine=a.engine,
                    suspect_tolerance=SUSPECT_TOLERANCE, argv=sys.argv[1:], started=time.strftime("%Y-%m-%d %H:%M:%S"))

    # ---------------------------------------------------------------- output
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def save(self) -> None:
        self.meta["elapsed_s"] = round(self.elapsed(), 2)
        data = {"meta": self.meta, "rows": self.rows, "cp_rows": self.cp_rows}
        tmp = self.out / (JSON_NAME + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(self.out / JSON_NAME)
        (self.out / MD_NAME).write_text(render_markdown(data))

    # ---------------------------------------------------------------- planning
    def methods(self) -> list[Method]:
        out = [Method("full", "full")] + [Method(n, "padecache", c) for n, c in PADECACHE_METHODS]
        targets = [t for t in self.args.peer_at.split(",") if t]
        for t in targets:
            suffix = "" if len(targets) == 1 else f"@{t}"
            out += [Method(p + suffix, "peer", p, t) for p in PEERS]
        return out

    def expected_gen_s(self, key: str, measured: dict) -> float:
        if key in measured:
            return measured[key]
        scale = statistics.median(self.gen_scale) if self.gen_scale else 1.0
        return PRIOR_GEN_S[key] * scale * (self.args.steps / 20)

    def sweep_cost(self, key: str, mode: str, repeats: int, gen_s: float, done_runs: float = 0.0) -> float:
        """Seconds a sweep takes: every method once untimed plus ``repeats`` timed, full compute timed again at the end."""
        steps = self.args.steps
        share = 0.0
        for m in self.methods():
            if m.kind == "full" or m.config == "none":
                frac = 1.0
            elif m.kind == "padecache":
                frac = sum(plan_mask(m.config, steps)) / steps
            else:
                frac = sum(plan_mask(dict(PADECACHE_METHODS)[m.target], steps)) / steps
            share += (1 + repeats) * (frac + 0.03)  # +3 %: forecast steps, hooks, sampler
        share += repeats if repeats > 1 else 0  # full compute again at the end (not with one repeat: the budget is tight)
        compile_s = PRIOR_COMPILE_S[key] if mode == "compile" and not self.args.smoke else 0.0
        return max(0.0, share - done_runs) * gen_s + compile_s

    def choose_repeats(self, sweeps: list[tuple[str, str]], index: int, measured: dict, done_runs: float) -> int:
        """Timed repeats for the sweep ``index``: every remaining sweep gets one, then more (at most ``--repeats``)
        go to the sweeps where they cost least (DiT before FLUX before Wan) while all of them fit in the budget."""
        if self.args.budget <= 0:
            return self.args.repeats
        left = self.args.budget - self.elapsed()
        todo = list(enumerate(sweeps))[index:]

        def cost(i, key, mode, r):
            return (self.sweep_cost(key, mode, r, self.expected_gen_s(key, measured), done_runs if i == index else 0.0)
                    + (PRIOR_BUILD_S[key] if i > index and not self.args.smoke else 0.0))

        reps = {i: 1 for i, _ in todo}
        total = sum(cost(i, k, m, 1) for i, (k, m) in todo)
        for level in range(2, self.args.repeats + 1):
            for i, (k, m) in sorted(todo, key=lambda t: cost(t[0], *t[1], level) - cost(t[0], *t[1], level - 1)):
                step = cost(i, k, m, level) - cost(i, k, m, level - 1)
                if reps[i] == level - 1 and total + step <= left:
                    reps[i], total = level, total + step
        return reps[index]

    def over_budget(self) -> bool:
        return self.args.budget > 0 and self.elapsed() > self.args.budget

    # ---------------------------------------------------------------- one method
    def time_runs(self, state: ModelState, att: Attached, repeats: int) -> dict:
        gen, probe, dev = state.built.generate, state.probe, self.dev
        walls, calls, peaks, out = [], [], [], None
        for _ in range(repeats):
            att.before_run()
            probe.start()
            dev.reset_peak()
            dev.sync()
            t = time.perf_counter()
            out = gen()
            dev.sync()
            walls.append(time.perf_counter() - t)
            calls.append(probe.finish())
            peaks.append(dev.peak_gb())
        return dict(walls=walls, calls=calls, peaks=peaks, out=out)

    def run_method(self, sweep: Sweep, method: Method) -> dict:
        state, dev, a = sweep.model, self.dev, self.args
        row = dict(model=state.key, model_label=state.built.info["label"], method=method.name, kind=method.kind, mode=sweep.mode,
                   target=method.target, steps=sweep.steps, status="ok")
        if self.over_budget():
            row.update(status="skipped", error=f"time budget spent (--budget {a.budget:g} s)")
            return row
        att = None
        t_start = time.perf_counter()
        d0 = _dynamo_counts()
        try:
            att = attach_method(method, state.built.pipe, sweep)
            row["params"] = att.params
            if sweep.mode == "compile":
                row["compile"] = ensure_compiled(state.built.pipe, a.compile_backend)
            # warm-up (kernels, autotuning, allocator; in compile mode the compilation), untimed
            att.before_run()
            state.probe.start()
            dev.sync()
            t = time.perf_counter()
            state.built.generate()
            dev.sync()
            row["first_run_s"] = time.perf_counter() - t
            state.probe.finish()
            if method.kind == "full" and sweep.mode == "eager" and state.key not in self.measured:
                self.measured[state.key] = row["first_run_s"]  # seconds per full-compute generation (a warm-up: pessimistic)
                self.gen_scale.append(row["first_run_s"] / (PRIOR_GEN_S[state.key] * sweep.steps / 20))
                sweep.repeats = self.choose_repeats(self.sweeps, self.sweep_index, self.measured, 1.0)
            d1 = _dynamo_counts()
            timed = self.time_runs(state, att, sweep.repeats)
            d2 = _dynamo_counts()
            stats = att.stats() if att.stats is not None else None
            self._fill(row, sweep, method, att, timed, stats)
            if sweep.mode == "compile":
                row["dynamo"] = {"graphs_warmup": d1.get("graphs", 0) - d0.get("graphs", 0),
                                 "graphs_timed": d2.get("graphs", 0) - d1.get("graphs", 0),
                                 "graph_breaks": d2.get("graph_breaks", 0) - d0.get("graph_breaks", 0),
                                 "recompiles": d2.get("recompiles", 0) - d0.get("recompiles", 0)}
            if method.kind == "full" and sweep.mode == "eager":
                self.reference[state.key] = timed["out"].detach().float().cpu()
            if stats is not None:
                row["planned_mask"] = _mask_str(_planned_mask(stats))  # what padecache's records say it planned
            out = timed["out"]
            row["output_finite"] = bool(torch.isfinite(out.float()).all())
            row["rel_l2_vs_full"] = self.rel_l2(state.key, out)
        except PeerMissing as err:
            row.update(status="missing", error=str(err))
        except Exception as err:  # noqa: BLE001 - a failing method is recorded, the others go on
            row.update(status="error", error=f"{type(err).__name__}: {err}"[:800], traceback=traceback.format_exc()[-3000:])
        finally:
            if att is not None:
                try:
                    att.detach()
                except Exception as err:  # noqa: BLE001
                    row.setdefault("detach_error", f"{type(err).__name__}: {err}"[:400])
            if dev.kind == "cuda":
                torch.cuda.empty_cache()
        row["method_s"] = time.perf_counter() - t_start
        return row

    def rel_l2(self, key: str, out: torch.Tensor) -> float | None:
        """Distance of a final latent to eager full compute's (random weights: a sanity check, not a quality measure)."""
        ref = self.reference.get(key)
        if ref is None or out.shape != ref.shape:
            return None
        return float((out.detach().float().cpu() - ref).norm() / ref.norm().clamp_min(1e-12))

    def _fill(self, row, sweep: Sweep, method: Method, att: Attached, timed: dict, stats) -> None:
        state, steps = sweep.model, sweep.steps
        n_blocks, cps = state.probe.blocks_per_pass, state.calls_per_step
        last = timed["calls"][-1]
        hits = sum(b for _, b in last)
        computed_calls = [b >= n_blocks for _, b in last]
        row.update(repeats=len(timed["walls"]), walls=timed["walls"], wall_s=statistics.median(timed["walls"]),
                   calls=len(last), calls_per_step=len(last) / steps, blocks_per_pass=n_blocks,
                   passes_counted=hits / n_blocks / cps, computed_steps=sum(computed_calls) / cps,
                   counted_mask=_mask_str(computed_calls[0::cps]),
                   peak_gb=max(timed["peaks"]) if timed["peaks"] and timed["peaks"][0] is not None else None,
                   resident_gb=self.dev.allocated_gb())
        if stats is not None:
            row.update(passes=float(stats.full_passes), pass_speedup=float(stats.pass_speedup) if stats.full_passes else None,
                       fallbacks=int(stats.fallbacks), cache_mb=stats.cache_bytes / 2**20, stats_total_steps=int(stats.total_steps),
                       forecast_steps=float(stats.forecast_steps))
        else:
            row.update(passes=row["passes_counted"], pass_speedup=steps / row["passes_counted"] if row["passes_counted"] else None,
                       cache_mb=None)
        if att.expected_mask is not None:
            row["expected_mask"] = _mask_str(att.expected_mask)
            # the steps that really ran the whole block stack are the ones the method's schedule names
            row["schedule_ok"] = row["counted_mask"] == row["expected_mask"] and all(
                _mask_str(computed_calls[b::cps]) == row["expected_mask"] for b in range(cps))
        if method.kind == "peer":
            plan = plan_mask(dict(PADECACHE_METHODS)[method.target], steps)
            row.update(plan_mask=_mask_str(plan), plan_passes=sum(plan))
        elif method.kind == "padecache":
            plan = plan_mask(method.config, steps)
            row.update(plan_mask=_mask_str(plan), plan_passes=sum(plan))
        else:
            row.update(plan_mask=_mask_str([True] * steps), plan_passes=steps)
        ms_full = [ms for run in timed["calls"] for ms, b in run if b >= n_blocks]
        ms_fc = [ms for run in timed["calls"] for ms, b in run if b < n_blocks]
        row.update(call_ms_computed=_median(ms_full), call_ms_forecast=_median(ms_fc))
        # a forecast call against a computed one of the same run (full compute of this mode where a method never computes)
        if ms_fc and ms_full:
            row["forecast_cost"] = row["call_ms_forecast"] / row["call_ms_computed"]

    # ---------------------------------------------------------------- a model
    def derive(self, rows: list[dict]) -> None:
        """Wall speedups against full compute of the same model and mode."""
        for r in rows:
            full = next((f for f in self.rows if f["model"] == r["model"] and f["mode"] == r["mode"] and f["method"] == "full"
                         and f["status"] == "ok"), None)
            if r["status"] != "ok" or full is None:
                continue
            r["wall_speedup"] = full["wall_s"] / r["wall_s"]
            r["wall_over_pass"] = r["wall_speedup"] / r["pass_speedup"] if r.get("pass_speedup") else None

    def impossible(self, r: dict) -> bool:
        return (r["status"] == "ok" and r["method"] != "full" and r.get("wall_speedup") is not None and r.get("pass_speedup")
                and r["wall_speedup"] > r["pass_speedup"] * (1 + SUSPECT_TOLERANCE))

    def run_sweep(self, sweep: Sweep) -> None:
        methods = self.methods()
        if sweep.mode == "compile":  # padecache attached before the blocks are compiled: its 'none' comes first
            methods = [methods[1], methods[0], *methods[2:]]
        by_name = {m.name: m for m in methods}
        if sweep.model.key in self.measured:
            sweep.repeats = self.choose_repeats(self.sweeps, self.sweep_index, self.measured, 0.0)
        for method in methods:
            row = self.run_method(sweep, method)
            self.rows.append(row)
            sweep.rows.append(row)
            self.derive(sweep.rows)
            self.save()
            self.progress(row)
        # full compute again at the end: drift (clocks, allocator, a launch-bound model's host) hits both sides
        full = next((r for r in sweep.rows if r["method"] == "full" and r["status"] == "ok"), None)
        gen_s = self.measured.get(sweep.model.key, 0.0)
        if full is not None and not self.over_budget() and (sweep.repeats > 1 or gen_s < 2.0):  # skipped when the budget is tight
            again = self.time_runs(sweep.model, Attached(), sweep.repeats)
            full["walls_before"] = list(full["walls"])
            full["walls"] = full["walls"] + again["walls"]
            full["wall_s"] = statistics.median(full["walls"])
            # every method removed cleanly: eager full compute gives the same latents again
            full["rel_l2_again"] = self.rel_l2(sweep.model.key, again["out"])
        self.derive(sweep.rows)
        # physically impossible figures: time the method again once, then mark the row suspect
        for r in sweep.rows:
            if self.impossible(r) and not self.over_budget():
                first = dict(wall_s=r["wall_s"], walls=r["walls"], wall_speedup=r["wall_speedup"])
                again = self.run_method(sweep, by_name[r["method"]])
                if again["status"] == "ok":
                    r.update(wall_s=again["wall_s"], walls=again["walls"], retimed_from=first)
                    self.derive([r])
            if self.impossible(r):
                r["suspect"] = True
                print(f"  ! {r['model']} {r['method']} ({r['mode']}): wall {r['wall_speedup']:.2f}x above pass "
                      f"{r['pass_speedup']:.2f}x: marked suspect", flush=True)
        self.save()

    def progress(self, r: dict) -> None:
        head = f"[{self.elapsed():6.1f}s] {r['model']:4s} {r['mode']:7s} {r['method']:32s}"
        if r["status"] != "ok":
            print(f"{head} {r['status']}: {r.get('error', '')[:200]}", flush=True)
            return
        ws = f"{r['wall_speedup']:.2f}x" if r.get("wall_speedup") else "–"
        fc = f"{r['forecast_cost']:.3f}" if r.get("forecast_cost") is not None else "–"
        pk = f"{r['peak_gb']:.1f} GB" if r.get("peak_gb") is not None else "–"
        flag = "" if r.get("schedule_ok") is not False else f"  SCHEDULE NOT KEPT ({r.get('counted_mask')})"
        print(f"{head} passes {r['passes']:5.2f} ({r['pass_speedup']:.2f}x)  wall {r['wall_s']:.3f}s x{r['repeats']} ({ws})  "
              f"forecast/full call {fc}  peak {pk}{flag}", flush=True)

    def run(self) -> None:
        keys = [k for k in self.args.models.split(",") if k]
        # every model eager first, then compiled (cheapest first): a run cut by the budget loses the least
        self.sweeps = [(k, "eager") for k in keys]
        if self.args.compile:
            self.sweeps += [(k, "compile") for k in sorted(keys, key=lambda k: PRIOR_GEN_S[k])]
        self.save()
        for index, (key, mode) in enumerate(self.sweeps):
            self.sweep_index = index
            if self.over_budget():  # not even built: each method is recorded as skipped
                for m in self.methods():
                    self.rows.append(dict(model=key, method=m.name, kind=m.kind, mode=mode, target=m.target, status="skipped",
                                          error=f"time budget spent (--budget {self.args.budget:g} s)"))
                    self.progress(self.rows[-1])
                self.save()
                continue
            state = None
            try:
                t = time.perf_counter()
                built = MODELS[key](self.args.smoke, self.dev, self.dtype, self.args.steps)
                self.dev.sync()
                probe = Probe(built.pipe.transformer, self.dev)
                state = ModelState(key, built, probe, self.args.steps, probe.block_lists, built.info["calls_per_step"])
                info = self.meta.setdefault("models_info", {}).setdefault(key, {})
                info.update(built.info, blocks_per_pass=probe.blocks_per_pass, block_lists=probe.block_lists,
                            weights_gb=self.dev.allocated_gb())
                info[f"build_s_{mode}"] = time.perf_counter() - t
                print(f"[{self.elapsed():6.1f}s] {key}: built {built.info['label']} in {time.perf_counter() - t:.1f}s ({mode})", flush=True)
                self.run_sweep(Sweep(state, mode, self.args.steps, engine=self.args.engine))
            except Exception as err:  # noqa: BLE001 - one model's failure must not lose the others' numbers
                print(f"{key} ({mode}) failed: {type(err).__name__}: {err}", flush=True)
                self.rows.append(dict(model=key, method="(build)", kind="build", mode=mode, status="error",
                                      error=f"{type(err).__name__}: {err}"[:800], traceback=traceback.format_exc()[-3000:]))
            finally:
                if state is not None:
                    state.probe.close()
                state = built = probe = None
                self._reset_compiler()
                self.save()

    def _reset_compiler(self) -> None:
        import gc

        gc.collect()
        if self.args.compile:
            torch._dynamo.reset()  # compiled blocks of the previous model must not fill the next one's cache
        if self.dev.kind == "cuda":
            torch.cuda.empty_cache()


def _planned_mask(stats) -> list[bool]:
    """The steps padecache's plan computed in the first branch (a guard fallback is not part of the plan)."""
    branch = stats.branches[0] if stats.branches else None
    out = [False] * stats.total_steps
    for r in stats.records:
        if r.branch == branch and r.rows is None and r.step < len(out):
            out[r.step] = r.computed and r.reason != "fallback"
    return out


def _mask_str(mask) -> str:
    return "".join("#" if m else "." for m in mask)


def ensure_compiled(pipe, backend: str) -> dict:
    """Regional compilation, once per model: ``compile_repeated_blocks``, or each block where a model defines no
    ``_repeated_blocks`` (DiT)."""
    tr = pipe.transformer
    if getattr(tr, "_gpu_pipelines_compiled", None):
        return tr._gpu_pipelines_compiled
    kw = {} if backend == "inductor" else {"backend": backend}
    try:
        tr.compile_repeated_blocks(**kw)
        how = "compile_repeated_blocks"
    except ValueError:  # no _repeated_blocks
        _, blocks = _blocks(tr)
        for block in blocks:
            block.compile(**kw)
        how = "each block's compile() (no _repeated_blocks)"
    tr._gpu_pipelines_compiled = {"how": how, "backend": backend}
    return {"how": how, "backend": backend, "compiled_here": True}


# ----------------------------------------------------------------------------------------------- markdown


def _f(x, fmt="{:.2f}", dash="–") -> str:
    return fmt.format(x) if _finite(x) else dash


def _notes(r: dict) -> list[str]:
    """What a reader of a row must know: schedules not kept, rejected timings, fallbacks, leftovers."""
    head, out = f"{r['method']} ({r['mode']})", []
    if r.get("status") != "ok":
        return out
    if r.get("schedule_ok") is False:
        out.append(f"{head}: the steps that ran the whole block stack ({r.get('counted_mask')}) are not its schedule "
                   f"({r.get('expected_mask')})")
    if r.get("suspect"):
        out.append(f"{head}: wall × above pass × by more than {SUSPECT_TOLERANCE:.0%} after a re-time: timing suspect")
    if r.get("fallbacks"):
        out.append(f"{head}: {r['fallbacks']} forecast(s) rejected by the guard and computed")
    if r.get("output_finite") is False:
        out.append(f"{head}: non-finite output")
    if r.get("detach_error"):
        out.append(f"{head}: removing it failed: {r['detach_error']}")
    again = r.get("rel_l2_again")
    if r.get("method") == "full" and r.get("mode") == "eager" and again is not None and again > 1e-3:
        out.append(f"{head}: full compute after all methods differs from the first (rel. L2 {again:.2e}): a method left something behind")
    return out


def render_markdown(data: dict) -> str:
    meta, rows = data["meta"], data["rows"]
    lines = [f"# padecache through the diffusers pipelines: {meta['device']}", "",
             f"torch {meta['torch']}, diffusers {meta['diffusers']}, padecache {meta['padecache']}, cache-dit "
             f"{meta.get('cache_dit') or 'not installed'}; {meta['dtype']}, {meta['steps']} steps, random weights, latent output; "
             f"wall = median of the timed repeats after one warm-up (repeats in the JSON); "
             f"{'smoke run (CPU, tiny models): the timings mean nothing' if meta['smoke'] else 'full-size models'}.", "",
             "Columns: *passes* block-stack passes per branch (padecache's stats; others counted at the blocks' first attention); "
             "*pass ×* steps / passes; *wall s* median seconds per generation; *wall ×* full compute's wall / this wall (same "
             "mode); *wall/pass* wall × / pass ×; *forecast cost* median transformer call on a forecast step / on a computed "
             "step; *peak GB* `max_memory_allocated` during the timed runs (weights included); *cache MB* padecache's "
             "`cache_bytes`.  `?` marks a suspect row (wall × above pass × by more than 5 % after a re-time).", ""]
    for key in dict.fromkeys(r["model"] for r in rows):
        mrows = [r for r in rows if r["model"] == key]
        label = next((r.get("model_label") for r in mrows if r.get("model_label")), key)
        lines += [f"## {label}: {meta['device']}", "",
                  "| method | mode | passes | pass × | wall s | wall × | wall/pass | forecast cost | peak GB | cache MB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in mrows:
            if r["status"] != "ok":
                err = str(r.get("error", "")).replace("|", "/").replace("\n", " ")[:160]
                lines.append(f"| {r['method']} | {r['mode']} | {r['status']}: {err} | | | | | | | |")
                continue
            mark = "?" if r.get("suspect") else ""
            lines.append(
                f"| {r['method']}{' (' + r['target'] + ')' if r.get('target') and '@' not in r['method'] else ''} | {r['mode']} | "
                f"{_f(r.get('passes'))} | {_f(r.get('pass_speedup'))} | {_f(r.get('wall_s'), '{:.3f}')} | "
                f"{_f(r.get('wall_speedup'))}{mark} | {_f(r.get('wall_over_pass'))}{mark} | {_f(r.get('forecast_cost'), '{:.3f}')} | "
                f"{_f(r.get('peak_gb'), '{:.1f}')} | {_f(r.get('cache_mb'), '{:.1f}')} |")
        notes = [n for r in mrows for n in _notes(r)]
        lines += [""] + [f"* {n}" for n in notes] + ([""] if notes else [])
    cp = data.get("cp_rows") or []
    if cp:
        lines += [f"## Context parallelism (Ulysses over {cp[0].get('world_size', '?')} ranks): {meta['device']}", "",
                  "| model | method | passes | pass × | wall s | wall × | ranks agree | vs one device (full) |",
                  "|---|---|---:|---:|---:|---:|---|---:|"]
        for r in cp:
            if r["status"] != "ok":
                err = str(r.get("error", "")).replace("|", "/").replace("\n", " ")[:160]
                lines.append(f"| {r['model']} | {r['method']} | {r['status']}: {err} | | | | | |")
                continue
            lines.append(f"| {r['model']} | {r['method']} | {_f(r.get('passes'))} | {_f(r.get('pass_speedup'))} | "
                         f"{_f(r.get('wall_s'), '{:.3f}')} | {_f(r.get('wall_speedup'))} | {r.get('ranks_agree')} | "
                         f"{_f(r.get('speedup_vs_one_device'))} |")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- context parallelism


def cp_worker(args) -> int:
    """One rank of the context-parallel part (launched by :func:`run_cp` under torchrun)."""
    import torch.distributed as dist

    import padecache

    local = int(os.environ.get("LOCAL_RANK", 0))
    if args.smoke or not torch.cuda.is_available():
        dist.init_process_group("gloo")
        torch.accelerator.device_count = lambda: 1  # diffusers' mesh code assumes an accelerator (environment.md)
        dev = Device("cpu")
    else:
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        dev = Device("cuda", local)
    rank, world = dist.get_rank(), dist.get_world_size()
    dtype = getattr(torch, args.dtype)
    from diffusers import ContextParallelConfig

    out_path = Path(args.outdir) / CP_JSON_NAME
    rows: list[dict] = []
    configs = dict(PADECACHE_METHODS)

    def save():
        if rank == 0:
            out_path.write_text(json.dumps({"world_size": world, "rows": rows}, indent=1, default=str))

    for key in [k for k in args.models.split(",") if k in ("flux", "wan")]:
        try:
            built = MODELS[key](args.smoke, dev, dtype, args.steps)
            pipe = built.pipe
            pipe.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))
            full_wall = None
            for name in CP_METHODS:
                row = dict(model=key, method=name, mode="eager", world_size=world, steps=args.steps, status="ok")
                try:
                    if name != "full":  # after enable_parallelism: padecache finds the sequence group itself
                        padecache.apply(pipe, configs[name], **({"engine": args.engine} if args.engine else {}))
                    try:
                        built.generate()  # warm-up
                        walls = []
                        for _ in range(args.repeats):
                            dist.barrier()
                            dev.sync()
                            t = time.perf_counter()
                            built.generate()
                            dev.sync()
                            dist.barrier()
                            walls.append(time.perf_counter() - t)
                        row.update(walls=walls, wall_s=statistics.median(walls))
                        if name != "full":
                            s = padecache.stats(pipe)
                            mine = [(r.step, r.branch, r.computed, r.reason) for r in s.records]
                            gathered = [None] * world
                            dist.all_gather_object(gathered, mine)
                            row.update(passes=float(s.full_passes), pass_speedup=float(s.pass_speedup), fallbacks=int(s.fallbacks),
                                       ranks_agree=all(g == gathered[0] for g in gathered), decisions=_mask_str(_planned_mask(s)),
                                       cache_mb=s.cache_bytes / 2**20)
                        else:
                            full_wall = row["wall_s"]
                            row.update(passes=float(args.steps), pass_speedup=1.0, ranks_agree=True)
                    finally:
                        if name != "full":
                            padecache.remove(pipe)
                    if full_wall:
                        row["wall_speedup"] = full_wall / row["wall_s"]
                except Exception as err:  # noqa: BLE001
                    row.update(status="error", error=f"{type(err).__name__}: {err}"[:800])
                rows.append(row)
                save()
                if rank == 0:
                    print(f"  cp {key} {name}: {row.get('wall_s', float('nan')):.3f}s, agree {row.get('ranks_agree')}", flush=True)
            del pipe, built
            if dev.kind == "cuda":
                torch.cuda.empty_cache()
        except Exception as err:  # noqa: BLE001
            rows.append(dict(model=key, method="(build)", mode="eager", world_size=world, status="error",
                             error=f"{type(err).__name__}: {err}"[:800]))
            save()
    save()
    dist.barrier()
    dist.destroy_process_group()
    return 0


def run_cp(bench: Bench, degree: int) -> None:
    """Re-launch this script under torchrun for the context-parallel part; merge what it wrote."""
    a = bench.args
    models = ",".join(k for k in a.models.split(",") if k in ("flux", "wan"))
    if not models:
        return
    exe = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    launcher = [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]
    cmd = [*launcher, "--standalone", f"--nproc_per_node={degree}", os.path.abspath(__file__), str(bench.out), "--cp-worker",
           "--models", models, "--steps", str(a.steps), "--repeats", str(min(a.repeats, 2)), "--dtype", a.dtype]
    cmd += (["--smoke"] if a.smoke else []) + (["--engine", json.dumps(a.engine)] if a.engine else [])
    timeout = a.cp_timeout
    print(f"[{bench.elapsed():6.1f}s] context parallelism: {' '.join(cmd[-9:])}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1" if a.smoke else os.environ.get("OMP_NUM_THREADS", "4"), "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(cmd, timeout=timeout, env=env, capture_output=True, text=True)
        err = None if done.returncode == 0 else f"torchrun exited {done.returncode}: {done.stderr[-1500:]}"
        if done.stdout:
            print(done.stdout[-4000:], flush=True)
    except subprocess.TimeoutExpired:
        err = f"the ranks did not finish in {timeout:.0f} s (different decisions on different ranks deadlock attention)"
    path = bench.out / CP_JSON_NAME
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    for r in rows:
        one = next((x for x in bench.rows if x["model"] == r["model"] and x["method"] == "full" and x["mode"] == "eager"
                    and x["status"] == "ok"), None)
        if one is not None and r.get("wall_s"):
            r["speedup_vs_one_device"] = one["wall_s"] / r["wall_s"]
    if err is not None:
        rows.append(dict(model=models, method="(torchrun)", mode="eager", status="error", error=err))
    bench.cp_rows = rows
    bench.save()


# ----------------------------------------------------------------------------------------------- main


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir")
    p.add_argument("--smoke", action="store_true", help="same code on the CPU: float32, tiny models and inputs, 12 steps")
    p.add_argument("--models", default="flux,wan,dit", help="comma-separated: flux, wan, dit")
    p.add_argument("--compile", action="store_true", help="also time every method with regional compilation")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default: inductor; smoke: eager, "
                   "which traces as inductor does without generating kernels)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per method after the warm-up, at most (default 3; smoke 1): "
                   "fewer when the budget needs it (--budget 0 for exactly N)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 20; smoke 12)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (repeats adapt; 0: no limit)")
    p.add_argument("--peer-at", default="tc-pade-2.5x", help="padecache method(s) whose pass count the peers match, comma-separated")
    p.add_argument("--cp", type=int, default=None, help="context-parallel degree (default: the GPU count when above 1; 0: off)")
    p.add_argument("--cp-timeout", type=float, default=600.0, help="seconds for the whole context-parallel part")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"], help="default: bfloat16 (smoke: float32)")
    p.add_argument("--engine", type=json.loads, default=None,
                   help='padecache engine options for every padecache method, as JSON (e.g. \'{"history_dtype": "float32"}\')')
    p.add_argument("--cp-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.repeats = a.repeats if a.repeats is not None else (1 if a.smoke else 3)
    a.steps = a.steps if a.steps is not None else (12 if a.smoke else 20)
    a.compile_backend = a.compile_backend or ("eager" if a.smoke else "inductor")
    a.dtype = a.dtype or ("float32" if a.smoke else "bfloat16")
    bad = [k for k in a.models.split(",") if k and k not in MODELS]
    known = {n for n, _ in PADECACHE_METHODS if n != "padecache-none"}
    bad_targets = [t for t in a.peer_at.split(",") if t and t not in known]
    if bad or bad_targets:
        p.error(f"unknown model(s) {bad} (known: {', '.join(MODELS)}) or --peer-at {bad_targets} (known: {', '.join(sorted(known))})")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    if a.smoke:
        torch.set_num_threads(1)
    if a.cp_worker:
        return cp_worker(a)
    if not a.smoke and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke on a CPU", file=sys.stderr)
        return 2
    dev = Device("cpu") if a.smoke else Device("cuda", torch.cuda.current_device())
    bench = Bench(a, dev, getattr(torch, a.dtype))
    print(json.dumps({k: bench.meta[k] for k in ("device", "torch", "diffusers", "padecache", "cache_dit", "dtype", "steps")}), flush=True)
    bench.run()
    degree = a.cp if a.cp is not None else (torch.cuda.device_count() if (torch.cuda.is_available() and not a.smoke) else 0)
    if degree and degree > 1:
        run_cp(bench, degree)
    bench.meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    bench.save()
    print(f"done in {bench.elapsed():.1f} s: {bench.out / JSON_NAME}, {bench.out / MD_NAME}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
