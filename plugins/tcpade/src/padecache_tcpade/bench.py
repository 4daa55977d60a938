"""TC-Padé's benchmark families: its variants on padecache's schedules and on the paper's TSI heads, and the default
forecast over a block range (the first or last block run on every step).

Declared as plain dicts (the fields of :class:`padecache.bench.Family`), so that loading the plugin does not
import the benchmark; ``tsi_heads`` imports what it needs when a benchmark calls it.
"""

from __future__ import annotations

__all__ = ["FAMILIES", "tsi_heads"]

GROUP = "tc-pade"


def tsi_heads(steps: int | None, target: float, threshold: float = 1.4) -> list[dict]:
    """TC-Padé's schedule: 3 warm-up steps and a pass at every step divisible by N, the densest N within the budget.

    The threshold 1.4 is the official code's, at which the TSI never fires: the passes are the interval heads.
    """
    from padecache.bench import densest

    if steps is None:
        raise ValueError("the TSI-heads schedule needs the step count, which could not be read from this pipeline")
    n = densest(steps, target, lambda n: sum(1 for s in range(steps) if s < 3 or s % n == 0), range(2, steps + 1))
    return [] if n is None else [{"name": "tsi", "interval": n, "warmup": 3, "last": False, "threshold": threshold}]


FAMILIES = [
    {"name": "tc-pade", "predictor": {"name": "tc-pade"}, "schedule": "front-loaded", "group": GROUP,
     "engine": {"gap_correction": 0.5},
     "summary": "TC-Padé damped on padecache's default budget schedule, with gap correction"},
    {"name": "tc-pade-damped", "predictor": {"name": "tc-pade"}, "schedule": "even", "group": GROUP,
     "summary": "TC-Padé damped, even schedule (the predictor alone against the others)"},
    {"name": "tc-pade-reference", "predictor": {"name": "tc-pade", "variant": "reference"}, "schedule": "even", "group": GROUP,
     "published": True, "summary": "TC-Padé as the official code computes it, even schedule"},
    {"name": "tc-pade-paper", "predictor": {"name": "tc-pade", "variant": "paper"}, "schedule": "even", "group": GROUP,
     "published": True, "summary": "TC-Padé as the paper's formula reads, even schedule"},
    {"name": "tc-pade+tsi", "predictor": {"name": "tc-pade"}, "schedule": tsi_heads, "group": GROUP,
     "summary": "TC-Padé damped with the TSI policy's interval heads"},
    {"name": "tc-pade-reference+tsi", "predictor": {"name": "tc-pade", "variant": "reference"}, "schedule": tsi_heads,
     "group": GROUP, "summary": "TC-Padé's official predictor with the TSI policy's interval heads"},
    {"name": "pade-fit", "predictor": {"name": "pade-fit"}, "schedule": "even",
     "summary": "fitted [1/1] Padé with pole guard, even schedule"},
    # padecache's default forecast over a block range (cache-dit's Fn/Bn): the first or the last block runs on every
    # step and only the others are forecast; planned at equal block-pass cost (fewer full passes pay for that block).
    # Methods of their own in the headline (not the default), so they count among the others ours is measured against.
    {"name": "tc-pade F1B0", "predictor": {"name": "tc-pade"}, "schedule": "front-loaded", "engine": {"first_blocks": 1},
     "summary": "TC-Padé damped on the default budget plan, the first block run on every step (equal block passes)"},
    {"name": "tc-pade F0B1", "predictor": {"name": "tc-pade"}, "schedule": "front-loaded", "engine": {"last_blocks": 1},
     "summary": "TC-Padé damped on the default budget plan, the last block run on every step (equal block passes)"},
]
