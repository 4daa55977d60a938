"""Image-to-image for the reference pipelines, the way diffusers' ``FluxImg2ImgPipeline`` does it.

``pipe(..., image=x, strength=s)`` sets the ``num_inference_steps`` schedule as usual and runs only its last
``round(num_inference_steps * s)`` steps (Python's ``round``), from the image noised to the first of them:
``scheduler.scale_noise(image, t_first, noise)``, i.e. ``(1 - sigma) image + sigma noise`` on a flow-matching
schedule, the noise drawn from each sample's seed as for text-to-image.  The scheduler is told where it starts
(``set_begin_index``), as diffusers' pipelines tell it.  Strength 1 runs every step from pure noise: the same
images as the call without ``image``.

One difference from diffusers: ``FluxImg2ImgPipeline`` skips ``int(n - n * s)`` steps, so it runs
``ceil(n * s)`` of them where ``n * s`` is fractional (23 of 28 at 0.8); here the count is ``round(n * s)``
(22 of 28).

Example::

    from padecache_reference import load_reference
    pipe = load_reference("flux-mnist")
    digits = pipe([3, 1], num_inference_steps=28, seed=0)
    redrawn = pipe([3, 1], num_inference_steps=28, seed=1, image=digits, strength=0.6)   # 17 of 28 steps
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

__all__ = ["steps_run", "check_img2img", "start"]

#: pixels may leave [-1, 1] by this much (float rounding of a conversion) before the image is refused
RANGE_SLACK = 1e-4


def steps_run(num_inference_steps: int, strength: float) -> int:
    """How many of a ``num_inference_steps`` schedule's steps img2img at ``strength`` runs: the last ``round(n * s)``."""
    return min(num_inference_steps, round(num_inference_steps * strength))


def _check_strength(strength, num_inference_steps: int) -> float:
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real):
        raise TypeError(f"strength must be a number in (0, 1] (the share of the schedule that runs), got {strength!r}")
    s = float(strength)
    if not 0.0 < s <= 1.0:
        raise ValueError(f"strength must be in (0, 1] (the share of the schedule that runs; 1: from pure noise), got {s}")
    if steps_run(num_inference_steps, s) < 1:
        raise ValueError(f"strength {s} of {num_inference_steps} steps runs no step (round({num_inference_steps} x {s}) "
                         f"= 0): raise strength or num_inference_steps")
    return s


def check_img2img(image, strength, latents, n: int, num_inference_steps: int, shapes: Sequence[tuple[int, ...]],
                  what: str) -> tuple[torch.Tensor | None, float | None]:
    """``(image, strength)`` checked for ``n`` samples at ``num_inference_steps``; ``(None, None)`` for text-to-image.

    ``shapes``: the per-sample shapes ``image`` may have (``(C, H, W)``, the first one is the model's); ``what``
    names the samples in messages ("class labels", "prompts").
    """
    if image is None:
        if strength is not None:
            raise ValueError(f"strength={strength!r} is for image-to-image: give the image too (image=, an (N, C, H, W) "
                             f"tensor in [-1, 1]), or leave strength out")
        return None, None
    if strength is None:
        raise ValueError("image= needs strength= (in (0, 1]: the share of the schedule that runs from the noised image; "
                         "diffusers' img2img pipelines use 0.6 by default)")
    strength = _check_strength(strength, num_inference_steps)
    if latents is not None:
        raise ValueError("give image= (image-to-image) or latents= (text-to-image from these latents), not both")
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch tensor (N, C, H, W) in [-1, 1], got {type(image).__name__}")
    wanted = " or ".join(str((n, *s)) for s in shapes)
    if image.dim() != 4 or tuple(image.shape[1:]) not in [tuple(s) for s in shapes] or len(image) != n:
        raise ValueError(f"image has shape {tuple(image.shape)}; for {n} {what} it must be {wanted} "
                         f"(one image per sample, batch first)")
    if not image.is_floating_point():
        raise TypeError(f"image must be floating point in [-1, 1], got {image.dtype} (uint8 pixels p: p / 127.5 - 1)")
    if not bool(torch.isfinite(image).all()):
        raise ValueError("image has non-finite values (nan or inf)")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise ValueError(f"image values must be in [-1, 1], got [{lo:.4g}, {hi:.4g}] (pixels in [0, 1]: 2 x - 1; "
                         f"uint8: p / 127.5 - 1)")
    return image.detach().float().clamp(-1, 1), strength


def start(scheduler, num_inference_steps: int, strength: float, image: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(timesteps that run, initial sample)`` after ``scheduler.set_timesteps``: the schedule from index
    ``n - round(n * strength)`` on (the scheduler is told it begins there) and ``image`` noised to its first timestep."""
    strength = _check_strength(strength, num_inference_steps)
    first = (num_inference_steps - steps_run(num_inference_steps, strength)) * getattr(scheduler, "order", 1)
    timesteps = scheduler.timesteps[first:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(first)
    x = scheduler.scale_noise(image.to(noise.dtype), timesteps[:1].repeat(len(noise)), noise)
    return timesteps, x
