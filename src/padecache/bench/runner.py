"""``compare``: every method on the same pipeline and seeds, counted, timed and scored the same way.

Full compute runs first (untimed for its images and block executions, then timed); then every setting of every
method is measured by :func:`padecache.bench.measure.measure`: untimed for its images and passes, then timed
``repeats`` times interleaved with full compute, on the process's CPU time (a CPU) or CUDA events (a GPU), the
median counting, an impossible wall speedup re-timed and, if it persists, marked ``timing_suspect``.  The
records say which clock they were read on, and the load average at the start and end of the comparison, so a
report can warn when the machine was busy.

Records are written to ``out`` as they are made, so an interrupted run keeps what it finished.  With an
``executor`` the same comparison runs as tasks on a cluster (:mod:`padecache.bench.distributed`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import timing
from .measure import (
    SUSPECT_TOLERANCE,
    Counter,
    PassCounter,
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
from .metrics import check_scorers, normalise_scorers, round_score
from .records import Record, environment
from .settings import RunContext, Setting

__all__ = ["compare", "PassCounter", "DEFAULT_TARGETS", "SUSPECT_TOLERANCE"]

#: target pass speedups swept when ``compare(targets=None)``
DEFAULT_TARGETS = (2.5, 10 / 3)


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


def compare(
    pipe: Any,
    generate: Callable[[Any, int], Any],
    methods: Sequence[Any],
    *,
    targets: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    scorers: Mapping[str, Callable[[Any, Any], float]] | None = None,
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
            A ``captions`` attribute (one string per image, e.g. the prompts) titles the image grid's columns.
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
    if isinstance(ours, str) and ":" in ours:  # `tcpade:tc-pade` is the method labelled `tc-pade`
        ours = resolve([ours])[0].label
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
    model = name or pipe_name(pipe)
    device = device_of(pipe)
    env = environment(device)
    run = Run(pipe, generate, seeds, device)

    steps, calls_per_step = probe(pipe, run)  # also the untimed warm-up of full compute
    with Counter(pipe) as counter:
        full_images, _ = run.images()
        full_count = counter.count
    context = RunContext(pipe, generate, seeds, steps, calls_per_step, counter.block_lists, counter.num_blocks)
    settings: list[Setting] = [s for m in resolved for s in m.settings(steps, targets, context)]
    scorer_fns = normalise_scorers(scorers, full_images)
    if writer is not None:
        writer.start(model, steps, getattr(generate, "captions", None))

    def score(images: Any, target: float | None) -> dict[str, float | None]:
        return {n: _scored(n, s, images, full_images) if s.applies(target) else None for n, s in scorer_fns.items()}

    per_gen = None if full_count is None else full_count / len(seeds)
    full_walls = [run.timed()]
    full = Record(
        model=model, method="full", kind="reference", config={"predictor": {"name": "none"}, "policy": {"name": "always"}},
        plugin="padecache", plugin_version=env.padecache, group="full", target=1.0, steps=steps, seeds=list(seeds),
        samples=len(full_images), passes=steps, pass_speedup=1.0, wall_s=round(full_walls[0], 4), reference_wall_s=round(full_walls[0], 4),
        wall_speedup=1.0, scores=score(full_images, 1.0),
        status="ok", fallbacks=0, environment=env, clock=run.clock.name,
    )
    records = [full]
    if writer is not None:
        writer.add(full, full_images)

    bar = progress_bar(settings, f"{model}, {steps or '?'} steps", progress)
    for setting in bar:
        rec = _run_setting(setting, run, counter_steps=(steps, per_gen), full_walls=full_walls, repeats=repeats,
                           score=score, base=dict(model=model, steps=steps, seeds=list(seeds), environment=env, clock=run.clock.name),
                           ours=ours)
        records.append(rec[0])
        full.wall_s = full.reference_wall_s = round(statistics.median(full_walls), 4)  # every full-compute timing so far
        if writer is not None:
            writer.add(rec[0], rec[1])
    env.load_avg_end = timing.load_average()  # every record of this comparison shares its environment
    if writer is not None:
        writer.update(full)
        writer.render(ours=ours, targets=targets)
    return records


def _run_setting(setting: Setting, run: Run, *, counter_steps, full_walls: list[float], repeats: int, score,
                 base: dict, ours: str | None) -> tuple[Record, Any]:
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


def _scored(name: str, scorer: Callable, images: Any, full_images: Any) -> float:
    """One scorer's figure; an exception it raises carries a note naming the scorer (a bare ZeroDivisionError said
    nothing of which one)."""
    try:
        return round_score(scorer(images, full_images))
    except Exception as err:
        if hasattr(err, "add_note"):  # Python 3.11+
            err.add_note(f"padecache bench: raised by the scorer {name!r}")
        raise
