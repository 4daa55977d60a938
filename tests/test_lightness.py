"""`import padecache` stays light: no plotting, metrics, Ray or benchmark code until used."""

from __future__ import annotations

import subprocess
import sys


def test_import_padecache_pulls_no_heavy_optional_modules():
    code = (
        "import sys, padecache; padecache.load_config('default'); "
        "heavy = [m for m in ('matplotlib', 'torchmetrics', 'ray', 'padecache.bench', 'cache_dit', 'transformers') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
