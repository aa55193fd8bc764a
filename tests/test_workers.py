"""``--jobs``: the study's MLPs trained side by side in worker processes give the same bits, and stop cleanly.

The speed is measured in benchmarks/RESULTS.md, not here. These tests check what must not change
with the number of workers (weights, metrics, the log's order) and what a fault looks like while the
workers train: a SIGTERM to the run, a non-finite loss in a worker, the run's process killed outright.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from aelab.checkpoint import load_checkpoint
from aelab.cli import main
from aelab.studies.mnist.recipes import RECIPES
from aelab.studies.workers import worker_count

from conftest import write_mnist_folder

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
EPOCHS = 80  # about 60 ms each here: after the first checkpoint, seconds for a signal to land mid-run on a loaded CI
SLOW = ("--hidden", "64", "--epochs", str(EPOCHS), "--batch-size", "8", "--device", "cpu")
DAE = ("dae_b2", "dae_b32")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist_folder(tmp_path_factory.mktemp("idx") / "mnist", n_train=512, n_test=64)


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["mnist", "--data-dir", str(data), "--out", str(out), "--device", "cpu", *extra]


def test_worker_count_is_one_per_core_on_a_cpu_and_one_where_workers_cannot_run() -> None:
    def run(**cfg) -> SimpleNamespace:
        base = {"jobs": 0, "compile": False, "tensorboard": None}
        return SimpleNamespace(
            cfg=SimpleNamespace(**(base | cfg)),
            device=torch.device("cpu"),
            session=SimpleNamespace(dist=SimpleNamespace(enabled=False)),
        )

    cores = len(os.sched_getaffinity(0))
    assert worker_count(run(), 10) == min(cores, 10)
    assert worker_count(run(), 1) == 1  # one model: nothing to train beside it
    assert worker_count(run(jobs=3), 10) == 3 and worker_count(run(jobs=3), 2) == 2
    assert worker_count(run(jobs=1), 10) == 1
    assert worker_count(run(jobs=4, compile=True), 10) == 1
    assert worker_count(run(jobs=4, tensorboard=Path("tb")), 10) == 1
    gpu = run(jobs=4)
    gpu.device = torch.device("cuda")
    assert worker_count(gpu, 10) == 1


def test_only_mlps_without_a_start_of_their_own_are_trained_in_workers() -> None:
    from aelab.studies.workers import _poolable

    pooled = {name for name, recipe in RECIPES.items() if _poolable(recipe)}
    assert pooled == {
        "ae2d",
        "dae_b2",
        "dae_b32",
        "ae2d_weight_decay",
        "ae2d_l2_penalty",
        "bottleneck_128",
        "mse_loss",
        "sigmoid_everywhere",
        "vae2d",
        "rae2d_l2",
    }  # fmt: skip  (the CNN, the judge and the UMAP-regularised AE stay in the main process)


def test_two_workers_give_the_weights_metrics_and_log_of_one_process(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ("--parts", "ae,dae,l2", "--quick", "--epochs", "2")
    outs = {jobs: tmp_path / f"jobs{jobs}" for jobs in (1, 2)}
    for jobs, out in outs.items():
        assert main(_argv(data, out, *args, "--jobs", str(jobs))) == 0, capsys.readouterr().err
    metrics = {jobs: json.loads((out / "metrics.json").read_text()) for jobs, out in outs.items()}
    runs = {jobs: m.pop("run") for jobs, m in metrics.items()}
    assert runs[1]["training_processes"] == 1 and runs[2]["training_processes"] == 2
    assert "training_side_by_side" in runs[2]["wall_seconds"]
    assert metrics[1] == metrics[2]
    names = ("ae2d", *DAE, "ae2d_weight_decay", "ae2d_l2_penalty")
    for name in names:
        one, two = (load_checkpoint(out / "checkpoints" / f"{name}.pt") for out in outs.values())
        for key, tensor in one["model"].items():
            assert torch.equal(tensor, two["model"][key]), f"{name}.{key} differs between --jobs 1 and 2"
    logs = [[row.split(",")[:2] for row in (out / "train_log.csv").read_text().splitlines()] for out in outs.values()]
    assert logs[0] == logs[1] and [r[0] for r in logs[0][1::2]] == list(names)  # reading order, not finishing order
    models = [json.loads((out / "checkpoints/models.json").read_text()) for out in outs.values()]
    assert models[0] == models[1] and set(models[0]) == set(names)


def _workers_of(out: Path) -> list[int]:
    """Live processes whose command line names ``out`` (a forked worker keeps its parent's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
                state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State"))
            except (OSError, StopIteration):
                continue
            if str(out) in cmd and "Z" not in state.split()[1]:
                pids.append(int(entry.name))
    return pids


def _start(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    """Start a two-worker run and return once both workers have checkpoints (a stop now keeps epochs)."""
    cmd = [sys.executable, "-m", "aelab", *_argv(data, out, "--parts", "dae", "--jobs", "2", *SLOW, *extra)]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not all((out / "checkpoints" / f"{n}.pt").exists() for n in DAE):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no checkpoints appeared (exit {proc.returncode}):\n{proc.communicate()[1][-2000:]}")
        time.sleep(0.01)
    return proc


@pytest.mark.slow
def test_sigterm_while_workers_train_exits_143_with_what_each_kept_and_resumes_to_the_same_weights(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = _start(data, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert len(lines) == 1 and lines[0].startswith("aelab: terminated (SIGTERM) while training side by side: "), err
    for name in DAE:
        done = load_checkpoint(out / "checkpoints" / f"{name}.pt")["epoch"]
        assert 1 <= done < EPOCHS
        assert f"{name}, at epoch {done + 1}: checkpoint" in lines[0] and f"keeps {done} finished" in lines[0], err
    assert lines[0].endswith("continue with --resume"), err
    assert not _workers_of(out), "a worker outlived the run"
    assert not (out / ".aelab.lock").exists() and not list(out.rglob(".*tmp"))
    assert "terminated (SIGTERM)" in (out / "FAILED").read_text()

    resumed = subprocess.run(
        [sys.executable, "-m", "aelab", *_argv(data, out, "--parts", "dae", "--jobs", "2", *SLOW, "--resume")],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    r = subprocess.run(
        [sys.executable, "-m", "aelab", *_argv(data, reference, "--parts", "dae", "--jobs", "1", *SLOW)],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in DAE:
        got, want = (load_checkpoint(d / "checkpoints" / f"{name}.pt")["model"] for d in (out, reference))
        assert all(torch.equal(got[k], want[k]) for k in want), f"{name}: resumed weights differ"


@pytest.mark.slow
def test_a_killed_run_takes_its_workers_with_it_and_leaves_the_folder_free(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(data, out)
    assert len(_workers_of(out)) == 3  # the run and its two workers
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while _workers_of(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _workers_of(out), "workers kept training after their run was killed"
    resumed = subprocess.run(
        [sys.executable, "-m", "aelab", *_argv(data, out, "--parts", "dae", "--jobs", "2", *SLOW, "--resume")],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "in use by another aelab run" not in resumed.stderr


def test_a_non_finite_loss_in_a_worker_is_one_line(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    argv = _argv(data, out, "--parts", "dae", "--jobs", "2", "--hidden", "16", "--epochs", "2", "--lr", "1e30")
    assert main([*argv, "--batch-size", "128"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("aelab")]
    assert len(lines) == 1 and "non-finite loss while training dae_b" in lines[0], err
    assert "Traceback" not in err
    assert (out / "FAILED").exists() and not (out / "metrics.json").exists()
    assert not _workers_of(out)
