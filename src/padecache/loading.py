"""Loading a pipeline for ``padecache generate`` (and the cluster's workers), and calling it the way it is called.

* :func:`load_pipeline`: a local diffusers pipeline directory (offline), a reference model by name (found through
  the registry: :mod:`padecache.reference_models`), or the object itself;
* :func:`pipeline_call`: the arguments of one generation, checked against what the pipeline takes: an option the
  pipeline does not take (``--height`` on a model of fixed size) is refused, never silently dropped.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .reference_models import MissingModel, ReferenceModel
from .references import find_model, missing_reason, registered_models

__all__ = ["load_pipeline", "reference_model", "Request", "Call", "pipeline_call", "check_request", "is_diffusers",
           "transformers_of"]


def _check_model_index(path: Path) -> dict:
    """``model_index.json`` of a pipeline directory; a clear error when it is missing or unreadable (before diffusers
    reads it)."""
    index = path / "model_index.json"
    if not index.is_file():
        raise ValueError(f"{path}: not a diffusers pipeline directory (no model_index.json); save one with "
                         f"pipe.save_pretrained(DIR)")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{index}: not a valid model_index.json ({err}); re-save the pipeline with "
                         f"pipe.save_pretrained(DIR)") from None
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise ValueError(f"{index}: not a pipeline index (a JSON object with `_class_name` and one entry per component); "
                         f"re-save the pipeline with pipe.save_pretrained(DIR)")
    return data


def _load_directory(path: Path, device: str | None, dtype: Any) -> Any:
    from diffusers import DiffusionPipeline

    _check_model_index(path)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    try:
        pipe = DiffusionPipeline.from_pretrained(path, **kwargs)
    except Exception as err:  # noqa: BLE001 - a broken directory is the user's input: said in one line, no traceback
        first = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"{path}: diffusers could not load this pipeline ({type(err).__name__}: {first}); check its "
                         f"model_index.json and component folders, or re-save it with pipe.save_pretrained(DIR)") from None
    return pipe.to(device) if device else pipe


def reference_model(source: Any) -> ReferenceModel | None:
    """The reference model ``source`` names (``None`` for a directory, a pipeline object or an unknown name)."""
    if not isinstance(source, str) or Path(source).exists():
        return None
    return next((m for m, _, _ in registered_models() if m.name == source), None)


def load_pipeline(source: Any, device: str | None = None, dtype: Any = None) -> Any:
    """A pipeline from a local directory (offline), a reference model name, or the object itself.

    Reference models come from plugins (``padecache list`` shows them); an unknown name says which there are, or
    what to install when there are none.
    """
    if not isinstance(source, (str, Path)):
        return source
    path = Path(source)
    if path.is_dir():
        return _load_directory(path, device, dtype)
    models = registered_models()
    if not models:
        raise ValueError(f"{str(source)!r} is neither a pipeline directory nor a reference model: {missing_reason()}")
    try:
        model = find_model(str(source))
    except MissingModel as err:
        raise ValueError(f"{str(source)!r}: no such directory, and {err}") from None
    pipe = model.function("load")(model.name)
    if device and hasattr(pipe, "to"):
        return pipe.to(device)
    if device and str(device) != "cpu":
        raise ValueError(f"the reference model {model.name!r} runs on the CPU only (its pipeline cannot be moved); "
                         f"leave out --device, or give --device cpu")
    return pipe


def transformers_of(pipe: Any) -> list:
    """The transformer modules of ``pipe`` (Wan 2.2's experts included), as padecache hooks them
    (:func:`padecache.adapters.pipelines.denoisers`); ``[]`` for an object with none."""
    from .adapters.pipelines import denoisers

    try:
        return [d.module for d in denoisers(pipe)]
    except TypeError:  # neither a pipeline with a transformer nor a module: nothing to time or count
        return []


def is_diffusers(pipe: Any) -> bool:
    """A diffusers pipeline (called with keyword arguments), as opposed to a reference model's ``pipe(inputs, ...)``."""
    return hasattr(pipe, "components")


@attrs.frozen
class Request:
    """What one generation asks for (``None``: the pipeline's default, or not given)."""

    steps: int
    seed: int = 0
    prompt: str | Sequence[str] | None = None
    labels: Sequence[int] | None = None
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    guidance_scale: float | None = None


@attrs.frozen
class Call:
    """The arguments of one pipeline call: ``pipe(*args, **kwargs)`` (made afresh for every run: a generator is state)."""

    args: tuple
    kwargs: dict


#: request field -> (pipeline keyword, command-line flag)
_OPTIONAL = (("height", "height", "--height"), ("width", "width", "--width"), ("frames", "num_frames", "--frames"),
             ("guidance_scale", "guidance_scale", "--guidance"))


def _takes(cls: type) -> dict:
    """The parameters a pipeline class's ``__call__`` takes, by name."""
    return dict(inspect.signature(cls.__call__).parameters)


def _optional(params: dict, request: Request, label: str) -> dict:
    kw = {}
    for field, key, flag in _OPTIONAL:
        value = getattr(request, field)
        if value is None:
            continue
        if key not in params:
            raise ValueError(f"{label} takes no {flag} (its __call__ has no `{key}`"
                             + (": its images have a fixed size" if field in ("height", "width") else "") + "); leave it out")
        kw[key] = value
    return kw


def _request_kwargs(params: dict, name: str, r: Request) -> dict[str, Any]:
    """The keyword arguments ``r`` gives a pipeline class ``name`` whose ``__call__`` takes ``params``: a ``ValueError``
    for what it needs and lacks, or does not take."""
    kw: dict[str, Any] = {}
    if "class_labels" in params:
        if r.labels is None:
            raise ValueError(f"{name} is class-conditional: pass --labels (e.g. 1,2,3)")
        kw["class_labels"] = list(r.labels)
    elif "prompt" in params:
        if r.prompt is None:
            raise ValueError(f"{name} needs a --prompt")
        kw["prompt"] = r.prompt
        if r.negative_prompt is not None and "negative_prompt" in params:
            kw["negative_prompt"] = r.negative_prompt
    kw.update(_optional(params, r, name))
    return kw


def check_request(source: Any, request: Request) -> None:
    """Refuse what a saved pipeline cannot take (``--height`` on a model of fixed size, a missing ``--prompt``) before
    it loads: its class, named in ``model_index.json``, says what its ``__call__`` takes.  Other sources: nothing to do."""
    if not isinstance(source, (str, Path)) or not Path(source).is_dir():
        return
    name = _check_model_index(Path(source))["_class_name"]
    import diffusers

    try:
        cls = getattr(diffusers, name, None)
    except Exception:  # noqa: BLE001 - a class whose import fails: loading says why, in one line (_load_directory)
        return
    # a custom pipeline class (not in diffusers): checked once it loads
    if isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline) and "__call__" in dir(cls):
        _request_kwargs(_takes(cls), name, request)


