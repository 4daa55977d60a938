"""Which methods a benchmark runs, derived from the registered families (no method is named here).

* :func:`key_methods`: the headline comparison for a given "ours": ours, the published form of ours' method
  (its group's families marked ``published``), TaylorSeer (diffusers' implementation where it exists), and reuse;
* :func:`all_methods`: every family of every plugin, every peer, and every preset that caches.
"""

from __future__ import annotations

from .families import REUSE, TAYLORSEER, find_family, registered_families
from .peers import PEER_NAMES

__all__ = ["key_methods", "all_methods", "method_for"]


def method_for(label: str) -> str:
    """The method name that runs ``label``: a peer's setting label (``diffusers-taylorseer-O1``) runs its peer."""
    return next((p for p in PEER_NAMES if label.startswith(p)), label)


def _diffusers_taylorseer() -> bool:
    try:
        from diffusers.hooks import TaylorSeerCacheConfig  # noqa: F401
    except ImportError:
        return False
    return True


def key_methods(ours: str, *, peers: bool = True, quick: bool = False) -> list[str]:
    """The methods of the headline for ``ours``.

    TaylorSeer is diffusers' own implementation (the peer, orders 1 and 2) when ``peers`` and diffusers has it,
    else TaylorSeer's families here; ``quick`` keeps one TaylorSeer family (its first-order one) and no peers.
    The full sweep (:func:`all_methods`) runs both.
    """
    families = registered_families()
    found = find_family(ours, families)
    group = found[0].group if found is not None else ours
    published = [f.name for f, _, _ in families if f.published and f.group == group and f.name != ours]
    taylorseer = [f.name for f, _, _ in families if f.group == TAYLORSEER and f.name != ours]
    reuse = [f.name for f, _, _ in families if f.group == REUSE and f.name != ours]
    if quick:
        taylorseer = taylorseer[:1]
    elif peers and _diffusers_taylorseer():
        taylorseer = ["diffusers-taylorseer"]
    names = [method_for(ours), *taylorseer, *reuse, *published]
    return list(dict.fromkeys(names))


def all_methods(*, peers: bool = True) -> list[str]:
    """Every registered family, every peer, and every preset that caches (its policy is not ``always``)."""
    from ..plugins import get_registry

    families = registered_families()
    names = [f.name if sum(g.name == f.name for g, _, _ in families) == 1 else f"{p}:{f.name}" for f, p, _ in families]
    registry = get_registry()
    for preset in registry.preset_names():
        policy = registry.preset(preset).config.get("policy", {})
        policy = policy if isinstance(policy, str) else policy.get("name", "")
        if policy != "always" and preset not in names:
            names.append(preset)
    if peers:
        names += list(PEER_NAMES)
    return list(dict.fromkeys(names))
