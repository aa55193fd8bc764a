"""Every bad input a user can hand aelab: one clear line on stderr, exit code 2, no traceback.

Most cases call :func:`aelab.cli.main` in-process (fast); a few run the real command in a subprocess
to prove that what reaches the terminal is one line, and that ``--debug`` brings the traceback back.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab import MLPAutoencoder, MnistConvAutoencoder, UserError
from aelab.checkpoint import save_checkpoint
from aelab.cli import main
from aelab.data.idx import read_idx, write_idx

from conftest import write_mnist_folder

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 training and 32 test real digits as uncompressed IDX files, written once per module."""
    return write_mnist_folder(tmp_path_factory.mktemp("template") / "mnist", n_train=64, n_test=32, gz=False)


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template, so a test may corrupt its bytes."""
    return Path(shutil.copytree(template, tmp_path / "data"))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """``aelab ARGV`` in this process: (exit code, stdout, stderr); argparse's SystemExit becomes a code."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def terminal_lines(text: str) -> list[str]:
    """What a terminal keeps: per line, the text after the last carriage return (progress bars erase themselves)."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.rsplit("\r", 1)[-1].strip()]


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    lines = terminal_lines(err)
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("aelab: error: "), lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def mnist_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["mnist", "--data-dir", str(data), "--out", str(out), "--device", "cpu", "--parts", "ae", *extra]


def assert_failed_run(out: Path, needle: str) -> None:
    """A run that stopped leaves FAILED with the reason and no report or metrics."""
    assert (out / "FAILED").exists(), f"no FAILED note in {out}"
    assert needle in (out / "FAILED").read_text()
    assert not (out / "report.md").exists()
    assert not (out / "metrics.json").exists()


# ---------------------------------------------------------------- data folders and IDX files


def test_missing_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(mnist_args(tmp_path / "nowhere", tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "nowhere", "does not exist")
    assert_failed_run(tmp_path / "run", "does not exist")


def test_data_path_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(mnist_args(tmp_path / "file", tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "is not a folder")


def test_empty_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(mnist_args(tmp_path / "empty", tmp_path / "run"), capsys)
    assert_one_line_error(code, err, "missing IDX file(s)", NAMES["train_images"], NAMES["test_labels"])


def test_folder_missing_one_file(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (data / NAMES["test_labels"]).unlink()
    code, _, err = run_cli(mnist_args(data, tmp_path / "run"), capsys)
    line = assert_one_line_error(code, err, NAMES["test_labels"])
    assert NAMES["train_images"] not in line


def _corrupt_wrong_magic(data: Path) -> str:
    p = data / NAMES["train_images"]
    raw = bytearray(p.read_bytes())
    raw[0:2] = b"\x1f\x8b"  # looks like gzip, named like raw IDX
    p.write_bytes(bytes(raw))
    return "bad IDX magic"


def _corrupt_truncated(data: Path) -> str:
    p = data / NAMES["train_images"]
    p.write_bytes(p.read_bytes()[:-100])
    return "IDX length mismatch"


def _corrupt_too_long(data: Path) -> str:
    p = data / NAMES["test_images"]
    p.write_bytes(p.read_bytes() + b"\0" * 7)
    return "IDX length mismatch"


def _corrupt_label_count(data: Path) -> str:
    write_idx(data / NAMES["train_labels"], np.zeros(63, dtype=np.uint8))
    return "63 labels for 64 images"


def _corrupt_zero_bytes(data: Path) -> str:
    (data / NAMES["test_labels"]).write_bytes(b"")
    return "too short to be an IDX file"


def _corrupt_gzip(data: Path) -> str:
    p = data / NAMES["train_labels"]
    (data / (NAMES["train_labels"] + ".gz")).write_bytes(gzip.compress(p.read_bytes())[:20])
    p.unlink()
    return "not a valid gzip file"


def _corrupt_dtype(data: Path) -> str:
    write_idx(data / NAMES["train_images"], np.zeros((64, 28, 28), dtype=np.float32))
    return "expected uint8 pixels"


def _corrupt_ndim(data: Path) -> str:
    write_idx(data / NAMES["train_images"], np.zeros((64, 784), dtype=np.uint8))
    return "expected 3-D images"


def _corrupt_no_images(data: Path) -> str:
    write_idx(data / NAMES["train_images"], np.zeros((0, 28, 28), dtype=np.uint8))
    write_idx(data / NAMES["train_labels"], np.zeros(0, dtype=np.uint8))
    return "holds no images"


def _corrupt_sizes_differ(data: Path) -> str:
    write_idx(data / NAMES["test_images"], np.zeros((32, 20, 20), dtype=np.uint8))
    return "train and test images differ in size"


CORRUPTIONS = {
    "wrong magic": _corrupt_wrong_magic,
    "truncated": _corrupt_truncated,
    "too long": _corrupt_too_long,
    "label count": _corrupt_label_count,
    "zero bytes": _corrupt_zero_bytes,
    "broken gzip": _corrupt_gzip,
    "float pixels": _corrupt_dtype,
    "2-D images": _corrupt_ndim,
    "no images": _corrupt_no_images,
    "sizes differ": _corrupt_sizes_differ,
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_bad_idx_files(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    needle = CORRUPTIONS[kind](data)
    code, _, err = run_cli(mnist_args(data, tmp_path / "run"), capsys)
    assert_one_line_error(code, err, needle)
    assert_failed_run(tmp_path / "run", needle)


def test_tiny_but_valid_data_runs(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Three training images are odd but legal: the run finishes (k-NN adapts k) instead of crashing."""
    for key in ("train_images", "train_labels"):
        write_idx(data / NAMES[key], read_idx(data / NAMES[key])[:3])
    code, _, err = run_cli(mnist_args(data, tmp_path / "run", "--hidden", "8", "--epochs", "1"), capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "metrics.json").exists()


