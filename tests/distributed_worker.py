"""One rank of the context-parallel checks in test_distributed.py (run under ``torchrun --nproc_per_node=2``).

Each rank builds the same tiny transformer, runs a family loop unsharded (the single-process reference), then
with diffusers' context parallelism (Ulysses over the 2 ranks, gloo on CPU) and padecache applied before or
after ``enable_parallelism``.  It writes what it saw to ``OUT/rank{r}.json``: every decision per step and
branch, the gathered output's distance to the reference, and how many all-reduces padecache sent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import padecache
from padecache.testing.families import make_scheduler, run_loop, tiny_transformer


class ShardFault(padecache.Predictor):
    """A linear forecast that is NaN on rank 0's shard only: the guard must make every rank compute."""

    name = "shard-fault"
    min_history = 2

    def __init__(self, config=None):
        super().__init__(config)
        self.h = []

    def update(self, ctx, residual, block_input, computed):
        if computed:
            self.h = (self.h + [(ctx.step, residual)])[-2:]

    def predict(self, ctx, block_input):
        (s0, r0), (s1, r1) = self.h
        out = r1 + (r1 - r0) * (ctx.step - s1) / (s1 - s0)
        return out * float("nan") if dist.get_rank() == 0 else out

    def reset(self):
        self.h = []


class FaultPlugin:
    @padecache.hookimpl
    def padecache_predictors(self):
        return [ShardFault]


def decisions(stats) -> list:
    return [(r.step, r.branch, r.computed, r.reason, r.rows) for r in stats.records]


def main() -> int:
    """``OUT CASES``: CASES a JSON list of ``[family, "before" | "after", configs]``, each written to ``OUT/family/``
    (one launch for every case: each rank's interpreter imports torch and diffusers once)."""
    out, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    dist.init_process_group("gloo")
    torch.accelerator.device_count = lambda: 1  # diffusers' mesh code assumes an accelerator; CPU ranks share one
    torch.set_num_threads(1)
    padecache.register_plugin(FaultPlugin(), name="shard-fault")
    check_gather(out)
    for family, order, configs in cases:
        run_case(family, order, configs, out / family)
    dist.barrier()
    dist.destroy_process_group()
    return 0


def check_gather(out: Path) -> None:
    """``Reducer.gather`` of shards of unequal length (rank r holds r + 1 tokens): ``out/gather{r}.json``."""
    from padecache.distributed import Reducer

    rank = dist.get_rank()
    local = torch.full((2, rank + 1, 3), float(rank))
    whole = Reducer(dist.group.WORLD).gather(local, 1)
    part = Reducer(dist.group.WORLD).gather(local, 1, lambda t: t.cumsum(1))  # a token-mixing map, this rank's part
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gather{rank}.json").write_text(json.dumps([whole[:, :, 0].tolist(), part[:, :, 0].tolist()]))


def run_case(family: str, order: str, configs: list, out: Path) -> None:
    """Every config of ``family``, padecache applied ``order`` enable_parallelism; ``out/rank{r}.json``."""
    rank = dist.get_rank()
    from diffusers import ContextParallelConfig

    import padecache.testing  # noqa: F401

    results = []
    for cfg in configs:
        model, scheduler = tiny_transformer(family), make_scheduler(family)
        with padecache.testing.applied(model, cfg, scheduler=scheduler):  # the single-process reference
            reference = run_loop(family, model, steps=12, scheduler=scheduler, batch=2)
            ref_decisions = decisions(padecache.stats(model))
            ref_corrections = padecache.stats(model).corrections
        if order == "before":
            padecache.apply(model, cfg, scheduler=scheduler)
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=2))
        else:
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=2))
            padecache.apply(model, cfg, scheduler=scheduler)
        try:
            engine = model.__dict__["_padecache_engine"]
            got = run_loop(family, model, steps=12, scheduler=scheduler, batch=2)
            stats = padecache.stats(model)
            flushes = engine.reducer.flushes
        finally:
            padecache.remove(model)
        after = run_loop(family, model, steps=12, scheduler=scheduler, batch=2)  # still sharded, padecache gone
        results.append({
            "config": cfg,
            "decisions": decisions(stats),
            "reference_decisions": ref_decisions,
            "corrections": stats.corrections,
            "reference_corrections": ref_corrections,
            "max_abs_diff": float((got - reference).abs().max()),
            "scale": float(reference.abs().max()),
            "calls": len(stats.records),
            "flushes": flushes,
            "fallbacks": stats.fallbacks,
            "forecasts": stats.forecast_steps,
            "finite_after_remove": bool(torch.isfinite(after).all()),
        })
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(results, default=list))


if __name__ == "__main__":
    raise SystemExit(main())
