"""The strategy registry, on pluggy.

A plugin is any object or module with functions marked ``@padecache.hookimpl`` named after the hooks
of :class:`PadecacheSpec`.  Installed packages expose one through the entry-point group ``padecache``::

    [project.entry-points.padecache]
    myplugin = "my_package.plugin"

The built-in components register through the very same hooks (:mod:`padecache._builtins`).  An unknown
name raises ``ValueError`` listing what is registered; two plugins registering one name is an error
naming both.  ``padecache list`` prints the table.

In tests or notebooks, :func:`register_plugin` / :func:`unregister_plugin` add a plugin object directly.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any

import attrs
import pluggy

from .config import suggest

__all__ = [
    "hookspec",
    "hookimpl",
    "PadecacheSpec",
    "Entry",
    "Preset",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "register_plugin",
    "unregister_plugin",
    "DEFAULT_PRESET",
    "KINDS",
]

PROJECT = "padecache"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: preset used by ``padecache.apply(pipe)`` when no configuration is given
DEFAULT_PRESET = "default"

#: component kinds, their hook, and human names (singular, plural)
KINDS = {
    "predictor": ("padecache_predictors", "predictor", "predictors"),
    "policy": ("padecache_policies", "policy", "policies"),
    "stage": ("padecache_stage_detectors", "stage detector", "stage detectors"),
}


class PadecacheSpec:
    """Hooks a padecache plugin may implement.  Each returns what the plugin adds; all are optional."""

    @hookspec
    def padecache_predictors(self) -> list[type]:
        """Predictor classes (subclasses of :class:`padecache.Predictor` with ``name`` and ``Config``)."""

    @hookspec
    def padecache_policies(self) -> list[type]:
        """CachePolicy classes."""

    @hookspec
    def padecache_stage_detectors(self) -> list[type]:
        """StageDetector classes."""

    @hookspec
    def padecache_presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Named configurations: ``{"my-preset": {"predictor": {...}, "policy": {...}, ...}}``."""

    @hookspec
    def padecache_adapters(self) -> list[Any]:
        """Adapters (:class:`padecache.adapters.Adapter`) telling the engine where to hook a model family."""


@attrs.frozen
class Entry:
    """One registered component."""

    kind: str
    name: str
    cls: type
    plugin: str
    version: str

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


_pm: pluggy.PluginManager | None = None
_registry: tuple[tuple, Registry] | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager: built-ins plus every installed ``padecache`` entry point."""
    global _pm
    if _pm is None:
        from . import _builtins

        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(PadecacheSpec)
        pm.register(_builtins, name=PROJECT)
        pm.load_setuptools_entrypoints(PROJECT)
        _pm = pm
    return _pm


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module at run time (tests, notebooks).  Returns its name."""
    pm = get_plugin_manager()
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is already registered or blocked")
    return registered


def unregister_plugin(plugin: object | str) -> None:
    """Remove a plugin registered with :func:`register_plugin` (by object or by name)."""
    pm = get_plugin_manager()
    if isinstance(plugin, str):
        pm.unregister(name=plugin)
    else:
        pm.unregister(plugin)


def _versions(pm: pluggy.PluginManager) -> dict[int, tuple[str, str]]:
    out = {}
    for plugin, dist in pm.list_plugin_distinfo():
        out[id(plugin)] = (dist.project_name, dist.version)
    return out


def _package_version() -> str:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from . import __version__

        return __version__


class Registry:
    """Every registered component, preset and adapter, with the plugin that provided it."""

    def __init__(self, pm: pluggy.PluginManager):
        versions = _versions(pm)
        self.components: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.presets: dict[str, Preset] = {}
        self.adapters: list[tuple[Any, str, str]] = []

        def provenance(impl) -> tuple[str, str]:
            if impl.plugin_name == PROJECT:
                return PROJECT, _package_version()
            if id(impl.plugin) in versions:
                return versions[id(impl.plugin)]
            return impl.plugin_name, str(getattr(impl.plugin, "__version__", "unknown"))

        for kind, (hook_name, human, _) in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                plugin, version = provenance(impl)
                for cls in impl.function() or ():
                    name = getattr(cls, "name", "")
                    if not name or not isinstance(name, str):
                        raise ValueError(f"plugin {plugin!r} registers a {human} class {cls!r} without a `name`")
                    if name in self.components[kind]:
                        other = self.components[kind][name]
                        raise ValueError(
                            f"{human} {name!r} is registered twice: by plugin {other.plugin!r} ({other.version}) "
                            f"and by plugin {plugin!r} ({version}); uninstall or unregister one of them"
                        )
                    self.components[kind][name] = Entry(kind, name, cls, plugin, version)
        for impl in pm.hook.padecache_presets.get_hookimpls():
            plugin, version = provenance(impl)
            for name, cfg in (impl.function() or {}).items():
                if name in self.presets:
                    other = self.presets[name]
                    raise ValueError(
                        f"preset {name!r} is registered twice: by plugin {other.plugin!r} ({other.version}) "
                        f"and by plugin {plugin!r} ({version}); uninstall or unregister one of them"
                    )
                cfg = dict(cfg)
                summary = str(cfg.pop("summary", ""))
                self.presets[name] = Preset(name, cfg, plugin, version, summary)
        for impl in pm.hook.padecache_adapters.get_hookimpls():
            plugin, version = provenance(impl)
            for adapter in impl.function() or ():
                self.adapters.append((adapter, plugin, version))

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; ``ValueError`` listing the registered names if there is none."""
        if kind not in self.components:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        try:
            return self.components[kind][name]
        except (KeyError, TypeError):
            _, human, plural = KINDS[kind]
            names = self.names(kind)
            raise ValueError(
                f"unknown {human} {name!r}{suggest(str(name), names)}; registered {plural}: {', '.join(names)}"
            ) from None

    def create(self, kind: str, name: str, options=None):
        """Instantiate component ``name`` with ``options`` (its ``Config`` instance, default options if None)."""
        entry = self.get(kind, name)
        return entry.cls(entry.cls.Config() if options is None else options)

    def adapter_for(self, model) -> tuple[Any, str]:
        """The adapter that supports ``model``; ``TypeError`` naming the supported classes otherwise."""
        for adapter, plugin, _ in self.adapters:
            if adapter.supports(model):
                return adapter, plugin
        supported = sorted({cls for adapter, _, _ in self.adapters for cls in adapter.model_classes})
        raise TypeError(
            f"padecache does not support {type(model).__name__}; supported transformer classes: "
            f"{', '.join(supported)}. Pass a pipeline whose `.transformer` is one of them, or register an adapter."
        )

    def rows(self) -> list[dict[str, str]]:
        """Flat table for ``padecache list``."""
        rows = []
        for kind, entries in self.components.items():
            for name in sorted(entries):
                e = entries[name]
                rows.append({"kind": kind, "name": name, "plugin": e.plugin, "version": e.version, "summary": e.summary})
        for name in sorted(self.presets):
            p = self.presets[name]
            rows.append({"kind": "preset", "name": name, "plugin": p.plugin, "version": p.version, "summary": p.summary})
        for adapter, plugin, version in self.adapters:
            rows.append(
                {"kind": "adapter", "name": adapter.name, "plugin": plugin, "version": version, "summary": ", ".join(adapter.model_classes)}
            )
        return rows


def get_registry() -> Registry:
    """The registry for the plugins registered right now (rebuilt when plugins change)."""
    global _registry
    pm = get_plugin_manager()
    key = tuple((name, id(plugin)) for name, plugin in pm.list_name_plugin())
    if _registry is None or _registry[0] != key:
        _registry = (key, Registry(pm))
    return _registry[1]
