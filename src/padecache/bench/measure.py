"""How one setting is measured: passes counted, images made, time taken -- the same way for every method.

:func:`compare` (:mod:`padecache.bench.runner`) in one process and the cluster's units
(:mod:`padecache.bench.distributed`) both measure through here:

1. the method is turned on and run once over all seeds, untimed: this warms it up, gives the images it scores
   and, through :class:`PassCounter`, the block-stack passes it spent;
2. it is timed ``repeats`` times **interleaved with full compute** (full, method, full, method, ..., full), and
   the median counts.  The clock is this process's CPU time on a CPU (what the method costs, whatever else the
   machine runs) and CUDA events on a GPU (:mod:`padecache.timing`);
3. a physically impossible figure -- a wall speedup above the pass speedup (the embeddings, head and sampler
   always run) by more than :data:`SUSPECT_TOLERANCE` -- is timed once more between two fresh full-compute runs,
   and if it persists the record is marked ``timing_suspect`` and its time is not reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import speaking_for
from ..loading import transformers_of
from ..timing import Clock, clock_for
from .records import Record
from .settings import Attached, Setting

__all__ = ["PassCounter", "Counter", "Run", "Measured", "measure", "fill", "new_record", "failed_status", "probe", "device_of",
           "pipe_name", "progress_bar", "SUSPECT_TOLERANCE"]

#: wall speedup may exceed pass speedup by this share before the timing is rejected (timer noise)
SUSPECT_TOLERANCE = 0.10


def _rows(output: Any) -> int | None:
    """The leading (batch) size of a module's output: a tensor, or the first tensor of a tuple or list."""
    import torch

    if isinstance(output, torch.Tensor):
        return output.shape[0] if output.dim() else None
    if isinstance(output, (tuple, list)):
        return next((r for r in map(_rows, output) if r is not None), None)
    return None


class PassCounter:
    """Counts real block executions in a transformer's block stack, the same way for every method.

    A block counts each time its own computation runs: each call of its first attention module, or in a block
    without one, each call of the linear layer of it that ran first (a skipped or cached block runs none of them,
    and no head or embedding calls into them; a method that replaces a block's ``forward`` still calls the block,
    so the block's own call proves nothing).  A call on some rows of the batch (rows that went separate ways and
    compute alone) counts their share: the rows it ran over the most that block ran at once.  ``count`` is in
    block executions, so a run whose forecast steps still run ``F + B`` of the stack's ``num_blocks`` blocks (a
    block range, cache-dit's Fn/Bn) counts that share of a pass exactly, as ``padecache.stats`` does: divide by
    the blocks per pass for passes.
    """

    def __init__(self, transformer: Any):
        import torch

        from ..plugins import get_registry

        adapter, _ = get_registry().adapter_for(transformer)
        if hasattr(adapter, "resolve"):  # the generic adapter names the block lists of this model
            adapter = adapter.resolve(transformer)
        self.block_lists = tuple(adapter.block_lists)
        self.handles = []
        blocks = adapter.blocks(transformer)
        self.num_blocks = len(blocks)
        self.anchors: list[Any] = [None] * self.num_blocks  # per block, the module whose calls count
        self.calls: list[list[int]] = [[] for _ in blocks]  # per block, the rows of each counted call (0: unknown)
        for i, (_, _, block) in enumerate(blocks):
            attn = next((m for m in block.children() if type(m).__name__.endswith("Attention")), None)
            if attn is not None:
                self.anchors[i] = attn
            targets = [attn] if attn is not None else [m for m in block.modules() if isinstance(m, torch.nn.Linear)]
            self.handles += [m.register_forward_hook(lambda m, args, out, i=i: self._hit(i, m, out)) for m in targets]

    def _hit(self, i: int, module: Any, output: Any):
        if self.anchors[i] is None:  # a block without attention: the linear layer that runs first stands for it
            self.anchors[i] = module
        if module is self.anchors[i]:  # once per block execution, however many of its layers run
            self.calls[i].append(_rows(output) or 0)

    def reset(self) -> None:
        """Start counting from zero (the hooks stay)."""
        for calls in self.calls:
            calls.clear()

    @property
    def count(self) -> float:
        """Block executions so far, a call on some of the rows counting their share (a whole number when none did)."""
        total = 0.0
        for calls in self.calls:
            full = max(calls, default=0)
            total += sum(1.0 if not full or not r else r / full for r in calls)
        return total

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles = []


class Counter:
    """:class:`PassCounter` over every transformer of a pipeline (``count`` is ``None`` where no adapter fits)."""

    def __init__(self, pipe: Any):
        self.counters = []
        for t in transformers_of(pipe):
            try:
                self.counters.append(PassCounter(t))
            except TypeError:  # no adapter: passes unknown
                self.close()
                self.counters = []
                break

    @property
    def count(self) -> float | None:
        return sum(c.count for c in self.counters) if self.counters else None

    @property
    def block_lists(self) -> tuple[str, ...]:
        return self.counters[0].block_lists if self.counters else ()

    @property
    def num_blocks(self) -> int | None:
        """Blocks in the (first) transformer's stack, ``None`` where no adapter fits."""
        return self.counters[0].num_blocks if self.counters else None

    def close(self):
        for c in self.counters:
            c.close()

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def device_of(pipe: Any) -> Any:
    """Where the pipeline's transformer sits (the CPU when it has no parameters)."""
    import torch

    for module in transformers_of(pipe):
        for p in module.parameters():
            return p.device
    return torch.device("cpu")


