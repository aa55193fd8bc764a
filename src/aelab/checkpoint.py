"""Atomic files and checkpoints that load safely.

Everything a run writes goes through :func:`atomic_write`: a temporary file in the same folder,
flushed and fsynced, then renamed over the final name. A reader therefore sees the old file or the
new one, never half of one. Checkpoints are plain tensors and containers, so they load with
``torch.load(weights_only=True)`` and an untrusted file cannot execute code.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from aelab.errors import UserError
from aelab.faults import uninterrupted, write_failure


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0o666 less the process's umask.

    ``mkstemp`` creates its file 0600 and a rename keeps the mode, so without this every result would
    be unreadable to a group or a web server. The umask is read from /proc (Linux), because setting
    it to read it back would race with other threads creating files.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _stage(path: Path, payload: bytes, mode: int, make_folder: bool) -> str:
    """Write ``payload`` to a new temporary file next to ``path`` (fsynced, final mode); return its name."""
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: str | os.PathLike, data: bytes | str, make_folder: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old file or the new one, never a part.

    A failed write (full disk, quota, file-size limit, read-only or vanished folder) raises
    :class:`~aelab.errors.WriteFailed` naming the file and the reason; the old file, if any, is
    untouched and no temporary file is left. ``make_folder=False`` for files inside a run folder, so a
    folder deleted (or unmounted) under a running job is an error, not silently made again.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    existed = path.exists()
    with uninterrupted():  # a signal between staging and renaming would leave the temporary file
        try:
            tmp = _stage(path, payload, file_mode(), make_folder)
        except OSError as e:
            raise write_failure(e, path, existed) from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise write_failure(e, path, existed) from None


def atomic_write_many(files: dict[Path, bytes | str], make_folder: bool = True) -> None:
    """Write several files so that they appear together: every temp file first, then the renames.

    A failure while writing leaves every old file as it was (and raises WriteFailed naming the file);
    the renames at the end take microseconds.
    """
    staged: list[tuple[str, Path]] = []
    mode = file_mode()
    current = None
    with uninterrupted():  # a signal between staging and renaming would leave temporary files
        try:
            for path, data in files.items():
                current = path
                payload = data.encode() if isinstance(data, str) else data
                staged.append((_stage(path, payload, mode, make_folder), path))
            for tmp, path in staged:
                current = path
                os.replace(tmp, path)
        except OSError as e:
            assert current is not None
            raise write_failure(e, current) from None
        finally:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], make_folder: bool = True) -> None:
    """Serialise in memory, then one atomic write: a full disk can cost the new checkpoint, never the old one."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue(), make_folder=make_folder)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a corrupt or foreign file is a UserError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # untrusted bytes: the unpickler may fail in any way (IndexError, KeyError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {path} is corrupt or not an aelab checkpoint ({first[:120]})") from None
    if not isinstance(state, dict) or "model" not in state or "model_class" not in state:
        raise UserError(f"checkpoint {path} is not an aelab checkpoint")
    return state


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike) -> None:
    """Load weights, turning a class or shape mismatch into one clear line."""
    expected = type(model).__name__
    if state.get("model_class") != expected:
        raise UserError(f"checkpoint {path} holds a {state.get('model_class')}, not a {expected}")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:  # shapes, names, or not a state dict at all
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"checkpoint {path} does not fit this model ({first[:160]})") from None
