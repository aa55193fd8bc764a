"""Part ``ae``: the plain conv autoencoder (16x8x8 latent by default), MSE on images in [-1, 1]; the default
architecture beside the lab's layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aelab import plots
from aelab.models.jscc import macs_per_image
from aelab.studies.dogs.recipes import ARCH_NAME, LAB_PREFIX
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

LAB_PSNR = 26.0  # the lab's report, on its own training images (Kaggle's all-dogs)


ARCH_TEXT = {
    "lab": "Encoder: conv 3->48 (3x3) ReLU maxpool, conv 48->96 BN ReLU maxpool, conv 96->192 BN ReLU maxpool, "
    "1x1 conv 192->{c} BN ReLU. Decoder: 1x1 conv {c}->192 BN ReLU, then (nearest upsample x2, 3x3 conv, BN, ReLU) "
    "to 96 and 48 channels, and upsample, 3x3 conv to 3, Tanh.",
    "jscc": "Encoder: 5x5 conv stride 2 to 32 channels, GDN; 3x3 conv stride 2 to 64, GDN, a residual block; 3x3 "
    "conv stride 2 to 128, GDN, two residual blocks (PReLU); an SNR attention module (channel gains from the "
    "features and the channel SNR, as in ADJSCC); 3x3 conv to {c}. The code is power-normalised per photo, as it "
    "would be sent. Decoder: the mirror image with sub-pixel (pixel-shuffle) upsampling and PReLU, output clamped "
    "to [-1, 1] with a straight-through gradient. Resampling is learned (strided and sub-pixel convolutions) "
    "instead of max-pooling and nearest upsampling, and most depth sits at 8x8, where a convolution is cheap.",
}


@dataclass
class ArchRow:
    """One architecture's plain AE: its held-out scores and its cost."""

    arch: str
    scores: dict[str, float]
    macs: int  # multiply-accumulates per image (forward)
    epochs: int
    train_images: int


@dataclass
class AeResult:
    scores: dict[str, float]
    history: list[dict]
    pixels: int
    arch: str = "lab"
    rows: list[ArchRow] = field(default_factory=list)  # the default architecture first

    @property
    def gap(self) -> float:
        """Relative gap between the final held-out and training losses."""
        last = self.history[-1]
        return (last["test_loss"] - last["train_loss"]) / max(last["train_loss"], 1e-12)


def compute(run: DogsRun) -> AeResult:
    rows = []
    for prefix, arch in (("", run.cfg.arch), (LAB_PREFIX, "lab")):
        name = f"{prefix}ae"
        if name not in run.recipes:
            continue
        model = run.model(name)
        scores = run.ae_scores if not prefix else run.pixel_scores(run.outputs(model)["x01"])
        epochs = run.epochs(run.recipes[name])
        rows.append(
            ArchRow(arch, scores, macs_per_image(model, run.data.shape[-1]), epochs, epochs * len(run.data.train))
        )
    pixels = 3 * run.data.shape[1] * run.data.shape[2]
    return AeResult(run.ae_scores, run.session.histories["ae"], pixels, run.cfg.arch, rows)


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
    versus = ""
    if len(res.rows) > 1:
        a, b = res.rows[0], res.rows[1]
        diff = a.scores["test_psnr"] - b.scores["test_psnr"]
        versus = (
            f" The {ARCH_NAME[a.arch]} {'gains' if diff >= 0 else 'loses'} {abs(diff):.2f} dB against the lab's "
            f"layout ({a.scores['test_psnr']:.2f} vs {b.scores['test_psnr']:.2f} dB, SSIM "
            f"{a.scores['test_ssim']:.3f} vs {b.scores['test_ssim']:.3f}) at {a.macs / b.macs:.2f}x its "
            f"multiply-accumulates per image and {a.train_images / max(b.train_images, 1):.2f}x its training images."
        )
    return (
        f"The lab reported about {LAB_PSNR:.0f} dB on its own training images (Kaggle's all-dogs); here "
        f"{psnr:.1f} dB on photos the model never saw ({vs_lab} the lab's figure). The final training and held-out "
        f"losses are {last['train_loss']:.4f} and {last['test_loss']:.4f}: {fit}. {detail}{versus}"
    )


def write(run: DogsRun, res: AeResult) -> None:
    r, (c, h, w), sc = run.report, run.latent, res.scores
    run.section(f"Conv autoencoder, latent {c}x{h}x{w} ({run.code_dim:,} numbers)")
    r.metric("arch", res.arch)
    r.metric("ae", sc)
    for row in res.rows[1:]:
        r.metric("lab.ae", row.scores)
    r.text(
        ARCH_TEXT[res.arch].format(c=c)
        + f" {run.code_dim:,} numbers for {res.pixels:,} pixel values: {res.pixels / run.code_dim:.0f}x fewer."
        + (f" The lab's own layout is trained beside it at its own default budget: {ARCH_TEXT['lab'].format(c=c)}"
           if len(res.rows) > 1 else "")
    )  # fmt: skip
    r.table(
        ["architecture", "test MSE ([0,1])", "test PSNR (dB)", "test SSIM", "MMACs / image", "epochs", "training images"],
        [[ARCH_NAME[x.arch], x.scores["test_mse"], x.scores["test_psnr"], x.scores["test_ssim"], x.macs / 1e6,
          x.epochs, x.train_images] for x in res.rows],
        (0, 4, 2, 3, 1, 0, 0),  # MSE to 1e-4, dB to 0.01, SSIM to 0.001, MMACs to 0.1
    )  # fmt: skip
    r.figure(
        plots.loss_curves({"ae": res.history}, "MSE on [-1, 1]"),
        "ae_loss",
        "Training and held-out loss per epoch of the default architecture's plain AE (MSE on the [-1, 1] scale, "
        "4x the [0, 1] MSE).",
    )
    r.text(prose(res, run.code_dim))


PART = Part("ae", "the plain conv autoencoder (default layout beside the lab's), MSE", compute, write)
