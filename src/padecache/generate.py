"""``padecache generate``: one pipeline, one configuration, images or video out, and what it cost.

    from padecache.generate import generate, generate_many
    result = generate("path/to/pipeline", "tc-pade-fast", prompt="a cat", steps=20, out="out/", compare=True)
    print(result.summary())   # passes, pass speedup, wall time, time outside the transformer, PSNR vs full compute

    many = generate_many("path/to/pipeline", "tc-pade-fast", prompts=["a cat", "a dog"], seeds=range(32), out="out/")
    print(many.summary())     # out/p000-s0000.png ... out/p001-s0031.png and out/summary.json

``generate_many`` runs one generation per (prompt, seed), each with its own seeded generator and padecache
applied afresh, so a sample's image and file name (``p{prompt index:03d}-s{seed:04d}``) depend on nothing else:
with ``executor=`` (:class:`padecache.cluster.RayExecutor`, the CLI's ``--ray``) the samples are split over the
cluster's GPUs (or CPUs) and the output directory gets the same files as in one process.

The pipeline is a local diffusers pipeline directory (loaded offline, ``local_files_only``), a pipeline object,
or the name of a bundled reference model (``dit-mnist``, ``flux-mnist``; the ``padecache-reference``
package).  ``compare=True`` also runs full compute on the same seed and reports PSNR against it, with a
side-by-side image.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

__all__ = ["GenerateResult", "generate", "load_pipeline", "generate_many", "ManyResult", "Sample", "SampleResult"]


@attrs.frozen
class GenerateResult:
    """What one ``generate`` call produced and measured."""

    images: torch.Tensor  # (B, C, H, W) or video (B, F, C, H, W), values in [0, 1]
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


def load_pipeline(source: Any, device: str | None = None, dtype: torch.dtype | None = None):
    """A pipeline from a local directory (offline), a bundled reference model name, or the object itself."""
    if not isinstance(source, (str, Path)):
        return source
    path = Path(source)
    if path.is_dir():
        from diffusers import DiffusionPipeline

        if not (path / "model_index.json").is_file():
            raise ValueError(f"{path}: not a diffusers pipeline directory (no model_index.json); save one with "
                             f"pipe.save_pretrained(DIR)")
        kwargs = {"local_files_only": True}
        if dtype is not None:
            kwargs["torch_dtype"] = dtype
        pipe = DiffusionPipeline.from_pretrained(path, **kwargs)
        return pipe.to(device) if device else pipe
    try:
        from padecache_reference import load_reference, reference_names
    except ImportError:
        raise ValueError(
            f"{source!r} is neither a pipeline directory nor a bundled reference model (the reference models need "
            f"the padecache-reference package: pip install -e plugins/reference)"
        ) from None
    if str(source) not in reference_names():
        raise ValueError(f"{source!r}: no such directory, and the reference models are {', '.join(reference_names())}")
    return load_reference(str(source))


class _TransformerClock:
    """Time spent inside the pipeline's transformer(s), synchronised on accelerators."""

    def __init__(self, pipe):
        self.seconds = 0.0
        self._start: float | None = None
        self.handles = []
        for name in ("transformer", "transformer_2"):
            model = getattr(pipe, name, None)
            if isinstance(model, torch.nn.Module):
                model = getattr(model, "_orig_mod", model)
                self.handles.append(model.register_forward_pre_hook(self._enter))
                self.handles.append(model.register_forward_hook(self._leave))

    def _sync(self, module):
        p = next(module.parameters(), None)
        if p is not None and p.device.type == "cuda":
            torch.cuda.synchronize(p.device)

    def _enter(self, module, args):
        self._sync(module)
        self._start = time.perf_counter()

    def _leave(self, module, args, output):
        self._sync(module)
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def close(self):
        for h in self.handles:
            h.remove()


