"""Options of components: what plugin authors declare their ``Config`` fields with.

The bottom layer of padecache's configuration: :func:`option` (an attrs field that converts and checks a
value), :class:`OptionError` and :class:`ConfigError`, and the "did you mean" helper.  It imports nothing
from the rest of padecache, so the registry and the run configuration can both build on it.

    import attrs, padecache

    class MyPredictor(padecache.Predictor):
        name = "mine"

        @attrs.frozen
        class Config:
            order: int = padecache.option(1, "int", ge=0, le=3, doc="polynomial order")
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Literal

import attrs

__all__ = ["option", "OptionError", "ConfigError", "suggest", "options_dict", "build_options", "NoOptions", "NONE"]


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


def _bad(key: str, value, expected: str) -> OptionError:
    return OptionError(key, f"expected {expected}, got {value!r} ({type(value).__name__})")


def _to_bool(key: str, value):
    if not isinstance(value, bool):
        raise _bad(key, value, "true or false")
    return value


def _to_str(key: str, value):
    if not isinstance(value, str):
        raise _bad(key, value, "a string")
    return value


def _number(key: str, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, value, "a number")
    return value


def _to_int(key: str, value):
    value = _number(key, value)
    if isinstance(value, int):
        return value  # exact, however large: the bounds check says what is wrong with it
    if not math.isfinite(value) or not value.is_integer():
        raise _bad(key, value, "a whole number")
    return int(value)


def _to_float(key: str, value):
    value = _number(key, value)
    try:
        out = float(value)
    except OverflowError:
        raise OptionError(key, f"{value!r} is too large for a floating-point number") from None
    if not math.isfinite(out):
        raise OptionError(key, f"must be a finite number, got {value!r}")
    return out


def _to_list(inner):
    def convert(key: str, value):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _bad(key, value, "a list of numbers")
        return tuple(inner(key, v) for v in value)

    return convert


_CONVERTERS = {"bool": _to_bool, "str": _to_str, "int": _to_int, "float": _to_float,
               "ints": _to_list(_to_int), "floats": _to_list(_to_float)}


#: how TOML, which has no null, writes ``None`` for an optional option whose default is not ``None``
NONE = "none"


def _convert(kind: _Kind, key: str, value, optional: bool = False):
    # an optional option reads "none" as None (TOML has no null; `--set predictor.grid=none` unsets a string option too,
    # which option() lets default only to None, so TOML never writes None as "none" for a string)
    if value is None or (optional and isinstance(value, str) and value.lower() == NONE):
        return None
    return _CONVERTERS[kind](key, value)


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
    ``optional`` allows ``None`` (written ``"none"`` in TOML, which has no null, and read back from ``"none"``; an
    optional string option must default to ``None``, which TOML then leaves out).
    ``doc`` is shown by ``padecache list --verbose``.
    """

    if optional and kind == "str" and default is not None:
        # TOML has no null: None would be written as a string and read back as that string, not as None
        raise TypeError(f"option({default!r}, 'str', optional=True): an optional string option defaults to None (TOML, "
                        f"which has no null, could not write None apart from a string); give default None and read None "
                        f"as {default!r} in your code, or drop optional=True")
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
                if not op(_as_float(v), float(bound)):
                    raise OptionError(key, f"must be {word} {bound}, got {v!r}")

    _check_default(check, kind, default, optional)
    return attrs.field(
        default=default,
        converter=attrs.Converter(lambda v, _self, field: _convert(kind, field.name, v, optional), takes_self=True,
                                  takes_field=True),
        validator=check,
        metadata={"doc": doc, "kind": kind},
    )


def _check_default(check, kind: _Kind, default, optional: bool) -> None:
    """A default that breaks its own bounds or choices fails where the class is defined, not at every use."""
    if default is None or isinstance(default, attrs.Factory):  # None on a non-optional option: one to be given
        return
    try:
        check(None, SimpleNamespace(name="default"), _convert(kind, "default", default, optional))
    except OptionError as err:
        raise TypeError(f"option({default!r}, {kind!r}): the default {err.message}") from None


def _as_float(v) -> float:
    try:
        return float(v)
    except OverflowError:  # a huge int: compare by sign
        return math.inf if v > 0 else -math.inf


@attrs.frozen
class NoOptions:
    """The ``Config`` of a component without options (the default of every component)."""


def options_dict(options) -> dict[str, Any]:
    """An options instance as a plain dict (tuples -> lists; ``None`` left out where it is the default, kept where
    it is not, so that the dict builds the same options)."""
    out = {}
    for f in attrs.fields(type(options)):
        v = getattr(options, f.name)
        if v is None and (f.default is None or f.default is attrs.NOTHING):
            continue
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def build_options(config_cls: type, values: Mapping[str, Any], where: str):
    """``config_cls(**values)`` with unknown keys and bad values reported against ``where``."""
    if not attrs.has(config_cls):
        raise ConfigError(f"{where}: its `Config` ({config_cls!r}) is not an attrs class; declare it with @attrs.frozen")
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: options must be a table/dict, got {type(values).__name__}")
    valid = [f.name for f in attrs.fields(config_cls)]
    for key in values:
        if key not in valid:
            listing = ", ".join(valid) if valid else "(none)"
            raise ConfigError(f"{where}: unknown option {key!r}{suggest(key, valid)}; valid options: {listing}")
    missing = [f.name for f in attrs.fields(config_cls) if f.init and f.default is attrs.NOTHING and f.name not in values]
    if missing:
        raise ConfigError(f"{where}: option {missing[0]!r} has no default: give it (in the config's section, or "
                          f"--set SECTION.{missing[0]}=...)")
    try:
        return config_cls(**values)
    except OptionError as err:
        raise ConfigError(f"{where}.{err.key}: {err.message}") from None
    except (TypeError, ValueError) as err:  # a missing option, or the component's own validator
        raise ConfigError(f"{where}: {err}") from None
