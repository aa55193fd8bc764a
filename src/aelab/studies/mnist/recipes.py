"""Every model of the MNIST study, each named once (see :class:`aelab.studies.recipe.Recipe`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aelab.losses import RECONSTRUCTION, cross_entropy, denoising, rae_l2, vae_elbo
from aelab.models.conv import MnistConvAutoencoder
from aelab.models.judge import DigitJudge
from aelab.models.mlp import MLPAutoencoder
from aelab.models.registry import build
from aelab.models.vae import VAE
from aelab.parametric_umap import ab_params, standardised, umap_objective, warm_start
from aelab.studies.recipe import Recipe

if TYPE_CHECKING:
    from aelab.studies.mnist.context import MnistRun
    from aelab.train import Objective

NOISE_FACTOR = 0.4  # the lab's denoising input: x + 0.4 N(0, 1)
RAE_BETA = 1.0  # weight of ||z||^2 / 2 per image, as the VAE weighs mu^2 / 2
# About 450k samples per autoencoder (8 epochs of full MNIST), within 8..20 epochs: the whole default
# study then fits its budget on a 2-core CPU (README: timings).
AE_BUDGET = {"samples": 450_000, "epoch_bounds": (8, 20)}
# The UMAP-regularised AE: 32 epochs on any folder. An epoch draws a fixed share of the graph's edges whatever
# its size (steps and edges both grow with the images), and it is the edge draws that organise the plane
# (benchmarks/RESULTS.md, issue 26); --umap-epochs sets another count.
UMAP_AE_BUDGET = {"samples": 1_920_000, "epoch_bounds": (32, 32)}
UMAP_WARM_STEPS = 2000  # encoder steps (batch 256) regressing onto umap-learn's layout before fit (RESULTS.md)
# The judge: about 240k samples (4 epochs of full MNIST, enough for ~99%), within 4..30 epochs.
JUDGE_BUDGET = {"samples": 240_000, "epoch_bounds": (4, 30)}


def mlp(run: MnistRun, bottleneck: int = 2, activation: str = "relu") -> MLPAutoencoder:
    """The study's MLP autoencoder: ``hidden`` widths to a ``bottleneck``, mirrored."""
    shape = run.data.shape
    return build(MLPAutoencoder, image_shape=shape, hidden=run.hidden, bottleneck=bottleneck, activation=activation)


def bce(run: MnistRun) -> Objective:
    """The lab's loss, looked up when a model is built (not at import), so one table names it for every recipe."""
    return RECONSTRUCTION["bce"]


def _ae(name: str, key: tuple[str, ...], label: str, short: str = "", **kw) -> Recipe:
    """An autoencoder recipe with the study's budget: by default the MLP with BCE, which ``--jobs`` may train
    in a worker process (``parallel``: linear layers give the same bits at any thread count)."""
    kw.setdefault("build", lambda run: mlp(run))
    kw.setdefault("objective", bce)
    kw.setdefault("parallel", True)
    return Recipe(name, metrics_key=key, label=label, short=short, **(AE_BUDGET | kw))


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        _ae("ae2d", (), "AE", "ae2d"),
        _ae("dae_b2", ("dae", "bottleneck_2"), "DAE (bottleneck 2)", "dae_b2", objective=lambda run: denoising("bce", NOISE_FACTOR)),
        _ae("dae_b32", ("dae", "bottleneck_32"), "DAE (bottleneck 32)", build=lambda run: mlp(run, 32),
            objective=lambda run: denoising("bce", NOISE_FACTOR)),
        _ae("ae2d_weight_decay", ("l2", "weight_decay"), "AE + weight decay", "ae2d_weight_decay",
            settings=lambda run: {"weight_decay": run.cfg.weight_decay}),
        _ae("ae2d_l2_penalty", ("l2", "penalty"), "AE + L2 penalty", "ae2d_l2_penalty",
            settings=lambda run: {"l2_penalty": run.cfg.l2_lambda}),
        _ae("bottleneck_128", ("explore", "bottleneck_128"), "MLP, bottleneck 128", build=lambda run: mlp(run, 128)),
        _ae("mse_loss", ("explore", "mse_loss"), "MLP, MSE loss", objective=lambda run: RECONSTRUCTION["mse"]),
        _ae("sigmoid_everywhere", ("explore", "sigmoid_everywhere"), "MLP, sigmoid hidden layers",
            build=lambda run: mlp(run, 2, "sigmoid")),
        # fp32 for the CNN on CPU: bf16 convolutions are no faster at this size (benchmarks/RESULTS.md); not
        # parallel: a convolution's backward pass sums in an order that depends on the thread count
        _ae("cnn", ("explore", "cnn"), "CNN", build=lambda run: build(MnistConvAutoencoder, image_shape=run.data.shape, bottleneck=2),
            settings=lambda run: {"cpu_amp": False}, parallel=False),
        _ae("vae2d", ("compare", "vae"), "VAE", "vae",
            build=lambda run: build(VAE, image_shape=run.data.shape, hidden=run.hidden, bottleneck=2),
            objective=lambda run: vae_elbo()),
        _ae("rae2d_l2", ("compare", "rae_l2"), "RAE-L2", "rae_l2",
            objective=lambda run: rae_l2(RAE_BETA, run.cfg.l2_lambda)),
        _ae("umap_ae", ("compare", "umap_ae"), "UMAP-regularised AE", "umap_ae",
            objective=lambda run: umap_objective(run.umap_graph, run.data.train, *ab_params(), run.cfg.umap_weight),
            warm_start=lambda run, model: warm_start(
                model, run.data.train, standardised(run.umap_fit.embedding_), steps=UMAP_WARM_STEPS, seed=run.cfg.seed),
            epochs_option="umap_epochs", **UMAP_AE_BUDGET),
        Recipe("judge", build=lambda run: DigitJudge(run.data.shape), objective=lambda run: cross_entropy,
               follows_epochs_flag=False, supervised=True, label="digit judge", **JUDGE_BUDGET),
    )
}  # fmt: skip
