"""The registry is pluggy: a plugin defined here adds a predictor, a policy and a preset without touching the engine."""

from __future__ import annotations

import attrs
import pytest

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


def test_a_clash_breaks_only_the_clashing_name_and_says_which_to_use(plugin, dit_pipe):
    class Clash:
        __version__ = "1.2"

        @padecache.hookimpl
        def padecache_predictors(self):
            return [HalfPredictor]

    clash = Clash()
    padecache.register_plugin(clash, name="clashing-plugin")
    try:
        registry = padecache.get_registry()
        with pytest.raises(ValueError, match=r"predictor 'half' is registered by plugin 'test-plugin' \(9.9\) and by plugin "
                                              r"'clashing-plugin' \(1.2\); say which one you mean: 'test-plugin:half', 'clashing-plugin:half'"):
            registry.get("predictor", "half")
        with pytest.raises(padecache.ConfigError, match="say which one you mean"):
            padecache.load_config({"predictor": {"name": "half"}})
        # the qualified names work, and so does the preset of the plugin that owns the name
        assert registry.get("predictor", "clashing-plugin:half").plugin == "clashing-plugin"
        cfg = padecache.load_config({"predictor": {"name": "test-plugin:half", "factor": 0.3}})
        assert cfg.predictor.name == "test-plugin:half" and padecache.CacheConfig.from_dict(cfg.to_dict()) == cfg
        assert padecache.load_config("half-even").predictor.name == "test-plugin:half"
        assert padecache.load_config("none").predictor.name == "noop"  # everything else is untouched
    finally:
        padecache.unregister_plugin(clash)
    assert padecache.get_registry().get("predictor", "half").plugin == "test-plugin"


def test_a_plugin_that_clashes_with_a_builtin_leaves_the_builtin_presets_working():
    class Taylor(HalfPredictor):
        name = "taylor"

    class Shadow:
        @padecache.hookimpl
        def padecache_predictors(self):
            return [Taylor]

    shadow = Shadow()
    padecache.register_plugin(shadow, name="shadow")
    try:
        assert padecache.load_config("default").predictor.name == "padecache:taylor"
        with pytest.raises(ValueError, match="'padecache:taylor', 'shadow:taylor'"):
            padecache.load_config({"predictor": "taylor"})
    finally:
        padecache.unregister_plugin(shadow)


def test_a_plugin_that_reuses_a_builtins_name_leaves_other_plugins_presets_working():
    """tc-pade-fast (the TC-Padé plugin's preset) names the built-in `budget` policy and the forecasters' and input-aware
    presets the built-in `noop`: a third plugin registering either name must not break them (it did: the preset's
    own plugin has no `budget`, so the clash was an error no user could fix)."""
    from padecache.policies import FixedPolicy

    class Budget(FixedPolicy):
        name = "budget"

    class Noop(HalfPredictor):
        name = "noop"

    class Shadow:
        @padecache.hookimpl
        def padecache_policies(self):
            return [Budget]

        @padecache.hookimpl
        def padecache_predictors(self):
            return [Noop]

    shadow = Shadow()
    padecache.register_plugin(shadow, name="shadow")
    try:
        cfg = padecache.load_config("tc-pade-fast")
        assert cfg.policy.name == "padecache:budget" and cfg.predictor.name == "tc-pade"
        assert padecache.load_config("teacache").predictor.name == "padecache:noop"
        with pytest.raises(ValueError, match="'padecache:budget', 'shadow:budget'"):  # a bare name asked for is still refused
            padecache.load_config({"policy": "budget"})
    finally:
        padecache.unregister_plugin(shadow)


@pytest.mark.parametrize("defect", ["raises", "no-name", "abstract", "not-a-predictor", "bad-config", "bad-presets"])
def test_a_broken_plugin_is_skipped_and_listed_with_its_error(defect, capsys):
    class Abstract(Predictor):
        name = "abstract"

    class NoName(HalfPredictor):
        name = ""

    class BadConfig(HalfPredictor):
        name = "bad-config"
        Config = dict

    class Broken:
        @padecache.hookimpl
        def padecache_predictors(self):
            if defect == "raises":
                raise RuntimeError("boom")
            return {"no-name": [NoName], "abstract": [Abstract], "not-a-predictor": [int], "bad-config": [BadConfig]}.get(defect, [HalfPredictor])

        @padecache.hookimpl
        def padecache_presets(self):
            return ["not", "a", "dict"] if defect == "bad-presets" else {}

    broken = Broken()
    padecache.register_plugin(broken, name="broken-plugin")
    try:
        registry = padecache.get_registry()
        assert [b.plugin for b in registry.broken] == ["broken-plugin"]
        reason = {"raises": "RuntimeError in padecache_predictors: boom", "no-name": "needs a `name`",
                  "abstract": "does not implement predict, reset, update", "not-a-predictor": "not a subclass of padecache.Predictor",
                  "bad-config": "`Config` must be an attrs class", "bad-presets": "padecache_presets must return a dict"}[defect]
        assert reason in registry.broken[0].error
        assert padecache.load_config("default").predictor.name == "taylor"  # the rest works
        with pytest.raises(ValueError, match=r"unknown predictor 'half'.*broken plugins, whose components are missing: broken-plugin"):
            registry.get("predictor", "half")
        assert main(["list"]) == 0
        out = capsys.readouterr().out
        assert "broken-plugin" in out and reason.split("`")[0] in out
    finally:
        padecache.unregister_plugin(broken)


