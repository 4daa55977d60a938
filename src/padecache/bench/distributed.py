""":func:`~padecache.bench.compare` on a cluster: the comparison split into units, run as tasks, gathered into records.

``compare(..., executor=RayExecutor())`` (:mod:`padecache.cluster`) runs here.  The work is split as follows:

1. **plan** (one task): load the pipeline, read its step count and block lists (the untimed probe), expand every
   method into its settings, exactly as :func:`~padecache.bench.compare` does in one process;
2. **full compute** (one task per seed chunk): full compute's images and block executions over the chunk, computed
   once and kept in the cluster's object store for everything that needs them;
3. **units** (one task per setting and seed chunk): the setting's images, passes and stats, and its timing
   interleaved with full compute on the same worker (``full, method, full``), as in one process;
4. **scores** (one task per setting): the scorers over all chunks' images against the full-compute images of
   step 2 (passed by reference, never recomputed), so a set-level score such as FID sees the whole set.

Seed chunks hold ``executor.seeds_per_unit`` seeds (default: all seeds, one unit per setting); each seed is its own
generation, so how seeds are chunked changes no image.  Workers re-expand the methods themselves (settings hold
functions bound to a pipeline, which do not travel) and check that they got the setting the plan named; each
worker keeps one loaded pipeline (and its expanded settings) between the units it runs.

A unit that fails is run once more, then its record says ``failed: <error>`` and the comparison goes on; a failed
plan or full-compute task stops the comparison with :class:`~padecache.cluster.ClusterError` (nothing could be
measured against it).  Every record says
``distributed: true`` and names the cluster in its environment: its wall times were measured on workers that
may share machines with other units, so they are not comparable with those of a run in one process, although
each wall × is still against full compute timed on the same worker.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from ..cluster import ClusterError, Executor, InProcessExecutor, PipelineSource, TaskFailed, pipeline_source
from .measure import (
    Counter,
    Measured,
    Run,
    device_of,
    failed_status,
    fill,
    measure,
    new_record,
    pipe_name,
    probe,
    progress_bar,
)
from .methods import resolve
from .metrics import normalise_scorers, round_score
from .records import Environment, Record, environment
from .settings import RunContext, Setting

__all__ = ["compare_on", "SettingInfo", "Plan", "FullResult", "UnitResult", "chunks"]


@attrs.frozen
class SettingInfo:
    """A :class:`~padecache.bench.methods.Setting` without its ``attach`` function: what the records need."""

    method: str
    config: dict
    target: float | None = None
    kind: str = "padecache"
    plugin: str = "padecache"
    version: str = ""
    group: str = ""
    published: bool = False
    components: dict = attrs.field(factory=dict)
    skip: str | None = None
    summary: str = ""

    @classmethod
    def of(cls, s: Setting) -> SettingInfo:
        return cls(**{f.name: getattr(s, f.name) for f in attrs.fields(cls)})


@attrs.frozen
class Plan:
    """What the plan task read from the pipeline, and every method's settings (in order)."""

    name: str
    steps: int | None
    calls_per_step: int
    block_lists: tuple[str, ...]
    settings: tuple[tuple[SettingInfo, ...], ...]
    num_blocks: int | None = None


@attrs.frozen
class FullResult:
    """Full compute over one seed chunk: images, block executions, one timing."""

    images: torch.Tensor
    count: float | None
    walls: tuple[float, ...]
    environment: Environment
    clock: str = ""


@attrs.frozen
class UnitResult:
    """One setting over one seed chunk, and the full-compute timings made around it."""

    measured: Measured
    full_walls: tuple[float, ...]
    environment: Environment


def chunks(seeds: Sequence[int], size: int | None) -> list[tuple[int, ...]]:
    """``seeds`` in consecutive chunks of ``size`` (``None``: one chunk)."""
    seeds = tuple(seeds)
    size = size or len(seeds)
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


# -- the worker's side ------------------------------------------------------------------------------------------

class _WorkerState:
    """One loaded pipeline per worker process, kept between units, with the settings expanded on it."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.key: Any = None
        self.pipe: Any = None
        self.warm = False
        self.token: str | None = None
        self.settings: dict[int, list[Setting]] = {}


_STATE = _WorkerState()


def _pipeline(source: Any) -> Any:
    """The pipeline of ``source`` (a :class:`PipelineSource`, or a pipeline object shipped with the task)."""
    key = source.key() if isinstance(source, PipelineSource) else ("object", id(source))
    if _STATE.key != key:
        _STATE.clear()
        pipe = source() if isinstance(source, PipelineSource) else source
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)  # a worker's output goes nowhere useful
        _STATE.key, _STATE.pipe = key, pipe
    return _STATE.pipe


def _warm(run: Run) -> None:
    """One untimed generation the first time a worker uses its pipeline (the first timing is never a cold one)."""
    if not _STATE.warm:
        run.generate(run.pipe, run.seeds[0])
        _STATE.warm = True


def _guarded(task: Callable[..., Any], *args: Any) -> Any:
    """Run ``task``; when it fails, drop the worker's pipeline (it may be left half-hooked) and re-raise."""
    try:
        return task(*args)
    except BaseException:
        _STATE.clear()
        raise


