"""Training objectives: ``objective(model, x, noise_generator) -> scalar loss``.

Written once and composed by the studies: a reconstruction loss, optionally a corrupted input
(denoising), optionally a penalty. Losses are means per pixel so numbers compare across
image sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aelab.speed import penalised
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


def squared_weights(model: nn.Module, part: str | None = None) -> torch.Tensor:
    """Sum of squared weights of every layer (biases and norm parameters excluded: ``speed.penalised``).

    ``part`` keeps only the weights under the submodule of that name (``"decoder"``). It matches a
    component of the parameter's name, so it still works when the loop hands the objective a DDP
    or ``torch.compile`` wrapper (``module.decoder.0.weight``). A penalty on all weights is cheaper as
    ``TrainConfig.l2_penalty``, which takes the same steps inside the optimizer.
    """
    return sum(
        p.pow(2).sum()
        for name, p in model.named_parameters()
        if penalised(name, p) and (part is None or part in name.split("."))
    )


def channel_mse(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """MSE of a conv autoencoder whose latent channel draws its noise from ``gen``."""
    return F.mse_loss(model(x, generator=gen)["x_hat"].float(), x)


def vae_elbo(beta: float = 1.0) -> Objective:
    """The VAE's negative ELBO per pixel: BCE per pixel + ``beta`` * KL(q(z|x) || N(0, I)) / pixels.

    The ELBO sums the likelihood over pixels; dividing the whole of it by the pixel count keeps
    that balance between the two terms while the number reads like every other per-pixel loss.
    """

    def objective(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        out = model(x, generator=gen)
        mu, logvar = out["mu"].float(), out["logvar"].float()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        return F.binary_cross_entropy_with_logits(out["logits"].float(), x) + beta * kl / x[0].numel()

    return objective


def rae_l2(beta: float = 1.0, decoder_lambda: float = 1e-5) -> Objective:
    """RAE-L2 (Ghosh et al., ICLR 2020): BCE + ``beta`` * ||z||^2 / 2 per image + decoder weight decay.

    The code penalty is the VAE's pull of the mean towards the origin without the noise; the
    decoder's squared weights (``decoder_lambda``, the encoder left free) keep the decoder smooth, so
    nearby codes decode to similar images. Like :func:`vae_elbo` the code term is divided by the
    pixel count, so ``beta = 1`` weighs it exactly as the VAE weighs ``mu^2 / 2``.
    """

    def objective(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        out = model(x)
        code = 0.5 * out["z"].float().pow(2).sum(dim=1).mean() / x[0].numel()
        rec = F.binary_cross_entropy_with_logits(out["logits"].float(), x)
        return rec + beta * code + decoder_lambda * squared_weights(model, "decoder")

    return objective


def cross_entropy(model: nn.Module, x: torch.Tensor, gen: torch.Generator | None, target: torch.Tensor) -> torch.Tensor:
    """Classification loss, for models trained with ``fit(..., targets=...)`` (the digit judge)."""
    return F.cross_entropy(model(x)["logits"].float(), target)
