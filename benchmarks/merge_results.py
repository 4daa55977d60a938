"""Merge the results of one model's sweep run as several processes (one per step count) into one results directory.

Each ``padecache bench --full --steps S --out DIR-S`` run holds its own full-compute record and its methods' records
for its step count, exactly what a single ``--steps 20,28,50`` run writes for that count; merging concatenates them
in step order and renders ``results.md`` and ``pareto.png`` from the merged records (``grid.png`` is copied from
the first part: the grid shows the first step count's images).

    python benchmarks/merge_results.py docs/results/emoji-t2i /tmp/sweep/emoji-t2i-20 /tmp/sweep/emoji-t2i-28 ...
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    from padecache.bench.plots import pareto_plot
    from padecache.bench.records import dump_records, load_records
    from padecache.bench.report import markdown

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("parts", nargs="+")
    parser.add_argument("--ours", default="tc-pade")
    parser.add_argument("--targets", default="2.5,3.3333,4,5,6")
    args = parser.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    records = []
    for part in args.parts:
        records += load_records(Path(part) / "results.json")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_records(records, out / "results.json")
    (out / "results.md").write_text(markdown(records, ours=args.ours, targets=targets) + "\n")
    pareto_plot(records, out / "pareto.png", ours=args.ours, targets=targets)
    shutil.copyfile(Path(args.parts[0]) / "grid.png", out / "grid.png")
    print(f"wrote {out}: {len(records)} records from {len(args.parts)} runs")


if __name__ == "__main__":
    main()
