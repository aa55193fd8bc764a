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


def test_paper_split_is_50k_10k_on_full_mnist_and_a_sixth_held_out_below():
    from aelab.evaluate import paper_split

    assert paper_split(60_000) == (50_000, 10_000)  # the paper's: last 10,000 held out, trust. on the first 10,000
    assert paper_split(70_000) == (60_000, 10_000)  # never more than 10,000 held out
    assert paper_split(1024) == (854, 1024) and paper_split(600) == (500, 600) and paper_split(5) == (5, 5)
    with pytest.raises(ValueError, match="at least 2"):
        paper_split(1)


def test_paper_protocol_holds_out_the_last_training_codes_and_scores_trust_on_the_first(monkeypatch):
    """Known answers: the held-out codes sit on the test codes with the wrong labels, so a kNN that used them
    would score 0; trustworthiness is scikit-learn's on the first images only."""
    from sklearn.manifold import trustworthiness as sk_trust

    import aelab.evaluate as ev

    monkeypatch.setattr(ev, "PAPER_HELD_OUT", 2)
    monkeypatch.setattr(ev, "PAPER_TRUST_IMAGES", 12)
    n = 30
    assert ev.paper_split(n) == (28, 12)
    codes = np.stack([np.arange(n, dtype=float), np.zeros(n)], axis=1)
    labels = (np.arange(n) >= 14).astype(int)  # 0..13 are class 0, 14..27 class 1
    test = np.array([[0.1, 0.0], [27.1, 0.0]])
    test_labels = np.array([0, 1])
    codes[28:], labels[28:] = test, 1 - test_labels  # the held-out two: on the test codes, wrongly labelled
    assert knn_accuracy(codes, labels, test, test_labels, k=1) == 0.0  # what using all codes would give
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 4, 4))
    codes[12:28] = rng.permutation(codes[12:28])  # scrambled after the first 12: trust over all would drop
    ranks = ev.PixelNeighbourRanks(images[:12])
    got = ev.paper_protocol(codes, labels, test, test_labels, ranks)
    assert got["knn1_acc"] == 1.0 and got["knn5_acc"] == 1.0
    want = sk_trust(images[:12].reshape(12, -1), codes[:12], n_neighbors=5)
    assert got["trustworthiness_k5"] == pytest.approx(want, abs=1e-12)
    # the pixels as codes keep every neighbour
    assert ev.paper_protocol(images.reshape(n, -1), labels, images[:2].reshape(2, -1), labels[:2], ranks)[
        "trustworthiness_k5"
    ] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="first 12"):
        ev.paper_protocol(codes, labels, test, test_labels, ev.PixelNeighbourRanks(images[:14]))
