"""Adapters a third-party author writes for a model diffusers does not have: blocks that return a dict, a list, or a
statistic beside the stream, and a subclass with an adapter of its own.  Each case came from an author's probe
(a correct adapter refused or mis-run); the oracle is the unhooked model, and the kit's own checks."""

from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from torch import nn

import padecache
from padecache.adapters import Adapter, BlockIO, TimeSpec
from padecache.testing import AdapterContract


class Mix(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, x):
        return self.lin(torch.softmax(x @ x.transpose(1, 2) / 8, -1) @ x)


class DictBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mix = Mix(d)

    def forward(self, x, temb):
        return {"x": x + self.mix(x + temb[:, None])}


class ListBlock(DictBlock):
    def forward(self, x, temb):
        return [x + self.mix(x + temb[:, None])]


class StatBlock(DictBlock):
    def forward(self, x, temb):
        y = self.mix(x + temb[:, None])
        return x + y, y.detach().abs().mean()  # the stream, and a statistic the model ignores


class Net(nn.Module):
    """Three blocks of ``kind``; the model reads the stream back as that block returns it."""

    def __init__(self, block: type, d: int = 8):
        super().__init__()
        self.t = nn.Linear(1, d)
        self.blocks = nn.ModuleList([block(d) for _ in range(3)])
        self.head = nn.Linear(d, d)

    def forward(self, x, timestep):
        temb = self.t(timestep.float()[:, None] / 1000)
        for block in self.blocks:
            out = block(x, temb)
            x = out["x"] if isinstance(out, dict) else out[0]
        return self.head(x)


class DictNet(Net):
    def __init__(self):
        super().__init__(DictBlock)


class ListNet(Net):
    def __init__(self):
        super().__init__(ListBlock)


class StatNet(Net):
    def __init__(self):
        super().__init__(StatBlock)


ADAPTERS = {
    "DictNet": Adapter(name="author-dictnet", model_classes=("DictNet",), block_lists=("blocks",), head="head",
                       io={"blocks": BlockIO(hidden="x")}, time=TimeSpec("timestep"),
                       passthrough={"blocks": lambda a, k: {"x": a[0] if a else k["x"]}}),
    "ListNet": Adapter(name="author-listnet", model_classes=("ListNet",), block_lists=("blocks",), head="head",
                       io={"blocks": BlockIO(hidden="x")}, time=TimeSpec("timestep"),
                       passthrough={"blocks": lambda a, k: [a[0] if a else k["x"]]}),
    "StatNet": Adapter(name="author-statnet", model_classes=("StatNet",), block_lists=("blocks",), head="head",
                       io={"blocks": BlockIO(hidden="x", hidden_index=0, size=2)}, time=TimeSpec("timestep")),
}


@pytest.fixture(scope="module")
def adapters():
    class Plugin:
        @padecache.hookimpl
        def padecache_adapters(self):
            base = Adapter(name="author-base", model_classes=("Net",), block_lists=("blocks",), head="head",
                           io={"blocks": BlockIO(hidden="x")})
            return [base, *ADAPTERS.values()]  # the base class's first: order must not decide

    plugin = Plugin()
    padecache.register_plugin(plugin, name="author-adapters")
    yield
    padecache.unregister_plugin(plugin)


def _loop(model, scheduler, steps, batch=2):
    scheduler.set_timesteps(steps)
    x = torch.randn(batch, 6, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(model(x, t.expand(batch)), t, x).prev_sample
    return x.flatten(1)


@pytest.mark.parametrize("model_cls", [DictNet, ListNet, StatNet])
def test_blocks_returning_a_dict_a_list_or_a_statistic_pass_the_kit(adapters, model_cls):
    """Rows that disagree once dropped the skipped rows of a dict or list output (the head then saw one row), and a
    block returning a real value in ``BlockIO(size=...)``'s extra entry was refused even with caching off."""
    torch.manual_seed(0)
    model = model_cls().eval()

    class Kit(AdapterContract):
        adapter = ADAPTERS[model_cls.__name__].name

        def make_model(self):
            return model

        def make_scheduler(self):
            return FlowMatchEulerDiscreteScheduler()

        def run(self, model, scheduler, steps, batch=2):
            return _loop(model, scheduler, steps, batch)

    kit = Kit()
    kit.test_caching_off_is_exact_forecasting_works_and_remove_restores()
    kit.test_a_perfect_forecast_reproduces_full_compute()
    kit.test_rows_that_disagree_run_apart_exactly()


def test_a_subclass_s_own_adapter_wins_over_its_base_class_s(adapters):
    """``StatNet`` is a ``Net``: the adapter naming ``StatNet`` is the more specific one, whatever the order."""
    adapter, plugin = padecache.get_registry().adapter_for(StatNet())
    assert adapter.name == "author-statnet" and plugin == "author-adapters"

    class Other(Net):
        def __init__(self):
            super().__init__(ListBlock)

    assert padecache.get_registry().adapter_for(Other())[0].name == "author-base"  # only the base class is named
