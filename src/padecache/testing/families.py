"""A factual survey of diffusers 0.42's transformer families, with tiny random-weight models and sampling loops.

The survey is a table (:mod:`padecache.testing.family_table`): one :class:`FamilySpec` row per family says, for
the family's *main* pipeline in diffusers 0.42.1, which model class it is with a tiny config (< 0.5M parameters, a
forward in a few ms on CPU), what the pipeline passes to the transformer and in which layout, how the time it passes
relates to the scheduler's timesteps, the scheduler, how guidance runs and which ``cache_context`` names it sets, and
where a block-stack cache hooks (block lists in execution order, refiners that always run, the head, what each block
takes and returns, checked against diffusers' ``TransformerBlockRegistry``).

:func:`tiny_transformer` builds a family's model; :func:`run_loop` runs a plain sampling loop that calls the
transformer exactly the way the pipeline does (same time value, same guidance batching, same ``cache_context``
names), generically from the row; :func:`verify` re-checks the structural claims of a row by running the model (the
tests call it for every family).  ``run_loop`` combines guidance with the plain ``uncond + g * (cond - uncond)``
rule; pipeline-specific extras (CFG renormalisation, CFG truncation, x0-space guidance, Cosmos' EDM double step)
change the numbers, not the calls the transformer sees.
"""

from __future__ import annotations

from typing import Any

from .family_spec import BlockIO, FamilySpec, Time, expand_time, outputs
from .family_table import FAMILIES as _TABLE
from .family_table import UNSUPPORTED

__all__ = [
    "FAMILIES",
    "UNSUPPORTED",
    "BlockIO",
    "FamilySpec",
    "Time",
    "count_parameters",
    "family",
    "family_names",
    "initial_latents",
    "make_scheduler",
    "run_loop",
    "tiny_transformer",
    "verify",
]

#: every surveyed family by name, in table order
FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in _TABLE}


# ---------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------


