"""The forecasters' benchmark families: each method on its own published kind of schedule and on the equal one.

Plain dicts (the fields of :class:`padecache.bench.Family`), so loading the plugin does not import the benchmark.
Each method gets its papers' settings and the setting that measured best on the reference models (HiCache's
first order with sigma = 1/sqrt(2), Spectrum fitted to the stack output); a group holds a method's settings, and
the benchmark counts the best of a group within each budget.  The schedules are the methods' own kind -- a pass
every N steps after a warm-up, the densest N within the budget ("interval") -- and the equal schedule ("even")
that every predictor shares, so that predictor differences on it are the predictors' alone.
"""

from __future__ import annotations

__all__ = ["FAMILIES", "magcache_budget"]


def magcache_budget(steps: int | None, target: float) -> list[dict]:
    """MagCache's adaptive rule, spending the target's budget (it needs no step count: it plans online)."""
    return [{"name": "magcache", "speedup": round(target, 4)}]


def _both(name: str, predictor: dict, group: str, summary: str, published: bool = False) -> list[dict]:
    return [
        {"name": name, "predictor": predictor, "schedule": "interval", "group": group, "published": published,
         "summary": f"{summary}, a pass every N steps (its own kind of schedule)"},
        {"name": f"{name} even", "predictor": predictor, "schedule": "even", "group": group,
         "summary": f"{summary}, even schedule"},
    ]


FAMILIES = [
    *_both("spectrum", {"name": "spectrum"}, "spectrum", "Spectrum (Chebyshev ridge, paper defaults)", published=True),
    *_both("spectrum-output", {"name": "spectrum", "target": "output"}, "spectrum", "Spectrum fitted to the stack output"),
    *_both("hicache", {"name": "hicache"}, "hicache", "HiCache (Hermite order 2, sigma 0.5)", published=True),
    *_both("hicache-1", {"name": "hicache", "order": 1, "scale": 0.7071}, "hicache", "HiCache order 1, sigma 1/sqrt(2)"),
    *_both("foca", {"name": "foca"}, "foca", "FoCa (BDF2 forecast, Heun calibration)", published=True),
    *_both("freqca", {"name": "freqca"}, "freqca", "FreqCa (low band reused, high band Hermite-2)", published=True),
    {"name": "magcache", "predictor": {"name": "noop"}, "schedule": magcache_budget, "group": "magcache", "published": True,
     "summary": "MagCache's error rule with online magnitude ratios, meeting the budget, reusing the residual"},
]
