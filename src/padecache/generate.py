"""``padecache generate``: one pipeline, one configuration, images or video out, and what it cost.

    from padecache.generate import generate
    result = generate("path/to/pipeline", "tc-pade-fast", prompt="a cat", steps=20, out="out/", compare=True)
    print(result.summary())   # passes, pass speedup, wall time, time outside the transformer, PSNR vs full compute

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

__all__ = ["GenerateResult", "generate", "load_pipeline"]


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
