"""``aelab export``: a real run's codes of an IDX folder and of a photo folder, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab import __version__
from aelab.data.idx import read_idx
from aelab.data.photos import load_image, load_photos
from aelab.data.scaling import signed, unit
from aelab.errors import UserError
from aelab.evaluate_run import load_eval_images, load_labelled_images
from aelab.export import export_codes
from aelab.losses import bce, channel_mse, vae_elbo
from aelab.models.channel import AWGNChannel
from aelab.models.conv import ConvAutoencoder
from aelab.models.mlp import MLPAutoencoder
from aelab.models.registry import MODELS_FILE, build, spec_of
from aelab.models.vae import VAE
from aelab.train import TrainConfig, fit

from conftest import write_dog_photos, write_mnist_folder

CPU = torch.device("cpu")


def _make_run(run: Path, images: torch.Tensor, models: dict, missing: str | None = None) -> dict:
    """A run folder as a study leaves it: finished checkpoints plus ``checkpoints/models.json``."""
    specs = {}
    for name, (model, objective, prepare) in models.items():
        cfg = TrainConfig(epochs=1, batch_size=32, lr=3e-3)
        checkpoint = run / "checkpoints" / f"{name}.pt"
        fit(name, model, objective, images, images[:16], prepare, cfg, CPU, checkpoint=checkpoint)
        specs[name] = {**spec_of(model), "input": prepare.__name__, "metrics_key": ["part", name]}
    if missing is not None:  # listed, never trained: export goes on without it and says so
        specs[missing] = {**spec_of(next(iter(models.values()))[0]), "input": "unit", "metrics_key": [missing]}
    (run / "checkpoints" / MODELS_FILE).write_text(json.dumps(specs))
    return {name: m for name, (m, _, _) in models.items()}


@pytest.fixture
def mnist_run(tmp_path: Path) -> tuple[Path, Path, dict]:
    folder = write_mnist_folder(tmp_path / "digits", n_train=96, n_test=32)
    images = torch.from_numpy(read_idx(folder / "train-images-idx3-ubyte.gz")).unsqueeze(1)
    models = {
        "ae2d": (build(MLPAutoencoder, hidden=[32], bottleneck=2), bce, unit),
        "vae": (build(VAE, hidden=[32], bottleneck=3), vae_elbo(), unit),
    }
    return folder, tmp_path / "run", _make_run(tmp_path / "run", images, models, missing="never_trained")


def test_idx_folder_codes_labels_and_meta(mnist_run, tmp_path: Path, capsys) -> None:
    folder, run, models = mnist_run
    out = export_codes(run, folder, tmp_path / "out" / "codes.npz", device="cpu", batch_size=50)
    printed = capsys.readouterr()
    assert printed.out.splitlines()[:2] == [f"{'ae2d':<24} codes 2", f"{'vae':<24} codes 3"]
    assert "left out never_trained: no checkpoint" in printed.err

    images = np.concatenate([read_idx(folder / f"{s}-images-idx3-ubyte.gz") for s in ("train", "t10k")])
    labels = np.concatenate([read_idx(folder / f"{s}-labels-idx1-ubyte.gz") for s in ("train", "t10k")])
    x = unit(torch.from_numpy(images).unsqueeze(1))
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["codes/ae2d", "codes/vae", "held_out", "labels", "meta", "models"]
        assert list(z["models"]) == ["ae2d", "vae"]
        assert z["labels"].dtype == np.int64 and np.array_equal(z["labels"], labels)
        assert np.array_equal(z["held_out"], np.r_[np.zeros(96, bool), np.ones(32, bool)])
        with torch.no_grad():
            for name, model in models.items():
                codes = z[f"codes/{name}"]
                assert codes.dtype == np.float32 and codes.shape == (128, model.latent_dim)
                assert np.allclose(codes, model.eval().encode(x).numpy(), atol=1e-6)
        with torch.no_grad():  # the VAE's code is its mean, not a draw
            assert np.allclose(z["codes/vae"], models["vae"].posterior(x)[0].numpy(), atol=1e-6)
        meta = json.loads(str(z["meta"]))
    assert meta["aelab_version"] == __version__ and meta["run_dir"] == str(run.resolve())
    assert meta["n_images"] == 128 and meta["data"] == f"{folder} (IDX folder)"
    assert meta["models"]["ae2d"] == {
        "class": "MLPAutoencoder",
        "input": "unit",
        "metrics_key": ["part", "ae2d"],
        "code_shape": [2],
    }
    assert meta["models"]["vae"]["code_shape"] == [3] and meta["left_out"] == ["never_trained: no checkpoint"]
    assert [p.name for p in out.parent.iterdir()] == ["codes.npz"]  # no temporary file left behind

    # --limit keeps the first images, with their labels
    again = export_codes(run, folder, tmp_path / "few.npz", device="cpu", limit=10)
    with np.load(again) as z:
        assert z["codes/ae2d"].shape == (10, 2) and np.array_equal(z["labels"], labels[:10])


def test_photo_folder_codes_follow_the_file_names(tmp_path: Path, capsys) -> None:
    folder = write_dog_photos(tmp_path / "photos", 14, 5, (24, 30))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # skipped, as everywhere else
    photos = load_photos(folder, size=16, progress=False)
    train = torch.cat([photos.train, photos.test])
    noisy = build(
        ConvAutoencoder, image_size=16, latent_channels=2, latent_size=8, channel=build(AWGNChannel, variance=0.1)
    )
    plain = build(ConvAutoencoder, image_size=16, latent_channels=3, latent_size=4)
    models = _make_run(
        tmp_path / "run", train, {"noisy": (noisy, channel_mse, signed), "ae": (plain, channel_mse, signed)}
    )
    out = export_codes(tmp_path / "run", folder, tmp_path / "codes.npz", device="cpu", batch_size=4)
    assert "codes 2x8x8" in capsys.readouterr().out

    with np.load(out, allow_pickle=False) as z:
        names = list(z["names"])
        assert "labels" not in z.files and sorted(names) == sorted(
            p.name for p in folder.iterdir() if p.name != "broken.jpg"
        )
        assert z["held_out"].sum() == len(photos.test) and len(names) == 14
        # each row is the code of the file it names, decoded on its own
        one_by_one = torch.from_numpy(np.stack([load_image(folder / n, 16) for n in names])).permute(0, 3, 1, 2)
        with torch.no_grad():
            for name, model in models.items():
                assert np.allclose(z[f"codes/{name}"], model.eval().encode(signed(one_by_one)).numpy(), atol=1e-5)
            # the noisy model's code is the encoder's output, before the channel normalises it
            sent = models["noisy"](signed(one_by_one), noise=False)["z_sent"].numpy()
        assert not np.allclose(z["codes/noisy"], sent, atol=1e-3)
        meta = json.loads(str(z["meta"]))
    assert meta["skipped"] == 1 and meta["models"]["noisy"]["input"] == "signed"
    assert meta["models"]["noisy"]["code_shape"] == [2, 8, 8]


def test_evaluate_sees_the_same_images_as_before(tmp_path: Path) -> None:
    """``aelab evaluate`` now goes through the labelled loader: same images, order and info as load_photos."""
    folder = write_dog_photos(tmp_path / "photos", 12, 5, (20, 20))
    photos = load_photos(folder, size=16, progress=False)
    evaluation = load_eval_images(folder, (3, 16, 16))
    assert torch.equal(evaluation.train, torch.cat([photos.train, photos.test])) and len(evaluation.test) == 0
    assert {k: v for k, v in evaluation.info.items() if k != "cache"} == {
        k: v for k, v in photos.info.items() if k != "cache"
    }
    labelled = load_labelled_images(folder, (3, 16, 16), limit=5)
    assert len(labelled.images) == len(labelled.names) == 5 and labelled.labels is None


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_run", "run folder {tmp}/nowhere does not exist"),
        ("not_a_run", "{tmp}/digits is not an aelab run folder with reloadable models (no checkpoints/models.json)"),
        ("no_data", "data folder {tmp}/missing does not exist"),
        ("empty_data", "{tmp}/empty: no photos found (looked recursively for .jpg, .jpeg, .png, .webp, .bmp)"),
        ("wrong_shape", "the run's models take 1x28x28 images; {tmp}/photos (photo folder) holds 3x28x28"),
        ("bad_out", "--out {tmp}/codes.txt: the codes are written as a .npz file; give a name ending in .npz"),
        ("bad_limit", "--limit must be >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_old_file(mnist_run, tmp_path: Path, case: str, message: str) -> None:
    folder, run, _ = mnist_run
    (tmp_path / "empty").mkdir()
    write_dog_photos(tmp_path / "photos", 2, 5, (28, 28))
    target = tmp_path / "codes.npz"
    target.write_bytes(b"an older export")
    args = {
        "no_run": (tmp_path / "nowhere", folder, target),
        "not_a_run": (folder, folder, target),
        "no_data": (run, tmp_path / "missing", target),
        "empty_data": (run, tmp_path / "empty", target),
        "wrong_shape": (run, tmp_path / "photos", target),
        "bad_out": (run, folder, tmp_path / "codes.txt"),
    }.get(case, (run, folder, target))
    with pytest.raises(UserError) as e:
        export_codes(*args, device="cpu", limit=0 if case == "bad_limit" else None)
    assert str(e.value) == message.format(tmp=tmp_path) and "\n" not in str(e.value)
    assert target.read_bytes() == b"an older export"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
