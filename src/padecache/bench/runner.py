"""``compare``: every method on the same pipeline and seeds, counted, timed and scored the same way.

For each setting of each method the runner

1. turns the method on (padecache in place, a peer on a copy of the transformer) and runs it once over all
   seeds, untimed: this warms it up, gives the images it scores and, through :class:`PassCounter`, the
   block-stack passes it spent;
2. times it ``repeats`` times, **interleaved with full compute** (full, method, full, method, ..., full:
   each run of the method sits between two full-compute runs, which it is compared with), so that drift
   in the machine's load hits both sides; on a GPU every timing is synchronised;
3. rejects a physically impossible figure: a wall-clock speedup above the pass speedup (the embeddings,
   head and sampler always run, so it cannot beat it) by more than :data:`SUSPECT_TOLERANCE` is timed once
   more between two fresh full-compute runs, and if it persists the record is marked ``timing_suspect`` and
   its wall-clock is not reported.

Records are written to ``out`` as they are made, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from .families import budget_passes  # noqa: F401  (re-exported for callers of the old module)
from .methods import Attached, RunContext, Setting, resolve
from .metrics import check_scorers, normalise_scorers, round_score
from .records import Record, environment

__all__ = ["compare", "PassCounter", "DEFAULT_TARGETS", "SUSPECT_TOLERANCE", "GALLERY"]

#: target pass speedups swept when ``compare(targets=None)``
DEFAULT_TARGETS = (2.5, 10 / 3)
#: wall speedup may exceed pass speedup by this share before the timing is rejected (timer noise)
SUSPECT_TOLERANCE = 0.10
#: images per run kept for grid.png
GALLERY = 8


class PassCounter:
    """Counts real block executions in a transformer's block stack, the same way for every method.

    Each block's first attention module is counted (a skipped or cached block never runs it, and no head
    or embedding calls into it); blocks without one count their linear layers instead.  ``count`` is in
    block executions; divide by the blocks per pass for passes.
    """

    def __init__(self, transformer: torch.nn.Module):
        from ..plugins import get_registry

        adapter, _ = get_registry().adapter_for(transformer)
        if hasattr(adapter, "resolve"):  # the generic adapter names the block lists of this model
            adapter = adapter.resolve(transformer)
        self.block_lists = tuple(adapter.block_lists)
        self.count = 0
        self.handles = []
        for _, _, block in adapter.blocks(transformer):
            attn = next((m for m in block.children() if type(m).__name__.endswith("Attention")), None)
            targets = [attn] if attn is not None else [m for m in block.modules() if isinstance(m, torch.nn.Linear)]
            self.handles += [m.register_forward_hook(self._hit) for m in targets]

    def _hit(self, *_):
        self.count += 1

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def _transformers(pipe) -> list[torch.nn.Module]:
    found = [getattr(pipe, n, None) for n in ("transformer", "transformer_2")]
    found = [m for m in found if isinstance(m, torch.nn.Module)]
    return found or ([pipe] if isinstance(pipe, torch.nn.Module) else [])


def _device(pipe) -> torch.device:
    for module in _transformers(pipe):
        for p in module.parameters():
            return p.device
    return torch.device("cpu")


class _Counter:
    """:class:`PassCounter` over every transformer of a pipeline (``None`` counts where no adapter fits)."""

    def __init__(self, pipe):
        self.counters = []
        for t in _transformers(pipe):
            try:
                self.counters.append(PassCounter(t))
            except TypeError:  # no adapter: passes unknown
                self.counters = []
                break

    @property
    def count(self) -> int | None:
        return sum(c.count for c in self.counters) if self.counters else None

    @property
    def block_lists(self) -> tuple[str, ...]:
        return self.counters[0].block_lists if self.counters else ()

    def close(self):
        for c in self.counters:
            c.close()

    def __enter__(self) -> _Counter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(value: Any) -> torch.Tensor:
    """What ``generate`` returned, as a CPU tensor (a diffusers output's ``images`` / ``frames`` too)."""
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


class _Run:
    """Runs generations over the seeds: untimed (for images) or timed."""

    def __init__(self, pipe, generate, seeds, device):
        self.pipe, self.generate, self.seeds, self.device = pipe, generate, seeds, device

    def images(self, before: Callable[[], None] = lambda: None, after: Callable[[], Any] = lambda: None) -> tuple[torch.Tensor, list]:
        """All seeds' images, and what ``after()`` returned after each generation."""
        out, extra = [], []
        for seed in self.seeds:
            before()
            out.append(_images(self.generate(self.pipe, seed)))
            extra.append(after())
        return torch.cat(out), extra

    def timed(self, before: Callable[[], None] = lambda: None) -> float:
        total = 0.0
        for seed in self.seeds:
            before()
            _sync(self.device)
            start = time.perf_counter()
            self.generate(self.pipe, seed)
            _sync(self.device)
            total += time.perf_counter() - start
        return total


def _probe(pipe, run: _Run) -> tuple[int | None, int]:
    """Steps per generation and transformer calls per step, from one untimed run with padecache watching."""
    import padecache

    calls = [0]
    handles = [t.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for t in _transformers(pipe)]
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


def _check(targets, seeds, repeats) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    targets = DEFAULT_TARGETS if targets is None else tuple(float(t) for t in targets)
    if not targets or any(not t >= 1.0 for t in targets):
        raise ValueError(f"targets are pass speedups >= 1 (e.g. 2.5, 10/3), got {targets}")
    if isinstance(seeds, int):
        seeds = (seeds,)
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be one or more whole numbers >= 0, got {seeds}")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 0:
        raise ValueError(f"repeats must be a whole number >= 0 (0: no timing, a quality sweep), got {repeats!r}")
    return targets, seeds, repeats


def _pipe_name(pipe) -> str:
    name = getattr(pipe, "name", None)
    if isinstance(name, str) and name:
        return name
    transformer = getattr(pipe, "transformer", None)
    return type(transformer).__name__ if transformer is not None else type(pipe).__name__


def compare(
    pipe: Any,
    generate: Callable[[Any, int], Any],
    methods: Sequence[Any],
    *,
    targets: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    scorers: Mapping[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
    repeats: int = 1,
    ours: str | None = None,
    out: str | Path | Any | None = None,
    progress: bool = True,
    name: str | None = None,
    executor: Any = None,
) -> list[Record]:
    """Run ``methods`` and full compute on ``pipe``; count, time and score every run the same way.

    Args:
        pipe: any pipeline padecache supports (a diffusers pipeline, or an object with a ``transformer``); with an
            ``executor`` also a pipeline directory, a bundled reference model name or a
            :class:`~padecache.cluster.PipelineSource`, which each worker loads itself.
        generate: ``generate(pipe, seed)`` runs the pipeline once and returns its images as a tensor, batch
            first (``(N, C, H, W)``, or ``(N, F, C, H, W)`` for video); a diffusers output with ``images`` works too.
            The same seed must give the same noise: every method is compared with full compute of its seed.
        methods: bench family, peer, preset, predictor or policy names, TOML paths, config dicts
            (``"label"`` names them), :class:`~padecache.config.CacheConfig` s, :class:`Family` or :class:`Setting`
            objects (see :mod:`padecache.bench.methods`).
        targets: pass speedups the sweeps aim at (default :data:`DEFAULT_TARGETS`).
        seeds: one generation per seed for every run; scores see all seeds' images together.
        scorers: ``name -> fn(images, full_compute_images) -> float`` (or :class:`~padecache.bench.metrics.Scorer`);
            default PSNR, SSIM and relative L2 (torchmetrics), with the pixel range read from full compute.
        repeats: timed runs per setting (the median counts).
        ours: the label of the method the comparison is about (marked in records, tables and plots).
        out: a directory (validated before anything runs) or a :class:`~padecache.bench.output.ResultsDir`;
            ``results.json`` is rewritten after every run, ``results.md``, ``pareto.png`` and ``grid.png`` at the end.
        progress: show a progress bar (tqdm, when installed).
        name: the pipeline's name in the records (default: ``pipe.name`` or the transformer's class).
        executor: run every setting (per chunk of ``executor.seeds_per_unit`` seeds) as a task on a cluster, e.g.
            :class:`padecache.cluster.RayExecutor` (see :mod:`padecache.bench.distributed`).  Scores, passes and
            masks are those of a run in one process; the records say ``distributed: true``, their wall times are
            the workers'.  ``generate``, ``methods`` and ``scorers`` are pickled to the workers.

    Returns:
        One :class:`~padecache.bench.records.Record` per run, full compute first.

    Example::

        import padecache.bench as bench

        def generate(pipe, seed):
            return pipe("a squirrel", num_inference_steps=20, output_type="pt",
                        generator=torch.Generator().manual_seed(seed)).images

        records = bench.compare(pipe, generate, ["noop", "taylorseer-O1", "tc-pade"], ours="tc-pade", out="bench-out")
    """
    from .output import ResultsDir

    targets, seeds, repeats = _check(targets, seeds, repeats)
    if not callable(generate):
        raise TypeError(f"generate must be a function (pipe, seed) -> images, got {generate!r}")
    check_scorers(scorers)
    writer = out if isinstance(out, ResultsDir) or out is None else ResultsDir(out)  # validated before any model runs
    resolved = resolve(methods)
    labels = [m.label for m in resolved]
    # a peer's label covers its settings' (diffusers-taylorseer -> diffusers-taylorseer-O1, -O2)
    if ours is not None and not any(ours == m.label or (m.kind == "peer" and ours.startswith(m.label)) for m in resolved):
        raise ValueError(f"ours={ours!r} is not among the methods ({', '.join(labels)}); add it to methods")
    if executor is not None:
        from .distributed import compare_on

        return compare_on(executor, pipe, generate, methods, targets=targets, seeds=seeds, scorers=scorers, repeats=repeats,
                          ours=ours, writer=writer, progress=progress, name=name)
    import padecache

    if padecache.is_applied(pipe):
        raise ValueError("padecache is already applied to this pipeline: padecache.remove(pipe) first, compare applies each method itself")
    model = name or _pipe_name(pipe)
    device = _device(pipe)
    env = environment(device)
    run = _Run(pipe, generate, seeds, device)

    steps, calls_per_step = _probe(pipe, run)  # also the untimed warm-up of full compute
    with _Counter(pipe) as counter:
        full_images, _ = run.images()
        full_count = counter.count
    block_lists = counter.block_lists
    context = RunContext(pipe, generate, seeds, steps, calls_per_step, block_lists)
    settings: list[Setting] = [s for m in resolved for s in m.settings(steps, targets, context)]
    scorer_fns = normalise_scorers(scorers, full_images)
    if writer is not None:
        writer.start(model, steps)

    def score(images: torch.Tensor, target: float | None) -> dict[str, float | None]:
        return {n: round_score(s(images, full_images)) if s.applies(target) else None for n, s in scorer_fns.items()}

    per_gen = None if full_count is None else full_count / len(seeds)
    full_walls = [run.timed()]
    full = Record(
        model=model, method="full", kind="reference", config={"predictor": {"name": "none"}, "policy": {"name": "always"}},
        plugin="padecache", plugin_version=env.padecache, group="full", target=1.0, steps=steps, seeds=list(seeds),
        samples=len(full_images), passes=steps, pass_speedup=1.0, wall_s=round(full_walls[0], 4), reference_wall_s=round(full_walls[0], 4),
        wall_speedup=1.0, scores=score(full_images, 1.0),
        status="ok", fallbacks=0, environment=env,
    )
    records = [full]
    if writer is not None:
        writer.add(full, full_images)

    bar = _progress(settings, f"{model}, {steps or '?'} steps", progress)
    for setting in bar:
        rec = _run_setting(setting, run, counter_steps=(steps, per_gen), full_walls=full_walls, repeats=repeats,
                           score=score, base=dict(model=model, steps=steps, seeds=list(seeds), environment=env),
                           ours=ours)
        records.append(rec[0])
        full.wall_s = full.reference_wall_s = round(statistics.median(full_walls), 4)  # every full-compute timing so far
        if writer is not None:
            writer.add(rec[0], rec[1])
    if writer is not None:
        writer.update(full)
        writer.render(ours=ours, targets=targets)
    return records


@attrs.define
class Measured:
    """What one setting produced over some seeds, before scoring.

    Attributes:
        images: every seed's images, concatenated (CPU).
        count: block executions over those seeds (``None``: no adapter to count with).
        passes, fallbacks, cache_bytes: padecache's stats of each generation that reported any (none for peers).
        mask: the first such generation's mask (``#`` computed, ``.`` forecast).
        wall, ref: median wall time of the method over the seeds, and of full compute timed around it.
        suspect: the wall speedup exceeded the pass speedup even when re-timed.
    """

    images: torch.Tensor
    count: int | None
    passes: list = attrs.field(factory=list)
    fallbacks: list = attrs.field(factory=list)
    cache_bytes: list = attrs.field(factory=list)
    mask: str | None = None
    wall: float = 0.0
    ref: float = 0.0
    suspect: bool = False


def new_record(setting: Any, base: dict, ours: str | None) -> Record:
    """The record of ``setting`` (a :class:`Setting`, or anything with its attributes) before it runs."""
    return Record(
        method=setting.method, kind=setting.kind, config=setting.config, plugin=setting.plugin, plugin_version=setting.version,
        components=setting.components, group=setting.group or setting.method, published=setting.published,
        ours=setting.method == ours, target=None if setting.target is None else round(setting.target, 4), **base,
    )


def measure(setting: Setting, run: _Run, *, full_walls: list[float], repeats: int, per_gen: float | None) -> Measured:
    """Attach ``setting``, generate untimed (images, passes, stats), then time it between full-compute runs.

    ``full_walls`` holds the full-compute timings so far (its last one precedes this setting's first timed run);
    the ones made here are appended.  ``per_gen``: full compute's block executions per generation.  The method
    is always taken off the pipeline again, also when it fails.
    """
    attached: Attached | None = None
    try:
        attached = setting.attach(run.pipe)
        with _Counter(run.pipe) as counter:
            images, stats = run.images(attached.reset, attached.stats)  # untimed: warm-up, images, passes
            count = counter.count
        walls, refs = [], [full_walls[-1]]
        for i in range(repeats):
            if i:
                attached.resume()
            walls.append(run.timed(attached.reset))
            attached.suspend()
            full_walls.append(run.timed())
            refs.append(full_walls[-1])
        pass_speedup = None if not count or per_gen is None else per_gen * len(run.seeds) / count
        wall = statistics.median(walls) if walls else None  # repeats=0: scores only, no timing
        ref = statistics.median(refs) if walls else None
        suspect = False
        if wall is not None and pass_speedup is not None and ref / wall > pass_speedup * (1 + SUSPECT_TOLERANCE):
            # once more, between two fresh full-compute runs: a load spike during one run is the usual cause,
            # and the median of three full-compute timings is robust to one spike
            full_walls.append(run.timed())
            attached.resume()
            wall = run.timed(attached.reset)
            attached.suspend()
            full_walls.append(run.timed())
            ref = statistics.median([refs[-1], *full_walls[-2:]])
            suspect = ref / wall > pass_speedup * (1 + SUSPECT_TOLERANCE)
    finally:
        if attached is not None:
            attached.suspend()
            attached.close()
    stats = [s for s in stats if s is not None and getattr(s, "total_steps", 0)]
    return Measured(images, count, [s.full_passes for s in stats], [s.fallbacks for s in stats], [s.cache_bytes for s in stats],
                    "".join("#" if m else "." for m in stats[0].mask()) if stats else None, wall, ref, suspect)


def fill(rec: Record, m: Measured, steps: int | None, per_gen: float | None, seeds: int) -> None:
    """Passes, speedups, timings and stats of ``rec`` from what its ``seeds`` generations measured."""
    rec.samples = len(m.images)
    if m.count is not None and steps is not None and per_gen:
        rec.passes = round(steps * m.count / seeds / per_gen, 4)
    elif m.passes:
        rec.passes = round(statistics.mean(m.passes), 4)
    pass_speedup = None if not m.count or per_gen is None else per_gen * seeds / m.count
    rec.pass_speedup = None if pass_speedup is None else round(pass_speedup, 4)
    if m.wall is not None:
        rec.wall_s, rec.reference_wall_s = round(m.wall, 4), round(m.ref, 4)
        rec.wall_speedup = round(m.ref / m.wall, 4)
    rec.status = "timing_suspect" if m.suspect else "ok"
    if m.passes:
        rec.fallbacks = sum(m.fallbacks)
        rec.cache_bytes = max(m.cache_bytes)
        rec.mask = m.mask


def _run_setting(setting: Setting, run: _Run, *, counter_steps, full_walls: list[float], repeats: int, score,
                 base: dict, ours: str | None) -> tuple[Record, torch.Tensor | None]:
    steps, per_gen = counter_steps
    rec = new_record(setting, base, ours)
    if setting.skip is not None:
        rec.status = f"skipped: {setting.skip}"
        return rec, None
    try:
        m = measure(setting, run, full_walls=full_walls, repeats=repeats, per_gen=per_gen)
    except Exception as err:  # a peer that breaks is reported, not hidden; padecache's own failures are bugs
        if setting.kind != "peer":
            raise
        rec.status = failed_status(err)
        return rec, None
    fill(rec, m, steps, per_gen, len(run.seeds))
    rec.scores = score(m.images, setting.target)
    return rec, m.images


def failed_status(err: BaseException | str) -> str:
    """A record's ``status`` for a run that raised: ``"failed: ExceptionType: message"`` (at most 300 characters)."""
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    return f"failed: {text}"[:300]


def _progress(items, desc, enabled):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the bench extra; without it, no bar
        return items
    return tqdm(items, desc=desc, unit="run")
