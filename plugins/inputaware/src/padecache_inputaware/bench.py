"""The input-aware methods' benchmark families: each adaptive policy swept over its threshold.

Plain dicts (the fields of :class:`padecache.bench.Family`), so loading the plugin does not import the benchmark.
An adaptive policy spends as many passes as its threshold lets it, so each family runs a geometric ladder of
thresholds (the same ladder at every target: the benchmark runs each setting once and counts, at every pass
budget, the best run that stayed within it).  The ladders span about 1.3x to 8x fewer passes on the reference
models; settings whose fixed warm-up alone exceeds a budget simply do not count there, so the families with a
warm-up share also run a two-step warm-up.  ResilPhase has a fixed schedule: its own kind (a pass every N steps
after 2 or 3 warm-up steps, the densest N within the budget) and the equal one.

Where the TC-Padé plugin is installed, two more families combine an input-aware schedule with TC-Padé's forecast
instead of reuse (``teacache+tc-pade``, ``easycache+tc-pade``): does deciding *when* from the inputs help *what*
padecache's default predicts?  They count as their schedule's group (TeaCache, EasyCache), so the headline compares
the default against them as "other" methods.
"""

from __future__ import annotations

__all__ = ["families", "ladder", "TEACACHE_FLUX", "TEACACHE_RAW", "EASYCACHE", "SEACACHE", "DICACHE"]


def ladder(low: float, high: float, count: int) -> tuple[float, ...]:
    """``count`` thresholds from ``low`` to ``high`` in geometric steps (4 significant digits)."""
    ratio = (high / low) ** (1.0 / (count - 1))
    return tuple(float(f"{low * ratio**i:.4g}") for i in range(count))


#: threshold ladders (see the module docstring)
TEACACHE_FLUX = ladder(0.2, 4.0, 9)  # the FLUX polynomial adds about 0.2 per step at small changes
TEACACHE_RAW = ladder(0.02, 1.0, 9)
EASYCACHE = ladder(0.02, 2.0, 9)
SEACACHE = ladder(0.03, 2.0, 9)
DICACHE = ladder(0.03, 2.0, 9)


def _warmups(steps: int | None, share: float) -> list[int]:
    """The code's warm-up as a share of the steps, and two steps (so that tight budgets can be met)."""
    n = 50 if steps is None else steps
    return sorted({max(1, round(share * n)), 2}, reverse=True)


def teacache_flux(steps: int | None, target: float) -> list[dict]:
    """TeaCache with FLUX's published polynomial, first and last step computed (its code), thresholds swept."""
    return [{"name": "teacache", "model": "flux", "threshold": t} for t in TEACACHE_FLUX]


def teacache_raw(steps: int | None, target: float) -> list[dict]:
    """TeaCache without a polynomial (the raw relative L1 change), thresholds swept."""
    return [{"name": "teacache", "model": "identity", "threshold": t} for t in TEACACHE_RAW]


def easycache(steps: int | None, target: float) -> list[dict]:
    """EasyCache, thresholds swept, with its code's warm-up share (10 of 50 steps) and with two steps."""
    return [{"name": "easycache", "threshold": t, "warmup": w} for w in _warmups(steps, 0.2) for t in EASYCACHE]


def seacache(steps: int | None, target: float) -> list[dict]:
    """SeaCache as its code runs (first and last step computed), thresholds swept."""
    return [{"name": "seacache", "threshold": t} for t in SEACACHE]


def dicache(steps: int | None, target: float) -> list[dict]:
    """DiCache's probe rule, thresholds swept, with the code's 20 % warm-up and with none (its delta_minus setting)."""
    return [{"name": "dicache", "threshold": t, "ret_ratio": r} for r in (0.2, 0.0) for t in DICACHE]


def _tcpade_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("padecache_tcpade") is not None


def combinations() -> list[dict]:
    """Input-aware schedules with TC-Padé's forecast (``damped``), where the TC-Padé plugin is installed."""
    if not _tcpade_installed():
        return []
    return [
        {"name": "teacache+tc-pade", "predictor": {"name": "tc-pade"}, "schedule": teacache_flux, "group": "teacache",
         "summary": "TeaCache's schedule (FLUX polynomial, threshold swept) with TC-Padé's forecast instead of reuse"},
        {"name": "easycache+tc-pade", "predictor": {"name": "tc-pade"}, "schedule": easycache, "group": "easycache",
         "summary": "EasyCache's schedule (threshold swept) with TC-Padé's forecast instead of reuse"},
    ]


def families() -> list[dict]:
    """The plugin's families.  DiCache's carries an ``engine`` section: its probe is the first block, run on every
    step, so the benchmark counts each of its forecast steps as ``1 / blocks`` of a pass (its ladder's runs count at
    every budget they meet in block passes)."""
    return [
        {"name": "teacache", "predictor": {"name": "noop"}, "schedule": teacache_flux, "group": "teacache",
         "published": True, "summary": "TeaCache (FLUX polynomial) reusing the residual, threshold swept"},
        {"name": "teacache-raw", "predictor": {"name": "noop"}, "schedule": teacache_raw, "group": "teacache",
         "summary": "TeaCache's rule on the raw relative L1 change (no polynomial), threshold swept"},
        {"name": "easycache", "predictor": {"name": "noop"}, "schedule": easycache, "group": "easycache",
         "published": True, "summary": "EasyCache (runtime transformation rate) reusing the residual, threshold swept"},
        {"name": "seacache", "predictor": {"name": "noop"}, "schedule": seacache, "group": "seacache",
         "published": True, "summary": "SeaCache (SEA-filtered TeaCache rule) reusing the residual, threshold swept"},
        {"name": "resilphase", "predictor": {"name": "resilphase"}, "schedule": "interval", "group": "resilphase",
         "published": True, "summary": "ResilPhase (balanced phase, order 1), a pass every N steps (its own kind)"},
        {"name": "resilphase even", "predictor": {"name": "resilphase"}, "schedule": "even", "group": "resilphase",
         "summary": "ResilPhase (balanced phase, order 1), even schedule"},
        {"name": "dicache", "predictor": {"name": "dicache"}, "schedule": dicache, "group": "dicache",
         "published": True, "engine": {"first_blocks": 1},
         "summary": "DiCache (1-block probe, trajectory alignment), threshold swept"},
        *combinations(),
    ]