def pipe_name(pipe: Any) -> str:
    """``pipe.name``, else its transformer's class name."""
    name = getattr(pipe, "name", None)
    if isinstance(name, str) and name:
        return name
    transformer = getattr(pipe, "transformer", None)
    return type(transformer).__name__ if transformer is not None else type(pipe).__name__


def _as_images(value: Any) -> Any:
    """What ``generate`` returned, as a CPU tensor (a diffusers output's ``images`` / ``frames`` too)."""
    import torch

    for attr in ("images", "frames"):
        if not isinstance(value, torch.Tensor) and hasattr(value, attr):
            value = getattr(value, attr)
    if not isinstance(value, torch.Tensor):
        try:
            import numpy as np

            value = torch.as_tensor(np.asarray(value))
        except Exception as err:  # noqa: BLE001
            raise TypeError(f"generate(pipe, seed) must return images as a tensor, batch first; got {type(value).__name__}") from err
    return value.detach().cpu()


def _nothing() -> None:
    return None


class Run:
    """Runs generations over the seeds: untimed (for images) or timed on the device's clock."""

    def __init__(self, pipe: Any, generate: Callable[[Any, int], Any], seeds: tuple[int, ...], device: Any,
                 clock: Clock | None = None):
        self.pipe, self.generate, self.seeds, self.device = pipe, generate, seeds, device
        self.clock = clock or clock_for(device)

    def images(self, before: Callable[[], None] = _nothing, after: Callable[[], Any] = _nothing) -> tuple[Any, list]:
        """All seeds' images, and what ``after()`` returned after each generation."""
        import torch

        out, extra = [], []
        for seed in self.seeds:
            before()
            out.append(_as_images(self.generate(self.pipe, seed)))
            extra.append(after())
        return torch.cat(out), extra

    def timed(self, before: Callable[[], None] = _nothing) -> float:
        """Seconds of every seed's generation on :attr:`clock` (``before`` runs untimed before each)."""
        total = 0.0
        for seed in self.seeds:
            before()
            total += self.clock.time(lambda seed=seed: self.generate(self.pipe, seed))
        return total


def probe(pipe: Any, run: Run) -> tuple[int | None, int]:
    """Steps per generation and transformer calls per step, from one untimed run with padecache watching."""
    import padecache

    calls = [0]
    handles = [t.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for t in transformers_of(pipe)]
    steps = None
    try:
        padecache.apply(pipe, {"predictor": {"name": "noop"}, "policy": {"name": "always"}})
    except (TypeError, ValueError):  # a pipeline padecache cannot hook: steps stay unknown
        applied = False
    else:
        applied = True
    try:
        run.generate(pipe, run.seeds[0])
        if applied:
            steps = padecache.stats(pipe).total_steps or None
    finally:
        if applied:
            padecache.remove(pipe)
        for h in handles:
            h.remove()
    per_step = max(1, round(calls[0] / steps)) if steps else 1
    return steps, per_step


@attrs.define
class Measured:
    """What one setting produced over some seeds, before scoring.

    Attributes:
        count: block executions over those seeds, a run on some rows counting their share (``None``: no adapter to count with).
        passes, fallbacks, cache_bytes: padecache's stats of each generation that reported any (none for peers).
        mask: the first such generation's mask (``#`` computed, ``.`` forecast).
        wall, ref: median time of the method over the seeds, and of full compute timed around it (on ``clock``).
        suspect: the wall speedup exceeded the pass speedup even when re-timed.
        clock: the clock the times were read on (``"cpu"``, ``"cuda"``).
    """

    images: Any
    count: float | None
    passes: list = attrs.field(factory=list)
    fallbacks: list = attrs.field(factory=list)
    cache_bytes: list = attrs.field(factory=list)
    mask: str | None = None
    wall: float | None = 0.0
    ref: float | None = 0.0
    suspect: bool = False
    clock: str = ""


def new_record(setting: Any, base: dict, ours: str | None) -> Record:
    """The record of ``setting`` (a :class:`Setting`, or anything with its attributes) before it runs."""
    return Record(
        method=setting.method, kind=setting.kind, config=setting.config, plugin=setting.plugin, plugin_version=setting.version,
        components=setting.components, group=setting.group or setting.method, published=setting.published,
        ours=setting.method == ours, target=None if setting.target is None else round(setting.target, 4),
        summary=getattr(setting, "summary", ""), **base,
    )


def _interleaved(attached: Attached, run: Run, full_walls: list[float], repeats: int) -> tuple[list[float], list[float]]:
    """``repeats`` timings of the method, each followed by one of full compute (the one before it is ``full_walls[-1]``)."""
    walls, refs = [], [full_walls[-1]]
    for i in range(repeats):
        if i:
            attached.resume()
        walls.append(run.timed(attached.reset))
        attached.suspend()
        full_walls.append(run.timed())
        refs.append(full_walls[-1])
    return walls, refs


