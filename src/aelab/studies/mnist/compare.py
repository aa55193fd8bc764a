"""Part ``compare`` (opt-in): the lab's 2-D latent spaces measured instead of looked at.

Section 1 of the part, the judge: a small CNN trained on the study's training split; a decoded image
"is a digit" (an image of a class) when the judge's top probability reaches 0.9.
Section 2, latent quality: every 2-D model of the study (AE, AE + weight decay, AE + L2 penalty,
DAE), a VAE, an RAE-L2 and the UMAP-regularised AE on the same MLP, PCA as the floor and umap-learn's
own embedding (no decoder) as the reference: test 1-NN and 5-NN accuracy of the codes,
trustworthiness (k=5 and k=10) and test reconstruction MSE/PSNR/BCE; the same rows on Parametric UMAP's
own protocol (kNN fitted on the first 50,000 training codes, trustworthiness on the first 10,000 training
images) beside the paper's numbers; then the manifold figure of the AE beside the UMAP-regularised AE.
Section 3, generation: per model and sampler, 1,000 codes decoded and judged: share judged an image of
a class, class coverage and the entropy of the judged classes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from aelab import plots
from aelab.data.scaling import unit
from aelab.evaluate import PAPER_TRUST_K, PixelNeighbourRanks, decode, judged_samples, paper_protocol, paper_split
from aelab.latent import latent_grid
from aelab.report import listing
from aelab.studies.mnist.sampling import NAMES, SAMPLERS, PCAAutoencoder, sample_codes
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.mnist.context import Assessment, MnistRun

THRESHOLD = 0.9  # top judge probability for "is a digit"
JUDGE_TARGET = 0.985  # test accuracy the judge must reach on full MNIST
MIN_CLASS_SHARE = 0.05  # a class is covered when it holds >= 5% of the samples
N_CODES = 1000
QUICK_CODES = 256  # --quick: a smoke test, not a result
TRUST_IMAGES = 10_000  # the pixel-rank matrix is n x n int32: 0.4 GB for MNIST's whole test set
TRUST_KS = (5, 10)
CONTENDERS = ("ae2d", "ae2d_weight_decay", "ae2d_l2_penalty", "dae_b2", "vae2d", "rae2d_l2", "umap_ae")  # recipes
PCA_LABEL = "PCA-2D (floor)"
UMAP_LABEL = "UMAP (umap-learn, no decoder)"
REFERENCES = ("pca", "umap")  # rows that are not the study's networks
MANIFOLD_MODELS = ("ae2d", "umap_ae")  # the lab's figure, and the same for the UMAP-regularised AE
BOX_PERCENTILES = (0.5, 99.5)  # the decoded grid covers the box holding all but the outermost codes
# Parametric UMAP's MNIST numbers in 2-D (Sainburg, McInnes & Gentner 2021, Neural Computation; their repository
# timsainb/ParametricUMAP_paper, notebooks knn-classifier/table-knn-results.ipynb and
# plot-projection-metrics-with-vae-make-table.ipynb), on the protocol of aelab.evaluate.paper_protocol
PAPER = "Sainburg, McInnes & Gentner (2021), Parametric UMAP"
PAPER_ROWS: dict[str, dict[str, float | None]] = {
    "Parametric UMAP (no decoder)": {"knn1_acc": 0.9402, "knn5_acc": 0.9614, "trustworthiness_k5": 0.9573,
                                     "test_mse": None},
    "UMAP loss + reconstruction": {"knn1_acc": 0.9403, "knn5_acc": 0.9537, "trustworthiness_k5": 0.9675,
                                   "test_mse": 0.0360},
    "AE": {"knn1_acc": 0.7647, "knn5_acc": 0.7926, "trustworthiness_k5": 0.9663, "test_mse": 0.0369},
}  # fmt: skip
PAPER_COLUMNS = {"knn1_acc": "1-NN acc.", "knn5_acc": "5-NN acc.", "trustworthiness_k5": "trust. k=5",
                 "test_mse": "test MSE"}  # fmt: skip

__all__ = ["SAMPLERS", "PCAAutoencoder", "sample_codes", "NAMES"]


@dataclass
class JudgeResult:
    test_acc: float
    epochs: int
    confident_share: float  # of the real test images
    parameters: int
    grid_images: torch.Tensor  # the AE's decoded lab grid
    grid_top: torch.Tensor
    grid_classes: torch.Tensor

    @property
    def grid_share(self) -> float:
        return float((self.grid_top >= THRESHOLD).double().mean())


@dataclass
class CompareResult:
    judge: JudgeResult
    labels: dict[str, str]  # short key -> label
    scores: dict[str, Assessment]
    trust: dict[str, dict[int, float]]  # key -> k -> trustworthiness
    trust_images: int
    # Parametric UMAP's protocol per row (aelab.evaluate.paper_protocol, plus test_mse where there is a decoder)
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    paper_split: tuple[int, int] = (0, 0)  # (training codes the kNN is fitted on, training images for trust.)
    manifolds: dict[str, tuple[tuple[float, float, float, float], torch.Tensor]] = field(default_factory=dict)
    generation: dict[str, dict[str, dict]] = field(default_factory=dict)  # key -> sampler -> judged
    shown: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    n_codes: int = N_CODES
    n_shown: int = 100
    # perf_counter when the part began: compare.seconds is the part's wall time, with the training of any model
    # not trained before it (with --jobs, the run trains the parts' models side by side first and times that
    # under run.wall_seconds.training_side_by_side)
    started: float = 0.0


def _judge(run: MnistRun) -> JudgeResult:
    judge = run.model("judge")
    probs = judge.probabilities(run.x_test, run.device)
    grid = decode(run.model("ae2d"), run.grid, run.device)
    top, cls = judge.probabilities(grid, run.device).max(1)
    return JudgeResult(
        test_acc=float((probs.argmax(1).numpy() == run.labels).mean()),
        epochs=run.epochs(run.recipes["judge"]),
        confident_share=float((probs.max(1).values >= THRESHOLD).double().mean()),
        parameters=sum(p.numel() for p in judge.parameters()),
        grid_images=grid,
        grid_top=top,
        grid_classes=cls,
    )


def compute(run: MnistRun) -> CompareResult:
    started = time.perf_counter()
    judge = _judge(run)
    models = {run.recipes[name].short: run.model(name) for name in CONTENDERS}
    scores = {run.recipes[name].short: run.scores(name) for name in CONTENDERS}
    models["pca"] = PCAAutoencoder(run.data.train, 2, run.cfg.seed).to(run.device)
    scores["pca"] = run.assess(models["pca"])
    scores["umap"] = run.umap_embedding
    m = min(TRUST_IMAGES, len(run.data.test))
    ranks = PixelNeighbourRanks(run.x_test[:m].numpy())
    trust = {key: {k: ranks.trustworthiness(sc.codes[:m], k) for k in TRUST_KS} for key, sc in scores.items()}
    del ranks  # the test images' ranks (0.4 GB on MNIST) go before the training images' are built
    fit, n_trust = paper_split(len(run.data.train))
    train_ranks = PixelNeighbourRanks(unit(run.data.train[:n_trust].clone()).numpy())
    train_labels = run.data.train_labels.numpy()
    paper = {}
    for key, sc in scores.items():
        paper[key] = paper_protocol(sc.train_codes, train_labels, sc.codes, run.labels, train_ranks)
        if sc.x_hat is not None:
            paper[key]["test_mse"] = sc.test_mse
    del train_ranks
    labels = {run.recipes[name].short: run.label(name) for name in CONTENDERS} | {"pca": PCA_LABEL, "umap": UMAP_LABEL}
    n_codes = QUICK_CODES if run.cfg.quick else N_CODES
    res = CompareResult(judge, labels, scores, trust, m, paper, (fit, n_trust), n_codes=n_codes, started=started)
    _generate(run, res, models)
    for key in MANIFOLD_MODELS:
        lo, hi = np.percentile(scores[key].train_codes, BOX_PERCENTILES, axis=0)
        box = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        grid = latent_grid(run.cfg.grid_size, (box[0], box[2]), (box[1], box[3]))
        res.manifolds[key] = (box, decode(models[key], grid, run.device))
    return res


def _generate(run: MnistRun, res: CompareResult, models: dict) -> None:
    """Every model x sampler: decode ``res.n_codes`` codes and let the judge grade them."""
    judge, seed = run.model("judge"), run.cfg.seed
    pick = np.random.default_rng(seed).choice(res.n_codes, size=min(100, res.n_codes), replace=False)
    res.n_shown = len(pick)
    for key, model in models.items():
        train_codes = res.scores[key].train_codes.astype(np.float64)
        res.generation[key] = {}
        for j, sampler in enumerate(SAMPLERS):
            codes = sample_codes(sampler, train_codes, res.n_codes, seed * 100 + j, run.cfg.grid_range)
            images = decode(model, codes, run.device)
            probs = judge.probabilities(images, run.device)
            res.generation[key][sampler] = judged_samples(probs, THRESHOLD, MIN_CLASS_SHARE)
            res.shown[key, sampler] = images[pick[pick < len(images)]]


def best_and_worst(res: CompareResult) -> tuple[tuple[str, str], tuple[str, str]]:
    """The network x sampler cells with the most and the fewest judged images (then coverage, entropy)."""
    cells = [(key, sp) for key in res.generation if key not in REFERENCES for sp in SAMPLERS]

    def rank(c: tuple[str, str]) -> tuple:
        v = res.generation[c[0]][c[1]]
        return (v["digit_share"], v["coverage_classes"], v["class_entropy"])

    return max(cells, key=rank), min(cells, key=rank)


def side(n: int) -> int:
    return round(math.sqrt(n))


# ---------------------------------------------------------------- writing


def write(run: MnistRun, res: CompareResult) -> None:
    _write_judge(run, res.judge)
    _write_latents(run, res)
    _write_manifolds(run, res)
    _write_generation(run, res)
    # what the part's budget is measured by (models other parts trained first are not retrained, so not counted)
    run.report.metric("compare.seconds", time.perf_counter() - res.started)


def judge_prose(j: JudgeResult, item: str, grid: str) -> str:
    trust = (
        f"so when it calls a decoded image a {item}, the image looks like a real one"
        if j.test_acc >= JUDGE_TARGET
        else f"below the {JUDGE_TARGET:.1%} a trustworthy judge needs (too little data or too few epochs), so "
        "the verdicts below are rough"
    )
    return (
        f"The judge classifies {j.test_acc:.2%} of the test images correctly and is sure of {j.confident_share:.1%} "
        f"of them: {trust}. Of the AE's {grid} it calls {j.grid_share:.0%} of the cells clear {item}s. The judge "
        "stands in for a human eye (as FID's Inception network does in the literature): it rewards clean, "
        "typical images and says nothing about variety within a class."
    )


def _write_judge(run: MnistRun, j: JudgeResult) -> None:
    r, cfg = run.report, run.cfg
    run.section(f"The {run.identity.item} judge")
    r.metric(
        "judge",
        {
            "test_acc": j.test_acc,
            "epochs": j.epochs,
            "threshold": THRESHOLD,
            "test_share_judged_digit": j.confident_share,
            "parameters": j.parameters,
        },
    )
    r.table(
        ["model", "epochs", "test accuracy", f"test images with top prob >= {THRESHOLD:g}"],
        [["CNN, 2 conv + 2 linear", j.epochs, j.test_acc, j.confident_share]],
        digits=4,
    )
    fig, axes = plots.panels(2, 4.6)
    plots.show_tiled(axes[0], j.grid_images, cfg.grid_size, "AE: decoded grid", run.extent)
    sure = (j.grid_top >= THRESHOLD).tolist()
    plots.class_map(axes[1], j.grid_classes.tolist(), sure, cfg.grid_size, "judge's verdict", run.extent)
    fig.tight_layout()
    r.figure(
        fig,
        "judge_lab_grid",
        "The lab's manifold figure, judged: each cell's class where the judge is sure (top probability "
        f">= {THRESHOLD:g}), grey where it is not.",
    )
    lo, hi = run.extent
    r.text(judge_prose(j, run.identity.item, f"{cfg.grid_size}x{cfg.grid_size} grid over [{lo:g}, {hi:g}]^2"))


def _write_latents(run: MnistRun, res: CompareResult) -> None:
    r = run.report
    for key, sc in res.scores.items():
        row = {"knn1_acc": sc.knn1_acc, "knn5_acc": sc.knn5_acc}
        row |= {f"trustworthiness_k{k}": v for k, v in res.trust[key].items()}
        if sc.x_hat is not None:  # umap-learn has no decoder, so no pixel columns
            row |= {"test_mse": sc.test_mse, "test_psnr": sc.test_psnr, "test_bce": sc.test_bce}
        r.metric(f"compare.{key}", row | {"latent_std": sc.latent_std, "paper_protocol": res.paper[key]})
    fit, n_trust = res.paper_split
    umap_epochs, ae_epochs = run.epochs(run.recipes["umap_ae"]), run.epochs(run.recipes["ae2d"])
    r.metric(
        "compare_settings",
        {"knn_k": [1, 5], "trustworthiness_k": list(TRUST_KS), "trustworthiness_test_images": res.trust_images,
         "umap_weight": run.cfg.umap_weight, "umap_epochs": umap_epochs,
         "paper_protocol": {"knn_fit_train_images": fit, "trustworthiness_train_images": n_trust,
                            "trustworthiness_k": PAPER_TRUST_K}},
    )  # fmt: skip
    run.section("Latent quality of the 2-D models", offset=1)
    more_passes = (
        "" if umap_epochs == ae_epochs else f" but the UMAP-regularised AE ({umap_epochs}: more passes over its graph)"
    )
    r.text(
        f"Same data, seed, widths and epochs ({ae_epochs}) for every network{more_passes}; the VAE, the RAE-L2 and "
        "the UMAP-regularised AE share the AE's MLP. VAE: BCE + KL to N(0, I). RAE-L2: BCE + ||z||^2/2 per image + "
        "lambda x squared decoder weights. "
        f"UMAP-regularised AE: BCE + {run.cfg.umap_weight:g} x UMAP's fuzzy-graph cross-entropy on the 15-neighbour "
        "graph of the training images (negative sampling), its encoder first regressed onto umap-learn's layout of "
        "those images; graph and layout come from the same umap-learn fit as the UMAP row. UMAP: "
        "umap-learn's own 2-D embedding, a reference with no decoder. k-NN accuracy: a k-nearest-neighbour classifier "
        "fitted on the training codes, scored on the test codes. Trustworthiness (scikit-learn's formula, first "
        f"{res.trust_images:,} test images): how many of a code's k nearest neighbours are neighbours in pixel space "
        "too (1 = all)."
    )

    def pixels(sc: Assessment) -> list:
        return ["-"] * 3 if sc.x_hat is None else [sc.test_mse, sc.test_psnr, sc.test_bce]

    rows = [
        [res.labels[k], sc.knn1_acc, sc.knn5_acc, *res.trust[k].values(), *pixels(sc),
         " / ".join(f"{v:.2f}" for v in sc.latent_std)]
        for k, sc in res.scores.items()
    ]  # fmt: skip
    head = ["model", "1-NN acc.", "5-NN acc.", *(f"trust. k={k}" for k in TRUST_KS)]
    r.table(
        [*head, "test MSE", "test PSNR (dB)", "test BCE", "code std z1 / z2"],
        rows,
        [0, *[3] * (len(head) - 1), 4, 2, 3, 0],
    )
    fig, axes = plots.panels(len(res.scores), 3.4, ncols=5)
    for ax, (key, sc) in zip(axes, res.scores.items()):
        plots.scatter_codes(ax, sc.codes, run.labels, f"{res.labels[key]}: 5-NN {sc.knn5_acc:.1%}", run.extent)
    fig.tight_layout()
    r.figure(fig, "compare_latents", "Test codes of every 2-D model, coloured by class; the lab's grid box dashed.")
    r.text(latent_verdict(res))
    _write_paper(run, res)


def _write_paper(run: MnistRun, res: CompareResult) -> None:
    r, (fit, n_trust) = run.report, res.paper_split
    r.text(
        f"**On Parametric UMAP's own protocol** ({PAPER}, their repository timsainb/ParametricUMAP_paper, notebooks "
        "`knn-classifier/table-knn-results.ipynb` and `plot-projection-metrics-with-vae-make-table.ipynb`): the "
        f"k-NN classifiers are fitted on the first {fit:,} training codes (the rest of the training set held out) "
        f"and scored on the test codes; trustworthiness (k={PAPER_TRUST_K}) is computed on the first {n_trust:,} "
        "training images; MSE on the test images. The paper's rows are its MNIST 2-D numbers; its models are "
        "other networks (a small convnet encoder), trained on the training images the kNN is fitted on, where "
        "this study's networks train on the whole training set."
    )

    def cell(v: float | None) -> str | float:
        return "-" if v is None else v

    rows = [[res.labels[k], *(cell(p.get(c)) for c in PAPER_COLUMNS)] for k, p in res.paper.items()]
    rows += [[f"paper: {name}", *(cell(p[c]) for c in PAPER_COLUMNS)] for name, p in PAPER_ROWS.items()]
    r.table(["model", *PAPER_COLUMNS.values()], rows, 4)
    r.text(paper_verdict(res))


def paper_best() -> dict[str, float]:
    """The best of the paper's rows per column (highest accuracy and trustworthiness, lowest MSE)."""
    best = {}
    for c in PAPER_COLUMNS:
        values = [p[c] for p in PAPER_ROWS.values() if p[c] is not None]
        best[c] = min(values) if c == "test_mse" else max(values)
    return best


