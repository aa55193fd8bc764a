"""Part ``ae``: the lab's conv autoencoder (16x8x8 latent by default), MSE on images in [-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aelab import plots
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

LAB_PSNR = 26.0  # the lab's report, on its own training images (Kaggle's all-dogs)


@dataclass
class AeResult:
    scores: dict[str, float]
    history: list[dict]
    pixels: int

    @property
    def gap(self) -> float:
        """Relative gap between the final held-out and training losses."""
        last = self.history[-1]
        return (last["test_loss"] - last["train_loss"]) / max(last["train_loss"], 1e-12)


def compute(run: DogsRun) -> AeResult:
    return AeResult(run.ae_scores, run.session.histories["ae"], 3 * run.data.shape[1] * run.data.shape[2])


def prose(res: AeResult, code_dim: int) -> str:
    psnr = res.scores["test_psnr"]
    last = res.history[-1]
    ratio = res.pixels / code_dim
    if res.gap > 0.1:
        fit = "the held-out loss is clearly higher, so the model has begun to memorise its training photos"
    elif res.gap < -0.1:
        fit = "the held-out loss is lower (the training loss averages the whole epoch, early steps included)"
    else:
        fit = (
            f"they are close, so the model is limited by its training time and its {ratio:.0f}x-smaller code, "
            "not by memorising the training photos"
        )
    vs_lab = "below" if psnr < LAB_PSNR else "above"
    detail = (
        "Reconstructions keep colour, pose and layout but lose fur texture and fine edges: the squared error "
        "rewards the average of the plausible details, which is a blur."
        if psnr < 25
        else "At this PSNR reconstructions keep much of the texture as well as colour and layout."
    )
    return (
        f"The lab reported about {LAB_PSNR:.0f} dB on its own training images (Kaggle's all-dogs); here "
        f"{psnr:.1f} dB on photos the model never saw ({vs_lab} the lab's figure). The final training and held-out "
        f"losses are {last['train_loss']:.4f} and {last['test_loss']:.4f}: {fit}. {detail}"
    )


def write(run: DogsRun, res: AeResult) -> None:
    r, (c, h, w), sc = run.report, run.latent, res.scores
    run.section(f"Conv autoencoder, latent {c}x{h}x{w} ({run.code_dim:,} numbers)")
    r.metric("ae", sc)
    r.text(
        "Encoder: conv 3->48 (3x3) ReLU maxpool, conv 48->96 BN ReLU maxpool, conv 96->192 BN ReLU "
        f"maxpool, 1x1 conv 192->{c} BN ReLU. Decoder: 1x1 conv {c}->192 BN ReLU, then "
        "(nearest upsample x2, 3x3 conv, BN, ReLU) to 96 and 48 channels, and upsample, 3x3 conv to 3, "
        f"Tanh. {run.code_dim:,} numbers for {res.pixels:,} pixel values: {res.pixels / run.code_dim:.0f}x fewer."
    )
    r.table(
        ["test MSE ([0,1])", "test PSNR (dB)", "test SSIM"], [[sc["test_mse"], sc["test_psnr"], sc["test_ssim"]]], 4
    )
    r.figure(
        plots.loss_curves({"ae": res.history}, "MSE on [-1, 1]"),
        "ae_loss",
        "Training and held-out loss per epoch (MSE on the [-1, 1] scale, 4x the [0, 1] MSE).",
    )
    r.text(prose(res, run.code_dim))


PART = Part("ae", "the lab's conv autoencoder, MSE", compute, write)
