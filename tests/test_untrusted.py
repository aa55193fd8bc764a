"""Untrusted files stay harmless: hostile archives, bad downloads and malicious checkpoints.

Each attack is built here, byte for byte, and the test checks both that aelab refuses it with a
UserError and that nothing was written where it should not be (no extracted files, no file under a
download's final name, no side effect of a pickle).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from aelab import MLPAutoencoder, UserError
from aelab.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from aelab.data.download import download, safe_extract

from httpserver import dead_url, serve

# ---------------------------------------------------------------- hostile tar archives


def _add_file(tar: tarfile.TarFile, name: str, data: bytes = b"payload") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def _make_tar(path: Path, build) -> Path:
    """A tar whose first member is a harmless file, so 'nothing extracted' is a real check."""
    with tarfile.open(path, "w") as tar:
        _add_file(tar, "Images/good.txt", b"fine")
        build(tar)
    return path


def _device(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("Images/null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def _fifo(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("Images/pipe")
    info.type = tarfile.FIFOTYPE
    tar.addfile(info)


def _chained_symlinks(tar: tarfile.TarFile) -> None:
    # Each link on its own stays inside; followed one after the other they leave the target.
    d = tarfile.TarInfo("a")
    d.type = tarfile.DIRTYPE
    tar.addfile(d)
    _add_link(tar, "a/l", "..", tarfile.SYMTYPE)
    _add_link(tar, "a/l/m", "..", tarfile.SYMTYPE)
    _add_file(tar, "a/l/m/escaped.txt")


HOSTILE = {
    "absolute path": lambda tar: _add_file(tar, "/tmp/aelab_escaped.txt"),
    "dot-dot path": lambda tar: _add_file(tar, "Images/../../escaped.txt"),
    "symlink outside": lambda tar: _add_link(tar, "Images/link", "../../outside", tarfile.SYMTYPE),
    "absolute symlink": lambda tar: _add_link(tar, "Images/link", "/etc/passwd", tarfile.SYMTYPE),
    "hardlink outside": lambda tar: _add_link(tar, "Images/hard", "../outside/secret", tarfile.LNKTYPE),
    "absolute hardlink": lambda tar: _add_link(tar, "Images/hard", "/etc/passwd", tarfile.LNKTYPE),
    "device file": _device,
    "fifo": _fifo,
    "chained symlinks": _chained_symlinks,
}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_hostile_tar_is_refused_and_nothing_is_extracted(tmp_path: Path, attack: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("do not touch")
    archive = _make_tar(tmp_path / "evil.tar", HOSTILE[attack])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match="evil.tar: refusing"):
        safe_extract(archive, work / "dogs")
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"extraction left files behind: {set(after) - set(before)}"
    assert (outside / "secret").read_text() == "do not touch"
    assert not Path("/tmp/aelab_escaped.txt").exists()


def test_benign_tar_extracts_with_internal_links(tmp_path: Path) -> None:
    def build(tar: tarfile.TarFile) -> None:
        _add_file(tar, "Images/breed/dog.jpg", b"jpeg bytes")
        _add_link(tar, "Images/alias.jpg", "breed/dog.jpg", tarfile.SYMTYPE)

    archive = _make_tar(tmp_path / "ok.tar", build)
    names = safe_extract(archive, tmp_path / "out")
    assert set(names) == {"Images/good.txt", "Images/breed/dog.jpg", "Images/alias.jpg"}
    assert (tmp_path / "out/Images/good.txt").read_bytes() == b"fine"
    assert (tmp_path / "out/Images/alias.jpg").read_bytes() == b"jpeg bytes"
    assert not (tmp_path / "out.extracting").exists()


def test_not_a_tar_is_a_user_error(tmp_path: Path) -> None:
    archive = tmp_path / "junk.tar"
    archive.write_bytes(os.urandom(3000))
    with pytest.raises(UserError, match="junk.tar"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.tar"]


# ---------------------------------------------------------------- downloads


@contextmanager
def _hangs_up(body: bytes, cut_at: int) -> Iterator[tuple[str, list]]:
    """A server that announces all of ``body`` but hangs up after ``cut_at`` bytes (Range honoured).

    httpserver.serve always sends whole bodies; this is the dropped connection it cannot play.
    """
    log: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            rng = self.headers.get("Range")
            log.append(rng)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start : max(start, cut_at)])
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    finally:
        httpd.shutdown()
        httpd.server_close()


BODY = bytes(range(256)) * 800  # 200 kB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# test_download.py covers the plain cases (verify and rename, mismatch, next mirror, Range resume).


def test_mismatch_after_a_resumed_part_leaves_nothing(tmp_path: Path) -> None:
    """The part on disk plus the rest from the server fails the check: no final file, no stale part."""
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"X" * 1000)  # not the file's real first kB
    with serve({"/file.bin": BODY}) as (url, log), pytest.raises(UserError, match="checksum mismatch"):
        download([url + "/file.bin"], dest, _sha(BODY), timeout=5)
    assert log == [("/file.bin", "bytes=1000-")]
    assert list(tmp_path.iterdir()) == []
    with serve({"/file.bin": BODY}) as (url, _):  # the next try starts clean and succeeds
        download([url + "/file.bin"], dest, _sha(BODY), timeout=5)
    assert dest.read_bytes() == BODY


def test_stale_final_file_with_wrong_checksum_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"an old, corrupt copy")
    with serve({"/file.bin": BODY}) as (url, _):
        download([url + "/file.bin"], dest, _sha(BODY), timeout=5)
    assert dest.read_bytes() == BODY


def test_every_mirror_failing_is_one_user_error(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"/file.bin": b"tampered"}) as (url, _), pytest.raises(UserError) as e:
        download([url + "/missing.bin", dead_url() + "/file.bin", url + "/file.bin"], dest, _sha(BODY), timeout=5)
    message = str(e.value)
    assert "could not download file.bin" in message and "missing.bin" in message and "checksum mismatch" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sha_known", [True, False])
def test_cut_connection_keeps_only_the_part_and_resumes(tmp_path: Path, sha_known: bool) -> None:
    """A download cut short is never renamed into place, even without a checksum; a rerun resumes it."""
    dest = tmp_path / "file.bin"
    sha = _sha(BODY) if sha_known else None
    with _hangs_up(BODY, cut_at=50_000) as (url, _), pytest.raises(UserError, match="50,000 of 204,800 bytes"):
        download([url + "/file.bin"], dest, sha, timeout=5)
    assert not dest.exists()
    part = tmp_path / "file.bin.part"
    assert part.read_bytes() == BODY[:50_000]
    with serve({"/file.bin": BODY}) as (url, log):
        download([url + "/file.bin"], dest, sha, timeout=5)
    assert log == [("/file.bin", "bytes=50000-")]
    assert dest.read_bytes() == BODY
    assert not part.exists()


# ---------------------------------------------------------------- checkpoints


class _Evil:
    """Unpickling this creates ``marker``: the side effect a malicious checkpoint would have."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("fmt", ["torch.save", "raw pickle", "inside a checkpoint dict"])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    if fmt == "torch.save":
        torch.save(_Evil(marker), path)
    elif fmt == "raw pickle":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    else:
        torch.save({"format": 1, "model_class": "MLPAutoencoder", "model": {}, "extra": _Evil(marker)}, path)
    # The attack is real: a plain pickle load would run it.
    pickle.loads(pickle.dumps(_Evil(marker)))
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UserError, match="corrupt or not an aelab checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_round_trip_and_foreign_files(tmp_path: Path) -> None:
    model = MLPAutoencoder(hidden=(8,), bottleneck=2)
    path = tmp_path / "ae.pt"
    save_checkpoint(path, {"format": 1, "model_class": "MLPAutoencoder", "model": model.state_dict(), "epoch": 3})
    state = load_checkpoint(path)
    other = MLPAutoencoder(hidden=(8,), bottleneck=2)
    load_model_state(other, state, path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k])

    with pytest.raises(UserError, match="does not fit"):
        load_model_state(MLPAutoencoder(hidden=(16,), bottleneck=2), state, path)
    from aelab import MnistConvAutoencoder

    with pytest.raises(UserError, match="holds a MLPAutoencoder, not a MnistConvAutoencoder"):
        load_model_state(MnistConvAutoencoder((1, 28, 28), 2), state, path)

    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, plain)
    with pytest.raises(UserError, match="not an aelab checkpoint"):
        load_checkpoint(plain)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(truncated)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(empty)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_no_byte_string_crashes_the_checkpoint_loader(tmp_path: Path) -> None:
    """Random files and randomly damaged checkpoints: a UserError or a loaded dict, never another exception."""
    import random

    model = MLPAutoencoder(hidden=(8,), bottleneck=2)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"format": 1, "model_class": "MLPAutoencoder", "model": model.state_dict(), "epoch": 1})
    original = good.read_bytes()
    rng = random.Random(0)
    path = tmp_path / "fuzz.pt"
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(300):
        if i % 3 == 0:
            data = rng.randbytes(rng.randint(0, 2000))
        elif i % 3 == 1:  # a pickle stream with random opcodes after the protocol header
            data = b"\x80\x02" + rng.randbytes(rng.randint(1, 300))
        else:
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        path.write_bytes(data)
        try:
            state = load_checkpoint(path)
        except UserError:
            outcomes["refused"] += 1
        else:
            assert isinstance(state, dict) and "model" in state
            outcomes["loaded"] += 1
    assert outcomes["refused"] >= 200, outcomes
