"""Per-branch state of one generation: row groups, each with its own predictor, policy and guard statistics.

A guidance branch ("cond", "uncond", "main" ...) starts as one :class:`Slot` holding every batch row.  When
rows must go separate ways -- a policy decides per row, or the guard rejects one row's forecast -- the slot
splits into two, each keeping the history of its own rows (:meth:`padecache.Predictor.select`), so every row
sees exactly what it would have seen alone.  A change of batch size or shape restarts the branch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .interfaces import CachePolicy, Predictor

__all__ = ["Slot", "BranchState"]


class Slot:
    """Rows of one branch sharing a decision history."""

    __slots__ = ("rows", "predictor", "policy", "history", "_max_norm", "_pending")

    def __init__(self, rows: torch.Tensor | None, predictor: Predictor, policy: CachePolicy):
        self.rows = rows  # indices into the batch; None = every row
        self.predictor, self.policy = predictor, policy
        self.history = 0  # computed residuals given to the predictor since the branch (re)started
        self._max_norm: torch.Tensor | None = None  # per row: largest computed residual norm
        self._pending: list = []  # group sums of squares of computed residuals not folded in yet

    def note_residual(self, sumsq) -> None:
        """A computed residual's per-row sum of squares (a Deferred group sum): its norm bounds later forecasts."""
        self._pending.append(sumsq)

    @property
    def max_norm(self) -> torch.Tensor | None:
        for handle in self._pending:
            norms = handle.value.sqrt()
            self._max_norm = norms if self._max_norm is None else torch.maximum(self._max_norm.to(norms.device), norms)
        self._pending = []
        return self._max_norm

    def size(self, batch: int) -> int:
        return batch if self.rows is None else len(self.rows)

    def indices(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        if self.rows is None:
            return torch.arange(batch, device=device)
        return self.rows if device is None else self.rows.to(device)

    def split(self, keep: torch.Tensor, batch: int) -> tuple[Slot, Slot]:
        """Two slots: the rows where ``keep`` (a bool per row of this slot) is true, and the others."""
        n = self.size(batch)
        local = torch.arange(n)
        parts = []
        for sel in (keep, ~keep):
            idx = local[sel.cpu()]
            slot = Slot(self.indices(batch).cpu()[idx], self.predictor.select(idx, n), self.policy.select(idx, n))
            slot.history = self.history
            bound = self.max_norm
            slot._max_norm = None if bound is None else bound[idx.to(bound.device)]
            parts.append(slot)
        return parts[0], parts[1]


class BranchState:
    """One guidance branch: its slots, the last step it ran, and the input signature its history belongs to."""

    def __init__(self, name: str, factory: Callable[[], tuple[Predictor, CachePolicy]]):
        self.name = name
        self._factory = factory
        self.last_step = -1
        self.signature: tuple | None = None
        self.slots: list[Slot] = []
        self.restart()

    def restart(self) -> None:
        predictor, policy = self._factory()
        self.slots = [Slot(None, predictor, policy)]
        self.signature = None

    def state_tensors(self):
        for slot in self.slots:
            yield from slot.predictor.state_tensors()
            yield from slot.policy.state_tensors()
