"""Training a study's MLPs side by side in worker processes, one CPU thread each (``--jobs``).

Why: at the MNIST study's batch of 128 a training step is a chain of small matmuls. A second CPU
thread shortens it by a few percent only, while a second *process* training another model on the
other core nearly doubles the work done (benchmarks/RESULTS.md). The study trains up to ten MLPs that do not
depend on each other, so before the parts run, :func:`train_side_by_side` trains the models the parts
will ask for (``Part.models``): first those that must stay in the main process (convolutional models,
models with a start of their own), then the rest in ``--jobs`` forked workers. Each worker writes only its models'
checkpoints; the parts then reload them through ``run.model`` as after ``--resume``, so the report,
``train_log.csv`` and ``checkpoints/models.json`` are written by the main process alone.

Same numbers: a recipe is pooled only when marked ``parallel`` (plain linear layers: the CPU's matmuls
give the same bits at one thread and at two, checked by ``tests/test_workers.py``), and each model
keeps its own seed, so ``--jobs 1`` and ``--jobs 2`` give the same weights. Convolutions' backward
passes sum in an order that depends on the thread count, so conv models stay in the main process.

Faults: a worker's error (a NaN loss, a failed write) stops the others at their next step (they keep
their last finished epoch) and ends the run with the worker's one line. A SIGTERM or Ctrl-C to the
run stops the workers the same way. A worker also stops when the main process dies (Linux's parent
death signal), and it closes its copy of the run folder's lock, so a killed run never leaves the
folder locked.

Progress: a worker draws nothing itself (several processes' bars on one terminal overwrite each other);
it reports every epoch to the main process, whose :class:`aelab.progress.Board` keeps one live line per
model in training, or prints each epoch as a plain line where stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import torch

from aelab import faults
from aelab.errors import INTERRUPTED_EXIT, TERMINATED_EXIT, Terminated, TrainingInterrupted, UserError
from aelab.progress import Board

STOP_WAIT_S = 120.0  # how long a stopped worker may take to finish its checkpoint write and say so


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(run: Any, tasks: int) -> int:
    """How many worker processes ``--jobs`` asks for here: 1 means train everything in this process.

    ``--jobs 0`` (auto) is one per usable core. Workers need a CPU run in one process on Linux (fork),
    without ``--compile`` (its compiler keeps processes of its own) and without ``--tensorboard``
    (whose per-epoch hooks live in the main process).
    """
    cfg = run.cfg
    possible = (
        run.device.type == "cpu"
        and not run.session.dist.enabled
        and sys.platform.startswith("linux")
        and not cfg.compile
        and cfg.tensorboard is None
    )
    if not possible:
        return 1
    wanted = cfg.jobs or usable_cores()
    return max(1, min(wanted, tasks))


def train_side_by_side(run: Any, names: Sequence[str]) -> int:
    """Train the recipes ``names`` (those not trained yet): the rest here, then the ``parallel`` ones in workers.

    Returns the number of worker processes used (1: none, everything is left to the parts).
    """
    todo = [n for n in dict.fromkeys(names) if not run.has_model(n)]
    pooled = [n for n in todo if _poolable(run.recipes[n])]
    jobs = worker_count(run, len(pooled))
    if jobs < 2:
        return 1
    threads = max(1, usable_cores() // jobs)
    run.session.log.reserve(todo)
    for name in todo:  # the main process's share first, at its own thread count: four threads on two
        if name not in pooled:  # cores, its and the workers', would slow everyone down
            run.model(name)
    pool = _Pool(run, pooled, jobs, threads)
    try:
        pool.wait()
    except BaseException as e:
        pool.stop()
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C or SIGTERM while waiting for the workers
            raise _stopped(e, pool.collect_stopped()) from None
        raise
    finally:
        pool.close()
    return jobs


def _poolable(recipe: Any) -> bool:
    """A worker trains a recipe from its seed alone: no other model's weights, no start of its own."""
    return recipe.parallel and recipe.init_from is None and recipe.warm_start is None


def _stopped(e: KeyboardInterrupt, kept: list[str]) -> TrainingInterrupted:
    """One line for a run stopped while its workers trained: what stopped it, and what each worker kept."""
    what, code = (
        ("terminated (SIGTERM)", TERMINATED_EXIT) if isinstance(e, Terminated) else ("interrupted", INTERRUPTED_EXIT)
    )
    said = "; ".join(kept) or "checkpoints of finished epochs are kept"
    return TrainingInterrupted(f"{what} while training side by side: {said}", code)


