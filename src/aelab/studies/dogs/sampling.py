"""Gaussian samples of a model's latent space: the one route of the ``gauss``, ``noisy`` and ``generation``
parts and the explorer page, through :class:`aelab.samplers.GaussianSampler`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab.samplers import GaussianSampler

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

BLEND = 0.25  # the lab's delta: 0.25 * Gaussian sample + 0.75 * a real code
SEED = 3  # added to the run's seed: every part draws the same samples, so its first ones are the gauss part's


@dataclass
class GaussSamples:
    fit: GaussianSampler  # its ``method`` names the covariance estimator
    drawn: torch.Tensor  # decoded samples on [0, 1]
    blended: torch.Tensor  # decoded blends with real codes
    negative_share: float  # of the sampled code values
    code_negative_share: float = 0.0  # of the training codes' values: 0 for a ReLU code, about half for a signed one


def draw(run: DogsRun, train_codes: torch.Tensor, n: int) -> tuple[GaussianSampler, torch.Tensor]:
    """A Gaussian fitted to ``train_codes`` and ``n`` codes drawn from it (float32, shaped like the codes)."""
    sampler = GaussianSampler().fit(train_codes)
    return sampler, torch.from_numpy(sampler.sample(n, run.cfg.seed + SEED)).float()


def blend(drawn: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The lab's blend of each drawn code with a real one."""
    return BLEND * drawn + (1 - BLEND) * real


def gauss_samples(run: DogsRun, name: str, train_codes: torch.Tensor, real: torch.Tensor) -> GaussSamples:
    """Fit a Gaussian to ``train_codes``, draw ``len(real)`` codes, decode them and their blends with ``real``."""
    fit, drawn = draw(run, train_codes, len(real))
    return GaussSamples(fit, run.decode(name, drawn), run.decode(name, blend(drawn, real)),
                        float((drawn < 0).float().mean()), float((train_codes < 0).float().mean()))  # fmt: skip


def generates(sample_psnr: float, reference_psnr: float, margin: float = 1.0) -> bool:
    """Whether decoded samples come as close to the training photos as real held-out reconstructions do
    (within ``margin`` dB): the measured stand-in for "these samples look like photos"."""
    return sample_psnr >= reference_psnr - margin