def _settings(pipe, generate, methods, token: str, context: tuple, index: int) -> list[Setting]:
    """Method ``index`` expanded on this worker's pipeline (once per comparison and worker)."""
    if _STATE.token != token:
        _STATE.token, _STATE.settings = token, {}
    if index not in _STATE.settings:
        steps, calls_per_step, block_lists, num_blocks, seeds, targets = context
        ctx = RunContext(pipe, generate, tuple(seeds), steps, calls_per_step, tuple(block_lists), num_blocks)
        _STATE.settings[index] = resolve(methods)[index].settings(steps, targets, ctx)
    return _STATE.settings[index]


def _plan(source, generate, methods, seeds, targets, token: str) -> Plan:
    """Probe the pipeline and expand every method, as ``compare`` does before its first run."""
    pipe = _pipeline(source)
    run = Run(pipe, generate, tuple(seeds), device_of(pipe))
    steps, calls_per_step = probe(pipe, run)  # also warms the pipeline up
    _STATE.warm = True
    with Counter(pipe) as counter:
        block_lists, num_blocks = counter.block_lists, counter.num_blocks
    context = (steps, calls_per_step, block_lists, num_blocks, tuple(seeds), tuple(targets))
    per_method = [_settings(pipe, generate, methods, token, context, i) for i in range(len(resolve(methods)))]
    return Plan(pipe_name(pipe), steps, calls_per_step, tuple(block_lists),
                tuple(tuple(SettingInfo.of(s) for s in ss) for ss in per_method), num_blocks)


def _full(source, generate, seeds, repeats: int) -> FullResult:
    """Full compute over a seed chunk: images and block executions (untimed), then one timed run (none: ``repeats=0``)."""
    pipe = _pipeline(source)
    device = device_of(pipe)
    run = Run(pipe, generate, tuple(seeds), device)
    _warm(run)
    with Counter(pipe) as counter:
        images, _ = run.images()
        count = counter.count
    return FullResult(images, count, (run.timed(),) if repeats else (), environment(device), run.clock.name)


def _unit(source, generate, methods, token: str, context: tuple, method_index: int, setting_index: int,
          expected: SettingInfo, seeds, full: FullResult, repeats: int) -> UnitResult:
    """One setting over a seed chunk: untimed images and passes, then timed between full-compute runs."""
    pipe = _pipeline(source)
    settings = _settings(pipe, generate, methods, token, context, method_index)
    setting = settings[setting_index] if setting_index < len(settings) else None
    if setting is None or (setting.method, setting.config) != (expected.method, expected.config):
        got = "nothing" if setting is None else f"{setting.method} {setting.config}"
        raise RuntimeError(f"this worker expanded setting {setting_index} of method {method_index} into {got}, the plan into "
                           f"{expected.method} {expected.config}: are padecache and its plugins the same on every node?")
    device = device_of(pipe)
    run = Run(pipe, generate, tuple(seeds), device)
    _warm(run)
    per_gen = None if full.count is None else full.count / len(seeds)
    # full compute timed on this worker, right before the method (repeats=0, no timing: a placeholder never read)
    full_walls = [run.timed()] if repeats else [math.nan]
    m = measure(setting, run, full_walls=full_walls, repeats=repeats, per_gen=per_gen)
    return UnitResult(m, tuple(w for w in full_walls if not math.isnan(w)), environment(device))


def _score(scorers, target: float | None, n_full: int, *parts) -> dict[str, float | None]:
    """Scores of the images of ``parts[n_full:]`` (unit results) against ``parts[:n_full]`` (full compute).

    With no unit results, full compute is scored against itself (the very same tensor, as in one process).
    """
    fulls, units = parts[:n_full], parts[n_full:]
    full_images = torch.cat([f.images for f in fulls])
    images = torch.cat([u.measured.images for u in units]) if units else full_images
    fns = normalise_scorers(scorers, full_images)
    return {n: round_score(s(images, full_images)) if s.applies(target) else None for n, s in fns.items()}


def plan_task(*args: Any) -> Plan:
    return _guarded(_plan, *args)


def full_task(*args: Any) -> FullResult:
    return _guarded(_full, *args)