def ahead_columns(row: dict[str, float]) -> list[str]:
    """The columns on which ``row`` beats the best of the paper's rows (strictly)."""
    best = paper_best()
    return [
        c for c in PAPER_COLUMNS
        if c in row and (row[c] < best[c] if c == "test_mse" else row[c] > best[c])
    ]  # fmt: skip


def paper_verdict(res: CompareResult) -> str:
    """The UMAP-regularised AE against the best of the paper's rows, column by column, from the numbers."""
    best, ours = paper_best(), res.paper["umap_ae"]
    ahead = set(ahead_columns(ours))

    def col(c: str) -> str:
        return f"{PAPER_COLUMNS[c]} {ours[c]:.4f} against {best[c]:.4f}"

    said = {
        True: [col(c) for c in PAPER_COLUMNS if c in ahead],
        False: [col(c) for c in PAPER_COLUMNS if c not in ahead],
    }
    nets = [k for k in res.paper if k not in REFERENCES]
    everywhere = [res.labels[k] for k in nets if len(ahead_columns(res.paper[k])) == len(PAPER_COLUMNS)]
    if not said[False]:
        head = "ahead of the best of the paper's rows on every column"
    elif not said[True]:
        head = "on no column ahead of the best of the paper's rows"
    else:
        head = f"ahead of the best of the paper's rows on {len(ahead)} of the {len(PAPER_COLUMNS)} columns"
    parts = [f"ahead on {'; '.join(said[True])}"] if said[True] else []
    parts += [f"not ahead on {'; '.join(said[False])}"] if said[False] else []
    overall = (
        f"Ahead on all four columns: {', '.join(everywhere)}."
        if everywhere
        else "No network of this study is ahead of the paper's best on all four columns."
    )
    return f"On this protocol the UMAP-regularised AE is {head} ({'; '.join(parts)}). {overall}"


