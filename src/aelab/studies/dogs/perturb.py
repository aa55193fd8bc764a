"""Part ``perturb``: the held-out codes plus Gaussian noise at several scales of the codes' per-dimension std."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab import plots
from aelab.evaluate import mean_psnr
from aelab.latent import perturb
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun


@dataclass
class Perturbed:
    scale: float
    vs_clean: float
    vs_original: float
    shown: torch.Tensor


def compute(run: DogsRun) -> list[Perturbed]:
    std = run.train_codes.flatten(1).std(dim=0).view(1, *run.latent)
    base, clean = run.ae_outputs["z_sent"], run.ae_outputs["x01"]  # what the decoder reads
    out = []
    for i, scale in enumerate(run.cfg.perturb_scales):
        decoded = run.decode("ae", perturb(base, scale, std, run.cfg.seed + 100 + i))
        out.append(Perturbed(scale, mean_psnr(decoded, clean), mean_psnr(decoded, run.x), decoded[run.show]))
    return out


def _how_far(psnr: float) -> str:
    if psnr >= 30:
        return "barely moves"
    if psnr >= 20:
        return "changes visibly but stays the same photo"
    return "changes beyond recognition"


def prose(res: list[Perturbed]) -> str:
    first, last = res[0], res[-1]
    monotone = all(a.vs_clean >= b.vs_clean for a, b in zip(res, res[1:]))
    trend = (
        "The further the code moves, the further the image moves: the decoder is smooth near real codes, but "
        "nothing made the space between codes decode to photos."
        if monotone
        else "The PSNR does not fall steadily with the noise scale: one noise draw per scale is too few to rank them."
    )
    return (
        "The per-dimension std is that of the training codes from part 3; PSNRs are over all held-out photos. At "
        f"{first.scale:g} std the decoded image {_how_far(first.vs_clean)} ({first.vs_clean:.1f} dB from the clean "
        f"reconstruction); at {last.scale:g} std it {_how_far(last.vs_clean)} ({last.vs_clean:.1f} dB). {trend}"
    )


def write(run: DogsRun, res: list[Perturbed]) -> None:
    r = run.report
    run.section("Perturbing the codes of held-out photos")
    originals, clean = run.x[run.show], run.ae_outputs["x01"][run.show]
    for p in res:
        r.metrics.setdefault("perturb", {})[f"{p.scale:g}"] = {
            "psnr_vs_clean": p.vs_clean,
            "psnr_vs_original": p.vs_original,
        }
        r.figure(
            plots.image_rows([("original", originals), ("reconstructed", clean), (f"+ {p.scale:g} std", p.shown)]),
            f"perturb_{p.scale:g}",
            f"Codes plus Gaussian noise of {p.scale:g} x the codes' per-dimension std: "
            f"{p.vs_clean:.1f} dB from the clean reconstruction (all held-out photos).",
        )
    r.table(
        ["noise scale (x std)", "PSNR vs clean reconstruction (dB)", "PSNR vs original (dB)"],
        [[p.scale, p.vs_clean, p.vs_original] for p in res],
    )
    r.figure(
        plots.curves(
            [p.scale for p in res],
            {"vs clean reconstruction": [p.vs_clean for p in res], "vs original": [p.vs_original for p in res]},
            "noise scale (x per-dimension std of the codes)",
            "PSNR (dB)",
        ),
        "perturb_psnr",
        "How far the decoded image moves as the code is perturbed.",
    )
    r.text(prose(res))


PART = Part("perturb", "perturbing the codes of held-out photos", compute, write)
