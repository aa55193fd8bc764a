"""``DogsRun``: what the dogs parts share, each value computed the first time a part asks."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from torch import nn

from aelab.data.base import ImageData
from aelab.data.scaling import from_signed, signed
from aelab.evaluate import channel_scores, decode, mean_psnr, nearest_psnr, pixel_scores, predict, reconstruct
from aelab.studies.base import Session
from aelab.studies.dogs.config import DogsConfig
from aelab.studies.parts import Registry
from aelab.studies.recipe import Recipe
from aelab.studies.run import StudyRun

N_SHOW = 9
N_GAUSS = 256


class DogsRun(StudyRun):
    """Held-out photos, the shown and the Gaussian-fit indices, and the plain AE's outputs, shared."""

    quick_epochs = 1
    study = "dogs"

    def __init__(
        self, cfg: DogsConfig, session: Session, data: ImageData, registry: Registry, recipes: dict[str, Recipe]
    ) -> None:
        super().__init__(cfg, session, data, registry, recipes)
        self.cfg: DogsConfig = cfg
        rng = np.random.default_rng(cfg.seed)
        n_train, n_test = len(data.train), len(data.test)
        self.show = np.sort(rng.choice(n_test, size=min(N_SHOW, n_test), replace=False))
        self.gauss_idx = np.sort(rng.choice(n_train, size=min(N_GAUSS, n_train), replace=False))
        self.x = data.test.float() / 255.0  # held-out photos on [0, 1]

    @property
    def latent_kwargs(self) -> dict:
        """The image and code sizes every dogs model is built with."""
        return {
            "image_size": self.data.shape[-1],
            "latent_channels": self.cfg.latent_channels,
            "latent_size": self.cfg.latent_size,
        }

    @property
    def latent(self) -> tuple[int, int, int]:
        return (self.cfg.latent_channels, self.cfg.latent_size, self.cfg.latent_size)

    @property
    def code_dim(self) -> int:
        return math.prod(self.latent)

    def outputs(self, model: nn.Module, images: torch.Tensor | None = None, **forward) -> dict[str, torch.Tensor]:
        """The model's outputs on the held-out photos (``x01``: reconstructions on [0, 1]); with
        ``noise=True`` the channel noise is one fixed draw, the same for every model and for ``aelab evaluate``
        (:func:`aelab.evaluate.reconstruct`)."""
        images = self.data.test if images is None else images
        return reconstruct(model, images, signed, from_signed, self.device, 256, self.cfg.seed, **forward)

    def psnr_at(self, model: nn.Module, variance: float) -> float:
        """Mean held-out PSNR with channel noise of ``variance``: one point of a PSNR-vs-SNR curve."""
        return mean_psnr(self.outputs(model, noise=True, variance=variance)["x01"], self.x)

    def pixel_scores(self, x01: torch.Tensor) -> dict[str, float]:
        return pixel_scores(x01, self.x)

    def channel_scores(self, model: nn.Module, variance: float, clean: dict | None = None) -> tuple[dict, dict, dict]:
        """A channel model's held-out scores with noise of ``variance`` and on a noise-free channel, as
        ``aelab evaluate`` gives them (:func:`aelab.evaluate.channel_scores`), and both outputs (``clean``: the
        model's noise-free outputs when already computed: one model scored at several variances)."""
        noisy = self.outputs(model, noise=True, variance=variance)
        clean = clean if clean is not None else self.outputs(model, noise=False)
        return channel_scores(noisy["x01"], clean["x01"], self.x, variance), noisy, clean

    @cached_property
    def ae_outputs(self) -> dict[str, torch.Tensor]:
        return self.outputs(self.model("ae"))

    def reconstructions(self, name: str) -> torch.Tensor:
        """Model ``name``'s reconstructions of the held-out photos on [0, 1], through a noise-free channel."""
        if name == "ae":
            return self.ae_outputs["x01"]
        return self.outputs(self.model(name), noise=False)["x01"]

    @cached_property
    def ae_scores(self) -> dict[str, float]:
        return self.pixel_scores(self.ae_outputs["x01"])

    @cached_property
    def reference_nearest_psnr(self) -> float:
        """How close held-out reconstructions come to their nearest training photo: the yardstick for samples."""
        return float(nearest_psnr(self.ae_outputs["x01"], self.data.train)[0].mean())

    def codes_of(self, name: str, images: torch.Tensor) -> torch.Tensor:
        """What the decoder sees for clean input: the encoder output, power-normalised for channel models."""
        return predict(self.model(name), images, signed, self.device, 256, noise=False)["z_sent"]

    @cached_property
    def train_codes(self) -> torch.Tensor:
        """The plain AE's codes of the ``N_GAUSS`` training photos the Gaussian is fitted to."""
        return self.codes_of("ae", self.data.train[self.gauss_idx])

    def decode(self, name: str, codes: torch.Tensor) -> torch.Tensor:
        return decode(self.model(name), codes, self.device, from_signed)
