"""The dogs study: model shapes, the noisy channel, Gaussian sampling, the CLI end to end, evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab.cli import main
from aelab.data.photos import load_photos
from aelab.digital import available_codecs
from aelab.evaluate_run import load_run_models, score_model
from aelab.latent import fit_gaussian
from aelab.models.channel import AWGNChannel, power_normalize
from aelab.models.conv import ConvAutoencoder
from aelab.models.registry import build, from_spec, spec_of
from aelab.samplers import GaussianSampler, MixtureSampler
from aelab.studies.dogs import VARIANCES, var_key

from conftest import write_dog_photos

# ---------------------------------------------------------------- model, channel, latent


def test_lab_layout_gives_a_16x8x8_latent_and_16x16x16_on_request():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    model = build(ConvAutoencoder, image_size=64, latent_channels=16, latent_size=8).eval()
    out = model(x)
    assert out["z"].shape == (2, 16, 8, 8) and out["x_hat"].shape == (2, 3, 64, 64)
    assert out["x_hat"].abs().max() <= 1 and (out["z"] >= 0).all()  # Tanh out, ReLU code
    big = ConvAutoencoder(64, 16, 16).eval()
    assert big(x)["z"].shape == (2, 16, 16, 16)


def test_registry_rebuilds_a_noisy_model_with_the_same_weights():
    model = build(ConvAutoencoder, image_size=64, latent_channels=8, channel=build(AWGNChannel, variance=0.1))
    spec = json.loads(json.dumps(spec_of(model)))  # what models.json holds
    again = from_spec(spec)
    again.load_state_dict(model.state_dict())
    assert isinstance(again.channel, AWGNChannel) and again.channel.variance == 0.1
    x = torch.rand(3, 3, 64, 64)
    assert torch.equal(model.eval()(x, noise=False)["x_hat"], again.eval()(x, noise=False)["x_hat"])


def test_noisy_model_starts_from_the_plain_autoencoder(tmp_path):
    from aelab.data.scaling import signed
    from aelab.losses import channel_mse
    from aelab.studies.base import Session
    from aelab.train import TrainConfig

    s = Session(tmp_path / "run", "t", "cpu", seed=0)
    ae = build(ConvAutoencoder, image_size=64, latent_channels=4)
    with torch.no_grad():
        for p in ae.parameters():
            p.add_(1.0)  # weights no fresh initialisation would draw
    noisy = build(ConvAutoencoder, image_size=64, latent_channels=4, channel=build(AWGNChannel, variance=0.1))
    x = torch.zeros(4, 3, 64, 64, dtype=torch.uint8)
    s.fit("n", noisy, channel_mse, x, x, signed, TrainConfig(epochs=1, batch_size=4, lr=0.0), init_from=ae)
    assert all(torch.equal(a, b) for a, b in zip(ae.parameters(), noisy.parameters()))


def test_power_normalisation_is_per_sample():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 16, 8, 8, generator=g) * torch.tensor([0.01, 1.0, 3.0, 100.0, 7.0]).view(5, 1, 1, 1)
    out = AWGNChannel(0.1).eval()(z)  # eval mode: normalise only
    power = out.flatten(1).pow(2).mean(dim=1)
    assert torch.allclose(power, torch.ones(5), atol=1e-5)
    # the lab normalised the whole batch: one sample's code depended on the others; here it does not
    assert torch.allclose(power_normalize(z[:1]), out[:1], atol=1e-6)


@pytest.mark.parametrize("variance", VARIANCES)
def test_measured_noise_variance_matches_the_flag(variance):
    z = torch.rand(64, 16, 8, 8) + 0.5
    channel = AWGNChannel(variance)
    clean = channel(z, noise=False)
    noisy = channel(z, noise=True, generator=torch.Generator().manual_seed(1))
    measured = (noisy - clean).var().item()
    assert abs(measured - variance) / variance < 0.03  # 65,536 draws: about 0.6% standard error
    assert abs(clean.pow(2).mean().item() - 1) < 1e-5
    assert 10 * np.log10(1 / variance) == pytest.approx({0.05: 13.0103, 0.1: 10.0, 0.15: 8.2391}[variance], abs=1e-4)


def test_gaussian_fit_of_256_codes_in_1024_dims():
    rng = np.random.default_rng(0)
    codes = np.maximum(rng.normal(0.3, 1.0, (256, 16, 8, 8)), 0)  # non-negative, sparse, like ReLU codes
    fit = fit_gaussian(codes)
    assert fit.mean.shape == (1024,) and fit.cov.shape == (1024, 1024)
    assert fit.method.startswith("Ledoit-Wolf")
    np.linalg.cholesky(fit.cov)  # positive definite: shrinkage makes 256 samples in 1,024-d invertible
    draws = fit.sample(9, seed=3)
    assert draws.shape == (9, 1024) and np.array_equal(draws, fit.sample(9, seed=3))


def test_gaussian_samples_follow_the_fitted_covariance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    codes = rng.multivariate_normal(np.arange(6.0), a @ a.T + np.eye(6), size=400)
    fit = fit_gaussian(codes)
    draws = fit.sample(40_000, seed=0)
    assert np.allclose(draws.mean(0), fit.mean, atol=0.1)
    assert np.allclose(np.cov(draws, rowvar=False), fit.cov, atol=0.1 * np.abs(fit.cov).max())


def test_one_sampler_fits_then_samples_codes_of_any_shape_as_every_part_draws_them():
    rng = np.random.default_rng(2)
    codes = torch.from_numpy(np.maximum(rng.normal(0.3, 1.0, (64, 16, 2, 2)), 0)).float()
    sampler = GaussianSampler().fit(codes)
    draws = sampler.sample(5, seed=3)
    assert draws.shape == (5, 16, 2, 2) and sampler.method.startswith("Ledoit-Wolf")
    assert np.array_equal(draws.reshape(5, -1), fit_gaussian(codes.flatten(1).numpy()).sample(5, 3))  # one route
    plain = GaussianSampler(shrinkage=False).fit(codes.flatten(1).numpy())
    assert plain.method == "sample covariance" and plain.sample(4, 1).shape == (4, 64)

    # the dogs parts' route: the gauss part's samples are the first of the generation part's
    from types import SimpleNamespace

    from aelab.studies.dogs.sampling import draw

    run = SimpleNamespace(cfg=SimpleNamespace(seed=7))
    few, many = draw(run, codes, 3)[1], draw(run, codes, 10)[1]
    assert few.dtype == torch.float32 and few.shape == (3, 16, 2, 2) and torch.equal(few, many[:3])

    # the MNIST compare part's mixture: the same draws as scikit-learn's GaussianMixture fitted and sampled
    from sklearn.mixture import GaussianMixture

    flat = rng.normal(size=(300, 2)) + np.repeat(rng.normal(scale=6, size=(3, 2)), 100, axis=0)
    mine = MixtureSampler(3, seed=5).fit(flat).sample(50, seed=5)
    theirs = GaussianMixture(3, covariance_type="full", random_state=5).fit(flat).sample(50)[0]
    assert np.array_equal(mine, theirs)
    with pytest.raises(RuntimeError, match="fit"):
        GaussianSampler().sample(1, 0)


def test_variances_are_written_like_the_issue():
    assert [var_key(v) for v in VARIANCES] == ["0.05", "0.1", "0.15"]


# ---------------------------------------------------------------- the CLI end to end


def _photo_folder(root: Path, n: int = 36) -> Path:
    """Real dog photos when the shared data is here, otherwise smooth generated pictures; plus one broken file."""
    write_dog_photos(root, n, step=90, size=(80, 96), suffix="_generated")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


EXPECTED_FIGURES = {
    "ae_loss.png",
    "samples_latents.png",
    "gauss_samples.png",
    "perturb_0.1.png",
    "perturb_0.25.png",
    "perturb_0.5.png",
    "perturb_1.png",
    "perturb_psnr.png",
    "noisy_psnr_vs_snr.png",
    "noisy_gauss_samples.png",
    "channel_psnr_vs_snr.png",
    "channel_vs_digital.png",
    "loss_curves.png",
}
NOISY = {f"noisy_var{v}" for v in ("0.05", "0.1", "0.15")}
MODELS = {"ae", "adaptive", *NOISY, "lab_ae", *(f"lab_{n}" for n in NOISY)}  # the default jscc and the lab layout
ISSUE_KEYS = [
    ("data", "n_train"),
    ("data", "n_test"),
    ("data", "skipped"),
    ("ae", "test_psnr"),
    ("ae", "test_ssim"),
    ("ae", "test_mse"),
    ("gauss", "nearest_train_psnr_mean"),
    *[("perturb", s, "psnr_vs_clean") for s in ("0.1", "0.25", "0.5", "1")],
    *[("noisy", v, k) for v in ("0.05", "0.1", "0.15") for k in ("test_psnr", "test_psnr_clean", "snr_db")],
    *[("lab", "ae", k) for k in ("test_psnr", "test_ssim", "test_mse")],
    *[
        (p, v, k)
        for p in ("lab.noisy", "adaptive")
        for v in ("0.05", "0.1", "0.15")
        for k in ("test_psnr", "test_ssim", "test_psnr_clean", "test_ssim_clean")
    ],
    *[("channel", m, "psnr_at_snr", "10") for m in ("ae", "adaptive", "noisy_var0.1")],
    *[
        ("digital", c, k, "psnr_at_variance", v)
        for c in available_codecs()
        for k in ("file", "payload")
        for v in ("0.05", "0.1", "0.15")
    ],
    *[("digital", c, k, "psnr_at_snr", "10") for c in available_codecs() for k in ("file", "payload")],
    *[("digital", "best", "psnr_at_snr", db) for db in ("0", "10", "25")],
    *[("digital", "best", "psnr_at_variance", v) for v in ("0.05", "0.1", "0.15")],
]
GENERATION_MODELS = ["ae", *sorted(NOISY)]  # their samples are also tested against their own reconstructions


def _get(tree: dict, path: tuple[str, ...]):
    path = tuple(k for part in path for k in (part.split(".") if part in ("lab.noisy",) else [part]))
    for key in path:
        assert key in tree, f"missing metrics key {'.'.join(path)}"
        tree = tree[key]
    return tree


@pytest.fixture(scope="module")
def dogs_run(tmp_path_factory) -> tuple[Path, Path, int]:
    """One quick `aelab dogs` run on a few dozen photos, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("dogs")
    mp = pytest.MonkeyPatch()
    mp.setenv("AELAB_DATA", str(tmp / "cache"))
    folder = _photo_folder(tmp / "photos")
    out = tmp / "run"
    code = main(["dogs", "--data", str(folder), "--out", str(out), "--quick", "--limit", "40", "--seed", "3"])
    yield folder, out, code
    mp.undo()


