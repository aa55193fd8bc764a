#!/usr/bin/env bash
# Time-to-quality of the MNIST AE (the `ae` part) over batch size and learning rate, same epochs and schedule.
#   benchmarks/mnist_batch_sweep.sh [DATA] [OUT]   (one variant after another; prints one Markdown row each)
# Each row: batch, lr, seed, training seconds (train_log.csv), test BCE, PSNR and 5-NN accuracy (metrics.json).
set -euo pipefail
DATA=${1:-../shared/data/mnist}
OUT=${2:-/tmp/aelab-batch-sweep}
# batch:lr:seed[:epochs] (epochs default: the study's budget, 8 on full MNIST)
VARIANTS=${VARIANTS:-"128:3e-3:0 256:4.2e-3:0 512:6e-3:0 1024:8.5e-3:0 512:3e-3:0 1024:1.2e-2:0"}
echo "| batch | lr | seed | epochs | training (s) | test BCE | test PSNR (dB) | 5-NN acc. |"
echo "|---|---|---|---|---|---|---|---|"
for v in $VARIANTS; do
  IFS=: read -r batch lr seed epochs <<<"$v"
  dir="$OUT/b${batch}_lr${lr}_s${seed}_e${epochs:-budget}"
  aelab mnist --data "$DATA" --parts ae --batch-size "$batch" --lr "$lr" --seed "$seed" --out "$dir" --overwrite \
    ${epochs:+--epochs "$epochs"} >"$dir.log" 2>&1 || { echo "| $batch | $lr | $seed | ${epochs:-8} | failed: see $dir.log |"; continue; }
  python - "$dir" "$batch" "$lr" "$seed" <<'PY'
import csv, json, sys
d, batch, lr, seed = sys.argv[1:]
m = json.load(open(f"{d}/metrics.json"))["ae2d"]
rows = list(csv.DictReader(open(f"{d}/train_log.csv")))
secs = sum(float(r["seconds"]) for r in rows)
print(f"| {batch} | {lr} | {seed} | {len(rows)} | {secs:.0f} | {m['test_bce']:.4f} | {m['test_psnr']:.2f} | {m['knn5_acc']:.3f} |")
PY
done
