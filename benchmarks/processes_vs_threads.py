"""Two CPU threads on one MLP, or one thread each on two MLPs side by side (``aelab mnist --jobs``)?

    python benchmarks/processes_vs_threads.py [--models 4] [--steps 150] [--batch 128]

Trains ``--models`` copies of the study's MLP autoencoder (each its own seed, the study's step: bf16
autocast where native, fused Adam, BCE) for ``--steps`` steps, first one after another in this process
with every core's thread, then in forked one-thread workers, one per core, the way
``aelab.studies.workers`` does. Prints both wall times, their ratio, and whether every model's weights
came out bit-identical (the reason ``--jobs`` may change the default without changing a number).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import aelab  # noqa: F401  (first: it sets OMP_WAIT_POLICY)

# isort: split
import torch

from aelab.data.scaling import unit
from aelab.losses import RECONSTRUCTION
from aelab.models.mlp import MLPAutoencoder
from aelab.speed import cpu_bf16_supported, make_optimizer
from aelab.studies.workers import usable_cores
from aelab.train import TrainConfig, load_batch, train_step

IMAGES = torch.randint(0, 256, (5000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def train(seed: int, steps: int, batch: int) -> tuple[float, str]:
    """``steps`` training steps of one freshly seeded MLP: (seconds, hash of its weights)."""
    torch.manual_seed(seed)
    model, amp = MLPAutoencoder(), cpu_bf16_supported()
    opt = make_optimizer(model, TrainConfig(batch_size=batch, lr=3e-3, cpu_amp=amp))
    gen, cpu = torch.Generator().manual_seed(seed), torch.device("cpu")
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(IMAGES), (batch,), generator=gen)
        train_step(model, RECONSTRUCTION["bce"], opt, load_batch(IMAGES, idx, unit, False, cpu), gen, amp)
    weights = b"".join(p.detach().numpy().tobytes() for p in model.parameters())
    return time.perf_counter() - t0, hashlib.sha1(weights).hexdigest()


def _one_thread() -> None:
    torch.set_num_threads(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    cores = usable_cores()
    torch.set_num_threads(cores)
    train(99, 10, args.batch)  # warm-up: allocator, oneDNN kernels
    t0 = time.perf_counter()
    serial = [train(s, args.steps, args.batch) for s in range(args.models)]
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(cores, mp_context=ctx, initializer=_one_thread) as pool:
        side = list(pool.map(train, range(args.models), [args.steps] * args.models, [args.batch] * args.models))
    t_side = time.perf_counter() - t0
    same = all(a[1] == b[1] for a, b in zip(serial, side))
    per_step = {k: 1e3 * sum(r[0] for r in rows) / (len(rows) * args.steps) for k, rows in (("s", serial), ("p", side))}
    print(f"{args.models} MLPs x {args.steps} steps at batch {args.batch}, {cores} cores, bf16: {cpu_bf16_supported()}")
    print(f"one after another, {cores} threads: {t_serial:.1f} s ({per_step['s']:.1f} ms per step)")
    print(f"side by side, {cores} one-thread processes: {t_side:.1f} s ({per_step['p']:.1f} ms per step in each)")
    print(f"speed-up {t_serial / t_side:.2f}x; weights bit-identical: {same}")


if __name__ == "__main__":
    main()
