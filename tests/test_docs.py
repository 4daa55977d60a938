"""The plugin example in CONTRIBUTING.md runs as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def doc_contracts(tmp_path_factory):
    """The contract classes of docs/plugins.md (its predictor, policy and preset as written, registered) and of
    docs/adapters.md (its model family as written, registered), each in a folder of its own with the conftest a plugin
    author writes, run by one pytest process (each process imports torch and diffusers: seconds).  Returns the
    folders, that process, and every test's outcome (``{file::class::test: "passed" | "failed" | "skipped"}``)."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    root = tmp_path_factory.mktemp("doc-contracts")
    walkthrough, adapter = root / "walkthrough", root / "adapter"
    walkthrough.mkdir()
    adapter.mkdir()
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "plugins.md").read_text(), re.S)
    plugin = next(b for b in blocks if "class Quadratic" in b)
    policy = next(b for b in blocks if "class RelativeChange" in b)
    contract = next(b for b in blocks if "class TestQuadratic" in b)
    policy_contract = next(b for b in blocks if "class TestRelativeChange" in b)
    bench = next(b for b in blocks if "padecache_bench_families" in b)
    (walkthrough / "my_plugin.py").write_text(plugin + "\n" + policy + "\n" + bench)
    (walkthrough / "conftest.py").write_text(
        "import torch, padecache, my_plugin\n"
        "torch.set_num_threads(1)\n"
        "padecache.register_plugin(my_plugin, name='myforecaster')\n"
    )
    (walkthrough / "test_contract.py").write_text(contract + "\n" + policy_contract)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "adapters.md").read_text(), re.S)
    (adapter / "my_family.py").write_text(next(b for b in blocks if "class MixerModel" in b))
    (adapter / "use.py").write_text("import torch\ntorch.set_num_threads(1)\n" + next(b for b in blocks if "register_plugin(my_family" in b))
    (adapter / "test_mixer.py").write_text(next(b for b in blocks if "class TestMixer" in b))
    (adapter / "conftest.py").write_text(
        "import torch, padecache, my_family\ntorch.set_num_threads(1)\npadecache.register_plugin(my_family, name='mixer')\n")
    report = root / "report.xml"
    # the walkthrough's classes on their default configurations (and the listing), the adapter's whole class
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "defaults or registered or TestMixer",
                           f"--junitxml={report}", str(walkthrough), str(adapter)], capture_output=True, text=True, cwd=root, timeout=600)
    outcomes = {}
    if report.is_file():
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            outcomes[f"{case.get('classname')}::{case.get('name')}"] = {"error": "failed", "failure": "failed"}.get(outcome, outcome)
    return walkthrough, adapter, done, outcomes


def test_the_plugin_walkthrough_in_docs_runs_and_passes_its_contract(doc_contracts):
    """docs/plugins.md: the predictor and preset as written, registered, then the contract class as written."""
    _, _, done, outcomes = doc_contracts
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    mine = {k: v for k, v in outcomes.items() if k.startswith("walkthrough.test_contract.")}
    assert "passed" in mine.values(), outcomes
    assert not any("TestRelativeChange" in k and v == "failed" for k, v in mine.items())  # no failure of the policy either


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
    for package in ("plugins/tcpade", "plugins/forecasters", "plugins/inputaware", "plugins/reference"):
        assert f"-e {package}" in install and f"-e {package}" in ci
    extras = re.compile(r'-e "\.\[([a-z,]+)\]"')
    assert extras.findall(install) == extras.findall(ci) == ["bench,dev,ray"], "the README installs other extras than CI"


def test_the_readme_snippet_without_a_hub_runs_as_written(capsys):
    code = next(b for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S) if "load_reference" in b)
    exec(compile(code, "README.md", "exec"), {})
    passes, psnr = capsys.readouterr().out.split()[:2]
    assert passes == "7.0" and float(psnr) > 34  # tc-pade-fast stays close to full compute on the trained model


