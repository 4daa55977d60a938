"""The command line: each subcommand calls one public function; errors exit 2 with a message, before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
                 "bench families", "diffusers-taylorseer, diffusers-fbc"):
        assert word in out
    assert any(line.split()[:2] == ["tc-pade-reference", "tcpade"] for line in out.splitlines())  # a plugin's family


def test_mask_prints_static_plans(capsys):
    assert main(["mask", "taylorseer", "--steps", "20"]) == 0
    assert "###....#....#....#..  6 passes (3.33x)" in capsys.readouterr().out


def test_config_prints_resolved_toml(capsys):
    assert main(["config", "fora"]) == 0
    out = capsys.readouterr().out
    assert '[predictor]\nname = "noop"' in out and "interval = 3" in out


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
    (["--model", "sd-mnist"], "argument --model: invalid choice: 'sd-mnist'"),
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
    assert "torch not imported 2" in result.stdout and "cannot write there" in result.stderr


def test_bench_without_the_reference_package_says_what_to_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "padecache_reference" else real(name, *a))
    for argv in (["bench", "--out", str(tmp_path)], ["train-reference", "dit-mnist", "--data", "x.tgz"], ["train-classifier", "--data", "x"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "padecache-reference" in err and "pip install -e plugins/reference" in err


def test_errors_exit_2_with_a_message(capsys):
    assert main(["mask", "no-such-preset"]) == 2
    assert "unknown preset 'no-such-preset'" in capsys.readouterr().err


def test_report_writes_into_a_directory_and_reads_stored_results(tmp_path, capsys):
    from pathlib import Path

    stored = Path(__file__).resolve().parent / "data" / "results-v0.json"
    assert main(["report", str(stored), "--scores", "psnr,ssim", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("| model | steps | passes (×) | ours |") and "| tc-pade (ours) |" in text
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "no such results file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad.json")]) == 2
    assert "not a results.json file" in capsys.readouterr().err
