"""torch.compile, regional and whole-model, with padecache applied before or after: the same images as eager,
no graph break inside a block, and no recompilation from one step or generation to the next.

Dynamo's ``eager`` backend traces exactly as inductor does (graph breaks and guards are dynamo's), without
spending minutes generating kernels on a CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

import padecache
import tiny

CFG = {"predictor": "linear", "policy": {"name": "budget", "speedup": 2.0}}


def run(pipe, steps=6):
    return tiny.run_flux(pipe, steps=steps, true_cfg=2.0)


def graph_breaks():
    return {k: v for k, v in counters["graph_break"].items()}


@pytest.fixture
def fresh_flux():
    torch._dynamo.reset()
    counters.clear()
    pipe = tiny.flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    yield pipe
    torch._dynamo.reset()


@pytest.mark.parametrize("order", ["apply-then-compile", "compile-then-apply"])
def test_regional_compile(order, fresh_flux):
    pipe = fresh_flux
    with tiny.applied(pipe, CFG):
        eager = run(pipe)
    if order == "compile-then-apply":
        pipe.transformer.compile_repeated_blocks(backend="eager")
        padecache.apply(pipe, CFG)
    else:
        padecache.apply(pipe, CFG)
        pipe.transformer.compile_repeated_blocks(backend="eager")
    try:
        first = run(pipe)
        graphs = counters["stats"]["unique_graphs"]
        again, _ = run(pipe), run(pipe, steps=9)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    assert counters["stats"]["unique_graphs"] == graphs  # nothing recompiled for a new generation or step count
    assert stats.total_steps == 9 and stats.forecast_steps > 0
    assert torch.equal(first, eager) and torch.equal(again, eager)
    # one graph per block class; the only breaks are at padecache's own (eager) boundary around each block
    assert 1 <= graphs <= 4
    assert all("torch.compiler.disable" in reason for reason in graph_breaks()), list(graph_breaks())


def test_whole_model_compile(fresh_flux):
    pipe = fresh_flux
    with tiny.applied(pipe, CFG):
        eager = run(pipe)
    pipe.transformer = torch.compile(pipe.transformer, backend="eager")
    with tiny.applied(pipe, CFG):  # hooks go on the module behind the compiled wrapper
        first = run(pipe)
        graphs = counters["stats"]["unique_graphs"]
        again, _ = run(pipe), run(pipe, steps=9)
        stats = padecache.stats(pipe)
    assert counters["stats"]["unique_graphs"] == graphs
    assert torch.equal(first, eager) and torch.equal(again, eager)
    assert stats.total_steps == 9 and stats.forecast_steps > 0
    assert all("torch.compiler.disable" in reason for reason in graph_breaks()), list(graph_breaks())
    assert counters["recompiles"] == {} or not any(counters["recompiles"].values())
