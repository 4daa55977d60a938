"""How the block stack's residual moves from step to step on the reference models (docs/results/trajectory/).

For each model and step count, full compute of 16 samples (seed 100, not a benchmark seed) with forward hooks on the
first block and the head records the residual R_s (head input minus first-block input) of every call; per guidance
branch it reports the relative change ||R_s - R_{s-1}|| / ||R_s|| and the slope persistence
rho_s = <D_s, D_{s-1}> / ||D_{s-1}||^2 of consecutive slopes D_s = R_s - R_{s-1} (1: the trend goes on, 0: it
stops, < 0: it reverses), averaged over samples.  The forecasters' job is easy where rho stays near 1 and hard
where it jumps.

    python benchmarks/trajectory_study.py                 # all three models, 20/28/40/50 steps
    python benchmarks/trajectory_study.py --models emoji-t2i --steps 20,50
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def record(model: str, steps: int, samples: int = 16, seed: int = 100) -> dict[str, torch.Tensor]:
    """Residuals per guidance branch: ``{"cond": (steps, B, ...), "uncond": ...}`` (one branch for batched CFG)."""
    from padecache_reference import load_reference

    pipe = load_reference(model)
    tr = pipe.transformer
    inputs, outputs = [], []

    def first(module, args, kwargs):
        inputs.append((kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]).detach().clone())

    handles = [tr.transformer_blocks[0].register_forward_pre_hook(first, with_kwargs=True),
               tr.norm_out.register_forward_pre_hook(lambda m, a: outputs.append(a[0].detach().clone()))]
    try:
        if model == "emoji-t2i":
            from padecache_reference.emoji import benchmark_prompts

            pipe([p.text for p in benchmark_prompts()][-samples:], num_inference_steps=steps, seed=seed)
        else:
            pipe([i % 10 for i in range(samples)], num_inference_steps=steps, seed=seed)
    finally:
        for h in handles:
            h.remove()
    residuals = [o - i for o, i in zip(outputs, inputs)]
    calls = len(residuals) // steps
    names = ("cond", "uncond") if calls == 2 else ("batched",)
    return {name: torch.stack(residuals[k::calls]).flatten(2).double() for k, name in enumerate(names)}


def summary(trajectory: torch.Tensor) -> dict[str, list[float]]:
    norms = trajectory.norm(dim=2)
    slopes = trajectory[1:] - trajectory[:-1]
    change = (slopes.norm(dim=2) / norms[1:]).mean(1)
    rho = ((slopes[1:] * slopes[:-1]).sum(2) / slopes[:-1].pow(2).sum(2).clamp(min=1e-30)).mean(1)
    return {"change": change.tolist(), "rho": rho.tolist()}


def _fmt(values: list[float]) -> str:
    if len(values) <= 16:  # all of them: a short run's first 12 and last 4 overlap
        return " ".join(f"{x:.2f}" for x in values)
    return " ".join(f"{x:.2f}" for x in values[:12]) + " ... " + " ".join(f"{x:.2f}" for x in values[-4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="emoji-t2i,flux-mnist,dit-mnist")
    parser.add_argument("--steps", default="20,28,40,50")
    parser.add_argument("--out", default="docs/results/trajectory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = ["# Residual trajectories of the reference models", "",
             "Written by `python benchmarks/trajectory_study.py` (16 samples, seed 100, full compute).  *change*: relative "
             "change of the block stack's residual from the previous step, mean over samples; *rho*: persistence of "
             "the slope from one step to the next (1 = the trend goes on, 0 = it stops, < 0 = it reverses).  First 12 "
             "steps, then the last 4.", ""]
    for model in args.models.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            for branch, traj in record(model, steps).items():
                s = summary(traj)
                lines += [f"## {model}, {steps} steps, {branch}", "", f"- change: {_fmt(s['change'])}",
                          f"- rho: {_fmt(s['rho'])}", ""]
                print(model, steps, branch, "rho", _fmt(s["rho"]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text("\n".join(lines))
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
