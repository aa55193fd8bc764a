"""The dogs study's settings (shared ones in :class:`aelab.studies.config.StudyConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aelab.studies.config import StudyConfig, option

VARIANCES = (0.05, 0.1, 0.15)  # the lab's noise variances
PERTURB_SCALES = (0.1, 0.25, 0.5, 1.0)


@dataclass
class DogsConfig(StudyConfig):
    data: Path | None = option(
        None,
        "folder of photos, searched recursively for jpg/jpeg/png/webp/bmp (e.g. Kaggle's all-dogs/); without it: "
        "Stanford Dogs from the cache (aelab download stanford-dogs)",
        kind=Path,
    )
    out: Path = option(Path("runs/dogs"), "output folder", kind=Path)
    batch_size: int = option(64, "batch size", kind=int, low=0)
    arch: str = option(
        "jscc",
        "autoencoder layout: jscc (strided convolutions, GDN, residual blocks, SNR attention; the lab's layout is "
        "trained beside it for comparison) or lab (the lab's own layout alone)",
        choices=("jscc", "lab"),
    )
    lr: float | None = option(
        None, "Adam peak learning rate (warm-up, then cosine decay to 5%%); default 1e-3 for jscc, 2e-3 for lab",
        kind=float, low=0,
    )  # fmt: skip
    variances: tuple[float, ...] = option(
        VARIANCES, "latent noise variances of the noisy models, one model each", kind=float, low=0, many=True
    )
    flip: bool = option(
        False, "train the default layout's models on photos mirrored left-right at random (the lab layout's: never)",
        kind=bool,
    )  # fmt: skip
    ema: float = option(
        0.0, "judge and save the default layout's models as an exponential moving average of their weights with "
        "this decay, e.g. 0.995 (0: off; the lab layout's: never)", kind=float, low=0, strict=False, high=1,
    )  # fmt: skip
    latent_channels: int = option(16, "channels of the latent code", kind=int, low=0)
    latent_size: int = option(8, "height and width of the latent code: 8 (the lab's 16x8x8) or 16", choices=(8, 16))
    limit: int | None = option(None, "use only N photos (a stable, mixed subset)", kind=int, low=0)
    perturb_scales: tuple[float, ...] = option(
        PERTURB_SCALES, "noise scales of the perturb part, in units of the codes' per-dimension std", kind=float,
        low=0, many=True,
    )  # fmt: skip
