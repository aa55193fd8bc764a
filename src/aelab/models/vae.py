"""A variational autoencoder on the lab's MLP, so it differs from the AE in the objective alone."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aelab.models.mlp import MLPAutoencoder, mlp


class VAE(MLPAutoencoder):
    """The lab's MLP autoencoder whose encoder outputs a mean and a log-variance per code dimension.

    The decoder, the widths and the activation are those of :class:`MLPAutoencoder`; only the
    encoder's last layer doubles, to ``2 * bottleneck`` outputs. In training mode ``z`` is drawn
    from ``N(mu, exp(logvar))`` (the reparameterisation trick, with the loop's noise generator); in
    eval mode ``z = mu``, so predictions, codes and reconstructions are deterministic and every
    metric that reads ``z`` treats the VAE like any other autoencoder.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        hidden: Sequence[int] = (1024, 512, 128),
        bottleneck: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__(image_shape, hidden, bottleneck, activation)
        d = self.encoder[0].in_features
        self.encoder = mlp([d, *hidden, 2 * bottleneck], activation, last_activation=False)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of q(z|x); logvar is clamped so exp() stays finite early in training."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.posterior(x)
        z = mu
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decode_logits(z)
        return {"z": z, "mu": mu, "logvar": logvar, "logits": logits, "x_hat": torch.sigmoid(logits)}
