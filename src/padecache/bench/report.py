"""Tables from records: ``results.md``, the headline, and the README block of ``padecache report``.

Everything here reads records; nothing reruns a model.  "Equal compute" means: at a target speedup ``s``
each method is represented by its best run that spent at most ``round(steps / s)`` block-stack passes,
so no method gets more compute than the budget.  Runs are ranked by PSNR (or, without it, by the first
score, higher being better).

The headline compares, per model, step count and target, the best run of

* **ours** (``ours=``: any method, padecache's, a plugin's or a peer);
* **TaylorSeer**, best setting: the ``taylorseer`` group (its own knobs, in padecache and in diffusers);
* **the best other method**: anything outside ours' group, TaylorSeer and reuse;
* **reuse**: the ``reuse`` group (FORA-style reuse of the last residual);
* **published**: the best family of ours' group marked as the method as published.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from .families import REUSE, TAYLORSEER, budget_caption
from .families import budget_passes as budget  # (callers import budget from here too)
from .metrics import headline_metric
from .records import Record

__all__ = ["NO_RUNS", "clock_title", "busy_warning", "ranking_metric", "ours_label", "headline_targets", "budget", "equal_compute", "headline", "markdown", "headline_markdown", "combined_summary", "annotate", "score_names",
           "distributed_note"]

HEADLINE_TARGETS = (2.5, 10 / 3)
#: what the headline says when no run finished
NO_RUNS = "(no finished runs)"


def score_names(records: Sequence[Record]) -> list[str]:
    """Score names in the order they first appear."""
    return list(dict.fromkeys(k for r in records for k in r.scores))


def ranking_metric(records: Sequence[Record]) -> str | None:
    return headline_metric(score_names(records))


def _value(r: Record, metric: str | None) -> float:
    """A run's ranking value; full compute's ``None`` PSNR (identical images) ranks highest."""
    if metric is None:
        return -math.inf
    v = r.scores.get(metric)
    if v is None:
        return math.inf if r.kind == "reference" or metric == "psnr" else -math.inf
    return v


def _quality(records: Sequence[Record]) -> list[Record]:
    return [r for r in records if r.scored and r.kind != "reference" and (r.passes is not None or r.pass_speedup is not None)]


#: the groups of runs recorded before records carried their group (padecache <= 0.1): a fixed table, so a stored
#: file reads the same whatever plugins are installed now.  Method -> (group, published).
LEGACY_GROUPS = {
    "noop": (REUSE, False), "reuse": (REUSE, False),
    "linear": ("taylor-forecast", False), "taylor-1": ("taylor-forecast", False), "taylor-2": ("taylor-forecast", False),
    "taylor-1 front-loaded": ("taylor-forecast", False), "default": ("taylor-forecast", False),
    "taylorseer-O1": (TAYLORSEER, True), "taylorseer-O2": (TAYLORSEER, True), "taylorseer": (TAYLORSEER, False),
    "tc-pade": ("tc-pade", False), "tc-pade-damped": ("tc-pade", False), "tc-pade-reference": ("tc-pade", True),
    "tc-pade-paper": ("tc-pade", True), "tc-pade+tsi": ("tc-pade", False), "tc-pade-reference+tsi": ("tc-pade", False),
    "tc-pade-fast": ("tc-pade", False), "tc-pade-slow": ("tc-pade", False), "tc-pade-official": ("tc-pade", False),
    "tc-pade-tsi": ("tc-pade", False),
}
#: the same for methods named by a prefix (a peer's settings)
LEGACY_PREFIXES = {"diffusers-taylorseer": (TAYLORSEER, True), "cache-dit": ("cache-dit", False)}


def _legacy_group(r: Record) -> tuple[str, bool]:
    prefix = next((p for p in LEGACY_PREFIXES if r.method.startswith(p)), None)
    return LEGACY_GROUPS.get(r.method) or (LEGACY_PREFIXES[prefix] if prefix else (r.method, False))


def annotate(records: Sequence[Record]) -> list[Record]:
    """Fill in ``group`` / ``published`` of records written without them (older results files), from the records
    alone (:data:`LEGACY_GROUPS`): reading stored results never depends on the plugins installed now."""
    for r in records:
        if not r.group:
            r.group, r.published = _legacy_group(r)
    return list(records)


def _fits(r: Record, steps: int | None, target: float) -> bool:
    if steps is not None and r.passes is not None:
        return r.passes <= budget(steps, target) + 1e-6
    return r.pass_speedup is not None and r.pass_speedup >= target * (1 - 1e-6)


def equal_compute(records: Sequence[Record], steps: int | None, target: float, metric: str | None = None) -> dict[str, Record]:
    """Best run of each method (by ``metric``) that spent at most the budget of ``target`` at ``steps``."""
    metric = metric or ranking_metric(records)
    best: dict[str, Record] = {}
    for r in _quality(records):
        if r.steps != steps or not _fits(r, steps, target):
            continue
        cur = best.get(r.method)
        if cur is None or _value(r, metric) > _value(cur, metric):
            best[r.method] = r
    return best


def ours_label(records: Sequence[Record], ours: str | None) -> str | None:
    return ours if ours is not None else next((r.method for r in records if r.ours), None)


def _keys(records: Sequence[Record]) -> list[tuple[str, int | None]]:
    seen = dict.fromkeys((r.model, r.steps) for r in records if r.scored)
    return sorted(seen, key=lambda k: (k[0], k[1] if k[1] is not None else -1))


def _budgets(targets: Sequence[float], steps: int | None, passes: Sequence[int] | None) -> Sequence[float]:
    """The pass speedups compared at ``steps``: ``targets``, or with ``passes`` those pass budgets (``steps / passes``)."""
    return targets if not passes or steps is None else [steps / p for p in passes]


def headline(records: Sequence[Record], ours: str | None = None, targets: Sequence[float] | None = None,
             metric: str | None = None, every_point: bool = False, passes: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Per (model, steps, target): the best run of ours, TaylorSeer, the best other method, reuse and the published method.

    The targets are the headline's (2.5x and 3.33x among ``targets`` or the swept ones) unless ``every_point``:
    then every one of ``targets``, or every swept target.  ``passes`` replaces the targets by pass budgets, the same
    at every step count (``steps / passes`` each)."""
    records = annotate(records)
    ours = ours_label(records, ours)
    metric = metric or ranking_metric(records)
    targets = headline_targets(records, targets, every_point)
    ours_group = next((r.group for r in records if r.method == ours), ours)
    out = []
    for model, steps in _keys(records):
        runs = [r for r in records if r.model == model and r.steps == steps]
        # (reliability) a point is a budget this step count was swept at, once (targets for other step counts made rows)
        swept = {budget(steps, r.target) for r in runs if r.target is not None and r.kind != "reference"} if steps else set()
        shown: set[int | None] = set()
        for target in _budgets(targets, steps, passes):
            cap = budget(steps, target) if steps is not None else None
            if cap is not None and (cap in shown or (swept and cap not in swept)):  # budget() never exceeds the steps
                continue
            shown.add(cap)
            rows = equal_compute(runs, steps, target, metric)
            if not rows:
                continue

            def best(pred, rows=rows) -> Record | None:
                cands = [r for m, r in rows.items() if m != ours and pred(r)]
                return max(cands, key=lambda r: _value(r, metric)) if cands else None

            entry: dict[str, Any] = {
                "model": model, "steps": steps, "target": round(target, 4),
                "passes": budget(steps, target) if steps is not None else None, "metric": metric,
                "ours": rows.get(ours) if ours else None,
                "taylorseer": best(lambda r: r.group == TAYLORSEER),
                "other": best(lambda r: r.group not in (ours_group, TAYLORSEER, REUSE)),
                "reuse": best(lambda r: r.group == REUSE),
                "published": best(lambda r: r.published and r.group == ours_group) if ours else None,
            }
            o = entry["ours"]
            for key in ("taylorseer", "other", "reuse", "published"):
                r = entry[key]
                if o is not None and r is not None and metric and o.scores.get(metric) is not None and r.scores.get(metric) is not None:
                    entry[f"ours_minus_{key}"] = round(o.scores[metric] - r.scores[metric], 3)
            if o is not None and o.timed and o.pass_speedup:
                entry["ours_wall_over_pass"] = round(o.wall_speedup / o.pass_speedup, 3)
            out.append(entry)
    return out


