"""config.toml replays a run; --tensorboard and `aelab export` work from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aelab.cli import main

QUICK = ["--quick", "--device", "cpu", "--precision", "fp32", "--parts", "ae,dae"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from conftest import write_mnist_folder

    root = tmp_path_factory.mktemp("replay")
    data = write_mnist_folder(root / "data")
    out = root / "first"
    assert main(["mnist", "--data-dir", str(data), "--out", str(out), "--seed", "5", "--hidden", "32,16", *QUICK]) == 0
    return data, out


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    m.pop("run")
    return m


def test_config_toml_holds_every_setting(first_run):
    _, out = first_run
    text = (out / "config.toml").read_text()
    for line in ("seed = 5", "hidden = [32, 16]", 'parts = ["ae", "dae"]', 'precision = "fp32"', "quick = true"):
        assert line in text, line
    assert "aelab_version" in text and "resume" not in text and "overwrite" not in text


def test_replaying_the_config_gives_the_same_metrics(first_run, tmp_path):
    _, out = first_run
    again = tmp_path / "again"
    assert main(["mnist", "--config", str(out / "config.toml"), "--out", str(again)]) == 0
    assert _metrics(again) == _metrics(out)
    # a flag on the command line wins over the file
    other = tmp_path / "other"
    assert main(["mnist", "--config", str(out / "config.toml"), "--out", str(other), "--seed", "6"]) == 0
    assert _metrics(other)["ae2d"] != _metrics(out)["ae2d"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("colour = 3", "unknown key(s) colour"),
        ('lr = "fast"', "lr must be a number"),
        ("epochs = 2.5", "epochs must be a whole number"),
        ("quick = 1", "quick must be true or false"),
        ("lr = -1.0", "--lr must be a finite number > 0"),
        ("epochs = [", "not valid TOML"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, line, message):
    config = tmp_path / "config.toml"
    config.write_text(f"{line}\n")
    with pytest.raises(SystemExit) as e:
        main(["mnist", "--config", str(config), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_tensorboard_flag_logs_every_model(first_run, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data, _ = first_run
    logs = tmp_path / "tb"
    out = tmp_path / "run"
    assert main(["mnist", "--data", str(data), "--out", str(out), "--tensorboard", str(logs), *QUICK]) == 0
    assert {p.name for p in logs.iterdir() if p.is_dir()} >= {"ae2d", "dae_b2", "dae_b32"}
    acc = EventAccumulator(str(logs / "ae2d"), size_guidance={"scalars": 0, "images": 0}).Reload()
    history = {int(r["epoch"]): r for r in _history(out, "ae2d")}
    assert [e.step for e in acc.Scalars("loss/test")] == sorted(history)
    assert [e.value for e in acc.Scalars("loss/test")] == pytest.approx(
        [history[k]["test_loss"] for k in sorted(history)], rel=1e-4
    )
    assert len(acc.Images("reconstructions")) == len(history)
    projector = list((logs / "ae2d").rglob("projector_config.pbtxt"))  # the 2-D codes with labels and a sprite
    assert projector and "sprite" in projector[0].read_text()


def _history(run: Path, model: str) -> list[dict]:
    import csv

    rows = csv.DictReader((run / "train_log.csv").read_text().splitlines())
    return [{k: float(v) for k, v in r.items() if k != "model"} for r in rows if r["model"] == model]


def test_export_command_writes_codes_with_labels(first_run, tmp_path, capsys):
    data, out = first_run
    target = tmp_path / "codes.npz"
    assert main(["export", str(out), "--data", str(data), "--out", str(target)]) == 0
    with np.load(target) as z:
        assert z["codes/ae2d"].shape == (256 + 64, 2) and z["labels"].shape == (256 + 64,)
        assert z["codes/dae_b32"].shape[1] == 32