def unit_task(*args: Any) -> UnitResult:
    return _guarded(_unit, *args)


score_task = _score


# -- the driver's side -----------------------------------------------------------------------------------------

def _combine(results: Sequence[UnitResult]):
    """One :class:`~padecache.bench.measure.Measured` over every chunk (sums of timings and counts)."""
    ms = [r.measured for r in results]
    count = None if any(m.count is None for m in ms) else sum(m.count for m in ms)
    return Measured(
        images=torch.cat([m.images for m in ms]), count=count, passes=[p for m in ms for p in m.passes],
        fallbacks=[f for m in ms for f in m.fallbacks], cache_bytes=[c for m in ms for c in m.cache_bytes],
        mask=next((m.mask for m in ms if m.mask is not None), None),
        wall=None if any(m.wall is None for m in ms) else sum(m.wall for m in ms),
        ref=None if any(m.ref is None for m in ms) else sum(m.ref for m in ms), suspect=any(m.suspect for m in ms),
        clock=ms[0].clock,
    )


def _labelled(env: Environment, label: str) -> Environment:
    return attrs.evolve(env, cluster=label)


def compare_on(executor: Executor, pipe: Any, generate: Callable[[Any, int], Any], methods: Sequence[Any], *,
               targets: tuple[float, ...], seeds: tuple[int, ...], scorers: Any, repeats: int, ours: str | None,
               writer: Any, progress: bool, name: str | None) -> list[Record]:
    """:func:`~padecache.bench.compare` with its runs as tasks of ``executor`` (arguments already checked there)."""
    import padecache

    source = pipeline_source(pipe, getattr(executor, "device", None))
    if source is None:  # a pipeline object: stored once, each task gets its own copy
        if padecache.is_applied(pipe):
            raise ValueError("padecache is already applied to this pipeline: padecache.remove(pipe) first, compare applies each "
                             "method itself")
        source = executor.put(pipe)
    token = uuid.uuid4().hex
    generate_h, methods_h, scorers_h = executor.put(generate), executor.put(list(methods)), executor.put(scorers)
    pending: dict[Any, tuple[str, int]] = {}
    try:
        try:
            plan: Plan = executor.get(executor.submit(plan_task, source, generate_h, methods_h, seeds, targets, token,
                                                      name="bench: plan"))
        except TaskFailed as err:
            raise ClusterError(f"preparing the comparison on the cluster failed: {err}") from None
        model = name or plan.name
        parts = chunks(seeds, getattr(executor, "seeds_per_unit", None))
        full_h = [executor.submit(full_task, source, generate_h, chunk, repeats, name=f"bench: full compute, seeds {chunk[0]}+")
                  for chunk in parts]
        full_score_h = executor.submit(score_task, scorers_h, 1.0, len(full_h), *full_h, name="bench: scores of full compute")
        context = (plan.steps, plan.calls_per_step, plan.block_lists, plan.num_blocks, seeds, targets)
        jobs: list[tuple[SettingInfo, list[Any]]] = []
        for mi, infos in enumerate(plan.settings):
            for si, info in enumerate(infos):
                handles = [] if info.skip is not None else [
                    executor.submit(unit_task, source, generate_h, methods_h, token, context, mi, si, info, chunk, full_h[c],
                                    repeats, name=f"bench: {info.method} at {info.target}, seeds {chunk[0]}+")
                    for c, chunk in enumerate(parts)]
                jobs.append((info, handles))
                pending.update({h: ("unit", len(jobs) - 1) for h in handles})
        try:
            fulls: list[FullResult] = [executor.get(h) for h in full_h]
            full_scores = executor.get(full_score_h)
        except TaskFailed as err:
            raise ClusterError(f"full compute failed on the cluster: {err}") from None
        return _gather(executor, plan, model, jobs, pending, fulls, full_scores, full_h, scorers_h, seeds, ours, writer,
                       progress, targets)
    except BaseException:
        executor.cancel(list(pending))
        raise
    finally:
        if isinstance(executor, InProcessExecutor):
            _STATE.clear()  # the "worker" is this process: let go of the pipeline


