"""Rank-consistent decisions when one generation is sharded over a sequence-parallel group.

Under context parallelism (diffusers' ``enable_parallelism`` with a ``ContextParallelConfig``, or any group a
user names with :func:`padecache.set_sequence_group`) each rank holds a slice of the tokens.  Every quantity
a decision depends on -- the guard's norms and finiteness, a policy's indicator, a predictor's per-row
statistics -- must then be the full-sequence value on every rank, or ranks decide differently and the
collectives inside attention deadlock.

Components ask for sums over the group with ``ctx.reduce(tensor)``, which returns a :class:`Deferred`; its
``value`` is the sum over every rank.  Requests are queued and sent together in one packed all-reduce, the
first time any queued value is read: what a call's components queue while recording a step is reduced at
the next point a decision needs it.  A norm is then the root of the reduced sum of squares (never an average
of per-rank norms).  Without a group, ``ctx.reduce`` returns the local tensor at once and nothing is sent.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Reducer", "Deferred", "LOCAL", "context_parallel_group"]


class Deferred:
    """A sum over the sequence-parallel group, sent with the next packed all-reduce."""

    __slots__ = ("_reducer", "_local", "_value")

    def __init__(self, reducer: Reducer | None, local: torch.Tensor):
        self._reducer, self._local, self._value = reducer, local, None if reducer is not None else local

    @property
    def value(self) -> torch.Tensor:
        if self._value is None:
            self._reducer.flush()
        return self._value


class Reducer:
    """Queues partial sums and all-reduces them together over ``group`` (a ``torch.distributed`` process group)."""

    def __init__(self, group: Any = None):
        self.group = group
        self.pending: list[Deferred] = []
        self.flushes = 0  # all-reduces sent (tests count them)

    @property
    def active(self) -> bool:
        return self.group is not None

    def reduce(self, local: torch.Tensor) -> Deferred:
        """The sum of ``local`` over the group, as a :class:`Deferred` (the local value itself without a group)."""
        if self.group is None:
            return Deferred(None, local)
        handle = Deferred(self, local.detach())
        self.pending.append(handle)
        return handle

    def gather(self, local: torch.Tensor, dim: int, fn: Any = None) -> torch.Tensor:
        """The whole tensor from every rank's shard of it along ``dim``, in rank order (``local`` itself without a
        group); shards may differ in length.  With ``fn``: this rank's part of ``fn(whole)`` (``fn`` keeps the shape),
        so a forecast that mixes tokens (a spatial filter) gives each rank its shard of the unsharded result.  Sent at
        once: for a component that needs the whole sequence, called at the same point on every rank."""
        if self.group is None:
            return local if fn is None else fn(local)
        import torch.distributed as dist

        world = dist.get_world_size(self.group)
        size = torch.tensor([local.shape[dim]], dtype=torch.long, device=local.device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size, group=self.group)
        lengths = [int(n.item()) for n in sizes]
        x = local.detach().contiguous()
        if max(lengths) > x.shape[dim]:  # all_gather needs equal shapes: pad, then cut each shard back
            pad = list(x.shape)
            pad[dim] = max(lengths) - x.shape[dim]
            x = torch.cat([x, x.new_zeros(pad)], dim)
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x, group=self.group)
        whole = torch.cat([part.narrow(dim, 0, n) for part, n in zip(parts, lengths)], dim)
        if fn is None:
            return whole
        rank = dist.get_rank(self.group)
        return fn(whole).narrow(dim, sum(lengths[:rank]), lengths[rank])

    def flush(self) -> None:
        """Send every queued partial sum in one all-reduce."""
        import torch.distributed as dist

        pending, self.pending = self.pending, []
        if not pending:
            return
        flat = torch.cat([h._local.reshape(-1).to(torch.float64) for h in pending])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)
        self.flushes += 1
        offset = 0
        for h in pending:
            n = h._local.numel()
            h._value = flat[offset:offset + n].reshape(h._local.shape).to(h._local.dtype)
            h._local = None
            offset += n


#: the reducer of an unsharded run: sums are local, nothing is sent
LOCAL = Reducer(None)


def context_parallel_group(model: Any) -> Any:
    """The process group diffusers' context parallelism shards ``model``'s sequence over, or ``None``."""
    config = getattr(model, "_parallel_config", None)
    cp = getattr(config, "context_parallel_config", None)
    mesh = getattr(cp, "_flattened_mesh", None)
    if mesh is None:
        return None
    try:
        return mesh.get_group()
    except Exception:  # noqa: BLE001 - a mesh without a usable group: not sharded as far as we can tell
        return None
