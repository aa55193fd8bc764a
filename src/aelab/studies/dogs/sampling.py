"""Gaussian samples of a model's latent space, shared by the ``gauss`` and ``noisy`` parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab.latent import GaussianFit, fit_gaussian

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

BLEND = 0.25  # the lab's delta: 0.25 * Gaussian sample + 0.75 * a real code


@dataclass
class GaussSamples:
    fit: GaussianFit
    drawn: torch.Tensor  # decoded samples on [0, 1]
    blended: torch.Tensor  # decoded blends with real codes
    negative_share: float  # of the sampled code values
    code_negative_share: float = 0.0  # of the training codes' values: 0 for a ReLU code, about half for a signed one


def gauss_samples(run: DogsRun, name: str, train_codes: torch.Tensor, real: torch.Tensor) -> GaussSamples:
    """Fit a Gaussian to ``train_codes``, draw ``len(real)`` codes, decode them and their blends with ``real``."""
    shape = train_codes.shape[1:]
    fit = fit_gaussian(train_codes.flatten(1).numpy())
    drawn = torch.from_numpy(fit.sample(len(real), run.cfg.seed + 3)).float().view(-1, *shape)
    blended = BLEND * drawn + (1 - BLEND) * real
    return GaussSamples(fit, run.decode(name, drawn), run.decode(name, blended), float((drawn < 0).float().mean()),
                        float((train_codes < 0).float().mean()))  # fmt: skip


def generates(sample_psnr: float, reference_psnr: float, margin: float = 1.0) -> bool:
    """Whether decoded samples come as close to the training photos as real held-out reconstructions do
    (within ``margin`` dB): the measured stand-in for "these samples look like photos"."""
    return sample_psnr >= reference_psnr - margin
