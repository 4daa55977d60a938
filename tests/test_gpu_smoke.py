"""``benchmarks/gpu_pipelines.py --smoke``: the GPU benchmark's code, run on the CPU in seconds.

The script runs in a subprocess, as it does on the GPU machine, with ``--compile`` (dynamo's ``eager`` backend in
smoke mode: the same tracing, graph breaks and guards as inductor, without generating kernels), into a temporary
directory.  Its JSON must hold a row per (model, method, mode), each measured or, for a peer, with its error
recorded; every method must spend exactly the passes of padecache's plan; every number must be finite; and
the Markdown report must be written.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_pipelines.py"
MODELS = ("flux", "wan", "dit")
MODES = ("eager", "compile")
PEERS = ("diffusers-taylorseer", "diffusers-magcache", "cache-dit")


def _script():
    spec = importlib.util.spec_from_file_location("gpu_pipelines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gp = _script()
PADECACHE = dict(gp.PADECACHE_METHODS)
METHODS = ("full", *PADECACHE, *PEERS)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-smoke")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--smoke", "--compile"], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data = json.loads((out / gp.JSON_NAME).read_text())
    return out, data, done.stdout, time.perf_counter() - t0


def _rows(data):
    return {(r["model"], r["method"], r["mode"]): r for r in data["rows"]}


def test_a_row_per_model_method_and_mode(smoke):
    _, data, _, _ = smoke
    keys = [(r["model"], r["method"], r["mode"]) for r in data["rows"]]
    assert len(keys) == len(set(keys)), "a (model, method, mode) row appears twice"
    assert set(keys) == {(m, x, mode) for m in MODELS for x in METHODS for mode in MODES}
    meta = data["meta"]
    for field in ("device", "torch", "diffusers", "padecache", "steps", "dtype"):
        assert meta.get(field), field
    assert meta["smoke"] and meta["dtype"] == "float32"


def test_every_row_is_measured_or_a_recorded_peer_error(smoke):
    _, data, _, _ = smoke
    for r in data["rows"]:
        if r["status"] == "ok":
            continue
        where = (r["model"], r["method"], r["mode"])
        assert r["kind"] == "peer" and r["status"] in ("error", "missing"), f"{where}: {r['status']}: {r.get('error')}"
        assert r.get("error"), f"{where}: a failing peer must say why"
    # padecache and full compute run everywhere; cache-dit may be absent, diffusers' hooks may not
    for r in data["rows"]:
        if r["method"] != "cache-dit":
            assert r["status"] == "ok", (r["model"], r["method"], r["mode"], r.get("error"))


def test_pass_counts_equal_padecache_plan(smoke):
    _, data, _, _ = smoke
    steps = data["meta"]["steps"]
    for (model, method, mode), r in _rows(data).items():
        if r["status"] != "ok":
            continue
        where = f"{model} {method} ({mode})"
        assert r["calls_per_step"] == (2 if model == "wan" else 1), where
        if method in ("full", "padecache-none"):
            assert r["passes"] == r["passes_counted"] == r["computed_steps"] == steps, where
            assert r["pass_speedup"] == 1.0, where
            continue
        plan = gp.plan_mask(PADECACHE[method if method in PADECACHE else r["target"]], steps)
        assert r["plan_passes"] == sum(plan) and r["plan_mask"] == gp._mask_str(plan), where
        assert r["computed_steps"] == sum(plan), f"{where}: {r['counted_mask']} vs the plan {r['plan_mask']}"
        assert r["schedule_ok"] is True, f"{where}: ran {r['counted_mask']}, its schedule is {r['expected_mask']}"
        if method in PADECACHE:
            # padecache's own count, the blocks that really ran, and its plan agree
            assert r["passes"] == r["passes_counted"] == sum(plan), where
            assert r["counted_mask"] == r["planned_mask"] == r["plan_mask"], where
            assert r["fallbacks"] == 0 and r["stats_total_steps"] == steps, where
        elif method == "cache-dit":
            # the same steps as padecache's plan; its first block also runs on the others (counted)
            assert r["counted_mask"] == r["plan_mask"], where
            blocks = r["blocks_per_pass"]
            assert r["passes_counted"] == pytest.approx(sum(plan) + (steps - sum(plan)) / blocks), where
        else:
            assert r["passes_counted"] == sum(plan), where
        assert r["pass_speedup"] == pytest.approx(steps / r["passes"]), where


def test_numbers_are_finite(smoke):
    _, data, _, _ = smoke
    for r in data["rows"]:
        if r["status"] != "ok":
            continue
        where = (r["model"], r["method"], r["mode"])
        for field in ("wall_s", "wall_speedup", "pass_speedup", "wall_over_pass", "passes", "first_run_s"):
            assert isinstance(r[field], (int, float)) and math.isfinite(r[field]) and r[field] > 0, (where, field, r[field])
        assert r["walls"] and all(math.isfinite(w) and w > 0 for w in r["walls"]), where
        assert r["output_finite"] is True, where
        assert math.isfinite(r["call_ms_computed"]), where
        if r["method"] not in ("full", "padecache-none"):  # these never forecast
            assert math.isfinite(r["forecast_cost"]) and r["forecast_cost"] > 0, where
        if r["kind"] == "padecache":
            assert math.isfinite(r["cache_mb"]) and r["cache_mb"] >= 0, where
        if r["mode"] == "compile":
            assert set(r["dynamo"]) == {"graphs_warmup", "graphs_timed", "graph_breaks", "recompiles"}, where
        if r.get("suspect"):  # one repeat on a shared CPU: a rejected timing is possible, and must stay well-formed
            assert r["wall_speedup"] > r["pass_speedup"], where


def test_every_method_is_removed_cleanly(smoke):
    _, data, _, _ = smoke
    for model in MODELS:
        full = _rows(data)[(model, "full", "eager")]
        if "rel_l2_again" in full:  # full compute after every other method gives the same latents again
            assert full["rel_l2_again"] == 0.0, model


def test_markdown_report(smoke):
    out, data, stdout, _ = smoke
    md = (out / gp.MD_NAME).read_text()
    assert data["meta"]["device"] in md.splitlines()[0]
    for model in MODELS:
        label = data["meta"]["models_info"][model]["label"]
        assert f"## {label}: {data['meta']['device']}" in md
    header = "| method | mode | passes | pass × | wall s | wall × | wall/pass | forecast cost | peak GB | cache MB |"
    assert md.count(header) == len(MODELS)
    table_rows = [line for line in md.splitlines() if line.startswith("| ") and "|---" not in line and line != header]
    assert len(table_rows) == len(data["rows"])
    # a progress line per run
    for r in data["rows"]:
        assert any(r["model"] in line and r["mode"] in line and f" {r['method']} " in line for line in stdout.splitlines()), r["method"]


def test_smoke_is_quick(smoke):
    *_, seconds = smoke
    assert seconds < 120, f"the smoke run took {seconds:.0f} s"


@pytest.mark.parametrize("method", [m for m in PADECACHE if m != "padecache-none"])
def test_peers_reach_every_plan_of_the_gpu_run(method):
    """At 20 steps, diffusers' TaylorSeer and MagCache can be set to exactly the passes of each padecache plan."""
    plan = gp.plan_mask(PADECACHE[method], 20)
    for schedule in (gp.taylorseer_schedule, gp.magcache_schedule):
        found = schedule(20, sum(plan))
        assert found is not None and sum(found[-1]) == sum(plan), (schedule.__name__, sum(plan))
    retention, max_skip, mask = gp.magcache_schedule(20, sum(plan))
    assert mask[:retention] == [True] * retention


def test_a_spent_budget_skips_and_still_writes(tmp_path):
    assert gp.main([str(tmp_path), "--smoke", "--models", "dit", "--budget", "0.000001"]) == 0
    data = json.loads((tmp_path / gp.JSON_NAME).read_text())
    assert {r["status"] for r in data["rows"]} == {"skipped"}
    assert len(data["rows"]) == len(METHODS)
    assert "skipped: time budget spent" in (tmp_path / gp.MD_NAME).read_text()
