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
raise :class:`OptionError` (a ``ValueError``) naming the option.  Both live in :mod:`padecache.options`, the
bottom layer (components import them from there; they are re-exported here for older code).

A configuration stored in a results file is data: :func:`config_data` checks its shape and nothing else, so the
same file reads the same whatever plugins are installed; it is validated against the registry only when it is
turned back into components (:func:`load_config`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import AttrsInstance

from .options import NONE, ConfigError, NoOptions, OptionError, build_options, option, options_dict, suggest

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
    "config_data",
    "DEFAULT_SECTIONS",
]

SECTIONS = ("predictor", "policy", "stage")
DEFAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "predictor": {"name": "taylor"},
    "policy": {"name": "budget"},
    "stage": {"name": "fraction"},
}


# -- the run configuration -------------------------------------------------------------------------------------


def _is_options(instance, attribute, value) -> None:
    if not attrs.has(type(value)):
        raise TypeError(f"Selection.options must be a component's Config instance (an attrs class), got {value!r}")


@attrs.frozen
class Selection:
    """A component chosen by ``name`` with its validated ``options`` (an instance of its ``Config``)."""

    kind: str
    name: str
    options: AttrsInstance = attrs.field(validator=_is_options)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **options_dict(self.options)}

    def changed(self) -> dict[str, Any]:
        """The options that differ from the component's defaults (what a short description shows)."""
        out = {}
        for f in attrs.fields(type(self.options)):
            value = getattr(self.options, f.name)
            default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
            if value is not None and (default is attrs.NOTHING or value != default):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """``name(option=value, ...)`` with the options that differ from the defaults."""
        changed = self.changed()
        return self.name + (f"({', '.join(f'{k}={v}' for k, v in changed.items())})" if changed else "")


@attrs.frozen
class EngineConfig:
    """Engine options, the same for every method.

    Attributes:
        guard: check every prediction before it is used; a non-finite or exploding one is replaced by
            computing the step for that batch row, and counted in ``stats().fallbacks``.  Costs one host sync
            per predicted step; turn it off only for compiled, fixed-schedule runs you have validated.
        max_growth: a prediction is "exploding" when some batch row's norm exceeds ``max_growth`` times the
            largest norm among that row's computed residuals.
        history_dtype: dtype the residual history is kept and predicted in: ``"auto"`` (the model's dtype for
            float32 and bfloat16 models, float32 for float16 ones), ``"model"`` or ``"float32"``.  A bfloat16
            history halves the cache and cost at most 0.16 dB PSNR on the reference models
            (docs/results/history-dtype); float16 was not measured, so ``auto`` keeps float32 for it.
        history_device: where the history is kept: ``"model"`` (the model's device) or ``"cpu"`` (frees
            accelerator memory; forecasts are then computed on the CPU and copied back).
        first_blocks, last_blocks: the first and last blocks of the stack (over the adapter's block lists, in
            execution order) that run on every step; only the blocks between them are skipped and forecast, and
            the residual is that range's.  A forecast step then costs ``(first + last) / blocks`` of a pass
            (``stats().full_passes`` counts it).
        gap_correction: at a computed step after skipped ones, move the model output so that the latent gains this
            share of the difference between the skipped steps' outputs interpolated between the computed ones and
            the forecasts (:mod:`padecache.correction`); 0 turns it off.  Only with a scheduler whose update is an
            Euler step in the output (``FlowMatchEulerDiscreteScheduler``; on noise predictions ``EulerDiscreteScheduler``
            and unclipped ``DDIMScheduler``: :func:`padecache.correction.euler_grid`), and only for a static plan of at least
            ``gap_correction_passes`` passes (on leaner plans it lost: docs/methods.md, "Gap correction").
    """

    guard: bool = option(True, "bool", doc="replace non-finite or exploding predictions by a computed step")
    max_growth: float = option(4.0, gt=1.0, doc="explosion threshold, as a multiple of the largest computed residual norm")
    history_dtype: str = option("auto", "str", choices=("auto", "model", "float32"), doc="dtype of the residual history")
    history_device: str = option("model", "str", choices=("model", "cpu"), doc="device of the residual history")
    first_blocks: int = option(0, "int", ge=0, doc="blocks at the start of the stack that run on every step (cache-dit's Fn)")
    last_blocks: int = option(0, "int", ge=0, doc="blocks at the end of the stack that run on every step (cache-dit's Bn)")
    gap_correction: float = option(0.0, ge=0.0, le=1.0, doc="share of the skipped steps' forecast error taken back at a computed step")
    gap_correction_passes: int = option(6, "int", ge=1, doc="fewest passes of a static plan that gap_correction applies to")


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

    def describe(self) -> str:
        """A few words: ``predictor + policy`` with the options that differ from their defaults (computed from the
        components' defaults now, so a record can store it and be read without them)."""
        engine = {f.name: getattr(self.engine, f.name) for f in attrs.fields(EngineConfig)
                  if getattr(self.engine, f.name) != f.default}
        shown = f" + engine({', '.join(f'{k}={v}' for k, v in engine.items())})" if engine else ""
        return f"{self.predictor.describe()} + {self.policy.describe()}{shown}"

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(_toml_nulls(self.to_dict()))

    def evolve(self, **sections: Mapping[str, Any] | str) -> CacheConfig:
        """A copy with some sections replaced (``predictor="linear"`` or ``policy={"name": ..., ...}``), or some
        options of a section changed (``policy={"speedup": 3}``: the same policy)."""
        return CacheConfig.from_dict(_merged(self.to_dict(), sections))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config", prefer: str | None = None) -> CacheConfig:
        """Validate ``data`` (the :meth:`to_dict` structure); errors name ``source``, section and key.

        ``prefer`` names the plugin whose components win a name clash (a preset refers to its own plugin's).
        """
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
                entry = registry.get(section, name, prefer)
            except ValueError as err:
                raise ConfigError(f"{source}: [{section}] name: {err}") from None
            if ":" not in name and registry.get_bare(section, name) is not entry:  # resolved by `prefer`
                name = entry.qualified_name
            options = build_options(getattr(entry.cls, "Config", NoOptions), raw, f"{source}: [{section}] ({name})")
            selections[section] = Selection(section, name, options)
        engine_raw = data.get("engine", {})
        if not isinstance(engine_raw, Mapping):
            raise ConfigError(f"{source}: [engine] must be a table, got {type(engine_raw).__name__}")
        engine = build_options(EngineConfig, dict(engine_raw), f"{source}: [engine]")
        return cls(engine=engine, **selections)


