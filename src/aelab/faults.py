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
_stopping = False  # the run is already ending for a known reason: a later SIGTERM is only recorded
_pending: int | None = None


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Record the signal, then raise (unless deferred).

    The record stays: Python runs a handler between any two bytecodes, also inside a ``__del__`` or a
    weakref callback, where an exception is printed and dropped. ``fit`` checks the record at every
    step (:func:`stop_if_terminated`), so a SIGTERM whose exception was lost still stops the run.
    """
    global _pending
    _pending = signum
    if not (_deferring or _stopping):
        raise Terminated(signum)


def stopping() -> None:
    """The run is ending (an error or a stop is on its way to the CLI): from now on a SIGTERM is only recorded.

    Under torchrun a rank that stops makes the launcher SIGTERM the others, which are often stopping
    already for the same cause (a lost peer, a NaN seen by every rank). The signal must not replace
    the line that says why with a vaguer one, nor interrupt the ``FAILED`` note being written.
    """
    global _stopping
    _stopping = True


def raise_terminated(signum: int = signal.SIGTERM) -> None:
    """Raise :class:`Terminated` (the record stays: the run is ending)."""
    raise Terminated(signum)


def stop_if_terminated() -> None:
    """Raise :class:`Terminated` if a SIGTERM arrived and nobody acted on it (not while deferred)."""
    if _pending is not None and not _deferring:
        raise Terminated(_pending)


def install_sigterm_handler() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns a function restoring the old handler.

    A no-op outside the main thread (Python delivers signals to the main thread only).
    """
    global _pending, _deferring, _stopping
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    _pending, _deferring, _stopping = None, False, False
    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        global _pending, _deferring, _stopping
        _pending, _deferring, _stopping = None, False, False
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


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them as if they had arrived just after.

    For the few milliseconds of a file write (:func:`aelab.checkpoint.atomic_write`): a signal between
    creating the temporary file and renaming it would otherwise leave the temporary behind. A no-op
    outside the main thread, where no signal handler runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in dict.fromkeys(held):
            signal.raise_signal(sig)  # the restored handler acts on it now: KeyboardInterrupt, Terminated, ...


def termination_pending() -> bool:
    """Whether a SIGTERM has arrived (since the handler was installed)."""
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
