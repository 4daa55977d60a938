"""The other tools a user could pick, run through their own public APIs on the same models and seeds.

* diffusers' built-in hooks: ``TaylorSeerCacheConfig`` (whole blocks via ``cache_identifiers``, the
  strongest baseline of the prototype study), ``FirstBlockCacheConfig`` and ``MagCacheConfig`` (its
  magnitude ratios calibrated on this model and step count, as its docs prescribe);
* cache-dit's ``DBCache`` (F1B0, static step mask equal to padecache's budget mask) with its
  TaylorSeer, FoCa and DMD calibrators (extra ``peers``).

A peer that is not installed or fails is reported as such (``status`` in the records), never faked.
Block-stack passes of every method, ours included, are counted the same way by the runner (executions
of the stack's linear layers), so cache-dit's always-computed first block is counted too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

import torch

from .methods import Attached, Setting, budget_passes
from ..policies import budget_mask

__all__ = ["peer_settings", "PEER_NAMES", "peer_status"]

PEER_NAMES = ("diffusers-taylorseer", "diffusers-fbc", "diffusers-magcache", "cache-dit")

_BLOCK_PATTERNS = {
    "dit": [r"^transformer_blocks\.\d+$"],
    "flux": [r"^transformer_blocks\.\d+$", r"^single_transformer_blocks\.\d+$"],
}


def peer_status(name: str) -> str | None:
    """``None`` when the peer can run here, else why not."""
    if name == "cache-dit" and importlib.util.find_spec("cache_dit") is None:
        return "not installed (pip install 'padecache[peers]')"
    if name.startswith("diffusers-"):
        try:
            from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig  # noqa: F401
        except ImportError as err:
            return f"this diffusers has no {name[10:]} hook ({err})"
    return None


def _diffusers_attach(pipe, apply_fn, config) -> Attached:
    from diffusers.hooks.hooks import CacheContext, HookRegistry, _set_cache_context

    transformer = pipe.transformer
    apply_fn(transformer, config)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    registry.invalidate_child_registries_cache()
    batched = not hasattr(transformer, "cache_context")  # e.g. DiT: the pipeline never names a context

    def reset():
        registry.reset_stateful_hooks()
        if batched:
            _set_cache_context(transformer, CacheContext("cond"))

    return Attached(reset=reset)


def _diffusers_taylorseer_mask(steps: int, interval: int, before: int, after: int | None) -> list[bool]:
    """diffusers computes step s when s < before, (s - before - 1) % interval == 0, or s >= after."""
    return [s < before or (s - before - 1) % interval == 0 or (after is not None and s >= after) for s in range(steps)]


def _taylorseer(family: str, steps: int, target: float, order: int) -> list[Setting]:
    """diffusers' own knobs at this budget: warm-up 2 or 3 steps, the densest interval that fits."""
    from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache

    cap = budget_passes(steps, target)
    out = []
    for before in (2, 3):
        fits = [(sum(_diffusers_taylorseer_mask(steps, n, before, None)), n) for n in range(1, steps + 1)]
        fits = [f for f in fits if f[0] <= cap]
        if not fits:
            continue
        interval = max(fits)[1]
        params = dict(cache_interval=interval, disable_cache_before_step=before, disable_cache_after_step=None,
                      max_order=order, taylor_factors_dtype="float32", cache_identifiers=_BLOCK_PATTERNS[family])

        def attach(pipe, params=params):
            cfg = TaylorSeerCacheConfig(**{**params, "taylor_factors_dtype": torch.float32})
            return _diffusers_attach(pipe, apply_taylorseer_cache, cfg)

        out.append(Setting(f"diffusers-taylorseer-O{order}", {"peer": "diffusers.TaylorSeerCacheConfig", **params}, attach, target, "peer"))
    return out


def _fbc(threshold: float) -> Setting:
    from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache

    def attach(pipe):
        return _diffusers_attach(pipe, apply_first_block_cache, FirstBlockCacheConfig(threshold=threshold))

    return Setting("diffusers-fbc", {"peer": "diffusers.FirstBlockCacheConfig", "threshold": threshold}, attach, None, "peer")


def _magcache(threshold: float, steps: int, ratios: list[float]) -> Setting:
    from diffusers.hooks import MagCacheConfig, apply_mag_cache

    def attach(pipe):
        cfg = MagCacheConfig(threshold=threshold, num_inference_steps=steps, mag_ratios=list(ratios), max_skip_steps=3)
        return _diffusers_attach(pipe, apply_mag_cache, cfg)

    params = {"peer": "diffusers.MagCacheConfig", "threshold": threshold, "max_skip_steps": 3, "calibrated_on": "this model"}
    return Setting("diffusers-magcache", params, attach, None, "peer")


