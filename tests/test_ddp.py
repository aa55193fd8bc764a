"""Two CPU processes under torchrun (gloo): training works and rank 0 alone writes the run folder.

Every rank runs the real ``python -m aelab mnist``; a ``sitecustomize`` audit hook, loaded by each
rank, records every file it creates, renames or opens for writing inside the output folder, so the
test sees who wrote what instead of guessing from the final files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aelab

from conftest import write_mnist_folder

AUDIT_HOOK = textwrap.dedent(
    """
    import os, sys
    _out = os.environ.get("AELAB_TEST_OUT")
    _log = os.environ.get("AELAB_TEST_WRITES")
    _rank = os.environ.get("RANK")
    if _out and _log and _rank is not None:
        _busy = [False]

        def _hook(event, args):
            if _busy[0] or event not in ("open", "os.rename", "os.mkdir", "os.remove"):
                return
            if event == "open":
                path, mode, flags = args
                writing = (mode and any(c in mode for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR)
                if not writing:
                    return
                paths = [path]
            else:
                paths = list(args[:2]) if event == "os.rename" else [args[0]]
            for p in paths:
                if isinstance(p, (str, bytes, os.PathLike)) and os.fsdecode(p).startswith(_out):
                    _busy[0] = True
                    try:
                        with open(f"{_log}.{_rank}", "a") as f:
                            f.write(f"{event} {os.fsdecode(p)}\\n")
                    finally:
                        _busy[0] = False

        sys.addaudithook(_hook)

        import atexit

        def _gloo_threads_at_exit():
            # after aelab's main() returned: a gloo thread still running here is what aborted a clean exit
            from aelab.runtime import gloo_threads

            with open(f"{_log}.threads.{_rank}", "w") as f:
                f.write(" ".join(gloo_threads()))

        atexit.register(_gloo_threads_at_exit)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _finite_numbers(tree: object) -> list[float]:
    if isinstance(tree, dict):
        return [v for x in tree.values() for v in _finite_numbers(x)]
    if isinstance(tree, list):
        return [v for x in tree for v in _finite_numbers(x)]
    return [tree] if isinstance(tree, float) else []


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ddp")
    data = write_mnist_folder(root / "data", n_train=512, n_test=128)
    out = root / "run"
    hook_dir = root / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook_dir), os.environ.get("PYTHONPATH", "")]),
        "AELAB_TEST_OUT": str(out),
        "AELAB_TEST_WRITES": str(root / "writes"),
        "AELAB_DATA": str(root / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    # ae trains ae2d; manifold and dae add evaluation-only code paths between trainings
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "aelab", "mnist", "--data-dir", str(data), "--out", str(out), "--quick", "--device", "cpu",
        "--parts", "ae,dae,manifold", "--epochs", "3", "--batch-size", "32", "--no-download",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    writes = {
        r: (root / f"writes.{r}").read_text().split("\n") if (root / f"writes.{r}").exists() else [] for r in "01"
    }
    threads = {r: (root / f"writes.threads.{r}").read_text() for r in "01" if (root / f"writes.threads.{r}").exists()}
    return {"proc": proc, "out": out, "writes": {r: [w for w in v if w] for r, v in writes.items()}, "threads": threads}


@pytest.mark.slow
def test_two_ranks_train_and_finish(ddp_run: dict) -> None:
    proc = ddp_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((ddp_run["out"] / "metrics.json").read_text())
    assert metrics["run"]["world_size"] == 2
    assert metrics["data"]["n_train"] == 512  # every rank loaded all of it; each trained on its half
    numbers = _finite_numbers(metrics)
    assert len(numbers) > 5 and all(math.isfinite(v) for v in numbers)
    assert 0.0 <= metrics["ae2d"]["knn5_acc"] <= 1.0
    assert metrics["ae2d"]["test_bce"] < 0.68  # an untrained AE outputs ~0.5 everywhere: BCE ln 2 = 0.693


@pytest.mark.slow
def test_losses_go_down_and_every_epoch_is_logged_once(ddp_run: dict) -> None:
    assert ddp_run["proc"].returncode == 0
    with open(ddp_run["out"] / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    keys = [(r["model"], int(r["epoch"])) for r in rows]
    assert len(keys) == len(set(keys)), "a rank appended duplicate rows"
    assert {m for m, _ in keys} == {"ae2d", "dae_b2", "dae_b32"}
    for model in ("ae2d", "dae_b2", "dae_b32"):
        losses = [float(r["train_loss"]) for r in rows if r["model"] == model]
        assert [e for m, e in keys if m == model] == [1, 2, 3]
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0], (model, losses)


@pytest.mark.slow
def test_only_rank_zero_writes(ddp_run: dict) -> None:
    assert ddp_run["proc"].returncode == 0
    out: Path = ddp_run["out"]
    rank0, rank1 = ddp_run["writes"]["0"], ddp_run["writes"]["1"]
    assert rank1 == [], f"rank 1 wrote into the run folder: {rank1[:5]}"
    written = " ".join(rank0)
    for name in ("report.md", "metrics.json", "train_log.csv", "ae2d.pt", "manifold.png"):
        assert name in written, name
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith(".tmp") or "/." in f or f.startswith(".")], files
    assert "FAILED" not in files
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["ae2d.pt", "dae_b2.pt", "dae_b32.pt"]
    report = (out / "report.md").read_text()
    assert report.count("# aelab: deep autoencoders on ") == 1
    assert "world_size**: `2`" in report
    assert ddp_run["proc"].stdout.count("aelab: done") == 1, "every rank announced the result"


