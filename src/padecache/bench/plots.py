"""``pareto.png`` and ``grid.png`` from records (and, for the grid, the first images of each run).

Plots use matplotlib's object-oriented API on an Agg canvas: no ``pyplot`` state and no ``matplotlib.use``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .records import Record
from .report import annotate, equal_compute, headline, headline_targets, ours_label, ranking_metric

__all__ = ["pareto_plot", "grid_plot", "family_colours", "upper_envelope"]

OURS_COLOUR = "#d62728"  # red, reserved for ours


def family_colours(names: Sequence[str], ours: str | None = None) -> dict[str, Any]:
    """A distinct colour per name (no repeats, however many), red kept for ``ours``."""
    from matplotlib import colormaps
    from matplotlib.colors import hsv_to_rgb, to_hex

    palette = [to_hex(c) for c in colormaps["tab10"].colors]
    palette += [to_hex(c) for c in colormaps["tab20"].colors[1::2]]  # the lighter tab20 shades
    palette += [to_hex(c) for c in colormaps["tab20b"].colors[::2]] + [to_hex(c) for c in colormaps["tab20c"].colors[::2]]
    palette = list(dict.fromkeys(c for c in palette if c not in (OURS_COLOUR, "#ff9896")))  # no red but ours'
    others = [n for n in names if n != ours]
    while len(palette) < len(others):  # more families than the palettes: evenly spaced hues, never red
        k = len(palette)
        palette.append(to_hex(hsv_to_rgb((0.08 + 0.84 * ((k * 0.618) % 1.0), 0.65, 0.75))))
    out = {n: palette[i] for i, n in enumerate(others)}
    if ours is not None:
        out[ours] = OURS_COLOUR
    return out


def upper_envelope(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (higher speedup and higher score), by speedup."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return sorted(front)


def _strongest_other(records: Sequence[Record], ours: str | None, targets, metric) -> str | None:
    """The best method outside ours' group at the first headline target (the one to beat)."""
    entries = headline(records, ours, targets)
    if not entries:
        return None
    e = entries[0]
    cands = [e[k] for k in ("taylorseer", "other", "reuse") if e.get(k) is not None]
    if not cands:
        return None
    return max(cands, key=lambda r: r.scores.get(metric) if r.scores.get(metric) is not None else math.inf).method


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def pareto_plot(records: Sequence[Record], path: str | Path, ours: str | None = None, targets: Sequence[float] | None = None) -> None:
    """Score against pass speedup, one panel per (model, steps): each family's upper envelope, every run as a dot.

    Every family has its own colour (and a marker, to tell neighbouring shades apart); ours is red and drawn
    on top, the strongest other method thick.  The legend sits beside the panels, outside the data.
    """
    from matplotlib.lines import Line2D

    records = annotate(records)
    ours = ours_label(records, ours)
    metric = ranking_metric(records)
    runs = [r for r in records if r.scored and r.kind != "reference" and r.pass_speedup and metric and r.scores.get(metric) is not None]
    keys = sorted({(r.model, r.steps) for r in runs}, key=lambda k: (k[0], k[1] or 0))
    if not keys:
        fig = _figure(6, 2)
        fig.text(0.5, 0.5, "no finished runs with a score", ha="center", va="center")
        fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)
        return
    families = list(dict.fromkeys(r.method for r in runs))
    rival = _strongest_other(records, ours, targets, metric)
    order = [m for m in (ours, rival) if m in families] + [m for m in families if m not in (ours, rival)]
    colours = family_colours(order, ours)
    markers = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(order)}
    ncol = 1 if len(order) <= 24 else 2 if len(order) <= 48 else 3
    rows = math.ceil(len(order) / ncol)
    panel_w, legend_w, left, title_h, bottom = 6.8, 2.75 * ncol, 0.8, 1.0, 0.65
    width = left + panel_w * len(keys) + 0.5 * (len(keys) - 1) + legend_w + 0.3
    height = max(5.0, title_h + bottom + 0.19 * rows + 0.6)
    fig = _figure(width, height)
    right_edge = (left + panel_w * len(keys) + 0.5 * (len(keys) - 1)) / width
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    fig.subplots_adjust(left=left / width, right=right_edge, top=1 - title_h / height, bottom=bottom / height,
                        wspace=0.5 / panel_w)
    label = "PSNR vs full compute (dB)" if metric == "psnr" else f"{metric} vs full compute"
    swept = sorted({r.target for r in records if r.target and r.kind != "reference"})
    for ax, (model, steps) in zip(axes, keys):
        panel = [r for r in runs if r.model == model and r.steps == steps]
        for t in swept:
            ax.axvline(t, color="0.88", lw=0.8, zorder=0)
        for method in reversed(order):  # ours last: on top
            pts = [(r.pass_speedup, r.scores[metric]) for r in panel if r.method == method]
            if not pts:
                continue
            front = upper_envelope(pts)
            strong = method in (ours, rival)
            lw, ms, z = (3.0, 7, 6) if method == ours else (2.2, 6, 5) if strong else (1.1, 4, 3)
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, marker=markers[method], color=colours[method], alpha=0.3,
                       lw=0, zorder=z - 1)
            ax.plot([p[0] for p in front], [p[1] for p in front], "-", marker=markers[method], color=colours[method], lw=lw, ms=ms,
                    zorder=z, alpha=1.0 if strong else 0.8)
        ax.set_xlabel("pass speedup (full compute's block-stack passes / the run's)")
        ax.set_ylabel(label)
        ax.set_title(f"{model}, {steps} steps" if steps else model, fontsize=11)
        ax.grid(alpha=0.25)
    handles, names = [], []
    for m in order:
        strong = m in (ours, rival)
        handles.append(Line2D([], [], color=colours[m], marker=markers[m], lw=3.0 if m == ours else 2.2 if strong else 1.1,
                              ms=7 if strong else 4.5))
        names.append(m + (" (ours)" if m == ours else " (strongest other)" if m == rival else ""))
    fig.legend(handles, names, loc="upper left", bbox_to_anchor=(right_edge + 0.25 / width, 1 - title_h / height), ncol=ncol,
               fontsize=8, frameon=False, title="upper envelope of each method\n(faint dots: every run)", title_fontsize=8,
               alignment="left", borderaxespad=0.0)
    centre = (left / width + right_edge) / 2
    fig.text(centre, 1 - 0.18 / height, "Quality against compute: higher and further right is better", ha="center", va="top", fontsize=11)
    if swept:
        fig.text(centre, 1 - 0.42 / height, f"grey lines: the target speedups {', '.join(f'{t:.2f}×' for t in swept)}; "
                 "each method's best run within a budget is what the tables compare", ha="center", va="top", fontsize=8, color="0.35")
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)


