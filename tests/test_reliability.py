"""Runs that are killed, interrupted or diverge lose nothing, and the same seed gives the same numbers.

The subprocess tests run the real ``aelab mnist`` command on a small IDX folder written here, so they
check what a user sees: a SIGKILL or Ctrl-C after the first checkpoint, then ``--resume``, must end
with exactly the tensors of an uninterrupted run; a non-finite loss stops with one line and keeps
the last good checkpoint; two runs with one seed write byte-identical metrics.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aelab import losses
from aelab.checkpoint import load_checkpoint
from aelab.cli import main
from aelab.errors import WriteFailed

from conftest import write_mnist_folder

EPOCHS = 30
# Small enough to start fast; 64 steps per epoch and 30 epochs leave a window of seconds for a kill to land
# mid-run even when the test process is descheduled on a loaded machine.
ARGS = ("--parts", "ae", "--hidden", "64", "--epochs", str(EPOCHS), "--batch-size", "8", "--device", "cpu")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TIME_WORDS = ("second", "time", "date", "stamp", "duration", "elapsed")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """512 training and 64 test real digits in IDX format, shared by the module's tests."""
    return write_mnist_folder(tmp_path_factory.mktemp("idx") / "mnist", n_train=512, n_test=64)


def _cmd(data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "aelab", "mnist", "--data-dir", str(data), "--out", "run", *ARGS, *extra]


