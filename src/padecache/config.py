"""Configuration: attrs classes that check themselves, loaded from a preset name, a dict or a TOML file.

A run is described by three sections naming a component and its options, plus engine options::

    [predictor]
    name = "taylor"
    order = 1

    [policy]
    name = "fixed"
    interval = 3
    warmup = 3

    [stage]
    name = "fraction"

    [engine]
    guard = true

Missing sections take :data:`DEFAULT_SECTIONS`.  ``CacheConfig.to_dict()`` gives this structure back
(``None`` options are left out, as TOML has no null), so every config round-trips through JSON and TOML.

Component authors declare options with :func:`option` inside an ``@attrs.frozen`` class; bad values
raise :class:`OptionError` (a ``ValueError``) naming the option.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "option",
    "OptionError",
    "ConfigError",
    "Selection",
    "EngineConfig",
    "CacheConfig",
    "load_config",
    "suggest",
    "options_dict",
    "DEFAULT_SECTIONS",
]

SECTIONS = ("predictor", "policy", "stage")
DEFAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "predictor": {"name": "taylor"},
    "policy": {"name": "budget"},
    "stage": {"name": "fraction"},
}


class OptionError(ValueError):
    """A component option has a bad value.  ``key`` names the option."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class ConfigError(ValueError):
    """A configuration could not be loaded; the message names the source, the section and the key."""