def _to_display(img, data_range: float):
    """One image ``(C, H, W)`` (or a video's first frame) as an array matplotlib shows: gray ``(H, W)`` or ``(H, W, 3)`` in [0, 1]."""
    import numpy as np

    x = img.float()
    if x.ndim == 4:  # (F, C, H, W): the first frame
        x = x[0]
    x = x.numpy()
    lo = -1.0 if data_range == 2.0 else 0.0
    x = np.clip((x - lo) / data_range, 0, 1)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)


def _grid_methods(records: Sequence[Record], gallery: Mapping[int, Any], ours: str | None, metric: str | None,
                  where: tuple, max_methods: int) -> tuple[list[str], dict[str, tuple[float, int]]]:
    """The grid's methods (ours, the headline's others, the rest by score) and, per method, the record index shown:
    its run that counts at equal compute when it has images, else its run nearest the target."""
    model, steps, target = where
    index = {id(r): i for i, r in enumerate(records)}
    candidates: dict[str, tuple[float, int]] = {}
    for i, r in enumerate(records):
        if r.model != model or r.steps != steps or i not in gallery or not r.scored or r.kind == "reference" or not r.pass_speedup:
            continue
        d = abs(math.log(r.pass_speedup / target))
        if r.method not in candidates or d < candidates[r.method][0] - 1e-9:
            candidates[r.method] = (d, i)
    rows_at = equal_compute([r for r in records if r.model == model], steps, target, metric)
    entries = [e for e in headline(records, ours, [target]) if e["model"] == model and e["steps"] == steps]
    first = [ours] if ours else []
    if entries:
        first += [entries[0][k].method for k in ("taylorseer", "other", "reuse", "published") if entries[0].get(k) is not None]

    def value(m):
        v = records[candidates[m][1]].scores.get(metric) if metric else None
        return math.inf if v is None else v

    rest = sorted((m for m in candidates if m not in first), key=lambda m: -value(m))
    methods = [m for m in dict.fromkeys(first + rest) if m in candidates][:max_methods]
    for m in methods:
        r = rows_at.get(m)
        if r is not None and index.get(id(r)) in gallery:
            candidates[m] = (0.0, index[id(r)])
    return methods, candidates


