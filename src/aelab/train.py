"""One training loop for every model in aelab.

Data arrive as uint8 image tensors (moved to the device once); each step cuts a batch by index,
converts it to float with ``prepare`` and hands it to an ``objective`` that returns the loss. So
the loop knows nothing about autoencoders, noise or penalties; the studies say those in a line.

Every epoch ends with an atomic checkpoint holding the model, optimizer, scheduler, RNG states
and history. A checkpoint found at the start is resumed, so a killed run continues where it stopped
and reaches bit-identical weights on CPU. Under torchrun the model is wrapped in DDP, each rank
trains on its shard of every epoch, and the test loss is reduced over ranks; rank 0 alone writes.

Two quality levers that cost no compute are opt-in per model (``TrainConfig.flip``, ``TrainConfig.ema``):
random left-right flips of the training photos, and an exponential moving average of the weights, which is
then what the model is judged, saved and returned as.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from aelab.checkpoint import atomic_write, load_checkpoint, load_model_state, save_checkpoint
from aelab.errors import INTERRUPTED_EXIT, TERMINATED_EXIT, Terminated, TrainingInterrupted, UserError, WriteFailed
from aelab.faults import deferred_termination, raise_terminated, stop_if_terminated, stopping, termination_pending
from aelab.progress import Bar, Progress, Quiet
from aelab.runtime import all_reduce_sum, get_dist
from aelab.speed import flushing_subnormals, make_optimizer, resident, use_amp, use_channels_last

Prepare = Callable[[torch.Tensor], torch.Tensor]
Objective = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
EpochHook = Callable[[str, nn.Module, dict], None]
CHECK_EVERY = 25  # steps between non-finite checks (a host sync on GPU)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" (short warm-up, then cosine to 5%) or "constant"
    seed: int = 0
    amp: bool = True  # bf16 autocast where it is native (off: fp32 everywhere, e.g. --precision fp32)
    cpu_amp: bool = (
        False  # bf16 autocast beyond CUDA too: on a CPU with native bf16, on MPS where supported (speed.use_amp)
    )
    compile: bool = False
    channels_last: bool | None = None  # None: on for models with convolutions (see speed.use_channels_last)
    clip_grad: float = 0.0  # > 0: clip the gradient's global norm to this before each step (0: off)
    # lambda of an L2 penalty lambda * sum(w^2) over the weight matrices (biases and norm parameters free),
    # applied as its gradient 2 lambda w inside the fused Adam step (see speed.make_optimizer)
    l2_penalty: float = 0.0
    flip: bool = False  # flip a random half of every training batch left-right (photos; never digits)
    # > 0: keep an EMA of the weights with this decay (warmed up as min(decay, (1 + t) / (10 + t)) over steps t);
    # the test loss, the checkpoint's "model" and the model fit leaves behind are the average (0: off)
    ema: float = 0.0


class TrainLog:
    """``train_log.csv``: one row per model and epoch, rewritten atomically after every epoch.

    Its folder is made when the log is; one that vanishes later is a :class:`~aelab.errors.WriteFailed`, not
    made again (a deleted or unmounted run folder must not silently fill up again).
    """

    FIELDS = ("model", "epoch", "train_loss", "test_loss", "seconds")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, list[dict]] = {}
        if path is not None and get_dist().is_main:
            path.parent.mkdir(parents=True, exist_ok=True)

    def reserve(self, models: Sequence[str]) -> None:
        """Keep these models' rows in this order, whichever finishes training first (side-by-side training)."""
        for model in models:
            self.rows.setdefault(model, [])

    def set(self, model: str, history: list[dict]) -> None:
        self.rows[model] = [{"model": model, **{k: h[k] for k in self.FIELDS[1:]}} for h in history]
        if self.path is not None and get_dist().is_main:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self.FIELDS, lineterminator="\n")
            writer.writeheader()
            for rows in self.rows.values():
                writer.writerows(rows)
            atomic_write(self.path, buf.getvalue(), make_folder=False)


