"""Part ``ae``: the lab's MLP autoencoder with a 2-D bottleneck, trained with BCE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aelab import plots
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.mnist.context import Assessment, MnistRun


@dataclass
class AeResult:
    scores: Assessment
    history: list[dict]


def compute(run: MnistRun) -> AeResult:
    scores = run.scores("ae2d")
    return AeResult(scores, run.session.histories["ae2d"])


def prose(res: AeResult, item: str) -> str:
    """The finding, from the numbers: how much two numbers keep, and how far above chance the classes separate."""
    psnr, knn = res.scores.test_psnr, res.scores.knn5_acc
    keeps = (
        "keeping the class and rough shape rather than the details"
        if psnr < 20
        else "keeping the shape and much of the detail"
    )
    separation = (
        "well above chance (10%): the classes occupy their own regions of the plane"
        if knn >= 0.5
        else "little above chance (10%): the classes overlap in the plane"
        if knn >= 0.2
        else "at about chance (10%): the plane does not separate the classes"
    )
    return (
        f"Two numbers per image must carry the whole {item}: the reconstructions reach {psnr:.1f} dB, {keeps}. "
        f"A 5-nearest-neighbour classifier on the codes is right {knn:.1%} of the time, {separation}."
    )


def write(run: MnistRun, res: AeResult) -> None:
    r, sc, show = run.report, res.scores, run.one_per_class
    run.section(PART.title)
    r.metric("ae2d", sc.public())
    r.table(
        ["test BCE / pixel", "test PSNR (dB)", "5-NN accuracy of codes"],
        [[sc.test_bce, sc.test_psnr, sc.knn5_acc]],
        digits=(3, 2, 3),
    )
    r.figure(
        plots.loss_curves({"ae2d": res.history}, "BCE per pixel"), "ae2d_loss", "Training and test loss per epoch."
    )
    r.figure(
        plots.image_rows([("original", run.x_test[show]), ("reconstructed", sc.x_hat[show])]),
        "ae2d_reconstructions",
        f"One test {run.identity.item} of each class and its reconstruction through two numbers.",
    )
    fig, (ax,) = plots.panels(1, 5)
    plots.scatter_codes(ax, sc.codes, run.labels, "test codes by class")
    r.figure(fig, "ae2d_latent_scatter", "The 2-D codes of the test images, coloured by class.")
    r.text(prose(res, run.identity.item))


PART = Part("ae", "Autoencoder with a 2-D bottleneck (BCE)", compute, write, models=("ae2d",))