def grid_plot(records: Sequence[Record], gallery: Mapping[int, Any], path: str | Path, ours: str | None = None,
              targets: Sequence[float] | None = None, gain: float = 10.0, max_methods: int = 8,
              captions: Sequence[str] | None = None) -> None:
    """Full compute, then per method its run nearest the first headline target: the images and ``gain`` × |error|.

    Methods are ours, then the headline's others, then the rest by score (at most ``max_methods``); ``captions``
    (e.g. the prompts) title the columns.
    """
    import numpy as np

    from .metrics import infer_data_range

    records = annotate(records)
    ours = ours_label(records, ours)
    metric = ranking_metric(records)
    full_i = next((i for i, r in enumerate(records) if r.kind == "reference" and i in gallery), None)
    if full_i is None:
        fig = _figure(4, 1)
        fig.text(0.5, 0.5, "no images", ha="center")
        fig.savefig(path, dpi=100)
        return
    model, steps = records[full_i].model, records[full_i].steps
    target = headline_targets(records, targets)[0]
    methods, candidates = _grid_methods(records, gallery, ours, metric, (model, steps, target), max_methods)
    full = gallery[full_i]
    data_range = infer_data_range(full)
    n = min(len(full), 8)
    gap = 0.3  # blank band between methods, in image heights
    ratios = [1.0] + [r for _ in methods for r in (gap, 1.0, 1.0)]
    label_w, cell, title_h = 2.3, 0.85, 0.75 + (0.4 if captions else 0.0)  # room for the columns' captions
    width, height = label_w + n * cell + 0.2, title_h + sum(ratios) * cell + 0.15
    fig = _figure(width, height)
    grid = fig.add_gridspec(len(ratios), n, height_ratios=ratios, left=label_w / width, right=1 - 0.2 / width,
                            top=1 - title_h / height, bottom=0.15 / height, hspace=0.05, wspace=0.04)
    image_rows = [0] + [i for i in range(len(ratios)) if ratios[i] == 1.0 and i > 0]
    axes = [[fig.add_subplot(grid[r, c]) for c in range(n)] for r in image_rows]
    colours = family_colours(methods, ours)

    def show_row(row, imgs, text, colour="black", error=None):
        for col in range(n):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if error is None:
                shown = _to_display(imgs[col], data_range)
                ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            else:
                err = np.abs(imgs[col].float().numpy() - full[col].float().numpy()) / data_range * gain
                err = err.max(axis=0) if err.ndim == 3 else err.reshape(-1, *err.shape[-2:]).max(axis=0)
                ax.imshow(np.clip(err, 0, 1), cmap="inferno", vmin=0, vmax=1, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(1.5 if colour != "black" else 0.5)
        y = axes[row][0].get_position().y0 + axes[row][0].get_position().height / 2
        fig.text((label_w - 0.1) / width, y, text, ha="right", va="center", fontsize=8, color=colour if colour != "black" else "0.1")

    show_row(0, full, f"full compute\n{steps or '?'} passes", "black")
    for col, text in enumerate((captions or ())[:n]):
        axes[0][col].set_title(textwrap.fill(text, 14), fontsize=6, pad=3)
    for k, m in enumerate(methods):
        r = records[candidates[m][1]]
        imgs = gallery[candidates[m][1]]
        score = r.scores.get(metric) if metric else None
        score_txt = "∞" if score is None and metric == "psnr" else ("–" if score is None else f"{score:.1f}")
        unit = " dB" if metric == "psnr" and score is not None else ""
        title = f"{m}{' (ours)' if m == ours else ''}\n{r.passes:g} passes ({r.pass_speedup:.2f}×)\n{(metric or 'score').upper() if metric == 'psnr' else metric} {score_txt}{unit}"
        show_row(1 + 2 * k, imgs, title, colours[m] if m == ours else "black")
        show_row(2 + 2 * k, imgs, f"|error| ×{gain:g}", "0.4", error=True)
    fig.suptitle(f"{model}, {steps} steps, the same seeds: full compute and each method's run nearest {target:.2f}× fewer passes,\n"
                 f"with its |error| against full compute ×{gain:g} (black: none)", fontsize=9, y=1 - 0.08 / height, va="top")
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)
