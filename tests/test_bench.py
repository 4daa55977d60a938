"""`padecache bench --quick` on a tiny subset: the four files exist and results.json follows the contract."""

from __future__ import annotations

import json
import math

import pytest

from padecache.bench import BenchOptions, run_bench, write_results
from padecache.bench.report import machine_meta, summary
from padecache.bench.runner import RECORD_FIELDS
from padecache.cli import main


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    options = BenchOptions.quick_defaults(samples=4, methods=("reuse", "taylor-1", "tc-pade", "tc-pade-fast", "diffusers-taylorseer", "cache-dit"))
    result = run_bench(options, progress=False)
    write_results(result, out, machine_meta(options), options.targets)
    return out, result


def test_writes_the_four_files(quick_results):
    out, _ = quick_results
    for name in ("results.json", "results.md", "pareto.png", "grid.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_records_follow_the_schema(quick_results):
    out, result = quick_results
    records = json.loads((out / "results.json").read_text())
    assert isinstance(records, list) and len(records) == len(result.records)
    methods = {r["method"] for r in records}
    assert {"full", "reuse", "taylor-1", "tc-pade", "tc-pade-fast"} <= methods
    for r in records:
        assert set(RECORD_FIELDS) <= set(r), r["method"]
        if r["status"] != "ok":
            assert r["status"].startswith(("skipped", "failed")) and r["method"].startswith(("cache-dit", "diffusers"))
            continue
        assert r["model"] == "dit-mnist" and r["steps"] == 20 and r["samples"] == 4 and r["seed"] == 0
        assert isinstance(r["config"], dict)
        assert r["pass_speedup"] == pytest.approx(20 / r["full_passes"], rel=1e-3)
        assert r["wall_s"] > 0 and r["wall_speedup"] > 0
        assert 0 <= r["class_acc"] <= 1 and r["fid_cls"] >= 0 and r["fid"] is None
        assert 0 < r["ssim"] <= 1 and r["rel_l2"] >= 0
    full = next(r for r in records if r["method"] == "full")
    assert full["psnr"] is None and full["ssim"] == 1.0 and full["full_passes"] == 20  # psnr inf -> null in JSON
    assert full["fid_cls_full"] == pytest.approx(0.0, abs=1e-2)  # a set against itself
    assert all(r["fid_cls_full"] > 0.01 for r in records if r["status"] == "ok" and r["psnr"] is not None and r["psnr"] < 40)
    ours = next(r for r in records if r["method"] == "taylor-1")
    assert ours["full_passes"] == 8 and ours["pass_speedup"] == 2.5 and math.isfinite(ours["psnr"])


def test_equal_compute_summary_names_the_groups(quick_results):
    _, result = quick_results
    (entry,) = summary(result.records, [2.5])
    assert entry["passes"] == 8 and entry["ours"]["method"].startswith(("tc-pade", "pade"))
    assert entry["taylorseer"] is not None and "margin_vs_taylorseer_db" in entry


def test_cli_quick_run(tmp_path, capsys):
    assert main(["bench", "--quick", "--samples", "2", "--methods", "reuse", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (tmp_path / "results.json").exists()


def test_report_renders_the_readme_block_from_results_files(quick_results, tmp_path, capsys):
    out, result = quick_results
    md = tmp_path / "block.md"
    assert main(["report", str(out / "results.json"), "--out", str(md)]) == 0
    text = md.read_text()
    (entry,) = summary(result.records, [2.5])
    headline = next(line for line in text.splitlines() if line.startswith("| dit-mnist | 20 | 8 (2.50×)"))
    assert f"| {entry['ours']['method']} | {entry['ours']['psnr']:.2f} |" in headline
    assert "**20 steps, at most 8 passes (2.50×)**" in text and "| *full compute* |" in text
    # one row per budget table it fits: the quick run spends 8 passes, within 2.5x and not within 3.33x
    assert sum(line.startswith("| taylor-1 |") for line in text.splitlines()) == 1
    assert "**20 steps, at most 6 passes (3.33×)**" in text