def _call_kwargs(pipe, prompt, labels, steps, seed, height, width, frames, negative_prompt, guidance_scale) -> dict:
    import inspect

    params = inspect.signature(type(pipe).__call__).parameters
    kw: dict[str, Any] = {}
    if "class_labels" in params:
        if labels is None:
            raise ValueError(f"{type(pipe).__name__} is class-conditional: pass --labels (e.g. 1,2,3)")
        kw["class_labels"] = list(labels)
    elif "prompt" in params:
        if prompt is None:
            raise ValueError(f"{type(pipe).__name__} needs a --prompt")
        kw["prompt"] = prompt
        if negative_prompt is not None and "negative_prompt" in params:
            kw["negative_prompt"] = negative_prompt
    for key, value in (("height", height), ("width", width), ("num_frames", frames), ("guidance_scale", guidance_scale)):
        if value is not None:
            if key not in params:
                raise ValueError(f"{type(pipe).__name__} takes no `{key}`")
            kw[key] = value
    device = getattr(pipe, "device", torch.device("cpu"))
    kw.update(num_inference_steps=steps, generator=torch.Generator(device=device).manual_seed(seed))
    if "output_type" in params:
        kw["output_type"] = "pt"
    return kw


def _images(out) -> torch.Tensor:
    """The pipeline output as a float tensor in [0, 1]: (B, C, H, W) for images, (B, F, C, H, W) for video."""
    if isinstance(out, torch.Tensor):  # the reference models return [-1, 1]
        return ((out.float() + 1) / 2).clamp(0, 1)
    for attr in ("frames", "images"):
        value = getattr(out, attr, None)
        if value is None:
            continue
        channels_last = not isinstance(value, torch.Tensor)  # numpy output is (..., H, W, C)
        value = torch.as_tensor(value).float() if channels_last else value.float()
        if channels_last and value.shape[-1] in (1, 3, 4):
            value = value.movedim(-1, -3)
        return value.clamp(0, 1)
    raise TypeError(f"cannot find images or frames in the pipeline's output ({type(out).__name__})")


