"""The registry is pluggy: a plugin defined here adds a predictor, a policy and a preset without touching the engine."""

from __future__ import annotations

import attrs
import pytest
import torch

import padecache
from padecache import CachePolicy, Predictor, option
from padecache.cli import main


class HalfPredictor(Predictor):
    """Test predictor: half of the last computed residual."""

    name = "half"

    @attrs.frozen
    class Config:
        factor: float = option(0.5, gt=0.0)

    def __init__(self, config=None):
        super().__init__(config)
        self.last = None

    def update(self, ctx, residual, block_input, computed):
        if computed:
            self.last = residual

    def predict(self, ctx, block_input):
        return self.config.factor * self.last

    def reset(self):
        self.last = None

    @property
    def num_computed(self):
        return int(self.last is not None)


class EvenPolicy(CachePolicy):
    """Test policy: compute even steps."""

    name = "even"

    @attrs.frozen
    class Config:
        pass

    def should_compute(self, ctx):
        return ctx.step % 2 == 0

    def mask(self, num_steps):
        return [s % 2 == 0 for s in range(num_steps)]


class TestPlugin:
    __version__ = "9.9"

    @padecache.hookimpl
    def padecache_predictors(self):
        return [HalfPredictor]

    @padecache.hookimpl
    def padecache_policies(self):
        return [EvenPolicy]

    @padecache.hookimpl
    def padecache_presets(self):
        return {"half-even": {"predictor": {"name": "half"}, "policy": {"name": "even"}}}


@pytest.fixture
def plugin():
    obj = TestPlugin()
    padecache.register_plugin(obj, name="test-plugin")
    yield obj
    padecache.unregister_plugin(obj)


def test_plugin_components_are_selectable_from_a_toml_file(plugin, tmp_path, dit_pipe):
    import tiny

    path = tmp_path / "plugin.toml"
    path.write_text('[predictor]\nname = "half"\nfactor = 0.25\n\n[policy]\nname = "even"\n')
    cfg = padecache.load_config(path)
    assert cfg.predictor.options.factor == 0.25
    padecache.apply(dit_pipe, path)
    try:
        tiny.run_dit(dit_pipe, steps=6)
        stats = padecache.stats(dit_pipe)
    finally:
        padecache.remove(dit_pipe)
    assert stats.mask() == [True, False, True, False, True, False]
    assert padecache.load_config("half-even").predictor.name == "half"


def test_list_shows_plugin_and_version(plugin, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "half" in out and "test-plugin 9.9" in out and "half-even" in out
    entry = padecache.get_registry().get("predictor", "half")
    assert (entry.plugin, entry.version) == ("test-plugin", "9.9")


def test_builtins_register_through_the_same_hooks():
    entry = padecache.get_registry().get("predictor", "taylor")
    assert entry.plugin == "padecache"
    import padecache._builtins as builtins

    assert padecache.plugins.get_plugin_manager().get_plugin("padecache") is builtins


def test_duplicate_names_are_an_error_naming_both_plugins(plugin):
    class Clash:
        @padecache.hookimpl
        def padecache_predictors(self):
            return [HalfPredictor]

    clash = Clash()
    padecache.register_plugin(clash, name="clashing-plugin")
    try:
        with pytest.raises(ValueError, match=r"predictor 'half' is registered twice: by plugin 'test-plugin' \(9.9\) and by plugin 'clashing-plugin'"):
            padecache.get_registry()
    finally:
        padecache.unregister_plugin(clash)
    assert padecache.get_registry().get("predictor", "half")


def test_unknown_name_lists_registered_and_suggests():
    with pytest.raises(ValueError, match=r"unknown policy 'fixd' \(did you mean 'fixed'\?\); registered policies: always, budget, fixed, mask"):
        padecache.get_registry().get("policy", "fixd")


def test_unregistered_plugin_disappears(plugin):
    padecache.unregister_plugin(plugin)
    with pytest.raises(ValueError, match="unknown predictor 'half'"):
        padecache.get_registry().get("predictor", "half")
    padecache.register_plugin(plugin, name="test-plugin")  # the fixture unregisters it again
