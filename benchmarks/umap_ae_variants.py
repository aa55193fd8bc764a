"""One UMAP-regularised AE variant on full MNIST, scored on Parametric UMAP's protocol (issue 26).

Trains the compare part's UMAP-AE (the study's MLP, BCE + weight x UMAP's fuzzy cross-entropy on
umap-learn's graph of the training images, the encoder first regressed onto umap-learn's layout)
with one set of levers changed, then prints its paper-protocol metrics (kNN fitted on the first
50,000 training codes and scored on the 10,000 test images, trustworthiness k = 5 on the first
10,000 training images, test MSE), the GMM-10 samples the digit judge accepts and the seconds:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/umap_ae_variants.py \\
        --data ../shared/data/mnist --epochs 16 --min-dist 0.05

The study's defaults are the baseline (8 epochs, 256 edges per step, 15 neighbours, min_dist 0.1, weight
1, no decoder fine-tuning). The levers: ``--epochs`` and ``--edges`` (passes over the graph's edges),
``--min-dist`` (UMAP's a, b in the loss; the start stays umap-learn's min_dist 0.1 layout), ``--neighbors``
(a second umap-learn fit: its graph and its layout), ``--decoder-epochs`` (after the joint training, the
encoder frozen and the decoder alone trained on BCE for that many epochs: the paper's "decoder after").

umap-learn's fit (graph, layout, its own paper-protocol row) and the digit judge are cached under
``--cache`` (one fit per neighbour count), so every variant after the first costs only its own training;
"seconds" is that training (start, joint training, decoder fine-tuning), not the cached parts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from aelab.data.mnist import read_idx_folder
from aelab.data.scaling import unit
from aelab.evaluate import (
    PixelNeighbourRanks,
    decode,
    judged_samples,
    knn_accuracy,
    paper_protocol,
    paper_split,
    predict,
)
from aelab.losses import cross_entropy
from aelab.models.judge import DigitJudge
from aelab.models.mlp import MLPAutoencoder
from aelab.parametric_umap import ab_params, graph_edges, standardised, umap_objective, warm_start
from aelab.studies.mnist.recipes import UMAP_WARM_STEPS
from aelab.studies.mnist.sampling import sample_codes
from aelab.train import TrainConfig, fit

CPU = torch.device("cpu")


def umap_fit(data, neighbors: int, seed: int, cache: Path, ranks: PixelNeighbourRanks) -> tuple:
    """umap-learn's graph and layout of the training images (cached), and its own paper-protocol row."""
    import scipy.sparse as sp

    stem = cache / f"umap_n{neighbors}_s{seed}"
    if not stem.with_suffix(".npz").exists():
        import umap

        t0 = time.perf_counter()
        reducer = umap.UMAP(n_components=2, n_neighbors=neighbors, random_state=seed, n_jobs=1)
        reducer.fit(unit(data.train.clone()).flatten(1).numpy())
        test = reducer.transform(unit(data.test.clone()).flatten(1).numpy())
        seconds = time.perf_counter() - t0
        train = np.asarray(reducer.embedding_, dtype=np.float32)
        row = paper_protocol(train, data.train_labels.numpy(), test, data.test_labels.numpy(), ranks)
        sp.save_npz(stem.with_suffix(".npz"), reducer.graph_.tocsr())
        np.save(stem.with_suffix(".npy"), train)
        stem.with_suffix(".json").write_text(json.dumps(row | {"seconds": seconds}))
    row = json.loads(stem.with_suffix(".json").read_text())
    return sp.load_npz(stem.with_suffix(".npz")), np.load(stem.with_suffix(".npy")), row


def cached_ranks(images: torch.Tensor, path: Path) -> PixelNeighbourRanks:
    """The pixel ranks of ``images`` (0.4 GB for 10,000), sorted once and cached at ``path``."""
    if path.exists():
        ranks = PixelNeighbourRanks.__new__(PixelNeighbourRanks)
        ranks.rank = np.load(path)
        ranks.n = len(ranks.rank)
        return ranks
    ranks = PixelNeighbourRanks(unit(images.clone()).numpy())
    np.save(path, ranks.rank)
    return ranks


def study_protocol(model: MLPAutoencoder, data, cache: Path) -> dict:
    """The compare part's own protocol: kNN fitted on all training codes, trustworthiness k = 5, 10 on the test images."""
    train, test = predict(model, data.train, unit, CPU)["z"].numpy(), predict(model, data.test, unit, CPU)["z"].numpy()
    ranks = cached_ranks(data.test, cache / f"test_ranks_{len(data.test)}.npy")
    y_train, y_test = data.train_labels.numpy(), data.test_labels.numpy()
    return {
        "knn1_acc": knn_accuracy(train, y_train, test, y_test, 1),
        "knn5_acc": knn_accuracy(train, y_train, test, y_test, 5),
        **{f"trustworthiness_k{k}": ranks.trustworthiness(test, k) for k in (5, 10)},
    }


def judge(data, seed: int, cache: Path) -> DigitJudge:
    """The compare part's digit judge (4 epochs of full MNIST, the study's settings), trained once and cached."""
    path = cache / f"judge_s{seed}.pt"
    model = DigitJudge(data.shape)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    cfg = TrainConfig(epochs=4, batch_size=128, lr=3e-3, seed=seed, cpu_amp=True)
    targets = (data.train_labels, data.test_labels)
    fit("judge", model, cross_entropy, data.train, data.test, unit, cfg, CPU, None, None, targets)
    torch.save(model.state_dict(), path)
    return model


