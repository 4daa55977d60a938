"""Methods by name: sweep families (a predictor on a schedule of passes), and the configuration each name stands for.

One name per method, everywhere: whatever ``results.json``, the README and ``padecache list`` call a method -- a
family (``tc-pade``, ``taylorseer-O1``, ``noop``...), a family's headline group with one family (``reuse``), a
predictor or policy name, or ``full`` -- :func:`method_config` turns it into the configuration
``padecache.apply`` runs: the family's first setting that fits the budget at :data:`APPLY_TARGET` fewer passes (schedules that count
steps, such as ``interval``, are laid out for :data:`APPLY_STEPS` steps).  ``padecache.load_config`` asks it for
any name that is not a preset.  Peers (other tools) are named here too, so that asking ``apply`` for one says what
it is.  This module imports no torch, no plugin, and neither the registry nor the config (they are passed in).

Sweep families: one method swept over target pass speedups.

A :class:`Family` pairs a predictor with a *schedule*: a function ``(steps, target) -> [policy, ...]`` giving
the policy sections to run at a target pass speedup (several when the method has knobs to search, the
best of which counts at equal compute).  Three schedule kinds are built in:

* ``"front-loaded"``: padecache's ``budget`` policy as configured by default (2 warm-up steps, 1 at 4 passes
  or fewer, passes front-loaded);
* ``"even"``: the ``budget`` policy with 3 warm-up steps at every budget and the other passes evenly spread, the same
  steps for every predictor, so that differences between predictors on it are the predictors' alone;
* ``"interval"``: TaylorSeer's own knobs: a pass every N steps after ``first_enhance`` 2 or 3 warm-up
  steps, the densest N within the budget (the ``fixed`` policy).

A plugin declares its families from the ``padecache_bench_families`` hook, as :class:`Family` objects or as
dicts with the same fields (a dict lets the plugin's module skip importing :mod:`padecache.bench` when it
loads; its schedule can then be one of the names above or a function of its own)::

    @padecache.hookimpl
    def padecache_bench_families():
        return [{"name": "my-method", "predictor": {"name": "my-predictor"}, "schedule": "front-loaded",
                 "summary": "my predictor on padecache's default schedule"}]

A family may also carry an ``engine`` section, e.g. ``{"first_blocks": 1}``: the first F and last B blocks of the
stack then run on every step and only the middle is forecast (cache-dit's Fn/Bn, DiCache's probe).  Such a run
pays ``(F + B) / N`` of a pass for every forecast step, so the family is compared at equal *block-pass* cost: at a
target whose budget is ``b = budget_passes(steps, target)`` passes, its schedule is asked for the target of the
most full passes ``P`` with ``P + (steps - P) (F + B) / N <= b`` (:func:`range_passes`), ``steps / P``; a budget
the always-run blocks alone exceed gives no setting.  ``N`` is the model's block count, which the benchmark reads
from the pipeline; where it is unknown (``padecache.apply`` by a family's name) the schedule gets the target itself.

The benchmark's built-in families are the ones padecache itself provides: reuse, linear and Taylor
forecasts on the even schedule, first-order Taylor on the front-loaded one, and TaylorSeer O1/O2 on
their own knobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .options import suggest

__all__ = [
    "method_config",
    "APPLY_TARGET",
    "APPLY_STEPS",
    "PEER_NAMES",
    "families_of",
    "Family",
    "Schedule",
    "SCHEDULES",
    "front_loaded",
    "even_budget",
    "taylorseer_intervals",
    "densest",
    "budget_passes",
    "range_passes",
    "builtin_families",
    "find_family",
    "TAYLORSEER",
    "REUSE",
]

#: a schedule: ``(steps, target pass speedup) -> policy sections to run there``
Schedule = Callable[[int | None, float], list[dict]]

#: headline groups padecache's own report knows: the strongest published baseline and plain reuse
TAYLORSEER = "taylorseer"
REUSE = "reuse"
#: other tools the benchmark runs through their own APIs (never through ``padecache.apply``)
PEER_NAMES = ("diffusers-taylorseer", "diffusers-fbc", "diffusers-magcache", "cache-dit")
#: a method name given to ``padecache.apply`` runs at this pass speedup...
APPLY_TARGET = 2.5
#: ...laid out for this many steps where its schedule counts them (the benchmark's default step count)
APPLY_STEPS = 20


def budget_passes(steps: int, target: float) -> int:
    """Block-stack passes a target speedup allows at ``steps`` (what the ``budget`` policy spends)."""
    return max(1, min(steps, round(steps / target)))


def range_passes(steps: int, target: float, share: float) -> int | None:
    """Full passes that fit the budget of ``target`` when every other step still runs ``share`` of a pass.

    The most ``P`` with ``P + (steps - P) * share <= budget_passes(steps, target)`` (block passes), or ``None``
    when not even one does: the blocks that always run cost more than the budget on their own.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the share of a pass a forecast step runs is in [0, 1), got {share}")
    budget = budget_passes(steps, target)
    passes = min(steps, math.floor((budget - steps * share) / (1.0 - share) + 1e-9))
    return passes if passes >= 1 else None


