"""The pipeline variants people run, on tiny offline pipelines: partial schedules (img2img, inpainting), few steps.

Each test says what padecache must do with the variant and checks it against an oracle: the unhooked pipeline for
caching off, the policy's own plan for the steps that run, the step counts the pipeline really executes.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import padecache
from padecache.plugins import get_registry
from padecache.testing.pipelines import applied, sd3_pipeline

STEPS = 20


def _plan(config, steps: int, partial: bool = False) -> list[bool]:
    """The compute mask a static policy of ``config`` plans for ``steps`` steps (the oracle of a run's decisions);
    ``partial``: of a run that starts part-way through its schedule."""
    from padecache import StepContext

    cfg = padecache.load_config(config)
    policy = get_registry().get("policy", cfg.policy.name).cls(cfg.policy.options)
    # the policy's plan for a run of `steps` steps, starting at the schedule's first step or one later
    first = 1 if partial else 0
    return policy.plan(StepContext(first, first + steps, 0.0, None, span=(first, first + steps)))


def _computed(stats, branch: str | None = None) -> list[int]:
    branch = branch or stats.records[0].branch
    return [r.step for r in stats.records if r.branch == branch and r.computed]


def _steps(stats, branch: str | None = None) -> list[int]:
    branch = branch or stats.records[0].branch
    return [r.step for r in stats.records if r.branch == branch]


# -- partial schedules: img2img and inpainting at strength < 1 ------------------------------------------------------


@pytest.fixture(scope="module")
def flux_variants(flux_pipe):
    from diffusers import FluxImg2ImgPipeline, FluxInpaintPipeline

    out = {"img2img": FluxImg2ImgPipeline.from_pipe(flux_pipe), "inpaint": FluxInpaintPipeline.from_pipe(flux_pipe)}
    for pipe in out.values():
        pipe.set_progress_bar_config(disable=True)
    return out


def _partial(pipe, kind: str, strength: float = 0.6):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 16, 16, generator=g)
    extra = {"mask_image": (torch.rand(1, 1, 16, 16, generator=g) > 0.5).float()} if kind == "inpaint" else {}
    return pipe("a squirrel", image=image, strength=strength, num_inference_steps=STEPS, guidance_scale=3.5,
                height=16, width=16, max_sequence_length=48, output_type="pt",
                generator=torch.Generator().manual_seed(0), **extra).images


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_caching_off_on_a_partial_schedule_counts_the_steps_that_run(flux_variants, kind):
    pipe = flux_variants[kind]
    reference = _partial(pipe, kind)
    with applied(pipe, "none"):
        out = _partial(pipe, kind)
        stats = padecache.stats(pipe)
    assert (out - reference).abs().max().item() <= 1e-6
    ran = round(STEPS * 0.6)  # diffusers runs int(steps * strength) of the steps, the last ones
    assert _steps(stats) == list(range(STEPS - ran, STEPS))
    assert stats.total_steps == ran and stats.full_passes == ran and stats.pass_speedup == 1.0


def test_heun_from_part_way_starts_where_the_scheduler_starts():
    """Heun's schedule repeats each timestep (2 N - 1 entries): an img2img run's first timestep is both the end of
    one Heun step and the start of the next, and the scheduler's begin index says which (the first match, one step
    early, left a hole and reported a speedup with caching off)."""
    from diffusers import FlowMatchHeunDiscreteScheduler, StableDiffusion3Img2ImgPipeline

    base = sd3_pipeline()
    pipe = StableDiffusion3Img2ImgPipeline(**{**base.components, "scheduler": FlowMatchHeunDiscreteScheduler()})
    pipe.set_progress_bar_config(disable=True)
    with applied(pipe, "none"):
        pipe("a squirrel", image=torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)), strength=0.5,
             num_inference_steps=8, guidance_scale=4.0, height=16, width=16, max_sequence_length=48, output_type="pt",
             generator=torch.Generator().manual_seed(0))
        stats = padecache.stats(pipe)
        begin = pipe.scheduler.begin_index
    steps = _steps(stats)
    assert steps[0] == begin and steps == list(range(begin, begin + len(steps)))
    assert stats.pass_speedup == 1.0


@pytest.mark.parametrize("kind, config", [("img2img", "tc-pade-fast"), ("inpaint", "tc-pade-fast"),
                                          ("img2img", {"predictor": "tc-pade", "policy": "spectrum-window"})])
def test_a_partial_schedule_spends_the_budget_over_the_steps_that_run(flux_variants, kind, config):
    """The plan is the policy's plan for the 12 steps that run, its first step the first one the pipeline runs
    (padecache's static policies and the forecasters plugin's Spectrum window alike)."""
    pipe = flux_variants[kind]
    ran = round(STEPS * 0.6)
    with applied(pipe, config):
        _partial(pipe, kind)
        stats = padecache.stats(pipe)
    first = STEPS - ran
    expected = [first + i for i, c in enumerate(_plan(config, ran, partial=True)) if c]
    assert _computed(stats) == expected and expected[0] == first
    assert stats.total_steps == ran
    assert stats.pass_speedup == pytest.approx(ran / len(expected))


def test_a_full_run_after_a_partial_one_plans_over_every_step(flux_pipe, flux_variants):
    """The span belongs to one generation: a text-to-image call after an img2img call plans over all its steps."""
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):  # the img2img pipeline shares this transformer and scheduler
        _partial(flux_variants["img2img"], "img2img")
        run_flux(flux_pipe, steps=STEPS)
        stats = padecache.stats(flux_pipe)
    assert stats.total_steps == STEPS
    assert _computed(stats) == [i for i, c in enumerate(_plan("tc-pade-fast", STEPS)) if c]


# -- few steps --------------------------------------------------------------------------------------------------------


def test_a_few_step_plan_that_forecasts_from_the_warmup_alone_says_so(flux_pipe):
    """At 4 steps tc-pade-fast's 2.86x is one pass: the plan is followed (it is the budget the user asked for; TC-Padé
    reuses its one residual) and a warning says that the rest of the run is forecast from the warm-up, and what to set."""
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_flux(flux_pipe, steps=4)
        stats = padecache.stats(flux_pipe)
    assert [i for i, c in enumerate(_plan("tc-pade-fast", 4)) if c] == [0] and _computed(stats) == [0]
    assert stats.forecast_steps == 3
    said = [str(w.message) for w in caught if "all in the warm-up" in str(w.message)]
    assert said and "a 4-step run" in said[0] and "policy.min_steps = 5" in said[0], said


def test_a_six_step_plan_warms_up_with_one_step_and_spends_the_other_later(flux_pipe):
    """Two passes in 6 steps: one warm-up step (a budget of 6 passes or fewer, `lean_passes`), the other pass later in
    the run, exactly as planned and without a warning."""
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_flux(flux_pipe, steps=6)
        stats = padecache.stats(flux_pipe)
    plan = [i for i, c in enumerate(_plan("tc-pade-fast", 6)) if c]
    assert len(plan) == 2 and plan[0] == 0 and plan[1] >= 2 and _computed(stats) == plan
    assert not [w for w in caught if "warm-up" in str(w.message)]


def test_an_eight_step_run_follows_its_plan_without_a_warning(flux_pipe):
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_flux(flux_pipe, steps=8)
        stats = padecache.stats(flux_pipe)
    assert _computed(stats) == [i for i, c in enumerate(_plan("tc-pade-fast", 8)) if c] == [0, 2, 4]  # 3 passes: one warm-up step
    assert not [w for w in caught if "padecache" in str(w.message)]


@pytest.mark.parametrize("steps", [4, 8])
def test_min_steps_computes_every_step_of_a_short_run_and_says_so(flux_pipe, steps):
    from tiny import run_flux

    config = {"predictor": "tc-pade", "policy": {"name": "budget", "speedup": 20 / 7, "min_steps": 10}}
    reference = run_flux(flux_pipe, steps=steps)
    with applied(flux_pipe, config):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = run_flux(flux_pipe, steps=steps)
        stats = padecache.stats(flux_pipe)
    assert stats.forecast_steps == 0 and stats.total_steps == steps
    assert (out - reference).abs().max().item() <= 1e-6
    said = [str(w.message) for w in caught if "every step is computed" in str(w.message)]
    assert said and f"a {steps}-step run" in said[0] and "min_steps = 10" in said[0], said


# -- editing: FLUX Kontext and Qwen-Image-Edit (reference latents ride in the stack, the prediction is sliced) -------


def _mean_abs(a, b) -> float:
    return (a - b).abs().mean().item()


def _kontext(pipe, seed: int = 1):
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    return pipe(image=image, prompt="make it blue", num_inference_steps=STEPS, guidance_scale=2.5, height=16, width=16,
                max_sequence_length=48, max_area=16 * 16, _auto_resize=False, output_type="pt",
                generator=torch.Generator().manual_seed(0)).images


def _qwen_edit(pipe, seed: int = 1):
    """The edit pipeline sizes its reference to a 1024^2 area; a tiny test shrinks that area to 32^2."""
    from unittest import mock

    import numpy as np
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit as module
    from PIL import Image

    from tiny import qwen_prompt

    pixels = (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype("uint8")
    tiny_area = lambda area, ratio, _f=module.calculate_dimensions: _f(32 * 32, ratio)  # sides round to 32
    with mock.patch.object(module, "calculate_dimensions", tiny_area):
        return pipe(image=Image.fromarray(pixels), num_inference_steps=STEPS, height=16, width=16, output_type="pt",
                    generator=torch.Generator().manual_seed(0), **qwen_prompt()).images


@pytest.fixture(scope="module")
def editing(flux_pipe):
    from diffusers import FluxKontextPipeline

    from tiny import qwenimage_edit_pipeline

    kontext = FluxKontextPipeline.from_pipe(flux_pipe)
    kontext.set_progress_bar_config(disable=True)
    return {"flux": (kontext, _kontext), "qwenimage": (qwenimage_edit_pipeline(), _qwen_edit)}


@pytest.mark.parametrize("family", ["flux", "qwenimage"])
def test_editing_keeps_caching_off_exact_and_the_reference_image_in_charge(editing, family):
    """Caching off equals the unhooked pipeline; with forecasts, another reference image changes the result as it does
    with full compute (the reference latents ride through the block stack and are forecast with it, never dropped)."""
    pipe, run = editing[family]
    reference, other = run(pipe), run(pipe, seed=2)
    with applied(pipe, "none"):
        off = run(pipe)
    with applied(pipe, "tc-pade-fast"):
        fast, fast_other = run(pipe), run(pipe, seed=2)
        stats = padecache.stats(pipe)
    assert (off - reference).abs().max().item() <= 1e-6
    assert stats.forecast_steps > 0 and torch.isfinite(fast).all()
    effect, kept = _mean_abs(other, reference), _mean_abs(fast_other, fast)
    assert effect > 0 and 0.5 < kept / effect < 2.0, (effect, kept)


# -- ControlNet (FLUX, SD3, Qwen-Image): residuals computed every step and added inside the block stack ---------------


def _control_image(seed: int = 2):
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _flux_control(pipe, scale: float = 1.0, **kw):
    return pipe("a squirrel", control_image=_control_image(), controlnet_conditioning_scale=scale,
                num_inference_steps=STEPS, guidance_scale=3.5, height=16, width=16, max_sequence_length=48,
                output_type="pt", generator=torch.Generator().manual_seed(0), **kw).images


def _sd3_control(pipe, scale: float = 1.0, **kw):
    with torch.random.fork_rng(devices=[]):  # the pipeline samples the control image's latents without a generator
        torch.manual_seed(0)
        return pipe("a squirrel", negative_prompt="blurry", control_image=_control_image(),
                    controlnet_conditioning_scale=scale, num_inference_steps=STEPS, guidance_scale=4.0, height=16,
                    width=16, max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(0),
                    **kw).images


def _qwen_control(pipe, scale: float = 1.0, **kw):
    from tiny import qwen_prompt

    return pipe(control_image=_control_image(), controlnet_conditioning_scale=scale, num_inference_steps=STEPS,
                height=16, width=16, output_type="pt", generator=torch.Generator().manual_seed(0), **qwen_prompt(),
                **kw).images


@pytest.fixture(scope="module")
def controlnets(flux_pipe):
    import tiny

    return {"flux": (tiny.flux_controlnet_pipeline(flux_pipe), _flux_control),
            "sd3": (tiny.sd3_controlnet_pipeline(tiny.sd3_pipeline()), _sd3_control),
            "qwenimage": (tiny.qwenimage_controlnet_pipeline(), _qwen_control)}


@pytest.mark.parametrize("family", ["flux", "sd3", "qwenimage"])
def test_controlnet_conditioning_keeps_its_effect_under_forecasts(controlnets, family):
    """The ControlNet runs every step; its residuals enter every computed step and a forecast extrapolates their effect
    with the stack's: the control's effect on the output survives (cache-dit #482: 'ControlNet has no effect')."""
    pipe, run = controlnets[family]
    full, without = run(pipe), run(pipe, scale=0.0)
    with applied(pipe, "none"):
        off = run(pipe)
    with applied(pipe, "tc-pade-fast"):
        fast, fast_without = run(pipe), run(pipe, scale=0.0)
        stats = padecache.stats(pipe)
    assert (off - full).abs().max().item() <= 1e-6
    assert stats.forecast_steps > 0
    effect, kept = _mean_abs(full, without), _mean_abs(fast, fast_without)
    assert effect > 0 and 0.5 < kept / effect < 2.0, (effect, kept)
    assert _mean_abs(fast, full) < 0.5 * effect


@pytest.mark.parametrize("family", ["flux", "sd3", "qwenimage"])
@pytest.mark.parametrize("window", [{"control_guidance_start": 0.5}, {"control_guidance_end": 0.5}])
def test_a_controlnet_switching_on_or_off_mid_run_is_computed_where_it_switches(controlnets, family, window):
    """Pipelines zero the ControlNet residuals outside [control_guidance_start, control_guidance_end): the step where
    they start or stop acting is not forecast from steps that had them the other way -- the history restarts there."""
    pipe, run = controlnets[family]
    with applied(pipe, "tc-pade-fast"):
        run(pipe, **window)
        stats = padecache.stats(pipe)
    switch = STEPS // 2
    assert stats.restarts >= 1
    for branch in {r.branch for r in stats.records}:
        at = {r.step: r for r in stats.records if r.branch == branch}
        assert at[switch].computed, (branch, at[switch])  # the first step of the new history is computed
        assert not any(r.reason == "forecast" and r.step == switch for r in stats.records)


# -- LoRA (peft), int8 weight-only quantization (torchao), offloading: the same model, otherwise dressed ----------------


def _lora(model, name: str, seed: int, alpha: int = 4):
    from peft import LoraConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.add_adapter(LoraConfig(r=4, lora_alpha=alpha, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                     init_lora_weights=False), adapter_name=name)


@pytest.fixture(scope="module")
def lora_flux():
    """A FLUX pipeline with two LoRA adapters on its transformer and a third one's weights to load."""
    pytest.importorskip("peft")
    from peft.utils import get_peft_model_state_dict

    from tiny import flux_pipeline

    pipe = flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    _lora(pipe.transformer, "a", 1)
    _lora(pipe.transformer, "b", 2, alpha=8)
    _lora(pipe.transformer, "c", 3)
    weights = {f"transformer.{k}": v for k, v in get_peft_model_state_dict(pipe.transformer, adapter_name="c").items()}
    pipe.delete_adapters("c")
    return pipe, weights


def _lora_states(pipe, weights):
    """Switch, mix, scale, load and fuse adapters between calls; yields (what, call kwargs) after each change."""
    pipe.set_adapters("a")
    yield "a", {}
    pipe.set_adapters("b")
    yield "b", {}
    pipe.set_adapters(["a", "b"], [0.5, 1.0])
    yield "a+b", {}
    yield "a+b scaled", {"joint_attention_kwargs": {"scale": 0.5}}
    pipe.load_lora_weights(dict(weights), adapter_name="loaded")
    pipe.set_adapters("loaded")
    yield "loaded", {}
    pipe.set_adapters("a")
    pipe.fuse_lora(components=["transformer"], adapter_names=["a"])
    yield "fused", {}
    pipe.unfuse_lora(components=["transformer"])
    pipe.delete_adapters("loaded")


def _flux(pipe, **kw):
    return pipe("a squirrel", num_inference_steps=STEPS, guidance_scale=3.5, height=16, width=16,
                max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(0), **kw).images


def test_lora_changes_between_calls_give_what_a_fresh_apply_gives(lora_flux):
    """padecache applied once, LoRA adapters switched, mixed, scaled, loaded and fused between calls: every call equals
    the same call with padecache applied afresh, and caching off equals the unhooked model; the adapters matter."""
    pipe, weights = lora_flux
    kept, fresh, unhooked, off = {}, {}, {}, {}
    saved = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}  # fuse + unfuse round the weights
    for what, kw in _lora_states(pipe, weights):
        unhooked[what] = _flux(pipe, **kw)
        with applied(pipe, "tc-pade-fast"):
            fresh[what] = _flux(pipe, **kw)
        with applied(pipe, "none"):
            off[what] = _flux(pipe, **kw)
    pipe.transformer.load_state_dict(saved)
    with applied(pipe, "tc-pade-fast"):
        for what, kw in _lora_states(pipe, weights):
            kept[what] = _flux(pipe, **kw)
            assert padecache.stats(pipe).forecast_steps > 0
    for what in kept:
        assert torch.equal(kept[what], fresh[what]), what
        assert (off[what] - unhooked[what]).abs().max().item() <= 1e-6, what
    assert _mean_abs(unhooked["a"], unhooked["b"]) > 10 * _mean_abs(fresh["a"], unhooked["a"])


