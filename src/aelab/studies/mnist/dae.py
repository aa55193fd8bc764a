"""Part ``dae``: denoising autoencoders (input + 0.4 x N(0,1)) with bottlenecks 2 and 32."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab import plots
from aelab.evaluate import mean_psnr, predict
from aelab.losses import add_gaussian_noise
from aelab.studies.mnist.recipes import NOISE_FACTOR
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.mnist.context import MnistRun

BOTTLENECKS = (2, 32)


@dataclass
class Denoised:
    bottleneck: int
    noisy_psnr: float
    denoised_psnr: float
    shown: torch.Tensor  # the denoised test images of one_per_class

    @property
    def gain(self) -> float:
        return self.denoised_psnr - self.noisy_psnr


@dataclass
class DaeResult:
    clean: torch.Tensor
    noisy: torch.Tensor
    models: list[Denoised]


def compute(run: MnistRun) -> DaeResult:
    gen = torch.Generator().manual_seed(run.cfg.seed + 7)  # one noise draw for both models
    noisy = add_gaussian_noise(run.x_test, NOISE_FACTOR, gen)
    noisy_shown = noisy.clamp(0, 1)
    models = []
    for b in BOTTLENECKS:
        denoised = predict(run.model(f"dae_b{b}"), noisy, lambda t: t, run.device)["x_hat"]
        noisy_psnr, den_psnr = mean_psnr(noisy_shown, run.x_test), mean_psnr(denoised, run.x_test)
        models.append(Denoised(b, noisy_psnr, den_psnr, denoised[run.one_per_class]))
    show = run.one_per_class
    return DaeResult(run.x_test[show], noisy_shown[show], models)


def prose(res: DaeResult, detail: str) -> str:
    """The finding: whether each denoiser raises or lowers PSNR, and whether the wider code helps."""
    narrow, wide = res.models[0], res.models[-1]

    def move(d: Denoised) -> str:
        return "raises" if d.gain > 0 else "lowers" if d.gain < 0 else "leaves"

    same = move(narrow) == move(wide)
    first = (
        f"Both denoisers {move(narrow).rstrip('s')} PSNR, from {narrow.noisy_psnr:.1f} dB to {narrow.denoised_psnr:.1f} dB "
        f"(bottleneck {narrow.bottleneck}) and {wide.denoised_psnr:.1f} dB (bottleneck {wide.bottleneck})."
        if same
        else f"The bottleneck-{narrow.bottleneck} denoiser {move(narrow)} PSNR from {narrow.noisy_psnr:.1f} dB to "
        f"{narrow.denoised_psnr:.1f} dB; the bottleneck-{wide.bottleneck} one {move(wide)} it, to {wide.denoised_psnr:.1f} dB."
    )
    if abs(wide.denoised_psnr - narrow.denoised_psnr) < 0.1:
        why = (
            "The two bottlenecks end within 0.1 dB of each other: at this training length the wider code buys nothing "
            "measurable."
        )
    elif wide.denoised_psnr > narrow.denoised_psnr:
        why = (
            f"The wider code is {wide.denoised_psnr - narrow.denoised_psnr:.1f} dB better: with two numbers a denoiser can "
            f"return little more than a typical example of the class it guesses, a wider code keeps more of {detail}."
        )
    else:
        why = (
            f"The wider code is not better here ({wide.denoised_psnr:.1f} vs {narrow.denoised_psnr:.1f} dB): under this "
            "much noise, or this little training, the extra numbers carry noise as readily as signal."
        )
    return (
        "The noise is drawn once with a fixed seed, so both models see the same corrupted test set. "
        + first
        + " "
        + why
    )


def write(run: MnistRun, res: DaeResult) -> None:
    r = run.report
    run.section(PART.title)
    rows = [("clean", res.clean), ("noisy", res.noisy)]
    for d in res.models:
        r.metric(f"dae.bottleneck_{d.bottleneck}", {"noisy_psnr": d.noisy_psnr, "denoised_psnr": d.denoised_psnr})
        rows.append((f"denoised (b={d.bottleneck})", d.shown))
    r.table(
        ["bottleneck", "noisy input PSNR (dB)", "denoised PSNR (dB)", "gain (dB)"],
        [[d.bottleneck, d.noisy_psnr, d.denoised_psnr, d.gain] for d in res.models],
    )
    r.figure(
        plots.image_rows(rows),
        "dae_denoising",
        f"Clean test {run.identity.plural()}, the noisy inputs (clipped to [0,1] for display and PSNR), and the two "
        "denoisers' outputs.",
    )
    r.text(prose(res, run.identity.detail))


PART = Part("dae", "Denoising autoencoders (input + 0.4 x N(0,1))", compute, write, models=("dae_b2", "dae_b32"))
