"""The pluggy glue: hook specifications, the plugin manager, and isolated loading of entry points.

A plugin is any object or module with functions marked ``@padecache.hookimpl`` named after the hooks of
:class:`PadecacheSpec`.  Installed packages expose one through the entry-point group ``padecache``::

    [project.entry-points.padecache]
    myplugin = "my_package.plugin"

The built-in components register through the very same hooks (:mod:`padecache._builtins`).  Loading is
isolated: a plugin that fails to import, fails pluggy's validation, or whose hook raises is skipped and
listed as broken (``padecache list`` shows its error); everything else keeps working.  Components are
indexed by :mod:`padecache.registry`.

In tests or notebooks, :func:`register_plugin` / :func:`unregister_plugin` add a plugin object directly.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any

import pluggy

from .markers import hookimpl, hookspec
from .registry import CORE, KINDS, Broken, Contribution, Entry, Preset, Registry

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

PROJECT = CORE

#: preset used by ``padecache.apply(pipe)`` when no configuration is given
DEFAULT_PRESET = "default"

HOOKS = (
    "padecache_predictors",
    "padecache_policies",
    "padecache_stage_detectors",
    "padecache_presets",
    "padecache_adapters",
    "padecache_bench_families",
    "padecache_reference_models",
)


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

    @hookspec
    def padecache_bench_families(self) -> list[Any]:
        """Benchmark sweep families (:mod:`padecache.bench`) of the plugin's methods."""

    @hookspec
    def padecache_reference_models(self) -> list[Any]:
        """Reference models (:class:`padecache.reference_models.ReferenceModel`, or dicts of its fields) that
        ``padecache bench``, ``generate`` and ``train-reference`` can run."""


_pm: pluggy.PluginManager | None = None
_load_errors: list[Broken] = []
_registry: tuple[tuple, Registry] | None = None
_dists: dict[int, tuple[object, str, str]] = {}  # id(plugin) -> (plugin, distribution, version): the object is kept, so its id is never reused


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every installed ``padecache`` entry point, each on its own: a failure breaks only that plugin."""
    for ep in importlib.metadata.entry_points(group=PROJECT):
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else "unknown"
        label = dist.metadata["Name"] if dist is not None else ep.value
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as err:  # noqa: BLE001 - shown by `padecache list`, never fatal
            _load_errors.append(Broken(ep.name, version, f"{type(err).__name__} while loading {label} ({ep.value}): {err}", label))
            continue
        _dists[id(plugin)] = (plugin, label, version)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager: built-ins plus every installed ``padecache`` entry point."""
    global _pm
    if _pm is None:
        from . import _builtins

        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(PadecacheSpec)
        pm.register(_builtins, name=PROJECT)
        _load_entry_points(pm)
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


def _package_version() -> str:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from . import __version__

        return __version__


def _contributions(pm: pluggy.PluginManager) -> tuple[list[Contribution], list[Broken]]:
    """Call each plugin's hooks separately, so one plugin's exception cannot hide the others."""
    out, broken = [], list(_load_errors)
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        if name == PROJECT:
            package, version = PROJECT, _package_version()
        else:
            _, package, version = _dists.get(id(plugin), (plugin, name, str(getattr(plugin, "__version__", "unknown"))))
        hooks: dict[str, Any] = {}
        try:
            for hook_name in HOOKS:
                for impl in getattr(pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        hooks[hook_name] = impl.function()
        except Exception as err:  # noqa: BLE001
            broken.append(Broken(name, version, f"{type(err).__name__} in {hook_name}: {err}", package))
            continue
        out.append(Contribution(name, version, hooks, package))
    return out, broken


def _same_plugins(old: tuple, new: tuple) -> bool:
    return len(old) == len(new) and all(a[0] == b[0] and a[1] is b[1] for a, b in zip(old, new))


def get_registry() -> Registry:
    """The registry for the plugins registered right now (rebuilt when plugins change)."""
    global _registry
    pm = get_plugin_manager()
    # The key holds the plugin objects themselves, compared by identity: an id() alone can be reused by a new
    # plugin object once an unregistered one is freed, and the stale registry would then be served for it.
    key = tuple(pm.list_name_plugin())
    if _registry is None or not _same_plugins(_registry[0], key):
        contributions, broken = _contributions(pm)
        _registry = (key, Registry(contributions, broken))
    return _registry[1]