class DecoderOnly:
    """BCE through the decoder alone: the encoder's codes are detached, so only the decoder learns."""

    def __call__(self, model: MLPAutoencoder, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            z = model.encode(x)
        return torch.nn.functional.binary_cross_entropy_with_logits(model.decode_logits(z).float(), x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder with the four MNIST IDX files")
    p.add_argument("--epochs", type=int, default=8, help="joint epochs (the study: 8)")
    p.add_argument("--edges", type=int, default=256, help="graph edges per step (the study: 256)")
    p.add_argument("--neighbors", type=int, default=15, help="umap-learn's n_neighbors: graph and start (15)")
    p.add_argument("--min-dist", type=float, default=0.1, help="UMAP's min_dist in the loss's a, b (0.1)")
    p.add_argument("--weight", type=float, default=1.0, help="UMAP loss weight (1)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--decoder-epochs", type=int, default=0, help="decoder-only BCE epochs after (0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("runs/umap_ae_variants"))
    p.add_argument("--name", default="", help="the variant's name in the printed row")
    p.add_argument("--plain", action="store_true", help="the plain AE instead (BCE alone, no start): a reference row")
    p.add_argument(
        "--judge",
        choices=("train", "cached", "skip"),
        default="train",
        help="GMM-10 samples judged: train the judge if not cached, only a cached one, or skip",
    )
    p.add_argument(
        "--study-protocol",
        action="store_true",
        help="also score the compare part's own protocol (kNN on all training codes, trustworthiness on the test images)",
    )
    p.add_argument("--rescore", type=Path, help="score a model this script saved (its .pt) instead of training")
    args = p.parse_args()

    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    data = read_idx_folder(args.data)
    _, trust = paper_split(len(data.train))
    ranks = cached_ranks(data.train[:trust], args.cache / f"train_ranks_{trust}.npy")
    graph, layout, umap_row = umap_fit(data, args.neighbors, args.seed, args.cache, ranks)
    print(f"umap-learn (n_neighbors {args.neighbors}), paper protocol: {umap_row}", flush=True)

    torch.manual_seed(args.seed)
    model = MLPAutoencoder(image_shape=data.shape, hidden=(1024, 512, 128), bottleneck=2)
    name = args.name or (
        f"epochs {args.epochs}, edges {args.edges}, n_neighbors {args.neighbors}, min_dist {args.min_dist:g}, "
        f"weight {args.weight:g}, lr {args.lr:g}"
    )
    if args.rescore:
        model.load_state_dict(torch.load(args.rescore, weights_only=True))
        report(model, data, ranks, args, name, float("nan"))
        return
    a, b = ab_params(args.min_dist)
    weight = 0.0 if args.plain else args.weight  # weight 0: the objective is the lab's BCE alone
    objective = umap_objective(graph_edges(graph), data.train, a, b, weight, edges_per_step=args.edges)
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, lr=args.lr, seed=args.seed, cpu_amp=True)
    t0 = time.perf_counter()
    if not args.plain:
        warm_start(model, data.train, standardised(layout), steps=UMAP_WARM_STEPS, seed=args.seed)
    fit("umap_ae", model, objective, data.train, data.test, unit, cfg, CPU)
    seconds = time.perf_counter() - t0
    torch.save(model.state_dict(), args.cache / f"model_{time.strftime('%H%M%S')}.pt")
    row = report(model, data, ranks, args, name, seconds)
    if args.decoder_epochs:  # the encoder stays as it is: only the MSE and the decoded samples can move
        t1 = time.perf_counter()
        dcfg = TrainConfig(epochs=args.decoder_epochs, batch_size=128, lr=args.lr, seed=args.seed + 1, cpu_amp=True)
        fit("decoder", model, DecoderOnly(), data.train, data.test, unit, dcfg, CPU)
        after = report(model, data, ranks, args, f"{name}, then decoder {args.decoder_epochs} epochs",
                       row["seconds"] + time.perf_counter() - t1)  # fmt: skip
        assert after["knn5_acc"] == row["knn5_acc"], "the decoder's fine-tuning moved the encoder"
        torch.save(model.state_dict(), args.cache / f"model_{time.strftime('%H%M%S')}_decoder.pt")


def report(model: MLPAutoencoder, data, ranks: PixelNeighbourRanks, args, name: str, seconds: float) -> dict:
    """The variant's paper-protocol row, GMM-10 samples judged, and seconds: printed as JSON and a table row."""
    train_codes = predict(model, data.train, unit, CPU)["z"].numpy()
    out = predict(model, data.test, unit, CPU)
    row = paper_protocol(train_codes, data.train_labels.numpy(), out["z"].numpy(), data.test_labels.numpy(), ranks)
    row["test_mse"] = float((out["x_hat"] - unit(data.test.clone())).pow(2).mean())
    gmm = {"digit_share": float("nan"), "coverage_classes": -1}
    if args.judge == "train" or (args.judge == "cached" and (args.cache / f"judge_s{args.seed}.pt").exists()):
        codes = sample_codes("gmm", train_codes.astype(np.float64), 1000, args.seed * 100 + 4, 5.0)
        probs = judge(data, args.seed, args.cache).probabilities(decode(model, codes, CPU), CPU)
        gmm = judged_samples(probs, 0.9, 0.05)
    study = study_protocol(model, data, args.cache) if args.study_protocol else None
    result = {"variant": name, **row, "gmm10": gmm, "seconds": seconds} | ({"study_protocol": study} if study else {})
    print(json.dumps(result), flush=True)
    print(
        f"| {name} | {row['knn1_acc']:.4f} | {row['knn5_acc']:.4f} | {row['trustworthiness_k5']:.4f} | "
        f"{row['test_mse']:.4f} | {gmm['digit_share']:.0%} · {gmm['coverage_classes']} | {seconds:.0f} |",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