# ---------------------------------------------------------------- checkpoints met on --resume


def _ae_state(model: torch.nn.Module, epoch: int = 1) -> dict:
    return {
        "format": 1,
        "name": "ae2d",
        "model_class": type(model).__name__,
        "model": model.state_dict(),
        "epoch": epoch,
    }


def _garbage(path: Path) -> str:
    path.write_bytes(random.Random(0).randbytes(500))
    return "corrupt or not an aelab checkpoint"


def _valid(path: Path, **changes) -> None:
    """A complete 1-epoch checkpoint of the right model, with some fields replaced or removed."""
    model = MLPAutoencoder((1, 28, 28), (8,), 2)
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    state = {
        **_ae_state(model),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "history": [],
        "rng": {"noise": torch.Generator().get_state(), "torch": torch.get_rng_state()},
    }
    state.update(changes)
    save_checkpoint(path, {k: v for k, v in state.items() if v is not None})


def _no_optimizer(path: Path) -> str:
    _valid(path, optimizer=None)
    return "is incomplete or damaged"


def _bad_rng(path: Path) -> str:
    _valid(path, rng={"noise": torch.zeros(3), "torch": torch.zeros(2)})
    return "is incomplete or damaged"


def _model_not_a_dict(path: Path) -> str:
    _valid(path, model=[torch.zeros(2)])
    return "does not fit this model"


def _epoch_not_a_number(path: Path) -> str:
    _valid(path, epoch="one")
    return "is incomplete or damaged"


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return "corrupt or not an aelab checkpoint"


def _truncated(path: Path) -> str:
    save_checkpoint(path, _ae_state(MLPAutoencoder((1, 28, 28), (8,), 2)))
    path.write_bytes(path.read_bytes()[:300])
    return "corrupt or not an aelab checkpoint"


def _other_class(path: Path) -> str:
    save_checkpoint(path, _ae_state(MnistConvAutoencoder((1, 28, 28), 2)))
    return "holds a MnistConvAutoencoder, not a MLPAutoencoder"


def _other_shape(path: Path) -> str:
    save_checkpoint(path, _ae_state(MLPAutoencoder((1, 28, 28), (32,), 2)))
    return "does not fit this model"


def _plain_tensor_dict(path: Path) -> str:
    torch.save({"weight": torch.zeros(2)}, path)
    return "not an aelab checkpoint"


def _too_many_epochs(path: Path) -> str:
    save_checkpoint(path, _ae_state(MLPAutoencoder((1, 28, 28), (8,), 2), epoch=5))
    return "has 5 epochs, more than --epochs 2"


