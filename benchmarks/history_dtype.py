"""Does keeping the residual history in the model's dtype cost quality?  Measured on the reference models in bf16.

For each reference model, the transformer runs in bfloat16 (inputs cast in, outputs cast back to float32, as a
bf16 pipeline does); full compute in bf16 is the reference.  Each method runs with ``engine.history_dtype``
``"float32"`` and ``"model"`` (bf16); the PSNR difference between the two is what the cheaper history costs.

    python benchmarks/history_dtype.py --out docs/results/history-dtype [--samples 32] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

import torch

import padecache
from padecache_reference import load_reference

METHODS = {
    "tc-pade 2.5x": {"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": 2.5}},
    "tc-pade 4x": {"predictor": {"name": "tc-pade"}, "policy": {"name": "budget", "speedup": 4.0}},
    "taylor-1 2.5x": {"predictor": {"name": "taylor"}, "policy": {"name": "budget", "speedup": 2.5}},
    "taylor-2 4x": {"predictor": {"name": "taylor", "order": 2}, "policy": {"name": "budget", "speedup": 4.0}},
}


def bf16(pipe):
    """Run the transformer (and flux-mnist's conditioner) in bfloat16, float32 in and out."""
    t = pipe.transformer.to(torch.bfloat16)

    def cast_in(module, args, kwargs):
        conv = lambda v: v.to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v  # noqa: E731
        return tuple(conv(a) for a in args), {k: conv(v) for k, v in kwargs.items()}

    def cast_out(module, args, kwargs, out):
        if isinstance(out, tuple):
            return tuple(o.float() if isinstance(o, torch.Tensor) else o for o in out)
        out.sample = out.sample.float()
        return out

    t.register_forward_pre_hook(cast_in, with_kwargs=True)
    t.register_forward_hook(cast_out, with_kwargs=True)
    return pipe


def psnr(x, ref):
    mse = (x.double() - ref.double()).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(4.0 / mse.clamp(min=1e-20))).mean())  # images in [-1, 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results/history-dtype")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = [i % 10 for i in range(args.samples)]
    rows = []
    for model in ("dit-mnist", "flux-mnist"):
        pipe = bf16(load_reference(model))
        full = pipe(labels, num_inference_steps=args.steps, seed=0)
        for method, cfg in METHODS.items():
            got = {}
            for dtype in ("float32", "model"):
                padecache.apply(pipe, cfg, engine={"history_dtype": dtype})
                try:
                    images = pipe(labels, num_inference_steps=args.steps, seed=0)
                    stats = padecache.stats(pipe)
                finally:
                    padecache.remove(pipe)
                got[dtype] = (psnr(images, full), stats.cache_bytes, stats.full_passes)
            rows.append({"model": model, "method": method, "steps": args.steps, "samples": args.samples,
                         "passes": got["float32"][2], "psnr_float32": round(got["float32"][0], 3),
                         "psnr_model": round(got["model"][0], 3),
                         "delta_db": round(got["model"][0] - got["float32"][0], 3),
                         "cache_bytes_float32": got["float32"][1], "cache_bytes_model": got["model"][1]})
            print(rows[-1])
    meta = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(), "model_dtype": "bfloat16"}
    (out / "results.json").write_text(json.dumps({"meta": meta, "records": rows}, indent=1))
    lines = ["| model | method | passes | PSNR, float32 history | PSNR, bf16 history | difference (dB) | cache bytes float32 / bf16 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['passes']:g} | {r['psnr_float32']:.2f} | {r['psnr_model']:.2f} | "
                     f"{r['delta_db']:+.2f} | {r['cache_bytes_float32']} / {r['cache_bytes_model']} |")
    worst = min(r["delta_db"] for r in rows)
    lines.append("")
    lines.append(f"Transformer in bfloat16, {args.samples} samples, {args.steps} steps, PSNR against bf16 full compute. "
                 f"Largest loss from a bf16 history: {worst:+.2f} dB.")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if math.isfinite(worst) else 1


if __name__ == "__main__":
    raise SystemExit(main())
