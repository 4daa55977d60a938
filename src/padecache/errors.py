"""Errors padecache raises about a run: a component that failed, and a hooked model used from two threads at once;
and :func:`warn`, through which padecache and its plugins warn, so that a benchmark can say whose warning it is."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["ComponentError", "PipelineError", "ThreadConflictError", "component_error", "pipeline_error", "prediction_problem", "head_shape_error", "COPY_MESSAGE",
           "Uncopyable", "warn", "speaking_for", "fallbacks_message"]

#: who the warnings of this thread or task are said for ("" outside :func:`speaking_for`)
_SPEAKER: contextvars.ContextVar[str] = contextvars.ContextVar("padecache_speaker", default="")


def warn(message: str, category: type[Warning] = RuntimeWarning, stacklevel: int = 1) -> None:
    """``warnings.warn`` for padecache and its plugins: the message is prefixed with the name :func:`speaking_for`
    set in this thread or task (the benchmark names the method it measures), and ``stacklevel`` counts from the
    caller, as ``warnings.warn``'s does."""
    warnings.warn(f"{_SPEAKER.get()}{message}", category, stacklevel=stacklevel + 1)


@contextlib.contextmanager
def speaking_for(name: str) -> Iterator[None]:
    """Within this block, :func:`warn` prefixes its messages with ``name: `` -- in this thread or task only (a
    context variable: no process-wide state changes, so warnings of other threads keep their own words)."""
    token = _SPEAKER.set(f"{name}: ")
    try:
        yield
    finally:
        _SPEAKER.reset(token)

COPY_MESSAGE = (
    "this {name} has padecache applied and cannot be {what} with it: padecache.remove(model) first, then apply "
    "padecache to the copy (and to the original again) -- each needs its own hooks and state"
)


class ComponentError(Exception):
    """An exception raised inside a predictor, policy or stage detector, re-raised with the component, its
    plugin, the step and the branch named (the original is chained as ``__cause__``).

    The re-raised exception is also an instance of the original's type (a ``ValueError`` stays a ``ValueError``),
    so code that catches the original keeps working.
    """


class PipelineError(Exception):
    """An exception the pipeline itself raised on a request (a class label it does not have, an image too small for
    its patches), re-raised by ``padecache generate`` naming the pipeline and the request to check; the original is
    chained as ``__cause__``, and the re-raised exception is also an instance of the original's type."""


class ThreadConflictError(RuntimeError):
    """A hooked model was called from a second thread while a generation was running on another (see
    :func:`padecache.apply`: a hooked pipeline, like its scheduler, runs one generation at a time)."""


_TYPES: dict[tuple[type, type], type] = {}


def _combined(cls: type, base: type = ComponentError) -> type:
    """A subclass of both ``cls`` and ``base`` (``base`` alone when they cannot mix)."""
    if (cls, base) not in _TYPES:
        try:
            _TYPES[cls, base] = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
        except TypeError:  # an exception type with an incompatible layout
            _TYPES[cls, base] = base
    return _TYPES[cls, base]


def _rebuilt(err: Exception, base: type, message: str) -> Exception:
    cls = _combined(type(err), base)
    try:
        return cls(message)
    except Exception:  # noqa: BLE001 - an exception type whose constructor wants other arguments
        return base(message)


def component_error(err: Exception, label: str, plugin: str, version: str, method: str, where: Any) -> Exception:
    """``err`` re-raised as a :class:`ComponentError` naming ``label`` (e.g. ``predictor 'x'``), its plugin, the
    method that raised and ``where`` (a :class:`~padecache.StepContext`)."""
    if isinstance(err, ComponentError):
        return err
    message = (f"{label} (plugin {plugin!r} {version}) raised {type(err).__name__} in {method}() at step "
               f"{where.step} of {where.num_steps}, branch {where.branch!r}: {err}")
    return _rebuilt(err, ComponentError, message)


def pipeline_error(err: Exception, pipeline: str, request: str) -> Exception:
    """``err``, raised by the pipeline called with ``request`` (e.g. ``labels [5000], 16x16``), as a
    :class:`PipelineError` saying so; padecache's own errors (a component's, a thread conflict) stay as they are."""
    if isinstance(err, (ComponentError, PipelineError, ThreadConflictError)):
        return err
    return _rebuilt(err, PipelineError, f"{pipeline} raised {type(err).__name__} on this request ({request}): {err}. "
                                        f"Check the request against what the model takes")


def prediction_problem(prediction: Any, x_in: Any) -> str | None:
    """What is wrong with a forecast for the block-stack input ``x_in`` (type, shape, dtype, device), or ``None``."""
    import torch

    if not isinstance(prediction, torch.Tensor):
        return f"returned a {type(prediction).__name__}, not a tensor"
    if prediction.shape != x_in.shape:
        return f"returned shape {tuple(prediction.shape)} for a block stack of shape {tuple(x_in.shape)}"
    if prediction.dtype != x_in.dtype:
        return f"returned dtype {prediction.dtype}, the history dtype is {x_in.dtype}"
    if prediction.device != x_in.device:
        return f"returned a tensor on {prediction.device}, the block-stack input is on {x_in.device}"
    return None


def head_shape_error(adapter: str, model: str, head: str, got: tuple, expected: tuple, blocks: list, first: int) -> TypeError:
    """The head receives another shape than the cached range started with: with ``engine.first_blocks`` the range
    may start in a block list whose stream the model reshapes before the head (FLUX.2, Chroma, HiDream, AuraFlow:
    the single-stream blocks carry [text, image]); otherwise the adapter names the wrong head."""
    if first > 0:
        start_list, start_index, _ = blocks[first]
        before = next(k for k, (name, _, _) in enumerate(blocks) if name == start_list)
        advice = f"engine.first_blocks = {before - 1} or fewer" if before > 1 else "engine.first_blocks = 0"
        return TypeError(
            f"engine.first_blocks = {first}: the cached range starts at {start_list}[{start_index}] of {model}, whose "
            f"stream has shape {expected}, but the head `{head}` receives shape {got}: the model changes the stream "
            f"between those blocks and the head.  Start the range where the head's stream is carried ({advice})")
    return TypeError(f"adapter {adapter!r}: the head `{head}` of {model} receives shape {got}, but the block stack's "
                     f"input has shape {expected}; the adapter's `head` must be the module that takes the block-stack output")


class Uncopyable:
    """Refuses ``copy.deepcopy`` and pickling (what padecache attaches to a model), saying to ``remove`` first;
    ``_model_name()`` names the model."""

    __slots__ = ()

    def _model_name(self) -> str:
        return "model"

    def __deepcopy__(self, memo):
        raise TypeError(COPY_MESSAGE.format(name=self._model_name(), what="copied"))

    def __reduce_ex__(self, protocol):
        raise TypeError(COPY_MESSAGE.format(name=self._model_name(), what="pickled"))


def fallbacks_message(fallbacks: int, attempts: int, nonfinite: int, predictor: str, max_growth: float) -> str:
    """The warning for a generation whose forecasts mostly fell back: why, and what to check."""
    head = f"padecache: {fallbacks} of {attempts} forecasts of {predictor} were rejected"
    if nonfinite * 2 >= fallbacks:
        return (f"{head} by the guard and computed instead, because the residuals they are forecast from are "
                f"non-finite (NaN or Inf): the block stack's input or output was non-finite -- check the initial "
                f"latents, and the model in this dtype; the predictor is not the cause")
    return (f"{head} by the guard (non-finite, or larger than engine.max_growth = {max_growth:g} x the largest "
            f"computed residual) and computed instead: this generation ran at nearly full cost. Check the predictor, "
            f"or its options")