def test_a_new_plugin_object_at_a_freed_plugins_address_gets_its_own_registry(monkeypatch):
    """The registry cache once keyed plugins by id(): a new plugin object that CPython placed at the address of a
    freed one (same name) was served the old plugin's registry.  Force the address clash with a fake id."""
    import padecache.plugins as plugins

    class Gives:
        def __init__(self, cls):
            self.cls = cls

        @padecache.hookimpl
        def padecache_predictors(self):
            return [self.cls]

    class Other(HalfPredictor):
        name = "other-half"

    # pretend every plugin object sits at one address, as a new object can sit where a freed one did:
    # a cache key made of ids cannot tell the two plugins below apart
    monkeypatch.setattr(plugins, "id", lambda obj: 0, raising=False)
    first = Gives(HalfPredictor)
    padecache.register_plugin(first, name="same-name")
    try:
        assert padecache.get_registry().get("predictor", "half").cls is HalfPredictor
    finally:
        padecache.unregister_plugin(first)
    second = Gives(Other)
    padecache.register_plugin(second, name="same-name")
    try:
        registry = padecache.get_registry()
        assert registry.get("predictor", "other-half").cls is Other
        with pytest.raises(ValueError, match="unknown predictor 'half'"):
            registry.get("predictor", "half")
    finally:
        padecache.unregister_plugin(second)


def test_a_plugin_that_fails_to_import_is_listed_not_fatal(monkeypatch):
    import importlib.metadata as md

    import padecache.plugins as plugins

    class FakeDist:
        version = "0.0.1"
        metadata = {"Name": "padecache-broken"}

    ep = md.EntryPoint(name="broken-ep", value="padecache_no_such_module.plugin", group="padecache")
    ep = ep._for(FakeDist()) if hasattr(ep, "_for") else ep
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: [ep])
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_registry", None)
    monkeypatch.setattr(plugins, "_load_errors", [])
    registry = plugins.get_registry()
    assert [b.plugin for b in registry.broken] == ["broken-ep"]
    assert "ModuleNotFoundError while loading" in registry.broken[0].error
    assert padecache.load_config("none").policy.name == "always"


def test_unknown_name_lists_registered_and_suggests():
    with pytest.raises(ValueError, match=r"unknown policy 'fixd' \(did you mean 'fixed'\?\); registered policies: (.*, )?always, budget, (.*, )?fixed, "):
        padecache.get_registry().get("policy", "fixd")


def test_unregistered_plugin_disappears(plugin):
    padecache.unregister_plugin(plugin)
    with pytest.raises(ValueError, match="unknown predictor 'half'"):
        padecache.get_registry().get("predictor", "half")
    padecache.register_plugin(plugin, name="test-plugin")  # the fixture unregisters it again


def test_a_component_declaring_unknown_inputs_is_listed_as_broken():
    from padecache.registry import Contribution, Registry

    class Peeks(padecache.CachePolicy):
        """Reads something the engine does not give."""

        name = "peeks"
        inputs = frozenset({"latents"})

        def should_compute(self, ctx):
            return True

    class Squints(padecache.Predictor):
        """A predictor reading something the engine does not give."""

        name = "squints"
        inputs = frozenset({"stack_input", "noise"})

        def update(self, ctx, residual, block_input, computed):
            pass

        def predict(self, ctx, block_input):
            return block_input

        def reset(self):
            pass

    registry = Registry([Contribution("peeker", "1.0", {"padecache_policies": [Peeks]}),
                         Contribution("squinter", "1.0", {"padecache_predictors": [Squints]})])
    assert [b.plugin for b in registry.broken] == ["peeker", "squinter"]
    names = "first_input, model_input, modulated, stack_input, time_embedding, time_projection"
    assert (f"policy 'peeks': `inputs` names 'latents', which the engine does not give; the inputs are {names}"
            in registry.broken[0].error)
    assert "predictor 'squints': `inputs` names 'noise', which the engine does not give" in registry.broken[1].error


@pytest.mark.parametrize("declared", [("modulated", "stack_input"), ["modulated", "stack_input"], {"modulated", "stack_input"}])
def test_inputs_may_be_declared_as_any_collection_of_names(declared):
    """A tuple or list of input names is as correct as a frozenset: registered, handed over, readable by name."""
    from padecache.registry import Contribution, Registry
    from padecache.step_inputs import declared_inputs
    from padecache.testing import step_inputs

    class Reads(padecache.CachePolicy):
        """Reads the modulated input."""

        name = "reads"
        inputs = declared

        def should_compute(self, ctx):
            return True

    registry = Registry([Contribution("reader", "1.0", {"padecache_policies": [Reads]})])
    assert registry.broken == [] and registry.get("policy", "reads").cls is Reads
    assert declared_inputs(declared) == frozenset({"modulated", "stack_input"})
    seen = step_inputs(Reads(), 3, rows=2)
    assert seen["modulated"] is seen.modulated and seen.modulated.shape[0] == 2 and seen.get("model_input") is None
    with pytest.raises(KeyError, match="'latents' is not a step input; the inputs are first_input"):
        seen["latents"]


@pytest.mark.parametrize("declared", ["modulated", ("modulated", 3), 7])
def test_inputs_declared_as_one_name_or_as_something_else(declared):
    from padecache.step_inputs import declared_inputs

    if declared == "modulated":
        assert declared_inputs(declared) == frozenset({"modulated"})  # one name, not its letters
    else:
        with pytest.raises(ValueError, match=r"`inputs` must be names of \['first_input'.*got"):
            declared_inputs(declared)
