"""Where one training step spends its time (torch.profiler), by kind of op: the MNIST MLP or the dogs JSCC AE.

    python benchmarks/profile_step.py [--model mnist|jscc] [--batch 128 512] [--steps 40] [--penalty]

``--model jscc``: the dogs study's default (``JSCCAutoencoder``, MSE, clip 1.0, channels-last) on the real
64x64 photos, the same step; its kinds add convolutions, GDN, PReLU and the elementwise rest, and the ten
ops with the most self time are listed too.

Each step is the study's own (``aelab.train.load_batch`` + ``aelab.train.train_step``: a uint8 batch
gathered by index and made float, bf16 autocast where the CPU has native bf16, fused Adam). The
profiler's self CPU time per op is summed into kinds: the matmuls (forward and backward), the
activations and loss, autocast's dtype casts, the optimizer, the batch gather and everything else
and the time between ops (the profiled step's wall time minus the ops' sum: Python, dispatch and the
profiler itself). Prints one
Markdown table per batch size; RESULTS.md keeps them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import aelab  # noqa: F401  (first: it sets OMP_WAIT_POLICY)

# isort: split
import torch
from torch.profiler import ProfilerActivity, profile

from aelab.data.mnist import read_idx_folder
from aelab.data.photos import decode_folder
from aelab.data.scaling import signed, unit
from aelab.losses import RECONSTRUCTION, squared_weights
from aelab.models.jscc import JSCCAutoencoder
from aelab.models.mlp import MLPAutoencoder
from aelab.speed import cpu_bf16_supported, make_optimizer
from aelab.studies.dogs.recipes import CLIP_GRAD, LR
from aelab.train import TrainConfig, load_batch, train_step

LAMBDA = 1e-5  # the study's --l2-lambda
KINDS = {  # op name fragments, first match wins
    "convolutions (forward + backward)": ("convolution", "conv2d", "conv_depthwise", "mkldnn_conv"),
    "matmul (forward + backward)": ("addmm", "aten::mm", "aten::bmm", "matmul", "linear"),
    "PReLU": ("prelu",),
    "GDN (square root, division)": ("rsqrt", "aten::pow"),
    "gradient clipping": ("norm", "_foreach"),
    "autocast casts": ("_to_copy", "aten::to", "aten::copy_"),
    "optimizer (fused Adam)": ("adam", "zero_", "fill_"),
    "batch gather and scaling": ("aten::index", "aten::div"),
    "activations and loss": ("relu", "threshold", "sigmoid", "binary_cross", "log_sigmoid", "softplus", "mul", "add",
                             "sub", "neg", "exp", "sum", "mean", "clamp", "pow"),
}  # fmt: skip


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS.items():
        if any(k in low for k in keys):
            return kind
    return "other ops"


def profile_batch(
    train: torch.Tensor, batch: int, steps: int, penalty: str, model_name: str = "mnist"
) -> tuple[list[tuple[str, float, float]], list[tuple[str, float]]]:
    """(kind, share of the profiled step, ms of an unprofiled step) rows, and the top ops by share."""
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    amp = cpu_bf16_supported()
    gen = torch.Generator().manual_seed(0)
    if model_name == "jscc":
        model, prepare, channels_last = JSCCAutoencoder(), signed, True
        model.to(memory_format=torch.channels_last)
        cfg = TrainConfig(batch_size=batch, lr=LR["jscc"], cpu_amp=True, clip_grad=CLIP_GRAD["jscc"])
        objective = RECONSTRUCTION["mse"]
    else:
        model, prepare, channels_last = MLPAutoencoder(), unit, False
        cfg = TrainConfig(batch_size=batch, lr=3e-3, cpu_amp=True, l2_penalty=LAMBDA if penalty == "optimizer" else 0.0)
        bce = RECONSTRUCTION["bce"]
        objective = bce if penalty != "loss" else lambda m, x, g: bce(m, x, g) + LAMBDA * squared_weights(m)
    opt = make_optimizer(model, cfg)

    def step() -> None:
        idx = torch.randint(0, len(train), (batch,), generator=gen)
        x = load_batch(train, idx, prepare, channels_last, cpu)
        train_step(model, objective, opt, x, gen, amp, clip_grad=cfg.clip_grad)

    for _ in range(10):
        step()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - t0) / steps * 1e3
    per_kind: dict[str, float] = {}
    per_op: dict[str, float] = {}
    for e in prof.key_averages():
        per_kind[kind_of(e.key)] = per_kind.get(kind_of(e.key), 0.0) + e.self_cpu_time_total / 1e3 / steps
        per_op[e.key] = e.self_cpu_time_total / 1e3 / steps
    per_kind["between ops (Python, dispatch, profiler)"] = max(0.0, wall - sum(per_kind.values()))
    # the profiler's own overhead inflates the step: shares are of the profiled step, ms of the unprofiled one
    t1 = time.perf_counter()
    for _ in range(steps):
        step()
    plain = (time.perf_counter() - t1) / steps * 1e3
    rows = sorted(per_kind.items(), key=lambda r: -r[1])
    top = sorted(per_op.items(), key=lambda r: -r[1])[:10]
    return [(k, v / wall, v / wall * plain) for k, v in rows] + [("step (unprofiled wall time)", 1.0, plain)], [
        (k, v / wall) for k, v in top
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("mnist", "jscc"), default="mnist", help="the MNIST MLP or the dogs JSCC AE")
    p.add_argument("--batch", type=int, nargs="+", default=None, help="default: 128 512 2048 (mnist), 64 (jscc)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument(
        "--penalty",
        choices=("none", "loss", "optimizer"),
        default="none",
        help="an L2 penalty on the weights: none, written into the loss, or in the Adam step (the study's)",
    )
    p.add_argument(
        "--data", type=Path, default=None, help="MNIST IDX folder or dog photo folder (default: ../shared/data)"
    )
    args = p.parse_args()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if args.model == "jscc":
        photos = decode_folder(args.data or shared / "dogs", size=64, use_cache=False, progress=False)
        train = torch.from_numpy(photos.images).permute(0, 3, 1, 2).contiguous()
    else:
        train = read_idx_folder(args.data or shared / "mnist").train
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {cpu_bf16_supported()}")
    for batch in args.batch or ([64] if args.model == "jscc" else [128, 512, 2048]):
        rows, top = profile_batch(train, batch, args.steps, args.penalty, args.model)
        plain = rows[-1][2]
        print(f"\nbatch {batch}: {plain:.2f} ms per step, {batch / plain * 1e3:,.0f} samples/s\n")
        print("| kind of op | share of the step | ms per step |")
        print("|---|---|---|")
        for kind, share, ms in rows:
            print(f"| {kind} | {share:.0%} | {ms:.2f} |")
        print("\n| op (most self time) | share of the step |\n|---|---|")
        for op, share in top:
            print(f"| `{op}` | {share:.1%} |")


if __name__ == "__main__":
    main()