@pytest.mark.slow
def test_process_group_is_freed_before_python_exits(ddp_run: dict) -> None:
    """A gloo thread alive while the interpreter finalises can abort a clean exit with SIGABRT."""
    assert ddp_run["proc"].returncode == 0
    assert ddp_run["threads"] == {"0": "", "1": ""}


RESUME_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch

    from aelab.errors import UserError
    from aelab.losses import RECONSTRUCTION
    from aelab.models.mlp import MLPAutoencoder
    from aelab.runtime import init_distributed, shutdown_distributed
    from aelab.data.scaling import unit
    from aelab.train import TrainConfig, fit

    d = init_distributed("cpu")
    tmp = Path(sys.argv[1])
    data = torch.load(tmp / "data.pt")
    ckpt = tmp / ("one_epoch.pt" if d.rank == 0 else "absent.pt")  # as if --out were local to each machine
    try:
        fit("ae", MLPAutoencoder(hidden=(16,)), RECONSTRUCTION["bce"], data, data[:16], unit,
            TrainConfig(epochs=2, batch_size=16), torch.device("cpu"), ckpt)
        outcome = "trained"
    except UserError as e:
        outcome = f"UserError: {e}"
    shutdown_distributed()
    from aelab.runtime import gloo_threads
    (tmp / f"outcome{d.rank}").write_text(outcome)
    (tmp / f"threads{d.rank}").write_text(" ".join(gloo_threads()))
    """
)


@pytest.mark.slow
def test_ranks_resuming_from_different_epochs_stop_instead_of_hanging(tmp_path: Path) -> None:
    import torch

    from aelab.data.scaling import unit
    from aelab.losses import RECONSTRUCTION
    from aelab.models.mlp import MLPAutoencoder
    from aelab.train import TrainConfig, fit

    torch.manual_seed(0)
    data = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    torch.save(data, tmp_path / "data.pt")
    fit(
        "ae", MLPAutoencoder(hidden=(16,)), RECONSTRUCTION["bce"], data, data[:16], unit,
        TrainConfig(epochs=1, batch_size=16), torch.device("cpu"), tmp_path / "one_epoch.pt",
    )  # fmt: skip
    (tmp_path / "worker.py").write_text(RESUME_WORKER)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(tmp_path / "worker.py"), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        outcome = (tmp_path / f"outcome{rank}").read_text()
        assert outcome.startswith("UserError: ranks found different checkpoints for ae"), outcome
        assert "shared file system" in outcome
    assert "rank 0 is at epoch 1" in (tmp_path / "outcome0").read_text()
    # the cause of an old flake (SIGABRT, "terminate called without an active exception"): a process group
    # that destroy_process_group could not free kept gloo threads alive into interpreter shutdown
    assert [(tmp_path / f"threads{rank}").read_text() for rank in (0, 1)] == ["", ""]


PACKAGE = Path(aelab.__file__).resolve().parent
_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+', re.MULTILINE)


def aelab_frames(text: str) -> list[str]:
    """The traceback frames in ``text`` that are aelab's own code, found by the package's real location.

    Not a substring such as ``aelab/``: a checkout in a folder named ``aelab`` (what ``git clone`` makes) puts
    that in every path of its virtual environment too, torch's frames included.
    """
    return [f for f in _FRAME.findall(text) if Path(f).resolve().is_relative_to(PACKAGE)]


def test_aelab_frames_are_found_by_the_package_location_not_by_a_path_substring(tmp_path: Path) -> None:
    """A checkout folder named ``aelab``: torch's frames under its ``.venv`` are not aelab's; the package's are."""
    checkout = tmp_path / "aelab"
    venv_torch = checkout / ".venv" / "lib" / "python3.11" / "site-packages" / "torch" / "distributed" / "run.py"
    own = PACKAGE / "train.py"
    text = textwrap.dedent(
        f"""\
        Traceback (most recent call last):
          File "{venv_torch}", line 10, in main
            raise SignalException
        torch.distributed.elastic.multiprocessing.api.SignalException: Process 1 got signal: 15
        """
    )
    assert "aelab/" in text and aelab_frames(text) == []
    assert aelab_frames(text + f'  File "{own}", line 3, in fit\n') == [str(own)]


