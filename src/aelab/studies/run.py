"""The context every part of a run receives: config, data, session, report, and the models, lazily.

``run.model(name)`` trains (or reloads) the model of that recipe the first time any part asks and
returns the same object afterwards, so the parts never pass models to each other and never say in
advance what they will need. The run times each part, and the report's Run section states it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from typing import Any

from torch import nn

from aelab.data.base import ImageData
from aelab.studies.base import Session
from aelab.studies.config import StudyConfig
from aelab.studies.parts import Part, Registry
from aelab.studies.recipe import Recipe, epochs_for
from aelab.train import TrainConfig


class StudyRun:
    """One run of a study: what its parts share. Subclasses add the study's own shared values."""

    quick_epochs = 1
    study = ""  # the study's name (``aelab <study>``), recorded in metrics.json's run block

    def __init__(
        self, cfg: StudyConfig, session: Session, data: ImageData, registry: Registry, recipes: Mapping[str, Recipe]
    ) -> None:
        self.cfg = cfg
        self.session = session
        self.data = data
        self.registry = registry
        self.recipes = dict(recipes)
        self.report = session.report
        self.device = session.device
        self.part: Part | None = None
        self.wall_seconds: dict[str, float] = {}
        self.workers = 1  # processes that trained models side by side (``--jobs``; 1: none)
        self._models: dict[str, nn.Module] = {}
        self.tensorboard: Any = None

    def open_tensorboard(self, scaling: str, n_images: int = 8) -> None:
        """With ``--tensorboard DIR``: every model's losses, lr and reconstructions of a few held-out images."""
        if self.cfg.tensorboard is None:
            return
        from aelab.data.scaling import SCALINGS, TO_UNIT
        from aelab.tensorboard import TensorBoardLog

        images = self.data.test[:n_images]
        self.tensorboard = TensorBoardLog(
            self.cfg.tensorboard, images, SCALINGS[scaling], TO_UNIT[scaling], self.device
        )
        self.session.hooks.append(self.tensorboard.on_epoch)

    # ------------------------------------------------------------------ training
    @property
    def bf16(self) -> bool:
        """Whether training steps run under bf16 autocast (``--precision auto`` on a device with native bf16:
        CUDA, a CPU with AVX512-BF16 or AMX, MPS on macOS 14 with a build that autocasts there)."""
        from aelab.speed import use_amp

        return use_amp(self.base_train_config, self.device)

    @cached_property
    def base_train_config(self) -> TrainConfig:
        cfg = self.cfg
        auto = cfg.precision == "auto"  # --precision fp32 is fp32 on every device, GPUs included
        return TrainConfig(
            batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, compile=cfg.compile, amp=auto, cpu_amp=auto
        )

    def epochs(self, recipe: Recipe) -> int:
        """The recipe's epochs: its own option if set, ``--epochs`` if given (and the recipe follows it), a quick
        run's few, else its budget."""
        own = getattr(self.cfg, recipe.epochs_option) if recipe.epochs_option else None
        if own:
            return own
        if self.cfg.quick:
            return self.cfg.epochs or self.quick_epochs
        if self.cfg.epochs and recipe.follows_epochs_flag:
            return self.cfg.epochs
        return epochs_for(recipe.samples, len(self.data.train), *recipe.epoch_bounds)

    def train_config(self, recipe: Recipe) -> TrainConfig:
        return replace(self.base_train_config, epochs=self.epochs(recipe), **recipe.settings(self))

    def model(self, name: str) -> nn.Module:
        """The trained model of recipe ``name`` (trained, resumed or reloaded once per run)."""
        if name not in self._models:
            recipe = self.recipes[name]
            warm = self.model(recipe.init_from) if recipe.init_from else None
            self._models[name] = self.session.train(recipe, self, init_from=warm)
        return self._models[name]

    def has_model(self, name: str) -> bool:
        """Whether this run has already trained (or reloaded) the model of recipe ``name``."""
        return name in self._models

    def label(self, name: str) -> str:
        return self.recipes[name].label or name

    # ------------------------------------------------------------------ report
    def section(self, title: str, offset: int = 0) -> None:
        """A report section numbered by the current part's place in the registry (``offset``: its later sections)."""
        assert self.part is not None
        self.report.section(f"{self.registry.number(self.part.name) + offset}. {title}")

    def timed(self, name: str, job: Any) -> None:
        """Run ``job(self)`` and record its wall time under ``name`` (the report's Run section lists it)."""
        t0 = time.perf_counter()
        job(self)
        self.wall_seconds[name] = time.perf_counter() - t0

    def train_ahead(self) -> None:
        """With ``--jobs`` (and models to share): train every model the selected parts name, side by side."""
        from aelab.studies.workers import train_side_by_side

        names = [n for part in self.registry if part.name in self.cfg.parts for n in part.models]
        t0 = time.perf_counter()
        self.workers = train_side_by_side(self, names)
        if self.workers > 1:
            self.wall_seconds["training_side_by_side"] = time.perf_counter() - t0

    def run_parts(self) -> None:
        """Each selected part in registry order (after :meth:`train_ahead`): compute its result, then write it; timed."""
        self.train_ahead()
        for part in self.registry:
            if part.name not in self.cfg.parts:
                continue
            self.part = part
            t0 = time.perf_counter()
            part.write(self, part.compute(self))
            self.wall_seconds[part.name] = time.perf_counter() - t0
        self.part = None

    def _subnormals(self) -> dict[str, str]:
        """The Run section's line on subnormal floats (CPU runs only: a GPU's own arithmetic is unaffected)."""
        if self.device.type != "cpu":
            return {}
        flushed = self.session.subnormals_flushed
        return {"subnormal_floats": "flushed to zero" if flushed else "kept (this CPU cannot flush them)"}

    def finish(self, loss_label: str, started: float) -> None:
        """The training-curves section, the Run section (device, times) and the atomic write."""
        from aelab import plots

        r = self.report
        r.section("Training curves")
        histories = self.session.histories
        r.figure(
            plots.loss_curves(histories, loss_label, {n: self.label(n) if n in self.recipes else n for n in histories}),
            "loss_curves",
            "Train (solid) and held-out (dashed) loss per epoch of every model"
            + ("; one panel per model, on a shared axis." if len(histories) > 1 else "."),
        )
        total = time.perf_counter() - started
        r.provenance(
            self.cfg.seed,
            self.device,
            {**self.wall_seconds, "total": total},
            extra={"study": self.study, "training_processes": self.workers, **self._subnormals()},
        )
        r.write()
        if self.tensorboard is not None:
            self.tensorboard.close()
