"""Speed knobs of the training loop: precision, memory layout, optimiser kernel, where the data live.

Each is a choice that changes how fast a step runs, never what it computes (beyond bf16 rounding);
``train.py`` calls them and stays the loop. What each choice measured is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import torch
from torch import nn


class TrainConfig(Protocol):
    """The fields of ``aelab.train.TrainConfig`` the knobs read (a protocol, so this module stays below the loop)."""

    amp: bool
    cpu_amp: bool
    channels_last: bool | None
    lr: float
    weight_decay: float
    l2_penalty: float


def cpu_bf16_supported() -> bool:
    """Whether oneDNN has native bf16 kernels here (AVX512-BF16 or AMX): only there is bf16 autocast a
    speed-up on a CPU; elsewhere bf16 is emulated and slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_amp(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast (``amp``): on CUDA always; on a CPU when ``cpu_amp`` asks for it (``--precision auto`` does)
    and the CPU runs bf16 natively; on Apple's GPU (MPS) when ``cpu_amp`` asks for it and the torch build and
    macOS run it there. Everywhere else fp32."""
    if not cfg.amp:
        return False
    if device.type == "cuda":
        return True
    if device.type == "mps":
        from aelab.runtime import mps_bf16_supported

        return cfg.cpu_amp and mps_bf16_supported()
    return cfg.cpu_amp and device.type == "cpu" and cpu_bf16_supported()


def use_channels_last(model: nn.Module, cfg: TrainConfig, device: torch.device) -> bool:
    """NHWC for models with convolutions (cuDNN and oneDNN run them fastest that way), else no change."""
    if cfg.channels_last is not None:
        return cfg.channels_last
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def penalised(name: str, p: nn.Parameter) -> bool:
    """Whether an L2 penalty on weights covers this parameter: weight matrices and kernels, not biases or norms."""
    return p.ndim > 1 and "weight" in name


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over all parameters instead of a Python loop per tensor
    (on CPU and CUDA alike the fastest of Adam's three implementations).

    ``cfg.l2_penalty`` (lambda) is applied here rather than in the loss. Adam's ``weight_decay`` adds
    ``weight_decay * w`` to the gradient before its moments, which is exactly the gradient of
    ``weight_decay / 2 * sum(w^2)``. So a parameter group of the weight matrices with ``2 * lambda``
    takes the same steps as ``lambda * sum(w^2)`` in the loss, without autograd reading and writing
    every weight a second time each step (benchmarks/RESULTS.md: the penalty in the loss cost
    about a third more per step).
    """
    if not cfg.l2_penalty:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if penalised(n, p)], "weight_decay": cfg.weight_decay + 2 * cfg.l2_penalty},
        {"params": [p for n, p in named if not penalised(n, p)], "weight_decay": cfg.weight_decay},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr, fused=True)


def resident(data: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The whole uint8 set on the device when it fits in half its free memory, so steps never copy.

    A set too large for the GPU stays in pinned host memory and each batch is copied over in ``load_batch``.
    """
    if device.type == "cuda" and data.device.type != "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if data.nbytes > free // 2:
            return data.pin_memory()
    return data.to(device)


# ---------------------------------------------------------------- subnormal floats

_PROBE = 1e-39  # a float32 subnormal: a thread that flushes reads it as zero


def subnormals_flushed() -> bool:
    """Whether every CPU thread torch computes on treats subnormal floats as zero (FTZ and DAZ are on).

    A probe large enough to be split over all intra-op threads: each thread keeps its own setting, so
    a pool started before the setting changed may flush on some threads only, which counts as off.
    """
    n = 1 << 16
    probe = torch.full((n * max(1, torch.get_num_threads()),), _PROBE)
    return bool(probe.mul(1.0).eq(0).all())


def set_flush_subnormals(on: bool) -> bool:
    """Flush subnormal floats to zero (``on``) on this thread and on torch's OpenMP threads; returns success.

    Why: on some CPUs (Intel Xeons among them) arithmetic on subnormals takes a slow path. Late in
    training, gradients and Adam's moments fill with them and a step can run several times slower
    (benchmarks/RESULTS.md); values that small change no result at float32 or bf16 precision.

    ``torch.set_flush_denormal`` sets the calling thread's control register only. Threads inherit it
    when they are created, so a thread pool that already runs keeps the old setting: the pool's threads
    are reached through libgomp's own entry point (torch's CPU builds bundle it), each running the
    same call. Where that is not available the calling thread's setting is all there is.
    """
    if not torch.set_flush_denormal(on):
        return False  # not x86 with SSE (e.g. Apple silicon): nothing to set
    _on_every_openmp_thread(lambda: torch.set_flush_denormal(on))
    return True


def _on_every_openmp_thread(job: Callable[[], object]) -> None:
    """Run ``job`` once on each thread of torch's OpenMP team (libgomp's ``GOMP_parallel``), when there is one."""
    if torch.get_num_threads() < 2 or "OpenMP" not in torch.__config__.parallel_info():
        return
    lib = _libgomp()
    if lib is None:
        return
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: job())
    lib.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    lib.GOMP_parallel.restype = None
    lib.GOMP_parallel(ctypes.cast(callback, ctypes.c_void_p), None, torch.get_num_threads(), 0)


@functools.cache
def _libgomp() -> ctypes.CDLL | None:
    """The libgomp torch loaded: its own copy in ``torch/lib`` when bundled, else the system's."""
    here = Path(torch.__file__).parent / "lib"
    for path in [*sorted(here.glob("libgomp*.so*")), "libgomp.so.1"]:
        try:
            lib = ctypes.CDLL(str(path))
            lib.GOMP_parallel  # noqa: B018  (an AttributeError when the symbol is missing)
            return lib
        except (OSError, AttributeError):
            continue
    return None


@contextmanager
def flushing_subnormals(device: torch.device) -> Iterator[bool]:
    """Subnormals flushed to zero inside the block on a CPU run; the previous setting comes back after.

    Yields whether flushing is in effect. A run (``Session``), ``fit`` and the benchmarks enter it; a
    block nested in another that already flushes changes nothing, so the setting is made once per run.
    """
    if device.type != "cpu" or subnormals_flushed():
        yield device.type == "cpu"
        return
    on = set_flush_subnormals(True) and subnormals_flushed()
    try:
        yield on
    finally:
        if on:
            set_flush_subnormals(False)