def config_data(data: Mapping[str, Any], source: str = "config") -> dict[str, dict[str, Any]]:
    """``data`` as a plain configuration dict, checked for shape only (sections are tables, each component
    section has a ``name``, values are JSON data): no plugin is consulted, so a stored configuration reads the
    same whatever is installed.  :func:`load_config` validates it against the registry when it runs."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table/dict of sections, got {type(data).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key not in (*SECTIONS, "engine"):
            raise ConfigError(f"{source}: unknown section {key!r}{suggest(key, [*SECTIONS, 'engine'])}")
        value = {"name": value} if isinstance(value, str) and key != "engine" else value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{key}] must be a table, got {type(value).__name__}")
        if key != "engine" and not isinstance(value.get("name"), str):
            raise ConfigError(f"{source}: [{key}] needs a component name")
        out[key] = json.loads(json.dumps(dict(value)))  # plain data: lists, numbers, strings, booleans
    return out


def _load_toml(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {err.start}); TOML files must be UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _looks_like_path(text: str) -> bool:
    p = Path(text)
    return p.is_file() or "/" in text or "\\" in text or p.suffix.lower() in (".toml", ".json", ".cfg", ".ini", ".yaml", ".yml", ".txt")


def _method(registry, name: str) -> dict | None:
    """The configuration of the method ``name`` (:func:`padecache.sweeps.method_config`), ``None`` if none is called that."""
    from .sweeps import method_config

    try:
        return method_config(registry, name, DEFAULT_SECTIONS["predictor"])
    except ValueError as err:  # a peer's name, or a family two plugins declare: said as a config error
        raise ConfigError(str(err)) from None


def _not_shadowing(registry, name: str, plugin: str) -> None:
    """A bare name that is one plugin's preset and another's method (a family, predictor or policy) is a clash: say
    which names pick which, rather than let the preset hide the method."""
    if ":" in name:
        return
    from .sweeps import families_of, find_family

    try:
        family = find_family(name, families_of(registry))
    except ValueError:
        family = None
    owners = {family[1]} if family else set()
    owners |= {e.plugin for kind in ("predictor", "policy") if (e := registry.get_bare(kind, name)) is not None}
    others = sorted(owners - {plugin})
    if others:
        raise ConfigError(f"{name!r} is plugin {plugin!r}'s preset and plugin {others[0]!r}'s method; say which one "
                          f"you mean: '{plugin}:{name}' (the preset) or '{others[0]}:{name}' (the method)")


def load_changed(config: str, changes: Mapping[str, Mapping[str, Any]]) -> CacheConfig:
    """``load_config(config)`` with ``changes`` (section -> options, as ``--set`` gives them) merged as
    :meth:`CacheConfig.evolve` merges them.  A method whose component cannot be built without an option (the ``mask``
    policy's plan) takes the changes before it is checked, so ``padecache mask mask --set policy.mask=...`` works."""
    try:
        base = load_config(config)
    except ConfigError:
        from .plugins import get_registry

        registry = get_registry()
        raw = None if registry.has_preset(config) or Path(config).is_file() else _method(registry, config)
        if not changes or raw is None:
            raise
        return _with_changes(lambda: CacheConfig.from_dict(_merged({k: dict(v) for k, v in raw.items()}, changes),
                                                           source=f"method {config!r}"))
    return _with_changes(lambda: base.evolve(**changes)) if changes else base


def _merged(data: dict, sections: Mapping[str, Mapping[str, Any] | str]) -> dict:
    """``data`` (the :meth:`CacheConfig.to_dict` structure) with ``sections`` replaced, or their options changed where
    a section names no component (what :meth:`CacheConfig.evolve` and ``--set`` do)."""
    for key, value in sections.items():
        if key not in (*SECTIONS, "engine"):
            raise ConfigError(f"unknown section {key!r}{suggest(key, [*SECTIONS, 'engine'])}; valid: {[*SECTIONS, 'engine']}")
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{key}={value!r}: expected a component name or a dict with `name` and options, "
                f"got {type(value).__name__}"
            )
        if key == "engine" or "name" not in value:  # options alone: the same component, those options changed
            data[key] = {**data.get(key, {}), **dict(value)}
        else:
            data[key] = dict(value)
    return data