FAMILIES = ("flux", "sd3", "wan", "qwenimage", "ltx2")


def _family_run(family, model, config=None, **kw):
    from padecache.testing import families as F

    scheduler = F.make_scheduler(family)
    if config is None:
        return F.run_loop(family, model, scheduler=scheduler, return_all=True, **kw), None
    with applied(model, config, scheduler=scheduler):
        out = F.run_loop(family, model, scheduler=scheduler, return_all=True, **kw)
        return out, padecache.stats(model)


def _flat(out) -> torch.Tensor:
    return torch.cat([t.reshape(t.shape[0], -1).float() for t in out], 1)


def _exact_and_forecasting(family, model, **kw):
    reference, _ = _family_run(family, model, **kw)
    off, stats_off = _family_run(family, model, "none", **kw)
    fast, stats = _family_run(family, model, "tc-pade-fast", **kw)
    scale = max(1.0, _flat(reference).abs().max().item())
    assert (_flat(off) - _flat(reference)).abs().max().item() <= 1e-6 * scale
    assert stats.forecast_steps > 0 and torch.isfinite(_flat(fast)).all()
    return stats_off, stats


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_weight_only_quantized_transformers(family):
    """torchao's int8 weight-only quantization on CPU (diffusers' TorchAoConfig does the same at load time)."""
    pytest.importorskip("torchao")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    from padecache.testing.families import tiny_transformer

    model = tiny_transformer(family)
    quantize_(model, Int8WeightOnlyConfig())
    assert type(model.get_submodule(_a_linear(model)).weight).__name__ != "Parameter"  # really quantized
    _exact_and_forecasting(family, model)


