"""A finished run folder as Python objects: its metrics, report, figures and trained models.

``aelab.mnist(...)`` and ``aelab.dogs(...)`` return a :class:`Run`; ``aelab.open_run(path)`` opens any
finished run folder, also one the command line wrote. Nothing is read before it is asked for, and
models come back through :func:`aelab.evaluate_run.load_run_models`, the loader of ``aelab evaluate``
and ``aelab export``: a model a notebook holds is the model those commands score.

In Jupyter a run shows as its report, figures inline (:mod:`aelab.notebook`); ``run.section("dae")``
shows one part's section, e.g. under the notebook heading of the lab requirement it answers.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aelab.errors import UserError
from aelab.notebook import Markdown, figure_names, inline_figures, split_sections

STUDY_TITLES = {"dog photos": "dogs"}  # a report title's words -> its study, for runs that predate run.study


class Run:
    """A finished aelab run folder.

    ``metrics`` is ``metrics.json`` as a nested dict, ``report`` the path of ``report.md``, ``figures``
    its figures by name in reading order; :meth:`model` and :meth:`models` give the trained modules (in
    eval mode, on ``device``: ``auto`` picks CUDA, then Apple's GPU, then the CPU), :meth:`encode` and
    :meth:`decode` run them with each model's own input scaling.
    """

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise UserError(f"run folder {path} does not exist")
        failed = path / "FAILED"
        if failed.is_file():
            reason = next(
                (line[len("Reason: ") :] for line in failed.read_text().splitlines() if line.startswith("Reason: ")),
                "see its FAILED note",
            )
            raise UserError(f"the run in {path} did not finish ({reason}); run it again with resume=True")
        if not (path / "metrics.json").is_file() or not (path / "report.md").is_file():
            raise UserError(f"{path} holds no finished aelab run (no report.md and metrics.json)")
        self.path = path
        self._device_name = device
        self._models: dict[str, nn.Module] = {}
        self._specs: dict[str, dict] = {}

    # ------------------------------------------------------------------ what the run wrote
    @cached_property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json``: every number of the report, nested as the report's sections are."""
        return json.loads((self.path / "metrics.json").read_text())

    @property
    def report(self) -> Path:
        """The path of ``report.md``."""
        return self.path / "report.md"

    @property
    def figures(self) -> dict[str, Path]:
        """The report's figures, ``name -> path of figures/<name>.png``, in the order the report shows them."""
        return {Path(f).stem: self.path / f for f in figure_names(self.report.read_text())}

    @cached_property
    def settings(self) -> dict[str, Any]:
        """The run's resolved settings (``config.toml``, which ``aelab <study> --config`` replays)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        path = self.path / "config.toml"
        return tomllib.loads(path.read_text()) if path.is_file() else {}

    @cached_property
    def config(self) -> Any:
        """The run's settings as its study's config (``MnistConfig``, ``DogsConfig``), read from ``config.toml``
        through the same checks as ``--config``."""
        from aelab.studies.catalog import studies
        from aelab.studies.config import config_defaults_from_file, config_from_settings

        study = studies()[self.study]
        path = self.path / "config.toml"
        if not path.is_file():
            raise UserError(f"{self.path} has no config.toml, so its settings are unknown")
        defaults = config_defaults_from_file(path, study.config, self.study)
        return config_from_settings(study.config, study.registry, self.study, {}, defaults)

    def data(self) -> Any:
        """The images this run trained and scored on (an :class:`aelab.ImageData`: ``train``, ``test`` as
        uint8 ``(N, C, H, W)``, labels for MNIST), loaded again from the run's data settings."""
        from aelab.studies.catalog import studies

        return studies()[self.study].data(self.config)

    @property
    def study(self) -> str:
        """``mnist`` or ``dogs``."""
        study = self.metrics.get("run", {}).get("study")
        if study:
            return study
        title = self.report.read_text().splitlines()[0]
        return next((s for words, s in STUDY_TITLES.items() if words in title), "mnist")

    # ------------------------------------------------------------------ the trained models
    @cached_property
    def device(self) -> torch.device:
        """Where :meth:`model` puts the models."""
        from aelab.runtime import resolve_device

        return resolve_device(self._device_name)

    @property
    def model_names(self) -> list[str]:
        """Every model the run describes (``checkpoints/models.json``), in the order it trained them."""
        from aelab.models.registry import MODELS_FILE

        index = self.path / "checkpoints" / MODELS_FILE
        return list(json.loads(index.read_text())) if index.is_file() else []

    def model(self, name: str) -> nn.Module:
        """The trained model ``name`` (e.g. ``"ae2d"``, ``"noisy_var0.1"``), in eval mode on :attr:`device`."""
        if name not in self._models:
            from aelab.evaluate_run import load_run_models

            models, notes = load_run_models(self.path, self.device, [name])
            if name not in models:
                raise UserError(f"{self.path}: model {notes[0] if notes else name} cannot be loaded")
            self._specs[name], self._models[name] = models[name]
        return self._models[name]

    def models(self) -> dict[str, nn.Module]:
        """Every finished model of the run, by name (unfinished ones are left out, as ``aelab evaluate`` does)."""
        from aelab.evaluate_run import load_run_models

        missing = [n for n in self.model_names if n not in self._models]
        if missing:
            models, _ = load_run_models(self.path, self.device, missing)
            for name, (spec, model) in models.items():
                self._specs[name], self._models[name] = spec, model
        return {n: self._models[n] for n in self.model_names if n in self._models}

    def _scaling(self, name: str) -> str:
        self.model(name)
        return self._specs[name]["input"]

    @torch.no_grad()
    def encode(self, name: str, images: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
        """The codes model ``name`` gives uint8 ``images`` ``(N, C, H, W)``, as float32 on the CPU
        (the encoder's output, as ``aelab export`` writes it)."""
        from aelab.data.scaling import SCALINGS
        from aelab.export import encode_images

        images = torch.as_tensor(images)
        if images.dtype != torch.uint8:
            raise UserError(f"encode takes uint8 images (N, C, H, W) as the data sets hold them, got {images.dtype}")
        model = self.model(name)
        codes = encode_images(model, images, SCALINGS[self._scaling(name)], self.device, batch_size)
        return torch.from_numpy(codes)

    @torch.no_grad()
    def decode(self, name: str, codes: torch.Tensor | np.ndarray | list) -> torch.Tensor:
        """Images decoded by model ``name`` from ``codes`` (one code per row), on the CPU and on [0, 1]."""
        from aelab.data.scaling import TO_UNIT
        from aelab.evaluate import decode

        z = torch.as_tensor(np.asarray(codes, dtype=np.float32))
        return decode(self.model(name), z, self.device, TO_UNIT[self._scaling(name)])

    def evaluate(self, name: str, images: torch.Tensor | None = None) -> dict[str, float]:
        """Scores of model ``name`` on uint8 ``images`` (default: the run's own held-out images), computed as
        ``aelab evaluate`` computes them: ``test_psnr``, ``test_ssim``, ``test_mse`` (``test_bce`` for
        sigmoid-output models); a noisy-channel model is scored through its channel, ``test_psnr_clean``
        without noise. On the run's own images a plain model gives the report's numbers."""
        from aelab.evaluate_run import score_model

        model = self.model(name)
        images = self.data().test if images is None else torch.as_tensor(images)
        return score_model(self._specs[name], model, images, self.device, 256, self.config.seed)

    # ------------------------------------------------------------------ the report, for notebooks
    @property
    def sections(self) -> list[str]:
        """The report's section titles, in order."""
        return [title for title, _ in split_sections(self.report.read_text())]

    def markdown(self) -> str:
        """The whole report as Markdown with its figures embedded (base64), so it travels without its folder."""
        return inline_figures(self.report.read_text(), self.path)

    def section(self, which: int | str) -> Markdown:
        """One part of the report, figures embedded: by part name (``"dae"``: every section that part
        wrote), by section number (``2``) or by words of its title (``"Training curves"``)."""
        found = split_sections(self.report.read_text())
        numbers = self._part_numbers(which) if isinstance(which, str) else [which]
        chosen = [text for title, text in found if any(title.startswith(f"{n}. ") for n in numbers)]
        if not chosen and isinstance(which, str):
            chosen = [text for title, text in found if which.lower() in title.lower()][:1]
        if not chosen:
            listed = "; ".join(title for title, _ in found)
            raise UserError(f"no section {which!r} in {self.report}; its sections: {listed}")
        return Markdown(inline_figures("\n".join(chosen), self.path))

    def _part_numbers(self, part: str) -> list[int]:
        """The section numbers part ``part`` of this run's study writes (none for a name that is no part)."""
        from aelab.studies.catalog import studies

        study = studies().get(self.study)
        if study is None or part not in study.registry.names:
            return []
        first = study.registry.number(part)
        return list(range(first, first + study.registry[part].sections))

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return (
            f"Run({str(self.path)!r}): aelab {self.study}, {len(self.model_names)} models, {len(self.figures)} figures"
        )


def open_run(path: str | Path, device: str = "auto") -> Run:
    """A finished run folder (written by ``aelab mnist``/``aelab dogs`` or their Python twins) as a :class:`Run`.

    A folder that holds no finished run is a :class:`~aelab.errors.UserError` that says why.
    """
    return Run(path, device)
