"""``benchmarks/merge_results.py --replace``: a part run with --targets replaces those targets of its methods only."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_replacing_part_replaces_its_targets_and_keeps_the_others(tmp_path):
    from padecache.bench.records import dump_records, load_records

    old = tmp_path / "sweep"
    old.mkdir()
    dump_records(load_records(ROOT / "tests" / "data" / "results-v0.json"), old / "results.json")  # today's format
    (old / "grid.png").write_bytes(b"")
    runs = json.loads((old / "results.json").read_text())
    part = tmp_path / "part"
    part.mkdir()
    rerun = [dict(r, scores={**r["scores"], "psnr": 99.0}) for r in runs if r["method"] == "tc-pade" and r["target"] == 4.0]
    full = [r for r in runs if r["kind"] == "reference"]
    assert len(rerun) == 1 and full
    (part / "results.json").write_text(json.dumps(full + rerun))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "merge_results.py"), str(old), str(old), str(part),
                           "--replace"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    merged = json.loads((old / "results.json").read_text())
    ours = {r["target"]: r["scores"]["psnr"] for r in merged if r["method"] == "tc-pade"}
    before = {r["target"]: r["scores"]["psnr"] for r in runs if r["method"] == "tc-pade"}
    assert ours[4.0] == 99.0 and all(ours[t] == before[t] for t in before if t != 4.0)  # the other targets kept
    assert len(merged) == len(runs) and sum(r["kind"] == "reference" for r in merged) == len(full)


def test_parts_on_other_seeds_are_refused(tmp_path):
    """Merging a part scored on other seeds (without --replace too) would put scores of other images in one table
    under one full-compute row: refused, naming the part."""
    from padecache.bench.records import dump_records, load_records

    first, other = tmp_path / "a", tmp_path / "b"
    for d in (first, other):
        d.mkdir()
        (d / "grid.png").write_bytes(b"")
    dump_records(load_records(ROOT / "tests" / "data" / "results-v0.json"), first / "results.json")
    runs = json.loads((first / "results.json").read_text())
    (other / "results.json").write_text(json.dumps([dict(r, seeds=[s + 999 for s in r["seeds"]]) for r in runs]))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "merge_results.py"), str(tmp_path / "out"), str(first),
                           str(other)], capture_output=True, text=True)
    assert done.returncode != 0 and f"{other}: runs" in done.stderr and "same model, seeds and samples" in done.stderr
    same = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "merge_results.py"), str(tmp_path / "out"), str(first),
                           str(first)], capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
