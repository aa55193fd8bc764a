"""Faults a real run meets: writes that fail, file modes, two runs on one folder, a lock left by a dead run.

Every test provokes its fault for real in a real child process: a file-size limit (``RLIMIT_FSIZE``,
so writes fail with EFBIG), a small tmpfs that the test fills up or remounts read-only while the run
trains (skipped where the test may not mount), a run folder deleted under a running job, a second
``aelab`` on a folder another one is training in, and a lock holder killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aelab.checkpoint import atomic_write, atomic_write_many, load_checkpoint
from aelab.errors import UserError
from aelab.lock import LOCK_NAME, RunLock

from conftest import write_mnist_folder

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
# 512 images at batch 8: 64 steps an epoch, long enough for the test to act between two checkpoints
LONG = ("--parts", "ae", "--hidden", "64", "--epochs", "30", "--batch-size", "8", "--device", "cpu")
# a run that only stops when the test stops it: the busy-folder test runs two more commands meanwhile
UNTIL_STOPPED = ("--parts", "ae", "--hidden", "64", "--epochs", "1000", "--batch-size", "8", "--device", "cpu")
SHORT = ("--parts", "ae", "--hidden", "64", "--epochs", "1", "--batch-size", "64", "--device", "cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist_folder(tmp_path_factory.mktemp("idx") / "mnist", n_train=512, n_test=64)


def _limits(fsize: int | None = None, umask: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn``: a real file-size limit (SIGXFSZ ignored, so a write past it fails with EFBIG)."""

    def apply() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)

    return apply


def _cmd(data: Path, out: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "aelab", "mnist", "--data-dir", str(data), "--out", out, *args]


