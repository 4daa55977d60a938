"""Configs: validated attrs classes, loaded from presets, dicts and TOML, round-tripping unchanged."""

from __future__ import annotations

import json
import sys

import pytest

import padecache
from padecache.config import CacheConfig, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize("preset", sorted(padecache.get_registry().presets))
def test_every_preset_round_trips_through_json_and_toml(preset):
    cfg = padecache.load_config(preset)
    assert CacheConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert CacheConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg
    assert padecache.load_config(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[predictor]\nname = "taylor"\norder = 2\n\n[policy]\nname = "fixed"\ninterval = 4\n')
    cfg = padecache.load_config(path)
    assert cfg.predictor.name == "taylor" and cfg.predictor.options.order == 2
    assert cfg.policy.options.interval == 4 and cfg.stage.name == "fraction"
    swapped = padecache.load_config(str(path), policy={"name": "budget", "speedup": 3})
    assert swapped.policy.name == "budget" and swapped.policy.options.speedup == 3.0
    assert swapped.predictor == cfg.predictor


def test_missing_sections_take_defaults():
    cfg = padecache.load_config({"predictor": {"name": "linear"}})
    assert (cfg.policy.name, cfg.stage.name) == ("budget", "fraction")


@pytest.mark.parametrize("data, message", [
    ({"predictor": {"name": "taylr"}}, r"unknown predictor 'taylr' \(did you mean 'taylor'\?\); registered predictors: .*linear.*noop.*taylor"),
    ({"policy": {"name": "fixed", "intervall": 3}}, r"unknown option 'intervall' \(did you mean 'interval'\?\); valid options: interval, warmup, last"),
    ({"policy": {"name": "fixed", "interval": 0}}, r"\[policy\] \(fixed\)\.interval: must be >= 1, got 0"),
    ({"predictor": {"name": "taylor", "order": 7}}, r"order: must be <= 3, got 7"),
    ({"predictor": {"name": "taylor", "order": 1.5}}, r"order: expected a whole number"),
    ({"policy": {"name": "budget", "speedup": "fast"}}, r"speedup: expected a number"),
    ({"policy": {"name": "budget", "speedup": float("nan")}}, r"speedup: must be a finite number, got nan"),
    ({"engine": {"guard": "yes"}}, r"guard: expected true or false"),
    ({"stage": {"name": "fraction", "early": 0.9, "late": 0.5}}, r"late: must be >= early"),
    ({"predictor": {"order": 1}}, r"needs a component name"),
    ({"predictr": {"name": "taylor"}}, r"unknown section 'predictr' \(did you mean 'predictor'\?\)"),
    ({"policy": {"name": "budget", "speedup": float("inf")}}, r"speedup: must be a finite number, got inf"),
    ({"engine": {"max_growth": float("-inf")}}, r"max_growth: must be a finite number"),
    ({"predictor": {"name": "taylor", "order": 10**30}}, r"order: must be <= 3, got 1000000000000000000000000000000"),
    ({"policy": {"name": "budget", "speedup": 10**400}}, r"speedup: 1000.* is too large for a floating-point number"),
    ({"policy": {"name": "budget", "speedup": -(10**400)}}, r"speedup: .* is too large for a floating-point number"),
    ({"predictor": 3}, r"\[predictor\] must be a table, got int"),
    ({"predictor": {"name": 3}}, r"needs a component name"),
    ({"policy": ["budget"]}, r"\[policy\] must be a table, got list"),
])
def test_bad_configs_raise_value_errors_that_say_what_to_do(data, message):
    with pytest.raises(ValueError, match=message):
        padecache.load_config(data)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match=r"unknown preset 'tylorseer' \(did you mean 'taylorseer'\?\); presets: .*fora.*none"):
        padecache.load_config("tylorseer")


def test_malformed_toml_names_file_and_position(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[predictor]\nname = "taylor"\norder = \n')
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: .*line 3"):
        padecache.load_config(path)


def test_bad_value_in_toml_names_file_section_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[predictor]\nname = "taylor"\n\n[policy]\nname = "fixed"\nwarmup = -2\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: \[policy\] \(fixed\)\.warmup: must be >= 1, got -2"):
        padecache.load_config(path)


@pytest.mark.parametrize("path", ["nowhere.toml", "configs/run.cfg", "my-run.json", "dir/preset"])
def test_a_missing_file_is_reported_as_a_file_not_an_unknown_preset(path):
    with pytest.raises(ConfigError, match=rf"{path}: no such config file"):
        padecache.load_config(path)


def test_a_non_utf8_file_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[predictor]\nname = "taylor"  # caf\xe9\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not a UTF-8 text file"):
        padecache.load_config(path)


@pytest.mark.parametrize("value", [3, 2.5, ["taylor"]])
def test_a_section_override_that_is_neither_a_name_nor_a_dict_says_so(value):
    with pytest.raises(ConfigError, match=r"predictor=.*expected a component name or a dict with `name` and options"):
        padecache.load_config("default", predictor=value)


def test_a_json_config_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"predictor": {"name": "linear"}, "policy": {"name": "fixed", "interval": 2}}))
    assert padecache.load_config(path).policy.options.interval == 2


