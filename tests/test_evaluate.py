import math

import numpy as np
import pytest
import torch

from aelab.evaluate import knn_accuracy, mean_psnr, psnr, ssim, trustworthiness


def test_psnr_of_known_arrays():
    x = torch.zeros(2, 1, 4, 4)
    y = torch.full((2, 1, 4, 4), 0.1)  # MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(x, y), torch.tensor([20.0, 20.0]))
    y[1] = 0.01  # MSE 1e-4 -> 40 dB; the mean is over per-image PSNRs
    assert mean_psnr(x, y) == pytest.approx(30.0)
    assert psnr(x, y, peak=255.0)[0] == pytest.approx(20 + 20 * math.log10(255))


def test_identical_images_are_capped():
    x = torch.rand(3, 3, 8, 8)
    assert torch.isinf(psnr(x, x)).all()
    assert mean_psnr(x, x) == 100.0


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.random((3, 32, 32)).astype(np.float32), axis=2)
    x /= x.max()
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape).astype(np.float32), 0, 1)
    # skimage.metrics.structural_similarity(x, y, channel_axis=0, data_range=1, gaussian_weights=True,
    #                                       sigma=1.5, use_sample_covariance=False) == 0.47654667
    got = ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None])
    assert float(got[0]) == pytest.approx(0.47654667, abs=1e-5)


def test_ssim_bounds():
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert float(ssim(x, 1 - x)[0]) < 0


def test_knn_accuracy_separable_vs_random():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    codes = labels[:, None] * 10.0 + rng.normal(size=(150, 2))
    assert knn_accuracy(codes, labels, codes + 0.1, labels) == 1.0
    noise = rng.normal(size=(150, 2))
    assert knn_accuracy(noise, labels, rng.normal(size=(150, 2)), labels) < 0.6


def test_trustworthiness_of_identity_and_scramble():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    assert trustworthiness(x, x, k=5) == pytest.approx(1.0)
    assert trustworthiness(x, rng.normal(size=(80, 2)), k=5) < 0.7
