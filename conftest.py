"""Shared test set-up for tests/ and plugins/*/tests: threads, hypothesis profiles, tiny pipelines."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))  # tiny.py: pipelines built from configs
torch.set_num_threads(1)  # every model here is tiny: one thread is several times faster than two, and steadier

from hypothesis import settings  # noqa: E402

# The suite's profile: 60 examples per property, derandomized (the same examples on every run).  The
# `thorough` profile runs 1500 per property for a release check:
#     python -m pytest --hypothesis-profile=thorough --hypothesis-seed=12345 -k "pade_fit or taylor or budget"
settings.register_profile("padecache", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1500, deadline=None)
settings.load_profile("padecache")


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def dit_pipe():
    import tiny

    return _quiet(tiny.dit_pipeline())


@pytest.fixture(scope="module")
def flux_pipe():
    import tiny

    return _quiet(tiny.flux_pipeline())


@pytest.fixture(scope="module")
def pixart_pipe():
    import tiny

    return _quiet(tiny.pixart_pipeline())


@pytest.fixture(scope="module")
def wan_pipe():
    import tiny

    return _quiet(tiny.wan_pipeline())


@pytest.fixture(autouse=True)
def _no_leftover_hooks():
    """Every test leaves the registry as it found it."""
    import padecache.plugins as plugins

    before = [name for name, _ in plugins.get_plugin_manager().list_name_plugin()]
    yield
    after = [name for name, _ in plugins.get_plugin_manager().list_name_plugin()]
    assert after == before, "a test left a plugin registered"