def headline_targets(records: Sequence[Record], targets: Sequence[float] | None, every_point: bool = False) -> list[float]:
    if targets is not None:
        if every_point:
            return list(targets)
        chosen = [t for t in targets if any(abs(t - h) < 1e-3 for h in HEADLINE_TARGETS)]
        return chosen or list(targets)[:1]
    swept = sorted({r.target for r in records if r.target is not None and r.kind != "reference"})
    if every_point:
        return swept
    chosen = [t for t in HEADLINE_TARGETS if any(abs(t - s) < 1e-3 for s in swept)]
    return chosen or swept[:1] or [HEADLINE_TARGETS[0]]


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _score(r: Record | None, name: str) -> str:
    if r is None:
        return "–"
    v = r.scores.get(name)
    if v is None and r.scored and name == "psnr" and r.kind == "reference":
        return "∞"
    nd = 4 if name in ("ssim", "rel_l2") else 3 if name.endswith("acc") else 2
    return _fmt(v, nd)


def _wall(r: Record) -> str:
    if r.status == "timing_suspect":
        return "suspect"
    return _fmt(r.wall_speedup) + _dagger(r) if r.timed else "–"


def _dagger(r: Record | None) -> str:
    """The mark of a wall-clock figure measured on a cluster's worker."""
    return "†" if r is not None and r.distributed else ""


