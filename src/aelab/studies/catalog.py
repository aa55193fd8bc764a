"""The studies aelab runs, named once: what the ``aelab`` command and the Python API (``aelab.mnist``,
``aelab.dogs``) both build on, so a study's flags, keyword settings and entry point cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Study:
    """One study: its config (the one source of its settings), its parts, its entry point and its help."""

    name: str
    config: type  # a subclass of aelab.studies.config.StudyConfig
    registry: Any  # aelab.studies.parts.Registry
    run: Callable[[Any], Path]
    data: Callable[[Any], Any]  # config -> the ImageData a run of it trains and scores on
    help: str
    description: str


def studies() -> dict[str, Study]:
    """Every study by name, in the order ``aelab --help`` lists them (imported on first use: heavy)."""
    from aelab.studies.dogs import REGISTRY as DOGS
    from aelab.studies.dogs import DogsConfig, run_dogs
    from aelab.studies.dogs.study import load_data as dogs_data
    from aelab.studies.mnist import REGISTRY as MNIST
    from aelab.studies.mnist import MnistConfig, run_mnist
    from aelab.studies.mnist.study import load_data as mnist_data

    return {
        "mnist": Study(
            "mnist",
            MnistConfig,
            MNIST,
            run_mnist,
            lambda cfg: mnist_data(cfg)[0],
            "the MNIST study: AE-2D, denoising, latent manifold, L2, explorations",
            "The MNIST study (or Fashion-MNIST, or any 28x28 IDX set with 10 classes). Without --data it uses "
            "cached MNIST, downloads it, or falls back to the built-in 5,000-digit sample.",
        ),
        "dogs": Study(
            "dogs",
            DogsConfig,
            DOGS,
            run_dogs,
            dogs_data,
            "the dogs study: conv AE, latent samples, Gaussian sampling, perturbation, noisy latent",
            "The dog-photo study. Without --data it uses Stanford Dogs downloaded into the cache "
            "(aelab download stanford-dogs).",
        ),
    }
