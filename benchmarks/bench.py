"""Training throughput of aelab against a seed-style loop and the machine's own GEMM speed.

    python benchmarks/bench.py [--seconds S] [--json PATH] [--device auto|cpu|cuda] [--compile]

For the MNIST MLP autoencoder and the dogs conv autoencoder it trains, side by side in one process,

- aelab's path: uint8 images decoded once and kept on the device, a batch gathered by index and
  made float inside the step (``aelab.train.load_batch``), one optimisation step
  (``aelab.train.train_step``) with aelab's optimizer, memory format and autocast choices;
- a seed-style loop: a per-item ``Dataset.__getitem__`` (for dogs, a PIL JPEG decode per item)
  feeding a ``DataLoader`` with batch 64, default Adam, the same model and loss.

The paths take turns in short slices (``--rounds``) so background load hits both alike; ratios are
medians over rounds. The reference is the fp32 GEMM (2048x2048 matmul), measured in every round too,
and the bf16 GEMM as well when a path trains under bf16 autocast. Model FLOPs per sample come from
``torch.utils.flop_counter`` (matmuls and convolutions, forward and backward). For MNIST a last stage
measures time to quality: the seconds aelab's path needs to reach the held-out loss the seed-style loop has
after one epoch (``--baseline-samples``), against the seed loop's own seconds. On a CPU with two or more
cores each round also times the MNIST path as ``aelab mnist`` trains its MLPs by default (``--jobs``):
one forked one-thread copy per core, side by side; their samples/s add up. Both loops run in the
same process with the same threads (and aelab's ``OMP_WAIT_POLICY``), so the ratio measures the
loops, not the environment. Data come from ``../shared/data`` (next to the repository) when present,
otherwise generated arrays and JPEGs of the same shapes. A table goes to stdout, everything to ``--json``.

Sustained speed: short interleaved slices start from models that have barely trained, and some CPUs
slow down only later (subnormal floats fill gradients and Adam's moments as training converges, and some
Intel cores take a slow path on them). So a last stage trains a fresh copy of each model on aelab's path
for ``--sustained-epochs`` passes over the MNIST training set (dogs: ``--sustained-steps`` steps), in
``--windows`` equal windows, and reports the first window's samples/s, the last's and their ratio (the
drift: 1 is steady, below 0.8 a stall). Subnormals are flushed to zero as in the studies
(``--subnormals keep`` measures the stall itself). The GEMM reference is the median of several warmed-up
runs in every round, with its spread over all runs. Every output names the CPU model and its bf16 features.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import aelab  # noqa: F401  (first: it sets OMP_WAIT_POLICY, which OpenMP reads once, as torch loads)

# isort: split
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from aelab.data.mnist import read_idx_folder
from aelab.data.photos import decode_folder, find_photos
from aelab.data.scaling import signed, unit
from aelab.losses import RECONSTRUCTION
from aelab.models.conv import ConvAutoencoder
from aelab.models.jscc import JSCCAutoencoder
from aelab.models.mlp import MLPAutoencoder
from aelab.runtime import configure_torch, resolve_device
from aelab.speed import (
    cpu_bf16_supported,
    flushing_subnormals,
    make_optimizer,
    resident,
    subnormals_flushed,
    use_amp,
    use_channels_last,
)
from aelab.studies.workers import usable_cores
from aelab.train import TrainConfig, load_batch, train_step, wrap_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SEED_BATCH = 64  # the seed-style loop's DataLoader batch (issue 5)
Objective = Callable[[torch.nn.Module, torch.Tensor, torch.Generator | None], torch.Tensor]


# ---------------------------------------------------------------- data


def load_mnist_arrays(folder: Path, n_generated: int = 60_000) -> tuple[np.ndarray, str]:
    """MNIST training images as (N, 28, 28) uint8, or generated ones of that shape."""
    if (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists():
        return read_idx_folder(folder).train[:, 0].numpy(), f"MNIST IDX files in {folder}"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n_generated, 28, 28), dtype=np.uint8), "generated 28x28 uint8 arrays"


def write_photos(folder: Path, count: int, source: Path | None = None, seed: int = 0) -> list[Path]:
    """Write ``count`` 64x64 JPEGs: flipped and shifted copies of real photos when given, else smooth noise.

    Used when the real dog photos are absent, and by ``gpu_check.sh`` to make a 20k-photo folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    real = sorted(source.glob("*.jpg")) if source is not None and source.is_dir() else []
    paths = []
    for i in range(count):
        if real:
            img = np.asarray(Image.open(real[i % len(real)]).convert("RGB").resize((64, 64)))
            if (i // len(real)) % 2:
                img = img[:, ::-1]
            img = np.roll(img, int(rng.integers(-4, 5)), axis=int(rng.integers(0, 2)))
        else:
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            img = np.asarray(Image.fromarray(small).resize((64, 64), Image.BILINEAR))
        path = folder / f"photo_{i:06d}.jpg"
        Image.fromarray(np.ascontiguousarray(img)).save(path, quality=90)
        paths.append(path)
    return paths


def dog_folder(folder: Path, tmp: Path, n_generated: int = 2048) -> tuple[Path, str]:
    """The real photo folder when it holds photos, else a folder of generated 64x64 JPEGs."""
    if folder.is_dir() and find_photos(folder):
        return folder, f"photos in {folder}"
    write_photos(tmp / "dogs", n_generated)
    return tmp / "dogs", f"{n_generated} generated 64x64 JPEGs"


def decode_all(folder: Path) -> tuple[torch.Tensor, list[Path]]:
    """aelab's way: every photo decoded once (``aelab.data.photos``) into one uint8 (N, 3, 64, 64) tensor."""
    photos = decode_folder(folder, size=64, use_cache=False, progress=False)
    chw = torch.from_numpy(photos.images).permute(0, 3, 1, 2).contiguous()
    return chw, [folder / n for n in photos.names]


class SeedMnist(Dataset):
    """The seed's dataset: one image at a time, converted to float per item."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(self.images[i], dtype=torch.float32).div(255.0).unsqueeze(0)


class SeedDogs(Dataset):
    """The seed's dataset: open and decode one JPEG per item, scale to [-1, 1]."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = Image.open(self.files[i]).convert("RGB").resize((64, 64))
        x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)
        return x / 127.5 - 1.0


