#!/usr/bin/env bash
# The 30-minute search on the default corpus at a fixed parameter budget (1M stack parameters,
# the `tiny` preset's scale), then its best settings against the `small` preset at equal
# training minutes. Run with OMP_NUM_THREADS=1 (one thread).
#   run_search_vs_small.sh [OUT] [SEARCH_MINUTES (30)] [MINUTES_EACH_AGAINST_SMALL (14)]
set -euo pipefail
out=${1:-runs/bench-search}
total=${2:-30}
each=${3:-14}
.venv/bin/python -m attnlab search --preset tiny --minutes 1 --trials 200 --total-minutes "$total" \
    --max-parameters 1000000 --set eval-bytes=32768 sample-tokens=0 \
    --study bench30 --out "$out" --seed 0
.venv/bin/python -m attnlab compare --minutes "$each" --out "$out-vs-small" \
    --variants "config=$out/report/best.yaml" "preset=small" \
    --set eval-every=250 sample-tokens=0 --json
