"""Finding reference models: the ones plugins registered (``padecache_reference_models``), by name or the default.

Every lookup says what is missing when no model can be found: which reference plugin is broken (with its error),
or what to install.  The descriptors themselves are :class:`padecache.reference_models.ReferenceModel`.
"""

from __future__ import annotations

from typing import Any

from .plugins import get_registry
from .reference_models import INSTALL, MissingModel, ReferenceModel

__all__ = ["registered_models", "find_model", "default_model", "missing_reason"]


def registered_models(registry: Any = None) -> list[tuple[ReferenceModel, str, str]]:
    """Every registered reference model: ``(descriptor, plugin, version)``, in registration order."""
    registry = get_registry() if registry is None else registry
    return list(getattr(registry, "reference_models", ()))


def missing_reason(registry: Any = None) -> str:
    """Why no reference model is available: which reference plugin is broken, or what to install."""
    registry = get_registry() if registry is None else registry
    broken = [b for b in registry.broken if "reference" in f"{b.plugin} {b.package}".lower()]
    if broken:
        b = broken[0]
        return (f"the reference plugin {b.plugin!r} ({b.package or b.plugin} {b.version}) is installed but broken: {b.error} "
                f"(`padecache list` shows every broken plugin; reinstall it: pip install -e plugins/reference)")
    if registry.broken:  # a broken plugin may be the one that would have provided them
        names = ", ".join(f"{b.plugin!r}" for b in registry.broken)
        return f"{INSTALL}; the broken plugins {names} may be the one you expect (`padecache list` shows their errors)"
    return INSTALL


def find_model(name: str | None = None, registry: Any = None) -> ReferenceModel:
    """The reference model ``name`` (``None``: :func:`default_model`); :class:`MissingModel` naming those there are."""
    if name is None:
        return default_model(registry)
    models = registered_models(registry)
    if not models:
        raise MissingModel(f"no reference model {name!r}: no plugin provides reference models; {missing_reason(registry)}")
    found = [m for m, _, _ in models if m.name == name]
    if not found:
        from .options import suggest

        names = [m.name for m, _, _ in models]
        raise MissingModel(f"unknown reference model {name!r}{suggest(name, names)}; installed: {', '.join(names)}")
    return found[0]


def default_model(registry: Any = None) -> ReferenceModel:
    """The model ``padecache bench`` runs without ``--model``: the one marked ``default``, else the first registered."""
    models = [m for m, _, _ in registered_models(registry)]
    if not models:
        raise MissingModel(f"no reference model to run: {missing_reason(registry)}")
    return next((m for m in models if m.default), models[0])
