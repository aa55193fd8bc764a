"""Training objectives: ``objective(model, x, noise_generator) -> scalar loss``.

Written once and composed by the studies: a reconstruction loss, optionally a corrupted input
(denoising), optionally a weight penalty. Losses are means per pixel so numbers compare across
image sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aelab.train import Objective


def bce(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Binary cross-entropy per pixel, on logits (the stable form of BCE after a sigmoid)."""
    return F.binary_cross_entropy_with_logits(model(x)["logits"].float(), x)


def mse(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    return F.mse_loss(model(x)["x_hat"].float(), x)


RECONSTRUCTION: dict[str, Objective] = {"bce": bce, "mse": mse}


def add_gaussian_noise(x: torch.Tensor, factor: float, gen: torch.Generator | None) -> torch.Tensor:
    """The lab's corruption: ``x + factor * N(0, 1)`` (not clipped, as in the lab)."""
    return x + factor * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)


def denoising(loss: str, factor: float) -> Objective:
    """Reconstruct the clean ``x`` from ``x + factor * N(0, 1)``."""

    def objective(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        out = model(add_gaussian_noise(x, factor, gen))
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(out["logits"].float(), x)
        return F.mse_loss(out["x_hat"].float(), x)

    return objective


def squared_weights(model: nn.Module) -> torch.Tensor:
    """Sum of squared weights of every layer (biases and norm parameters excluded)."""
    return sum(p.pow(2).sum() for name, p in model.named_parameters() if p.ndim > 1 and "weight" in name)


def with_weight_penalty(objective: Objective, lam: float) -> Objective:
    """``objective + lam * sum of squared weights``: L2 regularisation written into the loss."""

    def penalised(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return objective(model, x, gen) + lam * squared_weights(model)

    return penalised


def channel_mse(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """MSE of a conv autoencoder whose latent channel draws its noise from ``gen``."""
    return F.mse_loss(model(x, generator=gen)["x_hat"].float(), x)
