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
                 "--height", "16", "--width", "16", "--compare", "--out", str(out), "--no-progress", "--set", "policy.full_passes=3"])
    assert code == 0
    text = capsys.readouterr().out
    assert "3 block-stack passes for 8 steps" in text and "outside it" in text and "PSNR vs full compute" in text
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
    (["--pipeline", "dit-mnist", "--labels", "1", "--device", "bogus"], "--device 'bogus': Expected one of cpu"),
    (["--pipeline", "dit-mnist", "--labels", "1", "--device", "cuda:0"], "has no cuda device|runs on the CPU only"),
    (["--pipeline", "dit-mnist", "--labels", "1", "--guidance", "nan"], "a guidance scale is a finite number >= 0"),
    (["--pipeline", "dit-mnist", "--labels", "1", "--seed", "99999999999999999999"], "must be below 2\\*\\*63"),
])
def test_generate_errors_before_any_work(args, message, capsys, tmp_path):
    try:
        code = main(["generate", *args, "--out", str(tmp_path / "o")])
    except SystemExit as stop:  # argparse's own: a value of the wrong kind
        code = stop.code
    assert code == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()  # a refused run leaves no empty output directory behind


def test_generate_needs_labels_for_a_class_conditional_pipeline(saved, capsys, tmp_path):
    assert main(["generate", "--pipeline", str(saved["dit"]), "--prompt", "a cat", "--out", str(tmp_path)]) == 2
    assert "is class-conditional: pass --labels" in capsys.readouterr().err