def distributed_note(records: Sequence[Record]) -> str:
    """The footnote of tables with distributed runs (``""`` when there are none)."""
    clusters = sorted({r.environment.cluster or "a cluster" for r in records if r.distributed})
    if not clusters:
        return ""
    return (f"† distributed run ({'; '.join(clusters)}): wall × measured on a cluster's worker, against full compute "
            f"timed on the same worker; do not compare its wall times with those of a run in one process.")


def clock_title(records: Sequence[Record]) -> str:
    """What the wall × of ``records`` was read on, in words (``"process CPU time"``, ``"CUDA events"``...)."""
    from ..timing import CLOCK_TITLES

    clocks = sorted({r.clock for r in records if r.timed} or {r.clock for r in records})
    if len(clocks) > 1:
        return "mixed clocks: " + ", ".join(CLOCK_TITLES.get(c, c) for c in clocks)
    return CLOCK_TITLES.get(clocks[0], clocks[0]) if clocks and clocks[0] else "wall clock"


def busy_warning(records: Sequence[Record]) -> str:
    """A warning when some comparison ran on a busy machine (``""`` when none did)."""
    busy = [r.environment for r in records if r.kind == "reference" and r.environment.busy()]
    if not busy:
        return ""
    env = busy[0]
    loads = " and ".join(f"{v:.2f} at {when}" for v, when in ((env.load_avg, "start"), (env.load_avg_end, "end")) if v is not None)
    return (f"**Warning: the machine was busy** (load average {loads} on {env.cpu_count} CPUs, this run using "
            f"{env.threads} thread(s)).  Times are {clock_title(records)}, which other programs do not add to, but they "
            f"share its caches and memory bandwidth: compare wall × only with runs on an idle machine.")


def _passes(e: dict) -> str:
    if e["passes"] is None:
        return f"({e['target']:.2f}×)"
    return f"{e['passes']} ({e['steps'] / e['passes']:.2f}×)"


_COLUMNS = (("ours", "ours"), ("taylorseer", "TaylorSeer, best setting"), ("other", "best other"), ("reuse", "reuse"),
            ("published", "published"))

#: how known scores are titled in tables (any other score keeps its name)
SCORE_TITLES = {"psnr": "PSNR", "ssim": "SSIM", "rel_l2": "relL2", "class_acc": "class acc", "fid_cls": "FID-cls",
                "fid_cls_full": "FID-cls vs full", "fid": "FID", "fid_full": "FID vs full"}


def _title(name: str) -> str:
    return SCORE_TITLES.get(name, name)


def headline_markdown(records: Sequence[Record], ours: str | None = None, targets: Sequence[float] | None = None,
                      note: bool = True, every_point: bool = False, passes: Sequence[int] | None = None) -> str:
    """The headline as a markdown table (what ``padecache bench`` prints); groups no run belongs to are left out.

    Wall-clock figures of distributed runs are marked † and explained under the table (unless ``note=False``).
    With ``every_point`` it covers every target (see ``headline``) and ends with a count of the points where
    ours leads the best other method by 1 dB (or 1 unit of the score) or more.
    """
    entries = headline(records, ours, targets, every_point=every_point, passes=passes)
    if not entries:
        return NO_RUNS
    metric = entries[0]["metric"]
    label = _title(metric) if metric else "score"
    keys = [(k, t) for k, t in _COLUMNS if k == "ours" or any(e[k] is not None for e in entries)]
    margins = [k for k, _ in keys if k != "ours"]
    head = "| model | steps | passes (×) | " + " | ".join(f"{t} | {label}" for _, t in keys)
    head += "".join(f" | ours − {dict(_COLUMNS)[k] if k != 'taylorseer' else 'TaylorSeer'}" for k in margins)
    head += f" | ours: wall × / pass × ({clock_title([e['ours'] for e in entries if e['ours'] is not None])}) |"
    lines = [head, "|---|---:|---:|" + "---|---:|" * len(keys) + "---:|" * (len(margins) + 1)]
    for e in entries:
        cells = []
        for key, _ in keys:
            r = e[key]
            cells += ["–", "–"] if r is None else [r.method, _score(r, metric)]
        wall = e.get("ours_wall_over_pass")
        lines.append(f"| {e['model']} | {_fmt(e['steps'])} | {_passes(e)} | " + " | ".join(cells)
                     + "".join(f" | {_fmt(e.get(f'ours_minus_{k}'))}" for k in margins)
                     + f" | {_fmt(wall)}{_dagger(e['ours']) if wall is not None else ''} |")
    shown = [e[k] for e in entries for k, _ in keys if e[k] is not None]
    if note and distributed_note(shown):
        lines += ["", distributed_note(shown)]
    leads = [e["ours_minus_other"] for e in entries if e.get("ours_minus_other") is not None]
    if every_point and leads:
        lines += ["", f"Ours leads the best other method by at least 1 at {_lead_count(leads)}."]
        models = list(dict.fromkeys(e["model"] for e in entries))
        if len(models) > 1:
            per_model = ([e["ours_minus_other"] for e in entries if e["model"] == m and e.get("ours_minus_other") is not None]
                         for m in models)
            lines[-1] += " Per model: " + "; ".join(f"{m}: {_lead_count(ms)}" for m, ms in zip(models, per_model) if ms) + "."
    return "\n".join(lines)


