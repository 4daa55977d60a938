"""What the benchmark runs: padecache configurations and peer tools, each as a sweep of settings.

A :class:`Setting` is one point of a sweep: a label, the settings recorded in ``results.json``, and an
``attach(pipe) -> Attached`` that turns the method on for a fresh copy of the pipeline.  Method families
give their settings for a step count and a list of target pass speedups.

Families of padecache configurations:

* *equal-schedule* families share the ``budget`` policy: at a given target every predictor gets the
  very same computed steps, so their PSNR differences are purely the predictor's;
* *native* families use the schedule their authors publish (TaylorSeer's interval N with 3 warm-up
  steps; TC-Padé's TSI policy with interval heads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ..config import CacheConfig, load_config
from ..policies import BudgetPolicy, FixedPolicy

__all__ = ["Attached", "Setting", "Family", "padecache_setting", "DEFAULT_FAMILIES", "QUICK_FAMILIES", "families", "family_names"]

DEFAULT_TARGETS = (1.5, 2.0, 2.5, 10 / 3, 4.0)


@attrs.define
class Attached:
    """A method turned on for one pipeline: ``reset()`` before each generation, ``detach()`` at the end."""

    reset: Callable[[], None] = lambda: None
    detach: Callable[[], None] = lambda: None
    stats: Callable[[], Any] = lambda: None


@attrs.frozen
class Setting:
    method: str  # family label shown in tables and plots
    config: dict  # what results.json records
    attach: Callable[[Any], Attached]
    target: float | None = None  # nominal pass speedup of this sweep point
    kind: str = "padecache"  # "padecache" or "peer"


def padecache_setting(method: str, config: CacheConfig | dict | str, target: float | None = None) -> Setting:
    import padecache

    cfg = load_config(config)

    def attach(pipe) -> Attached:
        padecache.apply(pipe, cfg)
        return Attached(detach=lambda: padecache.remove(pipe), stats=lambda: padecache.stats(pipe))

    return Setting(method, cfg.to_dict(), attach, target)


@attrs.frozen
class Family:
    """A method swept over target speedups: ``make(steps, target)`` gives the configs to run there."""

    name: str
    make: Callable[[int, float], list[dict]]
    summary: str = ""

    def settings(self, steps: int, targets: Iterable[float]) -> list[Setting]:
        out, seen = [], set()
        for target in targets:
            for cfg in self.make(steps, target):
                key = repr(sorted((k, repr(v)) for k, v in cfg.items()))
                if key in seen:
                    continue
                seen.add(key)
                out.append(padecache_setting(self.name, cfg, target))
        return out


def _even(target: float) -> dict:
    """The equal schedule: 3 warm-up steps (what every predictor needs), the rest evenly spread."""
    return {"name": "budget", "speedup": round(target, 4), "warmup": 3, "spacing": 1.0}


def _front(target: float) -> dict:
    """padecache's default budget schedule: 2 warm-up steps, the rest front-loaded."""
    return {"name": "budget", "speedup": round(target, 4)}


def _native_interval(steps: int, target: float, warmup: int = 3, last: bool = False) -> dict | None:
    """TaylorSeer's schedule (interval N after ``warmup`` steps) with the most passes within the target's budget."""
    cap = budget_passes(steps, target)
    best = None
    for n in range(1, steps + 1):
        passes = sum(FixedPolicy(FixedPolicy.Config(interval=n, warmup=warmup, last=last)).mask(steps))
        if passes <= cap and (best is None or passes > best[0]):
            best = (passes, n)
    return None if best is None else {"name": "fixed", "interval": best[1], "warmup": warmup, "last": last}


def _native_intervals(steps: int, target: float) -> list[dict]:
    """TaylorSeer's knob space at this budget: first_enhance 2 or 3, interval N."""
    return [p for p in (_native_interval(steps, target, w) for w in (2, 3)) if p is not None]