def _write_manifolds(run: MnistRun, res: CompareResult) -> None:
    fig, axes = plots.panels(2 * len(res.manifolds), 4.2, ncols=4)
    for i, (key, (box, images)) in enumerate(res.manifolds.items()):
        sc = res.scores[key]
        plots.scatter_codes(axes[2 * i], sc.codes, run.labels, f"{res.labels[key]}: test codes", box)
        plots.show_tiled(axes[2 * i + 1], images, run.cfg.grid_size, f"{res.labels[key]}: decoded grid", box)
    fig.tight_layout()
    lo, hi = BOX_PERCENTILES
    run.report.figure(
        fig,
        "compare_manifolds",
        f"The lab's manifold figure for the AE and for the UMAP-regularised AE: each model's test codes and a "
        f"{run.cfg.grid_size}x{run.cfg.grid_size} grid decoded over the box (dashed) from the {lo:g}th to the "
        f"{hi:g}th percentile of its training codes per axis.",
    )


def latent_verdict(res: CompareResult) -> str:
    scores, label = res.scores, res.labels
    trust = {key: t[10] for key, t in res.trust.items()}
    nets = [k for k in scores if k not in REFERENCES]
    by_knn = sorted(nets, key=lambda k: -scores[k].knn5_acc)
    by_trust = max(nets, key=lambda k: trust[k])
    best = by_knn[0]
    order = " > ".join(f"{label[k]} ({scores[k].knn5_acc:.1%})" for k in by_knn)
    agree = (
        "Trustworthiness (k=10) agrees."
        if by_trust == best
        else f"Trustworthiness (k=10) ranks {label[by_trust]} first ({trust[by_trust]:.3f} vs {trust[best]:.3f}): it "
        "rewards keeping pixel-space neighbours, not separating classes."
    )
    pca = scores["pca"].knn5_acc
    floor = (
        f" No network beats PCA-2D ({pca:.1%}): the networks are undertrained here."
        if pca >= scores[best].knn5_acc
        else ""
    )
    return (
        f"**Best-organised latent space: {label[best]}** (5-NN accuracy {scores[best].knn5_acc:.1%}, "
        f"trustworthiness {trust[best]:.3f}). By 5-NN accuracy: {order}; PCA-2D, the floor, reaches {pca:.1%} and "
        f"{trust['pca']:.3f}. {agree}{floor} {umap_verdict(res)}"
    )


