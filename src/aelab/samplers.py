"""Samplers of a latent space, one interface (as pythae's): ``fit(codes)`` once, then ``sample(n, seed)``.

Every part that draws codes from a distribution fitted to a model's codes goes through here: the MNIST
``compare`` part's fitted Gaussian and 10-component mixture, and the dogs parts ``gauss``, ``noisy``,
``generation`` and the explorer page (one Ledoit-Wolf Gaussian of the 1,024-d codes, drawn with one seed,
so every one of them decodes the same samples).

``codes`` may be a NumPy array or a tensor of any shape ``(N, ...)``; samples come back as float64 NumPy
arrays of shape ``(n, ...)``, the same draws for the same seed.
"""

from __future__ import annotations

import numpy as np
import torch

from aelab.latent import GaussianFit, fit_gaussian


def _flat(codes: np.ndarray | torch.Tensor) -> tuple[np.ndarray, tuple[int, ...]]:
    x = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"codes must be (N, ...) with N >= 1, got shape {x.shape}")
    return x.reshape(len(x), -1).astype(np.float64, copy=False), tuple(x.shape[1:])


class GaussianSampler:
    """One multivariate Gaussian fitted to the codes: Ledoit-Wolf shrinkage by default (fewer codes than
    dimensions leave the sample covariance singular), the plain sample covariance with ``shrinkage=False``."""

    def __init__(self, shrinkage: bool = True) -> None:
        self.shrinkage = shrinkage
        self.gaussian: GaussianFit | None = None
        self.shape: tuple[int, ...] = ()

    def fit(self, codes: np.ndarray | torch.Tensor) -> GaussianSampler:
        x, self.shape = _flat(codes)
        self.gaussian = fit_gaussian(x, shrinkage=self.shrinkage)
        return self

    @property
    def method(self) -> str:
        """The covariance estimator, in words (with the shrinkage weight Ledoit-Wolf chose)."""
        return self._fitted().method

    def sample(self, n: int, seed: int) -> np.ndarray:
        return self._fitted().sample(n, seed).reshape(n, *self.shape)

    def _fitted(self) -> GaussianFit:
        if self.gaussian is None:
            raise RuntimeError("call fit(codes) before sampling")
        return self.gaussian


class MixtureSampler:
    """A Gaussian mixture (full covariances) fitted by EM; ``seed`` starts EM (k-means initialisation)."""

    def __init__(self, components: int = 10, seed: int = 0) -> None:
        self.components, self.seed = components, seed
        self.mixture = None
        self.shape: tuple[int, ...] = ()

    def fit(self, codes: np.ndarray | torch.Tensor) -> MixtureSampler:
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        x, self.shape = _flat(codes)
        # EM on low-dimensional codes is thousands of tiny solves: BLAS threads only add synchronisation
        with threadpool_limits(1):
            self.mixture = GaussianMixture(self.components, covariance_type="full", random_state=self.seed).fit(x)
        return self

    def sample(self, n: int, seed: int) -> np.ndarray:
        if self.mixture is None:
            raise RuntimeError("call fit(codes) before sampling")
        self.mixture.random_state = seed  # scikit-learn draws from a fresh RandomState(seed) on every call
        return self.mixture.sample(n)[0].reshape(n, *self.shape)
