"""``run_mnist``: the MNIST study from its config to a finished run folder."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from aelab.data.base import ImageData
from aelab.data.identity import DatasetIdentity, recognise
from aelab.data.mnist import load_mnist
from aelab.report import listing
from aelab.studies.base import Session
from aelab.studies.mnist.config import MnistConfig
from aelab.studies.mnist.context import MnistRun
from aelab.studies.mnist.explorer_page import write_explorer
from aelab.studies.mnist.recipes import RECIPES
from aelab.studies.mnist.registry import REGISTRY

QUICK_SPLIT = (1024, 256)  # --quick: training and test images kept


def run_mnist(cfg: MnistConfig) -> Path:
    """Run the study and return the output folder (no ``parts``: the registry's default parts)."""
    cfg = replace(cfg, parts=cfg.parts or REGISTRY.defaults)
    started = time.perf_counter()
    s = Session(cfg.out, "aelab: deep autoencoders", cfg.device, cfg.seed, cfg.resume, cfg.overwrite)
    with s.guard():
        data, identity = load_data(cfg)
        s.report.set_title(f"aelab: deep autoencoders on {identity.name}")
        run = MnistRun(cfg, s, data, identity, REGISTRY, RECIPES)
        run.open_tensorboard("unit")
        s.write_config(cfg)
        _introduce(run)
        run.run_parts()
        run.timed("explorer", write_explorer)
        run.finish("BCE per pixel", started)
    return s.run.path


def load_data(cfg: MnistConfig) -> tuple[ImageData, DatasetIdentity]:
    """The images a run of ``cfg`` trains and scores on (``--quick``: its subset), and which data set they are."""
    data = load_mnist(cfg.data, allow_download=cfg.allow_download)
    if data.train_labels is None or data.test_labels is None:
        raise ValueError("MNIST data without labels")
    identity = recognise(data, cfg.data)
    if cfg.quick:
        data = _subset(data, *QUICK_SPLIT)
    return data, identity


def _subset(data: ImageData, n_train: int, n_test: int) -> ImageData:
    return ImageData(
        data.train[:n_train],
        data.test[:n_test],
        data.train_labels[:n_train],
        data.test_labels[:n_test],
        data.source,
        dict(data.info),
    )


def _introduce(run: MnistRun) -> None:
    """The report's opening paragraph and the run-wide metrics."""
    cfg, data, r = run.cfg, run.data, run.report
    epochs = run.epochs(RECIPES["ae2d"])
    shape = data.shape
    names = run.identity.class_names
    listed = listing(names) if run.identity.known and run.identity.item != "digit" else f"{names[0]}..{names[-1]}"
    classes = f"{len(names)} classes ({listed})"
    r.text(
        f"Data: **{run.identity.name}** ({data.source}), {len(data.train):,} training and {len(data.test):,} test "
        f"images ({shape[1]}x{shape[2]}), {classes}. Every number below is on the test images. Each "
        f"model trains for {epochs} epochs (batch {cfg.batch_size}, Adam, lr {cfg.lr:g} with warm-up and cosine "
        f"decay, seed {cfg.seed}). Hidden widths {'-'.join(map(str, (784, *run.hidden)))}-bottleneck and mirror. "
        + (
            "Training steps use bf16 autocast (weights, optimiser and every evaluation stay fp32)."
            if run.bf16
            else "Training is full fp32."
        )
    )
    r.metric("data", data.summary())
    r.metric("config", {"epochs": epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "hidden": list(run.hidden)})
