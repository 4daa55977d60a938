"""Wall-clock speedup of padecache on full-size diffusers transformers, on one GPU.

Quality needs trained weights (that is what ``padecache bench`` measures on the bundled reference
models); wall-clock does not: a block-stack pass and padecache's bookkeeping cost the same with random
weights.  So this script builds FLUX.1-dev, Wan 2.1 1.3B and DiT-XL/2 from their published configs
with random bf16 weights, runs a hand-written sampling loop (the pipelines' own inputs and timesteps,
``padecache.set_schedule``), and times each configuration CUDA-synchronised, median of ``--repeats``
runs after a warm-up, against full compute and against diffusers' own TaylorSeer hooks on the same loop.

    python benchmarks/gpu_walltime.py --out results/gpu      # about 4 minutes on one H100

Writes ``walltime.json`` and ``walltime.md``.  The relative L2 column compares final latents with full
compute; with random weights it only shows that nothing blew up, it is not a quality measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import padecache
from padecache.bench.runner import PassCounter

DEV = "cuda"
DT = torch.bfloat16


def build(name: str, smoke: bool = False):
    """Model, latents, a ``step(model, x, t)`` closure returning the velocity for latents ``x`` at timestep ``t``, and
    the block patterns for diffusers' TaylorSeer (``None`` where it cannot run)."""
    from diffusers import DiTTransformer2DModel, FluxTransformer2DModel, WanTransformer3DModel

    torch.manual_seed(0)
    torch.set_default_dtype(DT)
    n = (lambda full: 1) if smoke else (lambda full: full)  # --smoke: one block of each kind, small inputs, on the CPU
    try:
        with torch.device(DEV):
            if name == "flux-dev-1024":  # black-forest-labs/FLUX.1-dev transformer config, 1024x1024
                m = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=n(19), num_single_layers=n(38), attention_head_dim=128,
                                           num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                                           guidance_embeds=True, axes_dims_rope=(16, 56, 56))
                side, ntxt = (8, 16) if smoke else (64, 512)
                x = torch.randn(1, side * side, 64)
                txt, pooled = torch.randn(1, ntxt, 4096), torch.randn(1, 768)
                ids = torch.zeros(side, side, 3)
                ids[..., 1] += torch.arange(side)[:, None]
                ids[..., 2] += torch.arange(side)[None, :]
                img_ids, txt_ids, g = ids.reshape(-1, 3), torch.zeros(ntxt, 3), torch.full((1,), 3.5)

                def step(model, x, t):
                    with model.cache_context("cond"):
                        return model(hidden_states=x, encoder_hidden_states=txt, pooled_projections=pooled, timestep=(t / 1000).expand(1),
                                     img_ids=img_ids, txt_ids=txt_ids, guidance=g, return_dict=False)[0]

                patterns = [r"^transformer_blocks\.\d+$", r"^single_transformer_blocks\.\d+$"]
            elif name == "wan-1.3b-480p-33f":  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer config, 832x480, 33 frames, CFG 5
                m = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
                                          text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=n(30), cross_attn_norm=True,
                                          qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
                x = torch.randn(1, 16, 2, 8, 8) if smoke else torch.randn(1, 16, 9, 60, 104)
                cond, uncond = torch.randn(1, 512, 4096), torch.randn(1, 512, 4096)

                def step(model, x, t):
                    with model.cache_context("cond"):
                        c = model(hidden_states=x, timestep=t.expand(1), encoder_hidden_states=cond, return_dict=False)[0]
                    with model.cache_context("uncond"):
                        u = model(hidden_states=x, timestep=t.expand(1), encoder_hidden_states=uncond, return_dict=False)[0]
                    return u + 5.0 * (c - u)

                patterns = [r"^blocks\.\d+$"]
            else:  # facebook/DiT-XL-2-256, 8 images, CFG batched in one call
                m = DiTTransformer2DModel(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=n(28),
                                          sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
                x = torch.randn(8, 4, 32, 32)
                labels = torch.cat([torch.arange(8), torch.full((8,), 1000)])

                def step(model, x, t):
                    out = model(torch.cat([x, x]), timestep=t.expand(16), class_labels=labels, return_dict=False)[0][:, :4]
                    c, u = out.chunk(2)
                    return u + 4.0 * (c - u)

                patterns = None  # diffusers' TaylorSeer needs a cache context DiT does not have
    finally:
        torch.set_default_dtype(torch.float32)
    return m.eval(), x, step, patterns


def sample(model, x0, step, steps):
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(steps, device=DEV)
    if padecache.is_applied(model):
        padecache.set_schedule(model, sched.timesteps.tolist(), sched.sigmas[:-1].tolist())
    x = x0.clone()
    for t in sched.timesteps:
        x = sched.step(step(model, x, t).float(), t, x.float(), return_dict=False)[0].to(x0.dtype)
    return x


def _sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats):
    fn()  # warm-up: kernels, autotuning, allocator
    walls = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        out = fn()
        _sync()
        walls.append(time.perf_counter() - t0)
    return out, statistics.median(walls), walls


CONFIGS = [
    ("padecache none (hooks, always compute)", "none", {}),
    ("reuse, budget 2.5x", {"predictor": {"name": "noop"}, "policy": {"name": "budget", "speedup": 2.5}}, {}),
    ("taylor-1, budget 2.5x (default)", "default", {}),
    ("tc-pade, budget 2.5x", {"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": 2.5}}, {}),
    ("tc-pade-fast (7 of 20)", "tc-pade-fast", {}),
    ("tc-pade-fast, guard off", "tc-pade-fast", {"engine": {"guard": False}}),
    ("tc-pade, budget 3.33x", {"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": 10 / 3}}, {}),
]


