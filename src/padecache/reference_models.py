"""Reference models: what a plugin tells the command line about the models ``padecache bench`` and ``generate`` run.

A plugin that ships reference models (``padecache-reference`` does: ``dit-mnist``, ``flux-mnist``...) returns one
:class:`ReferenceModel` per model from the ``padecache_reference_models`` hook.  A descriptor is data: names,
one line of help, and *lazy references* (``"module:function"``) to the plugin's code, imported only when a
command uses that model.  The command line finds every model through the registry (:mod:`padecache.references`);
it never imports a plugin by name, so ``padecache list``, ``padecache bench --help`` and ``padecache generate
--help`` work, and say what is missing, when no reference plugin is installed or it is broken.

This module imports neither torch nor the plugins::

    @padecache.hookimpl
    def padecache_reference_models():
        return [ReferenceModel(
            name="my-model", summary="a 6-block DiT on my data", inputs="labels",
            load="my_plugin.models:load",                  # load(name, weights=None) -> pipeline
            bench="my_plugin.bench:run_bench",             # run_bench(options, out=, progress=, executor=) -> records
            bench_options="my_plugin.bench:Options.for_scope",  # for_scope(scope, model=, ...) -> options
            train="my_plugin.train:train",                 # train(name, data, out, *, minutes, steps, seed) -> dict
            train_data="path to my-data.tgz",
        )]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["ReferenceModel", "INPUTS", "INSTALL", "resolve_reference", "MissingModel"]

#: what ``padecache generate`` passes a reference model: text prompts, or class ids
INPUTS = ("prompts", "labels")

#: what to install when no plugin provides reference models
INSTALL = ("the reference models live in the separate package padecache-reference: install it with "
           "`pip install -e plugins/reference` from a padecache checkout (or `pip install padecache-reference`)")


def _reference(_, attribute, value) -> None:
    if value is None and attribute.name != "load":
        return
    module, colon, attr = (value or "").partition(":") if isinstance(value, str) else ("", "", "")
    if not (module and colon and attr) or not all(p.isidentifier() for p in (*module.split("."), *attr.split("."))):
        raise ValueError(f"reference model `{attribute.name}` is a lazy reference \"module:function\" "
                         f"(e.g. \"my_plugin.models:load\"), got {value!r}")


def _name(_, attribute, value) -> None:
    if not isinstance(value, str) or not value.strip() or ":" in value or value != value.strip():
        raise ValueError(f"a reference model needs a `name`: a non-empty string without ':' (got {value!r})")


def resolve_reference(ref: str) -> Any:
    """The object a ``"module:attr.attr"`` reference names (imported now)."""
    module, _, attr = ref.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


@attrs.frozen
class ReferenceModel:
    """One reference model, as a plugin declares it (``padecache_reference_models`` hook).

    Attributes:
        name: what ``--model`` / ``--pipeline`` / ``train-reference`` call it.
        summary: one line for ``padecache list``.
        inputs: what ``padecache generate`` passes it: ``"prompts"`` (a text-to-image model: ``--prompt``) or
            ``"labels"`` (class-conditional: ``--labels``).  The pipeline is called as
            ``pipe(inputs, num_inference_steps=N, seed=S, ...)`` (``guidance_scale``, ``height``, ``width`` only
            when its ``__call__`` takes them).
        load: ``"module:function"``: ``load(name, weights=None) -> pipeline`` (``weights``: a directory ``train``
            wrote; ``None``: the bundled weights).
        bench: ``"module:function"``: ``run_bench(options, out=, progress=, executor=) -> list of records``.
        bench_options: ``"module:function"``: ``for_scope(scope, **overrides) -> options`` where ``scope`` is
            ``"quick"``, ``"key"`` or ``"full"`` and the overrides are ``padecache bench``'s arguments (``model``,
            ``weights``, ``ours``, ``methods``, ``steps``, ``targets``, ``samples``, ``seed``, ``repeats``,
            ``fid``, ``peers``; ``None`` keeps the scope's default).  The options have ``method_list()``,
            ``ours`` and ``targets``.
        train: ``"module:function"``: ``train(name, data, out, *, minutes, steps, seed) -> metadata dict``
            (``padecache train-reference``); ``None``: not trainable here.
        train_data: what ``--data`` is for ``train`` (shown in the help and errors).
        train_classifier: ``"module:function"``: ``fn(data, out, *, epochs, seed) -> metadata dict`` for the
            classifier its scorers use (``padecache train-classifier``); models sharing one function share it.
        default: this is the model ``padecache bench`` runs without ``--model``.
    """

    name: str = attrs.field(validator=_name)
    summary: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    inputs: str = attrs.field(default="labels", validator=attrs.validators.in_(INPUTS))
    load: str = attrs.field(default="", validator=_reference)
    bench: str | None = attrs.field(default=None, validator=_reference)
    bench_options: str | None = attrs.field(default=None, validator=_reference)
    train: str | None = attrs.field(default=None, validator=_reference)
    train_data: str = ""
    train_classifier: str | None = attrs.field(default=None, validator=_reference)
    default: bool = False

    @classmethod
    def from_any(cls, value: ReferenceModel | Mapping[str, Any]) -> ReferenceModel:
        """A descriptor from itself or from a dict of its fields (what a plugin's hook may return)."""
        if isinstance(value, ReferenceModel):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"a reference model is a padecache.reference_models.ReferenceModel or a dict of its fields, "
                             f"got {type(value).__name__}")
        fields = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ValueError(f"reference model {value.get('name')!r}: unknown field(s) {', '.join(unknown)}; "
                             f"fields: {', '.join(sorted(fields))}")
        return cls(**value)

    def function(self, field: str) -> Callable[..., Any]:
        """The function behind ``field`` (``"load"``, ``"bench"``...), imported now; ``MissingModel`` saying why not."""
        ref = getattr(self, field)
        if not ref:
            raise MissingModel(f"reference model {self.name!r} has no `{field}` (its plugin does not provide one)")
        try:
            return resolve_reference(ref)
        except Exception as err:  # noqa: BLE001 - said with the model and the reference, never as a bare traceback
            raise MissingModel(f"reference model {self.name!r}: cannot import its `{field}` ({ref}): "
                               f"{type(err).__name__}: {err}") from err


class MissingModel(LookupError):
    """No such reference model here, or its plugin cannot provide what was asked for; the message says why."""
