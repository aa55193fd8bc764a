"""A recipe names one model of a study once: checkpoint, builder, objective, budget, metrics key.

Everything else that refers to the model (the parts, ``checkpoints/models.json``, ``aelab evaluate``,
the compare tables) reaches it through its recipe's ``name``, so a model has one identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from aelab.train import Objective


def epochs_for(samples: int, n_train: int, lo: int, hi: int) -> int:
    """Epochs that show a model about ``samples`` training images, within ``lo..hi``.

    A budget in samples gives a folder of any size about the same compute; the bounds keep a tiny
    folder from training for hundreds of epochs and a huge one from seeing each image less than ``lo`` times.
    """
    return int(min(hi, max(lo, round(samples / max(1, n_train)))))


@dataclass(frozen=True)
class Recipe:
    """How one model of a study is made and trained.

    ``build``, ``objective`` and ``settings`` take the study's run context (its config, data shape,
    and other models), so the table can be written once at module level.

    - ``name``: checkpoint name (``checkpoints/<name>.pt``), the model's identity.
    - ``samples`` and ``epoch_bounds``: the training budget (see :func:`epochs_for`).
    - ``metrics_key``: where the model's numbers sit in metrics.json (default ``(name,)``).
    - ``scaling``: the input scaling of ``aelab.data.scaling.SCALINGS`` (``"unit"`` or ``"signed"``).
    - ``init_from``: the recipe whose trained weights this one starts from (a warm start).
    - ``warm_start``: ``warm_start(run, model)`` sets the fresh model's starting weights some other way
      (the UMAP-regularised AE regresses its encoder onto umap-learn's layout); skipped when a
      checkpoint exists, whose weights replace the start anyway.
    - ``settings``: ``TrainConfig`` fields that differ from the study's defaults (weight decay, precision).
    - ``follows_epochs_flag``: ``--epochs`` overrides the budget (not for the digit judge, which must be
      accurate whatever the autoencoders get).
    - ``epochs_option``: a config field of its own that, when set, gives this recipe's epochs ahead of
      ``--epochs`` and ``--quick`` (the UMAP-regularised AE's ``--umap-epochs``).
    - ``supervised``: trained against the data's labels (see ``aelab.train.fit``'s ``targets``).
    - ``parallel``: the model trains to the same bits at any CPU thread count (plain linear layers), so
      ``--jobs`` may train it in a one-thread worker process (:mod:`aelab.studies.workers`).
    - ``label``: how tables and figures name the model; ``short``: its key in cross-model tables
      (``compare.<short>`` in metrics.json).
    """

    name: str
    build: Callable[[Any], nn.Module]
    objective: Callable[[Any], Objective]
    samples: int
    epoch_bounds: tuple[int, int]
    metrics_key: tuple[str, ...] = ()
    scaling: str = "unit"
    init_from: str | None = None
    warm_start: Callable[[Any, nn.Module], Any] | None = None
    settings: Callable[[Any], Mapping[str, Any]] = field(default=lambda run: {})
    follows_epochs_flag: bool = True
    epochs_option: str = ""
    supervised: bool = False
    parallel: bool = False
    label: str = ""
    short: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        return self.metrics_key or (self.name,)
