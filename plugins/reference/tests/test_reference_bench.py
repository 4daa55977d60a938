"""``padecache bench`` on the reference models: tiny runs (2 digits or prompts, 6 steps) through the command line."""

from __future__ import annotations

import json

import pytest

import padecache
from padecache.cli import main
from padecache_reference.bench import BenchOptions

TINY = ["--model", "dit-mnist", "--samples", "2", "--steps", "6", "--no-progress"]


def test_quick_run_writes_the_four_files_and_prints_the_headline(tmp_path, capsys):
    assert main(["bench", "--quick", *TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| dit-mnist | 6 | 2 (3.00×) | tc-pade |" in out  # 2.5x of 6 steps: 2 passes
    for name in ("results.json", "results.md", "pareto.png", "grid.png"):
        assert (tmp_path / name).stat().st_size > 0 and f"wrote {tmp_path / name}" in out
    records = json.loads((tmp_path / "results.json").read_text())
    methods = {r["method"] for r in records}
    # ours, first-order TaylorSeer on its own knobs, reuse, and TC-Padé as published (its plugin's families)
    assert methods == {"full", "tc-pade", "taylorseer-O1", "noop", "tc-pade-reference", "tc-pade-paper"}
    full = records[0]
    assert full["method"] == "full" and full["samples"] == 2 and full["scores"]["fid_cls_full"] == 0.0
    assert set(full["scores"]) == {"psnr", "ssim", "rel_l2", "class_acc", "fid_cls", "fid_cls_full"}
    assert {r["method"]: r["plugin"] for r in records if r["method"] in ("tc-pade", "noop")} == {"tc-pade": "tcpade", "noop": "padecache"}
    assert all(r["ours"] == (r["method"] == "tc-pade") for r in records)


class Contender:
    """A third-party plugin whose method is "ours" for this run."""

    __version__ = "2.0"

    @padecache.hookimpl
    def padecache_bench_families(self):
        return [{"name": "contender", "predictor": {"name": "linear"}, "schedule": "front-loaded"}]


def test_ours_from_a_plugin_registered_at_run_time_leads_the_headline(tmp_path, capsys):
    padecache.register_plugin(Contender(), name="contender-plugin")
    try:
        assert main(["bench", "--quick", *TINY, "--ours", "contender", "--out", str(tmp_path)]) == 0
    finally:
        padecache.unregister_plugin("contender-plugin")
    out = capsys.readouterr().out.splitlines()
    header = next(x for x in out if x.startswith("| model |"))
    cells = [c.strip() for c in next(x for x in out if x.startswith("| dit-mnist |")).split("|")]
    assert cells[4] == "contender" and cells[6] == "taylorseer-O1" and cells[8] == "noop"
    assert "published" not in header  # the contender's plugin declares no published form: no empty column
    records = json.loads((tmp_path / "results.json").read_text())
    contender = next(r for r in records if r["method"] == "contender")
    assert (contender["plugin"], contender["plugin_version"], contender["ours"]) == ("contender-plugin", "2.0", True)
    assert "tc-pade" not in {r["method"] for r in records}  # the TC-Padé families are not the comparison now


def test_bench_rejects_unknown_methods_before_loading_the_model(tmp_path, capsys):
    assert main(["bench", *TINY, "--methods", "noop,tc-padee", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'tc-padee'" in err and "did you mean 'tc-pade'" in err
    assert not (tmp_path / "results.json").exists()
    assert main(["bench", *TINY, "--ours", "", "--out", str(tmp_path)]) == 2
    assert "compares against ours" in capsys.readouterr().err


def test_bench_says_when_it_replaces_an_earlier_run_s_results(tmp_path, capsys):
    (tmp_path / "results.json").write_text("[]")
    assert main(["bench", "--quick", *TINY, "--methods", "noop", "--no-peers", "--out", str(tmp_path)]) == 0
    assert f"{tmp_path} holds an earlier run's results; this run replaces them" in capsys.readouterr().err
    assert json.loads((tmp_path / "results.json").read_text())  # replaced: the new run's records


def test_bench_refuses_more_digits_than_one_batch_holds_before_loading(tmp_path, capsys):
    assert main(["bench", "--quick", "--model", "flux-mnist", "--samples", "100000", "--out", str(tmp_path)]) == 2
    assert "ask for 1 to 1024 samples, got 100000" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_the_default_model_is_the_colour_text_to_image_one(tmp_path, capsys):
    assert main(["bench", "--quick", "--samples", "2", "--steps", "6", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| emoji-t2i | 6 | 2 (3.00×) | tc-pade |" in out
    records = json.loads((tmp_path / "results.json").read_text())
    full = records[0]
    assert full["samples"] == 2 and set(full["scores"]) == {"psnr", "ssim", "rel_l2", "cat_acc", "fid_cls", "fid_cls_full"}
    assert full["scores"]["fid_cls_full"] == 0.0 and full["scores"]["fid_cls"] > 0
    ours = next(r for r in records if r["method"] == "tc-pade")
    assert 15 < ours["scores"]["psnr"] < 60 and ours["passes"] == 2


def test_the_grid_titles_its_columns_with_the_prompts(tmp_path):
    from padecache.bench import ResultsDir, compare
    from padecache_reference import load_reference
    from padecache_reference.bench import PromptGenerator

    writer = ResultsDir(tmp_path)
    generate = PromptGenerator(["red apple", "sun"], steps=4)
    compare(load_reference("emoji-t2i"), generate, ["noop"], targets=(2.0,), repeats=0, out=writer, progress=False)
    assert writer.captions == ("red apple", "sun")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_scopes():
    key = BenchOptions.for_scope("key", ours="tc-pade")
    assert (key.model, key.samples, key.targets, key.steps) == ("emoji-t2i", 8, (2.5, 10 / 3), (20,))
    assert key.method_list() == ["tc-pade", "diffusers-taylorseer", "noop", "tc-pade-reference", "tc-pade-paper"]
    digits = BenchOptions.for_scope("key", ours="tc-pade", model="dit-mnist")
    assert digits.samples == 32
    assert BenchOptions.for_scope("full", model="emoji-t2i").samples == 64
    with pytest.raises(ValueError, match="ask for 1 to 64"):
        from padecache_reference.bench import _workload

        _workload(BenchOptions.for_scope("quick", samples=65))
    full = BenchOptions.for_scope("full", ours="tc-pade", samples=4)
    assert (full.samples, full.targets, full.steps) == (4, (2.5, 10 / 3, 4.0, 5.0, 6.0), (20, 28, 50))
    methods = full.method_list()
    families = [f.name for f, _, _ in __import__("padecache.bench", fromlist=["x"]).registered_families()]
    assert set(families) <= set(methods) and {"diffusers-taylorseer", "diffusers-fbc", "diffusers-magcache", "cache-dit"} <= set(methods)
    assert "none" not in methods and {"fora", "tc-pade-fast"} <= set(methods)  # presets that cache, as given
    with pytest.raises(ValueError, match="samples must be whole numbers >= 1"):
        BenchOptions.for_scope("quick", samples=0)
    with pytest.raises(ValueError, match="unknown reference model"):
        BenchOptions(model="sd-mnist")
