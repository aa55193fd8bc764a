"""What aelab does with codes: grids over the latent plane, Gaussian fits, sampling, perturbation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def latent_grid(
    n: int = 20, lo: float | tuple[float, float] = -5.0, hi: float | tuple[float, float] = 5.0
) -> torch.Tensor:
    """``n*n`` points of a uniform grid over [lo, hi]^2, row-major with z2 decreasing down the rows,
    so a tiled decoding reads like the scatter plot (z1 to the right, z2 upwards).

    ``lo``/``hi`` may be (z1, z2) pairs for a rectangle, e.g. the box that holds most of the codes."""
    (lo1, lo2), (hi1, hi2) = (b if isinstance(b, (tuple, list)) else (b, b) for b in (lo, hi))
    z2, z1 = torch.meshgrid(torch.linspace(lo2, hi2, n).flip(0), torch.linspace(lo1, hi1, n), indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


@dataclass
class GaussianFit:
    """A multivariate Gaussian fitted to codes. ``method`` names the covariance estimator."""

    mean: np.ndarray
    cov: np.ndarray
    method: str

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` draws. A Ledoit-Wolf covariance is positive definite, so it is factored by Cholesky
        (about 10x faster than eigh at 1,024 dimensions); others (a singular sample covariance) use eigh."""
        if self.method.startswith("Ledoit-Wolf"):
            try:
                return np.random.default_rng(seed).multivariate_normal(self.mean, self.cov, size=n, method="cholesky")
            except np.linalg.LinAlgError:
                pass
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.mean, self.cov, size=n, method="eigh")


def fit_gaussian(codes: np.ndarray, shrinkage: bool = True) -> GaussianFit:
    """Mean and covariance of flattened codes.

    With fewer samples than dimensions (256 codes of 1,024 values) the sample covariance is
    singular and noisy; Ledoit-Wolf shrinkage towards a scaled identity gives a well-conditioned
    estimate with the optimal shrinkage weight computed from the data.
    """
    x = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf(store_precision=False).fit(x)  # the precision (a pseudo-inverse) is never used
        return GaussianFit(lw.location_, lw.covariance_, f"Ledoit-Wolf (shrinkage {lw.shrinkage_:.3f})")
    return GaussianFit(x.mean(0), np.cov(x, rowvar=False), "sample covariance")


def perturb(codes: torch.Tensor, scale: float, std: torch.Tensor, seed: int) -> torch.Tensor:
    """Add N(0, (scale * std)^2) noise per dimension, ``std`` being the codes' per-dimension spread."""
    g = torch.Generator().manual_seed(seed)
    return codes + scale * std * torch.randn(codes.shape, generator=g)
