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
