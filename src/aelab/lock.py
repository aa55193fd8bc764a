"""One run at a time per run folder: an exclusive lock file that names its holder.

Two ``aelab ... --resume --out X`` started at once would both train and overwrite each other's
checkpoints. :class:`RunLock` holds ``X/.aelab.lock`` with ``flock`` for the life of the run and
writes the holder's pid, host and start time into it, so the second run is refused with one line
that says who holds the folder.

The kernel drops an ``flock`` when its holder dies, SIGKILL included, so a lock left by a dead run is
never in the way: the next run takes it over (and says whose it was). Where the file system has no
``flock`` (some network mounts answer ENOLCK), the pid in the file decides instead: a holder on this
host that no longer runs is stale and taken over; a live one, or one on another host, is respected.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from aelab.errors import UserError, WriteFailed
from aelab.faults import describe_os_error

LOCK_NAME = ".aelab.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _parse(text: str) -> tuple[int | None, str, str]:
    """``(pid, host, since)`` from a lock file's ``pid=... host=... since=...`` line; missing parts empty."""
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    try:
        pid = int(fields.get("pid", ""))
    except ValueError:
        pid = None
    return pid, fields.get("host", ""), fields.get("since", "")


class RunLock:
    """The exclusive lock on one run folder; :meth:`acquire` it, :meth:`release` it (or exit)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`UserError` naming the run that holds it.

        A lock left by a run that died is taken over with a note on stderr naming that run.
        """
        if self._fd is not None:
            return
        for _ in range(10):  # retried only when a holder released (and removed) the file under us
            try:
                # read-only: flock needs no more, and a file open for writing would keep the file system
                # from being remounted read-only (what a failing disk does) for the whole run
                fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as e:
                raise WriteFailed(self.path, describe_os_error(e, self.path)) from None
            try:
                previous = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                self._lock_or_refuse(fd, previous)
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    raise FileNotFoundError  # the holder removed this file after we opened it: start again
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            self._note_stale(previous)
            self._write_holder()
            return
        raise UserError(f"could not lock {self.path}: other runs keep taking and releasing it")

    def _lock_or_refuse(self, fd: int, previous: str) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            pid, host, _ = _parse(previous)  # no flock here: the pid in the file decides
            if pid is None or (host == socket.gethostname() and pid != os.getpid() and not _pid_alive(pid)):
                return
        # read again: the holder writes its line just after it takes the lock
        raise UserError(self._refusal(os.pread(fd, 4096, 0).decode("utf-8", "replace") or previous))

    def _refusal(self, text: str) -> str:
        pid, host, since = _parse(text)
        who = f"pid {pid} on {host or 'an unknown host'}" if pid is not None else "a run that has not said who it is"
        return (
            f"run folder {self.folder} is in use by another aelab run ({who}"
            + (f", since {since}" if since else "")
            + f"); wait for it to finish or stop it, or choose another --out (lock: {self.path})"
        )

    def _note_stale(self, previous: str) -> None:
        pid, host, since = _parse(previous)
        if pid is not None and pid != os.getpid():
            print(
                f"aelab: taking over the lock of a run that ended without releasing it (pid {pid} on {host}"
                + (f", since {since}" if since else "")
                + ")",
                file=sys.stderr,
            )

    def _write_holder(self) -> None:
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"pid={os.getpid()} host={socket.gethostname()} since={since}\n".encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass  # the flock is what counts; a full disk only costs the holder's name in a refusal

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent). Removing first, then unlocking, means a
        run that opened the old file sees it vanish and starts again (see :meth:`acquire`)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)

    def close_inherited(self) -> None:
        """In a forked worker: close this process's copy of the lock's descriptor, leaving the lock alone.

        An ``flock`` lasts while any copy of its descriptor is open, so a worker that kept its copy would
        keep the folder locked after the run itself died.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.release()