def _run(pipe, kwargs: dict, reference: bool) -> tuple[torch.Tensor, float, float]:
    clock = _TransformerClock(pipe)
    try:
        start = time.perf_counter()
        if reference:  # a bundled reference model
            out = pipe(kwargs["class_labels"], num_inference_steps=kwargs["num_inference_steps"], seed=kwargs["seed"])
        else:
            out = pipe(**kwargs)
        wall = time.perf_counter() - start
    finally:
        clock.close()
    return _images(out), wall, clock.seconds


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    mse = (x.double() - ref.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


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
    """Generate with padecache applied (``config``: preset name, TOML path, dict); see the module docstring.

    The padecache run comes first and full compute (``compare``) second, so any warm-up cost falls on padecache's
    wall time, never on the baseline.
    """
    import padecache

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    cfg = padecache.load_config(config)  # a bad config fails before anything loads
    outdir = _prepare(out)
    pipe = load_pipeline(pipeline, device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=not progress)
    reference = not hasattr(pipe, "components") and hasattr(pipe, "spec")
    if reference:
        if labels is None:
            raise ValueError("the reference models are class-conditional: pass --labels (digits 0-9)")
        kwargs = {"class_labels": list(labels), "num_inference_steps": steps, "seed": seed}
    else:
        kwargs = _call_kwargs(pipe, prompt, labels, steps, seed, height, width, frames, negative_prompt, guidance_scale)
    padecache.apply(pipe, cfg)
    try:
        images, wall, inside = _run(pipe, kwargs, reference)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    full = full_wall = None
    if compare:
        if not reference:
            kwargs["generator"].manual_seed(seed)
        full, full_wall, _ = _run(pipe, kwargs, reference)
    psnr = None if full is None else _psnr(images, full)
    files = _save(outdir, images, full) if outdir is not None else ()
    return GenerateResult(images, stats.total_steps, stats.full_passes, stats.pass_speedup, wall, inside, files, psnr, full_wall)


# -- many samples, in one process or on a cluster ------------------------------------------------------------

@attrs.frozen
class Sample:
    """One generation of :func:`generate_many`: the prompt (or class label) at position ``index``, and a seed."""

    index: int
    seed: int
    prompt: str | None = None
    label: int | None = None

    @property
    def stem(self) -> str:
        """Its files' name, which depends only on (prompt index, seed)."""
        return f"p{self.index:03d}-s{self.seed:04d}"


@attrs.define
class SampleResult:
    """What one sample produced and cost; a failed sample has ``error`` and nothing else."""

    sample: Sample
    files: tuple[str, ...] = ()  # relative to the output directory
    steps: int | None = None
    full_passes: float | None = None
    pass_speedup: float | None = None
    wall_s: float | None = None
    transformer_s: float | None = None
    psnr: float | None = None  # against full compute of the same seed (compare=True)
    full_wall_s: float | None = None
    error: str | None = None
    task: int | None = None  # which task generated it, on a cluster
    payload: dict | None = attrs.field(default=None, repr=False)  # a worker's files: relative name -> bytes

    def to_dict(self) -> dict[str, Any]:
        d = {"prompt_index": self.sample.index, "seed": self.sample.seed}
        d["prompt" if self.sample.label is None else "label"] = self.sample.prompt if self.sample.label is None else self.sample.label
        for name in ("files", "steps", "full_passes", "pass_speedup", "wall_s", "transformer_s", "psnr", "full_wall_s",
                     "error", "task"):
            value = getattr(self, name)
            if isinstance(value, float):
                value = "inf" if math.isinf(value) else round(value, 4)
            d[name] = list(value) if isinstance(value, tuple) else value
        return d


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

    def totals(self) -> dict[str, Any]:
        ok = [r for r in self.samples if r.error is None]
        steps = sum(r.steps or 0 for r in ok)
        passes = sum(r.full_passes or 0.0 for r in ok)
        totals: dict[str, Any] = {
            "samples": len(self.samples), "failed": len(self.samples) - len(ok), "steps": steps,
            "full_passes": round(passes, 4), "pass_speedup": round(steps / passes, 4) if passes else None,
            "wall_s": round(sum(r.wall_s or 0.0 for r in ok), 4), "transformer_s": round(sum(r.transformer_s or 0.0 for r in ok), 4),
            "elapsed_s": round(self.elapsed_s, 4), "tasks": self.tasks,
        }
        compared = [r for r in ok if r.psnr is not None]
        if compared:
            finite = [r.psnr for r in compared if math.isfinite(r.psnr)]
            totals["full_wall_s"] = round(sum(r.full_wall_s or 0.0 for r in compared), 4)
            totals["psnr_mean"] = round(sum(finite) / len(finite), 4) if finite else "inf"  # over samples not identical to full
            totals["psnr_min"] = round(min(finite), 4) if finite else "inf"
            totals["identical_to_full"] = len(compared) - len(finite)
        return totals

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


@attrs.frozen
class _Options:
    """How every sample is generated (what :func:`generate_many` passes to each share)."""

    steps: int
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    guidance_scale: float | None = None
    compare: bool = False
    device: str | None = None


def _unique_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seen: set[int] = set()
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ValueError(f"seeds must be whole numbers >= 0, got {s!r}")
        if s in seen:
            raise ValueError(f"seed {s} is given twice (a sample's files are named by its prompt and seed)")
        seen.add(s)
    return tuple(seeds)


def _samples(prompts, labels, seeds) -> list[Sample]:
    if (prompts is None) == (labels is None):
        raise ValueError("give prompts (text-conditioned pipelines) or labels (class-conditional ones), one of the two")
    seeds = _unique_seeds(list(seeds))
    if not seeds:
        raise ValueError("give at least one seed")
    if prompts is not None:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts must be one or more strings, got {prompts!r}")
        return [Sample(i, s, prompt=p) for i, p in enumerate(prompts) for s in seeds]
    labels = list(labels)
    if not labels or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
        raise ValueError(f"labels must be one or more class ids >= 0, got {labels!r}")
    return [Sample(i, s, label=v) for i, v in enumerate(labels) for s in seeds]


def _sample_kwargs(pipe, reference: bool, sample: Sample, o: _Options) -> dict:
    if reference:
        if sample.label is None:
            raise ValueError("the reference models are class-conditional: pass --labels (digits 0-9)")
        return {"class_labels": [sample.label], "num_inference_steps": o.steps, "seed": sample.seed}
    labels = None if sample.label is None else [sample.label]
    return _call_kwargs(pipe, sample.prompt, labels, o.steps, sample.seed, o.height, o.width, o.frames, o.negative_prompt,
                        o.guidance_scale)


def generate_share(source: Any, config: dict, samples: Sequence[Sample], options: _Options, outdir: str | None,
                   collect: bool, task: int | None = None, progress: bool = False) -> list[SampleResult]:
    """Load the pipeline, check every sample's call, then generate them one by one (a task of :func:`generate_many`).

    Files go to ``outdir``, or with ``collect`` into each result's ``payload`` (a worker's files, written by the
    driver).  A setup error (the pipeline, the config, a call the pipeline does not take) raises; a sample that
    fails is reported in its result and the others go on.
    """
    import tempfile

    import padecache

    from .cluster import PipelineSource, describe_error

    cfg = padecache.load_config(config)
    pipe = source() if isinstance(source, PipelineSource) else load_pipeline(source, options.device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)  # one bar per sample would drown the output
    reference = not hasattr(pipe, "components") and hasattr(pipe, "spec")
    calls = [(sample, _sample_kwargs(pipe, reference, sample, options)) for sample in samples]
    padecache.apply(pipe, cfg)  # a pipeline padecache cannot hook fails here, once
    padecache.remove(pipe)
    with contextlib.ExitStack() as stack:
        folder = Path(outdir) if outdir is not None else None
        if collect:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="padecache-share-")))
        results = []
        for sample, kwargs in _bar(calls, progress, len(calls)):
            try:
                result = _one_sample(pipe, cfg, reference, sample, kwargs, options, folder)
            except Exception as err:  # noqa: BLE001 - reported with the sample; the others go on
                result = SampleResult(sample, error=describe_error(err))
            result.task = task
            if collect and result.files:
                result.payload = {name: (folder / name).read_bytes() for name in result.files}
            results.append(result)
    return results


