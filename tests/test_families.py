"""Every supported diffusers family, through the adapter contract of ``padecache.testing``, as a third party runs it:
a tiny model of the family in a 20-step loop that calls it as its pipeline does; caching off is exact, the
``tc-pade-fast`` preset forecasts, a forecast equal to the true residual reproduces full compute, ``remove`` restores.
And every transformer of diffusers is either claimed by an adapter or listed in ``UNSUPPORTED`` with its reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import padecache
from padecache.adapters.families import FAMILIES, UNSUPPORTED
from padecache.testing import AdapterContract
from padecache.testing.families import family_names

TESTED = [name for name in family_names() if name in {a.name for a in FAMILIES}]


for _name in TESTED:
    globals()[f"TestFamily_{_name}"] = type(
        f"TestFamily_{_name}", (AdapterContract,), {"family": _name, "adapter": _name, "forecast_config": "tc-pade-fast"}
    )


def _diffusers_transformers() -> dict[str, type]:
    """Every ``ModelMixin`` class defined in ``diffusers.models.transformers`` (75 in diffusers 0.42.1)."""
    import diffusers.models.transformers as package
    from diffusers import ModelMixin

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and issubclass(cls, ModelMixin) and cls.__module__ == module.__name__:
                found[name] = cls
    return found


def test_every_diffusers_transformer_is_claimed_or_has_a_reason():
    classes = _diffusers_transformers()
    claimed = {c for a in FAMILIES for c in a.model_classes}
    assert claimed <= set(classes), f"adapters name classes diffusers does not have: {claimed - set(classes)}"
    assert not claimed & set(UNSUPPORTED), f"claimed and listed as unsupported: {claimed & set(UNSUPPORTED)}"
    missing = set(classes) - claimed - set(UNSUPPORTED)
    assert not missing, f"neither claimed by an adapter nor listed in UNSUPPORTED with a reason: {sorted(missing)}"
    assert all(reason.strip() for reason in UNSUPPORTED.values())
    assert len(claimed) >= 60, f"{len(claimed)} of {len(classes)} diffusers transformers claimed"


def test_every_adapter_is_tested_through_its_table_row():
    assert {a.name for a in FAMILIES} == set(TESTED), {a.name for a in FAMILIES} ^ set(TESTED)


def test_an_unsupported_model_gets_a_clear_error():
    """A model no adapter claims and the generic adapter cannot read: a TypeError naming it and the hook to use."""
    import torch.nn as nn
    from diffusers import ModelMixin

    class MyDenoiser(ModelMixin):
        def __init__(self):
            super().__init__()
            self.stack = nn.Sequential(nn.Linear(4, 4))

        def forward(self, hidden_states, timestep):
            return self.stack(hidden_states)

    with pytest.raises(TypeError, match=r"(?s)MyDenoiser.*padecache_adapters"):
        padecache.apply(MyDenoiser(), "none")


def test_the_readme_lists_what_is_not_claimed_and_why():
    from pathlib import Path

    from padecache.adapters.families import unsupported_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert unsupported_markdown() in readme, "regenerate the README's list: adapters.families.unsupported_markdown()"
    claimed = len({c for a in FAMILIES for c in a.model_classes})
    assert f"for any of {claimed} diffusers transformer families" in readme
