"""One training loop for every model in aelab.

Data arrive as uint8 image tensors (moved to the device once); each step cuts a batch by index,
converts it to float with ``prepare`` and hands it to an ``objective`` that returns the loss. So
the loop knows nothing about autoencoders, noise or penalties; the studies say those in a line.

Every epoch ends with an atomic checkpoint holding the model, optimizer, scheduler, RNG states
and history. A checkpoint found at the start is resumed, so a killed run continues where it stopped
and reaches bit-identical weights on CPU. Under torchrun the model is wrapped in DDP, each rank
trains on its shard of every epoch, and the test loss is reduced over ranks; rank 0 alone writes.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from aelab.checkpoint import atomic_write, load_checkpoint, load_model_state, save_checkpoint
from aelab.errors import TrainingInterrupted, UserError
from aelab.runtime import all_reduce_sum, get_dist

Prepare = Callable[[torch.Tensor], torch.Tensor]
Objective = Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor]
CHECK_EVERY = 25  # steps between non-finite checks (a host sync on GPU)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" (short warm-up, then cosine to 5%) or "constant"
    seed: int = 0
    amp: bool = True  # bf16 autocast, used on CUDA only
    compile: bool = False
    channels_last: bool = False


class TrainLog:
    """``train_log.csv``: one row per model and epoch, rewritten atomically after every epoch."""

    FIELDS = ("model", "epoch", "train_loss", "test_loss", "seconds")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, list[dict]] = {}

    def set(self, model: str, history: list[dict]) -> None:
        self.rows[model] = [{"model": model, **{k: h[k] for k in self.FIELDS[1:]}} for h in history]
        if self.path is not None and get_dist().is_main:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self.FIELDS, lineterminator="\n")
            writer.writeheader()
            for rows in self.rows.values():
                writer.writerows(rows)
            atomic_write(self.path, buf.getvalue())


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
) -> float:
    """Mean objective over ``data`` with a fixed noise seed, so epochs are comparable."""
    was_training = model.training
    model.eval()
    d = get_dist()
    idx = torch.arange(d.rank, len(data), d.world_size)
    gen = torch.Generator(device=device).manual_seed(seed)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(idx), batch_size):
        x = prepare(data[idx[i : i + batch_size]].to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = objective(model, x, gen)
        total[0] += loss.double() * len(x)
        total[1] += len(x)
    all_reduce_sum(total)
    model.train(was_training)
    return float(total[0] / total[1].clamp_min(1))


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
) -> list[dict]:
    """Train ``model`` in place and return its per-epoch history; resumes from ``checkpoint``."""
    d = get_dist()
    amp = cfg.amp and device.type == "cuda"
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    train, test = train.to(device), test.to(device)
    steps_per_epoch = math.ceil((len(train) // d.world_size) / cfg.batch_size)
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(steps_per_epoch * cfg.epochs, cfg.schedule))
    noise = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + d.rank)
    history: list[dict] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        load_model_state(model, state, checkpoint)
        history = list(state.get("history", []))
        start = int(state.get("epoch", 0))
        if start > cfg.epochs:
            raise UserError(f"checkpoint {checkpoint} has {start} epochs, more than --epochs {cfg.epochs}")
        if start < cfg.epochs:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            noise.set_state(state["rng"]["noise"])
            torch.set_rng_state(state["rng"]["torch"])
    if log is not None:
        log.set(name, history)
    if start >= cfg.epochs:
        model.eval()
        return history

    net: nn.Module = model
    if d.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)

    bar = tqdm(
        range(start, cfg.epochs),
        desc=name,
        unit="epoch",
        disable=None if d.is_main else True,
        leave=False,
        initial=start,
        total=cfg.epochs,
    )
    losses = torch.zeros(steps_per_epoch, device=device)
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        order = _shard(len(train), cfg.seed * 100_003 + epoch, device)
        try:
            for step, i in enumerate(range(0, len(order), cfg.batch_size)):
                x = prepare(train[order[i : i + cfg.batch_size]])
                if cfg.channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = objective(net, x, noise)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses[step] = loss.detach().float()
                if (step + 1) % CHECK_EVERY == 0 or step + 1 == steps_per_epoch:
                    _check_finite(losses[: step + 1], name, epoch, checkpoint)
        except KeyboardInterrupt:
            bar.close()
            where = f"checkpoint {checkpoint} keeps {epoch} finished epoch(s)" if checkpoint else "no checkpoint"
            raise TrainingInterrupted(f"interrupted while training {name} (epoch {epoch + 1}); {where}") from None
        train_loss = float(all_reduce_sum(losses.mean().double().clone()) / d.world_size)
        test_loss = evaluate_loss(net, objective, test, prepare, cfg.batch_size * 2, device, cfg.seed, amp)
        seconds = time.perf_counter() - t0
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "test_loss": test_loss,
                "seconds": round(seconds, 3),
                "lr": scheduler.get_last_lr()[0],
            }
        )
        bar.set_postfix(train=f"{train_loss:.4g}", test=f"{test_loss:.4g}")
        if d.is_main:
            tqdm.write(
                f"[{name}] epoch {epoch + 1}/{cfg.epochs}  train {train_loss:.5g}  test {test_loss:.5g}  {seconds:.1f}s"
            )
        if checkpoint is not None and d.is_main:
            save_checkpoint(
                checkpoint,
                {
                    "format": 1,
                    "name": name,
                    "model_class": type(model).__name__,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                    "rng": {"noise": noise.get_state(), "torch": torch.get_rng_state()},
                    "config": asdict(cfg),
                },
            )
        if log is not None:
            log.set(name, history)
    bar.close()
    model.eval()
    return history


def _check_finite(losses: torch.Tensor, name: str, epoch: int, checkpoint: Path | None) -> None:
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        kept = f"the last good checkpoint ({checkpoint}) is kept" if checkpoint else "no checkpoint was written"
        raise UserError(
            f"non-finite loss while training {name}: epoch {epoch + 1}, batch {int(bad[0]) + 1}; "
            f"{kept}; try a lower --lr"
        )
