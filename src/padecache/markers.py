"""The pluggy markers of the ``padecache`` project: ``hookimpl`` marks a plugin's hooks, ``hookspec`` the
specification (:mod:`padecache.plugins`).  A module of its own at the bottom, so that the built-ins register
through the same marker as any plugin without importing the plugin manager."""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookspec", "hookimpl"]

#: the pluggy project name, and the entry-point group plugins register under
PROJECT = "padecache"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
