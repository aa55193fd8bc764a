"""``run_dogs``: the dogs study from its config to a finished run folder."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from aelab.data.base import ImageData
from aelab.data.photos import load_photos, stanford_dogs_dir
from aelab.errors import UserError
from aelab.studies.base import Session
from aelab.studies.dogs.config import DogsConfig
from aelab.studies.dogs.context import DogsRun
from aelab.studies.dogs.explorer_page import write_explorer
from aelab.studies.dogs.recipes import CLIP_GRAD, FINE_TUNE_LR, LAB_PREFIX, lr_of, recipes, var_key
from aelab.studies.dogs.registry import REGISTRY

QUICK_LIMIT = 96  # --quick: photos used


def find_data(data: Path | None) -> Path:
    """The photo folder: the one given, else Stanford Dogs downloaded into the cache."""
    if data is not None:
        return Path(data)
    cached = stanford_dogs_dir()
    if cached is not None:
        return cached
    raise UserError(
        "no photos given: pass --data DIR (any folder of photos, e.g. Kaggle's all-dogs/) "
        "or fetch Stanford Dogs first with `aelab download stanford-dogs`"
    )


def load_data(cfg: DogsConfig, folder: Path | None = None) -> ImageData:
    """The photos a run of ``cfg`` trains and scores on (``folder``: the photo folder, when already found)."""
    return load_photos(folder or find_data(cfg.data), limit=cfg.limit or (QUICK_LIMIT if cfg.quick else None))


def run_dogs(cfg: DogsConfig) -> Path:
    """Run the study and return the output folder (no ``parts``: the registry's default parts)."""
    cfg = replace(cfg, parts=cfg.parts or REGISTRY.defaults)
    started = time.perf_counter()
    folder = find_data(cfg.data)  # before the run folder exists, so a missing folder leaves nothing behind
    s = Session(cfg.out, "aelab: deep autoencoders on dog photos", cfg.device, cfg.seed, cfg.resume, cfg.overwrite)
    with s.guard():
        data = load_data(cfg, folder)
        if len(data.train) < 2:
            raise UserError(f"{folder}: only {len(data.train)} usable training photo(s); the study needs more")
        run = DogsRun(cfg, s, data, REGISTRY, recipes(cfg.variances, cfg.arch))
        run.open_tensorboard("signed")
        s.write_config(cfg)
        _introduce(run)
        run.model("ae")  # every part stands on the plain AE; training it first keeps the log in reading order
        run.run_parts()
        run.timed("explorer", write_explorer)
        run.finish("MSE on [-1, 1]", started)
    return s.run.path


def _introduce(run: DogsRun) -> None:
    cfg, data, r = run.cfg, run.data, run.report
    ae_epochs = run.epochs(run.recipes["ae"])
    noisy_epochs = run.epochs(run.recipes[f"noisy_var{var_key(cfg.variances[0])}"])
    r.text(
        f"Data: **{data.source}** ({'read from' if data.info.get('cache') == 'hit' else 'decoded into'} the photo "
        f"cache), {len(data.train):,} training and {len(data.test):,} held-out photos, centre-cropped and resized to "
        f"{data.shape[1]}x{data.shape[2]} (Lanczos); {data.info.get('skipped', 0)} unreadable file(s) skipped. The "
        "held-out 10% are chosen by a hash of each file's relative path, so adding photos never moves one between "
        "the splits. Every number below is on the held-out photos unless it says otherwise. PSNR and SSIM are on "
        "the [0, 1] scale, per image, then averaged."
    )
    lr = lr_of(run, cfg.arch)
    adaptive = run.recipes.get("adaptive")
    path = (
        f"the SNR-adaptive model for {run.epochs(adaptive)} epochs from the AE's weights, each noisy model for "
        f"{noisy_epochs} epochs from the adaptive model's at {FINE_TUNE_LR:g}x the learning rate"
        if adaptive is not None
        else f"each noisy model for {noisy_epochs} epochs starting from the AE's weights"
    )
    r.text(
        f"Training: Adam, batch {cfg.batch_size}, peak lr {lr:g} with a short warm-up and cosine decay to 5%"
        + (f", gradients clipped to norm {CLIP_GRAD[cfg.arch]:g}" if CLIP_GRAD[cfg.arch] else "")
        + f", MSE on images scaled to [-1, 1], seed {cfg.seed}; architecture `{cfg.arch}`: the plain AE for "
        f"{ae_epochs} epochs, {path}. "
        + _levers_sentence(cfg)
        + (
            f"The lab's layout is trained beside it at its own defaults (lr {lr_of(run, 'lab'):g}, noisy models "
            f"fine-tuned from its AE). "
            if f"{LAB_PREFIX}ae" in run.recipes
            else ""
        )
        + (
            "Mixed precision: bf16 autocast (weights, optimiser and all evaluation stay fp32)."
            if run.bf16
            else "Full fp32."
        )
    )
    r.metric("data", data.summary())
    r.metric(
        "config",
        {
            "ae_epochs": ae_epochs,
            "noisy_epochs": noisy_epochs,
            "batch_size": cfg.batch_size,
            "arch": cfg.arch,
            "lr": lr,
            "latent_shape": list(run.latent),
            "variances": list(cfg.variances),
            "bf16_autocast": run.bf16,
        },
    )


def _levers_sentence(cfg) -> str:
    """What ``--flip`` and ``--ema`` changed, in one sentence (nothing when both are off)."""
    if not (cfg.flip or cfg.ema):
        return ""
    if cfg.arch == "lab":
        return "`--flip` and `--ema` leave the lab layout's recipe as the lab's. "
    said = (["trained on photos mirrored left-right at random"] if cfg.flip else []) + (
        [f"judged and saved as an exponential moving average of their weights (decay {cfg.ema:g})"] if cfg.ema else []
    )
    return f"The default layout's models are {' and '.join(said)}; the lab layout's keep the lab's recipe. "
