"""Every supported diffusers family, through the adapter contract of ``padecache.testing``, as a third party runs it:
a tiny model of the family in a 20-step loop that calls it as its pipeline does; caching off is exact, the
``tc-pade-fast`` preset forecasts, ``remove`` restores."""

from __future__ import annotations

import pytest

import padecache
from padecache.adapters.families import FAMILIES, UNSUPPORTED
from padecache.testing import AdapterContract
from padecache.testing.families import family_names, tiny_transformer

TESTED = [name for name in family_names() if name in {a.name for a in FAMILIES}]


for _name in TESTED:
    globals()[f"TestFamily_{_name}"] = type(
        f"TestFamily_{_name}", (AdapterContract,), {"family": _name, "adapter": _name, "forecast_config": "tc-pade-fast"}
    )


def test_every_family_of_the_survey_has_an_adapter_or_a_reason():
    covered = {a.name for a in FAMILIES}
    for name in family_names():
        if name not in covered:
            cls = type(tiny_transformer(name)).__name__
            assert cls in UNSUPPORTED, f"{name} ({cls}) has neither an adapter nor a reason in UNSUPPORTED"
    assert len(covered) >= 28


@pytest.mark.parametrize("name", sorted(set(family_names()) - set(TESTED)))
def test_unsupported_families_get_a_clear_error(name):
    model = tiny_transformer(name)
    try:
        adapter, _ = padecache.get_registry().adapter_for(model)
    except TypeError as err:
        assert type(model).__name__ in str(err) and "padecache_adapters" in str(err)
        return
    assert adapter.name.startswith("generic")  # the generic adapter claims it: it must then fail loudly, not silently