def _run(cmd: list[str], cwd: Path, fsize: int | None = None, umask: int | None = None) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**ENV, "AELAB_DATA": str(cwd / "cache")}
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, preexec_fn=_limits(fsize, umask)
    )


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**ENV, "AELAB_DATA": str(cwd / "cache")}
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limits()
    )


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    """Poll ``condition`` until true; fail with the child's stderr if it exits or time runs out first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is not None or not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"{what} did not happen (exit {proc.returncode}):\n{err[-2000:]}")
        time.sleep(0.005)


def _aelab_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("aelab")]


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- a file-size limit (RLIMIT_FSIZE)


def test_checkpoint_past_the_file_size_limit_is_one_line_and_exit_2(data: Path, tmp_path: Path) -> None:
    r = _run(_cmd(data, "run", *SHORT), tmp_path, fsize=64 * 1024)  # the checkpoint is ~1.2 MB, the rest < 64 KB
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert _aelab_lines(r.stderr) == [
        "aelab: error: could not write run/checkpoints/ae2d.pt: file too large (the file-size limit, ulimit -f, or "
        "the file system's limit was reached) (EFBIG); no checkpoint of this model was written yet"
    ], r.stderr
    run = tmp_path / "run"
    assert not (run / "checkpoints/ae2d.pt").exists()
    assert "could not write run/checkpoints/ae2d.pt" in (run / "FAILED").read_text()
    assert not (run / "report.md").exists() and not (run / "metrics.json").exists()
    assert _temp_files(tmp_path) == [], "a temporary file was left behind"
    assert not (run / LOCK_NAME).exists()


@pytest.mark.slow
def test_figure_or_report_past_the_limit_keeps_every_earlier_output(data: Path, tmp_path: Path) -> None:
    first = _run(_cmd(data, "run", *SHORT), tmp_path)
    assert first.returncode == 0, first.stderr
    run = tmp_path / "run"
    before = _snapshot(run)
    # --resume of a finished run trains nothing and writes the small files, then the figures (> 16 KB each)
    r = _run(_cmd(data, "run", *SHORT, "--resume"), tmp_path, fsize=16 * 1024)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = _aelab_lines(r.stderr)
    m = re.fullmatch(
        r"aelab: error: could not write run/(\S+): file too large .* \(EFBIG\); its previous version is kept", line
    )
    assert m, line
    assert m.group(1) in before and (run / m.group(1)).read_bytes() == before[m.group(1)]
    after = _snapshot(run)
    for name in ("checkpoints/ae2d.pt", "report.md", "metrics.json", *[n for n in before if n.startswith("figures/")]):
        assert after[name] == before[name], f"{name} changed"
    assert "could not write" in (run / "FAILED").read_text()
    assert _temp_files(tmp_path) == []


def _child(code: str, cwd: Path, fsize: int) -> subprocess.CompletedProcess:
    script = cwd / "child.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**ENV, "AELAB_DATA": str(cwd / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limits(fsize),
    )


def test_metrics_and_report_appear_together_or_not_at_all(tmp_path: Path) -> None:
    """``Report.write``'s pair: past the limit neither file changes, and no temporary file is left."""
    (tmp_path / "metrics.json").write_text('{"old": 1}\n')
    (tmp_path / "report.md").write_text("# old\n")
    r = _child(
        """
        from pathlib import Path
        from aelab.checkpoint import atomic_write_many
        from aelab.errors import WriteFailed
        try:
            atomic_write_many({Path("metrics.json"): '{"new": 2}', Path("report.md"): "x" * 100_000}, make_folder=False)
        except WriteFailed as e:
            print(e)
        """,
        tmp_path,
        fsize=32 * 1024,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("could not write report.md: file too large")
    assert r.stdout.strip().endswith("(EFBIG); its previous version is kept")
    assert (tmp_path / "metrics.json").read_text() == '{"old": 1}\n' and (
        tmp_path / "report.md"
    ).read_text() == "# old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "metrics.json", "report.md"]


PHOTO_CHILD = """
    import json, sys
    import numpy as np
    from PIL import Image
    from pathlib import Path
    from aelab.data import photos
    from aelab.errors import WriteFailed
    root = Path("photos")
    for i in range(40):
        rng = np.random.default_rng(i)
        root.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    photos.MEMORY_FALLBACK_FRACTION = float(sys.argv[1])
    try:
        data = photos.load_photos(root, progress=False)
        print(json.dumps({"n": len(data.train) + len(data.test), "cache": data.info["cache"]}))
    except WriteFailed as e:
        print(json.dumps({"error": str(e)}))
"""


@pytest.mark.parametrize("fallback", [0.0, 0.25])
def test_photo_cache_past_the_limit(tmp_path: Path, fallback: float) -> None:
    """40 photos decode to 480 KB; past a 100 KB limit a folder too big for memory stops with one line
    naming the cache file, and one that fits is decoded into memory with one line saying so."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(PHOTO_CHILD))
    r = subprocess.run(
        [sys.executable, str(script), str(fallback)],
        cwd=tmp_path,
        env={**ENV, "AELAB_DATA": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limits(100 * 1024),
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    cache = tmp_path / "cache" / "photos"
    if fallback == 0.0:
        assert re.fullmatch(
            rf"could not write {re.escape(str(cache))}/[0-9a-f]{{32}}\.npy: file too large .*\(EFBIG\); "
            "set AELAB_DATA to a folder with room for the photo cache",
            result["error"],
        ), result
    else:
        assert result == {"n": 40, "cache": "miss"}
        (line,) = _aelab_lines(r.stderr)
        assert "could not write" in line and "file too large" in line and line.endswith("decoding into memory instead")
    assert list(cache.iterdir()) == [], "no partial cache file may stay behind"


# ---------------------------------------------------------------- file modes


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_finished_files_get_the_mode_a_plain_open_gives(data: Path, tmp_path: Path, umask: int) -> None:
    r = _run(_cmd(data, "run", *SHORT), tmp_path, umask=umask)
    assert r.returncode == 0, r.stderr
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()] + list((tmp_path / "cache").rglob("*.*"))
    names = {p.name for p in files}
    assert {"report.md", "metrics.json", "train_log.csv", "config.toml", "ae2d.pt", "loss_curves.png"} <= names
    modes = {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_atomic_writes_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private.txt", "x")
        os.umask(0o002)
        atomic_write_many({tmp_path / "a.txt": "a", tmp_path / "b.txt": "b"})
    finally:
        os.umask(old)
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ("a.txt", "b.txt")} == {0o664}


# ---------------------------------------------------------------- a small file system that fills up or goes read-only


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 12 MiB tmpfs mounted for the test; skipped where this process may not mount one."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write until the file system is full (ENOSPC); return the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_disk_full_during_training_keeps_the_last_checkpoint_and_resumes(
    data: Path, tmp_path: Path, small_disk: Path
) -> None:
    out = str(small_disk / "run")
    ckpt = small_disk / "run" / "checkpoints" / "ae2d.pt"
    proc = _start(_cmd(data, out, *LONG), tmp_path)
    _wait_for(ckpt.exists, proc, "a first checkpoint")
    filler = _fill(small_disk)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    (line,) = _aelab_lines(err)
    assert re.fullmatch(
        rf"aelab: error: could not write {re.escape(out)}/\S+: no space left on the device \(ENOSPC\).*", line
    )
    state = load_checkpoint(ckpt)  # the last good checkpoint is whole
    done = state["epoch"]
    assert 1 <= done < 30
    if "checkpoints/ae2d.pt" in line:
        assert f"the last good checkpoint keeps {done} finished epoch(s)" in line
    assert _temp_files(small_disk) == [], "a temporary file was left on the full disk"
    assert not (small_disk / "run" / "report.md").exists()

    filler.unlink()
    resumed = _run(_cmd(data, out, *LONG, "--resume"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}/30" in resumed.stdout and f"epoch {done}/30 " not in resumed.stdout
    assert load_checkpoint(ckpt)["epoch"] == 30


@pytest.mark.slow
def test_file_system_turning_read_only_is_one_line(data: Path, tmp_path: Path, small_disk: Path) -> None:
    out = str(small_disk / "run")
    ckpt = small_disk / "run" / "checkpoints" / "ae2d.pt"
    proc = _start(_cmd(data, out, *LONG), tmp_path)
    _wait_for(ckpt.exists, proc, "a first checkpoint")

    def remounted() -> bool:
        return subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0

    _wait_for(remounted, proc, "a read-only remount")  # refused (EBUSY) while a file is open for writing
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    (line,) = _aelab_lines(err)
    assert re.fullmatch(
        rf"aelab: error: could not write {re.escape(out)}/\S+: the file system is read-only \(EROFS\).*", line
    )
    assert load_checkpoint(ckpt)["epoch"] >= 1
    assert _temp_files(small_disk) == []


@pytest.mark.slow
def test_run_folder_deleted_under_a_running_job_is_one_line_and_not_made_again(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(_cmd(data, "run", *LONG), tmp_path)
    _wait_for((run / "checkpoints" / "ae2d.pt").exists, proc, "a first checkpoint")

    def removed() -> bool:
        shutil.rmtree(run, ignore_errors=True)  # retried: the job may create a temp file while we delete
        return not run.exists()

    _wait_for(removed, proc, "deleting the run folder")
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    (line,) = _aelab_lines(err)
    assert re.fullmatch(
        r"aelab: error: could not write run/\S+: the folder run(/checkpoints)? no longer exists \(ENOENT\).*", line
    )
    assert not run.exists(), "a deleted run folder must not be made again"


# ---------------------------------------------------------------- two runs on one folder; a lock left by a dead run


@pytest.mark.slow
def test_second_run_on_a_busy_folder_is_refused_with_the_holder(data: Path, tmp_path: Path) -> None:
    first = _start(_cmd(data, "run", *UNTIL_STOPPED), tmp_path)
    _wait_for((tmp_path / "run" / "checkpoints" / "ae2d.pt").exists, first, "a first checkpoint")
    before = load_checkpoint(tmp_path / "run" / "checkpoints" / "ae2d.pt")["epoch"]
    t0 = time.monotonic()
    second = _run(_cmd(data, "run", *UNTIL_STOPPED, "--resume"), tmp_path)
    assert second.returncode == 2, second.stderr
    assert _aelab_lines(second.stderr) == [
        f"aelab: error: run folder run is in use by another aelab run (pid {first.pid} on {socket.gethostname()}, "
        f"since {_since(tmp_path / 'run' / LOCK_NAME)}); wait for it to finish or stop it, or choose another --out "
        f"(lock: run/{LOCK_NAME})"
    ], second.stderr
    assert "epoch" not in second.stdout, "the second run must not train"
    assert time.monotonic() - t0 < 60
    overwrite = _run(_cmd(data, "run", *UNTIL_STOPPED, "--overwrite"), tmp_path)  # nor delete the first run's files
    assert overwrite.returncode == 2 and "is in use by another aelab run" in overwrite.stderr
    assert (tmp_path / "run" / "checkpoints" / "ae2d.pt").exists()
    assert first.poll() is None, "the first run must go on"

    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "ae2d.pt")["epoch"] >= before
    assert not (tmp_path / "run" / LOCK_NAME).exists(), "a run that stopped cleanly releases its folder"


def _since(lock: Path) -> str:
    return dict(part.split("=", 1) for part in lock.read_text().split())["since"]


HOLDER = """
    import sys, time
    from aelab.lock import RunLock
    lock = RunLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    time.sleep(600)
"""


def _dead_holder(folder: Path, tmp_path: Path) -> int:
    """A real process that takes the folder's lock and is then killed with SIGKILL; returns its pid."""
    folder.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER))
    holder = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"in use by another aelab run \\(pid {holder.pid} on "):
        RunLock(folder).acquire()  # while it lives, the lock is its
    holder.kill()
    holder.wait(timeout=30)
    assert (folder / LOCK_NAME).exists(), "SIGKILL leaves the lock file behind"
    return holder.pid


