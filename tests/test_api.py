"""The Python API: ``aelab.mnist``/``aelab.dogs`` say what the command line says, ``Run`` gives the run back.

One source for the settings (the config fields), one for the checks and messages (the flags' parser),
one loader for the models (``aelab evaluate``'s): each test below holds the API to the command line or
to the run folder it wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import aelab
from aelab.cli import main

from conftest import write_mnist_folder

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK = ["--quick", "--device", "cpu", "--precision", "fp32", "--no-download"]


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- settings: one source, one set of checks


def test_import_aelab_loads_no_study_until_one_is_asked_for() -> None:
    code = (
        "import sys, aelab; assert 'torch' not in sys.modules, 'import aelab loaded torch'; print(aelab.mnist.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "mnist"


def test_signature_and_docstring_list_every_flag_with_its_default() -> None:
    import inspect

    from aelab.studies.dogs import DogsConfig
    from aelab.studies.mnist import MnistConfig

    for fn, cls in ((aelab.mnist, MnistConfig), (aelab.dogs, DogsConfig)):
        params = inspect.signature(fn).parameters
        fields = {f.name: f for f in __import__("dataclasses").fields(cls) if "help" in f.metadata}
        assert set(fields) <= set(params) and "parts" in params and "config" in params
        for name, f in fields.items():
            if name not in ("data", "out"):
                assert params[name].default == f.default, name
            assert f"{name} = " in fn.__doc__, name
    assert "allow_download = True (False: --no-download)" in aelab.mnist.__doc__
    assert "lr = None (--lr)" in aelab.dogs.__doc__


BAD = [
    ("mnist", {"epochs": 0}, ["--epochs", "0"]),
    ("mnist", {"batch_size": -3}, ["--batch-size", "-3"]),
    ("mnist", {"lr": float("nan")}, ["--lr", "nan"]),
    ("mnist", {"hidden": (64, 0)}, ["--hidden", "64,0"]),
    ("mnist", {"epochs": 2.5}, ["--epochs", "2.5"]),
    ("mnist", {"parts": ["ae", "bogus"]}, ["--parts", "ae,bogus"]),
    ("mnist", {"device": "tpu"}, ["--device", "tpu"]),
    ("mnist", {"weight_decay": -1}, ["--weight-decay", "-1"]),
    ("dogs", {"variances": [0.1, -1]}, ["--variances", "0.1,-1"]),
    ("dogs", {"latent_size": 12}, ["--latent-size", "12"]),
    ("dogs", {"arch": "vgg"}, ["--arch", "vgg"]),
]


@pytest.mark.parametrize("study, settings, flags", BAD, ids=[f"{s}-{next(iter(k))}" for s, k, _ in BAD])
def test_a_bad_setting_raises_the_line_the_cli_prints(study, settings, flags, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    with pytest.raises(aelab.UserError) as e:
        getattr(aelab, study)(out=out, **settings)
    line = _cli_error([study, "--out", str(out), *flags], capsys)
    message = str(e.value)
    assert line in (f"aelab: error: {message}", f"aelab: error: {message} (see: aelab {study} --help)")
    assert "\n" not in message and not out.exists()


def test_unknown_or_mistyped_settings_are_user_errors() -> None:
    with pytest.raises(aelab.UserError, match=r"unknown setting 'epoch' for `aelab mnist`; the settings are: data, "):
        aelab.mnist(epoch=3)
    with pytest.raises(aelab.UserError, match=r"unknown setting 'debug'"):  # a CLI-only flag
        aelab.dogs(debug=True)
    with pytest.raises(aelab.UserError, match="quick must be True or False, got 'yes'"):
        aelab.mnist(quick="yes")


def test_a_missing_data_folder_is_the_same_user_error(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(aelab.UserError) as e:
        aelab.dogs(data=missing, out=tmp_path / "api", quick=True)
    assert _cli_error(["dogs", "--data", str(missing), "--out", str(tmp_path / "cli"), "--quick"], capsys) == (
        f"aelab: error: {e.value}"
    )
    assert "photo folder" in str(e.value)


def test_a_dogs_config_toml_replays(tmp_path) -> None:
    """``config.toml`` of a dogs run reads back: ``--latent-size`` (a choice of numbers) included."""
    from aelab.studies.catalog import studies
    from aelab.studies.config import config_defaults_from_file, config_from_settings
    from aelab.studies.dogs import DogsConfig

    cfg = DogsConfig(out=tmp_path / "run", latent_size=16, variances=(0.1,), arch="lab", parts=("ae", "noisy"))
    (tmp_path / "config.toml").write_text(cfg.to_toml("test"))
    study = studies()["dogs"]
    defaults = config_defaults_from_file(tmp_path / "config.toml", DogsConfig, "dogs")
    again = config_from_settings(DogsConfig, study.registry, "dogs", {}, defaults)
    assert (again.latent_size, again.variances, again.arch, again.parts) == (16, (0.1,), "lab", ("ae", "noisy"))


# ---------------------------------------------------------------- one run from Python, one from the CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The same quick MNIST run (parts ae and manifold) from the command line and from Python."""
    root = tmp_path_factory.mktemp("api")
    data = write_mnist_folder(root / "data")
    cli, api = root / "cli", root / "api"
    assert main(["mnist", "--data", str(data), "--out", str(cli), "--parts", "ae,manifold", *QUICK]) == 0
    run = aelab.mnist(
        data=data, parts=["ae", "manifold"], out=api, quick=True, device="cpu", precision="fp32", allow_download=False
    )
    assert isinstance(run, aelab.Run) and run.path == api
    return data, cli, api


