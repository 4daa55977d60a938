"""How a head receives the block stack's output when it does not receive it as it is.

The engine keeps a stream as batch-first rows shaped as the head receives them, and needs three maps between the
model's tensors and those rows:

* ``stack(x, call)``: the stream entering the first block -> rows (where the model changes the stream between the
  stack and the head: Krea 2 cuts the text tokens off, FramePack keeps the window's tokens, ERNIE-Image's stream is
  sequence-first);
* ``rows(h, call)``: what the head receives -> rows (ConsisID's head receives ``[text, image]``, Kandinsky 5's the
  tokens unflattened to ``(B, F, H, W, D)``);
* ``inject(h, value, call)``: rows -> what the head receives, ``h`` with ``value`` written where ``rows`` read.

A residual is ``rows(head input) - stack(stack input)``; a forecast hands the head ``inject(h, stack(x) + R)``.  Every
map is the identity unless the adapter's :class:`HeadInput` says otherwise, and the constructors below cover what
diffusers' models do (a token slice at either end, a leading text part, an unflattened grid, sequence-first
streams).  Token counts are data: an int, ``"config.<name>"`` (the model's config), ``"<argument>"`` (the size of
dimension 1 of that argument of the model call), or a function of the :class:`ModelCall`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["HeadInput", "ModelCall", "Count", "control_state"]

Count = int | str | Callable[["ModelCall"], int]


class ModelCall:
    """One call of the transformer: the model and the arguments it was called with, bound by name on first use."""

    __slots__ = ("model", "args", "kwargs", "_bound")

    def __init__(self, model: Any, args: tuple = (), kwargs: dict | None = None):
        self.model, self.args, self.kwargs, self._bound = model, args, dict(kwargs or {}), None

    def __getitem__(self, name: str) -> Any:
        """The value of argument ``name`` (its default when the call left it out)."""
        if name in self.kwargs:
            return self.kwargs[name]
        if self._bound is None:
            sig = inspect.signature(type(self.model).forward)
            bound = sig.bind_partial(self.model, *self.args, **self.kwargs)
            bound.apply_defaults()
            self._bound = dict(bound.arguments)
        try:
            return self._bound[name]
        except KeyError:
            raise KeyError(f"{type(self.model).__name__}.forward has no argument `{name}`") from None

    def count(self, spec: Count) -> int:
        """A token count given as data (see the module docstring)."""
        if callable(spec):
            return int(spec(self))
        if isinstance(spec, int):
            return spec
        if spec.startswith("config."):
            return int(getattr(self.model.config, spec[len("config."):]))
        return int(self[spec].shape[1])


@attrs.frozen
class HeadInput:
    """The maps between a stream and the rows the engine keeps for it (identity where ``None``).

    Use the constructors: :meth:`drop_leading`, :meth:`keep_trailing`, :meth:`after_leading`, :meth:`grid`,
    :meth:`sequence_first`.
    """

    stack: Callable[[Any, ModelCall], Any] | None = None
    rows: Callable[[Any, ModelCall], Any] | None = None
    inject: Callable[[Any, Any, ModelCall], Any] | None = None
    describe: str = ""

    def stack_rows(self, x: Any, call: ModelCall) -> Any:
        return x if self.stack is None else self.stack(x, call)

    def head_rows(self, h: Any, call: ModelCall) -> Any:
        return h if self.rows is None else self.rows(h, call)

    def head_value(self, h: Any, value: Any, call: ModelCall) -> Any:
        return value if self.inject is None else self.inject(h, value, call)

    @classmethod
    def drop_leading(cls, count: Count) -> HeadInput:
        """The model drops the first ``count`` tokens of the stream before the head (Krea 2's text, memory tokens)."""
        return cls(stack=lambda x, call: x[:, call.count(count):], describe=f"the stream minus its first {count} tokens")

    @classmethod
    def keep_trailing(cls, count: Count) -> HeadInput:
        """The model keeps the last ``count`` tokens of the stream for the head (FramePack's window after its history)."""
        return cls(stack=lambda x, call: x[:, x.shape[1] - call.count(count):],
                   describe=f"the last {count} tokens of the stream")

    @classmethod
    def after_leading(cls, count: Count) -> HeadInput:
        """The head receives ``[other, stream]``: ``count`` tokens of something else in front of the stream (ConsisID's
        text); a forecast replaces the stream's part and leaves the rest as the model computed it."""

        def rows(h, call):
            return h[:, call.count(count):]

        def inject(h, value, call):
            import torch

            n = call.count(count)
            return torch.cat([h[:, :n], value.to(h.dtype)], dim=1)

        return cls(rows=rows, inject=inject, describe=f"[{count} other tokens, the stream]")

    @classmethod
    def grid(cls) -> HeadInput:
        """The head receives the stream's tokens unflattened to a grid ``(B, *grid, D)`` (Kandinsky 5)."""
        return cls(rows=lambda h, call: h.flatten(1, -2), inject=lambda h, value, call: value.reshape(h.shape),
                   describe="the stream unflattened to (B, ..., D)")

    @classmethod
    def sequence_first(cls) -> HeadInput:
        """The stream is sequence-first, ``(S, B, D)`` (ERNIE-Image): rows are its transpose."""
        return cls(stack=lambda x, call: x.transpose(0, 1), rows=lambda h, call: h.transpose(0, 1),
                   inject=lambda h, value, call: value.transpose(0, 1), describe="sequence-first (S, B, D)")


def control_state(value: Any) -> bool:
    """Whether a per-step control input (ControlNet residuals: a tensor or a list of them) acts in this call: given
    and not all zero.  Pipelines zero the residuals outside ``control_guidance_start/end`` rather than leave them out.
    (One host sync per call, and only when the input is given.)"""
    if value is None:
        return False
    tensors = value if isinstance(value, (list, tuple)) else [value]
    return any(bool(t.any()) for t in tensors if t is not None)