def test_the_readme_results_come_from_the_committed_results_files():
    """The README's headline rows are the ones `padecache report` renders from docs/results (no hand-typed numbers)."""
    from padecache.bench.records import load_records
    from padecache.bench.report import headline_markdown

    models = ("emoji-t2i", "dit-mnist", "flux-mnist")
    records = load_records([ROOT / "docs" / "results" / model for model in models])
    rendered = headline_markdown(records, "tc-pade", [2.5, 10 / 3, 4, 5, 6], every_point=True).splitlines()
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(tuple(f"| {m} |" for m in models))]
    assert len(readme) == 45 and all(line in rendered for line in readme)  # 3 models x 3 step counts x 5 budgets
    lead = next(line for line in rendered if line.startswith("Ours leads"))
    lead_by_1, points, ahead = re.search(r"at least 1 at (\d+) of (\d+) points, is ahead at (\d+)", lead).groups()
    text = " ".join((ROOT / "README.md").read_text().split())
    assert f"at least 1 dB at {lead_by_1} of {points} points and is ahead at {ahead}" in text


# -- the docs a plugin author reads ------------------------------------------------------------------------------

def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)}


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            resolved = (page.parent / file).resolve() if file else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
    assert (ROOT / "docs" / "adapters.md").is_file()


def test_the_adapter_guide_linked_from_the_error_runs_and_passes_its_contract(doc_contracts):
    import subprocess
    import sys

    from padecache.adapters import unsupported_message

    assert "docs/adapters.md" in unsupported_message(object(), ["x"])
    _, adapter, done, outcomes = doc_contracts
    used = subprocess.run([sys.executable, "use.py"], capture_output=True, text=True, cwd=adapter, timeout=300)
    assert used.returncode == 0 and used.stdout.strip().splitlines()[-1] == "7.0", used.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    mixer = {k: v for k, v in outcomes.items() if k.startswith("adapter.test_mixer.")}
    assert list(mixer.values()) == ["passed"] * 4, outcomes  # rows that disagree run apart too (its loop has 2)


def test_the_plugin_guide_lists_every_schedule_the_default_plan_and_every_hook():
    from padecache.bench.families import SCHEDULES, Family
    from padecache.plugins import HOOKS

    text = (ROOT / "docs" / "plugins.md").read_text()
    table = text.split("## 5. In the benchmark")[1].split("## 6.")[0]
    for name in SCHEDULES:
        assert f'| `"{name}"`' in table, name
    default = attrs_default(Family, "schedule")
    assert f'| `"{default}"` (**the default**)' in table
    example = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "padecache_bench_families" in b)
    assert f'"schedule": "{default}"' in example  # the example a reader copies runs on the default plan
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for hook in HOOKS:
        assert f"`{hook}`" in text and f"`{hook}`" in contributing, hook
    assert "class RelativeChange(CachePolicy)" in text and "class TestRelativeChange(PolicyContract)" in text


def attrs_default(cls, field: str):
    import attrs

    return next(f.default for f in attrs.fields(cls) if f.name == field)


def test_an_adapter_without_its_blocks_stream_name_says_which_block_and_what_to_set(tmp_path):
    """The guide's MixerModel with its `io` left out failed with "block called without `hidden_states`" alone."""
    import re
    import types

    import attrs
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    import padecache

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "adapters.md").read_text(), re.S)
    family = types.ModuleType("mixer_family_io")
    exec(next(b for b in blocks if "class MixerModel" in b), family.__dict__)  # noqa: S102 - the guide's own code
    broken = types.ModuleType("mixer_no_io")
    broken.padecache_adapters = padecache.hookimpl(lambda: [attrs.evolve(family.MIXER, name="mixer-no-io", io={})])
    padecache.register_plugin(broken, name="mixer-no-io")
    model, scheduler = family.MixerModel(), FlowMatchEulerDiscreteScheduler()
    try:
        padecache.apply(model, "tc-pade-fast", scheduler=scheduler)
        scheduler.set_timesteps(4)
        with pytest.raises(TypeError) as failure, torch.no_grad():
            model(torch.randn(1, 16, 4), scheduler.timesteps[:1])
        assert "MixerBlock was called without `hidden_states` (it takes x, temb)" in str(failure.value)
        assert "BlockIO(hidden='x')" in str(failure.value)
    finally:
        padecache.remove(model)
        padecache.unregister_plugin(broken)
