"""The side-by-side benchmark as a library (extra ``bench``): :func:`compare` any methods on any pipeline.

    import padecache.bench as bench

    def generate(pipe, seed):                      # one generation -> images, batch first
        return pipe(..., generator=torch.Generator().manual_seed(seed), output_type="pt").images

    records = bench.compare(pipe, generate, ["noop", "taylorseer-O1", "diffusers-taylorseer", "my-method"],
                            targets=(2.5, 10 / 3), ours="my-method", out="bench-out")

Methods are names (bench families, peers, presets, predictors, policies), TOML paths, config dicts,
:class:`Family` objects...  (:mod:`padecache.bench.methods`); plugins add sweep families through the
``padecache_bench_families`` hook (:mod:`padecache.bench.families`).  Each run becomes a :class:`Record`;
``out`` gets ``results.json`` (after every run), ``results.md``, ``pareto.png`` and ``grid.png``.

On a cluster, ``compare("saved-pipeline/", generate, methods, executor=padecache.cluster.RayExecutor())`` runs
each method setting as a task (:mod:`padecache.bench.distributed`): the same scores, passes and masks, records
marked ``distributed``.

Names resolve on first use: importing this package (or using it) imports neither matplotlib nor torchmetrics
until a plot is drawn or a default scorer runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports

_EXPORTS = {
    "compare": "runner",
    "PassCounter": "runner",
    "DEFAULT_TARGETS": "runner",
    "SUSPECT_TOLERANCE": "runner",
    "Record": "records",
    "Environment": "records",
    "load_records": "records",
    "Family": "families",
    "SCHEDULES": "families",
    "front_loaded": "families",
    "even_budget": "families",
    "taylorseer_intervals": "families",
    "densest": "families",
    "budget_passes": "families",
    "range_passes": "families",
    "registered_families": "families",
    "Setting": "methods",
    "Attached": "methods",
    "Method": "methods",
    "RunContext": "methods",
    "Scorer": "metrics",
    "default_scorers": "metrics",
    "ResultsDir": "output",
    "check_output_dir": "output",
    "headline": "report",
    "headline_markdown": "report",
    "markdown": "report",
    "combined_summary": "report",
    "key_methods": "selection",
    "all_methods": "selection",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .families import (
        SCHEDULES,
        Family,
        budget_passes,
        densest,
        even_budget,
        front_loaded,
        range_passes,
        registered_families,
        taylorseer_intervals,
    )
    from .methods import Attached, Method, RunContext, Setting
    from .metrics import Scorer, default_scorers
    from .output import ResultsDir, check_output_dir
    from .records import Environment, Record, load_records
    from .report import combined_summary, headline, headline_markdown, markdown
    from .runner import DEFAULT_TARGETS, SUSPECT_TOLERANCE, PassCounter, compare
    from .selection import all_methods, key_methods