def _a_linear(model) -> str:
    return next(name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.weight.numel() >= 256)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("offload", ["block_level", "leaf_level"])
def test_group_offloaded_transformers(family, offload):
    """diffusers' group offloading (onload and offload on the CPU here: the hooks are what is tested)."""
    from padecache.testing.families import tiny_transformer

    model = tiny_transformer(family)
    cpu = torch.device("cpu")
    model.enable_group_offload(onload_device=cpu, offload_device=cpu, offload_type=offload, num_blocks_per_group=1)
    _exact_and_forecasting(family, model)


def test_model_cpu_offload_of_a_pipeline(flux_pipe):
    from tiny import flux_pipeline, run_flux

    pipe = flux_pipeline()
    pipe.set_progress_bar_config(disable=True)
    reference = run_flux(pipe, steps=STEPS)
    pipe.enable_model_cpu_offload(device="cpu")
    with applied(pipe, "none"):
        off = run_flux(pipe, steps=STEPS)
    with applied(pipe, "tc-pade-fast"):
        fast = run_flux(pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    assert (off - reference).abs().max().item() <= 1e-6
    assert stats.forecast_steps > 0 and torch.isfinite(fast).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_partial_schedules_of_the_transformer_families(family):
    """Every family's loop started at step 8 of 20, as img2img pipelines run: 12 steps counted, the plan for 12."""
    from padecache.testing.families import tiny_transformer

    first = 8
    off, stats = _exact_and_forecasting(family, tiny_transformer(family), start=first)
    assert off.total_steps == stats.total_steps == STEPS - first and off.pass_speedup == 1.0
    assert _computed(stats) == [first + i for i, c in enumerate(_plan("tc-pade-fast", STEPS - first, partial=True)) if c]


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_switched_between_calls_on_the_transformer_families(family):
    """Two adapters switched between calls with padecache kept applied: each call equals a fresh apply."""
    pytest.importorskip("peft")
    from padecache.testing.families import tiny_transformer

    model = tiny_transformer(family)
    _lora(model, "a", 1)
    _lora(model, "b", 2, alpha=8)
    fresh = {}
    for name in ("a", "b"):
        model.set_adapters(name)
        _exact_and_forecasting(family, model)
        fresh[name], _ = _family_run(family, model, "tc-pade-fast")
    from padecache.testing import families as F

    scheduler = F.make_scheduler(family)
    with applied(model, "tc-pade-fast", scheduler=scheduler):
        for name in ("a", "b", "a"):
            model.set_adapters(name)
            kept = F.run_loop(family, model, scheduler=scheduler, return_all=True)
            assert all(torch.equal(k, f) for k, f in zip(kept, fresh[name])), name
    assert not torch.equal(_flat(fresh["a"]), _flat(fresh["b"]))


@pytest.mark.parametrize("family", FAMILIES)
def test_few_step_runs_of_the_transformer_families(family):
    """A 4-step run: tc-pade-fast warns that its plan forecasts from the warm-up alone; min_steps computes it all."""
    from padecache.testing.families import tiny_transformer

    model = tiny_transformer(family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _exact_and_forecasting(family, model, steps=4)
    assert any("all in the warm-up" in str(w.message) for w in caught)
    config = {"predictor": "tc-pade", "policy": {"name": "budget", "speedup": 20 / 7, "min_steps": 10}}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, stats = _family_run(family, model, config, steps=4)
    assert stats.forecast_steps == 0 and stats.total_steps == 4


# -- the compatibility table: rendered from what the tests above cover ---------------------------------------------------

#: variant -> the families its tests run it on (pipeline-level tests and the transformer-level ones)
COVERAGE = {
    "img2img, inpainting": ("flux", *FAMILIES),
    "few steps (4-8)": ("flux", *FAMILIES),
    "ControlNet": ("flux", "sd3", "qwenimage"),
    "editing (reference image)": ("flux", "qwenimage"),
    "LoRA (peft)": ("flux", *FAMILIES),
    "int8 weight-only (torchao)": FAMILIES,
    "offloading": ("flux", *FAMILIES),
}


def _cell(adapter, variant: str) -> str:
    if adapter.name in COVERAGE[variant]:
        return "tested"
    if variant == "ControlNet" and not adapter.control_inputs:
        return "n/a"  # the transformer takes no ControlNet input
    return "–"


def compatibility_markdown() -> str:
    """The README's compatibility table: every supported family against the pipeline variants."""
    from padecache.adapters.families import FAMILIES as ADAPTERS

    head = ["family", "text-to-image/video/audio", *COVERAGE]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for adapter in ADAPTERS:
        lines.append("| " + " | ".join([adapter.name, "tested", *(_cell(adapter, v) for v in COVERAGE)]) + " |")
    return "\n".join(lines)


def test_the_readme_shows_the_compatibility_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert compatibility_markdown() in readme, "regenerate the README's compatibility table: tests/test_variants.py"


def test_the_coverage_names_families_that_exist():
    from padecache.adapters.families import FAMILIES as ADAPTERS

    names = {a.name for a in ADAPTERS}
    assert all(set(families) <= names for families in COVERAGE.values())
