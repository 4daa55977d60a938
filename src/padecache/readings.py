"""What input-aware components read beside the block stack, gathered from one transformer call.

A policy or predictor names the :class:`~padecache.interfaces.StepInputs` fields it reads in ``inputs``; the hooks
gather only those, in the history dtype: the latents when the call starts, the first block's modulated input, its
streams and its ``temb`` when block 0 is entered, the family's timestep embedding from the module its adapter names
(:class:`~padecache.adapters.TimeEmbedding`), and hand them to the engine with the stack input when the cached range
starts.  Nothing here decides; nothing is read that no component declared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from .adapters import Adapter, TimeEmbedding, argument, position_of
from .batching import pack_streams
from .interfaces import StepInputs

__all__ = ["Readings"]


@attrs.define
class Readings:
    """The declared inputs of one call, filled as the call runs (``None`` until read, or where not given)."""

    wanted: frozenset[str]
    to_history: Callable[[torch.Tensor], torch.Tensor]
    model_input: torch.Tensor | None = None
    modulated: torch.Tensor | None = None
    first_streams: list | None = None  # the streams entering block 0, packed at the range's start
    time_embedding: torch.Tensor | None = None
    time_projection: torch.Tensor | None = None

    def at_call(self, args: tuple, kwargs: dict) -> None:
        """The transformer call's latents (its ``hidden_states`` argument)."""
        if "model_input" in self.wanted:
            x = kwargs.get("hidden_states", args[0] if args else None)
            self.model_input = self.to_history(x) if isinstance(x, torch.Tensor) else None

    def at_first_block(self, adapter: Adapter, module: Any, forward: Callable, args: tuple, kwargs: dict,
                       streams: list[str] | None) -> None:
        """Block 0 is about to run: its modulated input, the ``streams`` it takes (``None``: the cached range starts
        here), its timestep conditioning, and the family's timestep embedding where it is a block argument."""
        wanted = self.wanted

        def arg(name: str) -> Any:  # TypeError where block 0 takes no such argument
            return argument(args, kwargs, name, position_of(forward, name))

        with torch.no_grad():
            if "modulated" in wanted and self.modulated is None and adapter.modulated is not None:
                self.modulated = self.to_history(adapter.modulated(module, forward, args, kwargs))
            if "first_input" in wanted and streams is not None:
                try:
                    self.first_streams = [arg(name) for name in streams]
                except TypeError:  # block 0 does not take the cached range's streams
                    self.first_streams = None
            spec = adapter.time_embedding
            fields = [("time_projection", "temb")]
            if spec is not None and spec.argument is not None:
                fields.append(("time_embedding", spec.argument))
            for field, name in fields:
                if field in wanted and getattr(self, field) is None:
                    try:
                        value = arg(name)
                    except TypeError:  # the first block takes no such argument: the field stays None
                        continue
                    if isinstance(value, torch.Tensor):
                        setattr(self, field, self.to_history(value))

    def from_embedder(self, spec: TimeEmbedding, output: Any) -> None:
        """The output of the module the adapter names for the timestep embedding (its forward hook calls this)."""
        value = output if spec.output is None else output[spec.output]
        if isinstance(value, torch.Tensor):
            self.time_embedding = self.to_history(value)

    def step_inputs(self, x_in: torch.Tensor, shapes: list, first: bool, as_heads: Callable[[list], list]) -> StepInputs | None:
        """What was declared, for every row of the call: ``x_in`` is the stack input, packed from streams of
        ``shapes``; ``first``: the cached range starts at block 0 (whose input is then ``x_in``); ``as_heads``
        changes block 0's streams as the stack's were (the heads' layout) before they are packed alike (not where
        their shapes differ: ``first_input`` is then ``None``)."""
        if not self.wanted:
            return None
        first_input = x_in if first and "first_input" in self.wanted else None
        if self.first_streams is not None:
            streams = as_heads(self.first_streams)
            if [tuple(t.shape) for t in streams] == shapes:
                first_input = pack_streams(streams, self.to_history)
            self.first_streams = None
        rows = x_in.shape[0]
        return StepInputs(stack_input=x_in if "stack_input" in self.wanted else None,
                          modulated=_per_stack_row(self.modulated, rows), model_input=_per_stack_row(self.model_input, rows),
                          first_input=first_input, time_embedding=_per_stack_row(self.time_embedding, rows),
                          time_projection=_per_stack_row(self.time_projection, rows))


def _per_stack_row(value: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """``value`` with one row per block-stack row, as every field of :class:`StepInputs` is.

    Video families whose blocks see each frame as a row (Latte: ``(sample, frame)`` rows, sample-major, as
    ``reshape(batch * frames, ...)`` lays them out) get each sample's reading repeated for its frames; a reading
    with no batch axis, or one that does not divide into the stack's rows, is not given (``None``), so that a
    policy falls back to what it can read instead of deciding for the wrong rows."""
    if value is None or value.dim() == 0:
        return value if rows == 1 else None
    n = value.shape[0]
    if n == rows:
        return value
    if n and rows % n == 0:
        return value.repeat_interleave(rows // n, dim=0)
    return None