def umap_verdict(res: CompareResult) -> str:
    """The UMAP-regularised AE against umap-learn's embedding and the plain AE, on the measured numbers."""
    ours, ref, ae = res.scores["umap_ae"], res.scores["umap"], res.scores["ae2d"]
    t_ours, t_ref = res.trust["umap_ae"][5], res.trust["umap"][5]

    def versus(a: float, b: float) -> str:
        return "ahead of" if a > b else "behind" if a < b else "level with"

    return (
        f"The UMAP-regularised AE reaches {ours.knn5_acc:.1%} 5-NN accuracy and trustworthiness (k=5) {t_ours:.3f}, "
        f"{versus(ours.knn5_acc, ref.knn5_acc)} umap-learn's embedding on the first ({ref.knn5_acc:.1%}) and "
        f"{versus(t_ours, t_ref)} it on the second ({t_ref:.3f}), with a decoder that umap-learn lacks: its test MSE is "
        f"{ours.test_mse:.4f} per pixel against the plain AE's {ae.test_mse:.4f}, whose codes reach "
        f"{ae.knn5_acc:.1%}."
    )


def _write_generation(run: MnistRun, res: CompareResult) -> None:
    r, lo, hi = run.report, *run.extent
    for key, row in res.generation.items():
        for sampler, v in row.items():
            r.metric(f"generate.{key}.{sampler}", v)
    n = side(res.n_codes)
    r.metric(
        "generate_settings",
        {"codes": res.n_codes, "grid_codes": n * n, "lab_range": [lo, hi], "threshold": THRESHOLD,
         "min_class_share": MIN_CLASS_SHARE, "samplers": SAMPLERS},
    )  # fmt: skip
    run.section(f"Generating {run.identity.plural()}: which sampler, which latent space", offset=2)
    r.text(
        f"For each model, {res.n_codes:,} codes from each sampler (the grids: {n}x{n} = {n * n:,} points), decoded "
        f"and judged. Samplers: lab grid = uniform grid over the lab's [{lo:g}, {hi:g}]^2; p1-p99 grid = uniform "
        "grid over the box from the 1st to the 99th percentile of the training codes per axis; N(0, I); Gaussian = "
        "one full-covariance Gaussian fitted to the training codes; GMM-10 = a 10-component full-covariance "
        f"Gaussian mixture fitted to them. Each cell: share judged an image of a class (top probability >= "
        f"{THRESHOLD:g}) · classes covered (each with >= {MIN_CLASS_SHARE:.0%} of the samples judged as that class) "
        f"· entropy of the judged classes in bits (max {math.log2(10):.2f})."
    )
    r.table(
        ["model", *(NAMES[k] for k in SAMPLERS)],
        [
            [
                res.labels[key],
                *(f"{v['digit_share']:.0%} · {v['coverage_classes']} · {v['class_entropy']:.2f}" for v in row.values()),
            ]
            for key, row in res.generation.items()
        ],
    )
    fig, axes = plots.panels(2, 4.6)
    for ax, (tag, (key, sp)) in zip(axes, zip(("best", "worst"), best_and_worst(res))):
        v = res.generation[key][sp]
        title = f"{tag}: {res.labels[key]}, {NAMES[sp]}\n{v['digit_share']:.0%} judged, {v['coverage_classes']} classes"
        plots.show_tiled(ax, res.shown[key, sp], 10, title)
    fig.tight_layout()
    r.figure(
        fig,
        "generate_best_worst",
        f"{res.n_shown} of the {res.n_codes:,} decoded samples of the best and the worst network x sampler "
        "(by share judged an image of a class, then coverage).",
    )
    r.text(generation_verdict(res.generation, res.labels))


