"""Contexts with block-stack inputs, as the engine builds them for input-aware components (issue 18's spec).

``Inputs`` carries every field the components may read: the spec's ``stack_input``, ``modulated`` and
``model_input``, and the ones frontier asked for (``time_embedding``, ``first_input``, ``grid``).  ``ctx_at``
builds a :class:`padecache.StepContext` with ``inputs``, whether or not this padecache's context has the field.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from padecache import Schedule, StepContext


@attrs.frozen
class Inputs:
    stack_input: torch.Tensor | None = None
    modulated: torch.Tensor | None = None
    model_input: torch.Tensor | None = None
    time_embedding: torch.Tensor | None = None
    first_input: torch.Tensor | None = None
    grid: tuple[int, ...] | None = None


if "inputs" in attrs.fields_dict(StepContext):
    _Context = StepContext
else:  # the engine has not landed the field yet: the spec's context, built here

    @attrs.frozen
    class _Context(StepContext):
        inputs: Any = None


def ctx_at(schedule: Schedule, step: int, *, rows: int = 1, history: int = 0, inputs: Inputs | None = None,
           reducer: Any = None) -> StepContext:
    """The context of ``step`` with ``inputs`` (and ``reducer`` standing in for a sequence-parallel group)."""
    sigma = None if schedule.sigmas is None else schedule.sigmas[step]
    return _Context(step, schedule.num_steps, schedule.timesteps[step], sigma, schedule=schedule, history=history,
                    rows=rows, reducer=reducer, inputs=inputs)


def sigma_schedule(sigmas) -> Schedule:
    return Schedule([1000.0 * s for s in sigmas], list(sigmas))


class ThreadGroup:
    """Stands in for a sequence-parallel group of ``world`` ranks run as threads: ``reducer(rank).reduce(local)``
    waits for every rank's partial sum and returns their total, as the engine's packed all-reduce does."""

    def __init__(self, world: int = 2):
        import threading

        self.world = world
        self.slots: list[torch.Tensor | None] = [None] * world
        self.barrier = threading.Barrier(world, timeout=30)

    def reducer(self, rank: int):
        group = self

        class _Rank:
            def reduce(self, local: torch.Tensor):
                from padecache.distributed import Deferred

                group.slots[rank] = local.detach().clone()
                group.barrier.wait()
                total = sum(group.slots[1:], group.slots[0])
                group.barrier.wait()
                return Deferred(None, total)

        return _Rank()

    def run(self, fn):
        """``fn(rank)`` on every rank at once; the results by rank."""
        import threading

        out: list[Any] = [None] * self.world
        errors: list[BaseException] = []

        def target(rank):
            try:
                out[rank] = fn(rank)
            except BaseException as err:  # noqa: BLE001 - re-raised below, in the test's thread
                errors.append(err)
                self.barrier.abort()

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out


def decisions(want) -> list[bool]:
    """A policy's answer as one bool per row."""
    if isinstance(want, torch.Tensor):
        return [bool(v) for v in want.reshape(-1).tolist()]
    return [bool(want)]
