#!/usr/bin/env bash
# The architecture and noisy-training sweep behind the dogs study's defaults (benchmarks/RESULTS.md, issue 10).
# Every job trains at the study's batch 64 and warm-up + cosine schedule; budgets are training images.
# Longest jobs first, so a time limit cuts the short ones. Usage:
#   DATA=../shared/data/dogs DEVICE=cuda PROCS=8 bash benchmarks/dogs_sweep.sh OUT.jsonl
set -uo pipefail
OUT_FILE=${1:-dogs_sweep.jsonl}
DATA=${DATA:-../shared/data/dogs}
J=()
add() { J+=(--job "$1"); }
# more images: the cheaper layouts at equal CPU time, and the lab's layout with three times its budget
add "arch=jscc:32,64,128/1,2;ae=288000;clip=1;noisy=ft:12000"
add "arch=lab;ae=216000;noisy=ft:12000"
add "arch=jscc:32,64,128/0,1;ae=216000;clip=1;noisy=ft:12000"
add "arch=jscc:24,48,96/1,2;ae=216000;clip=1;noisy=ft:12000"
add "arch=jscc:32,64,128/1,2;ae=144000;clip=1;noisy=ft:12000"
# layouts at the lab's budget (72k images for the AE, 12k per noisy fine-tune)
add "arch=lab;ae=72000;noisy=ft:12000"
add "arch=jscc:32,64,128/1,2;ae=72000;clip=1;noisy=ft:12000"
add "arch=jscc:32,64,128/1,2;ae=72000;noisy=ft:12000"
add "arch=jscc:48,96,192/1,2;ae=72000;clip=1;noisy=ft:12000"
add "arch=jscc:32,64,128/0,2;ae=72000;clip=1;noisy=ft:12000"
add "arch=jscc:32,64,192/0,3;ae=72000;clip=1;noisy=ft:12000"
# learning rate
add "arch=jscc:32,64,128/1,2;ae=72000;lr=1e-3;clip=1;noisy=ft:12000"
add "arch=jscc:32,64,128/1,2;ae=72000;lr=4e-3;clip=1;noisy=ft:12000"
# how to make the noisy models
add "arch=jscc:32,64,128/1,2;ae=72000;clip=1;noisy=ft:24000"
add "arch=jscc:32,64,128/1,2;ae=72000;clip=1;noisy=adapt:36000"
add "arch=jscc:32,64,128/1,2;ae=72000;clip=1;noisy=adapt:36000:5,15"
add "arch=jscc:32,64,128/1,2;ae=72000;clip=1;noisy=adapt_ft:24000:4000"
add "arch=jscc:32,64,128/1,2;clip=1;noisy=scratch:72000"
add "arch=lab;ae=72000;noisy=adapt:36000"
"${PYTHON:-python}" benchmarks/dogs_arch.py --data "$DATA" --device "${DEVICE:-cpu}" --procs "${PROCS:-1}" --json "$OUT_FILE" "${J[@]}"
