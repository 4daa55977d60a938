"""The plugin example in CONTRIBUTING.md runs as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import padecache
import tiny

ROOT = Path(__file__).resolve().parents[1]


def test_contributing_plugin_example_works(dit_pipe):
    text = (ROOT / "CONTRIBUTING.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "class DampedReuse" in block)
    module = types.ModuleType("example_plugin")
    exec(compile(code, "CONTRIBUTING.md", "exec"), module.__dict__)
    padecache.register_plugin(module, name="example")
    try:
        assert padecache.get_registry().get("predictor", "damped-reuse").plugin == "example"
        padecache.apply(dit_pipe, "damped-reuse", predictor={"name": "damped-reuse", "factor": 0.8})
        try:
            tiny.run_dit(dit_pipe, steps=10)
            stats = padecache.stats(dit_pipe)
        finally:
            padecache.remove(dit_pipe)
    finally:
        padecache.unregister_plugin(module)
    assert stats.full_passes == 5 and stats.forecast_steps == 5  # budget speedup 2 at 10 steps


def test_the_plugin_walkthrough_in_docs_runs_and_passes_its_contract(tmp_path):
    """docs/plugins.md: the predictor and preset as written, registered, then the contract class as written."""
    import subprocess
    import sys

    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    plugin = next(b for b in blocks if "class Quadratic" in b)
    contract = next(b for b in blocks if "class TestQuadratic" in b)
    bench = next(b for b in blocks if "padecache_bench_families" in b)
    (tmp_path / "my_plugin.py").write_text(plugin + "\n" + bench)
    (tmp_path / "conftest.py").write_text(
        "import torch, padecache, my_plugin\n"
        "torch.set_num_threads(1)\n"
        "padecache.register_plugin(my_plugin, name='myforecaster')\n"
    )
    (tmp_path / "test_contract.py").write_text(contract)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "defaults or registered",
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_the_readme_lists_every_supported_family():
    from padecache.adapters.families import FAMILIES, supported_models_markdown

    readme = (ROOT / "README.md").read_text()
    assert supported_models_markdown() in readme, "regenerate the README's table: padecache.adapters.families.supported_models_markdown()"
    assert len(FAMILIES) >= 28


def test_readme_commands_are_the_ci_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    fence = readme.index("```bash")
    install, tests = readme[fence + 1], readme[fence + 2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install torch==2.13.0" in install and "padecache bench" in install and tests.endswith("python -m pytest")
    for package in ("plugins/tcpade", "plugins/forecasters", "plugins/reference"):
        assert f"-e {package}" in install and f"-e {package}" in ci
    extras = re.compile(r'-e "\.\[([a-z,]+)\]"')
    assert extras.findall(install) == extras.findall(ci) == ["bench,dev,ray"], "the README installs other extras than CI"


def test_the_readme_snippet_without_a_hub_runs_as_written(capsys):
    code = next(b for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S) if "load_reference" in b)
    exec(compile(code, "README.md", "exec"), {})
    passes, psnr = capsys.readouterr().out.split()[:2]
    assert passes == "7.0" and float(psnr) > 35  # tc-pade-fast stays close to full compute on the trained model


def test_the_readme_results_come_from_the_committed_results_files():
    """The README's headline rows are the ones `padecache report` renders from docs/results (no hand-typed numbers)."""
    from padecache.bench.records import load_records
    from padecache.bench.report import headline_markdown

    records = load_records([ROOT / "docs" / "results" / "dit-mnist", ROOT / "docs" / "results" / "flux-mnist"])
    rendered = headline_markdown(records, "tc-pade", [2.5, 10 / 3, 4, 5, 6], every_point=True).splitlines()
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(("| dit-mnist |", "| flux-mnist |"))]
    assert len(readme) == 30 and all(line in rendered for line in readme)
    lead = next(line for line in rendered if line.startswith("Ours leads"))
    lead_by_1, points, ahead = re.search(r"at least 1 at (\d+) of (\d+) points, is ahead at (\d+)", lead).groups()
    text = " ".join((ROOT / "README.md").read_text().split())
    assert f"at least 1 dB at {lead_by_1} of {points} points and is ahead at {ahead}" in text
