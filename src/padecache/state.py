"""Per-branch state of one generation: row groups, each with its own predictor, policy and guard statistics.

A guidance branch ("cond", "uncond", "main" ...) starts as one :class:`Slot` holding every batch row.  When
rows must go separate ways -- a policy decides per row, or the guard rejects one row's forecast -- the slot
splits into two, each keeping the history of its own rows (:meth:`padecache.Predictor.select`), so every row
sees exactly what it would have seen alone.  A change of batch size or shape restarts the branch.

:class:`Part` and :class:`Plan` are what the engine decides for one call; :class:`Owner` keeps the thread a
generation belongs to: a hooked model runs one generation at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
import torch

from .errors import ThreadConflictError
from .interfaces import CachePolicy, Predictor, StepContext

__all__ = ["Slot", "BranchState", "Owner", "Part", "Plan"]


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

    def split(self, slot: Slot, keep: torch.Tensor, batch: int) -> tuple[Slot, Slot]:
        """Split ``slot`` into the rows where ``keep`` is true and the others; both take its place."""
        new = slot.split(keep, batch)
        i = self.slots.index(slot)
        self.slots[i:i + 1] = list(new)
        return new

    def state_tensors(self):
        for slot in self.slots:
            yield from slot.predictor.state_tensors()
            yield from slot.policy.state_tensors()


@attrs.define
class Part:
    """One row group's share of a call: computed (and why), or forecast with its ``prediction``."""

    slot: Slot
    ctx: StepContext
    compute: bool
    reason: str
    rows: torch.Tensor | None  # indices into the batch (None: every row)
    prediction: torch.Tensor | None = None


@attrs.define
class Plan:
    """What one call does: ``mode`` is ``"compute"`` (every row runs the stack), ``"skip"`` (none does) or ``"mixed"``
    (the rows ``compute_rows`` run it); ``x_in`` is the stack input in the history's dtype and device."""

    ctx: StepContext
    branch: BranchState
    x_in: torch.Tensor
    parts: list[Part]
    mode: str
    compute_rows: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return self.x_in.shape[0]

    @property
    def forecasts(self) -> list[Part]:
        return [p for p in self.parts if not p.compute]


class Owner:
    """The thread the current generation of one model belongs to.

    A hooked model runs one generation at a time, as its pipeline's scheduler does.  A call from another thread
    while that generation runs (claimed, not finished, its thread alive) is refused before it changes anything,
    and the generation it interrupted is refused at its next call or at the end of the call in flight: the
    other thread may already have changed state both share (the scheduler's timesteps, the cache context), so
    neither result could be trusted.  A generation is over when the pipeline resets it (the end of every
    pipeline call), at the end of its last step, or when one of its calls raised.
    """

    def __init__(self):
        self.thread: threading.Thread | None = None
        self.busy = False
        self.intruder: threading.Thread | None = None
        self.where = ""  # the owner's progress, for messages

    def claim(self, model_name: str) -> None:
        """The calling thread starts a call: refuse it if another thread's generation is running."""
        me = threading.current_thread()
        if self.thread is me:
            self.check(model_name)
            self.busy = True
            return
        if self.thread is None or not self.busy or not self.thread.is_alive():
            self.thread, self.busy, self.intruder = me, True, None
            return
        self.intruder = me
        raise ThreadConflictError(
            f"padecache: thread {me.name!r} called this {model_name} while thread {self.thread.name!r} is generating "
            f"with it ({self.where}); a hooked model (like its pipeline's scheduler) runs one generation at a time, "
            f"so both calls are refused rather than giving wrong images. Use one pipeline per thread, or a lock around "
            f"each pipe(...) call; if thread {self.thread.name!r} abandoned its generation, padecache.reset(pipe) ends it"
        )

    def check(self, model_name: str) -> None:
        """The owner's generation was interrupted by another thread: refuse to go on with it."""
        intruder, me = self.intruder, threading.current_thread()
        if intruder is None or self.thread is not me:
            return
        self.release()
        raise ThreadConflictError(
            f"padecache: thread {intruder.name!r} called this {model_name} while this thread ({me.name!r}) was "
            f"generating with it; that call was refused, but it may have changed what this generation depends on (the "
            f"pipeline's scheduler, the cache context), so this generation stops too. Use one pipeline per thread, or "
            f"a lock around each pipe(...) call"
        )

    def finished(self) -> None:
        """The generation's last step has run: another thread may start the next one."""
        self.busy = False

    def release(self) -> None:
        self.thread, self.busy, self.intruder, self.where = None, False, None, ""
