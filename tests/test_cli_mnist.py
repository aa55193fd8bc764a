import csv
import json

import pytest

from aelab.cli import main

KEYS = [
    "data.source", "data.n_train", "data.n_test",
    "ae2d.test_bce", "ae2d.test_psnr", "ae2d.knn5_acc",
    "dae.bottleneck_2.noisy_psnr", "dae.bottleneck_2.denoised_psnr",
    "dae.bottleneck_32.noisy_psnr", "dae.bottleneck_32.denoised_psnr",
    *[f"l2.{k}.{m}" for k in ("weight_decay", "penalty") for m in ("test_bce", "test_psnr", "knn5_acc", "latent_std")],
    *[f"explore.{v}.test_psnr" for v in ("bottleneck_128", "mse_loss", "sigmoid_everywhere", "cnn")],
    "manifold.test_codes_inside_grid", "run.seed", "run.torch",
]  # fmt: skip


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from conftest import write_mnist_folder

    root = tmp_path_factory.mktemp("cli")
    data = write_mnist_folder(root / "data")
    out = root / "run"
    assert main(["mnist", "--data-dir", str(data), "--out", str(out), "--quick", "--device", "cpu"]) == 0
    return out


def test_every_output_file_is_written(quick_run):
    for name in ("report.md", "metrics.json", "train_log.csv"):
        assert (quick_run / name).stat().st_size > 100
    figures = {p.name for p in (quick_run / "figures").iterdir()}
    assert {"ae2d_latent_scatter.png", "dae_denoising.png", "manifold.png", "l2_comparison.png",
            "explore_reconstructions.png", "loss_curves.png"} <= figures  # fmt: skip
    ckpts = {p.stem for p in (quick_run / "checkpoints").iterdir()}
    assert {"ae2d", "dae_b2", "dae_b32", "ae2d_weight_decay", "ae2d_l2_penalty", "cnn"} <= ckpts
    report = (quick_run / "report.md").read_text()
    for fig in figures:
        assert f"figures/{fig}" in report
    assert not list(quick_run.rglob("*.tmp"))


def test_every_metrics_key(quick_run):
    metrics = json.loads((quick_run / "metrics.json").read_text())
    for key in KEYS:
        value = _get(metrics, key)
        assert value is not None, key
    assert metrics["data"]["n_train"] == 256 and metrics["data"]["n_test"] == 64
    assert len(metrics["l2"]["penalty"]["latent_std"]) == 2
    assert 0 <= metrics["ae2d"]["knn5_acc"] <= 1
    assert metrics["dae"]["bottleneck_2"]["noisy_psnr"] < 15  # 0.4 x N(0,1) noise is heavy


def test_train_log_has_every_model_and_epoch(quick_run):
    rows = list(csv.DictReader((quick_run / "train_log.csv").read_text().splitlines()))
    assert set(rows[0]) == {"model", "epoch", "train_loss", "test_loss", "seconds"}
    models = {r["model"] for r in rows}
    assert len(models) == 9 and len(rows) == 9 * 2


def test_parts_select_what_runs(tiny_mnist, tmp_path):
    out = tmp_path / "ae_only"
    assert main(["mnist", "--data-dir", str(tiny_mnist), "--out", str(out), "--quick", "--parts", "ae"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "ae2d" in metrics and "dae" not in metrics and "explore" not in metrics


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be > 0"),
        (["--batch-size", "-3"], "--batch-size must be > 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--hidden", "64,0"], "--hidden must be positive"),
        (["--parts", "ae,bogus"], "unknown part(s) bogus"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        code = main(["mnist", "--out", str(tmp_path / "x"), "--no-download", *flags])
        raise SystemExit(code)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing half-made


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["mnist", "--help"])
    text = capsys.readouterr().out
    for flag in ("--data-dir", "--out", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--parts", "--quick"):
        assert flag in text


def test_the_run_writes_and_links_its_latent_explorer(quick_run, capsys, monkeypatch):
    page = quick_run / "explorer.html"
    assert page.stat().st_size > 10_000 and "http://" not in page.read_text()[:2000]
    assert "[Open the latent explorer](explorer.html)" in (quick_run / "report.md").read_text()
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(var, raising=False)
    assert main(["explore", str(quick_run)]) == 0
    assert str(page.resolve()) in capsys.readouterr().out
