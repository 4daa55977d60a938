"""Where to spend a pass budget: two variants of the budget policy side by side, on the reference models.

Default study (``short_first_gap``): with few passes left after the two warm-up steps, the old placement put
the first of them late (at 6x on 20 steps: step 17), so the long gap before it was forecast from the warm-up's
two residuals alone.  ``--study tail``: the tail left to the forecast as 10 % of the steps (5 at 50 steps)
against 0.7 mean gaps (``tail_gaps``, steps / passes: 2 steps at 2.5x, 4 at 6x).  Each runs TC-Padé
(damped) with both variants at 2.5-6x, on seeds that played no part in choosing the rule (the rules were
chosen on other seeds), and writes results.json / results.md.  ``--study warmup``: a warm-up of two computed
steps against one, whose residual TC-Padé reuses until the next pass gives it a trend (the pass saved goes to
the rest of the run), at every budget: the evidence for ``lean_passes`` (one warm-up step at that many passes
or fewer): 4 with TC-Padé's near-reuse rule for any two residuals (seed 4, ``docs/results/schedule-warmup``), 6
since two residuals with a gap between them forecast their trend (seeds 6 and 7,
``docs/results/schedule-warmup-gap``).  The two earlier studies pin the two-step warm-up they ran with.

    python benchmarks/schedule_study.py --out docs/results/schedule [--samples 16] [--seed 1]
    python benchmarks/schedule_study.py --study tail --steps 20,28,40,50,100 --seed 3 --out docs/results/schedule-tail
    python benchmarks/schedule_study.py --study warmup --models emoji-t2i,dit-mnist,flux-mnist --steps 20,28,40,50 \
        --seed 4 --out docs/results/schedule-warmup
    python benchmarks/schedule_study.py --study warmup --models dit-mnist,flux-mnist,emoji-t2i --steps 20,28 \
        --seed 6 --out docs/results/schedule-warmup-gap/seed6
    python benchmarks/schedule_study.py --study warmup --models dit-mnist,flux-mnist --steps 24,40 \
        --seed 7 --out docs/results/schedule-warmup-gap/seed7

``--study correction`` is not about the plan: the same plan without and with the gap correction
(``engine.gap_correction = 0.5``, here at every pass count, so that the rows below ``gap_correction_passes`` = 6
show why it stops there):

    python benchmarks/schedule_study.py --study correction --models dit-mnist,flux-mnist,emoji-t2i --steps 24,36,50 \
        --seed 6 --out docs/results/gap-correction
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import padecache
from padecache.interfaces import mask_to_str
from padecache.plugins import get_registry
from padecache_reference import load_reference

TARGETS = (2.5, 10 / 3, 4.0, 5.0, 6.0)
#: the two-step warm-up at every budget, as the first two studies ran (before ``lean_passes``)
TWO = {"warmup": 2, "lean_passes": 0}
#: study -> (old variant's budget options, new variant's, column titles)
STUDIES = {
    "short-first-gap": ({"short_first_gap": False, "tail": 0.1, **TWO}, {"short_first_gap": True, "tail": 0.1, **TWO},
                        ("old placement", "short first gap")),
    "tail": ({"tail": 0.1, **TWO}, TWO, ("tail 10 % of the steps", "tail 0.7 mean gaps")),
    "warmup": (TWO, {"warmup": 1, "lean_passes": 0}, ("two warm-up steps", "one warm-up step")),
    "correction": ({}, {}, ("no gap correction", "gap correction 0.5")),
}
#: study -> (old variant's engine options, new variant's), where a study compares engine options on one plan
ENGINES = {"correction": ({"gap_correction": 0.0}, {"gap_correction": 0.5, "gap_correction_passes": 1})}


def psnr(x, ref):
    mse = (x.double() - ref.double()).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(4.0 / mse.clamp(min=1e-20))).mean())  # digits in [-1, 1]


def inputs(model: str, samples: int) -> list:
    """What the pipeline draws: digits 0-9 in turn, or the text model's last ``samples`` benchmark prompts."""
    if model == "emoji-t2i":
        from padecache_reference.emoji import benchmark_prompts

        return [p.text for p in benchmark_prompts()][-samples:]
    return [i % 10 for i in range(samples)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results/schedule")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", default="20,28,50")
    ap.add_argument("--study", choices=sorted(STUDIES), default="short-first-gap")
    ap.add_argument("--models", default="dit-mnist,flux-mnist", help="comma-separated reference models")
    args = ap.parse_args()
    old_opts, new_opts, titles = STUDIES[args.study]
    engines = ENGINES.get(args.study, ({}, {}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rows = []
    for model in args.models.split(","):
        pipe = load_reference(model)
        labels = inputs(model, args.samples)
        for steps in (int(s) for s in args.steps.split(",")):
            full = pipe(labels, num_inference_steps=steps, seed=args.seed)
            for target in TARGETS:
                row = {"model": model, "steps": steps, "target": round(target, 2)}
                for key, opts, engine in (("old", old_opts, engines[0]), ("new", new_opts, engines[1])):
                    policy = {"name": "budget", "speedup": target, **opts}
                    padecache.apply(pipe, {"predictor": {"name": "tc-pade"}, "policy": policy, "engine": engine})
                    try:
                        images = pipe(labels, num_inference_steps=steps, seed=args.seed)
                        stats = padecache.stats(pipe)
                    finally:
                        padecache.remove(pipe)
                    mask = get_registry().create("policy", "budget", padecache.load_config({"policy": policy}).policy.options).mask(steps)
                    row[f"psnr_{key}"] = round(psnr(images, full), 3)
                    row[f"mask_{key}"] = mask_to_str(mask)
                    row[f"passes_{key}"] = stats.full_passes
                if row["passes_old"] != row["passes_new"]:  # a study at unequal cost would measure the budget
                    raise SystemExit(f"{model} {steps} steps {target:.3g}x: the variants ran {row['passes_old']:g} and "
                                     f"{row['passes_new']:g} passes; compare plans at equal cost")
                row["passes"] = row.pop("passes_new")
                del row["passes_old"]
                row["gain_db"] = round(row["psnr_new"] - row["psnr_old"], 3)
                rows.append(row)
                print(row, flush=True)
                (out / "results.json").write_text(json.dumps({"meta": {"samples": args.samples, "seed": args.seed,
                                                                       "torch": torch.__version__, "machine": platform.machine(),
                                                              "study": args.study, "old": old_opts, "new": new_opts,
                                                              "engines": engines},
                                                              "records": rows}, indent=1))
    lines = [f"| model | steps | target | passes | PSNR, {titles[0]} | PSNR, {titles[1]} | gain (dB) | plan ({titles[1]}) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['steps']} | {r['target']:g}x | {r['passes']:g} | {r['psnr_old']:.2f} | {r['psnr_new']:.2f} | "
                     f"{r['gain_db']:+.2f} | `{r['mask_new']}` |")
    gains = [r["gain_db"] for r in rows]
    lines += ["", f"TC-Padé (damped), {args.samples} digits or prompts per model, seed {args.seed}, PSNR in dB against full compute.  Mean gain "
              f"{sum(gains) / len(gains):+.2f} dB, smallest {min(gains):+.2f} dB, largest {max(gains):+.2f} dB."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
