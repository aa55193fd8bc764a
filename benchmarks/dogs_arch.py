"""Dog-photo autoencoders side by side at one training budget: held-out PSNR per unit of compute.

A measurement, not a test. Each job trains one layout (the lab's, or the JSCC layout at some widths) from
the same seed for a budget of training images on the photo folder's training split, with the study's
optimiser settings (batch 64, Adam, warm-up then cosine), then trains noisy models from it by one
strategy, and reports the held-out PSNR on a clean channel and at each of the lab's noise variances.

Jobs are strings of ``key=value`` pairs joined by ``;``:

- ``arch``: ``lab`` or ``jscc:W32,W16,W8/B16,B8`` (widths at the 32x32, 16x16, 8x8 scales; residual blocks);
- ``ae``: training images of the plain AE (from scratch);
- ``lr``: Adam's learning rate (default 2e-3, the study's); ``clip``: gradient-norm clipping (default 0: off);
- ``noisy``: how the noisy models are made (training images in each phase):
  ``ft:N`` one model per variance, fine-tuned from the AE for N images each;
  ``adapt:N[:LO,HI]`` one SNR-adaptive model, fine-tuned from the AE over SNRs LO..HI dB (default 0..20),
  evaluated at every variance; ``adapt_ft:N:M`` that model, then fine-tuned for M images per variance;
  ``scratch:N`` one model per variance from scratch for N images (``ae`` is then unused).

    python benchmarks/dogs_arch.py --data ../shared/data/dogs --procs 4 \
        --job "arch=lab;ae=72000;noisy=ft:12000" --job "arch=jscc:32,64,128/1,2;ae=72000;noisy=adapt:24000"

Each job prints one JSON line (also appended to ``--json``); the end is a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import torch

VARIANCES = (0.05, 0.1, 0.15)


def parse_job(text: str) -> dict:
    job = {"arch": "lab", "ae": 72_000, "lr": 2e-3, "clip": 0.0, "noisy": "none"}
    for part in filter(None, text.split(";")):
        key, _, value = part.partition("=")
        if key not in job:
            raise SystemExit(f"unknown job key {key!r} in {text!r} (keys: {', '.join(job)})")
        job[key] = type(job[key])(float(value)) if key in ("ae", "lr", "clip") else value
    return job


def build(arch: str, channel):  # -> nn.Module
    from aelab.models.conv import ConvAutoencoder
    from aelab.models.jscc import JSCCAutoencoder

    if arch == "lab":
        return ConvAutoencoder(channel=channel)
    name, _, spec = arch.partition(":")
    if name != "jscc":
        raise SystemExit(f"unknown arch {arch!r} (lab or jscc:W32,W16,W8/B16,B8)")
    widths, _, blocks = spec.partition("/")
    kwargs = {}
    if widths:
        kwargs["widths"] = tuple(int(v) for v in widths.split(","))
    if blocks:
        kwargs["blocks"] = tuple(int(v) for v in blocks.split(","))
    return JSCCAutoencoder(channel=channel, **kwargs)


def run_job(text: str, data_dir: str, device: str, seed: int) -> dict:
    import torch.nn.functional as F

    from aelab.data.photos import load_photos
    from aelab.data.scaling import from_signed, signed
    from aelab.evaluate import mean_psnr, predict
    from aelab.losses import channel_mse
    from aelab.models.channel import AWGNChannel
    from aelab.models.jscc import macs_per_image
    from aelab.speed import cpu_bf16_supported
    from aelab.train import TrainConfig, fit

    job = parse_job(text)
    dev = torch.device(device)
    data = load_photos(data_dir, progress=False)
    n = len(data.train)
    bf16 = dev.type == "cuda" or cpu_bf16_supported()
    x01 = data.test.float() / 255.0

    def train(model, samples: int, label: str) -> float:
        cfg = TrainConfig(epochs=max(1, round(samples / n)), batch_size=64, lr=job["lr"], seed=seed, cpu_amp=bf16, clip_grad=job["clip"],
                          channels_last=True if bf16 else None)  # fmt: skip
        objective = channel_mse if getattr(model, "channel", None) is not None else (
            lambda m, x, gen=None: F.mse_loss(m(x)["x_hat"].float(), x))  # fmt: skip
        t0 = time.perf_counter()
        fit(label, model, objective, data.train, data.test, signed, cfg, dev)
        return time.perf_counter() - t0

    def psnr(model, variance: float | None) -> float:
        kw = (
            {"noise": False}
            if variance is None
            else {"noise": True, "variance": variance, "generator": torch.Generator(device=dev).manual_seed(seed + 11)}
        )
        out = predict(model, data.test, signed, dev, 256, **kw)
        return round(mean_psnr(from_signed(out["x_hat"]), x01), 3)

    def child(parent, channel):
        torch.manual_seed(seed + 1)
        model = build(job["arch"], channel)
        if parent is not None:
            model.load_state_dict(parent.state_dict())
        return model

    row: dict = {"job": text, **job, "seconds": 0.0, "samples": 0}
    strategy, *args = job["noisy"].split(":")
    ae = None
    if strategy != "scratch":
        torch.manual_seed(seed)
        ae = build(job["arch"], None)
        row["macs_m"] = round(macs_per_image(ae) / 1e6, 1)
        row["seconds"] += train(ae, int(job["ae"]), "ae")
        row["samples"] += int(job["ae"])
        row["ae_clean"] = psnr(ae, None)
    if strategy in ("adapt", "adapt_ft"):
        lo, hi = (float(v) for v in args[1].split(",")) if len(args) > 1 and strategy == "adapt" else (0.0, 20.0)
        adaptive = child(ae, AWGNChannel(0.1, (lo, hi)))
        row["seconds"] += train(adaptive, int(args[0]), "adaptive")
        row["samples"] += int(args[0])
        row["adapt_clean"] = psnr(adaptive, None)
        for v in VARIANCES:
            row[f"adapt_{v:g}"] = psnr(adaptive, v)
        if strategy == "adapt_ft":
            ae = adaptive
            strategy, args = "ft", args[1:]
    if strategy in ("ft", "scratch"):
        for v in VARIANCES:
            model = child(ae if strategy == "ft" else None, AWGNChannel(v))
            if strategy == "scratch":
                torch.manual_seed(seed)
                model = build(job["arch"], AWGNChannel(v))
                row["macs_m"] = round(macs_per_image(model) / 1e6, 1)
                model = model.to(dev)
            row["seconds"] += train(model, int(args[0]), f"noisy{v:g}")
            row["samples"] += int(args[0])
            row[f"noisy_{v:g}"] = psnr(model, v)
            row[f"noisy_{v:g}_clean"] = psnr(model, None)
    row["seconds"] = round(row["seconds"], 1)
    return row


def _worker(args: tuple) -> dict:
    text, data_dir, device, seed = args
    try:
        row = run_job(text, data_dir, device, seed)
    except Exception as e:  # one failed job must not lose the others' rows
        row = {"job": text, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--job", action="append", required=True, help="a job string (see the module docstring)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--procs", type=int, default=1, help="jobs run at once, each in its own process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="append each job's row to this JSON-lines file")
    args = p.parse_args()

    from aelab.data.photos import load_photos

    load_photos(args.data, progress=False)  # decode once into the cache before the workers read it
    work = [(j, args.data, args.device, args.seed) for j in args.job]
    rows = []
    with mp.get_context("spawn").Pool(args.procs) as pool:
        for row in pool.imap_unordered(_worker, work, chunksize=1):  # each row kept as soon as its job ends
            rows.append(row)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
    cols = [
        "macs_m",
        "samples",
        "ae_clean",
        "adapt_clean",
        *(f"{k}_{v:g}" for k in ("adapt", "noisy") for v in VARIANCES),
    ]
    print("\n| job | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['job']} | " + " | ".join(str(r.get(c, "-")) for c in cols) + " |")


if __name__ == "__main__":
    main()