def _one_sample(pipe, cfg, reference: bool, sample: Sample, kwargs: dict, o: _Options, folder: Path | None) -> SampleResult:
    import padecache

    padecache.apply(pipe, cfg)  # afresh for every sample: nothing carries over from the one before
    try:
        images, wall, inside = _run(pipe, kwargs, reference)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    full = full_wall = psnr = None
    if o.compare:
        if not reference:
            kwargs["generator"].manual_seed(sample.seed)
        full, full_wall, _ = _run(pipe, kwargs, reference)
        psnr = _psnr(images, full)
    files = _save_sample(folder, sample.stem, images, full) if folder is not None else ()
    return SampleResult(sample, files, stats.total_steps, stats.full_passes, stats.pass_speedup, wall, inside, psnr, full_wall)


def _save_sample(folder: Path, stem: str, images: torch.Tensor, full: torch.Tensor | None) -> tuple[str, ...]:
    """``{stem}.png`` (a batch of several: ``{stem}-{b}.png``), ``{stem}-compare.png``; video as in :func:`generate`."""
    files = []
    for b in range(len(images)):
        name = stem if len(images) == 1 else f"{stem}-{b}"
        if images.dim() == 5:  # video: (B, F, C, H, W)
            files += _save_video(folder, name, images[b])
            if full is not None:
                files += _save_video(folder, f"{name}-compare", torch.cat([full[b], images[b], _diff(images[b], full[b])], dim=-1))
            continue
        _to_pil(images[b]).save(folder / f"{name}.png")
        files.append(str(folder / f"{name}.png"))
        if full is not None:  # full compute | padecache | |difference| x 10
            _to_pil(torch.cat([full[b], images[b], _diff(images[b], full[b])], dim=-1)).save(folder / f"{name}-compare.png")
            files.append(str(folder / f"{name}-compare.png"))
    return tuple(Path(f).relative_to(folder).as_posix() for f in files)


def _bar(items, enabled: bool, total: int):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, unit="sample")


