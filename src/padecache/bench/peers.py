"""The other tools a user could pick, run through their own public APIs on the same pipeline and seeds.

* diffusers' built-in hooks: ``TaylorSeerCacheConfig`` (whole blocks via ``cache_identifiers``, with its
  own knobs: warm-up 2 or 3 steps, the densest interval within the budget, orders 1 and 2),
  ``FirstBlockCacheConfig`` and ``MagCacheConfig`` (its magnitude ratios calibrated on this pipeline and
  step count, as its docs prescribe);
* cache-dit's ``DBCache`` (F1B0, static step mask equal to padecache's even budget mask) with its
  TaylorSeer, FoCa and DMD calibrators (extra ``peers``).

A peer that is not installed or fails is reported as such (``status`` of its record), never faked.  Peers'
hooks have no public removal, so each runs on a copy of ``pipe.transformer`` swapped into the pipeline.
Block-stack passes are counted the same way for every method by the runner, so cache-dit's
always-computed first block is counted too.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Sequence

from .families import budget_passes, densest, range_passes
from .settings import Attached, Method, RunContext, Setting

__all__ = ["PEER_NAMES", "peer_status", "peer_method", "magcache_ratios"]

PEER_NAMES = ("diffusers-taylorseer", "diffusers-fbc", "diffusers-magcache", "cache-dit")


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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


def _on_copy(pipe, hook) -> Attached:
    """Run a peer on a copy of ``pipe.transformer``: ``hook(copy)`` attaches it and returns its reset function."""
    original = pipe.transformer
    hooked = copy.deepcopy(original)
    reset = hook(hooked) or (lambda: None)
    pipe.transformer = hooked

    def suspend():
        pipe.transformer = original

    def resume():
        pipe.transformer = hooked

    return Attached(reset=reset, suspend=suspend, resume=resume, close=suspend)


def _diffusers_hook(apply_fn, config):
    def hook(transformer):
        from diffusers.hooks.hooks import CacheContext, HookRegistry, _set_cache_context

        apply_fn(transformer, config)
        registry = HookRegistry.check_if_exists_or_initialize(transformer)
        registry.invalidate_child_registries_cache()
        batched = not hasattr(transformer, "cache_context")  # e.g. DiT: the pipeline never names a context

        def reset():
            registry.reset_stateful_hooks()
            if batched:
                _set_cache_context(transformer, CacheContext("cond"))

        return reset

    return hook


def _diffusers_taylorseer_mask(steps: int, interval: int, before: int) -> list[bool]:
    """diffusers computes step s when s < before or (s - before - 1) % interval == 0."""
    return [s < before or (s - before - 1) % interval == 0 for s in range(steps)]


#: peer parameters too long or too constant to show in tables
_UNSHOWN = ("peer", "cache_identifiers", "steps_computation_mask", "taylor_factors_dtype", "calibrated_on")


def _peer_setting(method, config, attach, target, group, plugin, version) -> Setting:
    summary = ", ".join(f"{k}={v}" for k, v in config.items() if k not in _UNSHOWN)
    return Setting(method, config, attach, target, "peer", plugin, version, group, group == "taylorseer",
                   {"peer": {"name": config.get("peer", method), "plugin": plugin, "version": version}}, summary=summary)


def _taylorseer(ctx: RunContext, targets: Sequence[float]) -> list[Setting]:
    import torch
    from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache

    if ctx.steps is None:
        raise ValueError("diffusers-taylorseer needs the step count, which could not be read from this pipeline")
    patterns = [rf"^{name}\.\d+$" for name in ctx.block_lists]
    out = []
    for order in (1, 2):
        for target in targets:
            for before in (2, 3):
                interval = densest(ctx.steps, target, lambda n, b=before: sum(_diffusers_taylorseer_mask(ctx.steps, n, b)),
                                   range(1, ctx.steps + 1))
                if interval is None:
                    continue
                params = dict(cache_interval=interval, disable_cache_before_step=before, disable_cache_after_step=None,
                              max_order=order, taylor_factors_dtype="float32", cache_identifiers=patterns)

                def attach(pipe, params=params):
                    cfg = TaylorSeerCacheConfig(**{**params, "taylor_factors_dtype": torch.float32})
                    return _on_copy(pipe, _diffusers_hook(apply_taylorseer_cache, cfg))

                out.append(_peer_setting(f"diffusers-taylorseer-O{order}", {"peer": "diffusers.TaylorSeerCacheConfig", **params},
                                         attach, target, "taylorseer", "diffusers", _version("diffusers")))
    return out


def _fbc(ctx: RunContext, targets: Sequence[float]) -> list[Setting]:
    from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache

    out = []
    for threshold in (0.02, 0.05, 0.1, 0.2, 0.4):
        def attach(pipe, threshold=threshold):
            return _on_copy(pipe, _diffusers_hook(apply_first_block_cache, FirstBlockCacheConfig(threshold=threshold)))

        out.append(_peer_setting("diffusers-fbc", {"peer": "diffusers.FirstBlockCacheConfig", "threshold": threshold}, attach,
                                 None, "diffusers-fbc", "diffusers", _version("diffusers")))
    return out


def _magcache(ctx: RunContext, targets: Sequence[float]) -> list[Setting]:
    from diffusers.hooks import MagCacheConfig, apply_mag_cache

    if ctx.steps is None or ctx.generate is None:
        raise ValueError("diffusers-magcache calibrates on the pipeline and needs its step count")
    ratios = magcache_ratios(ctx.pipe, ctx.generate, ctx.seeds[0] + 12345, ctx.steps)  # calibration seeds differ
    out = []
    for threshold in (0.02, 0.06, 0.12, 0.25, 0.5):
        def attach(pipe, threshold=threshold):
            cfg = MagCacheConfig(threshold=threshold, num_inference_steps=ctx.steps, mag_ratios=list(ratios), max_skip_steps=3)
            return _on_copy(pipe, _diffusers_hook(apply_mag_cache, cfg))

        params = {"peer": "diffusers.MagCacheConfig", "threshold": threshold, "max_skip_steps": 3, "calibrated_on": "this pipeline"}
        out.append(_peer_setting("diffusers-magcache", params, attach, None, "diffusers-magcache", "diffusers", _version("diffusers")))
    return out


def _cache_dit(ctx: RunContext, targets: Sequence[float]) -> list[Setting]:
    from ..policies import budget_mask

    if ctx.steps is None:
        raise ValueError("cache-dit's static mask needs the step count, which could not be read from this pipeline")
    steps = ctx.steps
    separate = ctx.calls_per_step > 1
    out = []
    for calibrator in ("taylorseer-1", "taylorseer-2", "foca", "dmd"):
        for target in targets:
            # its first block runs on every step: the full passes are planned at equal block-pass cost, as a family's
            blocks = ctx.num_blocks or 0
            passes = budget_passes(steps, target) if blocks < 2 else range_passes(steps, target, 1 / blocks)
            if passes is None:
                continue
            mask = [int(m) for m in budget_mask(steps, passes, 3, False, 1.0, tail_gaps=0.7)]  # the even schedule
            params = {"peer": "cache_dit.DBCacheConfig", "Fn_compute_blocks": 1, "Bn_compute_blocks": 0,
                      "steps_computation_mask": mask, "calibrator": calibrator}

            def attach(pipe, mask=mask, calibrator=calibrator):
                import cache_dit
                from cache_dit import (
                    DBCacheConfig,
                    DMDCalibratorConfig,
                    FoCaCalibratorConfig,
                    TaylorSeerCalibratorConfig,
                )

                make = {
                    "taylorseer-1": lambda: TaylorSeerCalibratorConfig(taylorseer_order=1),
                    "taylorseer-2": lambda: TaylorSeerCalibratorConfig(taylorseer_order=2),
                    "foca": FoCaCalibratorConfig,
                    "dmd": DMDCalibratorConfig,
                }[calibrator]

                def hook(transformer):
                    cache_dit.enable_cache(
                        transformer,
                        cache_config=DBCacheConfig(
                            Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=10.0, max_warmup_steps=3,
                            num_inference_steps=steps, steps_computation_mask=mask, steps_computation_policy="static",
                            enable_separate_cfg=separate,
                        ),
                        calibrator_config=make(),
                    )

                    def reset():
                        refresh = getattr(cache_dit, "refresh_context", None)
                        if refresh is not None:
                            refresh(transformer, num_inference_steps=steps)

                    return reset

                return _on_copy(pipe, hook)

            out.append(_peer_setting(f"cache-dit+{calibrator}", params, attach, target, "cache-dit", "cache-dit", _version("cache-dit")))
    return out


_BUILDERS = {"diffusers-taylorseer": _taylorseer, "diffusers-fbc": _fbc, "diffusers-magcache": _magcache, "cache-dit": _cache_dit}


def peer_method(name: str) -> Method:
    """The peer ``name`` as a :class:`~padecache.bench.methods.Method`; a missing peer expands to a skip."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")
    plugin = "cache-dit" if name == "cache-dit" else "diffusers"

    def expand(steps, targets, context):
        reason = peer_status(name)
        if reason is not None:
            return [_skipped(name, plugin, reason)]
        ctx = context if context is not None else RunContext(steps=steps)
        return _BUILDERS[name](ctx, list(targets))

    return Method(name, "peer", expand, plugin, _version(plugin))


