"""A tiny run of benchmarks/bench.py on generated data: every number it reports is there and sane."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402

MODEL_KEYS = {
    "label", "data", "aelab_batch", "channels_last", "flops_per_sample", "seed_samples_per_s",
    "aelab_samples_per_s", "speedup_vs_seed", "aelab_gflops", "seed_gflops", "aelab_fraction_of_gemm",
    "aelab_fraction_of_same_precision_gemm", "data_share", "seed_data_share", "bf16_autocast",
}  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    root = tmp_path_factory.mktemp("bench")
    out = root / "bench.json"
    argv = [
        "--seconds", "0.3", "--rounds", "1", "--warmup", "1", "--device", "cpu", "--data", str(root / "absent"),
        "--mnist-batch", "32", "--dogs-batch", "4", "--seed-batch", "4", "--photos", "16", "--baseline-samples", "256", "--held-out", "200", "--json", str(out),
        "--sustained-epochs", "0.001", "--sustained-steps", "4", "--windows", "2",
    ]  # fmt: skip
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        returned = bench.main(argv)
    return returned, out, buf.getvalue()


@pytest.mark.slow  # one tiny benchmark run: ~8 s on a quiet 2-core CPU
def test_json_has_every_key(result: tuple[dict, Path, str]) -> None:
    returned, out, _ = result
    written = json.loads(out.read_text())
    assert written["models"].keys() == {"mnist", "dogs", "dogs_jscc"}
    assert {"date", "command", "machine", "settings", "gemm_gflops", "gemm_reference", "rounds"} <= written.keys()
    machine = written["machine"]
    assert {"name", "cpu_count", "torch_threads", "loadavg_before", "loadavg_after", "cpu_model"} <= machine.keys()
    assert machine["cpu_model"] and isinstance(machine["bf16_features"]["onednn_bf16"], bool)
    assert set(machine["bf16_features"]["flags"]) <= {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2"}
    assert written["gemm_gflops"] > 0.1
    ref = written["gemm_reference"]
    assert ref["runs"] == bench.GEMM_RUNS and ref["min"] <= ref["median"] <= ref["max"] and ref["spread"] >= 0
    assert machine["subnormals_flushed"] == bench.torch.set_flush_denormal(False)  # flushed where the CPU can
    for name, entry in written["models"].items():
        assert entry.keys() >= MODEL_KEYS, name
        for key in MODEL_KEYS - {"label", "data", "channels_last", "bf16_autocast"}:
            assert math.isfinite(entry[key]) and entry[key] > 0, (name, key)
        assert entry["aelab_samples_per_s"] == pytest.approx(returned["models"][name]["aelab_samples_per_s"])
        assert "generated" in entry["data"]
        assert 0 < entry["data_share"] < 1 and 0 < entry["seed_data_share"] < 1
        sus = entry["sustained"]
        assert len(sus["windows_samples_per_s"]) == 2 and sus["samples"] == sus["steps"] * entry["aelab_batch"]
        assert sus["drift"] == pytest.approx(sus["last_window_samples_per_s"] / sus["first_window_samples_per_s"])
    # MNIST: the requested passes over the training set (0.001 of 60,000 generated images at batch 32: 2 steps)
    assert written["models"]["mnist"]["sustained"]["steps"] == 2
    assert written["models"]["dogs"]["sustained"]["steps"] == 4
    assert written["models"]["dogs"]["aelab_batch"] == 4
    assert written["models"]["dogs"]["channels_last"] is True  # a conv model
    assert written["models"]["mnist"]["channels_last"] is False
    assert written["settings"]["seed_batch"] == 4
    ttl = written["models"]["mnist"]["time_to_baseline_loss"]
    assert ttl["baseline_samples"] == 256 and 0 < ttl["baseline_loss"] < 1 and ttl["seed_seconds"] > 0
    assert ttl["aelab_seconds"] > 0 and ttl["aelab_samples"] % 32 == 0 and ttl["speedup"] > 0
    assert ttl["reached"] == (ttl["aelab_loss"] <= ttl["baseline_loss"])
    assert "dogs" in written["models"] and "time_to_baseline_loss" not in written["models"]["dogs"]
    side = written["models"]["mnist"].get("side_by_side")
    if bench.usable_cores() > 1:  # one-thread copies side by side, as aelab mnist --jobs trains
        assert side["workers"] == bench.usable_cores() and side["samples_per_s"] > 0 and side["speedup_vs_seed"] > 0
        assert side["fraction_of_gemm"] > 0 and "side by side" in result[2]
    else:
        assert side is None


@pytest.mark.slow  # one tiny benchmark run: ~8 s on a quiet 2-core CPU
def test_flops_per_sample_match_the_layer_sizes(result: tuple[dict, Path, str]) -> None:
    """MLP 784-1024-512-128-2 and mirror: 2*in*out forward, twice that backward, no input grad for layer 1."""
    widths = [784, 1024, 512, 128, 2, 128, 512, 1024, 784]
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    expected = 6 * macs - 2 * 784 * 1024
    assert result[0]["models"]["mnist"]["flops_per_sample"] == pytest.approx(expected)
    # the dogs AE is dominated by its 3x3 convolutions: about a GFLOP per 64x64 photo per step
    assert 0.8e9 < result[0]["models"]["dogs"]["flops_per_sample"] < 1.4e9


@pytest.mark.slow  # one tiny benchmark run: ~8 s on a quiet 2-core CPU
def test_table_is_printed(result: tuple[dict, Path, str]) -> None:
    table = result[2]
    assert "fp32 GEMM 2048x2048" in table
    assert "MNIST MLP AE" in table and "dogs conv AE" in table and "dogs JSCC AE" in table
    assert "median of 3 warmed-up runs" in table and "drift" in table and "oneDNN bf16" in table
    assert "speedup" in table and "time to the seed loop's held-out loss" in table


def test_generated_photos_are_64px_jpegs(tmp_path: Path) -> None:
    from PIL import Image

    paths = bench.write_photos(tmp_path, 3)
    assert len(paths) == 3
    with Image.open(paths[0]) as img:
        assert img.format == "JPEG" and img.size == (64, 64)
    images, files = bench.decode_all(tmp_path)
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.uint8
    assert sorted(files) == sorted(paths)
