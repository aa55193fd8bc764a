"""Part ``gauss``: a Gaussian fitted to 256 training codes (Ledoit-Wolf), nine samples decoded, and the lab's
blend (0.25 sample + 0.75 real code); each image's PSNR to its nearest training photo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from aelab import plots
from aelab.evaluate import nearest_psnr
from aelab.studies.dogs.sampling import BLEND, GaussSamples, gauss_samples, generates
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun


@dataclass
class GaussResult:
    n_codes: int
    samples: GaussSamples
    real_decoded: torch.Tensor
    near_drawn: torch.Tensor
    near_blend: torch.Tensor
    nearest_drawn: torch.Tensor  # the training photos closest to each sample, on [0, 1]
    nearest_blend: torch.Tensor
    blend_is_source: float  # share of blends whose nearest training photo is the one their real code came from
    reference: float  # held-out reconstructions' mean PSNR to their nearest training photo


def compute(run: DogsRun) -> GaussResult:
    n = len(run.show)
    real = run.train_codes[:n]
    g = gauss_samples(run, "ae", run.train_codes, real)
    near_drawn, idx_drawn = nearest_psnr(g.drawn, run.data.train)
    near_blend, idx_blend = nearest_psnr(g.blended, run.data.train)
    return GaussResult(
        n_codes=len(run.gauss_idx),
        samples=g,
        real_decoded=run.decode("ae", real),
        near_drawn=near_drawn,
        near_blend=near_blend,
        nearest_drawn=run.data.train[idx_drawn].float() / 255.0,
        nearest_blend=run.data.train[idx_blend].float() / 255.0,
        blend_is_source=float(np.mean(idx_blend.numpy() == run.gauss_idx[:n])),
        reference=run.reference_nearest_psnr,
    )


def prose(res: GaussResult, code_dim: int) -> str:
    g, drawn, blend = res.samples, float(res.near_drawn.mean()), float(res.near_blend.mean())
    if generates(drawn, res.reference):
        samples = (
            f"The plain samples come as close to training photos ({drawn:.1f} dB) as held-out reconstructions do "
            f"({res.reference:.1f} dB): the fitted Gaussian lands near the data (whether its samples look like "
            "photos is part `generation`'s two-sample test)."
        )
    else:
        samples = (
            f"The plain samples lie far from every training photo ({drawn:.1f} dB to the nearest, against "
            f"{res.reference:.1f} dB for held-out reconstructions): they decode to no photo the model knows."
        )
    negative = (
        f" The codes are non-negative, a Gaussian is not: {g.negative_share:.0%} of the sampled values are negative, "
        "which no encoder output ever is, so much of its mass lies where no photo was encoded."
        if g.negative_share > 0.05 and g.code_negative_share == 0
        else ""
    )
    source = (
        f"{res.blend_is_source:.0%} of the blends have the training photo their real code came from as nearest "
        f"neighbour ({blend:.1f} dB): the blend edits a real image rather than generating a new one."
        if res.blend_is_source >= 0.5
        else f"Only {res.blend_is_source:.0%} of the blends stay nearest to the photo their real code came from "
        f"({blend:.1f} dB): at this weight the sample moves them off their source."
    )
    return (
        f"The mean and covariance of the {code_dim:,}-dimensional codes come from only {res.n_codes} codes, so the "
        f"sample covariance is singular; it is estimated by {g.fit.method}, which shrinks it towards a scaled identity. "
        f"The table gives each decoded image's PSNR to its nearest training photo. {samples}{negative} {source}"
    )


def write(run: DogsRun, res: GaussResult) -> None:
    r, g, n = run.report, res.samples, len(run.show)
    run.section(f"Sampling a Gaussian fitted to {res.n_codes} training codes")
    r.metric(
        "gauss",
        {
            "n_codes": res.n_codes,
            "covariance": g.fit.method,
            "nearest_train_psnr": res.near_drawn.tolist(),
            "nearest_train_psnr_mean": float(res.near_drawn.mean()),
            "blend_nearest_train_psnr": res.near_blend.tolist(),
            "blend_nearest_train_psnr_mean": float(res.near_blend.mean()),
            "blend_nearest_is_source_share": res.blend_is_source,
            "reference_test_reconstruction_nearest_train_psnr_mean": res.reference,
            "sample_negative_share": g.negative_share,
        },
    )
    rows = [
        ("Gaussian sample", g.drawn),
        ("nearest training", res.nearest_drawn),
        (f"blend {BLEND:g}/{1 - BLEND:g}", g.blended),
        ("its real code", res.real_decoded),
        ("nearest training", res.nearest_blend),
    ]
    r.figure(
        plots.image_rows(rows),
        "gauss_samples",
        "Row 1: decoded samples of the fitted Gaussian; row 2: the training photo closest to each. "
        f"Row 3: the lab's blend, {BLEND:g} x sample + {1 - BLEND:g} x a real training code (row 4 is "
        "that real code decoded); row 5: the closest training photo.",
    )
    r.table(
        ["codes decoded", *[str(i + 1) for i in range(n)], "mean"],
        [
            ["Gaussian sample", *res.near_drawn.tolist(), float(res.near_drawn.mean())],
            ["blend", *res.near_blend.tolist(), float(res.near_blend.mean())],
        ],
        digits=1,
    )
    r.text(prose(res, run.code_dim))


PART = Part("gauss", "Gaussian samples of the latent space and the lab's blend", compute, write)
