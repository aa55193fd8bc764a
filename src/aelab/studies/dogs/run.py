"""``DogsRun``: what the dogs parts share, each value computed the first time a part asks."""

from __future__ import annotations

import math
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aelab.data.base import ImageData
from aelab.data.photos import load_photos, stanford_dogs_dir
from aelab.data.scaling import from_signed, signed
from aelab.errors import UserError
from aelab.evaluate import decode, mean_psnr, nearest_psnr, predict, ssim
from aelab.studies.base import Session
from aelab.studies.dogs.config import DogsConfig
from aelab.studies.dogs.recipes import recipes, var_key
from aelab.studies.dogs.registry import REGISTRY
from aelab.studies.run import StudyRun

N_SHOW = 9
N_GAUSS = 256
QUICK_LIMIT = 96


class DogsRun(StudyRun):
    """Held-out photos, the shown and the Gaussian-fit indices, and the plain AE's outputs, shared."""

    quick_epochs = 1

    def __init__(self, cfg: DogsConfig, session: Session, data: ImageData) -> None:
        super().__init__(cfg, session, data, REGISTRY, recipes(cfg.variances))
        self.cfg: DogsConfig = cfg
        rng = np.random.default_rng(cfg.seed)
        n_train, n_test = len(data.train), len(data.test)
        self.show = np.sort(rng.choice(n_test, size=min(N_SHOW, n_test), replace=False))
        self.gauss_idx = np.sort(rng.choice(n_train, size=min(N_GAUSS, n_train), replace=False))
        self.x = data.test.float() / 255.0  # held-out photos on [0, 1]

    @property
    def arch(self) -> dict:
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
        ``noise=True`` the channel noise is one fixed draw, the same for every model."""
        if forward.get("noise"):
            forward["generator"] = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 11)
        out = predict(model, self.data.test if images is None else images, signed, self.device, 256, **forward)
        out["x01"] = from_signed(out["x_hat"])
        return out

    def psnr_at(self, model: nn.Module, variance: float) -> float:
        """Mean held-out PSNR with channel noise of ``variance``: one point of a PSNR-vs-SNR curve."""
        return mean_psnr(self.outputs(model, noise=True, variance=variance)["x01"], self.x)

    def pixel_scores(self, x01: torch.Tensor) -> dict[str, float]:
        return {
            "test_mse": float((x01 - self.x).pow(2).mean()),
            "test_psnr": mean_psnr(x01, self.x),
            "test_ssim": float(ssim(x01, self.x).mean()),
        }

    @cached_property
    def ae_outputs(self) -> dict[str, torch.Tensor]:
        return self.outputs(self.model("ae"))

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


def find_data(data: Path | None) -> Path:
    """The photo folder: the one given, else Stanford Dogs downloaded into the cache."""
    if data is not None:
        return Path(data)
    cached = stanford_dogs_dir()
    if cached is not None:
        return cached
    raise UserError(
        "no photos given: pass --data DIR (any folder of photos, e.g. Kaggle's all-dogs/) "
        "or fetch Stanford Dogs first with `aelab download stanford-dogs`"
    )


def run_dogs(cfg: DogsConfig) -> Path:
    """Run the study and return the output folder."""
    started = time.perf_counter()
    folder = find_data(cfg.data)  # before the run folder exists, so a missing folder leaves nothing behind
    s = Session(cfg.out, "aelab: deep autoencoders on dog photos", cfg.device, cfg.seed, cfg.resume, cfg.overwrite)
    with s.guard():
        data = load_photos(folder, limit=cfg.limit or (QUICK_LIMIT if cfg.quick else None))
        if len(data.train) < 2:
            raise UserError(f"{folder}: only {len(data.train)} usable training photo(s); the study needs more")
        run = DogsRun(cfg, s, data)
        run.open_tensorboard("signed")
        s.write_config(cfg)
        _introduce(run)
        run.model("ae")  # every part stands on the plain AE; training it first keeps the log in reading order
        run.run_parts()
        run.finish("MSE on [-1, 1]", started)
    return s.run.path


def _introduce(run: DogsRun) -> None:
    cfg, data, r = run.cfg, run.data, run.report
    ae_epochs = run.epochs(run.recipes["ae"])
    noisy_epochs = run.epochs(run.recipes[f"noisy_var{var_key(cfg.variances[0])}"])
    r.text(
        f"Data: **{data.source}** ({'read from' if data.info.get('cache') == 'hit' else 'decoded into'} the photo "
        f"cache), {len(data.train):,} training and {len(data.test):,} held-out photos, centre-cropped and resized to "
        f"{data.shape[1]}x{data.shape[2]} (Lanczos); {data.info.get('skipped', 0)} unreadable file(s) skipped. The "
        "held-out 10% are chosen by a hash of each file's relative path, so adding photos never moves one between "
        "the splits. Every number below is on the held-out photos unless it says otherwise. PSNR and SSIM are on "
        "the [0, 1] scale, per image, then averaged."
    )
    r.text(
        f"Training: Adam, batch {cfg.batch_size}, lr {cfg.lr:g} with a short warm-up and cosine decay to 5%, MSE on "
        f"images scaled to [-1, 1], seed {cfg.seed}; the plain AE for {ae_epochs} epochs, each noisy model for "
        f"{noisy_epochs} epochs starting from the AE's weights. "
        + (
            "Mixed precision: bf16 autocast (weights, optimiser and all evaluation stay fp32)."
            if run.bf16
            else "Full fp32."
        )
    )
    r.metric("data", data.summary())
    r.metric(
        "config",
        {
            "ae_epochs": ae_epochs,
            "noisy_epochs": noisy_epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "latent_shape": list(run.latent),
            "variances": list(cfg.variances),
            "bf16_autocast": run.bf16,
        },
    )