def test_options_are_immutable_and_typed():
    import attrs

    cfg = padecache.load_config({"predictor": {"name": "taylor", "order": 2.0}})
    assert cfg.predictor.options.order == 2 and isinstance(cfg.predictor.options.order, int)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.predictor.options.order = 3


def test_configs_are_written_as_valid_json():
    """Every float option is finite, so the JSON of any accepted config is standard (no Infinity / NaN)."""
    for preset in padecache.get_registry().preset_names():
        text = padecache.load_config(preset).to_json()
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{preset}: non-standard JSON constant {c}"))


def test_selection_options_are_a_components_config():
    from padecache.config import Selection

    with pytest.raises(TypeError, match="Selection.options must be a component's Config instance"):
        Selection("predictor", "taylor", {"order": 2})


def test_a_config_describes_itself_from_its_components_defaults():
    cfg = padecache.load_config({"predictor": {"name": "taylor", "order": 2}, "policy": {"name": "budget", "speedup": 2.0}})
    assert cfg.describe() == "taylor(order=2) + budget(speedup=2.0)"
    assert padecache.load_config("default").describe() == "taylor + budget + engine(gap_correction=0.5)"
    blocks = padecache.load_config({"predictor": "tc-pade", "engine": {"first_blocks": 1}})
    assert blocks.describe() == "tc-pade + budget + engine(first_blocks=1)"  # once read as plain "tc-pade + budget"
    assert cfg.predictor.changed() == {"order": 2}


def test_a_stored_config_is_data_read_without_the_registry(monkeypatch):
    """A results file's configs read the same whatever is installed: config_data checks their shape only."""
    from padecache.config import config_data

    stored = {"predictor": {"name": "some-plugin:gone", "alpha": [0.9, 0.1]}, "policy": "budget", "engine": {"guard": True}}
    import padecache.plugins

    monkeypatch.setattr(padecache.plugins, "get_registry", lambda: pytest.fail("config_data consulted the registry"))
    data = config_data(stored, source="results.json")
    assert data == {"predictor": {"name": "some-plugin:gone", "alpha": [0.9, 0.1]}, "policy": {"name": "budget"},
                    "engine": {"guard": True}}
    with pytest.raises(ConfigError, match=r"results.json: \[policy\] needs a component name"):
        config_data({"policy": {"speedup": 2}}, source="results.json")
    with pytest.raises(ConfigError, match=r"results.json: unknown section 'polcy' \(did you mean 'policy'\?\)"):
        config_data({"polcy": {"name": "budget"}}, source="results.json")
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="unknown predictor 'some-plugin:gone'"):
        padecache.load_config(data)  # turned back into components: validated now


def test_an_optional_option_set_to_none_round_trips_where_its_default_is_not_none():
    """budget's `speedup` defaults to 2.5 and may be None (with full_passes): the dict keeps the None, and TOML,
    which has no null, writes "none", which the option reads back as None."""
    import json

    import tomllib

    cfg = padecache.load_config({"policy": {"name": "budget", "full_passes": 6, "speedup": None}})
    assert cfg.to_dict()["policy"]["speedup"] is None and 'speedup = "none"' in cfg.to_toml()
    for back in (cfg.to_dict(), json.loads(cfg.to_json()), tomllib.loads(cfg.to_toml())):
        assert padecache.CacheConfig.from_dict(back) == cfg
    assert padecache.load_config({"policy": {"name": "budget", "speedup": "None", "full_passes": 6}}) == cfg
    with pytest.raises(padecache.ConfigError, match="warmup"):  # not for an option that may not be None
        padecache.load_config({"policy": {"name": "budget", "warmup": "none"}})


def test_an_optional_string_option_must_default_to_none():
    """TOML would write None as the string "none" and read it back as that string, so a plugin's optional string
    option with another default could not round-trip None: refused where the author declares it."""
    with pytest.raises(TypeError, match="an optional string option defaults to None"):
        padecache.option("x", "str", optional=True)
    padecache.option(None, "str", optional=True)  # allowed: None is its default, which TOML leaves out
    padecache.option("x", "str")  # and a string option that is never None
    # "none" unsets such an option (as it does a number): `--set predictor.grid=none` was refused as not a choice
    cfg = padecache.load_config("tc-pade-fast")
    assert cfg.evolve(predictor={"grid": "sigma"}).evolve(predictor={"grid": "none"}).predictor.options.grid is None


def test_evolve_changes_options_of_the_same_component_and_apply_names_a_misspelt_keyword():
    cfg = padecache.load_config({"predictor": "tc-pade", "policy": {"name": "budget", "speedup": 2.5, "warmup": 1}})
    changed = cfg.evolve(policy={"speedup": 4})  # no name: the same policy, the other options kept
    assert changed.policy.name == "budget" and changed.policy.options.speedup == 4 and changed.policy.options.warmup == 1
    assert cfg.evolve(policy={"name": "fixed"}).policy.name == "fixed"  # a name: a new section
    with pytest.raises(ConfigError, match="unknown keyword 'schedular' \\(did you mean 'scheduler'\\?\\)"):
        padecache.apply(object(), "fora", schedular=None)
