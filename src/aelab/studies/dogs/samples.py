"""Part ``samples``: nine random held-out photos, their reconstructions and their latent channel maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab import plots
from aelab.evaluate import psnr
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun


@dataclass
class SamplesResult:
    photos: torch.Tensor
    reconstructions: torch.Tensor
    codes: torch.Tensor
    psnr: torch.Tensor
    zero_share: float  # of all held-out code values
    negative_share: float = 0.0  # likewise


def compute(run: DogsRun) -> SamplesResult:
    out, show = run.ae_outputs, run.show
    return SamplesResult(
        run.x[show],
        out["x01"][show],
        out["z_sent"][show],
        psnr(out["x01"][show], run.x[show]),
        float((out["z_sent"] == 0).float().mean()),
        float((out["z_sent"] < 0).float().mean()),
    )


def prose(res: SamplesResult, latent: tuple[int, int, int]) -> str:
    zeros = res.zero_share
    if res.negative_share > 0:
        sign = (
            f"The code is signed ({res.negative_share:.0%} of its values are negative) and dense, as a code sent "
            "over a channel should be: every value carries signal power"
        )
    else:
        sparsity = (
            f"and {zeros:.0%} of its values are exactly zero: sparse maps"
            if zeros >= 0.3
            else f"but only {zeros:.0%} of its values are exactly zero: dense maps"
        )
        sign = f"The code ends in a ReLU, so it is non-negative, {sparsity}"
    return (
        f"{sign}. Each of the {latent[0]} channels is a map of {latent[1]}x{latent[2]} positions laid out like the "
        "photo, one coarse feature per position; the decoder paints the image back from these maps."
    )


def write(run: DogsRun, res: SamplesResult) -> None:
    r, latent = run.report, run.latent
    run.section(f"{len(run.show)} random held-out photos, their reconstructions and latents")
    r.metric("samples", {"indices": run.show.tolist(), "psnr": res.psnr.tolist()})
    r.figure(
        plots.latent_maps(res.codes, res.photos, res.reconstructions),
        "samples_latents",
        f"Top: held-out photos; middle: reconstructions; bottom: each latent's {latent[0]} channel maps "
        f"({latent[1]}x{latent[2]} each) tiled with thin grey gaps, one colour scale per code (its bar below it).",
    )
    r.table(["photo", *[str(i + 1) for i in range(len(run.show))]], [["PSNR (dB)", *res.psnr.tolist()]], digits=1)
    r.metric("samples.latent_zero_share", res.zero_share)
    r.metric("samples.latent_negative_share", res.negative_share)
    r.text(prose(res, latent))


PART = Part("samples", "nine held-out photos, reconstructions and latent maps", compute, write)