def _run(data: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(_cmd(data, *extra), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def _start_and_stop(data: Path, cwd: Path, sig: int) -> tuple[subprocess.Popen, str]:
    """Start a run, wait for its first checkpoint, send ``sig``; return the process and its stderr."""
    cwd.mkdir(parents=True, exist_ok=True)
    ckpt = cwd / "run" / "checkpoints" / "ae2d.pt"
    proc = subprocess.Popen(
        _cmd(data),
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job starts with SIGINT ignored, and Python then installs no Ctrl-C handler:
        # give the child the default disposition so the test means the same wherever pytest was started
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while not ckpt.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no checkpoint appeared (exit {proc.returncode}):\n{err[-2000:]}")
        time.sleep(0.002)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc, err


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run: the result every interrupted-and-resumed run must reproduce exactly."""
    cwd = tmp_path_factory.mktemp("reference")
    r = _run(data, cwd)
    assert r.returncode == 0, r.stderr
    return cwd / "run"


def _without_seconds(value):
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def assert_identical(a, b, where: str = "checkpoint") -> None:
    """Exact equality of nested checkpoint contents: every tensor bit for bit (wall-clock times aside)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs (max abs diff {(a.double() - b.double()).abs().max():.3g})"
    elif isinstance(a, dict):
        assert isinstance(b, dict), where
        keys = set(a) - {"seconds"}
        assert keys == set(b) - {"seconds"}, f"{where}: keys {sorted(keys ^ (set(b) - {'seconds'}))}"
        for k in keys:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_result(run: Path, reference: Path) -> None:
    got, want = load_checkpoint(run / "checkpoints/ae2d.pt"), load_checkpoint(reference / "checkpoints/ae2d.pt")
    assert got["epoch"] == want["epoch"] == EPOCHS
    assert_identical(got, want)
    m_got, m_want = (json.loads((p / "metrics.json").read_text()) for p in (run, reference))
    m_got.pop("run"), m_want.pop("run")  # the command line differs by --resume
    assert m_got == m_want
    logs = [[row.rsplit(",", 1)[0] for row in (p / "train_log.csv").read_text().splitlines()] for p in (run, reference)]
    assert logs[0] == logs[1] and len(logs[0]) == EPOCHS + 1
    assert not (run / "FAILED").exists()


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(data: Path, reference: Path, tmp_path: Path) -> None:
    proc, err = _start_and_stop(data, tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, err
    run = tmp_path / "run"
    state = load_checkpoint(run / "checkpoints/ae2d.pt")
    done = state["epoch"]
    assert 1 <= done < EPOCHS, f"the kill landed after epoch {done}; nothing left to resume"
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "history"} <= set(state)
    assert state["optimizer"]["state"], "the optimizer's moments must be saved, not only its settings"
    assert state["scheduler"]["last_epoch"] == done * 64  # 512 images / batch 8 = 64 steps per epoch
    assert [h["epoch"] for h in state["history"]] == list(range(1, done + 1))
    assert not (run / "report.md").exists() and not (run / "metrics.json").exists()

    again = _run(data, tmp_path)  # without --resume the used folder is refused
    assert again.returncode == 2 and "--resume or --overwrite" in again.stderr

    resumed = _run(data, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}/{EPOCHS}" in resumed.stdout and f"epoch {done}/{EPOCHS} " not in resumed.stdout
    assert_same_result(run, reference)


@pytest.mark.slow
def test_ctrl_c_exits_130_and_resumes(data: Path, reference: Path, tmp_path: Path) -> None:
    proc, err = _start_and_stop(data, tmp_path, signal.SIGINT)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert len(lines) == 1 and "--resume" in lines[0], err
    assert "Traceback" not in err
    run = tmp_path / "run"
    done = load_checkpoint(run / "checkpoints/ae2d.pt")["epoch"]
    assert 1 <= done < EPOCHS
    assert "interrupted" in (run / "FAILED").read_text()
    assert not (run / "report.md").exists() and not (run / "metrics.json").exists()
    assert not list((run / "checkpoints").glob(".*tmp")), "a temporary checkpoint was left behind"

    resumed = _run(data, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_result(run, reference)


@pytest.mark.slow
def test_sigterm_exits_143_says_what_stopped_and_resumes(data: Path, reference: Path, tmp_path: Path) -> None:
    """What `timeout`, SLURM, Kubernetes and systemd send: handled like Ctrl-C, with the exit code 143."""
    proc, err = _start_and_stop(data, tmp_path, signal.SIGTERM)
    assert proc.returncode == 143, err
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert "Traceback" not in err
    run = tmp_path / "run"
    done = load_checkpoint(run / "checkpoints/ae2d.pt")["epoch"]
    assert 1 <= done < EPOCHS
    assert lines == [
        f"aelab: terminated (SIGTERM) while training ae2d (epoch {done + 1}); checkpoint run/checkpoints/ae2d.pt "
        f"keeps {done} finished epoch(s); continue with --resume"
    ], err
    assert f"terminated (SIGTERM) while training ae2d (epoch {done + 1})" in (run / "FAILED").read_text()
    assert not (run / "report.md").exists() and not (run / "metrics.json").exists()
    assert not list(run.rglob(".*tmp")), "a temporary file was left behind"
    assert not (run / ".aelab.lock").exists(), "the run folder's lock must be released"

    resumed = _run(data, tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}/{EPOCHS}" in resumed.stdout and f"epoch {done}/{EPOCHS} " not in resumed.stdout
    assert_same_result(run, reference)


def _find_time_keys(tree, path: str = "") -> list[str]:
    found = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if any(w in k.lower() for w in TIME_WORDS):
                found.append(f"{path}.{k}")
            found += _find_time_keys(v, f"{path}.{k}")
    return found


@pytest.mark.slow
def test_same_seed_gives_byte_identical_metrics(data: Path, reference: Path, tmp_path: Path) -> None:
    """Same command (same relative --out, so the recorded command line matches), another process."""
    r = _run(data, tmp_path / "second")
    assert r.returncode == 0, r.stderr
    first, second = (json.loads((d / "metrics.json").read_bytes()) for d in (reference, tmp_path / "second/run"))
    for m in (first, second):  # the run's wall times are the one thing a rerun may change
        assert {"ae", "total"} <= set(m["run"].pop("wall_seconds"))
    assert json.dumps(first) == json.dumps(second)
    metrics = first
    assert _find_time_keys(metrics) == []
    run = metrics["run"]
    assert run["seed"] == 0 and run["device"].startswith("cpu")
    assert run["torch"] == torch.__version__ and run["python"] == ".".join(map(str, sys.version_info[:3]))
    assert run["command"].startswith("aelab mnist --data-dir") and f"--epochs {EPOCHS}" in run["command"]
    report = (reference / "report.md").read_text()
    for needle in ("**seed**: `0`", f"**torch**: `{torch.__version__}`", "**aelab**:", "**command**: `aelab mnist"):
        assert needle in report

    other = _run(data, tmp_path / "seed1", "--seed", "1")
    assert other.returncode == 0, other.stderr
    m1 = json.loads((tmp_path / "seed1/run/metrics.json").read_text())
    assert m1["ae2d"] != metrics["ae2d"], "a different seed should give different numbers"


# ---------------------------------------------------------------- non-finite loss (in-process)


def _nan_at(epoch: int, batch: int, steps_per_epoch: int):
    """The BCE objective, but the training batch (epoch, batch) returns NaN; evaluation stays finite."""
    bce = losses.RECONSTRUCTION["bce"]
    calls = {"train": 0}

    def objective(model, x, gen=None):
        loss = bce(model, x, gen)
        if model.training:
            calls["train"] += 1
            if calls["train"] == (epoch - 1) * steps_per_epoch + batch:
                return loss * float("nan")
        return loss

    return objective


def _run_in_process(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """``aelab ARGV`` in this process: (exit code, stdout with the epoch lines, stderr)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # 512 images / batch 128 = 4 steps per epoch; batch 3 of epoch 3 goes bad.
    monkeypatch.setitem(losses.RECONSTRUCTION, "bce", _nan_at(3, 3, 4))
    out = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(data), "--out", str(out), "--parts", "ae", "--hidden", "16"]
    argv += ["--epochs", "4", "--batch-size", "128", "--device", "cpu"]
    code, out_text, err = _run_in_process(argv, capsys)
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("aelab: error: non-finite loss while training ae2d: epoch 3, batch 3")
    assert "last good checkpoint" in lines[0]
    state = load_checkpoint(out / "checkpoints/ae2d.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert "non-finite loss" in (out / "FAILED").read_text()
    assert not (out / "report.md").exists() and not (out / "metrics.json").exists()

    # The kept checkpoint is usable: with a sane objective the run resumes from epoch 3 and finishes.
    monkeypatch.setitem(losses.RECONSTRUCTION, "bce", _nan_at(99, 1, 4))
    code, out_text, err = _run_in_process([*argv, "--resume"], capsys)
    assert code == 0, err
    assert "epoch 3/4" in out_text and "epoch 1/4" not in out_text
    assert load_checkpoint(out / "checkpoints/ae2d.pt")["epoch"] == 4
    assert (out / "report.md").exists() and not (out / "FAILED").exists()


def test_diverging_lr_in_the_first_epoch_says_no_checkpoint(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(data), "--out", str(out), "--parts", "ae", "--hidden", "16"]
    code, out_text, err = _run_in_process(
        [*argv, "--epochs", "2", "--batch-size", "128", "--lr", "1e30", "--device", "cpu"], capsys
    )
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert code == 2 and len(lines) == 1, err
    assert "non-finite loss while training ae2d: epoch 1, batch" in lines[0]
    assert "no checkpoint" in lines[0] and "kept" not in lines[0], "there is no good checkpoint to keep yet"
    assert not (out / "checkpoints/ae2d.pt").exists()
    assert (out / "FAILED").exists()


# ---------------------------------------------------------------- output folder rules (in-process)


@pytest.mark.slow
def test_finished_run_is_never_overwritten_silently(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(data), "--out", str(out), "--parts", "ae", "--hidden", "16", "--epochs", "1"]
    argv += ["--device", "cpu"]
    code, out_text, err = _run_in_process(argv, capsys)
    assert code == 0, err
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}

    code, out_text, err = _run_in_process(argv, capsys)
    assert code == 2 and "already holds a run; pass --resume or --overwrite" in err
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before

    (out / "figures" / "stale.png").write_bytes(b"from an older run")
    code, out_text, err = _run_in_process([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert not (out / "figures" / "stale.png").exists()
    assert (out / "report.md").exists() and (out / "metrics.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aelab import checkpoint

    target = tmp_path / "metrics.json"
    checkpoint.atomic_write(target, '{"old": 1}')

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", disk_full)
    with pytest.raises(WriteFailed, match="no space left on the device .ENOSPC.; its previous version is kept"):
        checkpoint.atomic_write(target, '{"new": 2, "padding": "' + "x" * 100_000 + '"}')
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "the temporary file must be removed"


def test_crash_before_the_report_leaves_failed_and_no_report(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A bug (not a user error) keeps its traceback, but the folder still says FAILED and holds no report."""
    from aelab import plots

    def broken(*args, **kwargs):
        raise RuntimeError("plotting exploded")

    monkeypatch.setattr(plots, "loss_curves", broken)
    out = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(data), "--out", str(out), "--parts", "ae", "--hidden", "16", "--epochs", "1"]
    with pytest.raises(RuntimeError, match="plotting exploded"):
        main([*argv, "--device", "cpu"])
    assert "RuntimeError: plotting exploded" in (out / "FAILED").read_text()
    assert not (out / "report.md").exists() and not (out / "metrics.json").exists()
    assert load_checkpoint(out / "checkpoints/ae2d.pt")["epoch"] == 1


@pytest.mark.slow
def test_dogs_same_seed_gives_byte_identical_metrics(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The photo study too; the second run finds the decoded photos in the cache, which must not show."""
    from test_bad_input import make_photo_folder

    photos = make_photo_folder(tmp_path / "photos", n_good=24)
    out = tmp_path / "run"
    argv = ["dogs", "--data", str(photos), "--out", str(out), "--device", "cpu", "--quick", "--parts", "ae"]
    argv += ["--epochs", "1", "--overwrite"]  # the same command line twice; the first time the folder is new
    code, _, err = _run_in_process(argv, capsys)
    assert code == 0, err
    first = (out / "metrics.json").read_bytes()
    code, _, err = _run_in_process(argv, capsys)
    assert code == 0, err
    second = (out / "metrics.json").read_bytes()
    first_m, second_m = json.loads(first), json.loads(second)
    for m in (first_m, second_m):  # the run's wall times are the one thing a rerun may change
        assert {"ae", "total"} <= set(m["run"].pop("wall_seconds"))
    assert json.dumps(first_m) == json.dumps(second_m)
    metrics = first_m
    assert _find_time_keys(metrics) == []
    assert {"command", "seed", "aelab", "python", "torch", "device"} <= set(metrics["run"])
