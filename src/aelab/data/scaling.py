"""How uint8 images become model inputs, and back: the scaling is part of a model's identity.

Data stay uint8 in memory; each training step converts its batch with one of these. A model's input
scaling is recorded in ``checkpoints/models.json`` by name (``SCALINGS``) so ``aelab evaluate`` and
``aelab export`` feed it the same way.
"""

from __future__ import annotations

import torch


def unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1], done inside the step so data stay uint8 in memory."""
    return x.float().div_(255.0)


def signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1] (Tanh-output models)."""
    return x.float().div_(127.5).sub_(1.0)


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """A Tanh-output model's [-1, 1] image back on the [0, 1] scale every metric uses."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


SCALINGS = {"unit": unit, "signed": signed}  # name in models.json -> input scaling
TO_UNIT = {"unit": lambda x: x.clamp(0.0, 1.0), "signed": from_signed}  # a model's output back on [0, 1]