# ---------------------------------------------------------------- the two training paths


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Loop:
    """A training loop that can run for a slice of time and resume where it stopped."""

    batch_size: int
    device: torch.device

    def step(self) -> None:
        raise NotImplementedError

    def run(self, seconds: float) -> tuple[int, float]:
        """Train for about ``seconds``; returns (samples, elapsed seconds)."""
        _sync(self.device)
        t0 = time.perf_counter()
        n = steps = 0
        while True:
            self.step()
            n += self.batch_size
            steps += 1
            if self.device.type == "cuda" and steps % 20:
                continue  # check the clock (and sync) every 20 steps only, so the GPU queue stays full
            _sync(self.device)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                return n, elapsed


_FORKED: Loop | None = None  # the path a side-by-side worker inherits when forked


def _one_thread_slice(seconds: float) -> tuple[int, float]:
    assert _FORKED is not None
    torch.set_num_threads(1)
    for _ in range(3):  # warm-up at one thread
        _FORKED.step()
    return _FORKED.run(seconds)


def side_by_side(path: Loop, seconds: float, workers: int) -> float:
    """Samples/s of ``workers`` one-thread copies of ``path`` training at once (``aelab mnist --jobs``), summed."""
    global _FORKED
    _FORKED = path
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return sum(n / t for n, t in pool.map(_one_thread_slice, [seconds] * workers))
    finally:
        _FORKED = None


