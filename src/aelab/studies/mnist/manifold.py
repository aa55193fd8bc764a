"""Part ``manifold``: decode a uniform grid of the 2-D latent plane (the lab's digit manifold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from aelab.studies.mnist.figures import manifold_figure
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.mnist.context import MnistRun


@dataclass
class ManifoldResult:
    codes: np.ndarray
    decoded: torch.Tensor
    inside: float  # share of test codes inside the sampled box


def share_inside(codes: np.ndarray, extent: tuple[float, float]) -> float:
    return float(np.mean(np.all((codes >= extent[0]) & (codes <= extent[1]), axis=1)))


def compute(run: MnistRun) -> ManifoldResult:
    codes = run.scores("ae2d").codes
    return ManifoldResult(codes, run.decoded_grid("ae2d"), share_inside(codes, run.extent))


def prose(inside: float) -> str:
    coverage = (
        "so the box holds nearly the whole code distribution"
        if inside >= 0.95
        else "so the box misses part of the code distribution and the grid shows only what lies inside it"
        if inside >= 0.5
        else "so most codes lie outside the lab's box, and its grid shows mostly space no image was encoded to"
    )
    return (
        f"{inside:.0%} of the test codes fall inside the sampled box, {coverage}. Grid points between class "
        "regions decode to blends, and points far from any code decode to smeared shapes: the autoencoder "
        "never learned what lies there, which is why uniform sampling is a poor generator."
    )


def write(run: MnistRun, res: ManifoldResult) -> None:
    cfg, r = run.cfg, run.report
    lo, hi = run.extent
    run.section(
        f"Decoding a uniform grid of the latent plane ({cfg.grid_size}x{cfg.grid_size} over [{lo:g}, {hi:g}]^2)"
    )
    r.metric("manifold", {"grid_size": cfg.grid_size, "range": [lo, hi], "test_codes_inside_grid": res.inside})
    r.figure(
        manifold_figure({"AE": (res.codes, res.decoded)}, run.labels, cfg.grid_size, run.extent),
        "manifold",
        "Left: test codes with the sampled box dashed. Right: the decoded grid.",
    )
    r.text(prose(res.inside))


PART = Part("manifold", "Decoding a uniform grid of the latent plane", compute, write, models=("ae2d",))