def _torchrun_mnist(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "aelab", "mnist", "--data-dir", str(data), "--out", str(out), "--parts", "ae", "--hidden", "64",
        "--epochs", "12", "--batch-size", "8", "--device", "cpu", *extra,
    ]  # fmt: skip


def _torchrun_until_first_checkpoint(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path, dict, Path]:
    """Start a 2-rank MNIST run under torchrun and wait for its first checkpoint.

    Returns the launcher, the data folder, the run folder, the environment and the checkpoint path.
    """
    import time

    data = write_mnist_folder(tmp_path / "data", n_train=512, n_test=64)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AELAB_DATA": str(tmp_path / "cache"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        _torchrun_mnist(data, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ckpt = out / "checkpoints" / "ae2d.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared:\n" + proc.communicate()[1][-3000:])
        time.sleep(0.01)
    return proc, data, out, env, ckpt


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_the_same_way(tmp_path: Path) -> None:
    """SIGTERM to the launcher (as Kubernetes or SLURM send it): every rank stops at the same step with
    one line and exit 143, no rank hangs in a collective, and --resume finishes the run."""
    import signal
    import time

    proc, data, out, env, ckpt = _torchrun_until_first_checkpoint(tmp_path)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - t0 < 25, "a rank hung: torchrun had to wait for it (it kills after 30 s)"
    assert proc.returncode != 0
    lines = [line.split("aelab: ", 1)[1] for line in err.splitlines() if "aelab: " in line]
    assert len(lines) == 2, err[-3000:]  # one line per rank
    assert lines[0] == lines[1], "the ranks stopped at different steps"
    assert re.fullmatch(
        rf"terminated \(SIGTERM\) while training ae2d \(epoch (\d+)\); checkpoint {re.escape(str(ckpt))} keeps "
        r"(\d+) finished epoch\(s\); continue with --resume",
        lines[0],
    ), lines[0]
    # torchrun's own SignalException traceback is expected; none may come from aelab, and no rank may abort
    assert "SIGABRT" not in err and "terminate called" not in err and not aelab_frames(err), err
    from aelab.checkpoint import load_checkpoint

    done = load_checkpoint(ckpt)["epoch"]
    assert 1 <= done < 12
    assert "terminated (SIGTERM)" in (out / "FAILED").read_text()
    assert not (out / ".aelab.lock").exists()

    resumed = subprocess.run(
        _torchrun_mnist(data, out, "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {done + 1}/12" in resumed.stdout and f"epoch {done}/12 " not in resumed.stdout
    assert load_checkpoint(ckpt)["epoch"] == 12 and not (out / "FAILED").exists()


def _rank_pids(launcher: subprocess.Popen) -> dict[int, int]:
    """{rank: pid} of the worker processes torchrun started."""
    kids = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    ranks = {}
    for pid in map(int, kids):
        env = dict(
            kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in kv
        )
        if "RANK" in env:
            ranks[int(env["RANK"])] = pid
    return ranks


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks' pids in /proc")
def test_a_rank_killed_mid_training_stops_the_other_with_one_line(tmp_path: Path) -> None:
    """SIGKILL to rank 1 (what the OOM killer does): rank 0 stops at once with one line, no traceback,
    and --resume finishes the run from the last checkpoint."""
    import signal
    import time

    proc, data, out, env, ckpt = _torchrun_until_first_checkpoint(tmp_path)
    os.kill(_rank_pids(proc)[1], signal.SIGKILL)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - t0 < 25, "rank 0 hung after rank 1 died"
    lines = [line.split("aelab: ", 1)[1] for line in err.splitlines() if "aelab: " in line]
    assert len(lines) == 1, err[-3000:]  # rank 1 died silently; rank 0 says what happened
    assert re.fullmatch(
        r"(rank 0 lost another rank|terminated \(SIGTERM\)) while training ae2d \(epoch \d+\)(: it stopped or died, "
        rf"see its own output)?; checkpoint {re.escape(str(ckpt))} keeps \d+ finished epoch\(s\); continue with --resume",
        lines[0],
    ), lines[0]
    assert not aelab_frames(err), f"a traceback from aelab: {err[-3000:]}"
    assert "while training ae2d" in (out / "FAILED").read_text()
    from aelab.checkpoint import load_checkpoint

    done = load_checkpoint(ckpt)["epoch"]
    resumed = subprocess.run(
        _torchrun_mnist(data, out, "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {done + 1}/12" in resumed.stdout
    assert load_checkpoint(ckpt)["epoch"] == 12
