"""Every image metric of the benchmark core against a known value."""

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


def test_psnr_uses_the_pixel_range_and_reads_video_as_frames():
    """[0, 1] images offset by 0.01: MSE 1e-4 on a range of 1 -> 40 dB; a video (N, F, C, H, W) is N * F frames."""
    ref = torch.full((2, 3, 3, 16, 16), 0.5)
    assert metrics.psnr(ref + 0.01, ref, data_range=1.0).tolist() == pytest.approx([40.0] * 6, abs=1e-3)
    assert metrics.infer_data_range(ref) == 1.0 and metrics.infer_data_range(ref - 1) == 2.0
    scores = metrics.default_scorers(1.0)
    assert scores["psnr"](ref + 0.01, ref) == pytest.approx(40.0, abs=1e-3) and scores["psnr"](ref, ref) == math.inf
    assert scores["rel_l2"](ref * 1.1, ref) == pytest.approx(0.1)


def test_a_scoped_scorer_runs_only_at_its_targets_full_compute_and_single_configs():
    scorer = metrics.Scorer(lambda x, ref: 1.0, targets=(2.5,))
    assert [scorer.applies(t) for t in (2.5, 2.5001, 10 / 3, 1.0, None)] == [True, True, False, True, True]
    assert metrics.Scorer(lambda x, ref: 1.0).applies(4.0)
    with pytest.raises(TypeError, match="not callable"):
        metrics.normalise_scorers({"x": "psnr"}, torch.zeros(1))
