"""A run's folder and its report: report.md with figures, metrics.json, written only when complete.

A study adds sections, figures, tables and metrics as it goes; nothing reaches ``report.md`` or
``metrics.json`` until :meth:`Report.write`, which renames complete files into place. A failed
run leaves a ``FAILED`` note with the reason instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import platform
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from aelab.checkpoint import atomic_write, atomic_write_many
from aelab.errors import UserError
from aelab.runtime import get_dist

COMMAND: list[str] | None = None  # the argv the CLI was called with (set by aelab.cli.main; else sys.argv)


class RunDir:
    """The output folder: ``figures/``, ``checkpoints/``, ``train_log.csv``, ``report.md``, ``metrics.json``.

    An existing non-empty folder is used only with ``resume`` (continue from its checkpoints) or
    ``overwrite`` (start afresh); otherwise it is a user error, so no result is lost silently.

    While a run uses the folder it holds its lock (:class:`aelab.lock.RunLock`, taken by rank 0 alone
    under torchrun, before anything is deleted or written), so a second run on the same folder is
    refused instead of overwriting the first one's checkpoints; :meth:`release` (or the end of the
    process) frees it.
    """

    def __init__(self, path: str | Path, resume: bool = False, overwrite: bool = False) -> None:
        from aelab.lock import LOCK_NAME, RunLock
        from aelab.runtime import broadcast_from_main

        self.path = Path(path)
        self.lock = RunLock(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"output path {self.path} exists and is not a folder")
        # every rank looks before rank 0 creates anything (the lock file does not count as a run)
        used = self.path.is_dir() and any(p.name != LOCK_NAME for p in self.path.iterdir())
        refusal = None
        if get_dist().is_main:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self.lock.acquire()
            except OSError as e:
                from aelab.faults import write_failure

                refusal = str(write_failure(e, self.path))
            except UserError as e:
                refusal = str(e)
        refusal = broadcast_from_main(refusal)  # a barrier that also tells the other ranks why rank 0 stops
        if refusal is not None:
            raise UserError(refusal)
        if used and not (resume or overwrite):
            self.release()
            raise UserError(f"output folder {self.path} already holds a run; pass --resume or --overwrite")
        if used and overwrite and not resume and get_dist().is_main:
            for name in ("figures", "checkpoints"):
                shutil.rmtree(self.path / name, ignore_errors=True)
            for name in ("report.md", "metrics.json", "train_log.csv", "FAILED"):
                (self.path / name).unlink(missing_ok=True)
        self.figures = self.path / "figures"
        self.checkpoints = self.path / "checkpoints"
        if get_dist().is_main:
            self.figures.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            (self.path / "FAILED").unlink(missing_ok=True)
            for stale in [*self.path.glob(".*.tmp"), *self.figures.glob(".*.tmp*"), *self.checkpoints.glob(".*.tmp")]:
                stale.unlink(missing_ok=True)  # left by a run killed mid-write

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / f"{name}.pt"

    def release(self) -> None:
        """Free the folder for the next run (idempotent)."""
        self.lock.release()

    @property
    def log_path(self) -> Path:
        return self.path / "train_log.csv"

    def fail(self, reason: str) -> None:
        """Leave the ``FAILED`` note; best effort, since the reason may be that nothing can be written."""
        if get_dist().is_main and self.path.is_dir():
            with contextlib.suppress(UserError):  # WriteFailed: the run's own error says what could not be written
                atomic_write(
                    self.path / "FAILED",
                    f"This run did not finish.\nReason: {reason}\n"
                    "Checkpoints of finished epochs are kept; rerun with --resume to continue.\n",
                    make_folder=False,
                )


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """``set_path(m, "dae.bottleneck_2.psnr", 21.3)`` creates the nested dicts on the way."""
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def _clean(value: Any) -> Any:
    """JSON-safe numbers: floats rounded to 6 significant digits, NaN/inf as null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _clean(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    return value


def processor_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name as the kernel reports it (``platform.processor()`` is
    often empty on Linux)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats to ``digits`` decimals, whole numbers with thousands separators."""
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def listing(items: Sequence[Any], sep: str = ", ", last: str = " and ") -> str:
    """Items as an English list: ``a``, ``a and b``, ``a, b and c`` (``sep="; "`` for items with commas)."""
    words = [str(i) for i in items]
    if len(words) < 2:
        return "".join(words)
    return sep.join(words[:-1]) + last + words[-1]


class Report:
    """Markdown sections, figures and a metrics tree for one run."""

    def __init__(self, run: RunDir, title: str) -> None:
        self.run = run
        self.lines: list[str] = [f"# {title}", ""]
        self.metrics: dict[str, Any] = {}

    def set_title(self, title: str) -> None:
        """The report's heading, once the study knows what data it was given."""
        self.lines[0] = f"# {title}"

    def section(self, title: str, text: str = "") -> None:
        self.lines += [f"## {title}", ""]
        if text:
            self.lines += [text.strip(), ""]

    def text(self, text: str) -> None:
        self.lines += [text.strip(), ""]

    def figure(self, fig, name: str, caption: str) -> Path:
        """Save a matplotlib figure under figures/ and reference it from the report."""
        import matplotlib.pyplot as plt

        path = self.run.figures / f"{name}.png"
        try:
            if get_dist().is_main:  # rendered in memory, then one atomic write: a failed write is a WriteFailed
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
                atomic_write(path, buf.getvalue(), make_folder=False)
        finally:
            plt.close(fig)
        self.lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}*", ""]
        return path

    def table(self, header: list[str], rows: list[list[Any]], digits: int | Sequence[int] = 2) -> None:
        """A Markdown table; ``digits``: decimals of every float, or one count per column, so each column
        shows the precision its measurement supports (dB to 0.01, SSIM to 0.001, MMACs to 0.1)."""
        per_column = [digits] * len(header) if isinstance(digits, int) else list(digits)
        if len(per_column) != len(header):
            raise ValueError(f"{len(per_column)} digit counts for {len(header)} columns")
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "---|" * len(header))
        for row in rows:
            self.lines.append("| " + " | ".join(fmt(v, d) for v, d in zip(row, per_column)) + " |")
        self.lines.append("")

    def metric(self, dotted: str, value: Any) -> None:
        set_path(self.metrics, dotted, value)

    def provenance(
        self,
        seed: int,
        device: torch.device,
        wall_seconds: dict[str, float] | None = None,
        argv: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """State what produced these numbers: command, seed, versions, the processor or GPU, and the time
        each part took (``wall_seconds``, the run's total under ``total``); ``extra``: more such lines."""
        from aelab import __version__

        argv = (COMMAND or sys.argv) if argv is None else argv
        info: dict[str, Any] = {
            "command": shlex.join(["aelab", *argv[1:]]),
            "seed": seed,
            "aelab": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": f"{device.type} ({processor_name(device)})",
            "threads": torch.get_num_threads(),
            "world_size": get_dist().world_size,
            **(extra or {}),
        }
        self.metrics["run"] = dict(info)
        lines = [f"- **{k}**: `{v}`" for k, v in info.items()]
        if wall_seconds:
            self.metrics["run"]["wall_seconds"] = {k: round(v, 1) for k, v in wall_seconds.items()}
            per_part = ", ".join(f"{k} {_duration(v)}" for k, v in wall_seconds.items() if k != "total")
            lines.append(
                f"- **wall time**: {_duration(wall_seconds['total'])} in all" + (f" ({per_part})" if per_part else "")
            )
        self.section("Run", "\n".join(lines))

    def write(self) -> None:
        if not get_dist().is_main:
            return
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join([*self.lines, f"---\n*Written by aelab on {stamp}.*", ""])
        atomic_write_many(
            {
                self.run.path / "metrics.json": json.dumps(_clean(self.metrics), indent=2) + "\n",
                self.run.path / "report.md": body,
            },
            make_folder=False,
        )