def _diffusers_call(pipe: Any, r: Request) -> Call:
    import torch

    params = _takes(type(pipe))
    kw = _request_kwargs(params, type(pipe).__name__, r)
    device = getattr(pipe, "device", torch.device("cpu"))
    kw.update(num_inference_steps=r.steps, generator=torch.Generator(device=device).manual_seed(r.seed))
    if "output_type" in params:
        kw["output_type"] = "pt"
    return Call((), kw)


def _reference_call(pipe: Any, r: Request, model: ReferenceModel | None) -> Call:
    label = model.name if model is not None else type(pipe).__name__
    kind = model.inputs if model is not None else ("labels" if r.labels is not None else "prompts")
    if kind == "labels":
        if r.labels is None:
            raise ValueError(f"{label} is class-conditional: pass --labels (e.g. 3,1,4)")
        inputs: list = list(r.labels)
    else:
        if r.prompt is None:
            raise ValueError(f"{label} is a text-to-image model: pass --prompt (or --prompts-file)")
        inputs = [r.prompt] if isinstance(r.prompt, str) else list(r.prompt)
    if r.negative_prompt is not None:
        raise ValueError(f"{label} takes no --negative-prompt; leave it out")
    return Call((inputs,), {"num_inference_steps": r.steps, "seed": r.seed, **_optional(_takes(type(pipe)), r, label)})


def pipeline_call(pipe: Any, request: Request, model: ReferenceModel | None = None) -> Call:
    """The call of ``pipe`` for ``request``: a ``ValueError`` naming what the pipeline does not take.

    ``model`` is the reference model ``pipe`` was loaded as (its ``inputs`` say whether it takes prompts or labels).
    """
    return _diffusers_call(pipe, request) if is_diffusers(pipe) else _reference_call(pipe, request, model)
