"""What a user sees while models train: one live line per model, or plain lines where nothing is live.

``fit`` reports to a :class:`Progress`; where the report goes is the caller's choice:

- :class:`Bar` (the default): the model's live bar (a widget in Jupyter, through ``tqdm.auto``) and one
  line per finished epoch;
- :class:`Quiet`: nothing (a rank other than the first under torchrun);
- a worker process training beside others sends its reports to the main process
  (``aelab.studies.workers``), whose :class:`Board` keeps one live line per model in training. Workers
  never draw themselves: several processes' bars on one terminal overwrite each other, and their epoch
  lines interleave.

Live lines are drawn where stderr is a terminal or a notebook shows them; elsewhere (a log file, CI)
every finished epoch is one plain line on stdout, as ``[model] epoch 3/8  train ...  test ...  9.1s``.
"""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm.auto import tqdm

from .notebook import in_kernel


class Progress(Protocol):
    """Where ``fit`` reports: a model starts (with epochs already done, when resumed), finishes an epoch, ends."""

    def start(self, name: str, done: int, total: int) -> None: ...

    def epoch(self, name: str, record: dict, total: int) -> None: ...

    def end(self, name: str) -> None: ...


def live() -> bool:
    """Whether live lines can be drawn: stderr is a terminal, or this runs in a Jupyter kernel."""
    if in_kernel():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def epoch_line(name: str, record: dict, total: int) -> str:
    """One finished epoch as a plain line."""
    return (
        f"[{name}] epoch {record['epoch']}/{total}  train {record['train_loss']:.5g}  "
        f"test {record['test_loss']:.5g}  {record['seconds']:.1f}s"
    )


def _postfix(record: dict) -> dict:
    return {"train": f"{record['train_loss']:.4g}", "test": f"{record['test_loss']:.4g}"}


class Quiet:
    """Reports nothing."""

    def start(self, name: str, done: int, total: int) -> None:
        pass

    def epoch(self, name: str, record: dict, total: int) -> None:
        pass

    def end(self, name: str) -> None:
        pass


class Bar:
    """One model at a time: its live bar, and each finished epoch as a line above it."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def start(self, name: str, done: int, total: int) -> None:
        self.end(name)
        self.bar = tqdm(desc=name, unit="epoch", initial=done, total=total, leave=False, disable=not live())

    def epoch(self, name: str, record: dict, total: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(_postfix(record), refresh=False)
            self.bar.update(1)
        tqdm.write(epoch_line(name, record, total))

    def end(self, name: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Board:
    """Several models training at once (in other processes): one live line each, or plain epoch lines.

    Fed by the main process from the workers' reports; a finished model's line gives way to one
    summary line, so the live lines are those of the models still in training.
    """

    def __init__(self) -> None:
        self.live = live()
        self.bars: dict[str, tqdm] = {}
        self.last: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}

    def start(self, name: str, done: int, total: int) -> None:
        self.seconds[name] = 0.0
        if self.live:
            self.bars[name] = tqdm(desc=name, unit="epoch", initial=done, total=total, leave=False)

    def epoch(self, name: str, record: dict, total: int) -> None:
        self.last[name] = record
        self.seconds[name] = self.seconds.get(name, 0.0) + record["seconds"]
        bar = self.bars.get(name)
        if bar is None:
            tqdm.write(epoch_line(name, record, total))
            return
        bar.set_postfix(_postfix(record), refresh=False)
        bar.update(1)

    def end(self, name: str) -> None:
        bar = self.bars.pop(name, None)
        if bar is None:
            return
        bar.close()
        record = self.last.get(name)
        if record is not None:
            tqdm.write(
                f"[{name}] trained: {record['epoch']} epochs, train {record['train_loss']:.5g}  "
                f"test {record['test_loss']:.5g}  {self.seconds[name]:.1f}s"
            )

    def close(self) -> None:
        for name in list(self.bars):
            self.end(name)