def suggest(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- options ---------------------------------------------------------------------------------------------------

_Kind = Literal["float", "int", "bool", "str", "floats", "ints"]


def _convert(kind: _Kind, key: str, value):
    def bad(expected: str):
        return OptionError(key, f"expected {expected}, got {value!r} ({type(value).__name__})")

    if value is None:
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if kind == "int":
            if float(value) != int(value):
                raise bad("a whole number")
            return int(value)
        return float(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise bad("a list of numbers")
    inner: _Kind = "float" if kind == "floats" else "int"
    return tuple(_convert(inner, key, v) for v in value)


def option(
    default,
    kind: _Kind = "float",
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence | None = None,
    optional: bool = False,
    doc: str = "",
):
    """An attrs field for a component option, converted to ``kind`` and checked.

    ``ge``/``gt``/``le``/``lt`` bound numbers (each element of a list); ``choices`` restricts the value;
    ``optional`` allows ``None``.  ``doc`` is shown by ``padecache list --verbose``.
    """

    bounds = [(b, op, word) for b, op, word in (
        (ge, float.__ge__, ">="), (gt, float.__gt__, ">"), (le, float.__le__, "<="), (lt, float.__lt__, "<"),
    ) if b is not None]

    def check(instance, attribute, value):
        key = attribute.name
        if value is None:
            if not optional:
                raise OptionError(key, "is required")
            return
        if choices is not None and value not in choices:
            hint = suggest(str(value), [str(c) for c in choices])
            raise OptionError(key, f"must be one of {list(choices)}, got {value!r}{hint}")
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if v != v:
                raise OptionError(key, "must be a number, got NaN")
            for bound, op, word in bounds:
                if not op(float(v), float(bound)):
                    raise OptionError(key, f"must be {word} {bound}, got {v!r}")

    return attrs.field(
        default=default,
        converter=attrs.Converter(lambda v, _self, field: _convert(kind, field.name, v), takes_self=True, takes_field=True),
        validator=check,
        metadata={"doc": doc, "kind": kind},
    )


def options_dict(options) -> dict[str, Any]:
    """An options instance as a plain dict (tuples -> lists, ``None`` left out)."""
    out = {}
    for f in attrs.fields(type(options)):
        v = getattr(options, f.name)
        if v is None:
            continue
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def build_options(config_cls: type, values: Mapping[str, Any], where: str):
    """``config_cls(**values)`` with unknown keys and bad values reported against ``where``."""
    valid = [f.name for f in attrs.fields(config_cls)]
    for key in values:
        if key not in valid:
            listing = ", ".join(valid) if valid else "(none)"
            raise ConfigError(f"{where}: unknown option {key!r}{suggest(key, valid)}; valid options: {listing}")
    try:
        return config_cls(**values)
    except OptionError as err:
        raise ConfigError(f"{where}.{err.key}: {err.message}") from None
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


# -- the run configuration -------------------------------------------------------------------------------------


@attrs.frozen
class Selection:
    """A component chosen by ``name`` with its validated ``options`` (an instance of its ``Config``)."""

    kind: str
    name: str
    options: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **options_dict(self.options)}


@attrs.frozen
class EngineConfig:
    """Engine options, the same for every method.

    Attributes:
        guard: check every prediction before it is used; a non-finite or exploding one is replaced by
            computing the step, and counted in ``stats().fallbacks``.  Costs one host sync per
            predicted step; turn it off only for compiled, fixed-schedule runs you have validated.
        max_growth: a prediction is "exploding" when some batch row's norm exceeds ``max_growth`` times
            the largest norm among that row's computed residuals.
        history_dtype: dtype the residual history is kept and predicted in: ``"float32"`` (default,
            exact arithmetic for bf16/fp16 models) or ``"model"`` (half the memory on half-precision models).
    """

    guard: bool = option(True, "bool", doc="replace non-finite or exploding predictions by a computed step")
    max_growth: float = option(4.0, gt=1.0, doc="explosion threshold, as a multiple of the largest computed residual norm")
    history_dtype: str = option("float32", "str", choices=("float32", "model"), doc="dtype of the residual history")


@attrs.frozen
class CacheConfig:
    """A full run description: predictor, policy, stage detector and engine options."""

    predictor: Selection
    policy: Selection
    stage: Selection
    engine: EngineConfig = attrs.field(factory=EngineConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            "predictor": self.predictor.to_dict(),
            "policy": self.policy.to_dict(),
            "stage": self.stage.to_dict(),
            "engine": options_dict(self.engine),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def evolve(self, **sections: Mapping[str, Any] | str) -> CacheConfig:
        """A copy with some sections replaced (``predictor="linear"`` or ``policy={"name": ..., ...}``)."""
        data = self.to_dict()
        for key, value in sections.items():
            if key not in (*SECTIONS, "engine"):
                raise ConfigError(f"unknown section {key!r}{suggest(key, [*SECTIONS, 'engine'])}; valid: {[*SECTIONS, 'engine']}")
            if isinstance(value, str):
                value = {"name": value}
            if key == "engine":
                data["engine"] = {**data["engine"], **dict(value)}
            else:
                data[key] = dict(value)
        return CacheConfig.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> CacheConfig:
        """Validate ``data`` (the :meth:`to_dict` structure); errors name ``source``, section and key."""
        from .plugins import get_registry

        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a table/dict of sections, got {type(data).__name__}")
        for key in data:
            if key not in (*SECTIONS, "engine"):
                raise ConfigError(
                    f"{source}: unknown section {key!r}{suggest(key, [*SECTIONS, 'engine'])}; "
                    f"valid sections: {', '.join((*SECTIONS, 'engine'))}"
                )
        registry = get_registry()
        selections = {}
        for section in SECTIONS:
            raw = data.get(section, DEFAULT_SECTIONS[section])
            if isinstance(raw, str):
                raw = {"name": raw}
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{source}: [{section}] must be a table, got {type(raw).__name__}")
            raw = dict(raw)
            name = raw.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"{source}: [{section}] needs a component name, e.g. name = \"{DEFAULT_SECTIONS[section]['name']}\"")
            try:
                entry = registry.get(section, name)
            except ValueError as err:
                raise ConfigError(f"{source}: [{section}] name: {err}") from None
            options = build_options(entry.cls.Config, raw, f"{source}: [{section}] ({name})")
            selections[section] = Selection(section, name, options)
        engine_raw = data.get("engine", {})
        if not isinstance(engine_raw, Mapping):
            raise ConfigError(f"{source}: [engine] must be a table, got {type(engine_raw).__name__}")
        engine = build_options(EngineConfig, dict(engine_raw), f"{source}: [engine]")
        return cls(engine=engine, **selections)


def _load_toml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def load_config(config: CacheConfig | Mapping[str, Any] | str | Path | None = None, **sections) -> CacheConfig:
    """Resolve ``config`` (a preset name, a TOML path, a dict or a :class:`CacheConfig`) and overrides.

    ``sections`` replace whole sections: ``load_config("taylorseer", policy={"name": "fixed", "interval": 4})``.
    ``None`` means the default preset.

    Example::

        cfg = load_config({"predictor": {"name": "taylor", "order": 2}, "policy": {"name": "fixed", "interval": 4}})
        cfg = load_config("my-run.toml")
        cfg = load_config("fora")
    """
    from .plugins import DEFAULT_PRESET, get_registry

    if config is None:
        config = DEFAULT_PRESET
    if isinstance(config, CacheConfig):
        base = config
    elif isinstance(config, Mapping):
        base = CacheConfig.from_dict(config)
    elif isinstance(config, (str, Path)):
        registry = get_registry()
        text = str(config)
        if isinstance(config, str) and text in registry.presets:
            base = CacheConfig.from_dict(registry.presets[text].config, source=f"preset {text!r}")
        elif text.endswith(".toml") or Path(text).is_file():
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"{path}: no such config file")
            base = CacheConfig.from_dict(_load_toml(path), source=str(path))
        else:
            names = sorted(registry.presets)
            raise ConfigError(
                f"unknown preset {text!r}{suggest(text, names)}; presets: {', '.join(names)} "
                f"(or pass a path to a .toml file, a dict, or a CacheConfig)"
            )
    else:
        raise TypeError(f"config must be a preset name, a .toml path, a dict or a CacheConfig, not {type(config).__name__}")
    sections = {k: v for k, v in sections.items() if v is not None}
    return base.evolve(**sections) if sections else base
