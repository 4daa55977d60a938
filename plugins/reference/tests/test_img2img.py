"""Image-to-image on the reference pipelines (``image=``, ``strength=``), as diffusers' FluxImg2ImgPipeline runs it.

Oracles: text-to-image (strength 1 runs the same steps from the same noise), the scheduler's own schedule (which
timesteps run), the flow-matching forward process (the first sample), the unhooked pipeline (caching off).
Every run is tiny: 2 samples, at most 10 steps.
"""

from __future__ import annotations

import pytest
import torch

import padecache
from padecache_reference import load_reference
from padecache_reference.img2img import steps_run

MODELS = ("flux-mnist", "dit-mnist", "emoji-t2i")
CONDITIONS = {"flux-mnist": [3, 7], "dit-mnist": [3, 7], "emoji-t2i": ["red apple", "noto style: rocket"]}


@pytest.fixture(scope="module")
def pipes():
    return {}


def _pipe(pipes, name):
    if name not in pipes:
        pipes[name] = load_reference(name)
    return pipes[name]


def _image(name, n=2, seed=0):
    """Images in [-1, 1] of the pipeline's output shape (digits: 28x28, emoji: 3x32x32)."""
    shape = (n, 3, 32, 32) if name == "emoji-t2i" else (n, 1, 28, 28)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class Calls:
    """The ``timestep`` of every transformer call (one per guidance branch and step)."""

    def __init__(self, transformer):
        self.timesteps: list[float] = []
        self.handle = transformer.register_forward_pre_hook(self._hit, with_kwargs=True)

    def _hit(self, module, args, kwargs):
        self.timesteps.append(float(kwargs["timestep"].flatten()[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("name", MODELS)
def test_strength_one_is_text_to_image_exactly(pipes, name):
    pipe = _pipe(pipes, name)
    t2i = pipe(CONDITIONS[name], num_inference_steps=5, seed=4)
    i2i = pipe(CONDITIONS[name], num_inference_steps=5, seed=4, image=_image(name), strength=1.0)
    assert torch.equal(i2i, t2i)


@pytest.mark.parametrize("name", MODELS)
# 10 x 0.57 = 5.7 runs 6 (rounded, not cut); 28 x 0.8 = 22.4 runs 22 (diffusers' FluxImg2ImgPipeline would run 23)
@pytest.mark.parametrize("steps, strength", [(10, 0.5), (10, 0.6), (10, 0.8), (10, 0.57), (7, 0.3), (28, 0.8)])
def test_strength_runs_the_last_round_n_s_steps_of_the_schedule(pipes, name, steps, strength):
    pipe = _pipe(pipes, name)
    with Calls(pipe.transformer) as calls:
        pipe(CONDITIONS[name], num_inference_steps=steps, seed=0, image=_image(name), strength=strength)
    ran = round(steps * strength)
    assert steps_run(steps, strength) == ran
    per_step = 1 if name == "dit-mnist" else 2  # dit-mnist batches its guidance rows; the others call twice a step
    assert len(calls.timesteps) == ran * per_step
    scale = 1.0 if name == "dit-mnist" else 1000.0  # the FLUX-style models take sigma = t / 1000
    schedule = [float(t) for t in pipe.scheduler.timesteps[steps - ran:]]
    assert [t * scale for t in calls.timesteps[::per_step]] == pytest.approx(schedule, rel=1e-6)


@pytest.mark.parametrize("name", ["dit-mnist", "flux-mnist"])
def test_the_first_sample_is_the_image_noised_to_the_first_timestep(pipes, name):
    """(1 - sigma) x + sigma noise, the noise drawn from each sample's seed as for text-to-image."""
    from padecache_reference.reference import _unpack

    pipe = _pipe(pipes, name)
    image = _image(name)
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda m, a, kw: seen.append((a[0] if a else kw["hidden_states"]).clone()) if not seen else None, with_kwargs=True)
    try:
        pipe([3, 7], num_inference_steps=10, seed=5, image=image, strength=0.6)
    finally:
        handle.remove()
    first = seen[0][:2] if name == "dit-mnist" else _unpack(seen[0])
    sigma = float(pipe.scheduler.sigmas[10 - 6])
    padded = torch.nn.functional.pad(image, (2, 2, 2, 2), value=-1.0)
    expected = (1 - sigma) * padded + sigma * pipe.noise(2, 5)
    assert 0 < sigma < 1 and (first - expected).abs().max() <= 1e-5


def test_a_lower_strength_keeps_more_of_the_image(pipes):
    """Real digits redrawn under their own class: the result moves away from the input as strength grows."""
    from padecache_reference.data import crop_digits, load_bundled_digits, to_model_space

    pipe = _pipe(pipes, "flux-mnist")
    digits, classes = load_bundled_digits()
    picks = [int((classes == k).nonzero()[0][0]) for k in (3, 7)]
    image = crop_digits(to_model_space(digits[picks]))
    dist = [float((pipe([3, 7], num_inference_steps=10, seed=0, image=image, strength=s) - image).abs().mean())
            for s in (0.2, 0.6, 1.0)]
    assert dist[0] < dist[1] < dist[2] and dist[0] < 0.1


def test_a_batch_gives_what_its_samples_give_alone_and_the_scheduler_is_left_for_text_to_image(pipes):
    pipe = _pipe(pipes, "flux-mnist")
    image = _image("flux-mnist")
    both = pipe([3, 7], num_inference_steps=8, seed=2, image=image, strength=0.5)
    second = pipe([7], num_inference_steps=8, seed=3, image=image[1:], strength=0.5)
    assert torch.allclose(both[1:], second, atol=1e-5)
    t2i = pipe([3, 7], num_inference_steps=8, seed=2)  # set_timesteps forgets the img2img begin index
    fresh = load_reference("flux-mnist")([3, 7], num_inference_steps=8, seed=2)
    assert torch.equal(t2i, fresh)


def _plan(config, steps: int) -> list[int]:
    """The steps a static policy of ``config`` computes in a ``steps``-step run that starts part-way through its
    schedule, as img2img runs do (the oracle of a run's decisions)."""
    from padecache.plugins import get_registry

    cfg = padecache.load_config(config)
    policy = get_registry().get("policy", cfg.policy.name).cls(cfg.policy.options)
    return [i for i, c in enumerate(policy.mask(steps, partial=True)) if c]


@pytest.mark.parametrize("name", ["flux-mnist", "emoji-t2i"])
def test_padecache_plans_and_counts_the_steps_that_ran_and_caching_off_is_exact(pipes, name):
    """Strength 0.6 of 20 steps runs steps 8..19: caching off equals the unhooked pipeline; tc-pade-fast spends its
    plan for 12 steps over them, its first computed step the first one that ran, and stays within a PSNR floor."""
    pipe = _pipe(pipes, name)
    kw = dict(num_inference_steps=20, seed=0, image=_image(name), strength=0.6)
    reference = pipe(CONDITIONS[name], **kw)
    padecache.apply(pipe, "none")
    try:
        off = pipe(CONDITIONS[name], **kw)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    assert torch.equal(off, reference)
    assert stats.total_steps == 12 and stats.full_passes == 12 and stats.pass_speedup == 1.0
    assert sorted({r.step for r in stats.records}) == list(range(8, 20))
    padecache.apply(pipe, "tc-pade-fast")
    try:
        fast = pipe(CONDITIONS[name], **kw)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    computed = sorted({r.step for r in stats.records if r.computed})
    assert computed == [8 + i for i in _plan("tc-pade-fast", 12)] and computed[0] == 8
    assert stats.total_steps == 12 and stats.full_passes == len(computed) == 4
    psnr = 10 * torch.log10(4 / (fast - reference).pow(2).mean())  # measured 35.1 dB (flux-mnist), 29.1 dB (emoji-t2i)
    assert 25 < psnr < 100


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"strength": 0.5}, ValueError, "strength=0.5 is for image-to-image: give the image too"),
        ({"image": "img"}, ValueError, "image= needs strength="),
        ({"image": "img", "strength": 0.0}, ValueError, r"strength must be in \(0, 1\]"),
        ({"image": "img", "strength": 1.5}, ValueError, r"strength must be in \(0, 1\]"),
        ({"image": "img", "strength": -0.2}, ValueError, r"strength must be in \(0, 1\]"),
        ({"image": "img", "strength": True}, TypeError, "strength must be a number"),
        ({"image": "img", "strength": "0.5"}, TypeError, "strength must be a number"),
        ({"image": "img", "strength": 0.04}, ValueError, r"runs no step \(round\(10 x 0.04\) = 0\)"),
        ({"image": "img", "strength": 0.5, "latents": "noise"}, ValueError, "not both"),
        ({"image": "one", "strength": 0.5}, ValueError, r"for 2 class labels it must be \(2, 1, 32, 32\) or \(2, 1, 28, 28\)"),
        ({"image": "rgb", "strength": 0.5}, ValueError, r"image has shape \(2, 3, 28, 28\)"),
        ({"image": "flat", "strength": 0.5}, ValueError, r"image has shape \(2, 28, 28\)"),
        ({"image": "pixels", "strength": 0.5}, ValueError, r"must be in \[-1, 1\], got \[0, 255\]"),
        ({"image": "uint8", "strength": 0.5}, TypeError, "floating point"),
        ({"image": "nan", "strength": 0.5}, ValueError, "non-finite"),
        ({"image": [[0.0]], "strength": 0.5}, TypeError, "image must be a torch tensor"),
    ],
)
def test_bad_img2img_input_is_refused_before_any_step(pipes, kwargs, error, match):
    pipe = _pipe(pipes, "flux-mnist")
    good = _image("flux-mnist")
    images = {"img": good, "one": good[:1], "rgb": good.repeat(1, 3, 1, 1), "flat": good[:, 0],
              "pixels": torch.linspace(0, 255, 2 * 28 * 28).reshape(2, 1, 28, 28), "uint8": (good > 0).to(torch.uint8),
              "nan": good.clone().index_put_((torch.tensor([0]),), torch.tensor(float("nan")))}
    if isinstance(kwargs.get("image"), str):
        kwargs["image"] = images[kwargs["image"]]
    if kwargs.get("latents") == "noise":
        kwargs["latents"] = pipe.noise(2)
    with Calls(pipe.transformer) as calls, pytest.raises(error, match=match):
        pipe([3, 7], num_inference_steps=10, **kwargs)
    assert not calls.timesteps