class SeedPath(Loop):
    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Dataset,
        objective: Objective,
        device: torch.device,
        batch_size: int = SEED_BATCH,
    ) -> None:
        self.model = model.to(device).train()
        self.device = device
        self.objective = objective
        self.batch_size = batch_size
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        self.it = iter(self.loader)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.fetch_s = 0.0  # time spent waiting for the DataLoader

    def step(self) -> None:
        t0 = time.perf_counter()
        try:
            x = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            x = next(self.it)
        x = x.to(self.device)
        self.fetch_s += time.perf_counter() - t0
        loss = self.objective(self.model, x, None)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class AelabPath(Loop):
    """aelab.train's own step on resident uint8 data, with fit's choices of optimizer, format and autocast."""

    def __init__(
        self,
        model: torch.nn.Module,
        data: torch.Tensor,
        prepare: Callable[[torch.Tensor], torch.Tensor],
        objective: Objective,
        cfg: TrainConfig,
        device: torch.device,
    ) -> None:
        self.device = device
        self.batch_size = cfg.batch_size
        self.channels_last = use_channels_last(model, cfg, device)
        model.to(device=device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        self.model = model.train()
        self.data = resident(data, device)  # as fit(): on the GPU when it fits
        self.prepare = prepare
        self.objective = objective
        self.optimizer = make_optimizer(model, cfg)
        self.net = wrap_model(model, cfg, device)
        self.amp = use_amp(cfg, device)
        self.noise = torch.Generator(device=device).manual_seed(0)
        self.order = torch.randperm(len(self.data), device=self.data.device)
        self.pos = 0

    def next_index(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.data), device=self.data.device)
            self.pos = 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def step(self) -> None:
        x = load_batch(self.data, self.next_index(), self.prepare, self.channels_last, self.device)
        train_step(self.net, self.objective, self.optimizer, x, self.noise, self.amp)

    def load_seconds(self, batches: int = 30) -> float:
        """Seconds per batch spent gathering and converting the input alone."""
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(batches):
            load_batch(self.data, self.next_index(), self.prepare, self.channels_last, self.device)
        _sync(self.device)
        return (time.perf_counter() - t0) / batches


# ---------------------------------------------------------------- references


GEMM_RUNS = 3  # warmed-up GEMM runs per round; the round's figure is their median


def gemm_runs(
    device: torch.device, seconds: float, dtype: torch.dtype = torch.float32, runs: int = GEMM_RUNS
) -> list[float]:
    """``runs`` GEMM measurements of ``seconds / runs`` each, after one warm-up run of the same length."""
    each = seconds / runs
    gemm_gflops(device, each, dtype)
    return [gemm_gflops(device, each, dtype) for _ in range(runs)]


def spread(values: list[float]) -> dict:
    """Median, minimum and maximum of repeated measurements, and (max - min) / median."""
    mid = statistics.median(values)
    return {"median": mid, "min": min(values), "max": max(values), "spread": (max(values) - min(values)) / mid,
            "runs": len(values)}  # fmt: skip