def lr_lambda(total_steps: int, schedule: str) -> Callable[[int], float]:
    if schedule == "constant":
        return lambda step: 1.0
    warmup = max(1, total_steps // 50)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


def _shard(n: int, epoch_seed: int, device: torch.device) -> torch.Tensor:
    """This rank's indices for one epoch: one shared permutation, cut into equal rank shards."""
    d = get_dist()
    g = torch.Generator().manual_seed(epoch_seed)
    perm = torch.randperm(n, generator=g)
    if d.enabled:
        per_rank = n // d.world_size
        perm = perm[d.rank * per_rank : (d.rank + 1) * per_rank]
    return perm.to(device)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    objective: Objective,
    data: torch.Tensor,
    prepare: Prepare,
    batch_size: int,
    device: torch.device,
    seed: int,
    amp: bool = False,
    targets: torch.Tensor | None = None,
) -> float:
    """Mean objective over ``data`` with a fixed noise seed, so epochs are comparable.

    With ``targets`` (one per image) the objective is called as ``objective(model, x, gen, y)``.
    """
    was_training = model.training
    model.eval()
    d = get_dist()
    idx = torch.arange(d.rank, len(data), d.world_size)
    gen = torch.Generator(device=device).manual_seed(seed)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(idx), batch_size):
        x = prepare(data[idx[i : i + batch_size]].to(device, non_blocking=True))
        y = () if targets is None else (targets[idx[i : i + batch_size]].to(device, non_blocking=True),)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = objective(model, x, gen, *y)
        total[0] += loss.double() * len(x)
        total[1] += len(x)
    all_reduce_sum(total)
    model.train(was_training)
    return float(total[0] / total[1].clamp_min(1))


def flip_half(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) with a random half of its images mirrored left-right (drawn from ``gen``)."""
    mirror = torch.rand(len(x), device=x.device, generator=gen) < 0.5
    return torch.where(mirror[:, None, None, None], x.flip(-1), x)


def weight_average(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA of ``model``'s weights and buffers whose decay warms up as ``min(decay, (1 + t) / (10 + t))``.

    The warm-up keeps the first steps' random weights from lingering in the average of a short run.
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        weight = 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=decay)  # a tensor: no host sync on a GPU
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight.to(floats[0][0].dtype))
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():  # counters (BatchNorm's batches seen) follow the model
                a.copy_(c)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def load_batch(
    data: torch.Tensor, idx: torch.Tensor, prepare: Prepare, channels_last: bool, device: torch.device | None = None
) -> torch.Tensor:
    """Gather a uint8 batch by index and make it the model's float input on ``device`` (default: the data's)."""
    x = data[idx]
    if device is not None and x.device != device:
        x = x.to(device, non_blocking=True)
    x = prepare(x)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_step(
    net: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    noise: torch.Generator,
    amp: bool,
    target: torch.Tensor | None = None,
    clip_grad: float = 0.0,
) -> torch.Tensor:
    """One optimisation step; returns the detached loss without a host sync (fit and the benchmark share it).

    ``clip_grad > 0`` scales the gradient down to that global norm first: a rare outsized batch then moves
    the weights no further than a typical one, which keeps divisive-normalisation models (GDN) stable.
    """
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = objective(net, x, noise) if target is None else objective(net, x, noise, target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip_grad, foreach=True)
    optimizer.step()
    return loss.detach()


def wrap_model(model: nn.Module, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """The module the steps call: DDP under torchrun, then ``torch.compile`` when asked for."""
    net: nn.Module = model
    if get_dist().enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    return net


def _ranks_stop_together(f: Callable[..., list[dict]]) -> Callable[..., list[dict]]:
    """Under torchrun, a SIGTERM is acted on where every rank sees it at once (see :mod:`aelab.faults`).

    Inside ``fit`` the signal is only recorded; the check every ``CHECK_EVERY`` steps stops all ranks at
    the same step. A signal that arrives after the last check (during the last evaluation or checkpoint)
    is agreed on once more when ``fit`` returns, so no rank walks on into a collective the others left.
    """

    @functools.wraps(f)
    def wrapper(*args, **kwargs) -> list[dict]:
        with deferred_termination(get_dist().enabled):
            try:
                return f(*args, **kwargs)
            except BaseException:
                stopping()  # torchrun's SIGTERM, sent once a rank stops, must not replace why this one stops
                raise

    return wrapper


def _stop_if_any_rank_was_terminated(device: torch.device) -> None:
    """Under DDP: raise :class:`Terminated` on every rank if any rank has a SIGTERM pending (one all-reduce)."""
    if get_dist().enabled:
        flag = all_reduce_sum(torch.tensor([float(termination_pending())], device=device))
        if float(flag[0]):
            raise_terminated()


@_ranks_stop_together
def fit(
    name: str,
    model: nn.Module,
    objective: Objective,
    train: torch.Tensor,
    test: torch.Tensor,
    prepare: Prepare,
    cfg: TrainConfig,
    device: torch.device,
    checkpoint: Path | None = None,
    log: TrainLog | None = None,
    targets: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: Sequence[EpochHook] = (),
    progress: Progress | None = None,
) -> list[dict]:
    """Train ``model`` in place and return its per-epoch history; resumes from ``checkpoint``.

    ``targets``: (train, test) tensors with one target per image, for supervised models (the digit
    judge). Each batch's targets are cut by the same indices as its images and the objective is
    called as ``objective(model, x, noise, y)``; without them it is ``objective(model, x, noise)``.
    ``on_epoch``: hooks called after each finished epoch's checkpoint as ``hook(name, model, record)``
    (e.g. the TensorBoard writer); the model is in eval mode during the call. ``progress``: where the
    epochs are reported (default: a live bar and a line per epoch on the first rank; see :mod:`aelab.progress`).
    On a CPU, subnormal floats are flushed to zero while it runs (:func:`aelab.speed.flushing_subnormals`).
    """
    with flushing_subnormals(device):
        loop = _Loop(name, model, objective, train, test, prepare, cfg, device, checkpoint, targets)
        history = loop.resume()
        if log is not None:
            log.set(name, history)
        if loop.kept < cfg.epochs:
            with loop.stops_explained(), _reporting(progress, name, loop.kept, cfg.epochs) as report:
                for epoch in range(loop.kept, cfg.epochs):
                    history.append(loop.train_epoch(epoch))
                    report.epoch(name, history[-1], cfg.epochs)
                    loop.save(epoch, history)
                    if log is not None:
                        log.set(name, history)
                    for hook in on_epoch:
                        loop.evaluated.eval()
                        hook(name, loop.evaluated, history[-1])
            _stop_if_any_rank_was_terminated(device)
        loop.finish()
    model.eval()
    return history


@contextmanager
def _reporting(progress: Progress | None, name: str, done: int, total: int) -> Iterator[Progress]:
    """``progress`` (default: a live bar on the first rank, nothing on the others) from a model's start to its end."""
    report = progress or (Bar() if get_dist().is_main else Quiet())
    report.start(name, done, total)
    try:
        yield report
    finally:
        report.end(name)


