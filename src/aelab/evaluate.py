"""Metrics on held-out data. Pixel metrics are on the [0, 1] scale, per image, then averaged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Prepare = Callable[[torch.Tensor], torch.Tensor]


PSNR_CAP = 100.0  # dB: what an exact copy scores wherever PSNRs are averaged or shown


def psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0, cap: float | None = None) -> torch.Tensor:
    """Per-image PSNR in dB between two batches on the same scale: the one PSNR of aelab (the report, the
    digital baseline, the explorer). Identical images give +inf, or ``cap`` when given."""
    mse = (x.float() - y.float()).flatten(1).pow(2).mean(dim=1)
    out = 10.0 * torch.log10(peak**2 / mse)
    return out if cap is None else out.clamp(max=cap)


def mean_psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0, cap: float = PSNR_CAP) -> float:
    """Average of per-image PSNRs, each capped (an exact copy would otherwise be +inf)."""
    return float(psnr(x, y, peak, cap).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03).

    Computed per channel on the valid region and averaged, as in scikit-image's
    ``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``.
    """
    x, y = x.float(), y.float()
    c = x.shape[1]
    g = _gaussian_window().to(x.device)
    w = (g[:, None] * g[None, :]).expand(c, 1, -1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx**2
    vy = blur(y * y) - my**2
    cov = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    prepare: Prepare,
    device: torch.device,
    batch_size: int = 512,
    **forward_kwargs,
) -> dict[str, torch.Tensor]:
    """Run ``model`` over uint8 ``images`` in batches; every output concatenated on the CPU."""
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(images), batch_size):
        x = prepare(images[i : i + batch_size].to(device))
        for k, v in model(x, **forward_kwargs).items():
            outs.setdefault(k, []).append(v.float().cpu())
    return {k: torch.cat(v) for k, v in outs.items()}


NOISE_SEED_OFFSET = 11  # the channel noise of every scored model is one fixed draw from the seed + 11


@torch.no_grad()
def reconstruct(
    model: nn.Module,
    images: torch.Tensor,
    prepare: Prepare,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    batch_size: int = 256,
    seed: int = 0,
    **forward_kwargs,
) -> dict[str, torch.Tensor]:
    """``model``'s outputs on uint8 ``images``, plus ``x01``: the reconstructions on [0, 1] (``to_unit``,
    ``aelab.data.scaling.TO_UNIT``). With ``noise=True`` the channel noise is one fixed draw from
    ``seed + NOISE_SEED_OFFSET``, the same for every model; on a CPU also the same for any batch size (each
    image draws a multiple of 16 normals, which the CPU generator hands out as one stream)."""
    if forward_kwargs.get("noise"):
        forward_kwargs["generator"] = torch.Generator(device=device).manual_seed(seed + NOISE_SEED_OFFSET)
    out = predict(model, images, prepare, device, batch_size, **forward_kwargs)
    out["x01"] = to_unit(out["x_hat"])
    return out


