"""Benchmark outputs: ``results.json``, ``results.md``, ``pareto.png`` and ``grid.png``.

Everything here reads records; nothing reruns a model.  "Equal compute" means: at a target speedup
``s`` each method is represented by its best run that spent at most ``round(steps / s)`` block-stack
passes, so no method gets more compute than the budget.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["write_results", "equal_compute", "summary", "markdown"]

#: padecache's own predictors (TC-Padé in every variant and schedule, the fitted Padé)
GROUP_OURS = (
    "tc-pade", "tc-pade-damped", "tc-pade+tsi", "tc-pade-reference", "tc-pade-reference+tsi", "tc-pade-paper", "pade-fit",
    "tc-pade-fast", "tc-pade-slow", "tc-pade-official",
)
#: TaylorSeer as its users run it: its own knobs (order, interval N, warm-up), ours and diffusers' implementation
GROUP_TAYLORSEER = ("taylorseer-O1", "taylorseer-O2", "diffusers-taylorseer-O1", "diffusers-taylorseer-O2")
#: the TaylorSeer forecast on padecache's budget schedule (reported separately: predictor-only comparison)
GROUP_TAYLOR_ON_BUDGET = ("linear", "taylor-1", "taylor-2", "taylor-1 front-loaded")


def _ok(records):
    return [r for r in records if r.get("status") == "ok" and r.get("full_passes")]


def budget(steps: int, target: float) -> int:
    return max(1, min(steps, round(steps / target)))


def equal_compute(records: Sequence[dict], steps: int, target: float, methods: Sequence[str] | None = None) -> dict[str, dict]:
    """Best run (by PSNR) of each method that spent at most the budget of ``target`` at ``steps``."""
    cap = budget(steps, target) + 1e-6
    best: dict[str, dict] = {}
    for r in _ok(records):
        if r["steps"] != steps or r["method"] == "full" or r["full_passes"] > cap:
            continue
        if methods is not None and r["method"] not in methods:
            continue
        psnr = r["psnr"] if r["psnr"] is not None else math.inf
        cur = best.get(r["method"])
        if cur is None or psnr > (cur["psnr"] if cur["psnr"] is not None else math.inf):
            best[r["method"]] = r
    return best


def _best(rows: dict[str, dict], names: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> dict | None:
    cands = [r for m, r in rows.items() if (names is None or m in names) and m not in exclude and r["psnr"] is not None]
    return max(cands, key=lambda r: r["psnr"]) if cands else None


def summary(records: Sequence[dict], targets: Sequence[float] = (2.5, 10 / 3)) -> list[dict[str, Any]]:
    """Per (model, steps, target): best of ours, of TaylorSeer, of the other peers, and the margins."""
    out = []
    keys = sorted({(r["model"], r["steps"]) for r in _ok(records)})
    for model, steps in keys:
        recs = [r for r in records if r["model"] == model]
        for target in targets:
            rows = equal_compute(recs, steps, target)
            ours = _best(rows, GROUP_OURS)
            ts = _best(rows, GROUP_TAYLORSEER)
            ts_budget = _best(rows, GROUP_TAYLOR_ON_BUDGET)
            peers = _best({m: r for m, r in rows.items() if r.get("kind") == "peer" and m not in GROUP_TAYLORSEER})
            reuse = rows.get("reuse")
            entry = {"model": model, "steps": steps, "target": round(target, 3), "passes": budget(steps, target)}
            for key, r in (("ours", ours), ("taylorseer", ts), ("taylor_on_budget", ts_budget), ("peer", peers), ("reuse", reuse)):
                entry[key] = None if r is None else {
                    "method": r["method"], "config": r["config"], "psnr": r["psnr"], "ssim": r["ssim"], "fid_cls": r["fid_cls"],
                    "fid": r.get("fid"), "passes": r["full_passes"], "wall_speedup": r["wall_speedup"], "pass_speedup": r["pass_speedup"],
                }
            if ours is not None and ours["pass_speedup"]:
                entry["ours_wall_over_pass"] = round(ours["wall_speedup"] / ours["pass_speedup"], 3)
            for key in ("taylorseer", "taylor_on_budget", "peer", "reuse"):
                if ours is not None and entry[key] is not None:
                    entry[f"margin_vs_{key}_db"] = round(ours["psnr"] - entry[key]["psnr"], 3)
            for key in ("reference", "paper"):
                r = rows.get(f"tc-pade-{key}")
                if r is not None and ts is not None:
                    entry[f"tc_pade_{key}_vs_taylorseer_db"] = round(r["psnr"] - ts["psnr"], 3)
            out.append(entry)
    return out


def _fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def markdown(records: Sequence[dict], meta: dict[str, Any], targets: Sequence[float]) -> str:
    lines = ["# padecache bench results", ""]
    lines.append(
        f"Model(s) {', '.join(sorted({r['model'] for r in records}))}; {meta['samples']} samples (labels 0..9 cycled, "
        f"noise seed {meta['seed']}+i); PSNR/SSIM/relL2 against full compute of the same seeds; class accuracy and "
        f"FID-cls against real digits; wall speedup against full compute timed in the same run "
        f"({meta['machine']}, torch {meta['torch']}, {meta['threads']} threads)."
    )
    lines.append("")
    summ = summary(records, [t for t in targets if t in (2.5, 10 / 3)] or targets[:1])
    if summ:
        lines += ["## Equal compute: best of each group (PSNR vs full compute, dB)", "",
                  "Each group is represented by its best run that spent at most the pass budget.  *TaylorSeer* is "
                  "TaylorSeer with its own knobs (order 1-2, interval N, first_enhance; padecache's and diffusers' "
                  "implementations); *TaylorSeer on our schedule* is the same forecast on padecache's budget schedule.",
                  "",
                  "| model | steps | passes (×) | ours | TaylorSeer | TaylorSeer on our schedule | best other peer | reuse | ours − TaylorSeer | ours − peer | ours: wall × / pass × |",
                  "|---|---:|---|---|---|---|---|---|---:|---:|---:|"]
        for e in summ:
            def cell(x):
                return "–" if x is None else f"{x['method']} {_fmt(x['psnr'])}"
            lines.append(
                f"| {e['model']} | {e['steps']} | {e['passes']} ({e['steps'] / e['passes']:.2f}×) | {cell(e['ours'])} | {cell(e['taylorseer'])} | "
                f"{cell(e['taylor_on_budget'])} | {cell(e['peer'])} | {cell(e['reuse'])} | {_fmt(e.get('margin_vs_taylorseer_db'))} | "
                f"{_fmt(e.get('margin_vs_peer_db'))} | {_fmt(e.get('ours_wall_over_pass'))} |"
            )
        lines.append("")
    for model, steps in sorted({(r["model"], r["steps"]) for r in _ok(records)}):
        recs = [r for r in records if r["model"] == model and r["steps"] == steps]
        methods = list(dict.fromkeys(r["method"] for r in recs if r["method"] != "full"))
        for metric, nd, title in (("psnr", 2, "PSNR (dB) vs full compute"), ("fid_cls", 2, "FID-cls vs real digits (lower is better)")):
            lines += [f"## {model}, {steps} steps: {title}, best run within each pass budget", ""]
            header = "| method | " + " | ".join(f"≤{budget(steps, t)} passes ({t:.2f}×)" for t in targets) + " |"
            lines += [header, "|---|" + "---:|" * len(targets)]
            per_target = [equal_compute(recs, steps, t) for t in targets]
            for m in methods:
                cells = [_fmt(rows[m][metric], nd) if m in rows else "–" for rows in per_target]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            full = next((r for r in recs if r["method"] == "full"), None)
            if full is not None and metric == "fid_cls":
                lines.append(f"| full compute | {_fmt(full['fid_cls'])} | " + " | ".join("" for _ in targets[1:]) + " |")
            lines.append("")
        lines += [f"## {model}, {steps} steps: every run", "",
                  "| method | settings | passes | pass × | wall × | PSNR | SSIM | relL2 | class acc | FID-cls | FID | FID-cls vs full | FID vs full | status |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in recs:
            psnr = "∞" if r.get("status") == "ok" and r["psnr"] is None else (
                f"{r['psnr']:.2f} ± {r.get('psnr_se', 0):.2f}" if r["psnr"] is not None else "–")
            lines.append(
                f"| {r['method']} | {_short(r['config'])} | {_fmt(r['full_passes'])} | {_fmt(r['pass_speedup'])} | {_fmt(r['wall_speedup'])} | "
                f"{psnr} | {_fmt(r['ssim'], 4)} | {_fmt(r['rel_l2'], 4)} | {_fmt(r['class_acc'], 3)} | {_fmt(r['fid_cls'])} | {_fmt(r['fid'])} | "
                f"{_fmt(r.get('fid_cls_full'))} | {_fmt(r.get('fid_full'))} | {r.get('status', '')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _short(config: dict) -> str:
    """A config in a few words: component names and the options that differ from their defaults."""
    if not config:
        return ""
    if "peer" in config:
        keep = {k: v for k, v in config.items() if k not in ("peer", "cache_identifiers", "steps_computation_mask", "taylor_factors_dtype", "calibrated_on")}
        return ", ".join(f"{k}={v}" for k, v in keep.items())
    from ..plugins import get_registry

    registry = get_registry()
    parts = []
    for section in ("predictor", "policy"):
        sec = dict(config.get(section, {}))
        name = sec.pop("name", "?")
        try:
            defaults = _defaults(registry, section, name)
        except ValueError:
            defaults = {}
        opts = ",".join(f"{k}={v}" for k, v in sec.items() if _norm(defaults.get(k)) != _norm(v))
        parts.append(f"{name}({opts})" if opts else name)
    return " + ".join(parts)


def _defaults(registry, section: str, name: str) -> dict:
    import attrs

    cls = registry.get(section, name).cls.Config
    return {f.name: f.default for f in attrs.fields(cls) if f.default is not attrs.NOTHING}


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def pareto_plot(records: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["model"], r["steps"]) for r in _ok(records)})
    fig, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 5.5), squeeze=False)
    for ax, (model, steps) in zip(axes[0], keys):
        recs = [r for r in _ok(records) if r["model"] == model and r["steps"] == steps and r["method"] != "full" and r["psnr"] is not None]
        for method in dict.fromkeys(r["method"] for r in recs):
            pts = sorted((r["pass_speedup"], r["psnr"]) for r in recs if r["method"] == method)
            style = "-o" if method in GROUP_OURS else ("--s" if method in GROUP_TAYLORSEER else ":^")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=method, markersize=4)
        ax.set_xlabel("pass speedup (steps / block-stack passes)")
        ax.set_ylabel("PSNR vs full compute (dB)")
        ax.set_title(f"{model}, {steps} steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grid_plot(records: Sequence[dict], gallery: dict[int, torch.Tensor], path: Path, target: float = 2.5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next((r for r in records if r["method"] == "full"), None)
    if first is None:
        return
    model, steps = first["model"], first["steps"]
    rows: list[tuple[str, int]] = []
    best: dict[str, tuple[float, int]] = {}
    for i, r in enumerate(records):
        if r["model"] != model or r["steps"] != steps or i not in gallery or r.get("status") != "ok":
            continue
        if r["method"] == "full":
            rows.insert(0, ("full compute", i))
            continue
        d = abs(math.log(r["pass_speedup"] / target))
        if r["method"] not in best or d < best[r["method"]][0]:
            best[r["method"]] = (d, i)
    rows += [(f"{m} ({records[i]['pass_speedup']:.2f}×, {_fmt(records[i]['psnr'], 1)} dB)", i) for m, (_, i) in best.items()]
    n = gallery[rows[0][1]].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9 + 2.8, len(rows) * 0.95), squeeze=False)
    for row, (label, i) in enumerate(rows):
        imgs = gallery[i]
        for col in range(n):
            ax = axes[row][col]
            ax.imshow(imgs[col, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{model}, {steps} steps, same seeds; each method at its run nearest {target}× fewer passes", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(result, out: str | Path, meta: dict[str, Any], targets: Sequence[float]) -> dict[str, Path]:
    """Write the four files into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "pareto": out / "pareto.png", "grid": out / "grid.png"}
    payload = {"meta": meta, "summary": summary(result.records), "records": result.records}
    paths["json"].write_text(json.dumps(result.records, indent=1, default=_jsonable) + "\n")
    (out / "summary.json").write_text(json.dumps({k: v for k, v in payload.items() if k != "records"}, indent=1, default=_jsonable) + "\n")
    paths["md"].write_text(markdown(result.records, meta, targets) + "\n")
    pareto_plot(result.records, paths["pareto"])
    grid_plot(result.records, result.gallery, paths["grid"])
    return paths


