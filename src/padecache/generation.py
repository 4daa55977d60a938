"""One generation with padecache applied, and a task's share of :func:`padecache.generate.generate_many`.

* :func:`run_once`: call a pipeline once, timing the whole call (wall clock) and the time inside its transformers;
* :func:`generate_share`: load the pipeline, check every sample's call, then generate them one by one (what one
  task of ``generate_many`` does, in this process or on a cluster's worker).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .cluster import PipelineSource, describe_error
from .errors import pipeline_error
from .files import save_sample
from .loading import Call, Request, load_pipeline, pipeline_call, reference_model, transformers_of
from .timing import TransformerClock

__all__ = ["Sample", "SampleResult", "SampleOptions", "run_once", "as_images", "psnr", "generate_share", "progress_bar"]


def as_images(out: Any) -> Any:
    """The pipeline output as a float tensor in [0, 1]: (B, C, H, W) for images, (B, F, C, H, W) for video."""
    import torch

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


def run_once(pipe: Any, call: Call) -> tuple[Any, float, float]:
    """``(images in [0, 1], wall seconds, seconds inside the transformers)`` of one call."""
    clock = TransformerClock(transformers_of(pipe))
    try:
        start = time.perf_counter()
        out = pipe(*call.args, **call.kwargs)
        wall = time.perf_counter() - start
    except Exception as err:  # the pipeline's own error on this request: said with the request (errors.pipeline_error)
        raise pipeline_error(err, type(pipe).__name__, _request_text(call)) from err
    finally:
        clock.close()
    return as_images(out), wall, clock.seconds


def _request_text(call: Call) -> str:
    """What a call asked for, briefly: its inputs and keyword arguments, not its generator."""
    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    parts = [short(a) for a in call.args]
    parts += [f"{k}={short(v)}" for k, v in call.kwargs.items() if k not in ("generator", "output_type", "callback_on_step_end")]
    return ", ".join(parts)


def psnr(x: Any, ref: Any) -> float:
    """PSNR in dB of images in [0, 1] (``inf`` when identical)."""
    mse = (x.double() - ref.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@attrs.frozen
class Sample:
    """One generation of ``generate_many``: the prompt (or class label) at position ``index``, and a seed."""

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
        d: dict[str, Any] = {"prompt_index": self.sample.index, "seed": self.sample.seed}
        if self.sample.label is None:
            d["prompt"] = self.sample.prompt
        else:
            d["label"] = self.sample.label
        for name in ("files", "steps", "full_passes", "pass_speedup", "wall_s", "transformer_s", "psnr", "full_wall_s",
                     "error", "task"):
            value = getattr(self, name)
            if isinstance(value, float):
                value = "inf" if math.isinf(value) else round(value, 4)
            d[name] = list(value) if isinstance(value, tuple) else value
        return d


@attrs.frozen
class SampleOptions:
    """How every sample is generated (what ``generate_many`` passes to each share)."""

    steps: int
    negative_prompt: str | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    guidance_scale: float | None = None
    compare: bool = False
    device: str | None = None

    def request(self, sample: Sample) -> Request:
        labels = None if sample.label is None else [sample.label]
        return Request(self.steps, sample.seed, sample.prompt, labels, self.negative_prompt, self.height, self.width,
                       self.frames, self.guidance_scale)


def progress_bar(items: Any, enabled: bool, total: int, unit: str = "sample") -> Any:
    """A tqdm bar over ``items`` when enabled and tqdm is installed (the ``bench`` extra), else ``items``."""
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, unit=unit)


def _one_sample(pipe: Any, cfg: Any, model: Any, sample: Sample, o: SampleOptions, folder: Path | None) -> SampleResult:
    import padecache

    request = o.request(sample)
    padecache.apply(pipe, cfg)  # afresh for every sample: nothing carries over from the one before
    try:
        images, wall, inside = run_once(pipe, pipeline_call(pipe, request, model))
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    full = full_wall = score = None
    if o.compare:
        full, full_wall, _ = run_once(pipe, pipeline_call(pipe, request, model))
        score = psnr(images, full)
    files = save_sample(folder, sample.stem, images, full) if folder is not None else ()
    return SampleResult(sample, files, stats.total_steps, stats.full_passes, stats.pass_speedup, wall, inside, score, full_wall)


def generate_share(source: Any, config: dict, samples: Sequence[Sample], options: SampleOptions, outdir: str | None,
                   collect: bool, task: int | None = None, progress: bool = False) -> list[SampleResult]:
    """Load the pipeline, check every sample's call, then generate them one by one (a task of ``generate_many``).

    Files go to ``outdir``, or with ``collect`` into each result's ``payload`` (a worker's files, written by the
    driver).  A setup error (the pipeline, the config, a call the pipeline does not take) raises; a sample that
    fails is reported in its result and the others go on.
    """
    import padecache

    cfg = padecache.load_config(config)
    named = source.args[0] if isinstance(source, PipelineSource) and source.args else source
    pipe = source() if isinstance(source, PipelineSource) else load_pipeline(source, options.device)
    model = reference_model(named)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)  # one bar per sample would drown the output
    for sample in samples:
        pipeline_call(pipe, options.request(sample), model)  # a call the pipeline does not take fails here, once
    padecache.apply(pipe, cfg)  # a pipeline padecache cannot hook fails here, once
    padecache.remove(pipe)
    with contextlib.ExitStack() as stack:
        folder = Path(outdir) if outdir is not None else None
        if collect:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="padecache-share-")))
        results = []
        for sample in progress_bar(samples, progress, len(samples)):
            try:
                result = _one_sample(pipe, cfg, model, sample, options, folder)
            except Exception as err:  # noqa: BLE001 - reported with the sample; the others go on
                result = SampleResult(sample, error=describe_error(err))
            result.task = task
            if collect and result.files:
                result.payload = {name: (folder / name).read_bytes() for name in result.files}
            results.append(result)
    return results