@pytest.mark.slow
def test_cli_writes_every_output_and_metrics_key(dogs_run):
    folder, out, code = dogs_run
    assert code == 0
    for name in ("report.md", "metrics.json", "train_log.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not (out / "FAILED").exists()
    assert {p.name for p in (out / "figures").glob("*.png")} == EXPECTED_FIGURES
    checkpoints = {p.name for p in (out / "checkpoints").iterdir()}
    assert checkpoints == {f"{name}.pt" for name in MODELS} | {"models.json"}

    m = json.loads((out / "metrics.json").read_text())
    for path in ISSUE_KEYS:
        value = _get(m, path)
        assert isinstance(value, (int, float)) and np.isfinite(value), path
    assert {"avif", "jpeg2000"} <= set(available_codecs())  # Pillow's wheels carry both
    for name in GENERATION_MODELS:  # null when the quick run holds out too few photos for the test
        assert "vs_reconstructions_acc" in m["generation"][name] and "two_sample_acc" in m["generation"][name]
    assert "vs_reconstructions_acc" not in m["generation"]["blend"]
    assert m["data"]["n_train"] + m["data"]["n_test"] == 36 and m["data"]["skipped"] == 1
    assert m["data"]["n_test"] >= 1
    for v in ("0.05", "0.1", "0.15"):
        assert m["noisy"][v]["snr_db"] == pytest.approx(10 * np.log10(1 / float(v)), abs=1e-3)
        assert m["noisy"][v]["measured_noise_variance"] == pytest.approx(float(v), rel=0.1)
        assert m["noisy"][v]["latent_power_min"] == pytest.approx(1.0, abs=1e-4)
    assert m["config"]["latent_shape"] == [16, 8, 8] and m["arch"] == "jscc"
    assert 0 < m["ae"]["test_ssim"] <= 1 and m["ae"]["test_psnr"] == pytest.approx(
        -10 * np.log10(m["ae"]["test_mse"]), abs=3
    )
    # every perturbation scale is measured (whether larger ones move the image further is a property of a trained
    # decoder; a one-epoch JSCC decoder, its residual blocks still near the identity, hardly reads its code)
    moves = [m["perturb"][s]["psnr_vs_clean"] for s in ("0.1", "0.25", "0.5", "1")]
    assert all(np.isfinite(moves)) and min(moves) > 10

    report = (out / "report.md").read_text()
    for section in ("## 1. Conv autoencoder", "## 2.", "## 3. Sampling a Gaussian", "## 4. Perturbing", "## 5."):
        assert section in report
    assert "1 unreadable file(s) skipped" in report
    assert "Ledoit-Wolf" in report and "**std**" in report and "**variance**" in report
    for name in EXPECTED_FIGURES:
        assert f"(figures/{name})" in report
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0] == "model,epoch,train_loss,test_loss,seconds"
    assert {row.split(",")[0] for row in log[1:]} == MODELS


