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
    """A method swept over target speedups: ``make(steps, target) -> config dict | None``."""

    name: str
    make: Callable[[int, float], dict | None]
    summary: str = ""
    ours: bool = False  # counted as padecache's own method in the summary comparisons
    taylorseer: bool = False  # counted as a TaylorSeer setting in the summary comparisons

    def settings(self, steps: int, targets: Iterable[float]) -> list[Setting]:
        out, seen = [], set()
        for target in targets:
            cfg = self.make(steps, target)
            if cfg is None:
                continue
            key = repr(sorted((k, repr(v)) for k, v in cfg.items()))
            if key in seen:
                continue
            seen.add(key)
            out.append(padecache_setting(self.name, cfg, target))
        return out


def _budget(target: float, warmup: int = 3) -> dict:
    return {"name": "budget", "speedup": round(target, 4), "warmup": warmup, "last": True}


def _native_interval(steps: int, target: float, warmup: int = 3, last: bool = False) -> dict | None:
    """TaylorSeer's schedule (interval N after ``warmup`` steps) whose pass count is closest to the target."""
    want = steps / target
    best = None
    for n in range(1, steps + 1):
        mask = FixedPolicy(FixedPolicy.Config(interval=n, warmup=warmup, last=last)).mask(steps)
        score = abs(sum(mask) - want)
        if best is None or score < best[0] - 1e-9:
            best = (score, n)
    return {"name": "fixed", "interval": best[1], "warmup": warmup, "last": last}


def _tsi(steps: int, target: float, **kw) -> dict:
    """TC-Padé's schedule (warm-up 3, interval heads, last step) with the interval closest to the target."""
    want = steps / target
    best = None
    for n in range(2, steps + 1):
        computed = sum(1 for s in range(steps) if s < 3 or s == steps - 1 or s % n == 0)
        score = abs(computed - want)
        if best is None or score < best[0] - 1e-9:
            best = (score, n)
    return {"name": "tsi", "interval": best[1], "warmup": 3, "last": True, **kw}


def _fam(name: str, predictor: dict, policy: Callable[[int, float], dict | None], summary: str, **flags) -> Family:
    return Family(name, lambda steps, t: {"predictor": dict(predictor), "policy": policy(steps, t)}, summary, **flags)


BUDGET = lambda steps, t: _budget(t)  # noqa: E731

_ALL: dict[str, Family] = {
    f.name: f
    for f in (
        _fam("reuse", {"name": "noop"}, BUDGET, "plain reuse of the last residual (FORA), equal schedule"),
        _fam("taylor-1", {"name": "taylor", "order": 1}, BUDGET, "first-order TaylorSeer on the residual, equal schedule", taylorseer=True),
        _fam("taylor-2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, BUDGET, "second-order TaylorSeer (its recursion), equal schedule", taylorseer=True),
        _fam("taylorseer-O1", {"name": "taylor", "order": 1, "mode": "taylorseer"}, _native_interval, "TaylorSeer O1, native interval N, 3 warm-up steps", taylorseer=True),
        _fam("taylorseer-O2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, _native_interval, "TaylorSeer O2, native interval N, 3 warm-up steps", taylorseer=True),
        _fam("tc-pade-reference", {"name": "tc-pade", "variant": "reference"}, BUDGET, "TC-Padé, official code's predictor, equal schedule", ours=True),
        _fam("tc-pade-paper", {"name": "tc-pade", "variant": "paper"}, BUDGET, "TC-Padé, formula as published, equal schedule", ours=True),
        _fam("tc-pade", {"name": "tc-pade"}, BUDGET, "TC-Padé damped (our repair), equal schedule", ours=True),
        _fam("tc-pade+tsi", {"name": "tc-pade"}, lambda s, t: _tsi(s, t, threshold=1.4), "TC-Padé damped with its own TSI schedule", ours=True),
        _fam("pade-fit", {"name": "pade-fit"}, BUDGET, "fitted [1/1] Padé with pole guard, equal schedule", ours=True),
    )
}

DEFAULT_FAMILIES = tuple(_ALL)
QUICK_FAMILIES = ("reuse", "taylor-1", "tc-pade-reference", "tc-pade-paper", "tc-pade")


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
