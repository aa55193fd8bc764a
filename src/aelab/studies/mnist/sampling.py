"""Codes to decode for the ``compare`` part: the samplers, and PCA as a linear autoencoder."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from aelab.data.scaling import unit
from aelab.latent import latent_grid
from aelab.samplers import GaussianSampler, MixtureSampler

SAMPLERS: dict[str, str] = {
    "grid_lab": "uniform grid over the lab's box",
    "grid": "uniform grid over the codes' 1st-99th percentile box",
    "normal": "N(0, I)",
    "gaussian": "one full-covariance Gaussian fitted to the codes",
    "gmm": "10-component Gaussian mixture fitted to the codes",
}
NAMES = {
    "grid_lab": "lab grid",
    "grid": "p1-p99 grid",
    "normal": "N(0, I)",
    "gaussian": "Gaussian",
    "gmm": "GMM-10",
}


class PCAAutoencoder(nn.Module):
    """PCA as a linear autoencoder (sklearn's fit, torch's arithmetic).

    Wrapping the floor as a model lets it go through the same scoring, sampling and decoding as the
    networks. Decoded images are clipped to [0, 1], the range every other decoder produces.
    """

    def __init__(self, train_images: torch.Tensor, components: int = 2, seed: int = 0) -> None:
        from sklearn.decomposition import PCA

        super().__init__()
        self.image_shape = tuple(train_images.shape[1:])
        self.latent_dim = components
        pca = PCA(components, random_state=seed).fit(unit(train_images).flatten(1).numpy())
        self.register_buffer("mean", torch.from_numpy(pca.mean_).float())
        self.register_buffer("components", torch.from_numpy(pca.components_).float())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) @ self.components.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.components + self.mean).clamp(0.0, 1.0).view(-1, *self.image_shape)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        return {"z": z, "x_hat": self.decode(z)}


def sample_codes(sampler: str, codes: np.ndarray, n: int, seed: int, lab_range: float) -> np.ndarray:
    """``n`` 2-D codes from one of :data:`SAMPLERS`; the fitted ones are fitted to ``codes`` by the samplers
    of :mod:`aelab.samplers`, which every study shares.

    The grids have ``round(sqrt(n))^2`` points (1,024 for n = 1,000), so they stay square grids.
    """
    side = round(math.sqrt(n))
    if sampler == "grid_lab":
        return latent_grid(side, -lab_range, lab_range).numpy()
    if sampler == "grid":
        lo, hi = np.percentile(codes, [1, 99], axis=0)
        return latent_grid(side, tuple(map(float, lo)), tuple(map(float, hi))).numpy()
    if sampler == "normal":
        return np.random.default_rng(seed).standard_normal((n, codes.shape[1]))
    if sampler == "gaussian":
        return GaussianSampler(shrinkage=False).fit(codes).sample(n, seed)
    if sampler == "gmm":
        return MixtureSampler(10, seed).fit(codes).sample(n, seed)
    raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
