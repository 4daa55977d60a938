"""The benchmark runner: same model, seeds, labels and step counts for every method; tidy records out.

For each step count it runs full compute once (timed), then every setting of every method on a fresh
copy of the pipeline, counts block-stack passes the same way for everyone (executions of the stack's
linear layers, relative to one full pass), times the generation (median of ``repeats``), and scores
the images against the full-compute images of the same seeds and against real digits.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch

from .methods import DEFAULT_TARGETS, QUICK_FAMILIES, Setting, families, padecache_setting
from .peers import PEER_NAMES, magcache_ratios, peer_settings

__all__ = ["BenchOptions", "BenchResult", "run_bench", "RECORD_FIELDS"]

#: fields every record of results.json carries (other tools read them)
GALLERY = 8  # images per run kept for grid.png

RECORD_FIELDS = (
    "model", "method", "config", "steps", "samples", "seed", "full_passes", "pass_speedup", "wall_s",
    "wall_speedup", "psnr", "ssim", "rel_l2", "class_acc", "fid_cls", "fid",
)


@attrs.frozen
class BenchOptions:
    model: str = "dit-mnist"
    weights: str | None = None  # a directory written by train-reference; default: the bundled weights
    steps: tuple[int, ...] = (20,)
    methods: tuple[str, ...] | None = None  # preset names, TOML paths, family names or peer names
    samples: int = 32
    seed: int = 0
    targets: tuple[float, ...] = DEFAULT_TARGETS
    peers: tuple[str, ...] = PEER_NAMES
    repeats: int = 1
    fid: bool | None = None  # Inception FID: None = when the extra is installed
    fid_targets: tuple[float, ...] = (2.5, 10 / 3)  # Inception FID is slow on a CPU: only these sweep points
    quick: bool = False
    threads: int | None = None

    @classmethod
    def quick_defaults(cls, **kw) -> BenchOptions:
        base = dict(samples=16, targets=(2.5,), peers=("diffusers-taylorseer",), quick=True, fid=False)
        base.update({k: v for k, v in kw.items() if v is not None})
        if base.get("methods") is None:
            base["methods"] = (*QUICK_FAMILIES, "diffusers-taylorseer")
        return cls(**base)


@attrs.define
class BenchResult:
    """Records (one dict per run) and, for the grid, the first images of each run keyed by record index."""

    records: list[dict[str, Any]]
    gallery: dict[int, torch.Tensor]


class PassCounter:
    """Counts real block executions in a transformer's block stack, the same way for every method.

    Each block's first attention module is counted (a skipped or cached block never runs it, and no head
    or embedding calls into it); blocks without one count their linear layers instead.
    """

    def __init__(self, transformer: torch.nn.Module):
        from ..plugins import get_registry

        adapter, _ = get_registry().adapter_for(transformer)
        self.count = 0
        self.handles = []
        for _, _, block in adapter.blocks(transformer):
            attn = next((m for m in block.children() if type(m).__name__.endswith("Attention")), None)
            targets = [attn] if attn is not None else [m for m in block.modules() if isinstance(m, torch.nn.Linear)]
            self.handles += [m.register_forward_hook(self._hit) for m in targets]

    def _hit(self, *_):
        self.count += 1

    def close(self):
        for h in self.handles:
            h.remove()


def _resolve_methods(names: Sequence[str] | None, peers: Sequence[str], steps: int, targets, family: str, ratios) -> tuple[list[Setting], dict[str, str]]:
    """Settings for ``names`` (families, peers, presets or TOML files; default: every family) and ``peers``."""
    from ..config import load_config
    from ..plugins import get_registry
    from .methods import DEFAULT_PRESETS, family_names

    known = set(family_names())
    settings: list[Setting] = []
    peer_names = list(peers)
    presets = [p for p in DEFAULT_PRESETS if p in get_registry().presets]
    for name in [*family_names(), *presets] if names is None else names:
        if name in known:
            settings.extend(families([name])[0].settings(steps, targets))
        elif name in PEER_NAMES:
            if name not in peer_names:
                peer_names.append(name)
        else:
            cfg = load_config(name)  # a preset or a TOML file: one setting, as given
            label = str(name).rsplit("/", 1)[-1].removesuffix(".toml")
            settings.append(padecache_setting(label, cfg))
    peer_list, missing = peer_settings(peer_names, family, steps, targets, ratios)
    return settings + peer_list, missing


def _generate(pipe, labels, steps, seed, attached=None):
    if attached is not None:
        attached.reset()
    start = time.perf_counter()
    images = pipe(labels, num_inference_steps=steps, seed=seed)
    return images, time.perf_counter() - start


def _fid_point(target: float | None, kind: str, options: BenchOptions) -> bool:
    """Inception FID for full compute, the sweep points in ``fid_targets`` and single configs (presets, TOML)."""
    if target is None:
        return kind == "padecache"
    return any(abs(target - t) < 1e-3 for t in (1.0, *options.fid_targets))


def _mean_finite(values: torch.Tensor) -> tuple[float, float]:
    v = values.double()
    finite = v[torch.isfinite(v)]
    if len(finite) < len(v):  # identical images: PSNR is infinite
        return math.inf, 0.0
    se = float(finite.std() / math.sqrt(len(finite))) if len(finite) > 1 else 0.0
    return float(finite.mean()), se


def run_bench(options: BenchOptions, progress: bool = True) -> BenchResult:
    """Run the benchmark described by ``options`` and return its records (see :data:`RECORD_FIELDS`)."""
    from ..models import load_reference
    from ..models.classifier import load_classifier
    from ..models.data import load_bundled_digits, to_model_space, crop_digits
    from . import metrics

    if options.threads:
        torch.set_num_threads(options.threads)
    pipe = load_reference(options.model, options.weights)
    family = pipe.spec.family
    labels = [i % 10 for i in range(options.samples)]
    label_t = torch.tensor(labels)
    classifier = load_classifier()
    real_imgs, _ = load_bundled_digits()
    real = crop_digits(to_model_space(real_imgs[:: max(1, len(real_imgs) // 2000)]))
    real_cls = metrics.classifier_features(real, classifier)
    use_fid = metrics.inception_available() if options.fid is None else options.fid
    # real side of the Inception FID: 500 digits, or twice the sample count for large runs (FID's bias shrinks with both)
    real_inc = metrics.inception_features(real[: max(500, 2 * options.samples)]) if use_fid else None

    records: list[dict[str, Any]] = []
    gallery: dict[int, torch.Tensor] = {}
    for steps in options.steps:
        peers = options.peers if options.methods is None else ()
        ratios = None
        if "diffusers-magcache" in (*peers, *(options.methods or ())):
            ratios = magcache_ratios(pipe, steps, labels[:10], options.seed + 12345)  # calibration seeds differ
        settings, missing = _resolve_methods(options.methods, peers, steps, options.targets, family, ratios)

        _generate(pipe, labels[: min(len(labels), 8)], steps, options.seed)  # warm-up, untimed
        counter = PassCounter(pipe.transformer)
        full_walls = []
        for _ in range(max(1, options.repeats)):
            counter.count = 0
            ref, wall = _generate(pipe, labels, steps, options.seed)
            full_walls.append(wall)
        per_pass = counter.count / steps
        counter.close()
        # the full-compute set is a second FID reference: the shift caching causes, free of the model's own gap to real digits
        ref_cls = metrics.classifier_features(ref, classifier)
        ref_inc = metrics.inception_features(ref) if use_fid else None
        full_wall = statistics.median(full_walls)

        def score(images, method, config, wall, passes, kind, target, extra):
            p, p_se = _mean_finite(metrics.psnr(images, ref))
            # full compute is scored against itself: reuse its features rather than extract them twice
            cls_feat = ref_cls if images is ref else metrics.classifier_features(images, classifier)
            wants_inc = use_fid and _fid_point(target, kind, options)
            inc_feat = (ref_inc if images is ref else metrics.inception_features(images)) if wants_inc else None
            rec = {
                "model": options.model, "method": method, "config": config, "steps": steps,
                "samples": options.samples, "seed": options.seed, "full_passes": round(passes, 4),
                "pass_speedup": round(steps / passes, 4) if passes else None, "wall_s": round(wall, 4),
                "wall_speedup": round(full_wall / wall, 4), "psnr": None if math.isinf(p) else round(p, 3),
                "psnr_se": round(p_se, 3), "ssim": round(float(metrics.ssim(images, ref).mean()), 5),
                "rel_l2": round(float(metrics.rel_l2(images, ref).mean()), 5),
                "class_acc": round(metrics.class_accuracy(images, label_t, classifier), 4),
                "fid_cls": round(metrics.frechet_distance(cls_feat, real_cls), 3),
                "fid": None if inc_feat is None else round(metrics.frechet_distance(inc_feat, real_inc), 3),
                "fid_cls_full": round(metrics.frechet_distance(cls_feat, ref_cls), 3),
                "fid_full": None if inc_feat is None else round(metrics.frechet_distance(inc_feat, ref_inc), 3),
                "kind": kind, "target_speedup": None if target is None else round(target, 3),
                "status": "ok", **extra,
            }
            gallery[len(records)] = images[:GALLERY].clone()
            records.append(rec)
            return rec

        first_of_steps = len(records)
        score(ref, "full", {"predictor": {"name": "none"}, "policy": {"name": "always"}}, full_wall, steps, "reference", 1.0, {"fallbacks": 0})
        for name, reason in missing.items():
            records.append({"model": options.model, "method": name, "config": {}, "steps": steps, "samples": options.samples,
                            "seed": options.seed, "kind": "peer", "status": f"skipped: {reason}",
                            **{k: None for k in RECORD_FIELDS if k not in ("model", "method", "config", "steps", "samples", "seed")}})
        bar = _progress(settings, f"{options.model} {steps} steps", progress)
        for setting in bar:
            run_pipe = copy.deepcopy(pipe)
            counter = PassCounter(run_pipe.transformer)
            try:
                attached = setting.attach(run_pipe)
                _generate(run_pipe, labels[:2], steps, options.seed, attached)  # warm-up, untimed
                walls, images = [], None
                for _ in range(max(1, options.repeats)):
                    counter.count = 0
                    images, wall = _generate(run_pipe, labels, steps, options.seed, attached)
                    walls.append(wall)
                stats = attached.stats()
                attached.detach()
            except Exception as err:  # a peer that breaks is reported, not hidden; our own failures are bugs
                if setting.kind != "peer":
                    raise
                records.append({"model": options.model, "method": setting.method, "config": setting.config, "steps": steps,
                                "samples": options.samples, "seed": options.seed, "kind": setting.kind,
                                "status": f"failed: {type(err).__name__}: {err}"[:300],
                                **{k: None for k in RECORD_FIELDS if k not in ("model", "method", "config", "steps", "samples", "seed")}})
                continue
            finally:
                counter.close()
            passes = counter.count / per_pass
            extra = {"fallbacks": getattr(stats, "fallbacks", None), "cache_bytes": getattr(stats, "cache_bytes", None)}
            if stats is not None and getattr(stats, "total_steps", 0):
                extra["mask"] = "".join("#" if m else "." for m in stats.mask())
            score(images, setting.method, setting.config, statistics.median(walls), passes, setting.kind, setting.target, extra)
        # time full compute again after the sweep: machine load drifts, the reference must see the same
        for _ in range(max(1, options.repeats)):
            full_walls.append(_generate(pipe, labels, steps, options.seed)[1])
        full_wall_all = statistics.median(full_walls)
        for rec in records:
            if rec["steps"] == steps and rec["model"] == options.model and rec.get("wall_s"):
                rec["wall_speedup"] = round(full_wall_all / rec["wall_s"], 4)
        records[first_of_steps].update(wall_s=round(full_wall_all, 4), wall_speedup=1.0)
    return BenchResult(records, gallery)


def _progress(items, desc, enabled):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the bench extra; without it, no bar
        return items
    return tqdm(items, desc=desc, unit="run")