def _lead_count(leads: Sequence[float]) -> str:
    """"N of M points, is ahead at K; margin from a to b (median c)" for margins of ours over the best other."""
    return (f"{sum(m >= 1.0 for m in leads)} of {len(leads)} points, is ahead at {sum(m > 0 for m in leads)}; "
            f"margin from {min(leads):+.2f} to {max(leads):+.2f} (median {statistics.median(leads):+.2f})")


def _stored_short(config: dict) -> str:
    """A stored config in a few words, from the record alone: component names and every option stored with them."""
    if not config:
        return ""
    if "peer" in config:
        keep = {k: v for k, v in config.items()
                if k not in ("peer", "cache_identifiers", "steps_computation_mask", "taylor_factors_dtype", "calibrated_on")}
        return ", ".join(f"{k}={v}" for k, v in keep.items())
    parts = []
    for section in ("predictor", "policy"):
        sec = config.get(section) or {}
        sec = {"name": sec} if isinstance(sec, str) else dict(sec)
        name = sec.pop("name", "?")
        opts = ",".join(f"{k}={v}" for k, v in sec.items())
        parts.append(f"{name}({opts})" if opts else name)
    return " + ".join(parts)


def _short(r: Record) -> str:
    """How a run's settings are shown: the description made when it ran, else its stored config (no registry asked)."""
    return r.summary or _stored_short(r.config)


def _provider(r: Record) -> str:
    return f"{r.plugin} {r.plugin_version}".strip() or "–"