@pytest.mark.slow
def test_evaluate_reloads_the_run_and_matches_its_metrics(dogs_run, tmp_path, monkeypatch, capsys):
    folder, out, code = dogs_run
    assert code == 0
    monkeypatch.setenv("AELAB_DATA", str(out.parent / "cache"))
    target = tmp_path / "scores.json"
    assert main(["evaluate", str(out), "--data", str(folder), "--json", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "noisy_var0.1" in printed and "PSNR" in printed
    scores = json.loads(target.read_text())
    assert scores["data"]["n_test"] == 36 and scores["data"]["skipped"] == 1
    for path in [("ae", "test_psnr"), ("ae", "test_ssim"), ("ae", "test_mse")]:
        assert np.isfinite(_get(scores, path))
    for v in ("0.05", "0.1", "0.15"):
        for k in ("test_psnr", "test_psnr_clean", "snr_db"):
            assert np.isfinite(_get(scores, ("noisy", v, k)))

    # on the run's own held-out photos the reloaded models give the run's own numbers
    metrics = json.loads((out / "metrics.json").read_text())
    test = load_photos(folder, limit=40, progress=False).test
    models, notes = load_run_models(out, torch.device("cpu"))
    assert notes == [] and set(models) == MODELS
    spec, ae = models["ae"]
    assert score_model(spec, ae, test, torch.device("cpu"))["test_psnr"] == pytest.approx(
        metrics["ae"]["test_psnr"], abs=1e-3
    )
    spec, noisy = models["noisy_var0.1"]
    scores = score_model(spec, noisy, test, torch.device("cpu"), seed=3)
    for key in ("test_psnr", "test_ssim", "test_mse", "test_psnr_clean", "test_ssim_clean"):  # the same noise too
        assert scores[key] == pytest.approx(metrics["noisy"]["0.1"][key], abs=1e-4), key  # metrics.json: 6 digits


def _held_out_copy(folder: Path, limit: int, to: Path) -> Path:
    """The run's held-out photos (same files, so the same pixels) in a folder of their own, named so that
    `aelab evaluate` scores them in the run's order: it scores a folder's training photos first, then its
    held-out ones, each in name order, and a folder of held-out photos only keeps the one whose path hash is
    largest on the training side. So every new name hashes as held out, the run's first photo gets the largest
    hash, and the others follow in name order."""
    from aelab.data.photos import _hash01, decode_folder

    photos = decode_folder(folder, 64, limit, progress=False)
    held = photos.names[photos.n_train :]

    def name(prefix: str, ext: str, above: float = 0.0) -> str:
        return next(n for k in range(100_000) if above < _hash01(n := f"{prefix}_{k}{ext}") < 0.1)

    rest = [name(f"{i:03d}", Path(n).suffix) for i, n in enumerate(held) if i]
    first = name("000", Path(held[0]).suffix, above=max((_hash01(n) for n in rest), default=0.0))
    to.mkdir()
    for src, new in zip(held, [first, *rest]):
        shutil.copy(folder / src, to / new)
    return to


@pytest.mark.slow
def test_one_scorer_aelab_evaluate_gives_the_runs_numbers_on_the_same_photos(dogs_run, tmp_path, monkeypatch):
    folder, out, code = dogs_run
    assert code == 0
    monkeypatch.setenv("AELAB_DATA", str(out.parent / "cache"))
    held = _held_out_copy(folder, 40, tmp_path / "held_out")
    target = tmp_path / "scores.json"
    assert main(["evaluate", str(out), "--data", str(held), "--json", str(target), "--seed", "3"]) == 0
    scores, metrics = json.loads(target.read_text()), json.loads((out / "metrics.json").read_text())
    assert scores["data"]["n_test"] == metrics["data"]["n_test"]
    for path in [("ae",), ("lab", "ae")]:
        for key in ("test_psnr", "test_ssim", "test_mse"):
            assert _get(scores, (*path, key)) == pytest.approx(_get(metrics, (*path, key)), abs=1e-4), (path, key)
    for path in [("noisy", v) for v in ("0.05", "0.1", "0.15")] + [("lab", "noisy", v) for v in ("0.05", "0.15")]:
        for key in ("test_psnr", "test_ssim", "test_psnr_clean", "snr_db"):  # with the run's noise draw
            assert _get(scores, (*path, key)) == pytest.approx(_get(metrics, (*path, key)), abs=1e-4), (path, key)


@pytest.mark.slow
def test_resume_of_a_finished_run_trains_nothing(dogs_run, tmp_path, monkeypatch):
    folder, out, code = dogs_run
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    before = (copy / "train_log.csv").read_text()
    monkeypatch.setenv("AELAB_DATA", str(out.parent / "cache"))
    args = ["dogs", "--data", str(folder), "--out", str(copy), "--quick", "--limit", "40", "--seed", "3"]
    assert main([*args, "--resume", "--parts", "ae,noisy"]) == 0
    assert (copy / "train_log.csv").read_text() == before
    metrics = json.loads((copy / "metrics.json").read_text())
    assert (
        metrics["noisy"]["0.05"]["test_psnr"]
        == json.loads((out / "metrics.json").read_text())["noisy"]["0.05"]["test_psnr"]
    )


def test_evaluate_an_mnist_run(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "mnist_run"
    assert main(["mnist", "--data-dir", str(tiny_mnist), "--out", str(out), "--quick", "--parts", "ae"]) == 0
    target = tmp_path / "m.json"
    assert main(["evaluate", str(out), "--data", str(tiny_mnist), "--json", str(target)]) == 0
    scores = json.loads(target.read_text())
    assert scores["data"]["n_test"] == 256 + 64
    for key in ("test_psnr", "test_ssim", "test_mse", "test_bce"):
        assert np.isfinite(scores["ae2d"][key])
    # a run's models only take images of their own shape
    photos = _photo_folder(tmp_path / "photos", 4)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(photos)]) == 2
    assert "take 1x28x28 images" in capsys.readouterr().err


def test_evaluate_needs_a_run_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "--data", str(tmp_path)]) == 2
    assert "not an aelab run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--variances", "0.05,0"], "--variances"),
        (["--variances", "-0.1"], "--variances"),
        (["--variances", "abc"], "--variances"),
        (["--latent-size", "12"], "--latent-size"),
        (["--latent-channels", "0"], "--latent-channels"),
        (["--limit", "0"], "--limit"),
        (["--epochs", "0"], "--epochs"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        main(["dogs", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *flags])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_unknown_part_and_missing_photos(tmp_path, capsys):
    assert main(["dogs", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--parts", "ae,bogus"]) == 2
    assert "unknown part(s) bogus" in capsys.readouterr().err
    # no --data and nothing downloaded: one line that says how to get photos, and no run folder left behind
    assert main(["dogs", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aelab download stanford-dogs" in err[0]
    assert not (tmp_path / "o2").exists()


def test_latent_size_16_is_a_16x16x16_code(tmp_path, monkeypatch):
    folder = _photo_folder(tmp_path / "photos", 12)
    out = tmp_path / "run16"
    args = ["dogs", "--data", str(folder), "--out", str(out), "--quick", "--parts", "ae,samples", "--latent-size", "16"]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["latent_shape"] == [16, 16, 16]
    assert "latent 16x16x16 (4,096 numbers)" in (out / "report.md").read_text()
    assert set(m) >= {"data", "ae", "samples"} and "noisy" not in m