def front_loaded(steps: int | None, target: float) -> list[dict]:
    """padecache's default budget schedule: 2 warm-up steps (1 at 6 passes or fewer), the other passes front-loaded
    (spread more evenly, nearer the end, in a run that starts part-way)."""
    return [{"name": "budget", "speedup": round(target, 4)}]


def even_budget(steps: int | None, target: float) -> list[dict]:
    """The equal schedule: 3 warm-up steps (what every predictor needs) at every budget, the other passes evenly spread
    (in a run that starts part-way too)."""
    return [{"name": "budget", "speedup": round(target, 4), "warmup": 3, "spacing": 1.0, "lean_passes": 0,
             "partial_spacing": 1.0, "partial_tail_gaps": 0.7}]


def densest(steps: int, target: float, passes_for: Callable[[int], int], knobs: Iterable[int]) -> int | None:
    """The knob value whose schedule spends the most passes within the target's budget (``None``: none fits)."""
    cap = budget_passes(steps, target)
    best = None
    for k in knobs:
        p = passes_for(k)
        if p <= cap and (best is None or p > best[0]):
            best = (p, k)
    return None if best is None else best[1]


def taylorseer_intervals(steps: int | None, target: float) -> list[dict]:
    """TaylorSeer's knob space at this budget: ``first_enhance`` 2 or 3, the densest interval N that fits."""
    from .policies import FixedPolicy

    if steps is None:
        raise ValueError("the 'interval' schedule needs the step count, which could not be read from this pipeline")
    out = []
    for warmup in (2, 3):
        def passes(n, w=warmup):
            return sum(FixedPolicy(FixedPolicy.Config(interval=n, warmup=w, last=False)).mask(steps))

        n = densest(steps, target, passes, range(1, steps + 1))
        if n is not None:
            out.append({"name": "fixed", "interval": n, "warmup": warmup, "last": False})
    return out


SCHEDULES: dict[str, Schedule] = {"front-loaded": front_loaded, "even": even_budget, "interval": taylorseer_intervals}


def _schedule(value: str | Schedule) -> str | Schedule:
    if isinstance(value, str):
        if value not in SCHEDULES:
            raise ValueError(f"unknown schedule {value!r}; built-in schedules: {', '.join(SCHEDULES)} (or pass a function)")
        return value
    if not callable(value):
        raise ValueError(f"a schedule is one of {', '.join(SCHEDULES)} or a function (steps, target) -> [policy, ...]; got {value!r}")
    return value


def _name(_, attribute, value):
    if not isinstance(value, str) or not value.strip() or ":" in value:
        raise ValueError(f"a family needs a `name`: a non-empty string without ':' (got {value!r})")


def _predictor(value: Any) -> dict:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ValueError(f"a family's `predictor` is a config section with a `name`, e.g. {{'name': 'taylor', 'order': 1}}; got {value!r}")
    return dict(value)


#: the engine options that set a block range (the only ones a family's plan depends on)
BLOCK_RANGE = ("first_blocks", "last_blocks")


def _engine(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"a family's `engine` is a config section, e.g. {{'first_blocks': 1}}; got {value!r}")
    for key in BLOCK_RANGE:
        n = value.get(key, 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"a family's `engine.{key}` is a whole number of blocks >= 0, got {n!r}")
    return dict(value)


