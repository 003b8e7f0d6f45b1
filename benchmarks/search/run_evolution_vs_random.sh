#!/usr/bin/env bash
# Regularized evolution against random search at the same number of trials: the same space,
# budget per trial and parameter budget, no pruning (every trial trains its whole budget).
# Run with OMP_NUM_THREADS=1 (one thread).
set -euo pipefail
out=${1:-runs/bench-evolution}
for sampler in evolution random; do
  .venv/bin/python -m attnlab search --preset tiny --steps 30 --trials 16 --pruner none \
      --sampler "$sampler" --population 6 --tournament 2 --max-parameters 1000000 \
      --set eval-bytes=32768 sample-tokens=0 --study "$sampler" --out "$out/$sampler" --seed 1
done
