"""Training K same-shape MLP autoencoders as one stacked model (torch.func) against one after another.

    python benchmarks/stacked_mlp.py [--models 6] [--batch 128 512] [--steps 30] [--rounds 3]

The MNIST study trains several 784-1024-512-128-2 MLPs that differ only in loss, noise or penalty.
Stacked, their weights become (K, ...) tensors (``torch.func.stack_module_state``) and one
``vmap``-ed ``functional_call`` runs all K forward and backward passes as batched matmuls, with one
fused Adam over the stacked tensors; each model still gets its own batch. This measures the step
time of K models stacked against K ordinary ``aelab.train.train_step`` calls, in alternating rounds
(medians), at the study's precision (bf16 autocast where native). It measures speed only: a
stacked path in the study would still have to keep each model's seed, loss and checkpoint apart.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import aelab  # noqa: F401  (first: it sets OMP_WAIT_POLICY)

# isort: split
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from aelab.losses import bce
from aelab.models.mlp import MLPAutoencoder
from aelab.speed import cpu_bf16_supported, make_optimizer
from aelab.train import TrainConfig, train_step


def sequential(k: int, batch: int, amp: bool):
    models = [MLPAutoencoder() for _ in range(k)]
    opts = [make_optimizer(m, TrainConfig(lr=1e-3)) for m in models]
    xs = [torch.rand(batch, 1, 28, 28) for _ in range(k)]

    def step() -> None:
        for m, o, x in zip(models, opts, xs):
            train_step(m, bce, o, x, None, amp)

    return step


def stacked(k: int, batch: int, amp: bool):
    models = [MLPAutoencoder() for _ in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    opt = torch.optim.Adam(list(params.values()), lr=1e-3, fused=True)
    x = torch.rand(k, batch, 1, 28, 28)

    def one(p: dict, b: dict, xi: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(functional_call(base, (p, b), (xi,))["logits"].float(), xi)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = vmap(one)(params, buffers, x).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def timed(step, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=6)
    p.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    amp = cpu_bf16_supported()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {amp}, K = {args.models}\n")
    print("| batch per model | K one after another (ms per step of all K) | K stacked (ms) | stacked speed-up |")
    print("|---|---|---|---|")
    for batch in args.batch:
        torch.manual_seed(0)
        paths = {"sequential": sequential(args.models, batch, amp), "stacked": stacked(args.models, batch, amp)}
        for step in paths.values():
            for _ in range(3):
                step()
        ms: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(args.rounds):
            for name, step in paths.items():
                ms[name].append(timed(step, args.steps))
        seq, stk = statistics.median(ms["sequential"]), statistics.median(ms["stacked"])
        print(f"| {batch} | {seq:.1f} | {stk:.1f} | {seq / stk:.2f}x |")


if __name__ == "__main__":
    main()