def _without_times(metrics: dict) -> dict:
    metrics = json.loads(json.dumps(metrics))
    for key in ("wall_seconds", "command"):
        metrics["run"].pop(key)
    return metrics


def test_python_and_the_cli_write_the_same_metrics(runs) -> None:
    _, cli, api = runs
    from_cli, from_api = (json.loads((d / "metrics.json").read_text()) for d in (cli, api))
    assert _without_times(from_cli) == _without_times(from_api)
    assert from_api["run"]["study"] == "mnist"
    # the run records the command line that says the same, and that command line replays it
    command = from_api["run"]["command"]
    assert command.startswith("aelab mnist --data=") and "--parts=ae,manifold" in command and "--no-download" in command


def test_a_reopened_run_gives_models_whose_psnr_is_the_reports(runs) -> None:
    from aelab.data.mnist import read_idx_folder
    from aelab.evaluate import mean_psnr, predict

    data, cli, _ = runs
    run = aelab.open_run(cli, device="cpu")  # a folder the command line wrote
    model = run.model("ae2d")
    assert isinstance(model, torch.nn.Module) and not model.training and run.models().keys() == {"ae2d"}
    test = read_idx_folder(data).test
    x_hat = predict(model, test, lambda x: x.float() / 255, torch.device("cpu"))["x_hat"]
    psnr = mean_psnr(x_hat, test.float() / 255)
    assert psnr == pytest.approx(run.metrics["ae2d"]["test_psnr"], abs=1e-4)
    assert run.evaluate("ae2d")["test_psnr"] == pytest.approx(psnr, abs=1e-5)  # the run's own test images
    row = next(line for line in run.report.read_text().splitlines() if line.startswith("| 0."))  # the AE table
    assert f"| {psnr:.2f} |" in row  # dB to 0.01, as measured
    assert torch.equal(run.data().test, test)


def test_encode_and_decode_use_each_models_scaling(runs) -> None:
    _, _, api = runs
    run = aelab.open_run(api, device="cpu")
    digits = run.data().test[:5]
    codes = run.encode("ae2d", digits)
    assert codes.shape == (5, 2) and codes.dtype == torch.float32
    images = run.decode("ae2d", codes)
    assert images.shape == (5, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
    x_hat = run.model("ae2d")(digits.float() / 255)["x_hat"]
    assert torch.allclose(images, x_hat, atol=1e-6)
    line = run.decode("ae2d", [[0.0, 0.0], [1.0, -1.0]])
    assert line.shape == (2, 1, 28, 28)
    with pytest.raises(aelab.UserError, match="uint8"):
        run.encode("ae2d", digits.float())
    with pytest.raises(aelab.UserError, match=r"has no model 'cnn'; its models: ae2d"):
        run.model("cnn")


def test_a_run_shows_as_its_report_with_the_figures_inline(runs) -> None:
    _, _, api = runs
    run = aelab.open_run(api)
    assert list(run.figures) == ["ae2d_loss", "ae2d_reconstructions", "ae2d_latent_scatter", "manifold", "loss_curves"]
    assert all(p.is_file() and p.parent == api / "figures" for p in run.figures.values())
    md = run._repr_markdown_()
    assert md.startswith("# aelab: deep autoencoders") and "](figures/" not in md
    assert md.count("](data:image/png;base64,") == len(run.figures)
    assert run.sections[0].startswith("1. Autoencoder") and run.sections[-1] == "Run"
    for which in ("manifold", 3, "decoding a uniform grid"):
        section = run.section(which)._repr_markdown_()
        assert section.startswith("## 3. Decoding a uniform grid") and "## 1." not in section
        assert section.count("data:image/png;base64,") == 1
    with pytest.raises(aelab.UserError, match="no section 'dae'"):  # a part this run did not run
        run.section("dae")
    assert re.fullmatch(r"Run\('.*api'\): aelab mnist, 1 models, 5 figures", repr(run))


def test_open_run_says_why_a_folder_is_not_a_finished_run(tmp_path) -> None:
    with pytest.raises(aelab.UserError, match="does not exist"):
        aelab.open_run(tmp_path / "nowhere")
    with pytest.raises(aelab.UserError, match="holds no finished aelab run"):
        aelab.open_run(tmp_path)
    (tmp_path / "FAILED").write_text("This run did not finish.\nReason: interrupted (Ctrl-C)\n")
    with pytest.raises(aelab.UserError, match=r"did not finish \(interrupted \(Ctrl-C\)\); run it again with resume"):
        aelab.open_run(tmp_path)


# ---------------------------------------------------------------- the README's example


def test_the_readme_from_python_example_runs(tmp_path, monkeypatch) -> None:
    text = README.read_text()
    section = text[text.index("## From Python") :]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md (From Python)", "exec"), namespace)
    run = namespace["run"]
    assert isinstance(run, aelab.Run) and (tmp_path / run.path / "report.md").is_file()
    assert namespace["images"].shape[1:] == (1, 28, 28)
