"""A classifier two-sample test (Lopez-Paz & Oquab 2017): can a small conv net tell two image sets apart?

"Does sampling the latent space generate dogs?" becomes a number: train a classifier to separate
decoded samples from real held-out photos and score it on images it did not train on. Held-out
accuracy near 50% means the net finds nothing that tells the sets apart; near 100%, they differ
plainly. Each set is split in two halves; the net trains on one half of both and is scored on the
other, then the halves swap (two-fold cross-validation), so every image is scored once and the
accuracy rests on all of them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_IMAGES = 4  # per set: two per half


def critic(width: int = 16) -> nn.Sequential:
    """Four strided 3x3 convolutions, global average pooling, one logit: small enough to train in seconds
    on a few hundred 64x64 images, deep enough to see texture, blur and colour statistics."""
    layers: list[nn.Module] = []
    cin = 3
    for i in range(4):
        cout = width * 2 ** min(i, 2)
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1))


def _train_and_score(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, epochs: int, seed: int
) -> int:
    torch.manual_seed(seed)
    net = critic()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(train_x), generator=gen).split(64):
            x = train_x[idx]
            if bool(torch.rand((), generator=gen) < 0.5):  # a mirrored photo is still a photo
                x = x.flip(-1)
            loss = F.binary_cross_entropy_with_logits(net(x * 2 - 1).squeeze(1), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        guess = torch.cat([net(b * 2 - 1).squeeze(1) > 0 for b in test_x.split(256)])
    return int((guess == test_y.bool()).sum())


def two_sample_accuracy(a: torch.Tensor, b: torch.Tensor, epochs: int = 30, seed: int = 0) -> float:
    """Held-out accuracy of a conv net telling images ``a`` from ``b`` (N, 3, H, W floats on [0, 1]).

    Both sets are cut to the smaller one's size so that 50% is chance; needs at least 4 images each.
    The critic trains on the CPU; the global random state is left as it was.
    """
    if not (a.is_floating_point() and b.is_floating_point()):
        raise ValueError(f"the two-sample test takes float images on [0, 1], got {a.dtype} and {b.dtype}")
    if a.dim() != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"the two sets need images of one (3, H, W) shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = min(len(a), len(b))
    if n < MIN_IMAGES:
        raise ValueError(f"the two-sample test needs at least {MIN_IMAGES} images per set, got {len(a)} and {len(b)}")
    with torch.random.fork_rng(devices=[]):  # CPU only: never touches (or initialises) an accelerator
        gen = torch.Generator().manual_seed(seed)
        a = a.detach().cpu()[torch.randperm(len(a), generator=gen)[:n]].float()
        b = b.detach().cpu()[torch.randperm(len(b), generator=gen)[:n]].float()
        half = n // 2
        folds = [(slice(0, half), slice(half, n)), (slice(half, n), slice(0, half))]
        correct = total = 0
        for k, (fit_part, score_part) in enumerate(folds):
            fx = torch.cat([a[fit_part], b[fit_part]])
            fy = torch.cat([torch.zeros(len(a[fit_part])), torch.ones(len(b[fit_part]))])
            sx = torch.cat([a[score_part], b[score_part]])
            sy = torch.cat([torch.zeros(len(a[score_part])), torch.ones(len(b[score_part]))])
            correct += _train_and_score(fx, fy, sx, sy, epochs, seed + k)
            total += len(sx)
    return correct / total


def chance_band(n: int, z: float = 1.96) -> float:
    """Half-width of the binomial band around 50% that a critic guessing at random stays in (95% for the
    default ``z``) when ``n`` images per set are scored (2n in all). An approximation: the images one critic
    scores are not independent trials, so the accuracy's real spread under the null can differ from it."""
    return z * 0.5 / math.sqrt(2 * n)
