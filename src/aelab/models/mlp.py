"""The lab's MNIST autoencoder: an MLP whose widths first grow, then shrink to the bottleneck."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}


def mlp(widths: Sequence[int], activation: str, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """784 -> hidden... -> bottleneck -> mirrored hidden... -> 784.

    The decoder returns logits; ``x_hat`` is their sigmoid. Training on logits
    (``binary_cross_entropy_with_logits``) is the numerically stable form of the lab's BCE.
    With ``activation="sigmoid"`` every hidden layer is a sigmoid (the lab's "sigmoid everywhere").
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        hidden: Sequence[int] = (1024, 512, 128),
        bottleneck: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if bottleneck < 1:
            raise ValueError("bottleneck must be >= 1")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.image_shape = tuple(image_shape)
        self.latent_dim = bottleneck
        d = int(torch.tensor(image_shape).prod())
        self.encoder = mlp([d, *hidden, bottleneck], activation, last_activation=False)
        self.decoder = mlp([bottleneck, *reversed(hidden), d], activation, last_activation=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.image_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        logits = self.decode_logits(z)
        return {"z": z, "logits": logits, "x_hat": torch.sigmoid(logits)}
