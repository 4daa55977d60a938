"""What a third-party author writes that is correct must be taken, and what is wrong must be said where it is written.

Each case here came from an author's probe: a correct component the library refused or misread, or a mistake it
reported late, far from its cause, or under another plugin's name.
"""

from __future__ import annotations

import dataclasses
import warnings

import attrs
import pytest
import torch

import padecache
import tiny
from padecache import CachePolicy, ConfigError, Predictor, option
from padecache.interfaces import StepContext
from padecache.registry import Contribution, Registry
from padecache.testing import PredictorContract

STEPS = 8


@pytest.fixture
def register():
    added = []

    def add(name, **hooks):
        plugin = type(f"Plugin_{name}", (), {k: staticmethod(padecache.hookimpl(v)) for k, v in hooks.items()})()
        padecache.register_plugin(plugin, name=name)
        added.append(plugin)
        return plugin

    yield add
    for plugin in added:
        padecache.unregister_plugin(plugin)


class Last(Predictor):
    """Reuse of the last computed residual, its parameters named as the author likes (the engine passes them by
    position)."""

    name = "author-last"

    def __init__(self, config=None):
        super().__init__(config)
        self.last = None

    def update(self, ctx, r, x, was_computed):
        if was_computed:
            self.last = r

    def predict(self, ctx, x):
        return self.last

    def reset(self):
        self.last = None


def test_a_malformed_bench_family_breaks_its_own_plugin_only(register):
    register("author-badfam", padecache_bench_families=lambda: [{"name": "mine", "predictor": {"name": "noop"},
                                                                 "schedule": "evn"}])
    registry = padecache.get_registry()
    broken = {b.plugin: b.error for b in registry.broken}
    assert "unknown schedule 'evn'" in broken["author-badfam"] and "invalid bench family" in broken["author-badfam"]
    assert padecache.load_config("taylorseer-O1").predictor.name == "taylor"  # every other family still resolves


def test_a_stricter_ready_that_forecast_before_is_not_warned_about(register, dit_pipe):
    class NotLast(Last):
        """Forecasts, but never the last step (a stricter ready, which the interface allows)."""

        name = "author-not-last"

        def ready(self, ctx):
            return ctx.history >= 1 and ctx.step < ctx.num_steps - 1

    register("author-strict", padecache_predictors=lambda: [NotLast])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with tiny.applied(dit_pipe, {"predictor": "author-not-last", "policy": {"name": "fixed", "interval": 3}}):
            tiny.run_dit(dit_pipe, steps=STEPS)
            stats = padecache.stats(dit_pipe)
    assert stats.full_passes < STEPS and stats.mask()[-1]  # it forecast, and the last step was computed


class TwoFirst(Last):
    """Ready from its second computed residual although it declares one: stricter, and allowed."""

    name = "author-two-first"

    def ready(self, ctx):
        return ctx.history >= 2


def test_the_kit_takes_a_ready_stricter_than_min_history(register):
    register("author-two", padecache_predictors=lambda: [TwoFirst])

    class Kit(PredictorContract):
        component = "author-two-first"

    Kit().test_ready_follows_the_history_the_engine_counts({})

    class Never(Last):
        name = "author-never"

        def ready(self, ctx):
            return False

    register("author-never", padecache_predictors=lambda: [Never])

    class KitNever(PredictorContract):
        component = "author-never"

    with pytest.raises(AssertionError, match=r"not ready after 3 computed residuals \(its min_history is 1\)"):
        KitNever().test_ready_follows_the_history_the_engine_counts({})


def test_parameters_are_passed_by_position(register, dit_pipe):
    register("author-names", padecache_predictors=lambda: [Last])
    with tiny.applied(dit_pipe, {"predictor": "author-last", "policy": {"name": "fixed", "interval": 2}}):
        tiny.run_dit(dit_pipe, steps=STEPS)
        assert padecache.stats(dit_pipe).full_passes < STEPS