def gemm_gflops(device: torch.device, seconds: float, dtype: torch.dtype = torch.float32, n: int = 2048) -> float:
    """Dense n x n matmul speed: the practical peak the models' GEMMs and convolutions aim at."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 on GPUs
    try:
        for _ in range(2):
            a @ b
        _sync(device)
        t0 = time.perf_counter()
        k = 0
        while True:
            for _ in range(10 if device.type == "cuda" else 1):
                a @ b
                k += 1
            _sync(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                return 2 * n**3 * k / elapsed / 1e9
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def flops_per_sample(model: torch.nn.Module, objective: Objective, x: torch.Tensor) -> float:
    """Forward + backward FLOPs of one training sample (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        objective(model, x, None).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


# ---------------------------------------------------------------- sustained speed


def sustained(path: Loop, steps: int, windows: int) -> dict:
    """Samples/s of ``path`` in ``windows`` equal windows over at least ``steps`` steps: first, last, drift = last / first."""
    per = max(1, math.ceil(steps / windows))  # at least ``steps`` in all
    speeds = []
    for _ in range(windows):
        _sync(path.device)
        t0 = time.perf_counter()
        for _ in range(per):
            path.step()
        _sync(path.device)
        speeds.append(per * path.batch_size / (time.perf_counter() - t0))
    return {
        "steps": per * windows,
        "samples": per * windows * path.batch_size,
        "windows_samples_per_s": speeds,
        "first_window_samples_per_s": speeds[0],
        "last_window_samples_per_s": speeds[-1],
        "drift": speeds[-1] / speeds[0],
    }


# ---------------------------------------------------------------- time to the baseline's test loss


@torch.no_grad()
def held_out_loss(model: torch.nn.Module, objective: Objective, held_out: torch.Tensor, device: torch.device) -> float:
    """Mean objective over the held-out float images, in fp32 (the same yardstick for both loops)."""
    was = model.training
    model.eval()
    total = sum(float(objective(model, held_out[i : i + 1000].to(device), None)) * len(held_out[i : i + 1000])
                for i in range(0, len(held_out), 1000))  # fmt: skip
    model.train(was)
    return total / len(held_out)


def time_to_loss(s: dict, u8: torch.Tensor, args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds of training each loop needs to reach the test loss the seed-style loop has after ``baseline_samples``.

    The last ``--held-out`` training images (at most a sixth) are held out. The seed-style loop (batch 64, Adam 1e-3, fp32) trains
    ``baseline_samples`` samples on the rest; its held-out loss is the bar. aelab's path (the study's batch,
    learning rate and precision, constant rate) then trains until it reaches that bar, checked every
    ``baseline_samples / 8`` samples; the checks are not timed. aelab gets at most three times the seed loop's
    time and samples. Both run one after the other, so unlike the interleaved rounds above this ratio feels load changes.
    """
    cut = len(u8) - min(args.held_out, len(u8) // 6)
    train, held_out = u8[:cut], unit(u8[cut:].clone())
    objective, n = s["objective"], args.baseline_samples
    torch.manual_seed(0)
    seed_loop = SeedPath(s["make"](), SeedMnist(train[:, 0].numpy()), objective, device, args.seed_batch)
    t0 = time.perf_counter()
    for _ in range(max(1, n // args.seed_batch)):
        seed_loop.step()
    _sync(device)
    seed_s = time.perf_counter() - t0
    bar = held_out_loss(seed_loop.model, objective, held_out, device)
    torch.manual_seed(0)
    data, prepare, cfg = s["aelab"]()
    path = AelabPath(s["make"](), data[:cut], prepare, objective, cfg, device)
    check_every = max(1, n // 8 // path.batch_size)
    aelab_s, samples, loss = 0.0, 0, float("inf")
    while loss > bar and aelab_s < 3 * seed_s and samples < 3 * n:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(check_every):
            path.step()
        _sync(device)
        aelab_s += time.perf_counter() - t0
        samples += check_every * path.batch_size
        loss = held_out_loss(path.model, objective, held_out, device)
    return {
        "baseline_samples": n,
        "baseline_loss": bar,
        "seed_seconds": seed_s,
        "aelab_seconds": aelab_s,
        "aelab_samples": samples,
        "aelab_loss": loss,
        "reached": loss <= bar,
        "speedup": seed_s / aelab_s,
    }


# ---------------------------------------------------------------- the benchmark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=40.0, help="training seconds per path, split over rounds")
    p.add_argument("--rounds", type=int, default=5, help="turns each path takes (default: 5)")
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data", type=Path, default=SHARED, help=f"folder with mnist/ and dogs/ (default: {SHARED})")
    p.add_argument("--mnist-batch", type=int, default=None, help="aelab's MNIST batch (default: the study's)")
    p.add_argument("--dogs-batch", type=int, default=None, help="aelab's dogs batch (default: the study's)")
    p.add_argument("--compile", action="store_true", help="torch.compile aelab's models (as aelab --compile)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto", help="aelab's memory format")
    p.add_argument(
        "--cpu-amp",
        choices=("study", "on", "off"),
        default="study",
        help="bf16 autocast on CPU (default: as the study)",
    )
    p.add_argument("--only", choices=("mnist", "dogs"), default=None, help="benchmark one study's models only")
    p.add_argument("--seed-batch", type=int, default=SEED_BATCH, help=f"the seed loop's batch (default: {SEED_BATCH})")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per path before measuring (default: 3)")
    p.add_argument("--photos", type=int, default=2048, help="photos to generate when the real ones are absent")
    p.add_argument(
        "--baseline-samples",
        type=int,
        default=50_000,
        help="MNIST time-to-loss: samples the seed-style loop trains on to set the held-out loss aelab must reach "
        "(default: one epoch of the 50,000 images not held out; 0 skips the stage)",
    )
    p.add_argument("--held-out", type=int, default=10_000, help="MNIST time-to-loss: held-out images (default: 10,000)")
    p.add_argument(
        "--sustained-epochs",
        type=float,
        default=2.0,
        help="sustained stage: passes over the MNIST training set (default: 2; 0 skips the stage)",
    )
    p.add_argument("--sustained-steps", type=int, default=1500, help="sustained stage: dogs steps (default: 1,500)")
    p.add_argument("--windows", type=int, default=10, help="sustained stage: timing windows (default: 10)")
    p.add_argument(
        "--subnormals",
        choices=("flush", "keep"),
        default="flush",
        help="flush subnormal floats to zero on the CPU, as the studies do (default), or keep them",
    )
    return p.parse_args(argv)


def study_config(study: str, args: argparse.Namespace, arch: str = "lab") -> TrainConfig:
    """The training settings ``aelab <study>`` uses by default, so the benchmark measures what users get.

    Batch sizes come from the studies' configs; ``cpu_amp`` mirrors the ``TrainConfig`` each study
    builds (both studies ask for bf16 on CPUs with native bf16).
    """
    if study == "mnist":
        from aelab.studies.mnist import MnistConfig

        batch, cpu_amp, lr = args.mnist_batch or MnistConfig().batch_size, True, MnistConfig().lr
    else:
        from aelab.studies.dogs import DogsConfig
        from aelab.studies.dogs.recipes import CLIP_GRAD, LR

        batch, cpu_amp, lr = args.dogs_batch or DogsConfig().batch_size, True, LR[arch]
        clip = CLIP_GRAD[arch]
    return TrainConfig(
        batch_size=batch,
        lr=lr,
        clip_grad=clip if study == "dogs" else 0.0,
        compile=args.compile,
        channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
        cpu_amp={"study": cpu_amp, "on": True, "off": False}[args.cpu_amp],
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns what it writes to ``--json``."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    as_found = contextlib.nullcontext(subnormals_flushed())  # --subnormals keep: measure the CPU as it is
    with (
        tempfile.TemporaryDirectory(prefix="aelab-bench-") as tmp,
        flushing_subnormals(device) if args.subnormals == "flush" else as_found as flushed,
    ):
        args.subnormals_flushed = flushed
        return run(args, Path(tmp), sys.argv[1:] if argv is None else argv)


def run(args: argparse.Namespace, tmp: Path, argv: list[str]) -> dict:
    device = resolve_device(args.device)
    configure_torch(device)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    studies = [s for s in ("mnist", "dogs") if args.only in (None, s)]
    slice_s = args.seconds / args.rounds

    setups: dict[str, dict] = {}
    t_setup = time.perf_counter()
    if "mnist" in studies:
        images, source = load_mnist_arrays(args.data / "mnist")
        u8 = torch.from_numpy(images).unsqueeze(1)
        cfg = study_config("mnist", args)
        setups["mnist"] = {
            "label": "MNIST MLP AE (784-1024-512-128-2)",
            "source": source,
            "make": MLPAutoencoder,
            "objective": RECONSTRUCTION["bce"],
            "sample": unit(u8[:4].clone()),
            "seed": lambda images=images: SeedMnist(images),
            "aelab": lambda cfg=cfg, u8=u8: (u8, unit, cfg),
            "batch": cfg.batch_size,
            "u8": u8,
            "sustained_steps": math.ceil(args.sustained_epochs * len(u8) / cfg.batch_size),
        }
    if "dogs" in studies:
        folder, source = dog_folder(args.data / "dogs", tmp, args.photos)
        t0 = time.perf_counter()
        u8, files = decode_all(folder)
        decode_s = time.perf_counter() - t0
        source = f"{len(files)} {source}" if source.startswith("photos") else source
        for name, arch, make, label in (
            ("dogs_jscc", "jscc", JSCCAutoencoder, "dogs JSCC AE (default, 16x8x8 code)"),
            ("dogs", "lab", ConvAutoencoder, "dogs conv AE (lab layout, 16x8x8 code)"),
        ):
            cfg = study_config("dogs", args, arch)
            setups[name] = {
                "label": label,
                "source": source,
                "make": make,
                "objective": RECONSTRUCTION["mse"],
                "sample": signed(u8[:4].clone()),
                "seed": lambda files=files: SeedDogs(files),
                "aelab": lambda cfg=cfg, u8=u8: (u8, signed, cfg),
                "batch": cfg.batch_size,
                "decode_once_s": decode_s,
                "sustained_steps": args.sustained_steps,
            }

    paths: dict[str, dict[str, Loop]] = {}
    for name, s in setups.items():
        torch.manual_seed(0)
        s["flops"] = flops_per_sample(s["make"](), s["objective"], s["sample"])
        torch.manual_seed(0)
        seed_path = SeedPath(s["make"](), s["seed"](), s["objective"], device, args.seed_batch)
        torch.manual_seed(0)
        data, prepare, cfg = s["aelab"]()
        aelab_path = AelabPath(s["make"](), data, prepare, s["objective"], cfg, device)
        for p in (seed_path, aelab_path):  # warm-up: allocator, kernels, compile
            for _ in range(args.warmup):
                p.step()
        _sync(device)
        paths[name] = {"seed": seed_path, "aelab": aelab_path}
    setup_s = time.perf_counter() - t_setup

    any_bf16 = any(pair["aelab"].amp for pair in paths.values())
    workers = usable_cores() if device.type == "cpu" and sys.platform.startswith("linux") else 1
    rounds: list[dict] = []
    gemm_all: list[list[float]] = []
    gemm_bf16_all: list[list[float]] = []
    for r in range(args.rounds):
        gemm_all.append(gemm_runs(device, min(1.5, slice_s)))
        row: dict = {"gemm_gflops": statistics.median(gemm_all[-1])}
        if any_bf16:  # bf16 autocast's roofline, measured alongside
            gemm_bf16_all.append(gemm_runs(device, min(1.5, slice_s), torch.bfloat16))
            row["gemm_bf16_gflops"] = statistics.median(gemm_bf16_all[-1])
        for name, pair in paths.items():
            fetched = pair["seed"].fetch_s
            for kind in ("seed", "aelab"):
                n, t = pair[kind].run(slice_s)
                row[f"{name}.{kind}"] = n / t
                if kind == "seed":
                    row[f"{name}.seed_data_share"] = (pair["seed"].fetch_s - fetched) / t
            load = pair["aelab"].load_seconds()
            row[f"{name}.data_share"] = load * row[f"{name}.aelab"] / pair["aelab"].batch_size
            if name == "mnist" and workers > 1:
                row["mnist.side_by_side"] = side_by_side(pair["aelab"], slice_s, workers)
        rounds.append(row)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), file=sys.stderr)

    def med(key: str) -> float:
        return statistics.median(row[key] for row in rounds)

    result: dict = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/bench.py", *argv]),
        "machine": {
            "device": str(device),
            "name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "cpu_model": _cpu_name(),
            "bf16_features": bf16_features(),
            "subnormals_flushed": args.subnormals_flushed,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "settings": {
            "cpu_amp": args.cpu_amp,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "compile": args.compile,
            "channels_last": args.channels_last,
            "seed_batch": args.seed_batch,
            "subnormals": args.subnormals,
            "sustained_epochs": args.sustained_epochs,
            "sustained_steps": args.sustained_steps,
            "windows": args.windows,
        },
        "setup_seconds": round(setup_s, 2),
        "gemm_gflops": med("gemm_gflops"),
        "gemm_reference": spread([g for runs in gemm_all for g in runs]),
        "models": {},
        "rounds": rounds,
    }
    if any_bf16:
        result["gemm_bf16_gflops"] = med("gemm_bf16_gflops")
        result["gemm_bf16_reference"] = spread([g for runs in gemm_bf16_all for g in runs])

    def fraction(name: str, gemm_key: str, path: str = "aelab") -> float:
        """A path's model GFLOP/s over the GEMM figure, round by round (both saw the same load), median."""
        return statistics.median(setups[name]["flops"] * row[f"{name}.{path}"] / 1e9 / row[gemm_key] for row in rounds)

    for name, s in setups.items():
        aelab_sps, seed_sps = med(f"{name}.aelab"), med(f"{name}.seed")
        bf16 = paths[name]["aelab"].amp
        entry = {
            "label": s["label"],
            "data": s["source"],
            "aelab_batch": s["batch"],
            "channels_last": paths[name]["aelab"].channels_last,
            "bf16_autocast": bf16,
            "flops_per_sample": s["flops"],
            "seed_samples_per_s": seed_sps,
            "aelab_samples_per_s": aelab_sps,
            "speedup_vs_seed": statistics.median(row[f"{name}.aelab"] / row[f"{name}.seed"] for row in rounds),
            "aelab_gflops": s["flops"] * aelab_sps / 1e9,
            "seed_gflops": s["flops"] * seed_sps / 1e9,
            # of the fp32 GEMM (the yardstick) and of the GEMM in the precision it trains in
            "aelab_fraction_of_gemm": fraction(name, "gemm_gflops"),
            "aelab_fraction_of_same_precision_gemm": fraction(name, "gemm_bf16_gflops" if bf16 else "gemm_gflops"),
            "aelab_fraction_of_bf16_gemm": fraction(name, "gemm_bf16_gflops") if any_bf16 else None,
            "data_share": med(f"{name}.data_share"),
            "seed_data_share": med(f"{name}.seed_data_share"),
        }
        if "decode_once_s" in s:
            entry["decode_once_s"] = round(s["decode_once_s"], 3)
        if f"{name}.side_by_side" in rounds[0]:  # the study's default on this CPU: one-thread workers side by side
            entry["side_by_side"] = {
                "workers": workers,
                "samples_per_s": med(f"{name}.side_by_side"),
                "speedup_vs_seed": statistics.median(
                    row[f"{name}.side_by_side"] / row[f"{name}.seed"] for row in rounds
                ),
                "fraction_of_gemm": fraction(name, "gemm_gflops", "side_by_side"),
                "fraction_of_bf16_gemm": fraction(name, "gemm_bf16_gflops", "side_by_side") if any_bf16 else None,
            }
        result["models"][name] = entry
    if args.sustained_epochs > 0 and args.windows > 0:
        for name, s in setups.items():
            torch.manual_seed(0)
            data, prepare, cfg = s["aelab"]()
            fresh = AelabPath(s["make"](), data, prepare, s["objective"], cfg, device)
            for _ in range(args.warmup):
                fresh.step()
            result["models"][name]["sustained"] = sustained(fresh, s["sustained_steps"], args.windows)
            print(f"{name} sustained: {result['models'][name]['sustained']}", file=sys.stderr)
    if "mnist" in setups and args.baseline_samples > 0:
        ttl = time_to_loss(setups["mnist"], setups["mnist"]["u8"], args, device)
        result["models"]["mnist"]["time_to_baseline_loss"] = ttl
        print(f"time to the seed loop's held-out loss: {ttl}", file=sys.stderr)
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def bf16_features() -> dict:
    """The CPU's bf16 hardware (its /proc/cpuinfo flags) and whether oneDNN runs bf16 natively here."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2")
    return {"flags": [f for f in wanted if f in flags], "onednn_bf16": cpu_bf16_supported()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def print_table(result: dict) -> None:
    m = result["machine"]
    out = io.StringIO()
    print(f"{m['name']} ({m['device']}, {m['torch_threads']} threads), torch {m['torch']}, {result['date']}", file=out)
    feats = m["bf16_features"]
    print(
        f"CPU {m['cpu_model']}: flags {' '.join(feats['flags']) or 'none of avx2/avx512/amx'}; oneDNN bf16 "
        f"{'native' if feats['onednn_bf16'] else 'not native (bf16 autocast off)'}; subnormals "
        f"{'flushed to zero' if m['subnormals_flushed'] else 'kept'}",
        file=out,
    )
    for key, label in (("gemm_reference", "fp32"), ("gemm_bf16_reference", "bf16")):
        if key in result:
            g = result[key]
            print(
                f"{label} GEMM 2048x2048: {g['median']:.1f} GFLOP/s (median of {g['runs']} warmed-up runs, "
                f"{g['min']:.1f}-{g['max']:.1f}, spread {g['spread']:.0%})",
                file=out,
            )
    print(f"load average before/after: {m['loadavg_before']} / {m['loadavg_after']}", file=out)
    head = (
        f"{'model':<40} {'prec.':>5} {'seed/s':>8} {'aelab/s':>8} {'speedup':>8} {'MFLOP/smp':>10} "
        f"{'GFLOP/s':>8} {'of fp32 GEMM':>12} {'of bf16 GEMM':>12} {'data':>6}"
    )
    print(head, file=out)
    for e in result["models"].values():
        bf16 = "-" if e["aelab_fraction_of_bf16_gemm"] is None else f"{e['aelab_fraction_of_bf16_gemm']:.0%}"
        print(
            f"{e['label']:<40} {'bf16' if e['bf16_autocast'] else 'fp32':>5} {e['seed_samples_per_s']:>8.0f} "
            f"{e['aelab_samples_per_s']:>8.0f} {e['speedup_vs_seed']:>7.2f}x {e['flops_per_sample'] / 1e6:>10.1f} "
            f"{e['aelab_gflops']:>8.1f} {e['aelab_fraction_of_gemm']:>12.0%} {bf16:>12} {e['data_share']:>6.1%}",
            file=out,
        )
    side = result["models"].get("mnist", {}).get("side_by_side")
    if side:
        bf16 = "" if side["fraction_of_bf16_gemm"] is None else f", {side['fraction_of_bf16_gemm']:.0%} of bf16 GEMM"
        print(
            f"MNIST side by side ({side['workers']} one-thread processes, as aelab mnist --jobs): "
            f"{side['samples_per_s']:.0f} samples/s, {side['speedup_vs_seed']:.2f}x the seed loop, "
            f"{side['fraction_of_gemm']:.0%} of fp32 GEMM{bf16}",
            file=out,
        )
    for e in result["models"].values():
        sus = e.get("sustained")
        if sus:
            print(
                f"{e['label']} sustained over {sus['steps']:,} steps: first window {sus['first_window_samples_per_s']:.0f}"
                f", last {sus['last_window_samples_per_s']:.0f} samples/s, drift {sus['drift']:.2f}"
                f"{'  <- STALL' if sus['drift'] < 0.8 else ''}",
                file=out,
            )
    ttl = result["models"].get("mnist", {}).get("time_to_baseline_loss")
    if ttl:
        print(
            f"MNIST time to the seed loop's held-out loss after {ttl['baseline_samples']:,} samples "
            f"({ttl['baseline_loss']:.4f}): seed loop {ttl['seed_seconds']:.1f} s, aelab "
            f"{ttl['aelab_seconds']:.1f} s ({ttl['aelab_samples']:,} samples, loss {ttl['aelab_loss']:.4f}"
            f"{'' if ttl['reached'] else ', not reached'}): {ttl['speedup']:.2f}x",
            file=out,
        )
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
