"""Building blocks of the learned-transmission autoencoder (:mod:`aelab.models.jscc`).

Written here rather than taken from CompressAI, whose package needs torchvision (which does not
import beside aelab's torch build); the forms follow the papers cited in each docstring.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GDN(nn.Module):
    """Generalised divisive normalisation (Balle, Laparra & Simoncelli 2016), as the encoder uses it.

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``: each
    channel is divided by a learned mix of the local energy of all channels at the same position. It
    Gaussianises natural-image responses far better than a pointwise nonlinearity, which is why learned
    image codecs use it between their strided convolutions. ``beta`` and ``gamma`` are stored as
    square roots and squared on use (plus a small floor for ``beta``), so they stay non-negative
    without a clamp that would stop their gradients.
    """

    def __init__(self, channels: int, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.beta_min = beta_min
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter((gamma_init * torch.eye(channels)).sqrt())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in float32 even under bf16 autocast: the squares and their inverse square root lose too much in bf16.
        # (No inverse GDN for the decoder: it grows like x^2 per layer, and three in a row blew training up.)
        with torch.autocast(x.device.type, enabled=False):
            xf = x.float()
            beta = self.beta_root.pow(2) + self.beta_min
            gamma = self.gamma_root.pow(2)
            norm = F.conv2d(xf * xf, gamma[:, :, None, None], beta)
            y = xf * norm.rsqrt()
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{len(self.beta_root)}"


class ResidualBlock(nn.Module):
    """``x + conv(prelu(conv(prelu(x))))``: two 3x3 convolutions (``width`` inner channels) with a skip."""

    def __init__(self, channels: int, width: int | None = None) -> None:
        super().__init__()
        width = width or channels
        self.body = nn.Sequential(
            nn.PReLU(channels),
            nn.Conv2d(channels, width, 3, padding=1),
            nn.PReLU(width),
            nn.Conv2d(width, channels, 3, padding=1),
        )

        nn.init.zeros_(self.body[-1].weight)  # each block starts as the identity (SkipInit): deep stacks train stably
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SNRAttention(nn.Module):
    """ADJSCC's attention-feature module (Xu et al. 2021): channel gains from the features and the SNR.

    The channel means of the feature map and the channel SNR (dB) go through a small MLP to one gain
    per channel, so one network can spend its code differently on a clean and on a noisy channel. The
    gain is ``1 + tanh(.)`` with the last layer zero-initialised: the module starts as the identity,
    so a model warm-started from weights trained without it (or at one SNR) starts where they left off.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + 1, hidden), nn.PReLU(hidden), nn.Linear(hidden, channels))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        context = torch.cat([x.mean(dim=(2, 3)), snr_db.to(x.dtype).view(-1, 1) / 10.0], dim=1)
        gain = 1.0 + torch.tanh(self.mlp(context))
        return x * gain[:, :, None, None]


def upsample(cin: int, cout: int) -> nn.Sequential:
    """Sub-pixel upsampling (Shi et al. 2016): a 3x3 convolution to ``4 cout`` channels, then pixel shuffle x2.

    Learned like a transposed convolution but without its checkerboard overlap, and unlike the lab's
    nearest-neighbour upsampling it gives every output pixel its own weights.
    """
    return nn.Sequential(nn.Conv2d(cin, 4 * cout, 3, padding=1), nn.PixelShuffle(2))


class ClampST(nn.Module):
    """Clamp to ``[lo, hi]`` in the forward pass, pass the gradient through unchanged (straight-through).

    The output layer of a model whose targets lie in ``[lo, hi]``: its outputs never leave the range,
    yet an output pushed past it still gets the gradient that pulls it back. A Tanh there can saturate:
    after one outsized step every pixel sits at -1 or +1, its gradient vanishes, and training never recovers.
    """

    def __init__(self, lo: float = -1.0, hi: float = 1.0) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp(self.lo, self.hi) - x).detach()
