"""Faults a real run meets, turned into one clear outcome each: SIGTERM, and writes that fail.

SIGTERM is what ``timeout``, SLURM, Kubernetes, systemd and torchrun send before they kill a process.
Python's default ends the process on the spot, silently. :func:`install_sigterm_handler` (called by
the CLI) makes it raise :class:`~aelab.errors.Terminated` in the main thread instead, so a run stops
the way Ctrl-C stops it: the checkpoint of the last finished epoch is kept, the ``FAILED`` note is
written, one line says what stopped, and the exit code is 143.

Under torchrun a rank must not stop alone: the others would wait in their next collective for it. So
while :func:`deferred_termination` is active (``fit`` uses it around its epochs under DDP) the handler
only records the signal, and ``fit`` stops every rank at the same step once any rank has seen one
(the flag travels in the all-reduce that already checks the loss for NaNs).

:func:`write_failure` turns the ``OSError`` of a failed write into :class:`~aelab.errors.WriteFailed`,
whose message names the file and says why in words (disk full, quota, size limit, read-only, gone).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from aelab.errors import Terminated, WriteFailed

_deferring = False
_pending: int | None = None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _deferring:
        _pending = signum
        return
    raise_terminated(signum)


def raise_terminated(signum: int = signal.SIGTERM) -> None:
    """Raise :class:`Terminated`; a second SIGTERM from now on ends the process at once (the default)."""
    global _pending
    _pending = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated(signum)


def install_sigterm_handler() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns a function restoring the old handler.

    A no-op outside the main thread (Python delivers signals to the main thread only).
    """
    global _pending, _deferring
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    _pending, _deferring = None, False
    signal.signal(signal.SIGTERM, _on_sigterm)

    def restore() -> None:
        global _pending, _deferring
        _pending, _deferring = None, False
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return restore


@contextmanager
def deferred_termination(enabled: bool = True) -> Iterator[None]:
    """Inside, a SIGTERM is only recorded (see :func:`termination_pending`); the caller decides when to stop."""
    global _deferring
    if not enabled:
        yield
        return
    before = _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = before


def termination_pending() -> bool:
    """Whether a SIGTERM arrived while termination was deferred and nobody has acted on it yet."""
    return _pending is not None


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file-size limit, ulimit -f, or the file system's limit was reached)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error on the device",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "a folder is in the way",
}


def describe_os_error(e: OSError, path: os.PathLike | str) -> str:
    """The reason of a failed write in words, ending with the errno name so it can be looked up."""
    code = e.errno
    if code == errno.ENOENT:
        text = f"the folder {os.path.dirname(os.fspath(path)) or '.'} no longer exists"
    elif code in _REASONS:
        text = _REASONS[code]
    else:
        text = (e.strerror or str(e) or type(e).__name__).rstrip(".")
    name = errno.errorcode.get(code, "") if code is not None else ""
    return f"{text} ({name})" if name else text


def write_failure(e: OSError, path: os.PathLike | str, existed: bool | None = None) -> WriteFailed:
    """The :class:`WriteFailed` for ``e``; ``existed`` says whether an older version of the file is still there."""
    if existed is None:
        existed = os.path.exists(path)
    kept = "its previous version is kept" if existed else ""
    return WriteFailed(os.fspath(path), describe_os_error(e, path), kept)
