#!/usr/bin/env bash
# The training loop's levers on the dogs default (JSCC layout, the study's lr 1e-3 and clipping), each job the
# plain AE at equal wall time (WALL seconds of training, images per second calibrated per job), then its held-out
# PSNR on a clean channel; the free levers also at equal images (benchmarks/RESULTS.md, issue 24). Run it on an
# otherwise idle machine:
#   DATA=../shared/data/dogs WALL=420 bash benchmarks/dogs_levers.sh OUT.jsonl
set -uo pipefail
OUT_FILE=${1:-dogs_levers.jsonl}
DATA=${DATA:-../shared/data/dogs}
WALL=${WALL:-420}
BASE="arch=jscc;lr=1e-3;clip=1;wall=$WALL"
J=()
add() { J+=(--job "$BASE;$1"); }
add ""                      # the loop as it was: batch 64, warm-up + cosine, no flips, no EMA
add "flip=1"
add "ema=0.995"
add "flip=1;ema=0.995"
add "batch=32"
add "schedule=constant"
add "compile=1"
add "seed=1"                # the seed spread of the first job: the jitter beside the levers' differences
# the levers that cost nothing per image, again at exactly IMAGES images each: the calibration's own noise
# (a few percent of images either way) out of their comparison
IMAGES=${IMAGES:-9600}
for levers in "" "flip=1" "ema=0.995" "flip=1;ema=0.995" "seed=1" "seed=1;ema=0.995"; do
    J+=(--job "arch=jscc;lr=1e-3;clip=1;images=$IMAGES${levers:+;$levers}")
done
# PROCS jobs at once, each on OMP threads of its own (default 2 x 1 thread: a constant load on 2 cores)
PROCS=${PROCS:-2}
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python "$(dirname "$0")/dogs_arch.py" --data "$DATA" --procs "$PROCS" \
    --json "$OUT_FILE" "${J[@]}"