class _Pool:
    """``jobs`` forked processes taking recipe names from one queue and answering on another."""

    def __init__(self, run: Any, names: list[str], jobs: int, threads: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.tasks: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.pending = set(names)
        for name in names:
            self.tasks.put(name)
        for _ in range(jobs):
            self.tasks.put(None)
        sys.stdout.flush()
        sys.stderr.flush()
        self.board = Board()  # one live line per model in training, drawn here from the workers' reports
        self.procs = [ctx.Process(target=_work, args=(run, self.tasks, self.results, threads)) for _ in range(jobs)]
        for p in self.procs:
            p.start()

    def wait(self) -> None:
        """Until every model is trained; the first failure is raised (the others are stopped first)."""
        while self.pending:
            try:
                kind, name, outcome = self.results.get(timeout=0.5)
            except queue.Empty:
                self._check_alive()
                continue
            if kind != "done":  # a progress report: Board.start / epoch / end
                getattr(self.board, kind)(name, *outcome)
                continue
            self.board.end(name)
            self.pending.discard(name)
            if outcome is not None:
                self.stop()
                self.collect_stopped()
                raise _as_error(outcome)

    def _check_alive(self) -> None:
        dead = [p for p in self.procs if p.exitcode not in (None, 0)]
        if dead:
            self.stop()
            code = dead[0].exitcode
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise UserError(
                f"a training worker process died ({how}; out of memory?) while training "
                f"{', '.join(sorted(self.pending))}; checkpoints of finished epochs are kept, continue with "
                "--resume (or --jobs 1)"
            )

    def stop(self) -> None:
        """Ask every live worker to stop at its next step (it keeps its last finished epoch)."""
        for p in self.procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    def collect_stopped(self) -> list[str]:
        """What each stopped worker kept (``dae_b2: checkpoint ... keeps 3 finished epoch(s)``), once all have exited."""
        messages = []
        for p in self.procs:
            p.join(STOP_WAIT_S)
            if p.is_alive():
                p.kill()
                p.join()
        while True:
            try:
                kind, _, outcome = self.results.get(timeout=0.1)
            except (queue.Empty, OSError, ValueError):
                return messages
            if kind == "done" and outcome is not None:
                messages.append(
                    outcome[1]
                    .split(" while training ", 1)[-1]
                    .replace(" (epoch ", ", at epoch ", 1)
                    .replace(");", ":", 1)
                )

    def close(self) -> None:
        self.board.close()
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join()
        for q in (self.tasks, self.results):
            q.close()
            q.cancel_join_thread()


def _as_error(outcome: tuple[int | None, str]) -> BaseException:
    code, message = outcome
    if code is None:  # not a run-stopping condition but a bug: keep its traceback in the message
        return RuntimeError(f"a training worker failed:\n{message}")
    if code == 2:
        return UserError(message)
    return TrainingInterrupted(message, code)


def _work(run: Any, tasks: Any, results: Any, threads: int) -> None:
    """A worker's life: become a quiet one-thread trainer, then train names until the queue says stop."""
    _become_worker(run, threads)
    run.session.progress = _Reports(results)
    busy = False

    def on_sigterm(signum: int, frame: Any) -> None:
        if busy:  # inside fit: stop at the next step, after any checkpoint write (aelab.faults)
            faults.on_sigterm(signum, frame)
            return
        os._exit(0)  # between models: nothing to keep

    signal.signal(signal.SIGTERM, on_sigterm)
    while True:
        name = tasks.get()
        if name is None:
            return
        busy = True
        try:
            run.session.train(run.recipes[name], run, worker=True)
            outcome = None
        except TrainingInterrupted as e:
            outcome = (e.exit_code, str(e))
        except UserError as e:
            outcome = (2, str(e))
        except BaseException:
            outcome = (None, traceback.format_exc())
        busy = False
        results.put(("done", name, outcome))
        if outcome is not None:
            return


class _Reports:
    """A worker's :class:`aelab.progress.Progress`: each report goes to the main process's board."""

    def __init__(self, results: Any) -> None:
        self.results = results

    def start(self, name: str, done: int, total: int) -> None:
        self.results.put(("start", name, (done, total)))

    def epoch(self, name: str, record: dict, total: int) -> None:
        self.results.put(("epoch", name, (record, total)))

    def end(self, name: str) -> None:
        self.results.put(("end", name, ()))


def _become_worker(run: Any, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    _die_with_parent()
    run.session.run.lock.close_inherited()
    torch.set_num_threads(threads)


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the main process dies (a SIGKILL gives it no chance to stop us)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
