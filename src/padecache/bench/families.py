"""Sweep families in the benchmark: :mod:`padecache.sweeps` (where families and schedules live, so that
``padecache.apply`` takes a family's name too), the registered ones, and the group a configuration belongs to.

A plugin declares its families from the ``padecache_bench_families`` hook, as :class:`Family` objects or as
dicts with the same fields (a dict lets the plugin's module skip importing :mod:`padecache.bench` when it
loads; its schedule can then be a schedule name or a function of its own)::

    @padecache.hookimpl
    def padecache_bench_families():
        return [{"name": "my-method", "predictor": {"name": "my-predictor"}, "schedule": "front-loaded",
                 "summary": "my predictor on padecache's default schedule"}]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import sweeps
from ..sweeps import (
    BLOCK_RANGE,
    REUSE,
    SCHEDULES,
    TAYLORSEER,
    Family,
    Schedule,
    budget_passes,
    builtin_families,
    densest,
    even_budget,
    families_of,
    front_loaded,
    range_passes,
    taylorseer_intervals,
)

__all__ = [
    "Family",
    "Schedule",
    "SCHEDULES",
    "front_loaded",
    "even_budget",
    "taylorseer_intervals",
    "densest",
    "budget_passes",
    "budget_caption",
    "range_passes",
    "builtin_families",
    "registered_families",
    "find_family",
    "group_of",
    "TAYLORSEER",
    "REUSE",
]


def registered_families() -> list[tuple[Family, str, str]]:
    """Every family: ``(family, plugin, version)``, padecache's own first, then each plugin's."""
    from ..plugins import get_registry

    return families_of(get_registry())


def find_family(name: str, families: list[tuple[Family, str, str]] | None = None,
                groups: bool = False) -> tuple[Family, str, str] | None:
    """The family called ``name`` (or ``plugin:name``, or with ``groups`` the one family of a group such as
    ``reuse``); ``ValueError`` when two plugins declare it."""
    return sweeps.find_family(name, registered_families() if families is None else families, groups)


def _normal_predictor(section: Mapping[str, Any]) -> dict | None:
    from ..config import load_config

    try:
        return load_config({"predictor": dict(section)}).to_dict()["predictor"]
    except (ValueError, TypeError):  # a family whose plugin is missing or broken: it matches nothing
        return None


def group_of(config: Mapping[str, Any], families: list[tuple[Family, str, str]] | None = None) -> str | None:
    """The group of the families that run the same predictor as ``config`` (a padecache config dict), if they agree.

    A preset or config run as given is a setting of a family's method when it runs that family's predictor,
    with the same options, on the kind of policy the family's schedule uses, over the same block range
    (``engine.first_blocks`` / ``last_blocks``): a budget preset of TC-Padé belongs to TC-Padé's group, a
    fixed-interval TaylorSeer preset to TaylorSeer's.  ``None`` when no family, or families of several groups, match.
    """
    predictor = config.get("predictor")
    if not isinstance(predictor, Mapping):
        return None
    engine = config.get("engine") if isinstance(config.get("engine"), Mapping) else {}
    blocks = tuple(engine.get(k, 0) for k in BLOCK_RANGE)
    target = _normal_predictor(predictor)
    raw = json.loads(json.dumps(dict(predictor), default=list))

    def same(section: Mapping[str, Any]) -> bool:
        norm = _normal_predictor(section)
        if norm is None:
            return False
        if target is not None:
            return norm == target
        # options this padecache no longer takes (stored results): every option the family sets must agree
        return all(raw.get(k) == v for k, v in json.loads(json.dumps(norm, default=list)).items())

    policy = (config.get("policy") or {}).get("name") if isinstance(config.get("policy"), Mapping) else config.get("policy")
    families = registered_families() if families is None else families
    matches = [f for f, _, _ in families if same(f.predictor) and tuple(f.engine.get(k, 0) for k in BLOCK_RANGE) == blocks]
    if not matches:
        return None

    def uses(f: Family) -> bool:
        try:
            return any(p.get("name") == policy for p in f.policies(20, 2.5))
        except (ValueError, TypeError):
            return False

    preferred = [f for f in matches if uses(f)]  # the same forecast on another kind of schedule is another method
    groups = {f.group for f in preferred}
    return groups.pop() if len(groups) == 1 else None


def budget_caption(steps: int, target: float) -> str:
    """``at most 8 passes (2.50×)``; ``(1.40×, target 1.50×)`` where whole passes move the speedup."""
    n = budget_passes(steps, target)
    shown = f"{steps / n:.2f}×" + ("" if abs(steps / n - target) < 0.005 else f", target {target:.2f}×")
    return f"at most {n} pass{'' if n == 1 else 'es'} ({shown})"