def _tsi(steps: int, target: float, **kw) -> list[dict]:
    """TC-Padé's schedule (warm-up 3, interval heads) with the most passes within the target's budget."""
    cap = budget_passes(steps, target)
    best = None
    for n in range(2, steps + 1):
        computed = sum(1 for s in range(steps) if s < 3 or s % n == 0)
        if computed <= cap and (best is None or computed > best[0]):
            best = (computed, n)
    return [] if best is None else [{"name": "tsi", "interval": best[1], "warmup": 3, "last": False, **kw}]


def _fam(name: str, predictor: dict, policies: Callable[[int, float], list[dict]], summary: str) -> Family:
    return Family(name, lambda steps, t: [{"predictor": dict(predictor), "policy": p} for p in policies(steps, t)], summary)


EVEN = lambda steps, t: [_even(t)]  # noqa: E731
FRONT = lambda steps, t: [_front(t)]  # noqa: E731

_ALL: dict[str, Family] = {
    f.name: f
    for f in (
        # predictors compared on one and the same (even) schedule
        _fam("reuse", {"name": "noop"}, EVEN, "plain reuse of the last residual (FORA), even schedule"),
        _fam("linear", {"name": "linear"}, EVEN, "linear extrapolation on the real grid (equals taylor-1), even schedule"),
        _fam("taylor-1", {"name": "taylor", "order": 1}, EVEN, "first-order TaylorSeer forecast, even schedule"),
        _fam("taylor-2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, EVEN, "second-order TaylorSeer (its recursion), even schedule"),
        _fam("tc-pade-reference", {"name": "tc-pade", "variant": "reference"}, EVEN, "TC-Padé, the official code's predictor, even schedule"),
        _fam("tc-pade-paper", {"name": "tc-pade", "variant": "paper"}, EVEN, "TC-Padé, the formula as published, even schedule"),
        _fam("tc-pade-damped", {"name": "tc-pade"}, EVEN, "TC-Padé damped (our repair), even schedule"),
        _fam("pade-fit", {"name": "pade-fit"}, EVEN, "fitted [1/1] Padé with pole guard, even schedule"),
        # padecache's default schedule (front-loaded budget)
        _fam("taylor-1 front-loaded", {"name": "taylor", "order": 1}, FRONT, "first-order TaylorSeer forecast on padecache's default budget schedule"),
        _fam("tc-pade", {"name": "tc-pade"}, FRONT, "TC-Padé damped on padecache's default budget schedule (our method)"),
        # each method's own schedule
        _fam("taylorseer-O1", {"name": "taylor", "order": 1, "mode": "taylorseer"}, _native_intervals, "TaylorSeer O1 with its own knobs: interval N, first_enhance 2 or 3"),
        _fam("taylorseer-O2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, _native_intervals, "TaylorSeer O2 with its own knobs: interval N, first_enhance 2 or 3"),
        _fam("tc-pade-reference+tsi", {"name": "tc-pade", "variant": "reference"}, lambda s, t: _tsi(s, t, threshold=1.4), "TC-Padé official predictor with the TSI policy's interval heads"),
        _fam("tc-pade+tsi", {"name": "tc-pade"}, lambda s, t: _tsi(s, t, threshold=1.4), "TC-Padé damped with the TSI policy's interval heads"),
    )
}

DEFAULT_FAMILIES = tuple(_ALL)
QUICK_FAMILIES = ("reuse", "taylor-1", "tc-pade-reference", "tc-pade-paper", "tc-pade")
#: presets run as given (one setting each) in the default benchmark, when registered
DEFAULT_PRESETS = ("tc-pade-fast", "tc-pade-slow", "tc-pade-official", "taylorseer", "fora", "default")


def family_names() -> list[str]:
    return list(_ALL)


def families(names: Sequence[str] | None = None) -> list[Family]:
    names = DEFAULT_FAMILIES if names is None else names
    out = []
    for name in names:
        if name not in _ALL:
            raise ValueError(f"unknown method family {name!r}; known: {', '.join(_ALL)}")
        out.append(_ALL[name])
    return out


def budget_passes(steps: int, target: float) -> int:
    return BudgetPolicy(BudgetPolicy.Config(speedup=target)).passes(steps)