class _Gathering:
    """The driver's side once the plan is known: a record per job as its units and scores come back, in plan order."""

    def __init__(self, executor, plan: Plan, model: str, jobs, fulls: list[FullResult], full_h, scorers_h, seeds, ours, writer):
        self.executor, self.plan, self.jobs, self.full_h, self.scorers_h = executor, plan, jobs, full_h, scorers_h
        self.seeds, self.ours, self.writer = seeds, ours, writer
        self.label = getattr(executor, "label", "") or type(executor).__name__
        self.per_gen = None if any(f.count is None for f in fulls) else sum(f.count for f in fulls) / len(seeds)
        self.env = _labelled(fulls[0].environment, self.label)
        self.chunk_walls: list[list[float]] = [list(f.walls) for f in fulls]  # every full-compute timing, per chunk
        self.base = dict(model=model, steps=plan.steps, seeds=list(seeds), clock=fulls[0].clock)
        self.done: dict[int, tuple[Record, Any]] = {}
        self.finished = [0] * len(jobs)
        self.units: dict[int, tuple[Record, Any]] = {}
        self.records: list[Record] = []
        self.emitted = 0
        self.update: Callable[[int], Any] = lambda n: None

    def full_wall(self) -> float | None:
        walls = self.chunk_walls
        return round(sum(statistics.median(w) for w in walls), 4) if all(walls) else None  # none: repeats=0

    def record(self, info: SettingInfo, env: Environment | None = None) -> Record:
        rec = new_record(info, {**self.base, "environment": env or self.env}, self.ours)
        rec.distributed = True
        return rec

    def emit(self) -> None:
        while self.emitted in self.done:
            rec, images = self.done.pop(self.emitted)
            self.records.append(rec)
            if self.writer is not None:
                self.writer.add(rec, images)
            self.update(1)
            self.emitted += 1

    def scored(self, handle: Any, j: int) -> None:
        rec, images = self.units.pop(j)
        try:
            rec.scores = self.executor.get(handle)
        except TaskFailed as err:
            rec.status, images = failed_status(f"scoring: {err}"), None
        self.done[j] = (rec, images)

    def measured(self, j: int) -> Any:
        """Job ``j``'s units are all back: its record, and the handle of its scoring task (``None`` when it failed)."""
        info, handles = self.jobs[j]
        try:
            results = [self.executor.get(u) for u in handles]
        except TaskFailed as err:
            rec = self.record(info)
            rec.status = failed_status(str(err))
            self.done[j] = (rec, None)
            return None
        for c, r in enumerate(results):
            self.chunk_walls[c].extend(r.full_walls)
        rec = self.record(info, _labelled(results[0].environment, self.label))
        m = _combine(results)
        fill(rec, m, self.plan.steps, self.per_gen, len(self.seeds))
        self.units[j] = (rec, m.images)
        return self.executor.submit(score_task, self.scorers_h, info.target, len(self.full_h), *self.full_h, *handles,
                                    name=f"bench: scores of {info.method}")

    def run(self, pending: dict[Any, tuple[str, int]], full: Record, full_images: Any, show: bool, targets) -> list[Record]:
        full.wall_s = full.reference_wall_s = self.full_wall()
        self.records.append(full)
        if self.writer is not None:
            self.writer.start(full.model, self.plan.steps)
            self.writer.add(full, full_images)
        for j, (info, handles) in enumerate(self.jobs):
            if not handles:
                rec = self.record(info)
                rec.status = f"skipped: {info.skip}"
                self.done[j] = (rec, None)
        bar = progress_bar(range(len(self.jobs)), f"{full.model}, {self.plan.steps or '?'} steps", show)
        self.update = getattr(bar, "update", self.update)
        self.emit()
        while pending:
            for h in self.executor.wait(list(pending)):
                kind, j = pending.pop(h)
                if kind == "score":
                    self.scored(h, j)
                    continue
                self.finished[j] += 1
                if self.finished[j] == len(self.jobs[j][1]):
                    score_h = self.measured(j)
                    if score_h is not None:
                        pending[score_h] = ("score", j)
            self.emit()
        self.emit()
        if hasattr(bar, "close"):
            bar.close()
        full.wall_s = full.reference_wall_s = self.full_wall()
        if self.writer is not None:
            self.writer.update(full)
            self.writer.render(ours=self.ours, targets=targets)
        return self.records


def _gather(executor, plan, model, jobs, pending, fulls, full_scores, full_h, scorers_h, seeds, ours, writer, show,
            targets) -> list[Record]:
    gathering = _Gathering(executor, plan, model, jobs, fulls, full_h, scorers_h, seeds, ours, writer)
    full_images = torch.cat([f.images for f in fulls])
    full = Record(
        model=model, method="full", kind="reference", config={"predictor": {"name": "none"}, "policy": {"name": "always"}},
        plugin="padecache", plugin_version=gathering.env.padecache, group="full", target=1.0, steps=plan.steps,
        seeds=list(seeds), samples=len(full_images), passes=plan.steps, pass_speedup=1.0, wall_s=None, reference_wall_s=None,
        wall_speedup=1.0, scores=full_scores, status="ok", fallbacks=0, environment=gathering.env, distributed=True,
        clock=fulls[0].clock,
    )
    return gathering.run(pending, full, full_images, show, targets)