def _with_changes(build: Any) -> CacheConfig:
    try:
        return build()
    except ConfigError as err:
        err.changes = True  # the changes are what is wrong (a command line says "--set: ...")
        raise


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

    if config is None:  # padecache's own, whatever a plugin's preset of that name says
        config = f"padecache:{DEFAULT_PRESET}"
    if isinstance(config, CacheConfig):
        base = config
    elif isinstance(config, Mapping):
        base = CacheConfig.from_dict(config)
    elif isinstance(config, (str, Path)):
        registry = get_registry()
        text = str(config)
        if isinstance(config, str) and registry.has_preset(text):
            try:
                preset = registry.preset(text)
            except ValueError as err:
                raise ConfigError(str(err)) from None
            _not_shadowing(registry, text, preset.plugin)
            base = CacheConfig.from_dict(preset.config, source=f"preset {text!r}", prefer=preset.plugin)
        elif isinstance(config, str) and not Path(text).is_file() and (method := _method(registry, text)) is not None:
            base = CacheConfig.from_dict(method, source=f"method {text!r}")  # a bench family, predictor or policy name
        elif isinstance(config, Path) or _looks_like_path(text):
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"{path}: no such config file" + ("" if path.suffix in (".toml", ".json") else
                                  " (config files are TOML, e.g. my-run.toml)"))
            if path.suffix == ".json":
                try:
                    data = json.loads(path.read_bytes().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as err:
                    raise ConfigError(f"{path}: invalid JSON: {err}") from None
            else:
                data = _load_toml(path)
            base = CacheConfig.from_dict(data, source=str(path))
        else:
            from .sweeps import method_names

            names = registry.preset_names()
            raise ConfigError(
                f"unknown preset {text!r}{suggest(text, [*names, *method_names(registry)])}; presets: {', '.join(names)} "
                f"(or a method: a bench family, predictor or policy that `padecache list` shows; or a path to a .toml "
                f"file, a dict, or a CacheConfig){registry.broken_hint()}"
            )
    else:
        raise TypeError(f"config must be a preset name, a .toml path, a dict or a CacheConfig, not {type(config).__name__}")
    sections = {k: v for k, v in sections.items() if v is not None}
    return base.evolve(**sections) if sections else base


def _toml_nulls(value: Any) -> Any:
    """``value`` with ``None`` written as ``"none"`` (TOML has no null; an optional option reads it back as ``None``)."""
    if isinstance(value, dict):
        return {k: _toml_nulls(v) for k, v in value.items()}
    return NONE if value is None else value
