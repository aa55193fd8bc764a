"""Which device a run takes, and what each device may do: CUDA, then Apple's GPU (MPS), then the CPU.

No test machine has Apple's GPU, so the backends' availability is patched: these tests check the choice
and the refusals, not MPS kernels (the README says MPS was not run on real hardware by the project's CI).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import aelab
from aelab import runtime
from aelab.cli import build_parser, main
from aelab.speed import use_amp


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch):
    """``set(cuda=..., mps=..., mps_bf16=...)``: what this machine pretends to have."""

    def set_(cuda: bool = False, mps: bool = False, mps_bf16: bool = False, world_size: int = 1) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: mps_bf16)
        monkeypatch.setattr(torch.amp, "is_autocast_available", lambda kind: kind != "mps" or mps_bf16)
        monkeypatch.setenv("WORLD_SIZE", str(world_size))

    return set_


@pytest.mark.parametrize(
    "cuda, mps, world_size, picked",
    [
        (True, True, 1, "cuda"),  # CUDA first
        (False, True, 1, "mps"),  # then Apple's GPU
        (False, False, 1, "cpu"),  # then the CPU
        (False, True, 2, "cpu"),  # under torchrun MPS has no process-group backend: the Mac's CPU
        (True, False, 2, "cuda"),
    ],
)
def test_auto_picks_cuda_then_mps_then_the_cpu(backends, cuda, mps, world_size, picked) -> None:
    backends(cuda=cuda, mps=mps, world_size=world_size)
    assert runtime.device_kind("auto") == picked
    if picked != "cuda":  # resolving CUDA would ask a CUDA build for its current device
        assert runtime.resolve_device("auto") == torch.device(picked)


def test_mps_is_a_device_choice_of_every_command(backends) -> None:
    backends(mps=True)
    assert runtime.resolve_device("mps") == torch.device("mps")
    parser = build_parser()
    assert parser.parse_args(["mnist", "--device", "mps"]).device == "mps"
    assert parser.parse_args(["dogs", "--device", "mps"]).device == "mps"
    assert parser.parse_args(["evaluate", "run", "--data", "d", "--device", "mps"]).device == "mps"
    assert parser.parse_args(["export", "run", "--data", "d", "--device", "mps"]).device == "mps"


def _one_line(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aelab: error: "), lines
    return lines[0]


def test_mps_asked_for_where_there_is_none(backends, tmp_path, capsys) -> None:
    backends(mps=False)
    line = _one_line(["mnist", "--out", str(tmp_path / "run"), "--device", "mps", "--no-download"], capsys)
    assert "--device mps was asked for, but Apple's GPU (MPS) is not available here (use --device cpu)" in line
    assert not (tmp_path / "run").exists()


def test_worker_processes_and_ddp_stay_cpu_and_cuda_only(backends, tmp_path, capsys) -> None:
    backends(mps=True)
    out = str(tmp_path / "run")
    line = _one_line(["mnist", "--out", out, "--device", "mps", "--jobs", "2"], capsys)
    assert "--jobs 2 trains in CPU worker processes, which Apple's GPU (MPS) cannot share" in line
    line = _one_line(["mnist", "--out", out, "--jobs", "3"], capsys)  # auto picks MPS here
    assert "--jobs 3 trains in CPU worker processes" in line
    with pytest.raises(aelab.UserError, match=r"--jobs 2 trains in CPU worker processes"):
        aelab.mnist(out=out, device="mps", jobs=2)  # the same check from Python
    assert not (tmp_path / "run").exists()

    backends(mps=True, world_size=2)
    line = _one_line(["dogs", "--out", out, "--device", "mps"], capsys)
    assert "torchrun (DDP) runs on CPUs (gloo) and CUDA GPUs (nccl), not on Apple's GPU (MPS)" in line
    with pytest.raises(aelab.UserError, match="torchrun"):
        runtime.init_distributed("mps")  # a session built by hand is refused too

    backends(mps=True)
    from aelab.studies.config import config_from_settings
    from aelab.studies.mnist import REGISTRY, MnistConfig

    for jobs in (0, 1):  # automatic or one process: nothing to refuse
        assert config_from_settings(MnistConfig, REGISTRY, "mnist", {"device": "mps", "jobs": jobs}).jobs == jobs
    assert config_from_settings(MnistConfig, REGISTRY, "mnist", {"device": "cpu", "jobs": 2}).jobs == 2


def _train_config(amp: bool = True, cpu_amp: bool = True) -> SimpleNamespace:
    return SimpleNamespace(amp=amp, cpu_amp=cpu_amp)


def test_bf16_autocast_on_mps_only_where_the_build_and_macos_run_it(backends) -> None:
    mps = torch.device("mps")
    backends(mps=True, mps_bf16=False)
    assert not use_amp(_train_config(), mps)  # fp32 otherwise
    backends(mps=True, mps_bf16=True)
    assert use_amp(_train_config(), mps)
    assert not use_amp(_train_config(cpu_amp=False), mps)  # --precision fp32
    assert use_amp(_train_config(), torch.device("cuda"))
    assert not use_amp(_train_config(amp=False, cpu_amp=False), torch.device("cuda"))  # --precision fp32 on a GPU


def test_precision_fp32_is_fp32_on_every_device(tmp_path) -> None:
    """``--precision fp32`` turns autocast off for CUDA too (it used to stay on there)."""
    from aelab.studies.mnist import MnistConfig
    from aelab.studies.run import StudyRun

    for precision, on in (("fp32", False), ("auto", True)):
        run = SimpleNamespace(cfg=MnistConfig(precision=precision))
        cfg = StudyRun.base_train_config.func(run)
        assert (cfg.amp, cfg.cpu_amp) == (on, on)
