"""What the benchmark runs: each entry of ``methods`` resolved to the settings it sweeps.

A :class:`Setting` is one point of a sweep: a label, the settings recorded in ``results.json``, who
provided it, and an ``attach(pipe) -> Attached`` that turns the method on.  :func:`resolve` turns what a
user may write into :class:`Method` s (checked before any model runs); ``Method.settings(steps, targets,
context)`` expands them once the step count is known.

A method may be given as

* a bench family name (:mod:`padecache.bench.families`, padecache's own or a plugin's): its sweep;
* a peer name (:mod:`padecache.bench.peers`): the other tool, through its own API;
* a preset name, a TOML/JSON path, a config dict or a :class:`~padecache.config.CacheConfig`: run as given;
* a predictor name: that predictor on padecache's ``budget`` policy at each target;
* a policy name: the default predictor with that policy (swept over ``speedup`` if the policy has one);
* a :class:`~padecache.bench.families.Family` or a :class:`Setting`.

Names may be qualified as ``plugin:name``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import warn
from .families import Family, find_family, registered_families
from .settings import Attached, Method, RunContext, Setting

__all__ = ["Attached", "Setting", "Method", "RunContext", "resolve", "padecache_setting", "components_of", "describe"]


def components_of(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Which plugin (and version) provided each component of a padecache config dict."""
    from ..plugins import get_registry

    registry = get_registry()
    out = {}
    for section in ("predictor", "policy", "stage"):
        name = (config.get(section) or {}).get("name")
        if not name:
            continue
        entry = registry.get(section, name)
        out[section] = {"name": entry.name, "plugin": entry.plugin, "version": entry.version}
    return out


def _changed(options: Any) -> str:
    """The options of an attrs options object that differ from their defaults, as ``k=v,...``."""
    from ..options import options_dict

    values = options_dict(options)
    defaults = {f.name: f.default for f in attrs.fields(type(options))
                if f.default is not attrs.NOTHING and not isinstance(f.default, attrs.Factory)}
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    return ",".join(f"{k}={v}" for k, v in values.items() if k not in plain or plain[k] != v)


def describe(cfg: Any) -> str:
    """A :class:`~padecache.config.CacheConfig` in a few words: ``predictor(changed options) + policy(...)``, showing
    the options that differ from each component's defaults, and ``engine(...)`` when its options do (a block range:
    what tables print; stored with the record)."""
    parts = []
    for sel in (cfg.predictor, cfg.policy):
        opts = _changed(sel.options)
        parts.append(f"{sel.name}({opts})" if opts else sel.name)
    engine = _changed(cfg.engine)
    if engine:
        parts.append(f"engine({engine})")
    return " + ".join(parts)


def padecache_setting(method: str, config: Any, target: float | None = None, *, plugin: str | None = None,
                      version: str | None = None, group: str | None = None, published: bool = False) -> Setting:
    """A padecache configuration as a :class:`Setting` (applied in place, removed to time full compute)."""
    import padecache

    from ..config import load_config

    cfg = load_config(config)
    as_dict = cfg.to_dict()
    components = components_of(as_dict)
    if group is None:  # a preset or config run as given joins the method whose predictor it runs
        from .families import group_of

        group = group_of(as_dict)
    if plugin is None:  # provided by whoever provided its predictor
        plugin, version = components["predictor"]["plugin"], components["predictor"]["version"]

    def attach(pipe) -> Attached:
        padecache.apply(pipe, cfg)

        def suspend():
            if padecache.is_applied(pipe):
                padecache.remove(pipe)

        return Attached(suspend=suspend, resume=lambda: padecache.apply(pipe, cfg), close=suspend,
                        stats=lambda: padecache.stats(pipe))

    return Setting(method, as_dict, attach, target, "padecache", plugin, version or "", group or method, published, components,
                   summary=describe(cfg))


def _family_method(family: Family, plugin: str, version: str) -> Method:
    def expand(steps, targets, context):
        # a family with a block range is planned at equal block-pass cost on this model's blocks (sweeps.range_passes)
        num_blocks = getattr(context, "num_blocks", None)
        out = []
        for t in targets:
            configs = family.configs(steps, t, num_blocks)
            if not configs:  # said, not silently left out of the tables
                warn(f"padecache bench: {family.name} has no setting within {t:.3g}x fewer passes on {steps} steps "
                     f"(its schedule offers none that fits the budget); it has no row there", RuntimeWarning, stacklevel=2)
            out += [padecache_setting(family.name, cfg, t, plugin=plugin, version=version, group=family.group,
                                      published=family.published) for cfg in configs]
        return out

    return Method(family.name, "family", expand, plugin, version)