CHECKPOINTS = {
    "garbage": _garbage,
    "empty": _empty,
    "truncated": _truncated,
    "other model class": _other_class,
    "other widths": _other_shape,
    "plain tensors": _plain_tensor_dict,
    "too many epochs": _too_many_epochs,
    "no optimizer": _no_optimizer,
    "bad rng": _bad_rng,
    "model not a dict": _model_not_a_dict,
    "epoch not a number": _epoch_not_a_number,
}


@pytest.mark.parametrize("kind", list(CHECKPOINTS))
def test_bad_checkpoint_on_resume(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    ckpt = out / "checkpoints" / "ae2d.pt"
    needle = CHECKPOINTS[kind](ckpt)
    before = ckpt.read_bytes()
    code, _, err = run_cli(mnist_args(data, out, "--hidden", "8", "--epochs", "2", "--resume"), capsys)
    assert_one_line_error(code, err, "ae2d.pt", needle)
    assert_failed_run(out, needle)
    assert ckpt.read_bytes() == before, "a refused checkpoint must not be overwritten"


# ---------------------------------------------------------------- flags


# test_cli_mnist.py covers --epochs 0, --batch-size -3, --lr nan, --hidden 64,0, --parts ae,bogus, --device tpu.
BAD_FLAGS = {
    "epochs negative": (["--epochs", "-3"], "--epochs must be > 0"),
    "epochs not a number": (["--epochs", "many"], "--epochs must be a whole number"),
    "batch size 0": (["--batch-size", "0"], "--batch-size must be > 0"),
    "lr negative": (["--lr", "-1"], "--lr must be a finite number > 0"),
    "lr zero": (["--lr", "0"], "--lr must be a finite number > 0"),
    "hidden 0": (["--hidden", "0"], "--hidden must be positive whole numbers"),
    "hidden negative": (["--hidden", "16,-4"], "--hidden must be positive whole numbers"),
    "grid size 0": (["--grid-size", "0"], "--grid-size must be > 0"),
    "weight decay negative": (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    "unknown part": (["--parts", "dae,nope"], "unknown part(s) nope"),
    "no part": (["--parts", ","], "unknown part(s) (none given)"),
    "unknown device": (["--device", "gpu"], "invalid choice: 'gpu'"),
    "seed not a number": (["--seed", "x"], "invalid int value"),
}


@pytest.mark.parametrize("kind", list(BAD_FLAGS))
def test_bad_flags(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    flags, needle = BAD_FLAGS[kind]
    argv = ["mnist", "--data-dir", str(data), "--out", str(tmp_path / "run"), *flags]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run").exists(), "a rejected flag must not create the output folder"


def test_unknown_command_and_dataset(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["bogus"], capsys)
    assert_one_line_error(code, err, "invalid choice: 'bogus'")
    code, _, err = run_cli(["download", "imagenet"], capsys)
    assert_one_line_error(code, err, "invalid choice: 'imagenet'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_where_none_exists(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["mnist", "--data-dir", str(data), "--out", str(tmp_path / "run"), "--device", "cuda"]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "--device cuda", "no CUDA GPU")


def test_bottleneck_below_one_is_refused() -> None:
    """No CLI flag sets the MNIST bottleneck (each part fixes its own); the model itself refuses < 1."""
    with pytest.raises(ValueError, match="bottleneck must be >= 1"):
        MLPAutoencoder(bottleneck=0)
    with pytest.raises(ValueError, match="bottleneck must be >= 1"):
        MLPAutoencoder(bottleneck=-2)


def test_existing_output_folder_needs_a_flag(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("someone's work")
    code, _, err = run_cli(mnist_args(data, out, "--hidden", "8", "--epochs", "1"), capsys)
    assert_one_line_error(code, err, "already holds a run", "--resume or --overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(mnist_args(data, tmp_path / "file"), capsys)
    assert_one_line_error(code, err, "is not a folder")


def test_user_error_is_an_exception_for_the_api(tmp_path: Path) -> None:
    """The Python API raises UserError (the CLI turns it into the one line); nothing is swallowed."""
    from aelab.data.mnist import read_idx_folder

    with pytest.raises(UserError, match="does not exist"):
        read_idx_folder(tmp_path / "nowhere")


# ---------------------------------------------------------------- the real terminal


def _aelab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "aelab", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow
def test_terminal_sees_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = ("mnist", "--data-dir", str(tmp_path / "nowhere"), "--device", "cpu")
    plain = _aelab(*args, "--out", "run1", cwd=tmp_path)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [f"aelab: error: data folder {tmp_path / 'nowhere'} does not exist"]
    assert "Traceback" not in plain.stdout + plain.stderr

    debug = _aelab(*args, "--out", "run2", "--debug", cwd=tmp_path)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "aelab.errors.UserError: data folder" in debug.stderr

    flag = _aelab("mnist", "--epochs", "0", cwd=tmp_path)
    assert flag.returncode == 2
    assert flag.stderr.strip().splitlines() == [
        "aelab: error: argument --epochs: --epochs must be > 0, got 0 (see: aelab mnist --help)"
    ]


# ---------------------------------------------------------------- photo folders (aelab dogs)


def _picture(w: int, h: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = [x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), rng.integers(0, 256, (h, w))]
    return Image.fromarray(np.stack(planes, -1).astype(np.uint8), "RGB")


def _bomb_png() -> bytes:
    """A 100-byte PNG that claims 30000x30000 pixels: Pillow refuses it before allocating anything."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


ODD_BUT_FINE = ("grey.png", "grey_alpha.png", "palette.png", "palette_transparent.png", "rgba.png", "cmyk.jpg")
ODD_BUT_FINE += ("sixteen_bit.png", "bilevel.bmp", "one_pixel.png", "strip_300x2.webp", "nested/deeper/UPPER.JPG")
UNREADABLE = ("zero_bytes.jpg", "truncated.jpg", "text.png", "bomb.png")


def make_photo_folder(root: Path, n_good: int = 16) -> Path:
    """Good photos, photos of every odd mode and size, and unreadable files, mixed in one tree."""
    root.mkdir(parents=True)
    for i in range(n_good):
        _picture(80 + i, 60, seed=i).save(root / f"dog_{i:02d}.jpg", quality=90)
    pic = _picture(50, 40, seed=99)
    pic.convert("L").save(root / "grey.png")
    pic.convert("LA").save(root / "grey_alpha.png")
    pic.convert("P").save(root / "palette.png")
    pic.convert("P").save(root / "palette_transparent.png", transparency=0)
    pic.convert("RGBA").save(root / "rgba.png")
    pic.convert("CMYK").save(root / "cmyk.jpg")
    from PIL import Image

    Image.fromarray((np.arange(2000).reshape(40, 50) * 30).astype(np.uint16)).save(root / "sixteen_bit.png")
    pic.convert("1").save(root / "bilevel.bmp")
    _picture(1, 1).save(root / "one_pixel.png")
    _picture(300, 2).save(root / "strip_300x2.webp")
    (root / "nested" / "deeper").mkdir(parents=True)
    pic.save(root / "nested" / "deeper" / "UPPER.JPG")
    (root / "zero_bytes.jpg").write_bytes(b"")
    good = (root / "dog_00.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "text.png").write_text("not an image at all")
    (root / "bomb.png").write_bytes(_bomb_png())
    (root / "README.txt").write_text("ignored: not a photo extension")
    (root / ".hidden.jpg").write_bytes(b"")  # hidden files are not looked at
    return root


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photo_folder(tmp_path / "photos")


def test_unreadable_photos_are_skipped_and_counted(photos: Path, capsys: pytest.CaptureFixture) -> None:
    from aelab.data.photos import load_photos

    data = load_photos(photos, progress=False)
    assert len(data.train) + len(data.test) == 16 + len(ODD_BUT_FINE)
    assert data.train.shape[1:] == (3, 64, 64) and data.train.dtype == torch.uint8
    assert data.info["skipped"] == len(UNREADABLE)
    assert sorted(data.info["skipped_files"]) == sorted(UNREADABLE)
    err = capsys.readouterr().err
    assert f"skipped {len(UNREADABLE)} unreadable photo(s)" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ODD_BUT_FINE)
def test_odd_modes_and_tiny_sizes_decode_to_64px_rgb(photos: Path, name: str) -> None:
    from aelab.data.photos import load_image

    img = load_image(photos / name)
    assert img is not None, f"{name} should decode"
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert img.std() > 0 or name == "one_pixel.png", f"{name} decoded to a flat image"


def test_photo_folder_without_photos(tmp_path: Path) -> None:
    from aelab.data.photos import load_photos

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("no pictures here")
    with pytest.raises(UserError, match="no photos found"):
        load_photos(folder, progress=False)
    with pytest.raises(UserError, match="does not exist"):
        load_photos(tmp_path / "nowhere", progress=False)


def test_photo_folder_where_nothing_decodes(tmp_path: Path) -> None:
    from aelab.data.photos import load_photos

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_text("text")
    (folder / "c.png").write_bytes(_bomb_png())
    with pytest.raises(UserError, match="none of the 3 photo file"):
        load_photos(folder, progress=False)


def test_symlink_loop_does_not_multiply_photos(tmp_path: Path) -> None:
    from aelab.data.photos import find_photos

    folder = tmp_path / "photos" / "breed"
    folder.mkdir(parents=True)
    _picture(40, 40).save(folder / "a.jpg")
    _picture(40, 40, seed=1).save(folder / "b.jpg")
    (folder / "loop").symlink_to("..")
    assert find_photos(tmp_path / "photos") == ["breed/a.jpg", "breed/b.jpg"]


def _dogs(photos: Path, out: Path, *extra: str) -> list[str]:
    return ["dogs", "--data", str(photos), "--out", str(out), "--device", "cpu", "--quick", "--parts", "ae", *extra]


@pytest.mark.slow
def test_dogs_run_skips_and_counts_unreadable_photos(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, _, err = run_cli(_dogs(photos, tmp_path / "run", "--epochs", "1"), capsys)
    assert code == 0, err
    assert "Traceback" not in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["skipped"] == len(UNREADABLE)
    assert metrics["data"]["n_train"] + metrics["data"]["n_test"] == 16 + len(ODD_BUT_FINE)
    assert f"{len(UNREADABLE)} unreadable file(s) skipped" in (tmp_path / "run" / "report.md").read_text()


def _no_photos(root: Path) -> tuple[Path, str]:
    root.mkdir()
    (root / "notes.txt").write_text("x")
    return root, "no photos found"


def _nothing_decodes(root: Path) -> tuple[Path, str]:
    root.mkdir()
    (root / "a.jpg").write_bytes(b"")
    (root / "b.png").write_bytes(_bomb_png())
    return root, "none of the 2 photo file(s) could be decoded"


def _missing(root: Path) -> tuple[Path, str]:
    return root, "does not exist"


@pytest.mark.parametrize("case", [_no_photos, _nothing_decodes, _missing], ids=lambda f: f.__name__[1:])
def test_dogs_bad_photo_folders(tmp_path: Path, capsys: pytest.CaptureFixture, case) -> None:
    folder, needle = case(tmp_path / "photos")
    code, _, err = run_cli(_dogs(folder, tmp_path / "run", "--epochs", "1"), capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run" / "report.md").exists()


DOGS_BAD_FLAGS = {
    "variance 0": (["--variances", "0"], "--variances"),
    "variance negative": (["--variances", "-0.1"], "--variances"),
    "one variance 0": (["--variances", "0.05,0"], "--variances"),
    "variance nan": (["--variances", "nan"], "--variances"),
    "variance text": (["--variances", "lots"], "--variances"),
    "latent channels 0": (["--latent-channels", "0"], "--latent-channels"),
    "latent size 4": (["--latent-size", "4"], "invalid choice: 4"),
    "limit 0": (["--limit", "0"], "--limit"),
    "epochs 0": (["--epochs", "0"], "--epochs must be > 0"),
    "batch size 0": (["--batch-size", "0"], "--batch-size must be > 0"),
    "lr negative": (["--lr", "-1"], "--lr must be a finite number > 0"),
    "unknown part": (["--parts", "ae,gan"], "unknown part(s) gan"),
    "unknown device": (["--device", "npu"], "invalid choice: 'npu'"),
}


@pytest.mark.parametrize("kind", list(DOGS_BAD_FLAGS))
def test_dogs_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    flags, needle = DOGS_BAD_FLAGS[kind]
    folder = tmp_path / "photos"
    folder.mkdir()
    _picture(40, 40).save(folder / "a.jpg")
    argv = ["dogs", "--data", str(folder), "--out", str(tmp_path / "run"), *flags]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_dogs_cuda_asked_for_where_none_exists(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["dogs", "--data", str(photos), "--out", str(tmp_path / "run"), "--device", "cuda"]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "no CUDA GPU")