@pytest.mark.slow
def test_lock_left_by_a_killed_run_is_taken_over(data: Path, tmp_path: Path) -> None:
    pid = _dead_holder(tmp_path / "run", tmp_path)
    r = _run(_cmd(data, "run", *SHORT), tmp_path)
    assert r.returncode == 0, r.stderr
    assert _aelab_lines(r.stderr) == [
        f"aelab: taking over the lock of a run that ended without releasing it (pid {pid} on {socket.gethostname()}, "
        f"since {r.stderr.split('since ')[1].split(')')[0]})"
    ], r.stderr
    assert (tmp_path / "run" / "report.md").exists() and not (tmp_path / "run" / LOCK_NAME).exists()


def test_without_flock_the_pid_in_the_lock_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """File systems without flock (ENOLCK): a live holder on this host is respected, a dead one taken over."""
    import errno
    import fcntl

    pid = _dead_holder(tmp_path / "run", tmp_path)

    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    lock = RunLock(tmp_path / "run")
    lock.acquire()  # the dead pid's lock is stale
    assert f"pid={os.getpid()} " in (tmp_path / "run" / LOCK_NAME).read_text()
    with pytest.raises(UserError, match=f"pid {os.getpid()} on {re.escape(socket.gethostname())}"):
        RunLock(tmp_path / "run").acquire()  # a live holder (this process) is respected
    lock.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    assert pid != os.getpid()
