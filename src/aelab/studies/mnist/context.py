"""``MnistRun``: what the MNIST parts share, each value computed the first time a part asks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aelab.data.base import ImageData
from aelab.data.identity import DatasetIdentity
from aelab.data.scaling import unit
from aelab.evaluate import decode, knn_accuracy, mean_psnr, predict
from aelab.latent import latent_grid
from aelab.parametric_umap import FuzzyGraph, graph_edges
from aelab.studies.base import Session
from aelab.studies.mnist.config import MnistConfig
from aelab.studies.parts import Registry
from aelab.studies.recipe import Recipe
from aelab.studies.run import StudyRun


@dataclass
class Assessment:
    """One autoencoder scored on the test split (and its codes of the training split)."""

    test_bce: float
    test_psnr: float
    knn5_acc: float
    codes: np.ndarray
    train_codes: np.ndarray
    x_hat: torch.Tensor | None  # None for an embedding without a decoder (umap-learn)
    test_mse: float = float("nan")
    knn1_acc: float = float("nan")

    @property
    def latent_std(self) -> list[float] | float:
        std = self.codes.std(axis=0)
        return std.tolist() if self.codes.shape[1] <= 2 else float(std.mean())

    def public(self) -> dict:
        """What metrics.json records."""
        keys = ("test_bce", "test_psnr", "knn5_acc")
        return {**{k: getattr(self, k) for k in keys}, "latent_std": self.latent_std}


class MnistRun(StudyRun):
    quick_epochs = 2
    study = "mnist"

    def __init__(
        self,
        cfg: MnistConfig,
        session: Session,
        data: ImageData,
        identity: DatasetIdentity,
        registry: Registry,
        recipes: dict[str, Recipe],
    ) -> None:
        super().__init__(cfg, session, data, registry, recipes)
        self.cfg: MnistConfig = cfg
        self.identity = identity
        self._scores: dict[str, Assessment] = {}

    @cached_property
    def hidden(self) -> tuple[int, ...]:
        return (64, 32) if self.cfg.quick else tuple(self.cfg.hidden)

    @cached_property
    def x_test(self) -> torch.Tensor:
        return unit(self.data.test.clone())

    @cached_property
    def labels(self) -> np.ndarray:
        return self.data.test_labels.numpy()

    @cached_property
    def one_per_class(self) -> list[int]:
        """The first test image of each class: the images every figure shows."""
        return [int(np.flatnonzero(self.labels == c)[0]) for c in range(10) if (self.labels == c).any()]

    @property
    def extent(self) -> tuple[float, float]:
        return (-self.cfg.grid_range, self.cfg.grid_range)

    @cached_property
    def grid(self) -> torch.Tensor:
        """The lab's uniform grid of the latent plane."""
        return latent_grid(self.cfg.grid_size, *self.extent)

    def assess(self, model: nn.Module) -> Assessment:
        out = predict(model, self.data.test, unit, self.device)
        x_hat = out["x_hat"]
        return Assessment(
            test_bce=float(F.binary_cross_entropy(x_hat.clamp(1e-7, 1 - 1e-7), self.x_test)),
            test_psnr=mean_psnr(x_hat, self.x_test),
            test_mse=float(F.mse_loss(x_hat.float(), self.x_test)),
            x_hat=x_hat,
            **self._code_scores(predict(model, self.data.train, unit, self.device)["z"].numpy(), out["z"].numpy()),
        )

    def _code_scores(self, train_codes: np.ndarray, codes: np.ndarray) -> dict:
        train_labels = self.data.train_labels.numpy()
        return {
            "knn5_acc": knn_accuracy(train_codes, train_labels, codes, self.labels),
            "knn1_acc": knn_accuracy(train_codes, train_labels, codes, self.labels, k=1),
            "codes": codes,
            "train_codes": train_codes,
        }

    @cached_property
    def umap_fit(self):
        """umap-learn fitted once on the training images (15 neighbours, seeded, one thread: reproducible).

        Three things come from this one fit: the reference row of the compare part (its embedding, with
        the test images transformed), the fuzzy graph the UMAP-regularised AE is trained on, and the
        layout its encoder starts from.
        """
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=15, random_state=self.cfg.seed, n_jobs=1)
        reducer.fit(unit(self.data.train.clone()).flatten(1).numpy())
        return reducer

    @cached_property
    def umap_graph(self) -> FuzzyGraph:
        """UMAP's fuzzy graph of the training images (umap-learn's own, 15 neighbours), for the UMAP-regularised AE."""
        return graph_edges(self.umap_fit.graph_)

    @cached_property
    def umap_embedding(self) -> Assessment:
        """umap-learn's own 2-D embedding (no decoder): fitted on the training images, the test images transformed."""
        train_codes = np.asarray(self.umap_fit.embedding_, dtype=np.float32)
        codes = self.umap_fit.transform(self.x_test.flatten(1).numpy()).astype(np.float32)
        return Assessment(float("nan"), float("nan"), x_hat=None, **self._code_scores(train_codes, codes))

    def scores(self, name: str) -> Assessment:
        """The test scores of recipe ``name``'s model (trained on first use)."""
        if name not in self._scores:
            self._scores[name] = self.assess(self.model(name))
            if self.tensorboard is not None:  # the projector: test codes, labelled, with a sprite of the images
                labels = [self.identity.class_names[int(c)] for c in self.labels]
                self.tensorboard.embedding(name, self._scores[name].codes, labels, self.data.test)
        return self._scores[name]

    def decoded_grid(self, name: str) -> torch.Tensor:
        return decode(self.model(name), self.grid, self.device)
