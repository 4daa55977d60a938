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
from padecache.testing.pipelines import applied

STEPS = 20


def _plan(config, steps: int) -> list[bool]:
    """The compute mask a static policy of ``config`` plans for ``steps`` steps (the oracle of a run's decisions)."""
    cfg = padecache.load_config(config)
    policy = get_registry().get("policy", cfg.policy.name).cls(cfg.policy.options)
    return policy.mask(steps)


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


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_a_partial_schedule_spends_the_budget_over_the_steps_that_run(flux_variants, kind):
    """The plan is the policy's plan for the 12 steps that run, its first step the first one the pipeline runs."""
    pipe = flux_variants[kind]
    ran = round(STEPS * 0.6)
    with applied(pipe, "tc-pade-fast"):
        _partial(pipe, kind)
        stats = padecache.stats(pipe)
    first = STEPS - ran
    expected = [first + i for i, c in enumerate(_plan("tc-pade-fast", ran)) if c]
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


@pytest.mark.parametrize("steps", [4, 6])
def test_a_few_step_plan_that_forecasts_from_the_warmup_alone_says_so(flux_pipe, steps):
    """At 4-6 steps tc-pade-fast's 2.86x leaves no pass after the warm-up: the plan is followed (it is the budget the
    user asked for) and a warning says that the rest of the run is forecast from the warm-up, and what to set."""
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_flux(flux_pipe, steps=steps)
        stats = padecache.stats(flux_pipe)
    plan = [i for i, c in enumerate(_plan("tc-pade-fast", steps)) if c]
    assert plan in ([0], [0, 1]) and _computed(stats) == [0, 1]  # step 1 also computes: the predictor needs two
    assert stats.forecast_steps == steps - 2
    said = [str(w.message) for w in caught if "all in the warm-up" in str(w.message)]
    assert said and f"a {steps}-step run" in said[0] and f"policy.min_steps = {steps + 1}" in said[0], said


def test_an_eight_step_run_follows_its_plan_without_a_warning(flux_pipe):
    from tiny import run_flux

    with applied(flux_pipe, "tc-pade-fast"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_flux(flux_pipe, steps=8)
        stats = padecache.stats(flux_pipe)
    assert _computed(stats) == [i for i, c in enumerate(_plan("tc-pade-fast", 8)) if c] == [0, 1, 3]
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
