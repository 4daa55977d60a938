"""Merge the results of one model's sweep run as several processes (one per step count) into one results directory.

Each ``padecache bench --full --steps S --out DIR-S`` run holds its own full-compute record and its methods' records
for its step count, exactly what a single ``--steps 20,28,50`` run writes for that count; merging concatenates them
in step order and renders ``results.md`` and ``pareto.png`` from the merged records (``grid.png`` is copied from
the first part: the grid shows the first step count's images).

    python benchmarks/merge_results.py docs/results/emoji-t2i /tmp/sweep/emoji-t2i-20 /tmp/sweep/emoji-t2i-28 ...

``--replace`` brings a committed sweep up to date with methods added or changed since it ran: the first part is the
old sweep, each later part a ``--methods`` run on the same model, seeds and samples (its full-compute records are
dropped: full compute is the same computation); a later part's records replace the earlier parts' records of the
same methods, step counts and pass targets (a part run with ``--targets`` replaces those targets only).

    python benchmarks/merge_results.py docs/results/dit-mnist docs/results/dit-mnist /tmp/sweep/dit-mnist-new --replace
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
    parser.add_argument("--replace", action="store_true",
                        help="later parts replace the earlier parts' records of their methods (same model and seeds)")
    args = parser.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    records = []
    for i, part in enumerate(args.parts):
        new = load_records(Path(part) / "results.json")
        if i:  # scores of other seeds or samples are not scores of the same images: refuse to mix them
            new = [r for r in new if r.kind != "reference"] if args.replace else new
            _check_same_run(records, new, part)
        if args.replace and i:
            replaced = {(r.method, r.steps, r.target) for r in new}
            records = [r for r in records if (r.method, r.steps, r.target) not in replaced]
        records += new
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_records(records, out / "results.json")
    (out / "results.md").write_text(markdown(records, ours=args.ours, targets=targets) + "\n")
    pareto_plot(records, out / "pareto.png", ours=args.ours, targets=targets)
    if Path(args.parts[0]).resolve() != out.resolve():
        shutil.copyfile(Path(args.parts[0]) / "grid.png", out / "grid.png")
    print(f"wrote {out}: {len(records)} records from {len(args.parts)} runs")


def _check_same_run(old, new, part) -> None:
    """Every part must score the same model on the same seeds and samples, or its numbers are not comparable."""
    def key(r):
        return r.model, tuple(r.seeds), r.samples
    before = {key(r) for r in old if r.kind == "reference"}
    after = {key(r) for r in new}
    if not after <= before:
        raise SystemExit(f"{part}: runs {sorted(after - before)} match no full-compute run of the earlier parts "
                         f"{sorted(before)}: every part must use the same model, seeds and samples")


if __name__ == "__main__":
    main()
