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


SNR_CLEAN = 30.0  # dB: what a model's SNR input reads on a noise-free channel (see AWGNChannel.side_snr)


class AWGNChannel(nn.Module):
    """Power-normalise the code, then add N(0, variance) noise.

    Noise is on in training mode and off in eval mode unless ``noise=True`` is asked for explicitly
    (evaluation at the training variance, or at any other ``variance`` for PSNR-vs-SNR curves).
    ``variance=0`` gives a normalise-only channel: the plain AE evaluated through a channel.

    ``snr_range=(lo, hi)`` (dB) makes the channel SNR-adaptive: in training each sample gets its own
    SNR drawn uniformly from the range, so one model learns the whole range (with an SNR input, see
    :meth:`side_snr`); ``variance`` is then the one it is evaluated at by default.
    """

    def __init__(self, variance: float, snr_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        if variance < 0 or not math.isfinite(variance):
            raise ValueError(f"noise variance must be >= 0, got {variance}")
        if snr_range is not None and not (len(snr_range) == 2 and snr_range[0] <= snr_range[1]):
            raise ValueError(f"snr_range must be (low, high) in dB with low <= high, got {snr_range}")
        self.variance = float(variance)
        self.snr_range = None if snr_range is None else (float(snr_range[0]), float(snr_range[1]))

    def sample_variance(
        self,
        n: int,
        noise: bool | None = None,
        variance: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """Each of ``n`` samples' noise variance for one pass (0 where the noise is off), shape ``(n,)``."""
        on = self.training if noise is None else noise
        if not on:
            return torch.zeros(n, device=device)
        if variance is None and self.snr_range is not None and self.training:
            lo, hi = self.snr_range
            snr = lo + (hi - lo) * torch.rand(n, generator=generator, device=device)
            return torch.pow(10.0, -snr / 10.0)
        return torch.full((n,), self.variance if variance is None else float(variance), device=device)

    def side_snr(self, variance: torch.Tensor) -> torch.Tensor:
        """The SNR (dB) a model is told for these per-sample variances.

        An SNR-adaptive channel tells the true SNR, clamped to its training range (a noise-free pass
        reads as the top of the range). A fixed channel always tells its own training SNR (or
        ``SNR_CLEAN`` for variance 0): such a model learned one channel, and an input it never saw
        vary would only move it off what it learned.
        """
        if self.snr_range is None:
            fixed = SNR_CLEAN if self.variance == 0 else min(SNR_CLEAN, snr_db(self.variance))
            return torch.full_like(variance, fixed)
        lo, hi = self.snr_range
        snr = 10.0 * torch.log10(1.0 / variance.clamp_min(10.0 ** (-hi / 10.0)))
        return snr.clamp(lo, hi)

    def transmit(
        self, z: torch.Tensor, variance: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Power-normalise each code and add noise of its own ``variance`` (shape ``(batch,)``)."""
        z = power_normalize(z)
        if bool((variance > 0).any()):
            eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z = z + variance.sqrt().to(z.dtype).view(-1, *([1] * (z.ndim - 1))) * eps
        return z

    def forward(
        self,
        z: torch.Tensor,
        noise: bool | None = None,
        variance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return self.transmit(z, self.sample_variance(len(z), noise, variance, generator, z.device), generator)

    def extra_repr(self) -> str:
        return f"variance={self.variance}" + ("" if self.snr_range is None else f", snr_range={self.snr_range}")