def _single(label: str, config: Any, plugin: str | None = None, version: str | None = None) -> Method:
    from ..config import load_config

    cfg = load_config(config)  # errors now, before any model runs

    def expand(steps, targets, context):
        return [padecache_setting(label, cfg, None, plugin=plugin, version=version)]

    return Method(label, "config", expand, plugin or "", version or "")


def _predictor_sweep(name: str, entry) -> Method:
    def expand(steps, targets, context):
        return [padecache_setting(name, {"predictor": {"name": name}, "policy": {"name": "budget", "speedup": round(t, 4)}}, t,
                                  plugin=entry.plugin, version=entry.version) for t in targets]

    return Method(name, "sweep", expand, entry.plugin, entry.version)


def _policy_sweep(name: str, entry) -> Method:
    from ..config import load_config

    predictor = load_config(None).to_dict()["predictor"]
    sweeps = any(f.name == "speedup" for f in attrs.fields(entry.cls.Config)) if attrs.has(getattr(entry.cls, "Config", None)) else False

    def expand(steps, targets, context):
        if not sweeps:
            return [padecache_setting(name, {"predictor": predictor, "policy": {"name": name}}, None, plugin=entry.plugin, version=entry.version)]
        return [padecache_setting(name, {"predictor": predictor, "policy": {"name": name, "speedup": round(t, 4)}}, t,
                                  plugin=entry.plugin, version=entry.version) for t in targets]

    return Method(name, "sweep", expand, entry.plugin, entry.version)


def _label_of(config: Mapping[str, Any]) -> str:
    sections = [config.get(s) for s in ("predictor", "policy")]
    names = [s if isinstance(s, str) else (s or {}).get("name", "?") for s in sections]
    return "+".join(n for n in names if n)


def _known_names(families) -> list[str]:
    from ..plugins import get_registry
    from .peers import PEER_NAMES

    registry = get_registry()
    return sorted({f.name for f, _, _ in families} | set(PEER_NAMES) | set(registry.preset_names())
                  | set(registry.names("predictor")) | set(registry.names("policy")))


def _resolve_object(item: Any) -> Method:
    """A method given as an object rather than a name."""
    from ..config import CacheConfig

    if isinstance(item, Method):
        return item
    if isinstance(item, Setting):
        return Method(item.method, "setting", lambda steps, targets, context, s=item: [s], item.plugin, item.version)
    if isinstance(item, Family):
        return _family_method(item, "user", "")
    if isinstance(item, CacheConfig):
        return _single(_label_of(item.to_dict()), item, "user", "")
    if isinstance(item, Mapping):
        data = dict(item)
        label = data.pop("label", None) or _label_of(data)
        return _single(str(label), data, "user", "")
    if isinstance(item, Path):
        return _single(item.stem, item, "user", "")
    raise TypeError(f"a method is a name, a TOML path, a dict, a CacheConfig, a Family or a Setting; got {type(item).__name__}")


def _resolve_component(item: str) -> Method | None:
    """A predictor name (swept on the budget policy) or a policy name (with the default predictor)."""
    from ..plugins import get_registry

    registry = get_registry()
    for kind, make in (("predictor", _predictor_sweep), ("policy", _policy_sweep)):
        entry = registry.get_bare(kind, item) if ":" not in item else registry.components[kind].get(item)
        if entry is not None:
            return make(item, entry)
    return None


def _resolve_name(item: str, families) -> Method:
    from ..plugins import get_registry
    from .peers import PEER_NAMES, peer_method

    found = find_family(item, families, groups=True)  # `reuse` is the one family of its group, as in apply
    if found is not None:
        return _family_method(*found)
    if item in PEER_NAMES:
        return peer_method(item)
    registry = get_registry()
    if registry.has_preset(item):
        preset = registry.preset(item)
        return _single(item, item, preset.plugin, preset.version)
    method = _resolve_component(item)
    if method is not None:
        return method
    path = Path(item)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        if not path.is_file():
            raise ValueError(f"method {item!r}: no such config file")
        return _single(path.stem, path, "user", "")
    known = _known_names(families)
    close = difflib.get_close_matches(item, known, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"unknown method {item!r}{hint}; methods are bench families, peers, presets, predictors, policies "
                     f"or TOML files: {', '.join(known)}")


def _resolve_one(item: Any, families) -> Method:
    return _resolve_name(item, families) if isinstance(item, str) else _resolve_object(item)


def resolve(methods: Sequence[Any]) -> list[Method]:
    """Resolve every entry of ``methods`` (``ValueError`` naming the first unknown one, before anything runs)."""
    if isinstance(methods, (str, Path, Mapping)) or not isinstance(methods, Sequence):
        methods = [methods]
    if not methods:
        raise ValueError("no methods to compare: give at least one (a family, preset, predictor, policy or peer name)")
    families = registered_families()
    out = [_resolve_one(m, families) for m in methods]
    labels = [m.label for m in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"method(s) {', '.join(dupes)} given twice")
    return out