@attrs.frozen
class Family:
    """A method swept over target pass speedups.

    Attributes:
        name: its label in tables and plots.
        predictor: the predictor section, e.g. ``{"name": "taylor", "order": 1}``.
        schedule: ``"front-loaded"``, ``"even"``, ``"interval"`` or a function ``(steps, target) -> [policy, ...]``
            (``steps`` is ``None`` when the pipeline's step count is unknown).
        summary: one line for ``padecache bench --help`` and the report.
        group: which method this is a setting of, for the headline (default: ``name``); families of one
            method (variants, schedules) share a group, e.g. TaylorSeer's orders share ``"taylorseer"``.
        published: this family is the method as published (the headline shows it next to its group's "ours").
        engine: an ``[engine]`` section its runs take, e.g. ``{"first_blocks": 1}`` (a block range that always
            runs: the schedule is then planned at equal block-pass cost, see the module's docstring).

    Example::

        Family("taylor-1", {"name": "taylor", "order": 1}, "even", "first-order forecast, even schedule")
        Family("tc-pade F1B0", {"name": "tc-pade"}, engine={"first_blocks": 1})
    """

    name: str = attrs.field(validator=_name)
    predictor: Mapping[str, Any] = attrs.field(converter=_predictor)
    schedule: str | Schedule = attrs.field(default="front-loaded", converter=_schedule)
    summary: str = ""
    group: str = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    published: bool = False
    engine: Mapping[str, Any] = attrs.field(factory=dict, converter=_engine)

    @classmethod
    def from_any(cls, value: Family | Mapping[str, Any]) -> Family:
        """A :class:`Family` from itself or from a dict of its fields (what a plugin's hook may return)."""
        if isinstance(value, Family):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"a bench family is a padecache.bench.Family or a dict of its fields, got {type(value).__name__}")
        fields = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ValueError(f"bench family {value.get('name')!r}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(fields))}")
        kw = dict(value)
        if kw.get("group") is None:
            kw.pop("group", None)
        return cls(**kw)

    @property
    def always_run(self) -> int:
        """Blocks its runs compute on every step (``engine.first_blocks + engine.last_blocks``)."""
        return sum(self.engine.get(k, 0) for k in BLOCK_RANGE)

    def planned_target(self, steps: int | None, target: float, num_blocks: int | None = None) -> float | None:
        """The target its schedule is asked for at ``target``: ``target`` itself, or with a block range on a model of
        ``num_blocks`` blocks, ``steps / P`` for the full passes ``P`` of :func:`range_passes` (``None``: no setting
        fits that budget)."""
        if not self.always_run or steps is None or num_blocks is None:
            return target
        if self.always_run >= num_blocks:
            raise ValueError(f"family {self.name!r} always runs {self.always_run} blocks (engine {self.engine}), and this "
                             f"model has {num_blocks}: nothing is left to forecast")
        passes = range_passes(steps, target, self.always_run / num_blocks)
        return None if passes is None else steps / passes

    def policies(self, steps: int | None, target: float, num_blocks: int | None = None) -> list[dict]:
        """The policy sections to run at ``target`` (``num_blocks``: the model's, for a family with a block range)."""
        planned = self.planned_target(steps, target, num_blocks)
        if planned is None:
            return []
        fn = SCHEDULES[self.schedule] if isinstance(self.schedule, str) else self.schedule
        return [dict(p) for p in fn(steps, planned)]

    def configs(self, steps: int | None, target: float, num_blocks: int | None = None) -> list[dict]:
        """The padecache configs to run at ``target`` (with the family's ``engine`` section when it has one)."""
        extra = {"engine": dict(self.engine)} if self.engine else {}
        return [{"predictor": dict(self.predictor), "policy": p, **extra} for p in self.policies(steps, target, num_blocks)]


def builtin_families() -> list[Family]:
    """padecache's own families (the methods its core implements)."""
    taylorseer = "TaylorSeer (its recursion) with its own knobs: interval N, first_enhance 2 or 3"
    return [
        Family("noop", {"name": "noop"}, "even", "noop: plain reuse of the last residual (FORA), even schedule", group=REUSE),
        Family("linear", {"name": "linear"}, "even", "linear extrapolation on the real time grid, even schedule", group="taylor-forecast"),
        Family("taylor-1", {"name": "taylor", "order": 1}, "even", "first-order Taylor forecast, even schedule", group="taylor-forecast"),
        Family("taylor-2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, "even",
               "second-order TaylorSeer forecast, even schedule", group="taylor-forecast"),
        Family("taylor-1 front-loaded", {"name": "taylor", "order": 1}, "front-loaded",
               "first-order Taylor forecast on padecache's default budget schedule", group="taylor-forecast"),
        Family("taylorseer-O1", {"name": "taylor", "order": 1, "mode": "taylorseer"}, "interval", f"O1 {taylorseer}",
               group=TAYLORSEER, published=True),
        Family("taylorseer-O2", {"name": "taylor", "order": 2, "mode": "taylorseer"}, "interval", f"O2 {taylorseer}",
               group=TAYLORSEER, published=True),
    ]


def families_of(registry: Any) -> list[tuple[Family, str, str]]:
    """Every family of ``registry``: ``(family, plugin, version)``, padecache's own first, then each plugin's."""
    core = registry.plugins.get("padecache", "")
    out = [(f, "padecache", core) for f in builtin_families()]
    for value, plugin, version in getattr(registry, "bench_families", ()):
        try:
            family = Family.from_any(value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"plugin {plugin!r} ({version}) declares an invalid bench family: {err}") from None
        out.append((family, plugin, version))
    return out