def test_emoji_t2i_refuses_a_grey_image(pipes):
    pipe = _pipe(pipes, "emoji-t2i")
    with pytest.raises(ValueError, match=r"for 2 prompts it must be \(2, 3, 32, 32\)"):
        pipe(CONDITIONS["emoji-t2i"], num_inference_steps=4, image=_image("flux-mnist"), strength=0.5)


def test_the_img2img_benchmark_inputs_are_real_images_of_what_is_prompted():
    """benchmarks/img2img.py: a real digit of each prompted class; the real Twemoji of every benchmark prompt's concept."""
    import importlib.util
    from pathlib import Path

    from padecache_reference.data import crop_digits, load_bundled_digits, to_model_space
    from padecache_reference.emoji import benchmark_prompts

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "img2img.py"
    spec = importlib.util.spec_from_file_location("img2img_benchmark", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    labels, images, _ = script.digit_inputs(12)
    digits, classes = load_bundled_digits()
    assert labels == [i % 10 for i in range(12)] and images.shape == (12, 1, 28, 28)
    real = crop_digits(to_model_space(digits))
    for label, image in zip(labels, images):
        match = (real - image).abs().flatten(1).amax(1) == 0
        assert match.any() and set(classes[match.numpy()].tolist()) == {label}
    prompts, images, categories = script.emoji_inputs(64)  # every benchmark prompt's concept has a Twemoji
    assert len(prompts) == 64 and images.shape == (64, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert all(p.startswith("noto style: ") for p in prompts)
    assert categories == [p.category_index for p in benchmark_prompts(64)]
    assert prompts[0] == f"noto style: {benchmark_prompts(1)[0].text}"  # the first prompt names its concept bare
