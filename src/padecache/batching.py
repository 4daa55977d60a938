"""Batch rows and streams of block calls, for :mod:`padecache.hooks`: the rows a mixed call runs the blocks on, the
streams packed side by side per row, and the shape of what a block returns."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection
from typing import Any

import torch

from .adapters import BlockIO, position_of

__all__ = ["stream_encoder", "pack_streams", "unpack_stream", "take_rows", "block_rows", "put_rows", "structure",
           "structure_fits"]


def stream_encoder(io: BlockIO) -> str | None:
    """The encoder-stream argument a block updates and returns, if any."""
    if io.returns is not None:
        names = [r for r in ((io.returns,) if isinstance(io.returns, str) else io.returns)
                 if r and not r.startswith("zeros:") and r != io.hidden]
        return names[0] if names else None
    return io.encoder if io.encoder_index is not None else None


def pack_streams(streams: list, to_history: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The streams as one batch-first tensor in the history dtype (several: flattened, side by side per row)."""
    return to_history(streams[0]) if len(streams) == 1 else torch.cat([to_history(t).flatten(1) for t in streams], 1)


def unpack_stream(shapes: list, x_rows: torch.Tensor, prediction: torch.Tensor, stream: int) -> torch.Tensor:
    """``x_rows + prediction`` for one stream, in that stream's shape (several streams are packed per row)."""
    if len(shapes) == 1:
        return x_rows + prediction
    start = sum(math.prod(s[1:]) for s in shapes[:stream])
    size = math.prod(shapes[stream][1:])
    return (x_rows[:, start:start + size] + prediction[:, start:start + size]).reshape(len(x_rows), *shapes[stream][1:])


def take_rows(value: Any, rows: torch.Tensor, batch: int, shared: Collection[str] = ()) -> Any:
    """The rows ``rows`` of every batch-first tensor in ``value`` (arguments of a block call); the keyword
    arguments named in ``shared`` hold no batch axis (rotary embeddings whose first size may equal the batch by
    coincidence) and are passed as they are."""
    if shared and isinstance(value, dict):
        return {k: v if k in shared else take_rows(v, rows, batch) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.index_select(0, rows.to(value.device)) if value.dim() >= 1 and value.shape[0] == batch else value
    if isinstance(value, tuple):
        items = [take_rows(v, rows, batch) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [take_rows(v, rows, batch) for v in value]
    if isinstance(value, dict):
        return {k: take_rows(v, rows, batch) for k, v in value.items()}
    return value


def block_rows(forward: Callable, args: tuple, kwargs: dict, rows: torch.Tensor, batch: int,
               shared: tuple[str, ...] = ()) -> tuple[tuple, dict]:
    """The arguments of a block call ``forward(*args, **kwargs)`` for batch ``rows`` alone; the arguments named in
    ``shared`` (:attr:`~padecache.adapters.Adapter.shared_arguments`) are passed whole, by keyword where they came
    by position (with every positional argument after the first of them, so that the call keeps its meaning)."""
    positions = [p for p in (position_of(forward, name) for name in shared) if p is not None and p < len(args)]
    if positions:
        cut = min(positions)
        params = inspect.signature(forward).parameters.values()  # counted as position_of counts them
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        args, kwargs = args[:cut], {**dict(zip(names[cut:], args[cut:])), **kwargs}
    return take_rows(args, rows, batch), take_rows(kwargs, rows, batch, shared)


def put_rows(full: Any, part: Any, rows: torch.Tensor, batch: int) -> Any:
    """``full`` (a skipped block's output for every row) with ``part`` (the block's output for ``rows``) written in."""
    if isinstance(full, torch.Tensor) and isinstance(part, torch.Tensor):
        if full.dim() >= 1 and full.shape[0] == batch and part.shape[0] == len(rows):
            return full.index_copy(0, rows.to(full.device), part.to(full.dtype))
        return part
    if isinstance(full, (tuple, list)) and isinstance(part, (tuple, list)) and len(full) == len(part):
        items = [None if f is None or p is None else put_rows(f, p, rows, batch) for f, p in zip(full, part)]
        # (an extra entry a skipped block leaves None stays None: some rows of the call did not compute it)
        return type(part)(*items) if hasattr(part, "_fields") else type(part)(items)
    if isinstance(full, dict) and isinstance(part, dict) and full.keys() == part.keys():
        return type(part)((k, None if full[k] is None or part[k] is None else put_rows(full[k], part[k], rows, batch))
                          for k in part)
    return part


def structure(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return ("tensor", tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return tuple(structure(o) if isinstance(o, torch.Tensor) else ("none" if o is None else type(o).__name__) for o in out)
    if isinstance(out, dict):
        return {k: structure(v) if v is not None else "none" for k, v in out.items()}
    return type(out).__name__


def structure_fits(skipped: Any, out: Any) -> bool:
    """Whether a skipped block's output (its :func:`structure`) stands in for the block's: equal, where an entry the
    skipped output leaves ``None`` (``BlockIO(size=...)``'s extra entries) may be anything in the block's."""
    if skipped == "none":
        return True
    if isinstance(skipped, tuple) and isinstance(out, tuple) and len(skipped) == len(out) and skipped[:1] != ("tensor",):
        return all(structure_fits(s, o) for s, o in zip(skipped, out))
    if isinstance(skipped, dict) and isinstance(out, dict) and skipped.keys() == out.keys():
        return all(structure_fits(skipped[k], out[k]) for k in skipped)
    return skipped == out
