"""Clocks: how ``padecache bench`` and ``padecache generate`` time a generation.

A benchmark must measure what a method costs, not what the other programs on the machine cost.  So:

* on a CPU, :class:`CpuClock` reads this process's CPU time (``time.process_time``): a neighbour that takes a
  core, or the scheduler handing our core to someone else for a while, does not count.  With one torch thread
  (what ``padecache bench`` sets) it is the work of the generation itself;
* on a GPU, :class:`CudaClock` reads CUDA events recorded on the current stream around the generation;
* :class:`WallClock` (``time.perf_counter``) is what a user waits; ``padecache generate`` reports it.

Every clock has a ``name`` that records and tables quote (``"cpu"``, ``"cuda"``, ``"wall"``), and
:func:`load_average` reads how busy the machine is, so a report can warn when it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Clock", "CpuClock", "CudaClock", "WallClock", "clock_for", "load_average", "busy", "CLOCK_TITLES",
           "TransformerClock"]

#: how tables name each clock's measurements
CLOCK_TITLES = {"cpu": "process CPU time", "cuda": "CUDA events", "wall": "wall clock"}


class Clock:
    """Times a call: :meth:`time` runs ``fn()`` and returns the seconds it took on this clock."""

    name = ""

    def time(self, fn: Callable[[], Any]) -> float:
        raise NotImplementedError


class WallClock(Clock):
    """Elapsed real time (``time.perf_counter``)."""

    name = "wall"

    def time(self, fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


class CpuClock(Clock):
    """CPU time of this process (``time.process_time``): every thread's work, nobody else's."""

    name = "cpu"

    def time(self, fn: Callable[[], Any]) -> float:
        start = time.process_time()
        fn()
        return time.process_time() - start


class CudaClock(Clock):
    """CUDA events recorded on the current stream of ``device`` before and after the call."""

    name = "cuda"

    def __init__(self, device: Any):
        self.device = device

    def time(self, fn: Callable[[], Any]) -> float:
        import torch

        with torch.cuda.device(self.device):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(self.device)  # nothing queued before the call is counted in it
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0


def clock_for(device: Any) -> Clock:
    """The benchmark's clock for a model on ``device`` (a ``torch.device`` or a string): CUDA events or CPU time."""
    kind = getattr(device, "type", str(device).split(":")[0])
    return CudaClock(device) if kind == "cuda" else CpuClock()


def load_average() -> float | None:
    """The 1-minute load average (``None`` where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def busy(load: float | None, cpus: int | None, own: int = 1) -> bool:
    """Whether other work was running: a load above this run's own ``own`` threads by half a CPU or more.

    With every CPU taken (``load >= cpus``) the machine is busy whatever ran it.
    """
    if load is None:
        return False
    return load >= own + 0.5 or (cpus is not None and load >= cpus)


class TransformerClock:
    """Wall time spent inside a pipeline's transformer(s), synchronised on accelerators (``padecache generate``)."""

    def __init__(self, modules):
        self.seconds = 0.0
        self._start: float | None = None
        self.handles = []
        for model in modules:
            model = getattr(model, "_orig_mod", model)
            self.handles.append(model.register_forward_pre_hook(self._enter))
            self.handles.append(model.register_forward_hook(self._leave))

    @staticmethod
    def _sync(module) -> None:
        p = next(module.parameters(), None)
        if p is not None and p.device.type == "cuda":
            import torch

            torch.cuda.synchronize(p.device)

    def _enter(self, module, args) -> None:
        self._sync(module)
        self._start = time.perf_counter()

    def _leave(self, module, args, output) -> None:
        self._sync(module)
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