def _skipped(name: str, plugin: str, reason: str) -> Setting:
    def attach(pipe):
        raise RuntimeError(reason)

    return Setting(name, {"peer": name}, attach, None, "peer", plugin, _version(plugin), name, skip=reason)


def magcache_ratios(pipe, generate, seed: int, steps: int) -> list[float]:
    """MagCache's calibration on this pipeline: per step, mean over tokens of ``||R_t|| / ||R_{t-1}||``.

    ``R`` is the block stack's residual (head input minus stack input), on the conditional rows: the first
    call of each step when guidance runs as two calls, the first half of the batch otherwise.
    """
    import torch

    from ..plugins import get_registry

    transformer = pipe.transformer
    adapter, _ = get_registry().adapter_for(transformer)
    if hasattr(adapter, "resolve"):
        adapter = adapter.resolve(transformer)
    list_name, _, first = adapter.blocks(transformer)[0]
    head = adapter.head_module(transformer)
    inputs: list[torch.Tensor] = []
    norms: list[torch.Tensor] = []

    def on_first(module, args, kwargs):
        inputs.append(adapter.stack_input(list_name, module, module.forward, args, kwargs).detach().float())

    def on_head(module, args, kwargs):
        out = args[0] if args else kwargs["hidden_states"]
        norms.append(torch.linalg.norm(out.detach().float() - inputs[-1], dim=-1))

    handles = [first.register_forward_pre_hook(on_first, with_kwargs=True), head.register_forward_pre_hook(on_head, with_kwargs=True)]
    try:
        generate(pipe, seed)
    finally:
        for h in handles:
            h.remove()
    if len(norms) >= 2 * steps:  # guidance as two calls per step: the conditional call comes first
        per_step = [n for n in norms[0::2]]
    else:
        per_step = [n[: n.shape[0] // 2] if n.shape[0] > 1 else n for n in norms]
    ratios = [1.0] + [float((b / (a + 1e-8)).mean()) for a, b in zip(per_step, per_step[1:])]
    return ratios[:steps]
