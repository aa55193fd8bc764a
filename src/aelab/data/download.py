"""Downloads that are safe to interrupt and safe to trust.

A file is fetched into ``<name>.part`` (resumed with an HTTP Range request when the part exists),
checked against its SHA-256, and only then renamed to its final name, so a final name always means a
complete, verified file. Archives are extracted with a filter that refuses anything that could land
outside the target folder.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from aelab.errors import DownloadFailed, UserError
from aelab.faults import write_failure

CHUNK = 1 << 16


def cache_dir() -> Path:
    """Where downloaded and decoded data lives: ``$AELAB_DATA`` or ``~/.cache/aelab``."""
    env = os.environ.get("AELAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aelab"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, part: Path, timeout: float, desc: str) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "aelab"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already complete
            return
        raise
    with response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=desc, leave=False) as bar,
        ):
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
            if total is not None and out.tell() < total:  # connection cut: keep the part for a resume
                raise ConnectionError(f"connection closed after {out.tell():,} of {total:,} bytes")


def download(urls: Sequence[str], dest: Path, sha256: str | None, timeout: float = 30.0) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that delivers a file with the right checksum.

    Raises :class:`~aelab.errors.DownloadFailed` (a UserError) naming every mirror tried and why each
    failed, when none works; a failed write on our side (full disk...) is a WriteFailed at once.
    """
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[tuple[str, str]] = []
    for url in urls:
        try:
            _fetch(url, part, timeout, dest.name)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:  # our disk, not the mirror: no use trying others
                raise write_failure(e, part) from None
            failures.append((_mirror(url, dest.name), why_failed(e, timeout)))
            continue
        if sha256 is not None and (got := sha256_of(part)) != sha256:
            part.unlink(missing_ok=True)
            failures.append(
                (_mirror(url, dest.name), f"checksum mismatch: got {got[:12]}..., expected {sha256[:12]}...")
            )
            continue
        os.replace(part, dest)
        return dest
    raise DownloadFailed(dest.name, failures)


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _mirror(url: str, name: str) -> str:
    """A mirror as a person names it: the URL without its scheme and without the file name every mirror shares
    (``ossci-datasets.s3.amazonaws.com/mnist``); a URL for another file name keeps it."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.removesuffix("/" + name) if parts.path.endswith("/" + name) else parts.path
    return (parts.netloc + path).rstrip("/") or url


def why_failed(e: BaseException, timeout: float) -> str:
    """A failed fetch in a few words: what a user can act on (no network, a refused port, a 404...)."""
    reason = e.reason if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError) else e
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}".strip()
    if isinstance(reason, socket.gaierror):
        return "host not found (no network or DNS?)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = " ".join(str(reason).split())
    return text or type(reason).__name__


def _is_within(root: Path, target: Path) -> bool:
    root, target = root.resolve(), target.resolve()
    return target == root or root in target.parents


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract a tar archive into ``dest``, refusing absolute paths, ``..``, escaping links and devices.

    Extraction happens into a temporary sibling folder that is renamed into place only when every
    member was accepted, so a hostile archive leaves nothing behind.
    """
    archive, dest = Path(archive), Path(dest)
    tmp = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = []
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                name = m.name
                if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in Path(name).parts:
                    raise UserError(f"{archive}: refusing unsafe path {name!r}")
                if m.isdev() or m.isfifo():
                    raise UserError(f"{archive}: refusing device or fifo {name!r}")
                if m.issym() or m.islnk():
                    link_target = (tmp / name).parent / m.linkname if m.issym() else tmp / m.linkname
                    if Path(m.linkname).is_absolute() or not _is_within(tmp, link_target):
                        raise UserError(f"{archive}: refusing link {name!r} pointing outside ({m.linkname!r})")
                names.append(name)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                tar.extractall(tmp, members=members)
    except tarfile.TarError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, getattr(tarfile, "FilterError", ())):  # e.g. a chain of links that leaves the target
            raise UserError(f"{archive}: refusing unsafe member ({e})") from None
        raise UserError(f"{archive}: not a readable tar archive ({e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dest.mkdir(parents=True, exist_ok=True)
    for child in tmp.iterdir():
        target = dest / child.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(child, target)
    tmp.rmdir()
    return names
