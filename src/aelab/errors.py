"""The exception types for what stops a run on purpose: a user's mistake, a failed write, a signal.

The CLI prints a :class:`UserError` as a single line and exits with code 2; :class:`TrainingInterrupted`
and :class:`Terminated` end with 130 (Ctrl-C) or 143 (SIGTERM), the codes a shell gives a process that
such a signal killed. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal

INTERRUPTED_EXIT = 128 + signal.SIGINT  # 130
TERMINATED_EXIT = 128 + signal.SIGTERM  # 143


class UserError(Exception):
    """A problem with the user's input, reported as one clear line."""


class WriteFailed(UserError):
    """A file could not be written: full disk, quota, file-size limit, read-only or vanished folder.

    A user error because the cure is the user's (free space, another ``--out``), and because the old
    file, if any, is intact: every write is atomic, so nothing half-written is left to clean up.
    """

    def __init__(self, path: object, reason: str, kept: str = "") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"could not write {path}: {reason}" + (f"; {kept}" if kept else ""))


class DownloadFailed(UserError):
    """No mirror delivered a file; ``failures`` holds one ``(mirror, reason)`` per mirror tried, in order."""

    def __init__(self, name: str, failures: list[tuple[str, str]]) -> None:
        self.name = name
        self.failures = failures
        super().__init__(f"could not download {name}: {self.tried()}")

    def tried(self) -> str:
        """``tried a.org: host not found; b.org: HTTP 404 Not Found``: every mirror and why it failed.

        Mirrors that failed for the same reason share it: ``tried a.org, b.org: host not found``.
        """
        if not self.failures:
            return "no mirror to try"
        reasons = {why for _, why in self.failures}
        if len(reasons) == 1:
            return "tried " + ", ".join(where for where, _ in self.failures) + f": {reasons.pop()}"
        return "tried " + "; ".join(f"{where}: {why}" for where, why in self.failures)


class Terminated(KeyboardInterrupt):
    """SIGTERM (from ``timeout``, SLURM, Kubernetes, systemd or torchrun), raised in the main thread.

    A KeyboardInterrupt so that every place that cleans up after Ctrl-C cleans up after SIGTERM too.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM during training, raised after the last checkpoint is safely on disk.

    ``exit_code`` is what the CLI returns: 130 after Ctrl-C, 143 after SIGTERM.
    """

    def __init__(self, message: str, exit_code: int = INTERRUPTED_EXIT) -> None:
        super().__init__(message)
        self.exit_code = exit_code