def family(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None


def family_names() -> list[str]:
    return list(FAMILIES)


def tiny_transformer(name: str, seed: int = 0):
    """The family's model built from ``tiny_config`` with random weights (``torch.manual_seed(seed)``), in eval mode.

    Parameters the model initialises to all-zeros (adaLN-zero gates, zero-initialised output projections, as in
    ERNIE-Image) are redrawn from N(0, 0.02), so a random model's prediction is not identically zero.
    """
    import diffusers
    import torch

    spec = family(name)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model = getattr(diffusers, spec.model_class)(**dict(spec.tiny_config))
        if spec.post_build is not None:
            spec.post_build(model)
        with torch.no_grad():  # zero-initialised gates/output layers would make every prediction 0
            for param in model.parameters():
                if param.numel() and not param.any():
                    param.normal_(0.0, 0.02)
    return model.eval()


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_scheduler(name: str):
    """The family's default scheduler (class and kwargs from the spec)."""
    import diffusers

    spec = family(name)
    return getattr(diffusers, spec.scheduler)(**dict(spec.scheduler_kwargs))


def _set_timesteps(spec: FamilySpec, scheduler, steps: int, inputs: dict) -> None:
    """``set_timesteps`` as the pipeline's ``retrieve_timesteps`` does it (sigmas/timesteps/mu when it passes them)."""
    import inspect

    kwargs = dict(spec.timesteps_kwargs(scheduler, steps, inputs)) if spec.timesteps_kwargs else {}
    accepted = set(inspect.signature(scheduler.set_timesteps).parameters)
    if not scheduler.config.get("use_dynamic_shifting", False):
        kwargs.pop("mu", None)
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    params = inspect.signature(scheduler.set_timesteps).parameters
    steps_required = params["num_inference_steps"].default is inspect.Parameter.empty
    if ("sigmas" in kwargs or "timesteps" in kwargs) and not steps_required:
        scheduler.set_timesteps(**kwargs)
    else:
        scheduler.set_timesteps(steps, **kwargs)


def _time_value(spec: FamilySpec, t, rows: int, kwargs: dict):
    import torch

    t = torch.as_tensor(t)
    scale, offset = spec.time_map
    value = t if (scale, offset) == (1.0, 0.0) else offset + scale * t.float()
    return (spec.time_fn or expand_time)(value, rows, kwargs)


def _forward(model, spec: FamilySpec, inputs: dict, latents: dict, t, rows: int, context: str | None, scheduler):
    """One transformer call, laid out as the pipeline lays it out; returns the per-latent predictions."""
    import contextlib

    kwargs = _model_kwargs(inputs)
    for key, value in latents.items():
        if spec.scale_model_input and scheduler is not None:
            value = scheduler.scale_model_input(value, t)
        kwargs[key] = spec.pack(value, inputs) if (spec.pack and key == spec.latent_keys[0]) else value
    kwargs[spec.time_argument] = _time_value(spec, t, rows, kwargs)
    for name in spec.time_copies:
        kwargs[name] = kwargs[spec.time_argument]
    args = [kwargs.pop(n) for n in spec.positional]
    ctx = model.cache_context(context) if (context and hasattr(model, "cache_context")) else contextlib.nullcontext()
    with ctx:
        out = model(*args, **kwargs)
    preds = spec.unpack_output(out) if spec.unpack_output else outputs(out)[: len(spec.latent_keys)]
    result = []
    for key, pred in zip(spec.latent_keys, preds):
        if spec.learned_sigma:
            pred = pred[:, : latents[key].shape[1]]
        if spec.tail_tokens:
            pred = pred[:, -latents[key].shape[1]:]
        result.append(-pred if spec.negate else pred)
    return result


def _model_kwargs(inputs: dict) -> dict:
    """Inputs minus the private entries (``_name``) that only ``pack`` reads."""
    return {k: v for k, v in inputs.items() if not k.startswith("_")}


def initial_latents(spec: FamilySpec, inputs: dict) -> dict:
    first = spec.latent_keys[0]
    out = {first: spec.unpack_latents(inputs) if spec.unpack_latents else inputs[first]}
    for key in spec.latent_keys[1:]:
        out[key] = inputs[key]
    return {k: v.clone() for k, v in out.items()}


def run_loop(name: str, model, steps: int = 20, batch: int = 1, seed: int = 0, scheduler=None,
             guidance_scale: float = 2.0, return_all: bool = False, start: int = 0, **size):
    """A plain sampling loop that calls ``model`` exactly as the family's main pipeline does.

    ``scheduler.set_timesteps`` as the pipeline calls it, then for each ``t`` of ``scheduler.timesteps``: the time
    argument is ``offset + scale * t`` broadcast as the pipeline does; guidance as the pipeline runs it ("batched":
    one call on [uncond, cond] rows; "separate": a cond and an uncond call, each inside ``model.cache_context``
    only if the pipeline sets one; "distilled"/"none": one call); then ``scheduler.step``.  Deterministic given
    ``seed`` (initial noise and conditioning come from ``make_inputs``).  ``start`` > 0 runs the schedule from that step
    on, as img2img and inpainting pipelines do (``strength`` < 1).  Returns the final latents (a tuple of all
    latent streams with ``return_all=True``; LTX-2 has video and audio).
    """
    import copy
    import inspect

    import torch

    spec = family(name)
    scheduler = scheduler if scheduler is not None else make_scheduler(name)
    cond = spec.make_inputs(batch, seed, **size)
    latents = initial_latents(spec, cond)
    _set_timesteps(spec, scheduler, steps, cond)
    if start and hasattr(scheduler, "set_begin_index"):  # img2img, inpainting: the last steps of the schedule run
        scheduler.set_begin_index(start)
    latents = {k: v * getattr(scheduler, "init_noise_sigma", 1.0) for k, v in latents.items()}
    schedulers = {k: (scheduler if i == 0 else copy.deepcopy(scheduler)) for i, k in enumerate(spec.latent_keys)}
    contexts = spec.cfg_contexts or (None, None)
    step_kwargs = {}
    if "generator" in inspect.signature(scheduler.step).parameters:  # ancestral/DDPM noise, as the pipelines seed it
        step_kwargs["generator"] = torch.Generator().manual_seed(seed)
    if spec.cfg == "batched":
        both = spec.make_inputs(2 * batch, seed + 1, **size)
    elif spec.cfg == "separate":
        uncond = spec.make_inputs(batch, seed + 1, **size)

    with torch.inference_mode():
        for i, t in enumerate(scheduler.timesteps[start:], start):
            if spec.step_kwargs is not None:
                step_kwargs.update(spec.step_kwargs(scheduler, i))
            if spec.cfg == "batched":
                doubled = {k: torch.cat([v, v]) for k, v in latents.items()}
                preds = _forward(model, spec, both, doubled, t, 2 * batch, contexts[0], scheduler)
                halves = [p.chunk(2) for p in preds]
                if spec.cfg_order == "cond_first":
                    halves = [(u, c) for c, u in halves]
                preds = [u + guidance_scale * (c - u) for u, c in halves]
            elif spec.cfg == "separate":
                pc = _forward(model, spec, cond, latents, t, batch, contexts[0], scheduler)
                pu = _forward(model, spec, uncond, latents, t, batch, contexts[1] if len(contexts) > 1 else None,
                              scheduler)
                preds = [u + guidance_scale * (c - u) for c, u in zip(pc, pu)]
            else:
                preds = _forward(model, spec, cond, latents, t, batch, contexts[0], scheduler)
            for key, pred in zip(spec.latent_keys, preds):
                latents[key] = schedulers[key].step(pred, t, latents[key], return_dict=False, **step_kwargs)[0]
    out = tuple(latents[k] for k in spec.latent_keys)
    return out if return_all else out[0]


# ---------------------------------------------------------------------------------------------------------------
# verification: re-check a spec's structural claims by running the model
# ---------------------------------------------------------------------------------------------------------------


def _bind(fn, args, kwargs) -> dict:
    import inspect

    bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else None


def _passthrough(io: BlockIO, bound: dict):
    import torch

    def one(src):
        if src.startswith("zeros:"):
            return torch.zeros_like(bound[src[6:]])
        return bound[src]

    return one(io.returns) if isinstance(io.returns, str) else tuple(one(s) for s in io.returns)


def _head_input(args, kwargs):
    if args:
        return args[0]
    for key in ("hidden_states", "x"):
        if key in kwargs:
            return kwargs[key]
    raise TypeError("head called without a hidden input")


def verify(name: str, seed: int = 0) -> dict:
    """Run the tiny model once and check the spec's structural claims; returns a report.

    Keys: ``order`` (blocks in call order), ``stack_input_shape`` (the first block's hidden input),
    ``head_input_shape``, ``same_shape``, ``returns_ok`` (per list: each block returned what ``block_io.returns``
    says), ``metadata`` (per block class: registered, and whether the registry's indices match the real output),
    ``skip_reproduces`` (per model output: with every block returning its inputs and the head's input replaced by
    the recorded head input, the model reproduces its normal output exactly; ``False`` means something after the
    stack depends on the blocks outside the head's input).
    """
    import torch

    with torch.inference_mode():
        return _verify(name, seed)


def _verify(name: str, seed: int) -> dict:
    import torch

    spec = family(name)
    model = tiny_transformer(name, seed)
    inputs = spec.make_inputs(1, seed)
    sched = make_scheduler(name)
    _set_timesteps(spec, sched, 4, inputs)
    t = sched.timesteps[1]
    latents = initial_latents(spec, inputs)

    blocks = [(ln, i, b) for ln in spec.block_lists for i, b in enumerate(model.get_submodule(ln))]
    head = model.get_submodule(spec.head)
    calls, handles = [], []

    def block_hook(ln, i):
        def hook(module, args, kwargs, output):
            calls.append((ln, i, _bind(module.forward, args, kwargs), output, args, kwargs))
        return hook

    head_in = {}

    def head_hook(module, args, kwargs):
        head_in.setdefault("x", _head_input(args, kwargs).detach().clone())

    for ln, i, b in blocks:
        handles.append(b.register_forward_hook(block_hook(ln, i), with_kwargs=True))
    handles.append(head.register_forward_pre_hook(head_hook, with_kwargs=True))
    try:
        ref = _forward(model, spec, inputs, latents, t, 1, None, sched)
    finally:
        for h in handles:
            h.remove()

    report: dict[str, Any] = {"order": [(ln, i) for ln, i, *_ in calls], "n_blocks": len(blocks)}
    first_ln, _, first_bound, *_ = calls[0]
    stack_in = first_bound[spec.block_io[first_ln].hidden]
    report["stack_input_shape"] = _shape(stack_in)
    report["head_input_shape"] = _shape(head_in["x"])
    report["same_shape"] = report["stack_input_shape"] == report["head_input_shape"]

    returns_ok, metadata = _block_checks(spec, model, calls)
    report["returns_ok"] = returns_ok
    report["metadata"] = metadata

    # skip every block, substitute the recorded head input: the outputs must come back unchanged
    patched = []
    for ln, _, b in blocks:
        io, fwd = spec.block_io[ln], b.forward

        def skipped(*args, _io=io, _fwd=fwd, **kwargs):
            return _passthrough(_io, _bind(_fwd, args, kwargs))

        b.forward = skipped
        patched.append(b)
    h = head.register_forward_pre_hook(
        lambda m, a, k: ((head_in["x"],) + tuple(a[1:]), k) if a else (a, {**k, next(
            n for n in ("hidden_states", "x") if n in k): head_in["x"]}), with_kwargs=True)
    try:
        again = _forward(model, spec, inputs, latents, t, 1, None, sched)
    finally:
        h.remove()
        for b in patched:
            del b.forward
    report["skip_reproduces"] = [bool(torch.allclose(a, b, atol=1e-6, rtol=1e-5)) for a, b in zip(ref, again)]
    report["output_nonzero"] = [bool(r.abs().max() > 0) for r in ref]
    report["params"] = count_parameters(model)
    return report


def _block_checks(spec, model, calls) -> tuple[dict, dict]:
    """Per block list: do its blocks return what the stack passes on; per block class: does diffusers' block
    metadata (what its cache hooks read) find the hidden input and return indices these calls used."""
    import torch
    from diffusers.hooks._helpers import TransformerBlockRegistry

    returns_ok, metadata = {}, {}
    for ln, i, bound, out, raw_args, raw_kwargs in calls:
        io = spec.block_io[ln]
        expect = _passthrough(io, bound)
        if isinstance(expect, tuple):
            ok = isinstance(out, tuple) and len(out) == len(expect) and all(
                o is None or _shape(o) == _shape(e) for o, e in zip(out, expect))
        else:
            ok = torch.is_tensor(out) and _shape(out) == _shape(expect)
        returns_ok[ln] = returns_ok.get(ln, True) and ok
        cls = type(getattr(model, ln)[i])
        assert cls.__name__ == io.block_class, (ln, cls.__name__, io.block_class)
        try:
            meta = TransformerBlockRegistry.get(cls)
        except ValueError:
            metadata[cls.__name__] = {"registered": False, "ok": None}
            continue
        good, h_in = _metadata_matches(meta, bound, out, raw_args, raw_kwargs)
        prev = metadata.get(cls.__name__, {"ok": True})["ok"]
        metadata[cls.__name__] = {"registered": True, "ok": bool(prev and good), "hidden_arg_found": h_in is not None}
    return returns_ok, metadata


def _metadata_matches(meta, bound: dict, out, raw_args, raw_kwargs) -> tuple[bool, Any]:
    """``(ok, hidden input)``: diffusers' metadata reads this call's hidden input and its outputs' shapes match."""
    try:  # how diffusers' cache hooks read the block's hidden input
        h_in = meta._get_parameter_from_args_kwargs(meta.hidden_states_argument_name, raw_args, raw_kwargs)
    except (ValueError, KeyError, IndexError):
        h_in = None
    if not isinstance(out, tuple):
        return meta.return_encoder_hidden_states_index is None and _shape(out) == _shape(h_in), h_in
    good = h_in is not None and _shape(out[meta.return_hidden_states_index]) == _shape(h_in)
    if meta.return_encoder_hidden_states_index is not None:
        enc_out = out[meta.return_encoder_hidden_states_index]
        e_in = bound.get(meta.encoder_hidden_states_argument_name)
        return good and (enc_out is None or _shape(enc_out) == _shape(e_in)), h_in
    return good and len(out) <= 1, h_in  # a tuple output with no encoder index: caches would drop the second element