class _Loop:
    """The state one ``fit`` trains with, and its four moves: resume, one epoch, save, explain a stop."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        objective: Objective,
        train: torch.Tensor,
        test: torch.Tensor,
        prepare: Prepare,
        cfg: TrainConfig,
        device: torch.device,
        checkpoint: Path | None,
        targets: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        d = get_dist()
        self.name, self.model, self.objective, self.prepare, self.cfg = name, model, objective, prepare, cfg
        self.device, self.checkpoint = device, checkpoint
        self.amp = use_amp(cfg, device)
        self.channels_last = use_channels_last(model, cfg, device)
        model.to(device=device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        self.train, self.test = resident(train, device), resident(test, device)  # uint8, one copy, no transfers
        self.train_y, self.test_y = (None, None) if targets is None else (targets[0].to(device), targets[1].to(device))
        if targets is not None and (len(self.train_y) != len(self.train) or len(self.test_y) != len(self.test)):
            raise ValueError(f"{name}: targets must have one entry per image (train and test)")
        self.steps_per_epoch = math.ceil((len(self.train) // d.world_size) / cfg.batch_size)
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.steps_per_epoch * cfg.epochs, cfg.schedule)
        )
        self.noise = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + d.rank)
        self.losses = torch.zeros(self.steps_per_epoch, device=device)
        self.average = weight_average(model, cfg.ema) if cfg.ema > 0 else None
        self.kept = 0  # finished epochs whose checkpoint is written: what a stop now says is kept
        self.net: nn.Module | None = None  # the module the steps call (wrap_model), made when training starts

    def resume(self) -> list[dict]:
        """The checkpoint's history, with model, optimizer, schedule and RNGs restored; [] without one."""
        history: list[dict] = []
        checkpoint, d = self.checkpoint, get_dist()
        if checkpoint is not None and d.is_main:  # made once, here: a folder that vanishes later is a WriteFailed
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None and checkpoint.exists():
            state = load_checkpoint(checkpoint)
            load_model_state(self.model, state, checkpoint)
            try:  # the file is untrusted: any missing or mistyped field is damage, not a bug
                history = list(state.get("history", []))
                self.kept = int(state.get("epoch", 0))
                if self.kept > self.cfg.epochs:
                    raise UserError(
                        f"checkpoint {checkpoint} has {self.kept} epochs, more than --epochs {self.cfg.epochs}"
                    )
                averaged = "trained" in state  # "model" holds the average, "trained" the weights it averages
                if averaged != (self.average is not None) and self.kept < self.cfg.epochs:
                    raise UserError(_ema_mismatch(checkpoint, averaged))
                if self.average is not None:  # a finished checkpoint is used as it is, with or without an EMA
                    self.average.module.load_state_dict(state["model"])
                    if averaged:
                        self.average.n_averaged.fill_(int(state["averaged_steps"]))
                    if self.kept < self.cfg.epochs:
                        self.model.load_state_dict(state["trained"])
                if self.kept < self.cfg.epochs:
                    self.optimizer.load_state_dict(state["optimizer"])
                    self.scheduler.load_state_dict(state["scheduler"])
                    self.noise.set_state(state["rng"]["noise"])
                    torch.set_rng_state(state["rng"]["torch"])
            except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise UserError(f"checkpoint {checkpoint} is incomplete or damaged ({first[:120]})") from None
        _same_start_on_every_rank(self.kept, self.name, self.device)
        return history

    def train_epoch(self, epoch: int) -> dict:
        """One pass over this rank's shard, then the held-out loss; returns the epoch's record."""
        if self.net is None:
            self.net = wrap_model(self.model, self.cfg, self.device)
        cfg, d = self.cfg, get_dist()
        t0 = time.perf_counter()
        self.net.train()
        order = _shard(len(self.train), cfg.seed * 100_003 + epoch, self.train.device)
        for step, i in enumerate(range(0, len(order), cfg.batch_size)):
            idx = order[i : i + cfg.batch_size]
            x = load_batch(self.train, idx, self.prepare, self.channels_last, self.device)
            if cfg.flip:
                x = flip_half(x, self.noise)
            y = None if self.train_y is None else self.train_y[idx]
            loss = train_step(self.net, self.objective, self.optimizer, x, self.noise, self.amp, y, cfg.clip_grad)
            self.losses[step] = loss.float()
            self.scheduler.step()
            if self.average is not None:
                self.average.update_parameters(self.model)
            stop_if_terminated()  # a SIGTERM whose exception a __del__ swallowed (no-op under DDP: see above)
            if (step + 1) % CHECK_EVERY == 0 or step + 1 == self.steps_per_epoch:
                _check_finite(self.losses[: step + 1], self.name, epoch, self.checkpoint)
        train_loss = float(all_reduce_sum(self.losses.mean().double().clone()) / d.world_size)
        # the bare model: a DDP forward may broadcast buffers, and ranks' test shards can differ in batch count
        test_loss = evaluate_loss(
            self.evaluated, self.objective, self.test, self.prepare, cfg.batch_size * 2, self.device, cfg.seed, self.amp,
            self.test_y,
        )  # fmt: skip
        return {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "seconds": round(time.perf_counter() - t0, 3),
            "lr": self.scheduler.get_last_lr()[0],
        }

    @property
    def evaluated(self) -> nn.Module:
        """The weights a model is judged by: the EMA when there is one, else the trained weights themselves."""
        return self.model if self.average is None else self.average.module

    def finish(self) -> None:
        """Leave the evaluated weights in the model ``fit`` was given (the EMA, when there is one)."""
        if self.average is not None:
            self.model.load_state_dict(self.average.module.state_dict())

    def save(self, epoch: int, history: list[dict]) -> None:
        """The epoch's atomic checkpoint (first rank); a SIGTERM meanwhile waits for the write, then stops."""
        if self.checkpoint is not None and get_dist().is_main:
            state = {
                "format": 1,
                "name": self.name,
                "model_class": type(self.model).__name__,
                "model": self.evaluated.state_dict(),
                **(
                    {}
                    if self.average is None
                    else {"trained": self.model.state_dict(), "averaged_steps": int(self.average.n_averaged)}
                ),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "rng": {"noise": self.noise.get_state(), "torch": torch.get_rng_state()},
                "config": asdict(self.cfg),
            }
            with deferred_termination():  # a SIGTERM now lets the write finish: the epoch's work is kept
                _save_or_explain(self.checkpoint, epoch, state)
        self.kept = epoch + 1
        stop_if_terminated()

    @contextmanager
    def stops_explained(self) -> Iterator[None]:
        """Ctrl-C, SIGTERM or a lost rank anywhere in the loop becomes one line saying what the checkpoint keeps."""
        try:
            yield
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (aelab.errors.Terminated)
            what, code = (
                ("terminated (SIGTERM)", TERMINATED_EXIT)
                if isinstance(e, Terminated)
                else ("interrupted", INTERRUPTED_EXIT)
            )
            raise TrainingInterrupted(
                f"{what} while training {self.name} (epoch {self.kept + 1}); {_kept(self.checkpoint, self.kept)}", code
            ) from None
        except RuntimeError as e:  # under torchrun: a collective whose peer died (gloo: "Connection reset by peer")
            d = get_dist()
            if not (d.enabled and _peer_lost(e)):
                raise
            raise TrainingInterrupted(
                f"rank {d.rank} lost another rank while training {self.name} (epoch {self.kept + 1}): it stopped or "
                f"died, see its own output; {_kept(self.checkpoint, self.kept)}",
                PEER_LOST_EXIT,
            ) from None


