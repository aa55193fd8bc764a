"""Dog-photo autoencoders side by side at one training budget: held-out PSNR per unit of compute.

A measurement, not a test. Each job trains one layout (the lab's, or the JSCC layout at some widths) from
the same seed for a budget of training images on the photo folder's training split, with the study's
optimiser settings (batch 64, Adam, warm-up then cosine), then trains noisy models from it by one
strategy, and reports the held-out PSNR on a clean channel and at each of the lab's noise variances.

Jobs are strings of ``key=value`` pairs joined by ``;``:

- ``arch``: ``lab`` or ``jscc:W32,W16,W8/B16,B8`` (widths at the 32x32, 16x16, 8x8 scales; residual blocks);
- ``ae``: training images of the plain AE (from scratch);
- ``lr``: Adam's learning rate (default 2e-3, the study's); ``clip``: gradient-norm clipping (default 0: off);
- the levers of the training loop: ``batch`` (default 64), ``schedule`` (``cosine``, the study's warm-up then
  cosine, or ``constant``), ``flip`` (1: random left-right flips), ``ema`` (an EMA decay; 0: off),
  ``compile`` (1: ``torch.compile``, its compile time counted in the job's seconds);
- ``wall``: give the plain AE this much training wall time instead of ``ae`` images: a short calibration
  run of the job's own step (compiled, for ``compile=1``) measures images per second on this machine, and the
  AE then trains on exactly that many images (the schedule spans them), so jobs compare at equal wall time;
- ``images``: or exactly this many training images for the plain AE, trained as one pass (no calibration):
  levers that cost nothing per image (flips, the EMA) compare at equal images without the calibration's noise;
- ``seed``: this job's seed (default: ``--seed``), for a seed spread inside one batch of jobs;
- ``noisy``: how the noisy models are made (training images in each phase):
  ``ft:N`` one model per variance, fine-tuned from the AE for N images each;
  ``adapt:N[:LO,HI]`` one SNR-adaptive model, fine-tuned from the AE over SNRs LO..HI dB (default 0..20),
  evaluated at every variance; ``adapt_ft:N:M`` that model, then fine-tuned for M images per variance;
  ``scratch:N`` one model per variance from scratch for N images (``ae`` is then unused).

    python benchmarks/dogs_arch.py --data ../shared/data/dogs --procs 4 \
        --job "arch=lab;ae=72000;noisy=ft:12000" --job "arch=jscc:32,64,128/1,2;ae=72000;noisy=adapt:24000"
    python benchmarks/dogs_arch.py --data ../shared/data/dogs \
        --job "arch=jscc;lr=1e-3;clip=1;wall=300" --job "arch=jscc;lr=1e-3;clip=1;wall=300;flip=1;ema=0.995"

Each job prints one JSON line (also appended to ``--json``); the end is a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import torch

VARIANCES = (0.05, 0.1, 0.15)


DEFAULTS = {"arch": "lab", "ae": 72_000, "lr": 2e-3, "clip": 0.0, "noisy": "none", "batch": 64,
            "schedule": "cosine", "flip": 0, "ema": 0.0, "compile": 0, "wall": 0.0, "images": 0, "seed": -1}  # fmt: skip
CALIBRATION_STEPS = (3, 8)  # warm-up steps (compilation included), then timed steps


def parse_job(text: str) -> dict:
    job = dict(DEFAULTS)
    for part in filter(None, text.split(";")):
        key, _, value = part.partition("=")
        if key not in job:
            raise SystemExit(f"unknown job key {key!r} in {text!r} (keys: {', '.join(job)})")
        job[key] = value if isinstance(job[key], str) else type(job[key])(float(value))
    return job


def budget_tensor(train: torch.Tensor, images: int, seed: int) -> torch.Tensor:
    """Exactly ``images`` training photos: whole shuffled passes over ``train``, the last one cut short.

    Trained as one epoch, so the warm-up and cosine schedule span the budget however it falls on the set.
    """
    g = torch.Generator().manual_seed(seed)
    passes = [torch.randperm(len(train), generator=g) for _ in range(-(-images // len(train)))]
    return train[torch.cat(passes)[:images]]


def images_per_second(model, objective, train, prepare, cfg, device) -> tuple[float, float]:
    """(images per second, seconds of the warm-up) of this job's own step on a copy of ``model``."""
    import copy

    from aelab.speed import make_optimizer
    from aelab.train import flip_half, load_batch, train_step, wrap_model

    probe = copy.deepcopy(model).to(device)
    net = wrap_model(probe, cfg, device)
    optimizer = make_optimizer(probe, cfg)
    gen = torch.Generator(device=device).manual_seed(0)
    warmup, timed = CALIBRATION_STEPS

    def steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(len(train), (cfg.batch_size,), generator=gen)
            x = load_batch(train, idx, prepare, bool(cfg.channels_last), device)
            x = flip_half(x, gen) if cfg.flip else x
            float(train_step(net, objective, optimizer, x, gen, cfg.cpu_amp, clip_grad=cfg.clip_grad))
        return time.perf_counter() - t0

    warm = steps(warmup)
    return timed * cfg.batch_size / steps(timed), warm


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
    seed = seed if job["seed"] < 0 else int(job["seed"])
    dev = torch.device(device)
    data = load_photos(data_dir, progress=False)
    n = len(data.train)
    bf16 = dev.type == "cuda" or cpu_bf16_supported()
    x01 = data.test.float() / 255.0

    def config(epochs: int) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=int(job["batch"]), lr=job["lr"], seed=seed, cpu_amp=bf16,
                           clip_grad=job["clip"], channels_last=True if bf16 else None, schedule=job["schedule"],
                           flip=bool(job["flip"]), ema=job["ema"], compile=bool(job["compile"]))  # fmt: skip

    def objective_of(model):
        return channel_mse if getattr(model, "channel", None) is not None else (
            lambda m, x, gen=None: F.mse_loss(m(x)["x_hat"].float(), x))  # fmt: skip

    def train(model, samples: int, label: str) -> float:
        t0 = time.perf_counter()
        fit(label, model, objective_of(model), data.train, data.test, signed, config(max(1, round(samples / n))), dev)
        return time.perf_counter() - t0

    def train_for(model, seconds: float, images: int, label: str) -> tuple[float, int]:
        """Train for about ``seconds`` of wall time (calibration excluded), or on exactly ``images`` when it is
        given; returns (seconds, images)."""
        cfg = config(1)
        if not images:
            rate, warm = images_per_second(model, objective_of(model), data.train, signed, cfg, dev)
            # whole batches only: a last short batch would make a compiled model compile a second time
            images = cfg.batch_size * max(1, int((seconds - (warm if cfg.compile else 0.0)) * rate) // cfg.batch_size)
            row["rate"], row["compile_s"] = round(rate, 2), round(warm, 1) if cfg.compile else 0.0
        t0 = time.perf_counter()
        fit(label, model, objective_of(model), budget_tensor(data.train, images, seed), data.test, signed, cfg, dev)
        return time.perf_counter() - t0, images

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
        if job["wall"] > 0 or job["images"] > 0:
            seconds, images = train_for(ae, job["wall"], int(job["images"]), "ae")
            row["seconds"] += seconds
            row["samples"] += images
        else:
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
        "seconds",
        "ae_clean",
        "adapt_clean",
        *(f"{k}_{v:g}" for k in ("adapt", "noisy") for v in VARIANCES),
    ]
    print("\n| job | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['job']} | " + " | ".join(str(r.get(c, "-")) for c in cols) + " |")


if __name__ == "__main__":
    main()
