"""The MNIST ``compare`` part: VAE, RAE-L2, digit judge, samplers, judged-sample metrics, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aelab import VAE, DigitJudge, MLPAutoencoder, TrainConfig, fit, judged_samples, latent_grid
from aelab.cli import build_parser, main
from aelab.data.mnist import read_idx_folder
from aelab.data.scaling import unit
from aelab.losses import cross_entropy, rae_l2, squared_weights, vae_elbo
from aelab.studies.mnist import DEFAULT_PARTS, PARTS, MnistConfig
from aelab.studies.mnist.sampling import SAMPLERS, PCAAutoencoder, sample_codes
from aelab.train import evaluate_loss

CPU = torch.device("cpu")


@pytest.fixture
def digits(tiny_mnist):
    return read_idx_folder(tiny_mnist)


def test_vae_samples_in_training_and_uses_the_mean_in_eval():
    torch.manual_seed(0)
    vae = VAE(hidden=(32, 16), bottleneck=2)
    x = torch.rand(5, 1, 28, 28)
    vae.eval()
    out = vae(x)
    assert out["x_hat"].shape == (5, 1, 28, 28) and out["mu"].shape == out["logvar"].shape == (5, 2)
    assert torch.equal(out["z"], out["mu"]) and torch.equal(vae.encode(x), out["mu"])
    assert torch.allclose(out["x_hat"], vae.decode(out["mu"]))
    vae.train()
    a = vae(x, generator=torch.Generator().manual_seed(1))["z"]
    b = vae(x, generator=torch.Generator().manual_seed(1))["z"]
    c = vae(x, generator=torch.Generator().manual_seed(2))["z"]
    assert torch.equal(a, b) and not torch.allclose(a, c)
    # same decoder as the AE, encoder twice as wide at the end
    ae = MLPAutoencoder(hidden=(32, 16), bottleneck=2)
    assert [p.shape for p in vae.decoder.parameters()] == [p.shape for p in ae.decoder.parameters()]
    assert vae.encoder[-1].out_features == 4


def test_vae_objective_is_bce_plus_kl_per_pixel():
    torch.manual_seed(0)
    vae = VAE(hidden=(16,), bottleneck=2).eval()
    x = torch.rand(4, 1, 28, 28)
    out = vae(x)
    kl = 0.5 * (out["mu"] ** 2 + out["logvar"].exp() - 1 - out["logvar"]).sum(1).mean()
    expected = F.binary_cross_entropy_with_logits(out["logits"], x) + kl / 784
    assert torch.allclose(vae_elbo()(vae, x), expected)
    assert torch.allclose(vae_elbo(beta=0.0)(vae, x), F.binary_cross_entropy_with_logits(out["logits"], x))


def test_rae_penalises_the_codes_and_the_decoder_weights_only():
    torch.manual_seed(0)
    model = MLPAutoencoder(hidden=(16,), bottleneck=2).eval()
    x = torch.rand(4, 1, 28, 28)
    base = rae_l2(0.0, 0.0)(model, x)
    dec = sum(p.pow(2).sum() for n, p in model.decoder.named_parameters() if "weight" in n)
    enc = sum(p.pow(2).sum() for n, p in model.encoder.named_parameters() if "weight" in n)
    assert torch.allclose(rae_l2(0.0, 1e-3)(model, x) - base, 1e-3 * dec)
    assert not torch.allclose(dec, dec + enc)
    z = model(x)["z"]
    assert torch.allclose(rae_l2(2.0, 0.0)(model, x) - base, 2.0 * 0.5 * z.pow(2).sum(1).mean() / 784, atol=1e-7)


def test_squared_weights_of_a_part_works_through_a_wrapper():
    class Wrapper(nn.Module):  # names like DDP's: module.decoder.0.weight
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    model = MLPAutoencoder(hidden=(8,), bottleneck=2)
    expected = sum(p.pow(2).sum() for n, p in model.decoder.named_parameters() if n.endswith("weight"))
    assert torch.allclose(squared_weights(Wrapper(model), "decoder"), expected)
    assert torch.allclose(squared_weights(model), squared_weights(model, "encoder") + expected)


def test_fit_with_targets_trains_the_judge(digits, tmp_path):
    judge = DigitJudge()
    cfg = TrainConfig(epochs=4, batch_size=32, lr=2e-3)
    targets = (digits.train_labels, digits.test_labels)
    hist = fit(
        "judge", judge, cross_entropy, digits.train, digits.test, unit, cfg, CPU, tmp_path / "j.pt", None, targets
    )
    assert hist[-1]["test_loss"] < 0.6 * hist[0]["test_loss"]
    probs = judge.probabilities(unit(digits.test.clone()), CPU)
    assert probs.shape == (64, 10) and torch.allclose(probs.sum(1), torch.ones(64), atol=1e-5)
    assert (probs.argmax(1) == digits.test_labels).double().mean() > 0.5  # 256 training digits, 4 epochs
    test_loss = evaluate_loss(judge, cross_entropy, digits.test, unit, 50, CPU, 0, targets=digits.test_labels)
    assert test_loss == pytest.approx(hist[-1]["test_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="one entry per image"):
        fit("j2", DigitJudge(), cross_entropy, digits.train, digits.test, unit, cfg, CPU, None, None, targets[::-1])


def test_judged_samples_counts_share_coverage_and_entropy():
    probs = torch.full((100, 10), 0.01)
    probs[:, 0] = 0.91  # 100 confident zeros ...
    probs[50:, 0], probs[50:80, 3], probs[80:, 5] = 0.0, 0.95, 0.5  # ... then 30 confident threes, 20 unsure
    s = judged_samples(probs, threshold=0.9, min_share=0.02)
    assert s["digit_share"] == pytest.approx(0.8)
    assert s["coverage_classes"] == 2
    p = np.array([50, 30]) / 80
    assert s["class_entropy"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    uniform = torch.eye(10).repeat(10, 1)
    assert judged_samples(uniform) == {
        "digit_share": 1.0,
        "coverage_classes": 10,
        "class_entropy": pytest.approx(math.log2(10)),
    }
    assert judged_samples(torch.full((5, 10), 0.1)) == {"digit_share": 0.0, "coverage_classes": 0, "class_entropy": 0.0}


def test_samplers_draw_from_their_boxes_and_fits():
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal((-8, 3), 0.5, (500, 2)), rng.normal((6, -2), 0.5, (500, 2))])
    lab = sample_codes("grid_lab", codes, 1000, 0, 5.0)
    assert lab.shape == (1024, 2) and lab.min() == -5.0 and lab.max() == 5.0
    box = sample_codes("grid", codes, 1000, 0, 5.0)
    lo, hi = np.percentile(codes, [1, 99], axis=0)
    assert np.allclose(box.min(0), lo, atol=1e-5) and np.allclose(box.max(0), hi, atol=1e-5)
    assert np.allclose(sample_codes("normal", codes, 4000, 0, 5.0).std(0), 1.0, atol=0.05)
    g = sample_codes("gaussian", codes, 4000, 0, 5.0)
    assert np.allclose(g.mean(0), codes.mean(0), atol=0.4)
    gmm = sample_codes("gmm", codes, 1000, 0, 5.0)
    # the mixture keeps the two clusters apart; one Gaussian fills the gap between them
    assert np.mean(np.abs(gmm[:, 0] + 1) < 3) < 0.02 < np.mean(np.abs(g[:, 0] + 1) < 3)
    for name in SAMPLERS:
        assert np.array_equal(sample_codes(name, codes, 100, 3, 5.0), sample_codes(name, codes, 100, 3, 5.0))
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_codes("uniform", codes, 10, 0, 5.0)


def test_latent_grid_over_a_rectangle():
    g = latent_grid(3, (-1.0, 0.0), (1.0, 4.0))
    assert g[:, 0].unique().tolist() == [-1.0, 0.0, 1.0] and g[:, 1].unique().tolist() == [0.0, 2.0, 4.0]
    assert g[0].tolist() == [-1.0, 4.0]  # top-left first, as the scatter plot reads
    assert torch.equal(latent_grid(4, -2.0, 2.0), latent_grid(4, (-2.0, -2.0), (2.0, 2.0)))


def test_pca_autoencoder_matches_sklearn(digits):
    from sklearn.decomposition import PCA

    pca = PCAAutoencoder(digits.train)
    x = unit(digits.test.clone())
    out = pca(x)
    ref = PCA(2, random_state=0).fit(unit(digits.train.clone()).flatten(1).numpy())
    assert np.allclose(np.abs(out["z"].numpy()), np.abs(ref.transform(x.flatten(1).numpy())), atol=1e-3)
    assert out["x_hat"].shape == x.shape and out["x_hat"].min() >= 0.0 and out["x_hat"].max() <= 1.0


def test_compare_is_opt_in():
    assert "compare" in PARTS and "compare" not in DEFAULT_PARTS and MnistConfig().parts == ()  # () = the defaults
    assert build_parser().parse_args(["mnist"]).parts == ",".join(DEFAULT_PARTS)


@pytest.mark.slow
def test_compare_end_to_end_reuses_the_studys_models(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(tiny_mnist), "--quick", "--out", str(out)]
    assert main([*argv, "--parts", "ae,compare"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["compare"]["ae2d"]["test_psnr"] == m["ae2d"]["test_psnr"]
    models = {"ae2d", "ae2d_weight_decay", "ae2d_l2_penalty", "dae_b2", "vae", "rae_l2", "pca", "umap_ae"}
    assert set(m["compare"]) == models | {"umap", "seconds"} and m["compare"]["seconds"] > 0
    latent = {"knn1_acc", "knn5_acc", "trustworthiness_k5", "trustworthiness_k10", "latent_std", "paper_protocol"}
    assert set(m["compare"]["umap"]) == latent, "umap-learn has no decoder, so no pixel columns"
    for key in models:
        row = m["compare"][key]
        assert set(row) == latent | {"test_mse", "test_psnr", "test_bce"}, key
        assert 0 <= row["knn1_acc"] <= 1 and 0 <= row["knn5_acc"] <= 1 and row["test_psnr"] > 0, key
        assert 0 < row["trustworthiness_k5"] <= 1 and 0 < row["trustworthiness_k10"] <= 1, key
        assert row["test_psnr"] == pytest.approx(-10 * np.log10(row["test_mse"]), abs=3), key
    # Parametric UMAP's protocol for every row: 256 training digits -> kNN on the first 214, trust. on all 256
    paper = {"knn1_acc", "knn5_acc", "trustworthiness_k5"}
    assert m["compare_settings"]["paper_protocol"] == {
        "knn_fit_train_images": 214,
        "trustworthiness_train_images": 256,
        "trustworthiness_k": 5,
    }
    for key in models | {"umap"}:
        row = m["compare"][key]["paper_protocol"]
        assert set(row) == (paper if key == "umap" else paper | {"test_mse"}), key
        assert 0 <= row["knn1_acc"] <= 1 and 0 <= row["knn5_acc"] <= 1 and 0 < row["trustworthiness_k5"] <= 1, key
        if key != "umap":
            assert row["test_mse"] == m["compare"][key]["test_mse"], key
    assert "umap" not in m["generate"] and "umap_ae" in m["generate"]
    assert set(m["generate"]["vae"]) == set(SAMPLERS)
    cell = m["generate"]["rae_l2"]["gmm"]
    assert 0 <= cell["digit_share"] <= 1 and 0 <= cell["coverage_classes"] <= 10 and cell["class_entropy"] >= 0
    assert 0 <= m["judge"]["test_acc"] <= 1
    for fig in ("judge_lab_grid", "compare_latents", "compare_manifolds", "generate_best_worst"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "Best-organised latent space" in report and "RAE paper" in report
    assert "On Parametric UMAP's own protocol" in report and "paper: UMAP loss + reconstruction" in report
    # a second run reloads every finished checkpoint instead of training again
    ckpts = {p.name: p.read_bytes() for p in (out / "checkpoints").glob("*.pt")}
    assert {"ae2d.pt", "dae_b2.pt", "vae2d.pt", "rae2d_l2.pt", "umap_ae.pt", "judge.pt"} <= set(ckpts)
    assert main([*argv, "--parts", "compare", "--resume"]) == 0
    assert {p.name: p.read_bytes() for p in (out / "checkpoints").glob("*.pt")} == ckpts
    again = json.loads((out / "metrics.json").read_text())["compare"]
    # nothing trained the second time: the checkpoints above are byte-identical (the part's seconds are no
    # test of that: with --jobs the first run trains ahead of the part too)
    assert again.pop("seconds") > 0 and m["compare"].pop("seconds") > 0
    assert again == m["compare"]


@pytest.mark.parametrize(
    ("flags", "umap_ae", "ae"),
    [
        ([], 32, 8),
        (["--epochs", "3"], 3, 3),
        (["--umap-epochs", "12"], 12, 8),
        (["--quick", "--umap-epochs", "5"], 5, 2),
    ],
)
def test_the_umap_ae_trains_its_own_budget_unless_told(flags, umap_ae, ae):
    from types import SimpleNamespace

    from aelab.studies.mnist.context import MnistRun
    from aelab.studies.mnist.recipes import RECIPES

    args = build_parser().parse_args(["mnist", *flags])
    cfg = MnistConfig(**{k: getattr(args, k) for k in ("epochs", "umap_epochs", "quick")})
    run = SimpleNamespace(cfg=cfg, data=SimpleNamespace(train=range(60_000)), quick_epochs=MnistRun.quick_epochs)
    assert MnistRun.epochs(run, RECIPES["umap_ae"]) == umap_ae and MnistRun.epochs(run, RECIPES["ae2d"]) == ae
