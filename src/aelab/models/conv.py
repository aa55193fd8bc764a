"""Convolutional autoencoders: a small one for MNIST and the lab's dog-photo layout."""

from __future__ import annotations

import math

import torch
from torch import nn

from aelab.models.channel import AWGNChannel


class MnistConvAutoencoder(nn.Module):
    """A small CNN autoencoder with a vector bottleneck, to compare with the MLP at equal code size.

    28x28 -> 14x14x32 -> 7x7x64 -> bottleneck -> mirror with transposed convolutions; logits out.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), bottleneck: int = 2) -> None:
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError("image height and width must be multiples of 4")
        self.image_shape = tuple(image_shape)
        self.latent_dim = bottleneck
        self._grid = (64, h // 4, w // 4)
        flat = math.prod(self._grid)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, 128),
            nn.ReLU(),
            nn.Linear(128, bottleneck),
        )
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, 128),
            nn.ReLU(),
            nn.Linear(128, flat),
            nn.ReLU(),
            nn.Unflatten(1, self._grid),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        logits = self.decode_logits(z)
        return {"z": z, "logits": logits, "x_hat": torch.sigmoid(logits)}


def _conv_bn_relu(cin: int, cout: int, k: int, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    return layers


class ConvAutoencoder(nn.Module):
    """The lab's dog autoencoder: images in [-1, 1], latent ``latent_channels x S x S``, Tanh output.

    Encoder: conv 3->48 ReLU pool, conv 48->96 BN ReLU pool, conv 96->192 BN ReLU pool, 1x1 conv to
    the latent channels, BN, ReLU. ``latent_size=16`` drops the last pooling (the lab's accidental
    16x16x16 code). Decoder mirrors it with nearest upsampling. An optional ``channel`` sits between
    encoder and decoder: power normalisation plus Gaussian noise (the noisy-latent autoencoder).
    """

    def __init__(
        self,
        image_size: int = 64,
        latent_channels: int = 16,
        latent_size: int = 8,
        channel: AWGNChannel | None = None,
    ) -> None:
        super().__init__()
        pools = int(math.log2(image_size // latent_size))
        if latent_size * 2**pools != image_size or not 1 <= pools <= 3:
            raise ValueError(f"latent size {latent_size} must be image size {image_size} / 2, 4 or 8")
        if latent_channels < 1:
            raise ValueError("latent_channels must be >= 1")
        self.image_shape = (3, image_size, image_size)
        self.latent_shape = (latent_channels, latent_size, latent_size)
        self.latent_dim = latent_channels * latent_size * latent_size
        widths = [48, 96, 192]
        enc: list[nn.Module] = []
        cin = 3
        for i, w in enumerate(widths):
            enc += _conv_bn_relu(cin, w, 3, bn=i > 0)
            if i < pools:
                enc.append(nn.MaxPool2d(2))
            cin = w
        enc += _conv_bn_relu(192, latent_channels, 1)
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = _conv_bn_relu(latent_channels, 192, 1)
        upsample_before = [False] * (3 - pools) + [True] * pools  # the last `pools` of 3 stages
        cin = 192
        for up, w in zip(upsample_before, [96, 48, 3]):
            if up:
                dec.append(nn.Upsample(scale_factor=2, mode="nearest"))
            dec += _conv_bn_relu(cin, w, 3) if w != 3 else [nn.Conv2d(cin, 3, 3, padding=1), nn.Tanh()]
            cin = w
        self.decoder = nn.Sequential(*dec)
        self.channel = channel

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(
        self,
        x: torch.Tensor,
        noise: bool | None = None,
        variance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """``noise``/``variance`` override the channel's own setting (evaluation at other SNRs)."""
        z = self.encode(x)
        sent = z if self.channel is None else self.channel(z, noise, variance, generator)
        return {"z": z, "z_sent": sent, "x_hat": self.decode(sent)}