def combined_summary(paths: Sequence[str | Path], targets: Sequence[float] = (2.5, 10 / 3)) -> str:
    """The README's results block, rendered from ``results.json`` files (nothing is rerun).

    First the headline (per model, step count and target: the best run of ours, of TaylorSeer, of the
    other peers and of reuse, and the margins), then one table per target at the smallest step count
    with the best run of every method within the pass budget, the models side by side.
    """
    records = [r for p in paths for r in json.loads(Path(p).read_text())]
    lines = []
    summ = summary(records, targets)
    lines += ["| model | steps | passes | ours | PSNR | TaylorSeer, best setting | PSNR | best other peer | PSNR | reuse | ours − TaylorSeer | ours − peer | wall × / pass × |",
              "|---|---:|---:|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for e in summ:
        def m(x):
            return ("–", "–") if x is None else (x["method"], _fmt(x["psnr"]))
        o, t, pe, re_ = m(e["ours"]), m(e["taylorseer"]), m(e["peer"]), m(e["reuse"])
        lines.append(
            f"| {e['model']} | {e['steps']} | {e['passes']} ({e['steps'] / e['passes']:.2f}×) | {o[0]} | {o[1]} | {t[0]} | {t[1]} | {pe[0]} | {pe[1]} | "
            f"{re_[1]} | {_fmt(e.get('margin_vs_taylorseer_db'))} | {_fmt(e.get('margin_vs_peer_db'))} | {_fmt(e.get('ours_wall_over_pass'))} |"
        )
    lines.append("")
    models = sorted({r["model"] for r in _ok(records)})
    steps = min(r["steps"] for r in _ok(records))
    for target in targets:  # one table per budget: every method, the models side by side
        per_model = {m: equal_compute([r for r in records if r["model"] == m], steps, target) for m in models}
        fulls = {m: next((r for r in records if r["model"] == m and r["steps"] == steps and r["method"] == "full"), None) for m in models}
        methods = sorted({k for rows in per_model.values() for k in rows},
                         key=lambda k: -max((rows[k]["psnr"] or math.inf) if k in rows else -math.inf for rows in per_model.values()))
        lines += [f"**{steps} steps, at most {budget(steps, target)} passes ({target:.2f}×)**: PSNR / SSIM / FID against full compute "
                  "of the same seeds, FID-cls and FID against real digits, wall × measured in the same run", ""]
        head = "| method |" + "".join(f" {m}: passes | PSNR | SSIM | FID vs full | FID-cls | FID | wall × |" for m in models)
        lines += [head, "|---|" + "---:|" * (7 * len(models))]

        def cells(r):
            if r is None:
                return " – |" * 7
            return (f" {_fmt(r['full_passes'], 1)} | {_fmt(r['psnr'])} | {_fmt(r['ssim'], 4)} | {_fmt(r.get('fid_full'))} | "
                    f"{_fmt(r['fid_cls'])} | {_fmt(r['fid'])} | {_fmt(r['wall_speedup'])} |")

        for k in methods:
            lines.append(f"| {k} |" + "".join(cells(per_model[m].get(k)) for m in models))
        lines.append("| *full compute* |" + "".join(
            " – |" * 7 if fulls[m] is None else f" {steps} | ∞ | 1 | 0 | {_fmt(fulls[m]['fid_cls'])} | {_fmt(fulls[m]['fid'])} | 1.00 |" for m in models))
        lines.append("")
    return "\n".join(lines)


def _jsonable(v):
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return None
    if isinstance(v, tuple):
        return list(v)
    return str(v)


def machine_meta(options) -> dict[str, Any]:
    import datetime

    return {
        "samples": options.samples,
        "seed": options.seed,
        "steps": list(options.steps),
        "targets": list(options.targets),
        "machine": f"{platform.machine()} CPU" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
    }
