"""The digit judge: a small CNN classifier that turns "looks like a digit" into a number."""

from __future__ import annotations

import torch
from torch import nn

from aelab.evaluate import predict


class DigitJudge(nn.Module):
    """Two conv blocks and two linear layers (about 0.4 M weights), logits out.

    Small enough to train in a few CPU minutes, accurate enough (about 99% on MNIST) that a
    confident verdict on a decoded image means the image looks like that digit to a classifier
    trained on real ones, not that the classifier guesses.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10) -> None:
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError("image height and width must be multiples of 4")
        self.image_shape = tuple(image_shape)
        self.classes = classes
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (h // 4) * (w // 4), 128),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(128, classes),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x)}

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
        """Class probabilities (N, classes) of float images in [0, 1], computed in eval mode."""
        return predict(self, images, lambda t: t.float(), device, batch_size)["logits"].softmax(dim=1)
