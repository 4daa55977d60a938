"""``padecache generate``: one pipeline, one configuration, images or video out, and what it cost.

    from padecache.generate import generate, generate_many
    result = generate("path/to/pipeline", "tc-pade-fast", prompt="a cat", steps=20, out="out/", compare=True)
    print(result.summary())   # passes, pass speedup, wall time, time outside the transformer, PSNR vs full compute

    many = generate_many("path/to/pipeline", "tc-pade-fast", prompts=["a cat", "a dog"], seeds=range(32), out="out/")
    print(many.summary())     # out/p000-s0000.png ... out/p001-s0031.png and out/summary.json

``generate_many`` runs one generation per (prompt, seed), each with its own seed and padecache applied afresh, so a
sample's image and file name (``p{prompt index:03d}-s{seed:04d}``) depend on nothing else: with ``executor=``
(:class:`padecache.cluster.RayExecutor`, the CLI's ``--ray``) the samples are split over the cluster's GPUs (or
CPUs) and the output directory gets the same files as in one process (:mod:`padecache.generate_tasks`).

The pipeline is a local diffusers pipeline directory (loaded offline), a pipeline object, or the name of a
reference model a plugin provides (``padecache list``; :mod:`padecache.loading`).  ``compare=True`` also runs full
compute on the same seed and reports PSNR against it, with a side-by-side image.  The jobs live in their own
modules: loading (:mod:`~padecache.loading`), timing (:mod:`~padecache.timing`), one generation and a task's
samples (:mod:`~padecache.generation`), the cluster (:mod:`~padecache.generate_tasks`), files (:mod:`~padecache.files`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .files import check_output_dir, make_output_dir, save_images
from .generation import Sample, SampleOptions, SampleResult, generate_share, psnr, run_once
from .loading import Request, check_request, load_pipeline, pipeline_call, reference_model

__all__ = ["GenerateResult", "generate", "load_pipeline", "generate_many", "check_many", "ManyResult", "Sample", "SampleResult"]


@attrs.frozen
class GenerateResult:
    """What one ``generate`` call produced and measured."""

    images: Any  # (B, C, H, W) or video (B, F, C, H, W), values in [0, 1]
    steps: int
    full_passes: float
    pass_speedup: float
    wall_s: float
    transformer_s: float
    files: tuple[str, ...] = ()
    psnr: float | None = None  # against full compute of the same seed (compare=True)
    full_wall_s: float | None = None

    @property
    def outside_s(self) -> float:
        """Time outside the transformer (text encoders, VAE, scheduler, padecache's own work)."""
        return max(0.0, self.wall_s - self.transformer_s)

    def summary(self) -> str:
        line = (
            f"{self.full_passes:g} block-stack passes for {self.steps} steps ({self.pass_speedup:.2f}x fewer), "
            f"wall {self.wall_s:.2f} s: transformer {self.transformer_s:.2f} s, outside it {self.outside_s:.2f} s "
            f"(text encoders, VAE, scheduler)"
        )
        if self.full_wall_s is not None:
            line += f"; full compute {self.full_wall_s:.2f} s ({self.full_wall_s / self.wall_s:.2f}x wall)"
        if self.psnr is not None:
            line += f"; PSNR vs full compute {'inf' if math.isinf(self.psnr) else f'{self.psnr:.2f}'} dB"
        return line


def _steps(steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")


def generate(
    pipeline: Any,
    config: Any = None,
    *,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    labels: Sequence[int] | None = None,
    steps: int = 20,
    seed: int = 0,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    guidance_scale: float | None = None,
    out: str | Path | None = None,
    compare: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> GenerateResult:
    """Generate with padecache applied (``config``: preset or method name, TOML path, dict); see the module docstring.

    An option the pipeline does not take (``height`` on a reference model of fixed size) is a ``ValueError``
    before anything runs; for a saved pipeline directory, before it loads (its class, named in ``model_index.json``,
    says what its ``__call__`` takes).  With ``compare`` an untimed two-step run comes first (loading and first-call costs),
    then the padecache run, then full compute, so both timed runs start warm.
    """
    import padecache

    _steps(steps)
    cfg = padecache.load_config(config)  # a bad config fails before anything loads
    outdir = check_output_dir(out) if out is not None else None
    request = Request(steps, seed, prompt, labels, negative_prompt, height, width, frames, guidance_scale)
    check_request(pipeline, request)  # a saved pipeline's class refuses what it cannot take before it loads
    pipe = load_pipeline(pipeline, device)
    model = reference_model(pipeline)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=not progress)
    call = pipeline_call(pipe, request, model)
    if compare:  # untimed: lazy loading and first-call costs would otherwise fall on the first timed run alone
        run_once(pipe, pipeline_call(pipe, attrs.evolve(request, steps=min(2, steps)), model))
    padecache.apply(pipe, cfg)
    try:
        images, wall, inside = run_once(pipe, call)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    full = full_wall = None
    if compare:
        full, full_wall, _ = run_once(pipe, pipeline_call(pipe, request, model))  # a fresh generator, the same seed
    score = None if full is None else psnr(images, full)
    files = save_images(outdir, images, full) if outdir is not None else ()
    return GenerateResult(images, stats.total_steps, stats.full_passes, stats.pass_speedup, wall, inside, files, score, full_wall)


# -- many samples, in one process or on a cluster ------------------------------------------------------------

@attrs.frozen
class ManyResult:
    """What :func:`generate_many` produced: one :class:`SampleResult` per (prompt, seed), in that order."""

    samples: tuple[SampleResult, ...]
    out: Path | None
    config: dict
    elapsed_s: float
    cluster: str | None = None  # the executor's label, when it ran on one
    tasks: int = 1

    @property
    def failed(self) -> list[SampleResult]:
        return [r for r in self.samples if r.error is not None]

    def _compared(self, ok: list[SampleResult]) -> dict[str, Any]:
        compared = [r for r in ok if r.psnr is not None]
        if not compared:
            return {}
        finite = [r.psnr for r in compared if math.isfinite(r.psnr)]
        return {
            "full_wall_s": round(sum(r.full_wall_s or 0.0 for r in compared), 4),
            "psnr_mean": round(sum(finite) / len(finite), 4) if finite else "inf",  # over samples not identical to full
            "psnr_min": round(min(finite), 4) if finite else "inf",
            "identical_to_full": len(compared) - len(finite),
        }

    def totals(self) -> dict[str, Any]:
        ok = [r for r in self.samples if r.error is None]
        steps = sum(r.steps or 0 for r in ok)
        passes = sum(r.full_passes or 0.0 for r in ok)
        return {
            "samples": len(self.samples), "failed": len(self.samples) - len(ok), "steps": steps,
            "full_passes": round(passes, 4), "pass_speedup": round(steps / passes, 4) if passes else None,
            "wall_s": round(sum(r.wall_s or 0.0 for r in ok), 4), "transformer_s": round(sum(r.transformer_s or 0.0 for r in ok), 4),
            "elapsed_s": round(self.elapsed_s, 4), "tasks": self.tasks, **self._compared(ok),
        }

    def to_dict(self) -> dict[str, Any]:
        """``summary.json``: the configuration, every sample (files, passes, wall time), the totals."""
        return {"config": self.config, "distributed": self.cluster is not None, "cluster": self.cluster,
                "totals": self.totals(), "samples": [r.to_dict() for r in self.samples]}

    def summary(self) -> str:
        t = self.totals()
        where = f" on {self.cluster}, {self.tasks} task{'s' if self.tasks != 1 else ''}" if self.cluster else ""
        line = (f"{t['samples'] - t['failed']} of {t['samples']} samples{where}: {t['full_passes']:g} block-stack passes for "
                f"{t['steps']} steps" + (f" ({t['pass_speedup']:.2f}x fewer)" if t["pass_speedup"] else "")
                + f", generation {t['wall_s']:.2f} s (transformer {t['transformer_s']:.2f} s), elapsed {t['elapsed_s']:.2f} s")
        if "psnr_min" in t:
            line += f"; PSNR vs full compute: mean {t['psnr_mean']}, worst {t['psnr_min']} dB"
        return line


def _unique_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seen: set[int] = set()
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ValueError(f"seeds must be whole numbers >= 0, got {s!r}")
        if s in seen:
            raise ValueError(f"seed {s} is given twice (a sample's files are named by its prompt and seed)")
        seen.add(s)
    if not seen:
        raise ValueError("give at least one seed")
    return tuple(seeds)


def _samples(prompts, labels, seeds) -> list[Sample]:
    if (prompts is None) == (labels is None):
        raise ValueError("give prompts (text-conditioned pipelines) or labels (class-conditional ones), one of the two")
    seeds = _unique_seeds(list(seeds))
    if prompts is not None:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts must be one or more strings, got {prompts!r}")
        return [Sample(i, s, prompt=p) for i, p in enumerate(prompts) for s in seeds]
    labels = list(labels)
    if not labels or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
        raise ValueError(f"labels must be one or more class ids >= 0, got {labels!r}")
    return [Sample(i, s, label=v) for i, v in enumerate(labels) for s in seeds]


def _checked_samples(pipeline: Any, prompts, labels, seeds, options: SampleOptions) -> list[Sample]:
    """The samples of :func:`generate_many`, or its error for a bad step count, prompts, labels or seeds, or for what
    a saved pipeline cannot take (before it loads)."""
    _steps(options.steps)
    samples = _samples(prompts, labels, seeds)
    check_request(pipeline, options.request(samples[0]))
    return samples


def check_many(pipeline: Any, *, prompts: str | Sequence[str] | None = None, labels: Sequence[int] | None = None,
               seeds: Sequence[int] = (0,), steps: int = 20, negative_prompt: str | None = None, height: int | None = None,
               width: int | None = None, frames: int | None = None, guidance_scale: float | None = None) -> None:
    """What :func:`generate_many` refuses before any work, for a caller that must know before it starts a cluster."""
    options = SampleOptions(steps, negative_prompt, height, width, frames, guidance_scale)
    _checked_samples(pipeline, prompts, labels, seeds, options)


def generate_many(
    pipeline: Any,
    config: Any = None,
    *,
    prompts: str | Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    negative_prompt: str | None = None,
    steps: int = 20,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    guidance_scale: float | None = None,
    out: str | Path | None = None,
    compare: bool = False,
    device: str | None = None,
    progress: bool = True,
    executor: Any = None,
) -> ManyResult:
    """Generate every (prompt, seed) pair with padecache applied, in one process or on a cluster.

    Args:
        pipeline: a pipeline directory (loaded offline), a reference model name, or a pipeline object.
        config: padecache configuration (preset or method name, TOML path, dict).
        prompts: the prompts of a text-conditioned pipeline (one string: one prompt); ``labels``: the class ids of
            a class-conditional one instead.  Each is one sample per seed.
        seeds: one sample per seed and prompt (each with its own generator, seeded with it).
        steps, negative_prompt, height, width, frames, guidance_scale, device: as in :func:`generate`.
        out: output directory: ``p{prompt index:03d}-s{seed:04d}.png`` per sample (an MP4, or a folder of frames,
            for video), ``...-compare.png`` with ``compare``, and ``summary.json`` (every sample's passes and wall
            time, and the totals).
        compare: also run full compute of each sample and report PSNR against it.
        progress: a progress bar over the samples.
        executor: a :class:`padecache.cluster.Executor` (e.g. ``RayExecutor()``): the samples are split into one
            task per GPU (or CPU where there is none), round-robin; each task loads the pipeline itself (a
            directory or model name; a pipeline object is shipped to it) and returns its files, which are
            written here.  ``device`` defaults to the task's GPU.

    Returns:
        A :class:`ManyResult`; samples that failed carry their error (a task that fails is run once more first).

    Example::

        from padecache.cluster import RayExecutor
        with RayExecutor() as cluster:
            result = generate_many("saved-pipeline/", "tc-pade-fast", prompts=["a cat"], seeds=range(64), out="out/",
                                   executor=cluster)
    """
    import padecache

    start = time.perf_counter()
    options = SampleOptions(steps, negative_prompt, height, width, frames, guidance_scale, compare, device)
    samples = _checked_samples(pipeline, prompts, labels, seeds, options)
    cfg = padecache.load_config(config).to_dict()  # a bad config fails before anything loads
    outdir = check_output_dir(out) if out is not None else None
    if executor is None:
        results = generate_share(pipeline, cfg, samples, options, None if outdir is None else str(outdir), False,
                                 progress=progress)
        tasks, cluster = 1, None
    else:
        from .generate_tasks import run_on_cluster

        results, tasks = run_on_cluster(executor, pipeline, cfg, samples, options, outdir, progress)
        cluster = getattr(executor, "label", "") or type(executor).__name__
    results.sort(key=lambda r: (r.sample.index, r.sample.seed))
    result = ManyResult(tuple(results), outdir, cfg, time.perf_counter() - start, cluster, tasks)
    if outdir is not None:
        (make_output_dir(outdir) / "summary.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
