"""The registry: every component, preset, adapter and bench family, with the plugin that provided it.

It knows nothing of pluggy: :mod:`padecache.plugins` collects what each plugin returns from its hooks and
hands it over as :class:`Contribution` s.  Here those are validated and indexed:

* every component is reachable by its bare name and as ``plugin:name``;
* two plugins registering one name break only that bare name: asking for it raises an error naming both
  plugins and the qualified names to use, everything else keeps working;
* a plugin whose hook raised, or that contributed an invalid component, is listed in :attr:`Registry.broken`
  with its error, and contributes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .options import NoOptions, suggest

__all__ = ["KINDS", "Entry", "Preset", "Broken", "Contribution", "Registry", "qualified"]

#: component kinds: hook name, human singular, plural
KINDS = {
    "predictor": ("padecache_predictors", "predictor", "predictors"),
    "policy": ("padecache_policies", "policy", "policies"),
    "stage": ("padecache_stage_detectors", "stage detector", "stage detectors"),
}

#: the plugin name of padecache's own components
CORE = "padecache"


def qualified(plugin: str, name: str) -> str:
    return f"{plugin}:{name}"


@attrs.frozen
class Entry:
    """One registered component: ``plugin`` is the plugin's registered name (what ``plugin:name`` uses),
    ``package`` the distribution that installed it, ``version`` its version."""

    kind: str
    name: str
    cls: type
    plugin: str
    version: str
    package: str = ""

    @property
    def qualified_name(self) -> str:
        return qualified(self.plugin, self.name)

    @property
    def summary(self) -> str:
        doc = (self.cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@attrs.frozen
class Preset:
    name: str
    config: Mapping[str, Any]
    plugin: str
    version: str
    summary: str = ""
    package: str = ""

    @property
    def qualified_name(self) -> str:
        return qualified(self.plugin, self.name)


@attrs.frozen
class Broken:
    """A plugin that could not be used, and why."""

    plugin: str
    version: str
    error: str
    package: str = ""


@attrs.frozen
class Contribution:
    """What one plugin returned from its hooks (``hooks`` maps a hook name to its result)."""

    plugin: str
    version: str
    hooks: Mapping[str, Any]
    package: str = ""


@attrs.frozen
class _Clash:
    """A bare name registered by several plugins."""

    entries: tuple


def _interface(kind: str) -> type:
    from .interfaces import CachePolicy, Predictor, StageDetector

    return {"predictor": Predictor, "policy": CachePolicy, "stage": StageDetector}[kind]


def validate_component(kind: str, cls: Any) -> None:
    """Raise ``ValueError`` saying what is wrong with a component class before it reaches a run."""
    _, human, _ = KINDS[kind]
    base = _interface(kind)
    if not inspect.isclass(cls) or not issubclass(cls, base):
        raise ValueError(f"{cls!r} is not a subclass of padecache.{base.__name__}")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(f"{human} class {cls.__name__} needs a `name`: a non-empty string without ':' (got {name!r})")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ValueError(f"{human} {name!r} ({cls.__name__}) does not implement {missing}")
    config_cls = getattr(cls, "Config", NoOptions)
    if not attrs.has(config_cls):
        raise ValueError(f"{human} {name!r}: `Config` must be an attrs class (@attrs.frozen), got {config_cls!r}")
    for method in ("update", "predict", "reset") if kind == "predictor" else ("should_compute",) if kind == "policy" else ("stage",):
        if not callable(getattr(cls, method, None)):
            raise ValueError(f"{human} {name!r}: `{method}` must be a method")
    if kind in ("policy", "predictor"):
        from .step_inputs import inputs_problem

        problem = inputs_problem(getattr(cls, "inputs", frozenset()))
        if problem:
            raise ValueError(f"{kind} {name!r}: {problem}")


class Registry:
    """Components, presets, adapters and bench families of the plugins registered right now."""

    def __init__(self, contributions: Iterable[Contribution], broken: Iterable[Broken] = ()):
        self.components: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._bare: dict[str, dict[str, Entry | _Clash]] = {kind: {} for kind in KINDS}
        self._presets: dict[str, Preset] = {}  # by qualified name
        self._bare_presets: dict[str, Preset | _Clash] = {}
        self.adapters: list[tuple[Any, str, str]] = []
        self.bench_families: list[tuple[Any, str, str]] = []
        self.reference_models: list[tuple[Any, str, str]] = []  # (ReferenceModel, plugin, version)
        self.broken: list[Broken] = list(broken)
        self.plugins: dict[str, str] = {}  # plugin name -> version
        self.packages: dict[str, str] = {}  # plugin name -> distribution
        for c in contributions:
            try:
                staged = self._stage(c)
            except Exception as err:  # noqa: BLE001 - the plugin is skipped and shown as broken
                self.broken.append(Broken(c.plugin, c.version, f"{type(err).__name__}: {err}", c.package))
                continue
            self._commit(c, staged)

    # -- building ----------------------------------------------------------------------------------------
    @staticmethod
    def _stage(c: Contribution) -> dict[str, list]:
        """Validate everything a plugin contributes before any of it is registered."""
        staged: dict[str, list] = {kind: [] for kind in KINDS}
        for kind, (hook, _, _) in KINDS.items():
            seen = set()
            for cls in c.hooks.get(hook) or ():
                validate_component(kind, cls)
                if cls.name in seen:
                    raise ValueError(f"it registers two {KINDS[kind][2]} named {cls.name!r}")
                seen.add(cls.name)
                staged[kind].append(cls)
        presets = c.hooks.get("padecache_presets") or {}
        if not isinstance(presets, Mapping):
            raise ValueError(f"padecache_presets must return a dict of name -> config, got {type(presets).__name__}")
        for name, cfg in presets.items():
            if not isinstance(name, str) or not name or ":" in name:
                raise ValueError(f"preset names must be non-empty strings without ':', got {name!r}")
            if not isinstance(cfg, Mapping):
                raise ValueError(f"preset {name!r} must be a dict of sections, got {type(cfg).__name__}")
        staged["presets"] = list(presets.items())
        from .adapters import Adapter

        for adapter in c.hooks.get("padecache_adapters") or ():
            if not isinstance(adapter, Adapter):
                raise ValueError(f"padecache_adapters must return padecache.adapters.Adapter objects, got {adapter!r}")
        staged["adapters"] = list(c.hooks.get("padecache_adapters") or ())
        from .sweeps import Family

        families = c.hooks.get("padecache_bench_families") or ()
        try:  # a malformed family makes its plugin broken, not every family of every plugin
            staged["bench_families"] = [Family.from_any(f) for f in families]
        except (ValueError, TypeError) as err:
            raise ValueError(f"it declares an invalid bench family: {err}") from None
        from .reference_models import ReferenceModel

        staged["reference_models"] = [ReferenceModel.from_any(m) for m in c.hooks.get("padecache_reference_models") or ()]
        return staged

    def _commit(self, c: Contribution, staged: dict[str, list]) -> None:
        self.plugins[c.plugin] = c.version
        self.packages[c.plugin] = c.package or c.plugin
        for kind in KINDS:
            for cls in staged[kind]:
                entry = Entry(kind, cls.name, cls, c.plugin, c.version, c.package or c.plugin)
                self.components[kind][entry.qualified_name] = entry
                self._bare[kind][cls.name] = _merge(self._bare[kind].get(cls.name), entry)
        for name, cfg in staged["presets"]:
            cfg = dict(cfg)
            summary = str(cfg.pop("summary", ""))
            preset = Preset(name, cfg, c.plugin, c.version, summary, c.package or c.plugin)
            self._presets[preset.qualified_name] = preset
            self._bare_presets[name] = _merge(self._bare_presets.get(name), preset)
        self.adapters.extend((a, c.plugin, c.version) for a in staged["adapters"])
        self.bench_families.extend((f, c.plugin, c.version) for f in staged["bench_families"])
        self.reference_models.extend((m, c.plugin, c.version) for m in staged["reference_models"])

    # -- lookup ------------------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """Bare names usable in a configuration (clashing names left out) for one kind."""
        return sorted(n for n, e in self._bare[kind].items() if isinstance(e, Entry))

    def entries(self, kind: str) -> list[Entry]:
        return [self.components[kind][q] for q in sorted(self.components[kind])]

    def get(self, kind: str, name: str, prefer: str | None = None) -> Entry:
        """The entry for ``name`` (bare or ``plugin:name``); ``ValueError`` saying what to use otherwise.

        ``prefer`` names a plugin whose own component wins a clash (a preset refers to its own plugin's); a name
        that plugin does not register resolves to padecache's built-in, the name the preset was written against,
        so another plugin that reuses a built-in's name cannot break a third plugin's presets.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        _, human, plural = KINDS[kind]
        if not isinstance(name, str):
            raise ValueError(f"a {human} name must be a string, got {name!r} ({type(name).__name__})")
        if ":" in name:
            if name in self.components[kind]:
                return self.components[kind][name]
            known = sorted(self.components[kind])
            raise ValueError(f"unknown {human} {name!r}{suggest(name, known)}; registered: {', '.join(known)}")
        found = self._bare[kind].get(name)
        if isinstance(found, _Clash):
            for plugin in (prefer, CORE) if prefer is not None else ():
                if qualified(plugin, name) in self.components[kind]:
                    return self.components[kind][qualified(plugin, name)]
            raise ValueError(_clash_message(human, name, found))
        if found is None:
            names = self.names(kind)
            raise ValueError(
                f"unknown {human} {name!r}{suggest(name, names)}; registered {plural}: {', '.join(names)}"
                + self.broken_hint()
            )
        return found

    @property
    def presets(self) -> dict[str, Preset]:
        """Every usable preset by bare name (clashing names left out) and by ``plugin:name``."""
        return {**{n: p for n, p in self._bare_presets.items() if isinstance(p, Preset)}, **self._presets}

    def get_bare(self, kind: str, name: str) -> Entry | None:
        """The entry a bare name stands for, or ``None`` (unknown, or clashing)."""
        found = self._bare[kind].get(name)
        return found if isinstance(found, Entry) else None

    def preset(self, name: str) -> Preset:
        """The preset ``name`` (bare or ``plugin:name``); ``KeyError`` if none, ``ValueError`` on a clash."""
        if ":" in name:
            if name in self._presets:
                return self._presets[name]
            raise KeyError(name)
        found = self._bare_presets.get(name)
        if isinstance(found, _Clash):
            raise ValueError(_clash_message("preset", name, found))
        if found is None:
            raise KeyError(name)
        return found

    def has_preset(self, name: str) -> bool:
        return name in self._presets or name in self._bare_presets

    def preset_names(self) -> list[str]:
        return sorted(n for n, p in self._bare_presets.items() if isinstance(p, Preset))

    def create(self, kind: str, name: str, options=None, prefer: str | None = None):
        """Instantiate component ``name`` with ``options`` (its ``Config`` instance; defaults if None)."""
        entry = self.get(kind, name, prefer)
        config_cls = getattr(entry.cls, "Config", NoOptions)
        return entry.cls(config_cls() if options is None else options)

    def adapter_for(self, model) -> tuple[Any, str]:
        """The adapter that supports ``model``; ``TypeError`` saying how to add one otherwise.

        The adapter naming the most specific class of the model's MRO wins (a subclass's own adapter before its base
        class's); between adapters of the same class, plugins' before padecache's own, so a plugin can improve a
        built-in family.
        """
        ordered = [a for a in self.adapters if a[1] != CORE] + [a for a in self.adapters if a[1] == CORE]
        mro = [c.__name__ for c in type(model).__mro__]
        found = [(a, p) for a, p, _ in ordered if a.supports(model)]
        if found:  # the adapter of the most specific class: a subclass's own before its base class's
            return min(found, key=lambda ap: min((mro.index(n) for n in getattr(ap[0], "model_classes", ()) if n in mro),
                                                 default=len(mro)))
        from .adapters import GenericAdapter, unsupported_message

        named = {c for a, _, _ in self.adapters if not isinstance(a, GenericAdapter) for c in a.model_classes}
        raise TypeError(unsupported_message(model, sorted(named)))

    def broken_hint(self) -> str:
        if not self.broken:
            return ""
        names = ", ".join(b.plugin for b in self.broken)
        return f" (broken plugins, whose components are missing: {names}; `padecache list` shows why)"

    def rows(self) -> list[dict[str, str]]:
        """Flat table for ``padecache list``: one row per component, preset, adapter and broken plugin."""
        rows = []
        for kind in KINDS:
            for e in self.entries(kind):
                clash = isinstance(self._bare[kind].get(e.name), _Clash)
                rows.append({"kind": kind, "name": e.qualified_name if clash else e.name, "plugin": e.plugin,
                             "package": e.package, "version": e.version, "summary": e.summary})
        for q in sorted(self._presets):
            p = self._presets[q]
            clash = isinstance(self._bare_presets.get(p.name), _Clash)
            rows.append({"kind": "preset", "name": q if clash else p.name, "plugin": p.plugin, "package": p.package,
                         "version": p.version, "summary": p.summary})
        for adapter, plugin, version in self.adapters:
            rows.append({"kind": "adapter", "name": adapter.name, "plugin": plugin, "package": self.packages.get(plugin, plugin),
                         "version": version, "summary": ", ".join(adapter.model_classes)})
        for b in self.broken:
            rows.append({"kind": "broken", "name": b.plugin, "plugin": b.plugin, "package": b.package or b.plugin,
                         "version": b.version, "summary": b.error})
        return rows


def _merge(existing, entry):
    if existing is None:
        return entry
    if isinstance(existing, _Clash):
        return _Clash((*existing.entries, entry))
    return _Clash((existing, entry))


def _clash_message(human: str, name: str, clash: _Clash) -> str:
    who = " and by ".join(f"plugin {e.plugin!r} ({e.version})" for e in clash.entries)
    options = ", ".join(repr(e.qualified_name) for e in clash.entries)
    return f"{human} {name!r} is registered by {who}; say which one you mean: {options}"
