"""A learned-transmission (Deep JSCC) autoencoder for 64x64 photos at the lab's 16x8x8 latent.

The lab's layout spends its compute on 3x3 convolutions at 96-192 channels on 32x32 and 16x16 maps,
and throws information away with max-pooling and nearest upsampling. This one follows the learned
image codecs and JSCC models instead (Balle et al. 2017; Bourtsoulatze et al. 2019; Xu et al. 2021):

- strided 5x5 / 3x3 convolutions down and sub-pixel convolutions up, so resampling is learned;
- GDN after each downsampling in the encoder (:class:`~aelab.models.layers.GDN`), PReLU in the decoder;
- residual blocks at the 16x16 and 8x8 scales, most of the depth at 8x8 where convolutions are cheap;
- SNR attention modules (:class:`~aelab.models.layers.SNRAttention`) before the code and after it, so
  one model trained over a range of SNRs (``AWGNChannel(snr_range=...)``) knows its channel;
- the code is always power-normalised per sample, as it would be sent, also with no channel attached.

Choices made for stable training at the study's learning rates (measured in ``benchmarks/RESULTS.md``):
no inverse GDN in the decoder (it grows like x^2 per layer, and three of them in a row blew up training),
residual blocks that start as the identity, and an output clamped to [-1, 1] with a straight-through
gradient instead of a Tanh that can saturate for good.

Same interface as :class:`~aelab.models.conv.ConvAutoencoder`: images in [-1, 1] in and out,
``forward`` returning ``z`` (encoder output), ``z_sent`` (what the decoder received) and ``x_hat``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aelab.models.channel import SNR_CLEAN, AWGNChannel, power_normalize
from aelab.models.layers import GDN, ClampST, ResidualBlock, SNRAttention, upsample


class JSCCAutoencoder(nn.Module):
    """Encoder ``64x64x3 -> 32x32 -> 16x16 -> 8x8 -> 8x8xlatent``; the decoder mirrors it.

    ``widths`` are the channels at the 32x32, 16x16 and 8x8 scales; ``blocks`` the residual blocks at
    the 16x16 and 8x8 scales (each side). Most of the depth sits at 8x8, where a 3x3 convolution costs
    a sixteenth of what it costs at 32x32.
    """

    def __init__(
        self,
        image_size: int = 64,
        latent_channels: int = 16,
        latent_size: int = 8,
        widths: tuple[int, int, int] = (32, 64, 128),
        blocks: tuple[int, int] = (1, 2),
        channel: AWGNChannel | None = None,
    ) -> None:
        super().__init__()
        if image_size not in (4 * latent_size, 8 * latent_size):
            raise ValueError(f"latent size {latent_size} must be image size {image_size} / 4 or / 8")
        if len(widths) != 3 or len(blocks) != 2:
            raise ValueError(f"widths needs 3 values and blocks 2, got {widths} and {blocks}")
        if latent_channels < 1 or min(widths) < 1 or min(blocks) < 0:
            raise ValueError("latent_channels and widths must be >= 1, blocks >= 0")
        w32, w16, w8 = widths
        b16, b8 = blocks
        self.image_shape = (3, image_size, image_size)
        self.latent_shape = (latent_channels, latent_size, latent_size)
        self.latent_dim = latent_channels * latent_size * latent_size
        deep = image_size == 8 * latent_size  # a third downsampling to 8x8 (the lab's code)
        w_code = w8 if deep else w16
        enc: list[nn.Module] = [
            nn.Conv2d(3, w32, 5, stride=2, padding=2),
            GDN(w32),
            nn.Conv2d(w32, w16, 3, stride=2, padding=1),
            GDN(w16),
            *(ResidualBlock(w16) for _ in range(b16)),
        ]
        if deep:
            enc += [nn.Conv2d(w16, w8, 3, stride=2, padding=1), GDN(w8), *(ResidualBlock(w8) for _ in range(b8))]
        self.encoder_body = nn.Sequential(*enc)
        self.encoder_attention = SNRAttention(w_code)
        self.encoder_head = nn.Conv2d(w_code, latent_channels, 3, padding=1)

        self.decoder_head = nn.Sequential(nn.Conv2d(latent_channels, w_code, 3, padding=1), nn.PReLU(w_code))
        self.decoder_attention = SNRAttention(w_code)
        dec: list[nn.Module] = []
        if deep:
            dec += [*(ResidualBlock(w8) for _ in range(b8)), upsample(w8, w16), nn.PReLU(w16)]
        dec += [
            *(ResidualBlock(w16) for _ in range(b16)),
            upsample(w16, w32),
            nn.PReLU(w32),
            upsample(w32, 3),
            ClampST(-1.0, 1.0),
        ]
        self.decoder_body = nn.Sequential(*dec)
        self.channel = channel

    def _snr(self, variance: torch.Tensor) -> torch.Tensor:
        return self.channel.side_snr(variance) if self.channel is not None else torch.full_like(variance, SNR_CLEAN)

    def encode(self, x: torch.Tensor, snr: torch.Tensor | None = None) -> torch.Tensor:
        """The code (before the channel) for images ``x``; ``snr`` (dB, per image) defaults to the clean channel's."""
        if snr is None:
            snr = self._snr(torch.zeros(len(x), device=x.device))
        return self.encoder_head(self.encoder_attention(self.encoder_body(x), snr))

    def decode(self, z: torch.Tensor, snr: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from received codes ``z``; ``snr`` (dB, per code) defaults to the clean channel's."""
        if snr is None:
            snr = self._snr(torch.zeros(len(z), device=z.device))
        return self.decoder_body(self.decoder_attention(self.decoder_head(z), snr))

    def forward(
        self,
        x: torch.Tensor,
        noise: bool | None = None,
        variance: float | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """``noise``/``variance`` override the channel's own setting (evaluation at other SNRs)."""
        if self.channel is None:  # a clean channel: the code is still power-normalised, as it would be sent
            z = self.encode(x)
            sent = power_normalize(z)
            return {"z": z, "z_sent": sent, "x_hat": self.decode(sent)}
        var = self.channel.sample_variance(len(x), noise, variance, generator, x.device)
        snr = self._snr(var)
        z = self.encode(x, snr)
        sent = self.channel.transmit(z, var, generator)
        return {"z": z, "z_sent": sent, "x_hat": self.decode(sent, snr)}


def macs_per_image(model: nn.Module, image_size: int = 64) -> int:
    """Multiply-accumulates of the convolutions and linear layers for one image (the FLOP count / 2).

    Counted with forward hooks on one pass, so it follows any layout; GDN's channel mix counts as the 1x1
    convolution it is; pointwise operations (square roots, PReLU, the channel) are left out, as FLOP counts of conv nets usually do.
    """
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = math.prod(module.kernel_size) * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, GDN):  # its channel mix is a 1x1 convolution of the squares
            total += output.numel() * len(module.beta_root)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, GDN))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
