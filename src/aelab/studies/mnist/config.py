"""The MNIST study's settings (shared ones in :class:`aelab.studies.config.StudyConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aelab.studies.config import StudyConfig, option


@dataclass
class MnistConfig(StudyConfig):
    data: Path | None = option(
        None,
        "folder with the 4 MNIST-format IDX files (.gz or not); without it: cached MNIST, a download, "
        "or the built-in 5,000-digit sample",
        kind=Path,
        aliases=("--data-dir",),
    )
    out: Path = option(Path("runs/mnist"), "output folder", kind=Path)
    batch_size: int = option(128, "batch size", kind=int, low=0)
    lr: float = option(3e-3, "Adam learning rate (warm-up, then cosine decay to 5%%)", kind=float, low=0)
    hidden: tuple[int, ...] = option(
        (1024, 512, 128), "encoder hidden widths, mirrored in the decoder", kind=int, low=0, many=True
    )
    grid_size: int = option(20, "latent grid points per axis", kind=int, low=0)
    grid_range: float = option(5.0, "the grid covers [-R, R]^2", kind=float, low=0)
    weight_decay: float = option(1e-4, "Adam weight decay of the L2 part", kind=float, low=0, strict=False)
    l2_lambda: float = option(
        1e-5, "lambda of the explicit sum-of-squared-weights penalty", kind=float, low=0, strict=False
    )
    umap_weight: float = option(
        1.0,
        "weight of UMAP's fuzzy-graph cross-entropy beside BCE in the UMAP-regularised AE (compare)",
        kind=float,
        low=0,
        strict=False,
    )
    umap_epochs: int | None = option(
        None,
        "epochs of the UMAP-regularised AE (compare), ahead of --epochs (default: its own budget, 32)",
        kind=int,
        low=0,
    )
    allow_download: bool = option(True, "never try the MNIST mirrors", kind=bool, flag="--no-download", negate=True)
