"""Where and how a run executes: device choice, seeding, and the torchrun/DDP process group.

Under ``torchrun`` the environment carries RANK/WORLD_SIZE/LOCAL_RANK; :func:`init_distributed`
joins the group (nccl on GPUs, gloo on CPU). Without it, everything degrades to one process and
the helpers below are no-ops, so studies never branch on "am I distributed?".
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from aelab.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_DIST = Dist()


def init_distributed(device_kind: str) -> Dist:
    """Join the torchrun process group when launched by torchrun; otherwise a single process.

    ``device_kind`` (:func:`device_kind`) picks the backend: nccl for CUDA, gloo for the CPU. MPS has
    none; :func:`check_device_use` refuses it before a run starts, and this refuses it again for code
    that builds a session by hand.
    """
    global _DIST
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _DIST
    if device_kind == "mps":
        check_device_use("mps")
    if not dist.is_initialized():
        # torch.distributed.nn binds ``group.WORLD`` as a default argument when it is imported; torch._dynamo
        # imports it, and torch.optim imports dynamo on first use. Imported after init, it would hold the
        # process group for good, so destroy_process_group could not free it (see shutdown_distributed).
        import torch.distributed.nn  # noqa: F401

        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    _DIST = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return _DIST


def get_dist() -> Dist:
    return _DIST


def shutdown_distributed() -> None:
    """Leave the process group and free it, while the interpreter is still whole.

    Freeing it joins gloo's worker threads. A group that outlives this (something still refers to it)
    is freed only while Python shuts down; a worker thread that then drops its last collective's
    tensors needs the GIL, which a finalising interpreter refuses by ending the thread, and the C++
    runtime aborts the process ("terminate called without an active exception", SIGABRT) after a run
    that had otherwise ended cleanly. :func:`init_distributed` keeps torch's own late reference away;
    the test suite checks that no gloo thread survives this call.
    """
    global _DIST
    if dist.is_initialized():
        dist.destroy_process_group()
    _DIST = Dist()


def gloo_threads(settle_s: float = 2.0) -> list[str]:
    """Names of this process's gloo threads still alive (Linux; empty elsewhere): none after shutdown.

    A thread that has been joined can still be listed for a moment while the kernel reaps it (its
    ``/proc`` entry outlives the join), so the listing is repeated for up to ``settle_s`` seconds and
    dead (zombie) tasks are skipped; a thread that a live process group keeps running stays listed.
    """
    deadline = time.monotonic() + settle_s
    while True:
        names = _live_threads("gloo")
        if not names or time.monotonic() >= deadline:
            return names
        time.sleep(0.05)


def _live_threads(part: str) -> list[str]:
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return []
    names = []
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # reaped while we looked
        name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()[0]
        if part in name and state not in ("Z", "X", "x"):
            names.append(name)
    return sorted(names)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (identity on one process)."""
    if _DIST.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if _DIST.enabled:
        dist.barrier()


def broadcast_from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (a picklable object; identity on one process); also a barrier.

    For decisions rank 0 alone can make (it alone takes the run folder's lock): when it must stop, the
    other ranks learn why and stop too, instead of waiting for it in the next collective.
    """
    if not _DIST.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mps_available() -> bool:
    """Whether Apple's GPU (the MPS backend) can run here: a macOS build of torch on Apple silicon."""
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except (AttributeError, RuntimeError):
        return False


def mps_bf16_supported() -> bool:
    """Whether bf16 autocast runs on MPS here: the build must offer autocast for MPS and bf16 needs macOS 14.

    Where it does not, MPS trains in fp32 (the numbers are then the fp32 numbers of any other device).
    """
    if not mps_available():
        return False
    try:
        return bool(torch.amp.is_autocast_available("mps") and torch.backends.mps.is_macos_or_newer(14, 0))
    except (AttributeError, RuntimeError):
        return False


def device_kind(name: str = "auto", distributed: bool | None = None) -> str:
    """``cuda``, ``mps`` or ``cpu``: what ``name`` means here, without checking that it is available.

    ``auto`` picks CUDA, then Apple's GPU (MPS), then the CPU; under torchrun (``distributed``, default:
    from ``WORLD_SIZE``) it skips MPS, which has no process-group backend, so a Mac's DDP run uses its CPU.
    """
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if distributed is None:
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return "mps" if not distributed and mps_available() else "cpu"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; asking for a device that is not here is a user error."""
    name = device_kind(name)
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
        return torch.device("cuda", _DIST.local_rank if _DIST.enabled else torch.cuda.current_device())
    if name == "mps":
        if not mps_available():
            raise UserError(
                "--device mps was asked for, but Apple's GPU (MPS) is not available here (use --device cpu)"
            )
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device {name!r} (choose auto, cpu, cuda or mps)")


def check_device_use(device: str, jobs: int = 0) -> None:
    """Refuse, in one line, what Apple's GPU cannot do: torchrun's process group (DDP) and ``--jobs``
    worker processes (they train on CPU cores). ``--jobs 0`` (automatic) simply means one process there."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if device_kind(device, distributed) != "mps":
        return
    if distributed:
        raise UserError(
            "torchrun (DDP) runs on CPUs (gloo) and CUDA GPUs (nccl), not on Apple's GPU (MPS); "
            "use --device cpu under torchrun"
        )
    if jobs > 1:
        raise UserError(
            f"--jobs {jobs} trains in CPU worker processes, which Apple's GPU (MPS) cannot share; "
            "use --jobs 1 on MPS, or --device cpu to train side by side on the CPU"
        )


def seed_everything(seed: int) -> None:
    """Seed every generator a run may touch; each rank gets its own stream (seed + rank)."""
    s = seed + _DIST.rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def configure_torch(device: torch.device) -> None:
    """Settings that make the hot loop fast without changing results on CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
