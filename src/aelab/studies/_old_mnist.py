"""The MNIST study: the lab's experiment one, part by part, each a section of report.md.

ae       MLP autoencoder, 2-D bottleneck, BCE
dae      denoising autoencoders (input + 0.4 N(0,1)) with bottleneck 2 and 32
manifold decode a uniform grid of the 2-D latent plane
l2       the AE again with weight decay and with an explicit L2 penalty, side by side
explore  bottleneck 128, MSE loss, sigmoid everywhere, CNN autoencoder
compare  (opt-in) digit judge, latent quality of every 2-D model, generation by sampler (studies/compare.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aelab import plots
from aelab.data.base import ImageData
from aelab.data.mnist import load_mnist
from aelab.data.scaling import unit
from aelab.evaluate import knn_accuracy, mean_psnr, predict
from aelab.latent import latent_grid
from aelab.losses import RECONSTRUCTION, add_gaussian_noise, denoising, with_weight_penalty
from aelab.models.conv import MnistConvAutoencoder
from aelab.models.mlp import MLPAutoencoder
from aelab.models.registry import build
from aelab.speed import use_amp
from aelab.studies.base import Session
from aelab.train import TrainConfig

PARTS = ("ae", "dae", "manifold", "l2", "explore", "compare")
DEFAULT_PARTS = PARTS[:5]  # the lab's own parts; compare is asked for by name
NOISE_FACTOR = 0.4
# where each model's numbers sit in metrics.json (default: its checkpoint name), for `aelab evaluate`
METRICS_KEYS = {
    "dae_b2": ["dae", "bottleneck_2"],
    "dae_b32": ["dae", "bottleneck_32"],
    "ae2d_weight_decay": ["l2", "weight_decay"],
    "ae2d_l2_penalty": ["l2", "penalty"],
}


@dataclass
class MnistConfig:
    data_dir: Path | None = None
    out: Path = Path("runs/mnist")
    epochs: int | None = None  # None: chosen from the training-set size (see auto_epochs)
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    device: str = "auto"
    parts: tuple[str, ...] = DEFAULT_PARTS
    hidden: tuple[int, ...] = (1024, 512, 128)
    grid_size: int = 20
    grid_range: float = 5.0
    weight_decay: float = 1e-4
    l2_lambda: float = 1e-5
    quick: bool = False
    resume: bool = False
    overwrite: bool = False
    compile: bool = False
    allow_download: bool = True
    extra: dict = field(default_factory=dict)


def auto_epochs(n_train: int) -> int:
    """About 450k samples per model (8 epochs of full MNIST), within 8..20 epochs.

    Sized so the whole default study fits its budget on a 2-core CPU: 3 minutes on the built-in
    4,000-digit sample (20 epochs), 20 minutes on full MNIST (8 epochs); see the README's timings.
    """
    return int(min(20, max(8, round(450_000 / max(1, n_train)))))


def _subset(data: ImageData, n_train: int, n_test: int) -> ImageData:
    return ImageData(
        data.train[:n_train],
        data.test[:n_test],
        data.train_labels[:n_train],
        data.test_labels[:n_test],
        data.source,
        dict(data.info),
    )


class _Assessor:
    """Scores one trained autoencoder on the held-out split (and its codes on the training split)."""

    def __init__(self, data: ImageData, device: torch.device) -> None:
        self.data = data
        self.device = device
        self.x_test = unit(data.test.clone())

    def __call__(self, model: nn.Module) -> dict:
        out = predict(model, self.data.test, unit, self.device)
        train_codes = predict(model, self.data.train, unit, self.device)["z"].numpy()
        codes = out["z"].numpy()
        bce = float(F.binary_cross_entropy(out["x_hat"].clamp(1e-7, 1 - 1e-7), self.x_test))
        return {
            "test_bce": bce,
            "test_psnr": mean_psnr(out["x_hat"], self.x_test),
            "knn5_acc": knn_accuracy(train_codes, self.data.train_labels.numpy(), codes, self.data.test_labels.numpy()),
            "latent_std": codes.std(axis=0).tolist() if codes.shape[1] <= 2 else float(codes.std(axis=0).mean()),
            "_codes": codes,
            "_train_codes": train_codes,
            "_x_hat": out["x_hat"],
        }


def _public(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if not k.startswith("_")}


def run_mnist(cfg: MnistConfig) -> Path:
    """Run the study and return the output folder."""
    s = Session(cfg.out, "aelab: deep autoencoders on MNIST", cfg.device, cfg.seed, cfg.resume, cfg.overwrite)
    with s.guard():
        _run(cfg, s)
    return s.run.path


def _run(cfg: MnistConfig, s: Session) -> None:
    data = load_mnist(cfg.data_dir, allow_download=cfg.allow_download)
    if data.train_labels is None or data.test_labels is None:
        raise ValueError("MNIST data without labels")
    if cfg.quick:
        data = _subset(data, 1024, 256)
    epochs = cfg.epochs or (2 if cfg.quick else auto_epochs(len(data.train)))
    hidden = (64, 32) if cfg.quick else cfg.hidden
    # bf16 autocast on CPUs with native bf16 (2.6x the fp32 loop's speed there, same test loss; see benchmarks/)
    tc = TrainConfig(
        epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, compile=cfg.compile, cpu_amp=True
    )
    r = s.report
    assess = _Assessor(data, s.device)
    shape = data.shape
    x_test = assess.x_test
    labels = data.test_labels.numpy()
    show = x_test[_first_of_each_class(labels)]

    r.text(
        f"Data: **{data.source}**, {len(data.train):,} training and {len(data.test):,} test images "
        f"({shape[1]}x{shape[2]}). Every number below is on the test images. Each model trains for "
        f"{epochs} epochs (batch {cfg.batch_size}, Adam, lr {cfg.lr:g} with warm-up and cosine decay, "
        f"seed {cfg.seed}). Hidden widths {'-'.join(map(str, (784, *hidden)))}-bottleneck and mirror. "
        + (
            "Training steps use bf16 autocast (weights, optimiser and every evaluation stay fp32)."
            if use_amp(tc, s.device)
            else "Training is full fp32."
        )
    )
    r.metric("data", data.summary())
    r.metric("config", {"epochs": epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "hidden": list(hidden)})

    def mlp(bottleneck: int = 2, activation: str = "relu") -> MLPAutoencoder:
        return build(MLPAutoencoder, image_shape=shape, hidden=hidden, bottleneck=bottleneck, activation=activation)

    recipes = {  # checkpoint name -> (model, objective, training config); shared by the parts that use them
        "ae2d": (mlp, RECONSTRUCTION["bce"], tc),
        **{f"dae_b{b}": (lambda b=b: mlp(b), denoising("bce", NOISE_FACTOR), tc) for b in (2, 32)},
        "ae2d_weight_decay": (mlp, RECONSTRUCTION["bce"], replace(tc, weight_decay=cfg.weight_decay)),
        "ae2d_l2_penalty": (mlp, with_weight_penalty(RECONSTRUCTION["bce"], cfg.l2_lambda), tc),
    }
    trained: dict[str, nn.Module] = {}

    def lab_model(name: str) -> nn.Module:
        """One of the study's models, trained (or reloaded from its checkpoint) once per run."""
        if name not in trained:
            make, objective, train_cfg = recipes[name]
            key = METRICS_KEYS.get(name)
            trained[name] = s.train(name, make(), objective, data.train, data.test, unit, train_cfg, metrics_key=key)
        return trained[name]

    needs_ae = any(p in cfg.parts for p in ("ae", "manifold", "l2", "explore"))
    ae = lab_model("ae2d") if needs_ae else None
    ae_scores = assess(ae) if ae is not None else None
    extent = (-cfg.grid_range, cfg.grid_range)
    grid = latent_grid(cfg.grid_size, *extent)

    if "ae" in cfg.parts:
        r.section("1. Autoencoder with a 2-D bottleneck (BCE)")
        r.metric("ae2d", _public(ae_scores))
        r.table(
            ["test BCE / pixel", "test PSNR (dB)", "5-NN accuracy of codes"],
            [[ae_scores["test_bce"], ae_scores["test_psnr"], ae_scores["knn5_acc"]]],
            digits=3,
        )
        r.figure(
            plots.loss_curves({"ae2d": s.histories["ae2d"]}, "BCE per pixel"),
            "ae2d_loss",
            "Training and test loss per epoch.",
        )
        r.figure(
            plots.image_rows(
                [("original", show), ("reconstructed", ae_scores["_x_hat"][_first_of_each_class(labels)])]
            ),
            "ae2d_reconstructions",
            "One test digit of each class and its reconstruction through two numbers.",
        )
        fig, (ax,) = plots.panels(1, 5)
        plots.scatter_codes(ax, ae_scores["_codes"], labels, "test codes by class")
        r.figure(fig, "ae2d_latent_scatter", "The 2-D codes of the test images, coloured by digit.")
        r.text(
            f"Two numbers per image must carry the whole digit: the reconstructions reach "
            f"{ae_scores['test_psnr']:.1f} dB, keeping the class and rough shape rather than the details. "
            f"A 5-nearest-neighbour classifier on the codes is right {ae_scores['knn5_acc']:.1%} of the time "
            "(chance: 10%), a measure of how well the classes separate in the plane."
        )

    if "dae" in cfg.parts:
        r.section("2. Denoising autoencoders (input + 0.4 x N(0,1))")
        gen = torch.Generator().manual_seed(cfg.seed + 7)
        noisy = add_gaussian_noise(x_test, NOISE_FACTOR, gen)
        noisy_shown = noisy.clamp(0, 1)
        rows = [("clean", show), ("noisy", noisy_shown[_first_of_each_class(labels)])]
        table = []
        for b in (2, 32):
            model = lab_model(f"dae_b{b}")
            denoised = _predict_float(model, noisy, s.device)["x_hat"]
            noisy_psnr, den_psnr = mean_psnr(noisy_shown, x_test), mean_psnr(denoised, x_test)
            r.metric(f"dae.bottleneck_{b}", {"noisy_psnr": noisy_psnr, "denoised_psnr": den_psnr})
            rows.append((f"denoised (b={b})", denoised[_first_of_each_class(labels)]))
            table.append([b, noisy_psnr, den_psnr, den_psnr - noisy_psnr])
        r.table(["bottleneck", "noisy input PSNR (dB)", "denoised PSNR (dB)", "gain (dB)"], table)
        r.figure(
            plots.image_rows(rows),
            "dae_denoising",
            "Clean test digits, the noisy inputs (clipped to [0,1] for display and PSNR), and the two denoisers' outputs.",
        )
        r.text(
            "The noise is drawn once with a fixed seed, so both models see the same corrupted test set. "
            f"The denoisers raise PSNR from {table[0][1]:.1f} dB to {table[0][2]:.1f} dB (bottleneck 2) and "
            f"{table[1][2]:.1f} dB (bottleneck 32): with two numbers a denoiser can return little more than a "
            "typical digit of the class it guesses; a wider code keeps more of the writer's stroke."
        )

    if "manifold" in cfg.parts:
        r.section(
            f"3. Decoding a uniform grid of the latent plane ({cfg.grid_size}x{cfg.grid_size} over [{extent[0]:g}, {extent[1]:g}]^2)"
        )
        inside = _share_inside(ae_scores["_codes"], extent)
        r.metric("manifold", {"grid_size": cfg.grid_size, "range": list(extent), "test_codes_inside_grid": inside})
        r.figure(
            _manifold_figure({"AE": (ae, ae_scores)}, grid, cfg.grid_size, extent, labels, s.device),
            "manifold",
            "Left: test codes with the sampled box dashed. Right: the decoded grid.",
        )
        r.text(
            f"{inside:.0%} of the test codes fall inside the sampled box. Grid points between class "
            "regions decode to blends of digits, and points far from any code decode to smeared shapes: "
            "the autoencoder never learned what lies there, which is why uniform sampling is a poor generator."
        )

    if "l2" in cfg.parts:
        r.section("4. L2 regularisation: weight decay vs. an explicit penalty")
        wd = lab_model("ae2d_weight_decay")
        pen = lab_model("ae2d_l2_penalty")
        models = {
            "none": (ae, ae_scores),
            f"weight decay {cfg.weight_decay:g}": (wd, assess(wd)),
            f"penalty lambda {cfg.l2_lambda:g}": (pen, assess(pen)),
        }
        rows = []
        for key, (name, (_, sc)) in zip(("none", "weight_decay", "penalty"), models.items()):
            if key != "none":
                r.metric(f"l2.{key}", _public(sc))
            rows.append([name, sc["test_bce"], sc["test_psnr"], sc["knn5_acc"], *sc["latent_std"]])
        r.metric("l2.settings", {"weight_decay": cfg.weight_decay, "penalty_lambda": cfg.l2_lambda})
        r.table(
            ["regularisation", "test BCE", "test PSNR (dB)", "5-NN acc.", "latent std z1", "latent std z2"],
            rows,
            digits=3,
        )
        r.figure(
            _manifold_figure(models, grid, cfg.grid_size, extent, labels, s.device),
            "l2_comparison",
            "Same seed, same data: codes (top) and decoded grids (bottom) without and with L2.",
        )
        spread = [float(np.mean(sc["latent_std"])) for _, sc in models.values()]
        r.text(
            "Weight decay adds `wd * w` to every gradient inside Adam; the penalty adds "
            "`lambda * sum(w^2)` to the loss, so its gradient is `2 * lambda * w` and Adam rescales it "
            "per parameter. Both pull the weights towards zero, but in a 2-D autoencoder the decoder can "
            "undo any scale of the codes, so the effect on the latent plane is not fixed in advance. Here the "
            f"codes' mean spread is {spread[1] / spread[0]:.2f}x (weight decay) and {spread[2] / spread[0]:.2f}x "
            f"(penalty) the unregularised one, and the 5-NN accuracy moves from {rows[0][3]:.1%} to "
            f"{rows[1][3]:.1%} and {rows[2][3]:.1%}."
        )

    if "explore" in cfg.parts:
        r.section("5. Explorations: bottleneck, loss, activation, architecture")
        variants = {
            "bottleneck_128": ("MLP", 128, "BCE", "ReLU", lambda: mlp(128), "bce"),
            "mse_loss": ("MLP", 2, "MSE", "ReLU", lambda: mlp(2), "mse"),
            "sigmoid_everywhere": ("MLP", 2, "BCE", "sigmoid", lambda: mlp(2, "sigmoid"), "bce"),
            "cnn": (
                "CNN",
                2,
                "BCE",
                "ReLU",
                lambda: build(MnistConvAutoencoder, image_shape=shape, bottleneck=2),
                "bce",
            ),
        }
        rows = [
            [
                "baseline (ae2d)",
                "MLP",
                2,
                "BCE",
                "ReLU",
                ae_scores["test_psnr"],
                ae_scores["test_bce"],
                ae_scores["knn5_acc"],
            ]
        ]
        recon = [("original", show), ("baseline", ae_scores["_x_hat"][_first_of_each_class(labels)])]
        r.metric("explore.baseline", _public(ae_scores))
        for name, (arch, b, loss, act, make, objective) in variants.items():
            # CPU bf16 convolutions pay minutes of one-off kernel set-up per shape (531 s for the first CNN
            # epoch on full MNIST, then 14 s per epoch); fp32 runs the small CNN at ~30 s per epoch from the start
            variant_tc = replace(tc, cpu_amp=False) if arch == "CNN" else tc
            model = s.train(
                name,
                make(),
                RECONSTRUCTION[objective],
                data.train,
                data.test,
                unit,
                variant_tc,
                metrics_key=["explore", name],
            )
            sc = assess(model)
            r.metric(f"explore.{name}", _public(sc))
            rows.append([name, arch, b, loss, act, sc["test_psnr"], sc["test_bce"], sc["knn5_acc"]])
            recon.append((name, sc["_x_hat"][_first_of_each_class(labels)]))
        r.table(
            ["variant", "model", "bottleneck", "loss", "hidden act.", "test PSNR (dB)", "test BCE", "5-NN acc."],
            rows,
            digits=3,
        )
        r.figure(plots.image_rows(recon), "explore_reconstructions", "The same test digits through each variant.")
        base = ae_scores["test_psnr"]
        deltas = "; ".join(f"{row[0]} {row[5] - base:+.1f} dB" for row in rows[1:])
        r.text(
            f"Test PSNR against the baseline's {base:.1f} dB, same data and training budget: {deltas}. "
            "A 128-D code turns the task from visualisation into compression and shows what the 2-D bottleneck "
            "costs; MSE and BCE optimise different pixel losses of the same reconstruction; sigmoid hidden "
            "layers saturate and slow learning; the CNN shares weights across the image."
        )

    if "compare" in cfg.parts:
        from aelab.studies.compare import run_compare

        run_compare(s, cfg, data, tc, hidden, lab_model, assess)

    r.section("Training curves")
    r.figure(plots.loss_curves(s.histories), "loss_curves", "Train (solid) and test (dashed) loss of every model.")
    r.provenance(cfg.seed, s.device)
    r.write()


def _first_of_each_class(labels: np.ndarray) -> list[int]:
    return [int(np.flatnonzero(labels == c)[0]) for c in range(10) if (labels == c).any()]


def _share_inside(codes: np.ndarray, extent: tuple[float, float]) -> float:
    return float(np.mean(np.all((codes >= extent[0]) & (codes <= extent[1]), axis=1)))


@torch.no_grad()
def _predict_float(model: nn.Module, x: torch.Tensor, device: torch.device, bs: int = 512) -> dict[str, torch.Tensor]:
    return predict(model, x, lambda t: t, device, bs)


@torch.no_grad()
def _manifold_figure(
    models: dict, grid: torch.Tensor, n: int, extent: tuple[float, float], labels: np.ndarray, device: torch.device
):
    fig, axes = plots.panels(2 * len(models), 4.2, ncols=len(models))
    for i, (name, (model, scores)) in enumerate(models.items()):
        plots.scatter_codes(axes[i], scores["_codes"], labels, f"{name}: test codes", extent)
        decoded = model.decode(grid.to(device)).float().cpu()
        plots.show_tiled(axes[len(models) + i], decoded, n, f"{name}: decoded grid", extent)
    fig.tight_layout()
    return fig