def markdown(records: Sequence[Record], ours: str | None = None, targets: Sequence[float] | None = None) -> str:
    """``results.md``: the headline, per budget every method's best run, then every run."""
    records = annotate(records)
    ours = ours_label(records, ours)
    names = score_names(records)
    envs = {r.environment.describe() for r in records if r.kind == "reference"}
    samples = sorted({r.samples for r in records if r.kind == "reference"})
    seeds = next((r.seeds for r in records if r.kind == "reference"), [])
    lines = ["# padecache bench results", ""]
    lines.append(
        f"Model(s) {', '.join(sorted({r.model for r in records}))}; {', '.join(map(str, samples))} images per run "
        f"(seeds {', '.join(map(str, seeds))}); scores against full compute of the same seeds; pass × counts block-stack "
        f"executions; wall × is against full compute timed right before and after each run, on "
        f"{clock_title(records)}.  Ours: {ours or '(not set)'}.  Measured on: {'; '.join(sorted(envs)) or 'unknown'}."
    )
    warning = busy_warning(records)
    if warning:
        lines += ["", warning]
    if distributed_note(records):
        lines += ["", distributed_note(records)]
    lines.append("")
    lines += ["## Headline: best run of each within the pass budget", "",
              "*TaylorSeer* is TaylorSeer with its own knobs (order, interval N, warm-up; padecache's and diffusers' "
              "implementations); *best other* is the best method outside ours' family, TaylorSeer and reuse; "
              "*published* is the best setting of ours' method as published.", "",
              headline_markdown(records, ours, targets, note=False), ""]
    swept = sorted({r.target for r in records if r.target is not None and r.kind != "reference"})
    for model, steps in _keys(records):
        recs = [r for r in records if r.model == model and r.steps == steps]
        full = next((r for r in recs if r.kind == "reference"), None)
        for target in swept:
            rows = equal_compute(recs, steps, target)
            if not rows:
                continue
            metric = ranking_metric(recs)
            cap = budget_caption(steps, target) if steps else f"at least {target:.2f}× fewer passes"
            lines += [f"## {model}, {_fmt(steps)} steps, {cap}: every method's best run", "",
                      "| method | provided by | passes | pass × | wall × | " + " | ".join(map(_title, names)) + " |",
                      "|---|---|---:|---:|---:|" + "---:|" * len(names)]
            for r in sorted(rows.values(), key=lambda r: -_value(r, metric)):
                mark = " (ours)" if r.method == ours else ""
                lines.append(f"| {r.method}{mark} | {_provider(r)} | {_fmt(r.passes, 1)} | {_fmt(r.pass_speedup)} | {_wall(r)} | "
                             + " | ".join(_score(r, n) for n in names) + " |")
            if full is not None:
                lines.append(f"| *full compute* | | {_fmt(full.passes)} | 1.00 | 1.00 | " + " | ".join(_score(full, n) for n in names) + " |")
            lines.append("")
        lines += [f"## {model}, {_fmt(steps)} steps: every run", "",
                  "| method | provided by | settings | target × | passes | pass × | wall × | wall s | " + " | ".join(map(_title, names))
                  + " | status |",
                  "|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(names) + "---|"]
        for r in recs:
            lines.append(f"| {r.method} | {_provider(r)} | {_short(r)} | {_fmt(r.target)} | {_fmt(r.passes, 1)} | "
                         f"{_fmt(r.pass_speedup)} | {_wall(r)} | {_fmt(r.wall_s, 3)} | " + " | ".join(_score(r, n) for n in names)
                         + f" | {r.status} |")
        lines.append("")
    return "\n".join(lines)


def combined_summary(records: Sequence[Record], ours: str | None = None, targets: Sequence[float] = HEADLINE_TARGETS,
                     scores: Sequence[str] | None = None, every_point: bool = False, passes: Sequence[int] | None = None) -> str:
    """The README's results block: the headline, then per target the models side by side (smallest step count).

    ``scores`` picks the score columns (default: every score in the records); ``every_point`` puts every
    one of ``targets`` at every step count into the headline (``headline``); ``passes`` compares at these pass
    budgets at every step count instead of at ``targets``.
    """
    records = annotate(records)
    ours = ours_label(records, ours)
    lines = [headline_markdown(records, ours, targets, note=False, every_point=every_point, passes=passes), ""]
    if distributed_note(records):
        lines += [distributed_note(records), ""]
    scored = [r for r in records if r.scored]
    if not scored:
        return "\n".join(lines)
    names = list(scores) if scores else score_names(records)
    models = sorted({r.model for r in scored})
    steps = min((r.steps for r in scored if r.steps is not None), default=None)
    metric = ranking_metric(records)
    for target in _budgets(targets, steps, passes):
        per_model = {m: equal_compute([r for r in records if r.model == m], steps, target, metric) for m in models}
        methods = sorted({k for rows in per_model.values() for k in rows},  # ties by name: the same file every run
                         key=lambda k: (-max(_value(rows[k], metric) if k in rows else -math.inf for rows in per_model.values()),
                                        str(k)))
        if not methods:
            continue
        cap = budget_caption(steps, target) if steps else f"{target:.2f}× fewer passes"
        lines += [f"**{_fmt(steps)} steps, {cap}**: scores against full compute of the same seeds, wall × measured in the same run", ""]
        cols = ["passes", *map(_title, names), "wall ×"]
        lines += ["| method |" + "".join(f" {m}: {c} |" if i == 0 else f" {c} |" for m in models for i, c in enumerate(cols)),
                  "|---|" + "---:|" * (len(cols) * len(models))]

        def cells(r: Record | None, cols=cols) -> str:
            if r is None:
                return " – |" * len(cols)
            return f" {_fmt(r.passes, 1)} |" + "".join(f" {_score(r, n)} |" for n in names) + f" {_wall(r)} |"

        for k in methods:
            lines.append(f"| {k}{' (ours)' if k == ours else ''} |" + "".join(cells(per_model[m].get(k)) for m in models))
        fulls = {m: next((r for r in records if r.model == m and r.steps == steps and r.kind == "reference"), None) for m in models}
        lines.append("| *full compute* |" + "".join(
            " – |" * len(cols) if fulls[m] is None else f" {_fmt(fulls[m].passes)} |" + "".join(f" {_score(fulls[m], n)} |" for n in names) + " 1.00 |"
            for m in models))
        lines.append("")
    return "\n".join(lines)
