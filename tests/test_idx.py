import gzip

import numpy as np
import pytest
import torch

from aelab import UserError, read_idx, write_idx
from aelab.data.mnist import builtin_sample, load_mnist, read_idx_folder

from conftest import MNIST_DIR, needs_mnist, write_mnist_folder


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, suffix, dtype):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == (2, 3, 5)
    np.testing.assert_array_equal(a, b)


def test_header_is_the_mnist_layout(tmp_path):
    write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])
    assert int.from_bytes(raw[4:8], "big") == 3 and len(raw) == 16 + 3 * 784


def _bad(tmp_path, payload: bytes, name="bad-idx"):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(UserError) as e:
        read_idx(path)
    assert name in str(e.value)
    return str(e.value)


def test_wrong_magic(tmp_path):
    assert "magic" in _bad(tmp_path, bytes([1, 2, 8, 1, 0, 0, 0, 1, 5]))


def test_unknown_type(tmp_path):
    assert "type" in _bad(tmp_path, bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]))


def test_length_mismatch(tmp_path):
    good = bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])
    assert "length" in _bad(tmp_path, good[:-1])
    assert "length" in _bad(tmp_path, good + b"\x00")


def test_truncated_header_and_tiny_file(tmp_path):
    assert "header" in _bad(tmp_path, bytes([0, 0, 8, 3, 0, 0]))
    assert "short" in _bad(tmp_path, b"\x00")


def test_bad_gzip(tmp_path):
    assert "gzip" in _bad(tmp_path, b"not gzip at all", name="x-idx1-ubyte.gz")


def test_truncated_gzip(tmp_path):
    payload = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))
    assert "gzip" in _bad(tmp_path, payload[:-6], name="y.gz")


def test_folder_round_trip(tiny_mnist):
    data = read_idx_folder(tiny_mnist)
    assert data.train.shape == (256, 1, 28, 28) and data.test.shape == (64, 1, 28, 28)
    assert data.train.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert set(data.train_labels.tolist()) == set(range(10))


def test_folder_accepts_uncompressed(tmp_path):
    data = read_idx_folder(write_mnist_folder(tmp_path / "raw", 32, 16, gz=False))
    assert len(data.train) == 32 and len(data.test) == 16


def test_label_count_mismatch(tiny_mnist):
    write_idx(tiny_mnist / "t10k-labels-idx1-ubyte.gz", np.zeros(63, np.uint8))
    with pytest.raises(UserError, match="63 labels for 64 images"):
        read_idx_folder(tiny_mnist)


def test_missing_file_and_folder(tiny_mnist, tmp_path):
    (tiny_mnist / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="missing IDX file.*train-labels"):
        read_idx_folder(tiny_mnist)
    with pytest.raises(UserError, match="does not exist"):
        read_idx_folder(tmp_path / "nowhere")


def test_builtin_sample_is_a_stratified_real_split():
    data = builtin_sample()
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert np.bincount(data.test_labels.numpy()).tolist() == [100] * 10
    assert 20 < data.train.float().mean() < 60  # real digits: mostly black background
    again = builtin_sample()
    assert torch.equal(again.test, data.test)


def test_load_mnist_prefers_the_given_folder(tiny_mnist):
    data = load_mnist(tiny_mnist, allow_download=False)
    assert data.source == str(tiny_mnist) and len(data.train) == 256


def test_load_mnist_uses_the_cache(isolated_cache, tmp_path):
    write_mnist_folder(isolated_cache / "mnist", 40, 20)
    data = load_mnist(None, allow_download=False)
    assert data.source.startswith("cache") and len(data.train) == 40


def test_load_mnist_falls_back_to_builtin(capsys):
    data = load_mnist(None, allow_download=False)
    assert len(data.train) == 4000 and "built-in" in data.source
    assert "built-in" in capsys.readouterr().err


@needs_mnist
def test_real_mnist_files():
    data = read_idx_folder(MNIST_DIR)
    assert data.train.shape == (60000, 1, 28, 28) and data.test.shape == (10000, 1, 28, 28)
    assert np.bincount(data.test_labels.numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