def _write_payload(outdir: Path, result: SampleResult) -> None:
    for name, data in (result.payload or {}).items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"a worker returned a file outside the output directory: {name!r}")
        dest = outdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    result.payload = None


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
        pipeline: a pipeline directory (loaded offline), a bundled reference model name, or a pipeline object.
        config: padecache configuration (preset name, TOML path, dict).
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
    import json

    import padecache

    start = time.perf_counter()
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    samples = _samples(prompts, labels, seeds)
    cfg = padecache.load_config(config).to_dict()  # a bad config fails before anything loads
    outdir = _prepare(out)
    options = _Options(steps, negative_prompt, height, width, frames, guidance_scale, compare, device)
    if executor is None:
        results = generate_share(pipeline, cfg, samples, options, None if outdir is None else str(outdir), False,
                                 progress=progress)
        tasks, cluster = 1, None
    else:
        results, tasks = _on_cluster(executor, pipeline, cfg, samples, options, outdir, progress)
        cluster = getattr(executor, "label", "") or type(executor).__name__
    results.sort(key=lambda r: (r.sample.index, r.sample.seed))
    result = ManyResult(tuple(results), outdir, cfg, time.perf_counter() - start, cluster, tasks)
    if outdir is not None:
        (outdir / "summary.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result


def _on_cluster(executor, pipeline, cfg: dict, samples: list[Sample], options: _Options, outdir: Path | None,
                progress: bool) -> tuple[list[SampleResult], int]:
    from .cluster import TaskFailed, pipeline_source

    options = attrs.evolve(options, device=options.device or getattr(executor, "device", None))
    n = max(1, min(executor.slots(), len(samples)))
    shares = [samples[k::n] for k in range(n)]  # round-robin: every task gets a mix of prompts and seeds
    source = pipeline_source(pipeline, options.device)
    if source is None:
        source = executor.put(pipeline)
    handles = {executor.submit(generate_share, source, cfg, share, options, None, outdir is not None, k,
                               name=f"generate: task {k}, {len(share)} samples"): k
               for k, share in enumerate(shares)}
    bar = _bar(None, progress, len(samples)) if progress else None
    results: list[SampleResult] = []
    try:
        while handles:
            for h in executor.wait(list(handles)):
                k = handles.pop(h)
                try:
                    got = executor.get(h)
                except TaskFailed as err:
                    got = [SampleResult(s, error=str(err), task=k) for s in shares[k]]
                for r in got:
                    if outdir is not None:
                        _write_payload(outdir, r)
                    r.payload = None
                results += got
                if bar is not None and hasattr(bar, "update"):
                    bar.update(len(shares[k]))
    except BaseException:
        executor.cancel(list(handles))
        raise
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    return results, n


def _prepare(out) -> Path | None:
    """Create and check the output directory before any model is loaded."""
    if out is None:
        return None
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".padecache-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--out {path}: cannot write there ({err.strerror or err})") from None
    return path


def _to_pil(img: torch.Tensor):
    from PIL import Image

    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), mode="L")
    return Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy())


def _save(outdir: Path, images: torch.Tensor, full: torch.Tensor | None) -> tuple[str, ...]:
    files = []
    if images.dim() == 5:  # video: (B, F, C, H, W)
        for b, video in enumerate(images):
            files.extend(_save_video(outdir, f"video-{b}", video))
        if full is not None:
            for b, video in enumerate(torch.cat([full, images, _diff(images, full)], dim=-1)):
                files.extend(_save_video(outdir, f"compare-{b}", video))
        return tuple(files)
    for b, img in enumerate(images):
        p = outdir / f"image-{b}.png"
        _to_pil(img).save(p)
        files.append(str(p))
        if full is not None:  # full compute | padecache | |difference| x 10
            q = outdir / f"compare-{b}.png"
            _to_pil(torch.cat([full[b], img, _diff(img, full[b])], dim=-1)).save(q)
            files.append(str(q))
    return tuple(files)


def _diff(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return ((x - ref).abs() * 10).clamp(0, 1)


def _save_video(outdir: Path, stem: str, video: torch.Tensor) -> list[str]:
    """An MP4 when an encoder is installed (imageio with ffmpeg), otherwise one PNG per frame."""
    with contextlib.suppress(Exception):
        from diffusers.utils import export_to_video

        path = outdir / f"{stem}.mp4"
        export_to_video([f.permute(1, 2, 0).numpy() for f in video], str(path), fps=8)
        if path.is_file() and path.stat().st_size > 0:
            return [str(path)]
    folder = outdir / stem
    folder.mkdir(exist_ok=True)
    files = []
    for i, frame in enumerate(video):
        p = folder / f"frame-{i:03d}.png"
        _to_pil(frame).save(p)
        files.append(str(p))
    return files