def pixel_scores(x01: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """MSE, PSNR and SSIM of reconstructions ``x01`` against images ``x``, both on [0, 1], per image then averaged."""
    return {
        "test_mse": float((x01 - x).pow(2).mean()),
        "test_psnr": mean_psnr(x01, x),
        "test_ssim": float(ssim(x01, x).mean()),
    }


def channel_scores(noisy01: torch.Tensor, clean01: torch.Tensor, x: torch.Tensor, variance: float) -> dict[str, float]:
    """A channel model's scores: with noise of ``variance`` (``noisy01``) and on a noise-free channel."""
    from aelab.models.channel import snr_db

    noisy, clean = pixel_scores(noisy01, x), pixel_scores(clean01, x)
    return {
        "variance": variance,
        "snr_db": snr_db(variance),
        "test_psnr": noisy["test_psnr"],
        "test_ssim": noisy["test_ssim"],
        "test_mse": noisy["test_mse"],
        "test_psnr_clean": clean["test_psnr"],
        "test_ssim_clean": clean["test_ssim"],
    }


@torch.no_grad()
def score_model(
    model: nn.Module,
    images: torch.Tensor,
    prepare: Prepare,
    to_unit: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    batch_size: int = 256,
    seed: int = 0,
    variance: float | None = None,
) -> dict[str, float]:
    """The one scorer of a model on uint8 ``images``: what the studies' reports and ``aelab evaluate`` give.

    A model without a noisy channel (no ``channel``, or one of variance 0, and no ``variance`` asked for):
    :func:`pixel_scores`, plus ``test_bce`` for models with logits. A channel model: :func:`channel_scores`
    with noise of ``variance`` (default its own training variance) drawn as in :func:`reconstruct`.
    """
    x = images.float() / 255.0
    channel = getattr(model, "channel", None)
    noise = {"noise": False} if channel is not None else {}
    clean = reconstruct(model, images, prepare, to_unit, device, batch_size, seed, **noise)
    if variance is None:
        variance = float(getattr(channel, "variance", 0.0) or 0.0)
    if channel is None or variance <= 0:
        scores = pixel_scores(clean["x01"], x)
        if "logits" in clean:
            scores["test_bce"] = float(F.binary_cross_entropy_with_logits(clean["logits"], x))
        return scores
    noisy = reconstruct(model, images, prepare, to_unit, device, batch_size, seed, noise=True, variance=variance)
    return channel_scores(noisy["x01"], clean["x01"], x, variance)


def knn_accuracy(
    train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray, test_labels: np.ndarray, k: int = 5
) -> float:
    """How well the codes separate classes: k-NN fitted on training codes, scored on test codes."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(train_codes))).fit(train_codes, train_labels)
    return float(clf.score(test_codes, test_labels))


def trustworthiness(images: np.ndarray, codes: np.ndarray, k: int = 10) -> float:
    """How well the code space keeps each image's pixel-space neighbours (scikit-learn's formula, 1 = perfect).

    For several code spaces of the same images, build one :class:`PixelNeighbourRanks` instead.
    """
    return PixelNeighbourRanks(images).trustworthiness(codes, k)


class PixelNeighbourRanks:
    """Each image's rank of every other image in pixel space, computed once for many trustworthiness scores.

    scikit-learn's ``trustworthiness`` sorts the full pixel-distance matrix on every call; the compare
    part scores ten code spaces at two ``k`` on the same 10,000 test images, so the sort (the expensive
    half) is done once here, in row blocks, and :meth:`trustworthiness` applies sklearn's formula to it.
    Memory: one int32 n x n matrix (0.4 GB for 10,000 images).
    """

    def __init__(self, images: np.ndarray, block: int = 1024) -> None:
        from sklearn.metrics import pairwise_distances

        x = images.reshape(len(images), -1).astype(np.float64)
        n = len(x)
        self.n = n
        self.rank = np.empty((n, n), dtype=np.int32)  # rank[i, j]: j is i's rank[i, j]-th nearest (1 = nearest)
        for lo in range(0, n, block):
            d = pairwise_distances(x[lo : lo + block], x)
            d[np.arange(len(d)), np.arange(lo, lo + len(d))] = np.inf  # an image is not its own neighbour
            order = np.argsort(d, axis=1)
            np.put_along_axis(self.rank[lo : lo + len(d)], order, np.arange(1, n + 1, dtype=np.int32)[None], axis=1)

    def trustworthiness(self, codes: np.ndarray, k: int = 5) -> float:
        """scikit-learn's trustworthiness of ``codes`` (one row per image, same order) with ``k`` neighbours."""
        from sklearn.neighbors import NearestNeighbors

        n = self.n
        if not 1 <= k < n / 2:
            raise ValueError(f"k must be in [1, {n / 2:g}) for {n} images, got {k}")
        nearest = NearestNeighbors(n_neighbors=k).fit(codes.reshape(n, -1)).kneighbors(return_distance=False)
        excess = np.take_along_axis(self.rank, nearest, axis=1).astype(np.int64) - k
        return float(1.0 - excess[excess > 0].sum() * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


PAPER_HELD_OUT = 10_000  # Parametric UMAP's protocol: the last 10,000 training images are held out of the kNN fit
PAPER_TRUST_IMAGES = 10_000  # ... and trustworthiness is scored on the first 10,000 training images
PAPER_TRUST_K = 5  # scikit-learn's default n_neighbors, which the paper's notebooks keep


def paper_split(n_train: int) -> tuple[int, int]:
    """Parametric UMAP's split of ``n_train`` training images: (kNN fit on the first ``fit``, trustworthiness on
    the first ``trust``).

    Full MNIST (60,000) gives (50,000, 10,000), as the paper's notebooks (timsainb/ParametricUMAP_paper,
    ``knn-classifier/MNIST-KNN.ipynb``, ``compute-silhouette-scores.ipynb``) cut it. A smaller training set
    holds out the same share, a sixth (at most 10,000 images), and scores trustworthiness on its first
    10,000 images or all of them.
    """
    if n_train < 2:
        raise ValueError(f"the paper protocol needs at least 2 training images, got {n_train}")
    held_out = min(PAPER_HELD_OUT, n_train // 6)
    return n_train - held_out, min(PAPER_TRUST_IMAGES, n_train)


def paper_protocol(
    train_codes: np.ndarray,
    train_labels: np.ndarray,
    test_codes: np.ndarray,
    test_labels: np.ndarray,
    train_ranks: PixelNeighbourRanks,
) -> dict[str, float]:
    """1-NN and 5-NN accuracy and trustworthiness (k = 5) on Parametric UMAP's protocol (:func:`paper_split`).

    The kNN classifiers are fitted on the first ``fit`` training codes and scored on the test codes;
    trustworthiness compares the first ``trust`` training codes with ``train_ranks``, the pixel ranks of those
    same training images (one :class:`PixelNeighbourRanks`, shared by every code space scored). The metrics are
    :func:`knn_accuracy` and :meth:`PixelNeighbourRanks.trustworthiness`, the same as the study's own protocol.
    """
    fit, trust = paper_split(len(train_codes))
    if train_ranks.n != trust:
        raise ValueError(f"train_ranks holds {train_ranks.n} images; the protocol scores the first {trust}")
    return {
        "knn1_acc": knn_accuracy(train_codes[:fit], train_labels[:fit], test_codes, test_labels, k=1),
        "knn5_acc": knn_accuracy(train_codes[:fit], train_labels[:fit], test_codes, test_labels, k=5),
        f"trustworthiness_k{PAPER_TRUST_K}": train_ranks.trustworthiness(train_codes[:trust], PAPER_TRUST_K),
    }


def judged_samples(
    probs: torch.Tensor | np.ndarray, threshold: float = 0.9, min_share: float = 0.05
) -> dict[str, float | int]:
    """Score generated images by a classifier's verdicts (``probs``: N x classes).

    ``digit_share``: share of images whose top probability reaches ``threshold`` (judged real).
    ``coverage_classes``: number of classes that hold at least ``min_share`` of all N images among the
    judged-real ones, so a generator of blobs covers nothing and one that draws only ones covers 1.
    ``class_entropy``: entropy in bits of the class histogram of the judged-real images (log2(classes)
    when every class is equally common, 0 when one class or none is drawn).
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    top, cls = p.max(dim=1)
    real = top >= threshold
    counts = torch.bincount(cls[real], minlength=p.shape[1]).double()
    share = counts / max(1, len(p))
    freq = counts[counts > 0] / counts.sum().clamp_min(1)
    return {
        "digit_share": float(real.double().mean()) if len(p) else 0.0,
        "coverage_classes": int((share >= min_share).sum()),
        "class_entropy": max(0.0, float(-(freq * freq.log2()).sum())),
    }


@torch.no_grad()
def nearest_psnr(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image (on [0, 1]), the PSNR to its closest image in ``pool`` and that image's index.

    ``pool`` may be uint8 (scaled to [0, 1] chunk by chunk, so a whole training set never sits in
    memory as floats). How close a generated image comes to any real one: high means it copies or
    blurs real photos, low means it lies far from all of them.
    """
    q = queries.float().flatten(1)
    best = torch.full((len(q),), float("inf"))
    index = torch.zeros(len(q), dtype=torch.long)
    for i in range(0, len(pool), chunk):
        p = pool[i : i + chunk]
        p = (p.float() / 255.0 if p.dtype == torch.uint8 else p.float()).flatten(1)
        mse = torch.cdist(q.double(), p.double()).pow(2) / q.shape[1]
        m, j = mse.min(dim=1)
        better = m < best
        best = torch.where(better, m.float(), best)
        index = torch.where(better, j + i, index)
    return 10.0 * torch.log10(1.0 / best.clamp_min(1e-10)), index


@torch.no_grad()
def decode(
    model: nn.Module,
    codes: torch.Tensor | np.ndarray,
    device: torch.device,
    to_unit: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Images decoded from ``codes`` (any latent shape), on the CPU and on [0, 1].

    ``to_unit`` maps the decoder's output onto [0, 1] (``aelab.data.scaling.TO_UNIT``); the default
    suits decoders that already end in a sigmoid or a clamp.
    """
    model.eval()
    z = torch.as_tensor(codes, dtype=torch.float32)
    out = torch.cat(
        [model.decode(z[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(z), batch_size)]
    )
    return out if to_unit is None else to_unit(out)