def run_model(name, steps, repeats, rows, smoke=False):
    model, x0, step, patterns = build(name, smoke)
    counter = PassCounter(model)
    with torch.inference_mode():
        counter.reset()
        ref, full_wall, walls = timed(lambda: sample(model, x0, step, steps), repeats)
        per_pass = counter.count / (repeats + 1) / steps
        first = len(rows)
        rows.append(dict(model=name, method="full compute", steps=steps, passes=steps, wall_s=full_wall, walls=walls,
                         wall_speedup=1.0, pass_speedup=1.0, rel_l2=0.0, fallbacks=0))
        print(f"{name}: full compute {full_wall:.3f} s", flush=True)
        for label, cfg, kw in CONFIGS:
            padecache.apply(model, cfg, **kw)
            try:
                out, wall, walls = timed(lambda: sample(model, x0, step, steps), repeats)
                s = padecache.stats(model)
            finally:
                padecache.remove(model)
            passes = s.full_passes
            rel = float((out.float() - ref.float()).norm() / ref.float().norm())
            rows.append(dict(model=name, method=label, steps=steps, passes=passes, wall_s=wall, walls=walls, wall_speedup=full_wall / wall,
                             pass_speedup=steps / passes, rel_l2=rel, fallbacks=s.fallbacks))
            print(f"  {label}: {wall:.3f} s, {full_wall / wall:.2f}x wall, {steps / passes:.2f}x passes", flush=True)
        if patterns is not None:
            from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache
            from diffusers.hooks.hooks import HookRegistry

            cfg = TaylorSeerCacheConfig(cache_interval=3, disable_cache_before_step=2, max_order=1, taylor_factors_dtype=torch.float32,
                                        cache_identifiers=patterns)
            apply_taylorseer_cache(model, cfg)
            registry = HookRegistry.check_if_exists_or_initialize(model)
            registry.invalidate_child_registries_cache()  # the full-compute runs cached "no child hooks" (as in bench/peers.py)

            def run():
                registry.reset_stateful_hooks()
                counter.reset()
                return sample(model, x0, step, steps)

            out, wall, walls = timed(run, repeats)
            passes = counter.count / per_pass  # per_pass counts both CFG calls where there are two
            model.disable_cache()
            rel = float((out.float() - ref.float()).norm() / ref.float().norm())
            rows.append(dict(model=name, method="diffusers TaylorSeer O1 (N=3, warm-up 2)", steps=steps, passes=passes, wall_s=wall, walls=walls,
                             wall_speedup=full_wall / wall, pass_speedup=steps / passes, rel_l2=rel, fallbacks=None))
            print(f"  diffusers TaylorSeer: {wall:.3f} s, {full_wall / wall:.2f}x wall, {steps / passes:.2f}x passes", flush=True)
        # time full compute again at the end (clocks and allocator drift; a launch-bound model shows it), median of all
        _, _, more = timed(lambda: sample(model, x0, step, steps), repeats)
        full_wall = statistics.median([*rows[first]["walls"], *more])
        rows[first].update(wall_s=full_wall, walls=[*rows[first]["walls"], *more])
        for r in rows[first + 1 :]:
            r["wall_speedup"] = full_wall / r["wall_s"]
    counter.close()
    if DEV == "cuda":
        torch.cuda.empty_cache()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="flux-dev-1024,wan-1.3b-480p-33f,dit-xl-2-256")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="results/gpu")
    p.add_argument("--smoke", action="store_true", help="check the script on the CPU with one block per stack and small inputs")
    a = p.parse_args(argv)
    import diffusers

    global DEV
    DEV = "cpu" if a.smoke else "cuda"
    meta = dict(gpu="cpu (smoke)" if a.smoke else torch.cuda.get_device_name(), torch=torch.__version__, diffusers=diffusers.__version__, padecache=padecache.__version__,
                python=sys.version.split()[0], dtype="bfloat16", steps=a.steps, repeats=a.repeats)
    print(meta, flush=True)
    rows: list[dict] = []
    for name in a.models.split(","):
        try:
            run_model(name, a.steps, a.repeats, rows, a.smoke)
        except Exception as err:  # report and go on: one model's failure must not lose the others' numbers
            print(f"{name} failed: {type(err).__name__}: {err}", flush=True)
            rows.append(dict(model=name, method="failed", error=f"{type(err).__name__}: {err}"[:500]))
        write(Path(a.out), meta, rows, a)  # after every model: a run cut short keeps what it measured
    return 1 if any(r["method"] == "failed" for r in rows) else 0  # a failed model is a failed run, also for scripts


def write(out, meta, rows, a):
    out.mkdir(parents=True, exist_ok=True)
    (out / "walltime.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"GPU wall-clock, {meta['gpu']}, torch {meta['torch']}, diffusers {meta['diffusers']}, bf16, {a.steps} steps, "
             f"median of {a.repeats} after a warm-up; random weights (rel. L2 vs full compute is not a quality measure)", "",
             "| model | method | passes | pass × | wall (s) | wall × | wall × / pass × | fallbacks | rel. L2 vs full |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["method"] == "failed":
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['method']} | {r['passes']:.1f} | {r['pass_speedup']:.2f} | {r['wall_s']:.3f} | {r['wall_speedup']:.2f} | "
                     f"{r['wall_speedup'] / r['pass_speedup']:.2f} | {r['fallbacks'] if r['fallbacks'] is not None else '–'} | {r['rel_l2']:.4f} |")
    (out / "walltime.md").write_text("\n".join(lines) + "\n")
    if len({r["model"] for r in rows}) == len(a.models.split(",")):
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
