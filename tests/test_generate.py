"""``padecache generate`` on tiny pipelines saved with ``save_pretrained`` and loaded back offline."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from padecache.cli import main
from padecache.testing.pipelines import tiny_pipeline


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A pipeline directory per family, written once for the module."""
    dirs = {}
    for family in ("dit", "flux", "wan"):
        path = tmp_path_factory.mktemp(f"pipe-{family}")
        tiny_pipeline(family).save_pretrained(path)
        dirs[family] = path
    return dirs


def test_generate_images_with_compare(saved, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", "--pipeline", str(saved["flux"]), "--config", "tc-pade-fast", "--prompt", "a cat", "--steps", "8",
                 "--height", "16", "--width", "16", "--compare", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "block-stack passes for 8 steps" in text and "outside it" in text and "PSNR vs full compute" in text
    psnr = float(text.split("PSNR vs full compute ")[1].split(" dB")[0])
    assert math.isfinite(psnr) and psnr > 20  # a tiny random FLUX stays close to full compute
    image = Image.open(out / "image-0.png")
    side = Image.open(out / "compare-0.png")
    assert image.size == (16, 16) and side.size == (48, 16)  # full compute | padecache | |difference| x 10


def test_generate_class_labels_and_video_frames(saved, tmp_path, capsys):
    assert main(["generate", "--pipeline", str(saved["dit"]), "--labels", "1,2", "--steps", "6", "--out",
                 str(tmp_path / "dit"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "dit").iterdir()) == ["image-0.png", "image-1.png"]
    assert main(["generate", "--pipeline", str(saved["wan"]), "--prompt", "a cat", "--steps", "6", "--height", "16",
                 "--width", "16", "--frames", "5", "--out", str(tmp_path / "wan"), "--no-progress"]) == 0
    files = [p for p in (tmp_path / "wan").rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in files) or len([p for p in files if p.suffix == ".png"]) == 5
    assert "5 block-stack passes" not in capsys.readouterr().out  # the default preset skips some of the 6 steps


@pytest.mark.parametrize("args, message", [
    (["--pipeline", "nowhere", "--prompt", "x"], "neither a pipeline directory nor a bundled reference model|no such directory"),
    (["--pipeline", "dit-mnist"], "give --prompt .* or --labels"),
    (["--pipeline", "dit-mnist", "--labels", "1", "--config", "nope"], "unknown preset 'nope'"),
])
def test_generate_errors_before_any_work(args, message, capsys, tmp_path):
    assert main(["generate", *args, "--out", str(tmp_path / "o")]) == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_generate_needs_labels_for_a_class_conditional_pipeline(saved, capsys, tmp_path):
    assert main(["generate", "--pipeline", str(saved["dit"]), "--prompt", "a cat", "--out", str(tmp_path)]) == 2
    assert "is class-conditional: pass --labels" in capsys.readouterr().err