def generation_verdict(results: dict[str, dict[str, dict]], labels: dict[str, str]) -> str:
    nets = [k for k in results if k not in REFERENCES]

    def mean(sp: str, field: str) -> float:
        return float(np.mean([results[k][sp][field] for k in nets]))

    share = {sp: mean(sp, "digit_share") for sp in NAMES}
    best_sp = max(share, key=share.get)
    richest = max(NAMES, key=lambda sp: mean(sp, "class_entropy"))
    by_sp = listing(
        [
            f"{NAMES[sp]} {share[sp]:.0%}, {mean(sp, 'coverage_classes'):.1f} classes, {mean(sp, 'class_entropy'):.2f} bits"
            for sp in sorted(share, key=lambda sp: -share[sp])
        ],
        "; ",
    )
    variety = (
        "It also draws the most even mix of classes."
        if richest == best_sp
        else f"The most even mix of classes comes from {NAMES[richest]} ({mean(richest, 'class_entropy'):.2f} bits vs "
        f"{mean(best_sp, 'class_entropy'):.2f}): the share of clean images and their variety pull apart."
    )
    wins = {
        f: sum(results[k]["gmm"][f] > results[k]["gaussian"][f] for k in nets) for f in ("digit_share", "class_entropy")
    }
    ae_g, ae_m = results["ae2d"]["gaussian"], results["ae2d"]["gmm"]
    diff = ae_m["digit_share"] - ae_g["digit_share"]
    verdict = "the paper's ordering" if diff > 0 else "the opposite ordering" if diff < 0 else "no difference"
    reason = (
        " A fitted density puts its samples where the codes are densest, which in 2-D is where classes overlap and "
        "decoded images are blends the judge is unsure of; a grid spreads them evenly, out into regions held by one class."
        if share["gmm"] < max(share["grid_lab"], share["grid"])
        else ""
    )
    return (
        f"**Which sampler draws clear images of a class: {NAMES[best_sp]}** (mean over the {len(nets)} networks: "
        f"{by_sp}). {variety}\n\n"
        "**The RAE paper's ordering.** Ghosh et al. (ICLR 2020) fit densities to an AE's codes after training and "
        "report ex-post GMM sampling cutting a plain AE's MNIST FID from 58.7 to 10.7. Here the AE's share judged "
        f"an image of a class goes from {ae_g['digit_share']:.0%} with one fitted Gaussian to "
        f"{ae_m['digit_share']:.0%} with GMM-10 ({verdict}); the GMM draws more judged images than the single "
        f"Gaussian for {wins['digit_share']} of the {len(nets)} networks and a more even mix of classes (higher "
        f"entropy) for {wins['class_entropy']} of them. FID rewards both quality and matching the data's variety; this "
        f"table separates the two.{reason} The paper's codes are also larger than 2-D and its judge is FID, so "
        "agreement is expected in direction at most, not in size."
    )


PART = Part(
    "compare",
    "digit judge, latent quality of every 2-D model (with a UMAP-regularised AE and umap-learn), generation by sampler",
    compute,
    write,
    default=False,
    sections=3,
    models=("judge", *CONTENDERS),
)
