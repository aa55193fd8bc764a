"""What every study shares: the run folder, the report, the device, and training with checkpoints."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.checkpoint import atomic_write
from aelab.data.scaling import SCALINGS
from aelab.errors import Terminated, TrainingInterrupted, UserError
from aelab.progress import Progress
from aelab.report import Report, RunDir
from aelab.runtime import barrier, configure_torch, device_kind, init_distributed, resolve_device, seed_everything
from aelab.speed import flushing_subnormals
from aelab.studies.recipe import Recipe
from aelab.train import Objective, Prepare, TrainConfig, TrainLog, fit


class Session:
    """One study run: device, seed, output folder, report, and every model's training history."""

    def __init__(
        self,
        out: str | Path,
        title: str,
        device: str = "auto",
        seed: int = 0,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.dist = init_distributed(device_kind(device))
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        configure_torch(self.device)
        self.seed = seed
        seed_everything(seed)
        self.run = RunDir(out, resume=resume, overwrite=overwrite)
        barrier()
        self.log = TrainLog(self.run.log_path)
        self.report = Report(self.run, title)
        self.histories: dict[str, list[dict]] = {}
        self.hooks: list = []  # called after every finished epoch of every model (aelab.train.EpochHook)
        self.progress: Progress | None = None  # where fit reports (None: its default; a worker sends to the main)
        self.subnormals_flushed = False  # set by guard(): subnormal floats flushed to zero for the run (CPU)

    def fit(
        self,
        name: str,
        model: nn.Module,
        objective: Objective,
        train: torch.Tensor,
        test: torch.Tensor,
        prepare: Prepare,
        cfg: TrainConfig,
        targets: tuple[torch.Tensor, torch.Tensor] | None = None,
        metrics_key: Sequence[str] | None = None,
        init_from: nn.Module | None = None,
        start: Callable[[nn.Module], Any] | None = None,
        worker: bool = False,
    ) -> nn.Module:
        """Train (or resume, or reload when finished) ``model`` under checkpoint ``name``.

        Every model restarts from the same seed, so adding or skipping parts never changes the
        others' results. ``targets`` (train, test labels) are for supervised models (see ``fit``).
        Studies call :meth:`train` with a recipe; this is the step underneath, for code that builds a
        model by hand. A model made with ``aelab.models.registry.build`` is described in ``checkpoints/models.json``
        (class, arguments, input scaling, and ``metrics_key``: where its numbers sit in
        metrics.json, default ``[name]``), so ``aelab evaluate`` can rebuild it later.
        ``init_from``: start from that trained model's weights (a warm start) instead of a fresh draw;
        a checkpoint of ``name``, when there is one, still takes precedence. ``start(model)``: another
        deterministic start, run only when there is no checkpoint of ``name`` yet. ``worker``: called in a
        worker process of :mod:`aelab.studies.workers`, which writes the checkpoint only (no log, no
        ``models.json``, no hooks; it reports its epochs to the main process through ``self.progress``): the
        main process reloads the model and does the rest.
        """
        if not worker:
            self._describe(name, model, prepare, metrics_key)
        _reinitialise(model, cfg.seed)
        if init_from is not None:
            model.load_state_dict(init_from.state_dict())
        if start is not None and not self.run.checkpoint(name).exists():
            start(model.to(self.device))
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.histories[name] = fit(
            name,
            model,
            objective,
            train,
            test,
            prepare,
            replace(cfg),
            self.device,
            self.run.checkpoint(name),
            None if worker else self.log,
            targets=targets,
            on_epoch=() if worker else self.hooks,
            progress=self.progress,
        )
        return model

    def train(self, recipe: Recipe, run: Any, init_from: nn.Module | None = None, worker: bool = False) -> nn.Module:
        """Train (or resume, or reload) the model of ``recipe`` for ``run`` (the study's run context)."""
        data = run.data
        targets = (data.train_labels, data.test_labels) if recipe.supervised else None
        return self.fit(
            recipe.name,
            recipe.build(run),
            recipe.objective(run),
            data.train,
            data.test,
            SCALINGS[recipe.scaling],
            run.train_config(recipe),
            targets=targets,
            metrics_key=recipe.key,
            init_from=init_from,
            start=None if recipe.warm_start is None else functools.partial(recipe.warm_start, run),
            worker=worker,
        )

    def write_config(self, cfg: Any) -> None:
        """``config.toml``: the run's resolved settings, which ``aelab <study> --config`` replays."""
        from aelab import __version__

        if self.dist.is_main:
            atomic_write(self.run.path / "config.toml", cfg.to_toml(__version__))

    def _describe(self, name: str, model: nn.Module, prepare: Prepare, metrics_key: Sequence[str] | None) -> None:
        from aelab.models.registry import MODELS_FILE, spec_of

        spec = spec_of(model)
        if spec is None or not self.dist.is_main:
            return
        path = self.run.checkpoints / MODELS_FILE
        try:
            models = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            models = {}
        models[name] = {
            **spec,
            "input": getattr(prepare, "__name__", "unit"),
            "metrics_key": list(metrics_key or [name]),
        }
        atomic_write(path, json.dumps(models, indent=2) + "\n")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """The run's body: on a CPU with subnormal floats flushed to zero throughout (training and evaluation:
        :func:`aelab.speed.flushing_subnormals`); writes the FAILED note when the study stops early, whatever
        the reason; releases the folder's lock."""
        try:
            with flushing_subnormals(self.device) as flushed:
                self.subnormals_flushed = flushed
                yield
        except TrainingInterrupted as e:
            self.run.fail(str(e))
            raise
        except UserError as e:
            self.run.fail(str(e))
            raise
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM outside a training step (evaluation, figures, a write)
            what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted (Ctrl-C)"
            self.run.fail(f"{what} outside training; checkpoints of finished epochs are kept")
            raise
        except BaseException as e:
            self.run.fail(f"{type(e).__name__}: {e}")
            raise
        finally:
            self.run.release()  # the run folder's lock (aelab.lock): the next run may use the folder


def _reinitialise(model: nn.Module, seed: int) -> None:
    """Draw the model's initial weights from ``seed`` alone.

    A model is built before it reaches ``Session.train``, after whatever else the study built or trained,
    so its constructor's random draws depend on that history. Resetting every layer here makes a model's
    starting point depend only on its architecture and the seed (the same on every rank).
    """
    torch.manual_seed(seed)
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
