"""Image scores against full compute of the same seed, and the scorer protocol of :func:`~padecache.bench.compare`.

A scorer is any ``fn(images, full_compute_images) -> float`` over a whole run (every seed's images
concatenated, batch first).  The defaults (:func:`default_scorers`) are the mean per-image PSNR and SSIM
(torchmetrics, imported when first used) and relative L2.  Wrap a slow scorer in :class:`Scorer` to run it
only at some sweep points.  :func:`frechet_distance` is the FID formula for scorers that compare feature
sets (the reference plugin's class-feature and Inception FIDs use it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch

__all__ = ["psnr", "ssim", "rel_l2", "frechet_distance", "frechet_from_moments", "Scorer", "default_scorers", "infer_data_range", "as_images"]


def as_images(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` float images from a batch: videos ``(N, F, C, H, W)`` become ``N * F`` frames, ``(N, H, W)`` one channel."""
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 5:
        x = x.flatten(0, 1)
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W) or videos (N, F, C, H, W), got shape {tuple(x.shape)}")
    return x.float()


def infer_data_range(images: torch.Tensor) -> float:
    """2.0 for images in [-1, 1] (any negative value), else 1.0 (diffusers' ``output_type="pt"``)."""
    return 2.0 if float(torch.as_tensor(images).min()) < 0 else 1.0


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB (``inf`` for identical images)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    x, ref = as_images(x), as_images(ref)
    return torch.stack([peak_signal_noise_ratio(a[None], b[None], data_range=data_range) for a, b in zip(x, ref)])


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image SSIM (torchmetrics defaults: 11x11 Gaussian window, σ = 1.5)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(as_images(x), as_images(ref), data_range=data_range, reduction="none")


def rel_l2(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image ``||x - ref|| / ||ref||``."""
    x, ref = torch.as_tensor(x), torch.as_tensor(ref)
    diff = (x - ref).flatten(1).float().norm(dim=1)
    return diff / ref.flatten(1).float().norm(dim=1).clamp(min=1e-12)


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    return frechet_from_moments(feat_a.mean(0), np.cov(feat_a, rowvar=False), feat_b.mean(0), np.cov(feat_b, rowvar=False))


def frechet_from_moments(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance between two Gaussians given by their means and covariances (e.g. stored real-data statistics)."""
    # tr(sqrt(A B)) from the eigenvalues of sqrt(A) B sqrt(A) (symmetric, so eigh is stable)
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    tr_covmean = np.sqrt(np.clip(inner, 0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean)
    return max(0.0, value)  # rounding can leave a tiny negative number for (nearly) equal sets


def _mean_psnr(values: torch.Tensor) -> float:
    v = values.double()
    if not torch.isfinite(v).all():  # an image identical to full compute: the run is not distinguishable from it
        return math.inf
    return float(v.mean())


@attrs.frozen
class Scorer:
    """A scorer with a scope: ``fn(images, full_compute_images) -> float``, run only where it applies.

    Attributes:
        fn: the scorer.
        targets: score only the runs aimed at these pass speedups, full compute, and methods run as given
            (presets, configs); ``None`` scores every run.  For scorers too slow to run at every sweep point.
    """

    fn: Callable[[torch.Tensor, torch.Tensor], float]
    targets: tuple[float, ...] | None = attrs.field(default=None, converter=lambda t: None if t is None else tuple(t))

    def applies(self, target: float | None) -> bool:
        return self.targets is None or target is None or any(abs(target - t) < 1e-3 for t in (1.0, *self.targets))

    def __call__(self, images: torch.Tensor, full: torch.Tensor) -> float:
        return self.fn(images, full)


def default_scorers(data_range: float = 2.0) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
    """PSNR (dB, mean over images; ``inf`` when some image equals full compute), SSIM and relative L2.

    ``data_range`` is the span of pixel values: 2.0 for images in [-1, 1], 1.0 for [0, 1].
    """
    return {
        "psnr": lambda x, ref: _mean_psnr(psnr(x, ref, data_range)),
        "ssim": lambda x, ref: float(ssim(x, ref, data_range).mean()),
        "rel_l2": lambda x, ref: float(rel_l2(x, ref).mean()),
    }


def normalise_scorers(scorers: Mapping[str, Any] | None, full: torch.Tensor) -> dict[str, Scorer]:
    """``scorers`` as :class:`Scorer` s (the defaults, with the data range read from ``full``, when ``None``)."""
    if scorers is None:
        scorers = default_scorers(infer_data_range(full))
    if not isinstance(scorers, Mapping):
        raise TypeError(f"scorers must map a name to fn(images, full_compute_images) -> float, got {type(scorers).__name__}")
    out = {}
    for name, fn in scorers.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"scorer names must be non-empty strings, got {name!r}")
        if not callable(fn):
            raise TypeError(f"scorer {name!r} is not callable: {fn!r}")
        out[name] = fn if isinstance(fn, Scorer) else Scorer(fn)
    return out


def check_scorers(scorers: Mapping[str, Any] | None) -> None:
    """Validate ``scorers`` before any model runs."""
    if scorers is not None:
        normalise_scorers(scorers, torch.zeros(1))


def round_score(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return value if math.isinf(value) else round(value, 5)


def headline_metric(names: Sequence[str]) -> str | None:
    """The score the report ranks by: ``psnr`` when present, else the first (higher is better)."""
    return "psnr" if "psnr" in names else (names[0] if names else None)
