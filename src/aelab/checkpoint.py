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


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_many(files: dict[Path, bytes | str]) -> None:
    """Write several files so that they appear together: every temp file first, then the renames.

    A failure while writing leaves every old file as it was; the renames at the end take microseconds.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


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