def test_apply_runs_a_schedule_function_s_first_setting_within_the_budget(register):
    def strides(steps, target):  # the densest first: every step, then every 2nd, ... (over budget at first)
        return [{"name": "fixed", "interval": n, "warmup": 1} for n in range(1, 8)]

    register("author-strides", padecache_bench_families=lambda: [{"name": "author-strides", "predictor": {"name": "noop"},
                                                                  "schedule": strides}])
    cfg = padecache.load_config("author-strides")
    mask = padecache.get_registry().create("policy", cfg.policy.name, cfg.policy.options).mask(20)
    assert sum(mask) <= 8 and cfg.policy.options.interval == 3  # the first stride whose plan fits 20 / 2.5 passes


def test_a_preset_never_hides_another_plugin_s_method_nor_padecache_s_default(register):
    register("author-presets", padecache_presets=lambda: {
        "taylor": {"predictor": {"name": "linear"}},  # another plugin's predictor's name
        "default": {"predictor": {"name": "noop"}, "policy": {"name": "always"}}})
    with pytest.raises(ConfigError, match=r"'taylor' is plugin 'author-presets''s preset and plugin 'padecache''s method; "
                                          r"say which one you mean: 'author-presets:taylor' \(the preset\) or 'padecache:taylor'"):
        padecache.load_config("taylor")
    assert padecache.load_config("author-presets:taylor").predictor.name == "linear"
    assert padecache.load_config("padecache:taylor").predictor.name == "padecache:taylor"  # the built-in predictor
    assert padecache.load_config(None) == padecache.load_config("padecache:default")  # apply(pipe) with no config
    assert padecache.load_config(None).policy.name == "budget"


def test_select_cuts_the_rows_of_state_held_in_a_dataclass():
    @dataclasses.dataclass
    class History:
        residuals: list
        scale: torch.Tensor
        steps: int = 0

    class Held(Last):
        name = "author-held"

        def __init__(self, config=None):
            super().__init__(config)
            self.state = History([torch.arange(12.0).view(3, 4)], torch.ones(3), 2)

    cut = Held().select(torch.tensor([0, 2]), 3)
    assert cut.state.residuals[0].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]] and cut.state.scale.shape == (2,)
    assert cut.state.steps == 2


def test_an_option_whose_default_breaks_its_bounds_fails_where_it_is_written():
    with pytest.raises(TypeError, match=r"option\(5, 'int'\): the default must be <= 3, got 5"):
        option(5, "int", le=3)
    with pytest.raises(TypeError, match=r"the default must be one of \['a', 'b'\], got 'c'"):
        option("c", "str", choices=("a", "b"))
    assert option(None, "int", ge=1) is not None  # None: an option to be given, checked when it is


def test_a_missing_option_and_the_component_s_own_validator_are_config_errors(register):
    class Picky(CachePolicy):
        name = "author-picky"

        @attrs.frozen
        class Config:
            k: int = attrs.field()  # no default: must be given
            weights: tuple = attrs.field(default=(0.5, 0.5))

            @weights.validator
            def _two(self, attribute, value):
                if len(value) != 2:
                    raise ValueError(f"give two numbers, got {len(value)}")

        def should_compute(self, ctx: StepContext):
            return True

    register("author-picky", padecache_policies=lambda: [Picky])
    with pytest.raises(ConfigError, match=r"option 'k' has no default: give it"):
        padecache.load_config({"policy": {"name": "author-picky"}})
    with pytest.raises(ConfigError, match=r"\(author-picky\).*give two numbers, got 1|author-picky.*give two numbers, got 1"):
        padecache.load_config({"policy": {"name": "author-picky", "k": 2, "weights": [0.5]}})
    assert padecache.load_config({"policy": {"name": "author-picky", "k": 2}}).policy.options.k == 2


def test_the_registry_lists_a_correct_plugin_beside_a_broken_one():
    class Fine(Last):
        name = "author-fine"

    registry = Registry([Contribution("good", "1.0", {"padecache_predictors": [Fine]}),
                         Contribution("bad", "1.0", {"padecache_bench_families": [{"name": "x", "schedule": "nope"}]})])
    assert [b.plugin for b in registry.broken] == ["bad"] and registry.get("predictor", "author-fine").cls is Fine