@pytest.mark.parametrize("family, args, message", [
    ("dit", ["--prompt", "a cat"], "DiTPipeline is class-conditional: pass --labels"),
    ("dit", ["--labels", "1", "--height", "16"], "DiTPipeline takes no --height"),
    ("flux", ["--prompt", "a cat", "--frames", "5"], "FluxPipeline takes no --frames"),
    ("flux", ["--labels", "1"], "FluxPipeline needs a --prompt"),
])
@pytest.mark.parametrize("many", [False, True])
def test_a_saved_pipeline_refuses_what_it_cannot_take_before_it_loads(saved, capsys, tmp_path, monkeypatch, family, args,
                                                                      message, many):
    import padecache.generate as g

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before its class refused the request")

    monkeypatch.setattr(g, "load_pipeline", no_loading)
    monkeypatch.setattr(g, "generate_share", no_loading)
    more = ["--seeds", "0,1"] if many else []
    assert main(["generate", "--pipeline", str(saved[family]), *args, *more, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# -- many samples: --seeds, --prompts-file ---------------------------------------------------------------------

def _pixels(path):
    import numpy as np

    return np.asarray(Image.open(path))


def test_many_samples_are_named_by_prompt_and_seed_and_each_is_its_own_generation(saved, tmp_path, capsys):
    import json

    import numpy as np

    many = tmp_path / "many"
    assert main(["generate", "--pipeline", str(saved["dit"]), "--labels", "1,2", "--seeds", "0-1,5", "--steps", "6",
                 "--out", str(many), "--no-progress"]) == 0
    names = sorted(p.name for p in many.iterdir())
    assert names == ["p000-s0000.png", "p000-s0001.png", "p000-s0005.png", "p001-s0000.png", "p001-s0001.png",
                     "p001-s0005.png", "summary.json"]
    # sample (label 2, seed 5) is exactly what a single generation of label 2 with seed 5 gives
    assert main(["generate", "--pipeline", str(saved["dit"]), "--labels", "2", "--seed", "5", "--steps", "6",
                 "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    assert np.array_equal(_pixels(many / "p001-s0005.png"), _pixels(tmp_path / "one" / "image-0.png"))
    summary = json.loads((many / "summary.json").read_text())
    assert [(s["prompt_index"], s["label"], s["seed"]) for s in summary["samples"]] == \
           [(0, 1, 0), (0, 1, 1), (0, 1, 5), (1, 2, 0), (1, 2, 1), (1, 2, 5)]
    assert all(s["steps"] == 6 and s["files"] == [f"p00{s['prompt_index']}-s000{s['seed']}.png"] and s["error"] is None
               for s in summary["samples"])
    totals = summary["totals"]
    assert totals["samples"] == 6 and totals["failed"] == 0 and totals["steps"] == 36 and not summary["distributed"]
    assert totals["full_passes"] == sum(s["full_passes"] for s in summary["samples"]) < 36
    assert "6 of 6 samples: " in capsys.readouterr().out


def test_a_prompts_file_gives_one_sample_per_prompt_and_seed_in_process_or_through_an_executor(saved, tmp_path):
    from padecache.cluster import InProcessExecutor
    from padecache.generate import generate_many

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\n  a dog  \n")
    assert main(["generate", "--pipeline", str(saved["flux"]), "--prompts-file", str(prompts), "--steps", "4", "--height", "16",
                 "--width", "16", "--out", str(tmp_path / "file"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "file").glob("*.png")) == ["p000-s0000.png", "p001-s0000.png"]
    result = generate_many(str(saved["flux"]), prompts=["a cat", "a dog"], seeds=[0], steps=4, height=16, width=16,
                           out=tmp_path / "executor", progress=False, executor=InProcessExecutor())
    assert result.cluster == "in-process" and not result.failed
    for name in ("p000-s0000.png", "p001-s0000.png"):
        assert (tmp_path / "file" / name).read_bytes() == (tmp_path / "executor" / name).read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--labels", "1", "--seeds", "3,3"], "seed 3 is given twice"),
    (["--labels", "1", "--seeds", "5-2"], "ranges low-high"),
    (["--labels", "1", "--seeds", "0", "--seed", "1"], "--seed .* or --seeds .*, not both"),
    (["--prompt", "a", "--prompts-file", "p.txt"], "--prompt or --prompts-file, not both"),
    (["--prompts-file", "nowhere.txt"], "--prompts-file nowhere.txt: cannot read it"),
])
def test_many_sample_arguments_are_checked_before_any_work(args, message, saved, capsys, tmp_path):
    import re

    try:
        code = main(["generate", "--pipeline", str(saved["dit"]), *args, "--out", str(tmp_path / "o")])
    except SystemExit as exit:  # a malformed value: argparse's usage error
        code = exit.code
    assert code == 2 and re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_what_the_pipeline_itself_refuses_is_said_with_the_request_not_a_traceback(saved, capsys, tmp_path):
    """A class label the model does not have fails inside diffusers (IndexError): the command says which pipeline
    refused which request; a library caller still catches the original type, chained as the cause."""
    from padecache.errors import PipelineError
    from padecache.generate import generate

    assert main(["generate", "--pipeline", str(saved["dit"]), "--labels", "5000", "--steps", "2", "--no-progress",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "DiTPipeline raised IndexError on this request (class_labels=[5000]" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(IndexError) as raised:
        generate(str(saved["dit"]), "fora", labels=[5000], steps=2, progress=False)
    assert isinstance(raised.value, PipelineError) and isinstance(raised.value.__cause__, IndexError)


def test_a_prompts_file_that_is_not_utf8_is_named(saved, capsys, tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\xfe\xff\x00 a cat\n")
    assert main(["generate", "--pipeline", str(saved["flux"]), "--prompts-file", str(tmp_path / "bin.txt"),
                 "--out", str(tmp_path / "o")]) == 2
    assert f"--prompts-file {tmp_path / 'bin.txt'}: not a UTF-8 text file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# -- what a new user gets wrong: said clearly, before any work --------------------------------------------------

@pytest.mark.parametrize("index, message", [
    ("{not json", "model_index.json: not a valid model_index.json"),
    ('["a list"]', "not a pipeline index (a JSON object with `_class_name`"),
    ('{"_class_name": "DiTPipeline", "transformer": ["diffusers", "DiTTransformer2DModel"]}', "diffusers could not load this pipeline"),
])
def test_a_broken_pipeline_directory_is_a_clear_error_without_a_traceback(tmp_path, capsys, index, message):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text(index)
    assert main(["generate", "--pipeline", str(tmp_path / "pipe"), "--labels", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith("padecache generate: error: ")
    assert message in err.splitlines()[-1] and "save_pretrained" in err


@pytest.mark.parametrize("flag", ["--height", "--width"])
def test_a_size_on_a_model_of_fixed_size_is_refused(tmp_path, capsys, flag):
    assert main(["generate", "--pipeline", "dit-mnist", "--labels", "1", flag, "32", "--steps", "4", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"dit-mnist takes no {flag}" in err and "fixed size" in err
    assert not list(tmp_path.glob("*.png"))


def test_a_reference_model_generates_through_its_registered_loader(tmp_path, capsys):
    assert main(["generate", "--pipeline", "dit-mnist", "--labels", "3,1", "--steps", "6", "--config", "tc-pade-fast",
                 "--compare", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "block-stack passes for 6 steps" in capsys.readouterr().out
    assert Image.open(tmp_path / "image-1.png").size == (28, 28) and Image.open(tmp_path / "compare-1.png").size == (84, 28)
    assert main(["generate", "--pipeline", "dit-mnist", "--prompt", "a three", "--out", str(tmp_path)]) == 2
    assert "dit-mnist is class-conditional: pass --labels" in capsys.readouterr().err
