"""The plugin's presets on tiny DiT, FLUX and Wan pipelines: fewer block-stack passes than steps, reported by stats."""

from __future__ import annotations

import pytest
import torch

import padecache
import tiny

RUNS = {"dit": tiny.run_dit, "flux": tiny.run_flux, "wan": tiny.run_wan}


@pytest.mark.parametrize("family", ["dit", "flux", "wan"])
@pytest.mark.parametrize("preset", ["tc-pade-fast", "tc-pade-slow"])
def test_preset_makes_fewer_passes_than_steps(family, preset, request):
    pipe = request.getfixturevalue(f"{family}_pipe")
    padecache.apply(pipe, preset)
    try:
        out = RUNS[family](pipe, steps=20)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    assert torch.isfinite(out).all()
    assert stats.total_steps == 20
    assert stats.full_passes < stats.total_steps
    assert stats.forecast_steps > 0
    assert stats.cache_bytes > 0


def test_plugin_is_found_through_its_entry_point():
    entry = padecache.get_registry().get("predictor", "tc-pade")
    assert (entry.plugin, entry.package, entry.version) == ("tcpade", "padecache-tcpade", "0.1.0")
    assert padecache.get_registry().get("predictor", "tcpade:tc-pade") is entry
