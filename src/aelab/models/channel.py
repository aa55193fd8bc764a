"""The noisy latent channel: per-sample power normalisation, then zero-mean Gaussian noise.

Two corrections to the lab's code live here. The lab normalised the power of the whole batch at once
(so one image's code depended on the others in its batch) and passed the noise *variance* as the
*standard deviation* (so "0.05" was really variance 0.0025, a 26 dB channel, not 13 dB).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def power_normalize(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each sample so the mean of its squared values is 1 (unit average power per sample)."""
    power = z.flatten(1).pow(2).mean(dim=1).clamp_min(eps)
    return z / power.sqrt().view(-1, *([1] * (z.ndim - 1)))


def snr_db(variance: float) -> float:
    """SNR of a unit-power signal with noise of the given variance."""
    return 10.0 * math.log10(1.0 / variance)


def variance_at(snr: float) -> float:
    return 10.0 ** (-snr / 10.0)


class AWGNChannel(nn.Module):
    """Power-normalise the code, then add N(0, variance) noise.

    Noise is on in training mode and off in eval mode unless ``noise=True`` is asked for explicitly
    (evaluation at the training variance, or at any other ``variance`` for PSNR-vs-SNR curves).
    ``variance=0`` gives a normalise-only channel: the plain AE evaluated through a channel.
    """

    def __init__(self, variance: float) -> None:
        super().__init__()
        if variance < 0 or not math.isfinite(variance):
            raise ValueError(f"noise variance must be >= 0, got {variance}")
        self.variance = float(variance)

    def forward(
        self,
        z: torch.Tensor,
        noise: bool | None = None,
        variance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        z = power_normalize(z)
        var = self.variance if variance is None else variance
        if (self.training if noise is None else noise) and var > 0:
            eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z = z + math.sqrt(var) * eps
        return z

    def extra_repr(self) -> str:
        return f"variance={self.variance}"
