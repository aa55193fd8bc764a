"""Part ``explore``: bottleneck 128, MSE loss, sigmoid hidden layers and a CNN against the lab's AE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aelab import plots
from aelab.report import listing
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.mnist.context import Assessment, MnistRun

# recipe name -> (model, bottleneck, loss, hidden activation) as the table shows them
VARIANTS = {
    "bottleneck_128": ("MLP", 128, "BCE", "ReLU"),
    "mse_loss": ("MLP", 2, "MSE", "ReLU"),
    "sigmoid_everywhere": ("MLP", 2, "BCE", "sigmoid"),
    "cnn": ("CNN", 2, "BCE", "ReLU"),
}
WHY = {
    "bottleneck_128": "a 128-D code turns the task from visualisation into compression",
    "mse_loss": "MSE and BCE optimise different pixel losses of the same reconstruction",
    "sigmoid_everywhere": "sigmoid hidden layers saturate and pass smaller gradients",
    "cnn": "the CNN shares weights across the image",
}


@dataclass
class ExploreResult:
    baseline: Assessment
    variants: dict[str, Assessment]


def compute(run: MnistRun) -> ExploreResult:
    return ExploreResult(run.scores("ae2d"), {name: run.scores(name) for name in VARIANTS})


def prose(res: ExploreResult, tolerance: float = 0.1) -> str:
    """Each variant's PSNR against the baseline, each verdict chosen by the sign of the difference."""
    base = res.baseline.test_psnr
    parts = []
    for name, sc in res.variants.items():
        d = sc.test_psnr - base
        verdict = "better" if d > tolerance else "worse" if d < -tolerance else "the same, within 0.1 dB"
        parts.append(f"{name} {d:+.1f} dB ({verdict}: {WHY[name]})")
    best = max(res.variants, key=lambda k: res.variants[k].test_psnr)
    top = (
        f"Best: {best} ({res.variants[best].test_psnr:.1f} dB)."
        if res.variants[best].test_psnr > base
        else "No variant beats the baseline."
    )
    return (
        f"Test PSNR against the baseline's {base:.1f} dB, same data and training budget: {listing(parts, '; ')}. {top}"
    )


def write(run: MnistRun, res: ExploreResult) -> None:
    r, show = run.report, run.one_per_class
    run.section(PART.title)
    base = res.baseline
    rows = [["baseline (ae2d)", "MLP", 2, "BCE", "ReLU", base.test_psnr, base.test_bce, base.knn5_acc]]
    recon = [("original", run.x_test[show]), ("baseline", base.x_hat[show])]
    r.metric("explore.baseline", base.public())
    for name, sc in res.variants.items():
        r.metric(f"explore.{name}", sc.public())
        rows.append([name, *VARIANTS[name], sc.test_psnr, sc.test_bce, sc.knn5_acc])
        recon.append((name, sc.x_hat[show]))
    r.table(
        ["variant", "model", "bottleneck", "loss", "hidden act.", "test PSNR (dB)", "test BCE", "5-NN acc."],
        rows,
        (0, 0, 0, 0, 0, 2, 3, 3),
    )
    r.figure(plots.image_rows(recon), "explore_reconstructions", "The same test images through each variant.")
    r.text(prose(res))


PART = Part(
    "explore", "Explorations: bottleneck, loss, activation, architecture", compute, write, models=("ae2d", *VARIANTS)
)
