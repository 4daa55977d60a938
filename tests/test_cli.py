"""The command line: each subcommand calls one public function; errors exit 2 with a message."""

from __future__ import annotations

import pytest

from padecache.cli import main


def test_list(capsys):
    assert main(["list", "--verbose"]) == 0
    out = capsys.readouterr().out
    for word in ("predictors:", "policies:", "stage detectors:", "presets:", "adapters:", "taylor", "budget", "fraction", "order = 1"):
        assert word in out


def test_mask_prints_static_plans(capsys):
    assert main(["mask", "taylorseer", "--steps", "20"]) == 0
    assert "###....#....#....#..  6 passes (3.33x)" in capsys.readouterr().out


def test_config_prints_resolved_toml(capsys):
    assert main(["config", "fora"]) == 0
    out = capsys.readouterr().out
    assert '[predictor]\nname = "noop"' in out and "interval = 3" in out


def test_errors_exit_2_with_a_message(capsys):
    assert main(["mask", "no-such-preset"]) == 2
    assert "unknown preset 'no-such-preset'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--model", "sd-mnist"])