def _ema_mismatch(checkpoint: Path, averaged: bool) -> str:
    """Why a stopped run cannot go on with the EMA switched: its weights would continue as something else."""
    was, now = ("with", "without") if averaged else ("without", "with")
    return (
        f"checkpoint {checkpoint} was trained {was} an EMA of its weights and this run is {now} one; "
        "resume with the same --ema, or pass --overwrite"
    )


def _kept(checkpoint: Path | None, done: int) -> str:
    """What a stopped run still has: the checkpoint and its finished epochs, or that there is none yet."""
    if checkpoint is not None and done and checkpoint.exists():
        return f"checkpoint {checkpoint} keeps {done} finished epoch(s)"
    return "no epoch finished, so no checkpoint yet"


def _same_start_on_every_rank(start: int, name: str, device: torch.device) -> None:
    """Ranks resuming from different epochs would wait for each other forever; stop them all instead.

    All ranks agree iff n * sum(s^2) == sum(s)^2 (equality case of Cauchy-Schwarz), one all-reduce.
    """
    d = get_dist()
    if not d.enabled:
        return
    s = all_reduce_sum(torch.tensor([float(start), float(start) ** 2], dtype=torch.float64, device=device))
    if d.world_size * float(s[1]) != float(s[0]) ** 2:
        raise UserError(
            f"ranks found different checkpoints for {name} (rank {d.rank} is at epoch {start}); under torchrun "
            "on several machines --out must be a folder every machine sees (a shared file system)"
        )


