"""The plugin's tests need the plugin installed (``pip install -e plugins/inputaware``); a checkout whose
environment lacks it (a CI that installs an older plugin list) collects none of them and says so in the header."""

from __future__ import annotations

import importlib.util

INSTALLED = importlib.util.find_spec("padecache_inputaware") is not None
if not INSTALLED:
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config):
    if not INSTALLED:
        return "padecache-inputaware is not installed: plugins/inputaware/tests not collected (pip install -e plugins/inputaware)"
    return None