def _retimed(attached: Attached, run: Run, full_walls: list[float], last_ref: float) -> tuple[float, float]:
    """Once more, between two fresh full-compute runs (a load spike during one run is the usual cause of an
    impossible ratio; the median of three full-compute timings is robust to one spike)."""
    full_walls.append(run.timed())
    attached.resume()
    wall = run.timed(attached.reset)
    attached.suspend()
    full_walls.append(run.timed())
    return wall, statistics.median([last_ref, *full_walls[-2:]])


def _too_fast(wall: float | None, ref: float | None, pass_speedup: float | None) -> bool:
    return wall is not None and ref is not None and pass_speedup is not None and ref / wall > pass_speedup * (1 + SUSPECT_TOLERANCE)


def measure(setting: Setting, run: Run, *, full_walls: list[float], repeats: int, per_gen: float | None) -> Measured:
    """Attach ``setting``, generate untimed (images, passes, stats), then time it between full-compute runs.

    ``full_walls`` holds the full-compute timings so far (its last one precedes this setting's first timed run);
    the ones made here are appended.  ``per_gen``: full compute's block executions per generation.  The method
    is always taken off the pipeline again, also when it fails.  What padecache and its plugins warn meanwhile
    names the method and target (a sweep of sixty methods otherwise leaves the reader to guess whose warning it was).
    """
    target = "" if setting.target is None else f" at {setting.target:.3g}x"
    with speaking_for(f"{setting.method}{target}"):  # padecache's warnings (padecache.errors.warn) name the method
        return _measure(setting, run, full_walls=full_walls, repeats=repeats, per_gen=per_gen)


def _measure(setting: Setting, run: Run, *, full_walls: list[float], repeats: int, per_gen: float | None) -> Measured:
    attached: Attached | None = None
    try:
        attached = setting.attach(run.pipe)
        with Counter(run.pipe) as counter:
            images, stats = run.images(attached.reset, attached.stats)  # untimed: warm-up, images, passes
            count = counter.count
        walls, refs = _interleaved(attached, run, full_walls, repeats)
        pass_speedup = None if not count or per_gen is None else per_gen * len(run.seeds) / count
        wall = statistics.median(walls) if walls else None  # repeats=0: scores only, no timing
        ref = statistics.median(refs) if walls else None
        suspect = False
        if _too_fast(wall, ref, pass_speedup):
            wall, ref = _retimed(attached, run, full_walls, refs[-1])
            suspect = _too_fast(wall, ref, pass_speedup)
    finally:
        if attached is not None:
            attached.suspend()
            attached.close()
    stats = [s for s in stats if s is not None and getattr(s, "total_steps", 0)]
    return Measured(images, count, [s.full_passes for s in stats], [s.fallbacks for s in stats], [s.cache_bytes for s in stats],
                    _mask(stats[0]) if stats else None, wall, ref, suspect, run.clock.name)


def _mask(stats: Any) -> str:
    """The computed (``#``) / forecast (``.``) mask of the steps that ran: a pipeline that starts later in its
    schedule (img2img at strength < 1) runs only the last steps, and the ones it never ran are not forecasts."""
    branch = stats.branches[0] if stats.branches else None
    ran = sorted({r.step for r in stats.records if r.branch == branch})
    mask = stats.mask(branch)
    return "".join("#" if mask[s] else "." for s in ran)


def fill(rec: Record, m: Measured, steps: int | None, per_gen: float | None, seeds: int) -> None:
    """Passes, speedups, timings and stats of ``rec`` from what its ``seeds`` generations measured."""
    rec.samples = len(m.images)
    if m.count is not None and steps is not None and per_gen:
        rec.passes = round(steps * m.count / seeds / per_gen, 4)
    elif m.passes:
        rec.passes = round(statistics.mean(m.passes), 4)
    pass_speedup = None if not m.count or per_gen is None else per_gen * seeds / m.count
    rec.pass_speedup = None if pass_speedup is None else round(pass_speedup, 4)
    if m.wall is not None and m.ref is not None:
        rec.wall_s, rec.reference_wall_s = round(m.wall, 4), round(m.ref, 4)
        rec.wall_speedup = round(m.ref / m.wall, 4)
        rec.clock = m.clock or rec.clock
    rec.status = "timing_suspect" if m.suspect else "ok"
    if m.passes:
        rec.fallbacks = sum(m.fallbacks)
        rec.cache_bytes = max(m.cache_bytes)
        rec.mask = m.mask


def failed_status(err: BaseException | str) -> str:
    """A record's ``status`` for a run that raised: ``"failed: ExceptionType: message"`` (at most 300 characters)."""
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    return f"failed: {text}"[:300]


def progress_bar(items: Any, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``items`` when enabled and tqdm is installed (the ``bench`` extra)."""
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the bench extra; without it, no bar
        return items
    return tqdm(items, desc=desc, unit="run")