PEER_LOST_EXIT = 1  # neither the user's mistake (2) nor a signal to this process (130, 143)
_PEER_LOST = ("connection reset by peer", "connection closed by peer", "broken pipe", "socket closed")


def _peer_lost(e: RuntimeError) -> bool:
    """Whether a collective failed because another rank went away (gloo raises a plain RuntimeError)."""
    text = str(e).lower()
    return isinstance(e, torch.distributed.DistError) or any(p in text for p in _PEER_LOST)


def _save_or_explain(checkpoint: Path, epoch: int, state: dict) -> None:
    """Save the checkpoint of ``epoch``; a failed write says what the last good checkpoint still holds."""
    try:
        save_checkpoint(checkpoint, state, make_folder=False)
    except WriteFailed as e:
        kept = (
            f"the last good checkpoint keeps {epoch} finished epoch(s); make room and continue with --resume"
            if epoch and checkpoint.exists()
            else "no checkpoint of this model was written yet"
        )
        raise WriteFailed(e.path, e.reason, kept) from None


def _check_finite(losses: torch.Tensor, name: str, epoch: int, checkpoint: Path | None) -> None:
    """Stop on a non-finite loss; under DDP every rank stops together, or the others would hang.

    Under DDP the same all-reduce carries whether any rank has seen a SIGTERM, so that all of them stop
    at this step (see :func:`_ranks_stop_together`).
    """
    bad = (~torch.isfinite(losses)).nonzero()
    n_bad = float(len(bad))
    if get_dist().enabled:
        both = all_reduce_sum(torch.tensor([n_bad, float(termination_pending())], device=losses.device))
        n_bad = float(both[0])
        if float(both[1]):
            raise_terminated()
    if n_bad:
        kept = (
            f"the last good checkpoint ({checkpoint}) is kept"
            if checkpoint is not None and checkpoint.exists()
            else "no checkpoint was written yet"
        )
        where = f"batch {int(bad[0]) + 1}" if len(bad) else "on another rank"
        raise UserError(f"non-finite loss while training {name}: epoch {epoch + 1}, {where}; {kept}; try a lower --lr")
