"""The side-by-side benchmark (extra ``bench``): ``padecache bench`` calls :func:`run_bench` then :func:`write_results`."""

from .report import write_results
from .runner import BenchOptions, BenchResult, run_bench

__all__ = ["BenchOptions", "BenchResult", "run_bench", "write_results"]