def _cache_dit(steps: int, target: float, calibrator: str) -> Setting:
    mask = [int(m) for m in budget_mask(steps, budget_passes(steps, target), 3, False, 1.0, 0.1)]  # the even schedule
    params = {"peer": "cache_dit.DBCacheConfig", "Fn_compute_blocks": 1, "Bn_compute_blocks": 0, "steps_computation_mask": mask, "calibrator": calibrator}

    def attach(pipe):
        import os

        os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")  # read once, at its import: its per-run INFO lines drown the bench's output
        import cache_dit
        from cache_dit import DBCacheConfig, DMDCalibratorConfig, FoCaCalibratorConfig, TaylorSeerCalibratorConfig

        cache_dit.disable_print() if hasattr(cache_dit, "disable_print") else None
        calibrators = {
            "none": None,
            "taylorseer-1": lambda: TaylorSeerCalibratorConfig(taylorseer_order=1),
            "taylorseer-2": lambda: TaylorSeerCalibratorConfig(taylorseer_order=2),
            "foca": lambda: FoCaCalibratorConfig(),
            "dmd": lambda: DMDCalibratorConfig(),
        }
        make = calibrators[calibrator]
        separate = getattr(pipe.spec, "cfg", "batched") == "separate"
        cache_dit.enable_cache(
            pipe.transformer,
            cache_config=DBCacheConfig(
                Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=10.0, max_warmup_steps=3,
                num_inference_steps=steps, steps_computation_mask=mask, steps_computation_policy="static",
                enable_separate_cfg=separate,
            ),
            calibrator_config=None if make is None else make(),
        )

        def reset():
            refresh = getattr(cache_dit, "refresh_context", None)
            if refresh is not None:
                refresh(pipe.transformer, num_inference_steps=steps)

        return Attached(reset=reset, detach=lambda: cache_dit.disable_cache(pipe.transformer))

    return Setting(f"cache-dit+{calibrator}", params, attach, target, "peer")


def magcache_ratios(pipe, steps: int, labels, seed: int) -> list[float]:
    """MagCache's calibration on this model: mean over tokens of ||R_t|| / ||R_{t-1}||, conditional rows."""
    from ..plugins import get_registry

    adapter, _ = get_registry().adapter_for(pipe.transformer)
    first = adapter.blocks(pipe.transformer)[0][2]
    head = adapter.head_module(pipe.transformer)
    batched = getattr(pipe.spec, "cfg", "batched") == "batched"
    inputs: list[torch.Tensor] = []
    norms: list[torch.Tensor] = []

    def on_first(module, args, kwargs):
        inputs.append(adapter.stack_input(args, kwargs).detach().float())

    def on_head(module, args, kwargs):
        res = args[0].detach().float() - inputs[-1]
        norms.append(torch.linalg.norm(res[: res.shape[0] // 2] if batched else res, dim=-1))

    handles = [first.register_forward_pre_hook(on_first, with_kwargs=True), head.register_forward_pre_hook(on_head, with_kwargs=True)]
    try:
        pipe(labels, num_inference_steps=steps, seed=seed)
    finally:
        for h in handles:
            h.remove()
    per_step = norms if batched else norms[0::2]  # separate CFG: cond is the first call of each step
    ratios = [1.0] + [float((b / (a + 1e-8)).mean()) for a, b in zip(per_step, per_step[1:])]
    return ratios[:steps]


def peer_settings(names: Iterable[str], family: str, steps: int, targets: Iterable[float], ratios: list[float] | None = None) -> tuple[list[Setting], dict[str, str]]:
    """Settings of the available peers and a ``{peer: reason}`` map of those that cannot run."""
    targets = list(targets)
    settings: list[Setting] = []
    missing: dict[str, str] = {}
    for name in names:
        reason = peer_status(name)
        if reason is not None:
            missing[name] = reason
            continue
        if name == "diffusers-taylorseer":
            for order in (1, 2):
                seen = set()
                for t in targets:
                    for s in _taylorseer(family, steps, t, order):
                        key = (s.config["cache_interval"], s.config["disable_cache_before_step"])
                        if key not in seen:
                            seen.add(key)
                            settings.append(s)
        elif name == "diffusers-fbc":
            settings.extend(_fbc(th) for th in (0.02, 0.05, 0.1, 0.2, 0.4))
        elif name == "diffusers-magcache":
            if ratios is None:
                missing[name] = "not calibrated"
                continue
            settings.extend(_magcache(th, steps, ratios) for th in (0.02, 0.06, 0.12, 0.25, 0.5))
        elif name == "cache-dit":
            for calibrator in ("taylorseer-1", "taylorseer-2", "foca", "dmd"):
                settings.extend(_cache_dit(steps, t, calibrator) for t in targets)
        else:
            raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")
    return settings, missing