def find_family(name: str, families: list[tuple[Family, str, str]], groups: bool = False) -> tuple[Family, str, str] | None:
    """The family called ``name`` (or ``plugin:name``); ``ValueError`` when two plugins declare it.

    With ``groups``, a name no family has may be a headline group of exactly one family (``reuse``): that family.
    """
    if ":" in name:
        plugin, _, bare = name.partition(":")
        found = [f for f in families if f[1] == plugin and f[0].name == bare]
    else:
        found = [f for f in families if f[0].name == name]
    if len(found) > 1:
        who = " and ".join(f"{p} ({v})" for _, p, v in found)
        raise ValueError(f"bench family {name!r} is declared by {who}; say which one: "
                         + ", ".join(repr(f"{p}:{f.name}") for f, p, _ in found))
    if not found and groups:
        found = [f for f in families if f[0].group == name]
        found = found if len(found) == 1 else []
    return found[0] if found else None




def _peer_error(name: str, families: list[tuple[Family, str, str]]) -> str | None:
    peer = next((p for p in PEER_NAMES if name.startswith(p)), None)
    if peer is None:
        return None
    own = [f.name for f, _, _ in families if f.group == TAYLORSEER] if "taylorseer" in name else []
    hint = f" (padecache's own: {', '.join(own)})" if own else ""
    return (f"{name!r} is a peer: {peer}, another tool that `padecache bench` runs through its own API; padecache.apply "
            f"runs padecache's methods{hint}")


def _family_config(registry: Any, family: Family, target: float, steps: int) -> dict:
    """The first of the family's settings at ``target`` whose plan on ``steps`` steps fits the budget (an adaptive
    one counts as fitting); where none fits, the one of fewest passes."""
    configs = family.configs(steps, target)  # the model, and so a block range's share, is not known here
    if not configs:
        raise ValueError(f"method {family.name!r} has no setting at {target:g}x fewer passes on {steps} steps")
    budget = budget_passes(steps, target)
    passes = [_planned_passes(registry, c["policy"], steps) for c in configs]
    fits = [c for c, n in zip(configs, passes, strict=True) if n is None or n <= budget]
    return fits[0] if fits else configs[min(range(len(configs)), key=lambda i: passes[i])]


def _planned_passes(registry: Any, section: Mapping[str, Any], steps: int) -> int | None:
    """Passes of the static plan of the policy ``section`` on ``steps`` steps (``None``: adaptive, or not buildable
    without the run)."""
    from .options import NoOptions, build_options

    values = dict(section)
    try:
        entry = registry.get("policy", values.pop("name"))
        policy = entry.cls(build_options(getattr(entry.cls, "Config", NoOptions), values, "policy"))
        mask = policy.mask(steps)
    except Exception:  # noqa: BLE001 - what cannot be planned here is planned (and reported) when it runs
        return None
    return None if mask is None else int(sum(bool(m) for m in mask))


def _component_config(registry: Any, name: str, default_predictor: Mapping[str, Any]) -> dict | None:
    """A predictor name on the budget policy, or a policy name with the default predictor (as the benchmark runs them)."""
    if registry.get_bare("predictor", name) is not None or name in registry.components["predictor"]:
        return {"predictor": {"name": name}, "policy": {"name": "budget", "speedup": APPLY_TARGET}}
    if registry.get_bare("policy", name) is not None or name in registry.components["policy"]:
        return {"predictor": dict(default_predictor), "policy": {"name": name}}
    return None


def method_config(registry: Any, name: str, default_predictor: Mapping[str, Any], target: float = APPLY_TARGET,
                  steps: int = APPLY_STEPS) -> dict | None:
    """The configuration the method ``name`` stands for (``None``: no method is called that).

    ``name`` is a family (``tc-pade``, ``taylorseer-O1``, ``plugin:name``), the headline group of exactly one family
    (``reuse``), a predictor (on the ``budget`` policy) or a policy (with ``default_predictor``), or ``full`` (full
    compute).  A peer's name is a ``ValueError`` saying what it is.
    """
    families = families_of(registry)
    if name == "full":
        return {"predictor": {"name": "noop"}, "policy": {"name": "always"}}
    found = find_family(name, families, groups=True)
    if found is not None:
        return _family_config(registry, found[0], target, steps)
    peer = _peer_error(name, families)
    if peer is not None:
        raise ValueError(peer)
    return _component_config(registry, name, default_predictor)


def method_names(registry: Any) -> list[str]:
    """Every name :func:`method_config` takes (for "did you mean" hints)."""
    families = families_of(registry)
    groups = [g for g in {f.group for f, _, _ in families} if sum(f.group == g for f, _, _ in families) == 1]
    return sorted({f.name for f, _, _ in families} | set(groups) | set(registry.names("predictor"))
                  | set(registry.names("policy")) | {"full"})


def unknown_method(name: str, registry: Any) -> str:
    """" (did you mean ...?)" for an unknown method name, or ``""``."""
    return suggest(name, method_names(registry))
