"""``padecache`` command line: each subcommand calls one public function.

The command line is a host: reference models, their benchmark entry, scorers and training recipes come from
plugins through the registry (:mod:`padecache.reference_models`), benchmark families through
``padecache_bench_families``.  Nothing here imports a plugin by name, so every command says what is missing when
a plugin is absent or broken.  ``--help`` and argument errors import no torch (:mod:`padecache.arguments`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from .arguments import DEFAULT_OURS, build_parser
from .errors import PipelineError
from .reference_models import MissingModel

__all__ = ["main", "build_parser", "DEFAULT_OURS"]


class _Usage(Exception):
    """A command-line error: printed as ``padecache CMD: error: ...``, exit status 2."""


class _Failed(Exception):
    """The work itself failed (e.g. on a cluster): printed as ``padecache CMD: error: ...``, exit status 1."""


def __getattr__(name: str) -> Any:
    if name == "REFERENCE_MODELS":  # the names the registry offers now (formerly a fixed tuple)
        from .references import registered_models

        return tuple(m.name for m, _, _ in registered_models())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _set_threads(threads: int | None) -> None:
    """``--threads``: a command-line entry point may set torch's thread count; the library never does."""
    if threads:
        import torch

        torch.set_num_threads(threads)


# -- list, mask, config -------------------------------------------------------------------------------------------

def _print_components(registry, verbose: bool) -> int:
    import attrs

    rows = registry.rows()
    width = max(len(r["name"]) for r in rows)
    titles = {"predictor": "predictors", "policy": "policies", "stage": "stage detectors", "preset": "presets", "adapter": "adapters"}
    for kind, title in titles.items():
        print(f"{title}:")
        for r in (r for r in rows if r["kind"] == kind):
            print(f"  {r['name']:<{width}}  {r.get('package', r['plugin'])} {r['version']}  {r['summary']}")
            if verbose and kind in ("predictor", "policy", "stage"):
                for f in attrs.fields(registry.get(kind, r["name"]).cls.Config):
                    print(f"      {f.name} = {f.default!r}  {f.metadata.get('doc', '')}")
            if verbose and kind == "adapter":
                print(f"      inputs beyond the stack's: {_family_inputs(registry, r['name'])}")
    return width


def _family_inputs(registry, name: str) -> str:
    """What a family gives input-aware components beside the stack input, the latents and block 0's input."""
    adapter = next(a for a, _, _ in registry.adapters if a.name == name)
    given = ["modulated (the first block's modulated input)"] if getattr(adapter, "modulated", None) else []
    spec = getattr(adapter, "time_embedding", None)
    if spec is not None:
        given.append(f"time_embedding ({spec.describe()})")
    return ", ".join(given) or "none (TeaCache-style policies measure the stack input and say so)"


def _print_methods(registry, width: int) -> None:
    from .bench.families import registered_families
    from .bench.peers import PEER_NAMES

    try:
        families = registered_families()
    except ValueError as err:  # a plugin's invalid family: said, and the rest of the listing goes on
        print(f"bench families: {err}")
        families = []
    width = max([width, *(len(f.name) for f, _, _ in families)])
    print("bench families (padecache bench --methods, each swept over the target speedups; padecache.apply takes each name too):")
    for family, plugin, version in families:  # named by distribution, as the components above are
        print(f"  {family.name:<{width}}  {registry.packages.get(plugin, plugin)} {version}  {family.summary}")
    print(f"bench peers (other tools, through their own APIs): {', '.join(PEER_NAMES)}")


def _print_reference_models(registry, verbose: bool) -> None:
    from .references import missing_reason, registered_models

    models = registered_models(registry)
    print("reference models (padecache bench --model, generate --pipeline, train-reference):")
    if not models:
        print(f"  none: {missing_reason(registry)}")
    width = max((len(m.name) for m, _, _ in models), default=0)
    for model, plugin, version in models:
        mark = "; the default model" if model.default else ""
        flag = "--prompt" if model.inputs == "prompts" else "--labels"
        print(f"  {model.name:<{width}}  {registry.packages.get(plugin, plugin)} {version}  {model.summary}; generate takes {flag}{mark}")
        if verbose and model.train:
            print(f"      train-reference --data: {model.train_data or 'see the plugin'}")


def cmd_list(args) -> int:
    from . import get_registry

    registry = get_registry()
    width = _print_components(registry, args.verbose)
    _print_methods(registry, width)
    _print_reference_models(registry, args.verbose)
    print("broken plugins (skipped):" if registry.broken else "broken plugins: none")
    for b in registry.broken:
        print(f"  {b.plugin:<{width}}  {b.package or b.plugin} {b.version}  {b.error}")
    return 0


def _config(args) -> Any:
    """The command's config with ``--set``'s changes (options of one section merge; a new ``name`` replaces it)."""
    from . import ConfigError
    from .config import load_changed

    sections: dict = {}
    for section, key, value in args.settings:
        sections.setdefault(section, {})[key] = value
    try:
        return load_changed(args.config, sections)
    except ConfigError as err:
        raise _Usage(f"--set: {err}" if getattr(err, "changes", False) else str(err)) from None


def cmd_mask(args) -> int:
    from . import get_registry
    from .interfaces import StepContext, mask_to_str

    cfg = _config(args)
    policy = get_registry().create("policy", cfg.policy.name, cfg.policy.options)
    for steps in args.steps:
        # --partial: the plan of a run of `steps` steps that starts part-way through its schedule (img2img)
        ctx = StepContext(1, steps + 1, 0.0, None, span=(1, steps + 1)) if args.partial else StepContext(0, steps, 0.0, None)
        mask = policy.plan(ctx)
        if mask is None:
            print(f"policy {cfg.policy.name!r} is adaptive: its mask depends on the run (see padecache.stats(...).mask())")
            return 0
        print(f"{steps:>3} steps  {mask_to_str(mask)}  {sum(mask)} passes ({steps / max(sum(mask), 1):.2f}x)")
    if cfg.engine.first_blocks or cfg.engine.last_blocks:  # docs/plugins.md, "Block ranges, at equal block-pass cost"
        print("full passes; the engine's first/last blocks also run on every other step (padecache bench plans fewer)")
    return 0


def cmd_config(args) -> int:
    print(_config(args).to_toml(), end="")
    return 0


# -- bench ----------------------------------------------------------------------------------------------------------

def _scope(args) -> str:
    return "quick" if args.quick else "full" if args.full else "key"


def cmd_bench(args) -> int:
    from .bench.output import check_output_dir
    from .references import find_model

    if args.ray is not None:
        _need_ray()
    check_output_dir(args.out)  # before anything is imported or run: an unwritable --out fails at once
    model = find_model(args.model)
    for_scope, run_bench = model.function("bench_options"), model.function("bench")
    os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")  # cache-dit reads it at import: its INFO lines drown the table
    _set_threads((args.threads or 1) if args.ray is None else None)  # one thread: CPU time measures the method alone
    options = for_scope(
        _scope(args), model=model.name, weights=args.weights, ours=args.ours or None, methods=args.methods, steps=args.steps,
        targets=args.targets, samples=args.samples, seed=args.seed, repeats=args.repeats, fid=args.fid, peers=args.peers,
    )
    from .bench.methods import resolve
    from .bench.report import busy_warning, headline_markdown

    resolve(options.method_list())  # unknown methods, or a scope without ours, fail before a cluster starts
    if (Path(args.out) / "results.json").is_file():  # said before the run, not found out after it
        print(f"padecache bench: {args.out} holds an earlier run's results; this run replaces them "
              f"(merge runs with benchmarks/merge_results.py)", file=sys.stderr)
    with _cluster(args.ray, args.threads) as executor:
        records = run_bench(options, out=args.out, progress=not args.no_progress, executor=executor)
    print(headline_markdown(records, None, options.targets))  # ours as the runs marked it (`tcpade:tc-pade` ran as `tc-pade`)
    if busy_warning(records):
        print(busy_warning(records), file=sys.stderr)
    out = Path(args.out)
    for name in ("results.json", "results.md", "pareto.png", "grid.png"):
        print(f"wrote {out / name}")
    failed = [r for r in records if r.status.startswith("failed")]
    for r in failed:
        print(f"padecache bench: {r.method} (target {r.target}) {r.status}", file=sys.stderr)
    return 1 if failed and executor is not None else 0


def cmd_report(args) -> int:
    from .bench.records import load_comparable
    from .bench.report import NO_RUNS, combined_summary, ours_label

    records = load_comparable(args.results)
    methods = {r.method for r in records}
    unknown = sorted(set(args.exclude) - methods)
    if unknown:
        raise _Usage(f"--exclude: no method {', '.join(map(repr, unknown))} in {', '.join(args.results)} "
                     f"(methods: {', '.join(sorted(methods))})")
    if args.ours in args.exclude:
        raise _Usage(f"--exclude: {args.ours!r} is the method the report is about (--ours); leave it in")
    from .bench.report import score_names
    from .options import suggest

    if args.ours and args.ours != DEFAULT_OURS and args.ours not in methods:
        raise _Usage(f"--ours: no method {args.ours!r} in {', '.join(args.results)}{suggest(args.ours, sorted(methods))} "
                     f"(methods: {', '.join(sorted(methods))})")
    known = score_names(records)
    odd = [name for name in (args.scores or ()) if name not in known]
    if odd:
        raise _Usage(f"--scores: no score {odd[0]!r} in {', '.join(args.results)}{suggest(odd[0], known)} "
                     f"(scores: {', '.join(known)})")
    records = [r for r in records if r.method not in args.exclude]
    text = combined_summary(records, ours=args.ours or None, targets=args.targets, scores=args.scores,
                            every_point=args.every_point, passes=args.passes)
    if text.startswith(NO_RUNS):
        if not any(r.scored for r in records):
            raise _Failed(f"{', '.join(args.results)}: no finished run to report ({len(records)} records, none scored: "
                          f"{', '.join(sorted({r.status for r in records})) or 'empty'})")
        asked = (f"--passes {','.join(map(str, args.passes))}" if args.passes else
                 f"--targets {','.join(f'{t:g}' for t in args.targets)}")
        ours = ours_label(records, args.ours or None)
        swept = ",".join(f"{t:g}" for t in sorted({r.target for r in records if r.scored and r.method == ours and r.target}))
        raise _Usage(f"{asked}: no point to compare; a point is a budget the runs were swept at, and {ours} ran at "
                     f"--targets {swept}: ask for some of those" if swept else f"{asked}: {ours} has no scored run here; "
                     f"name another method with --ours")
    if args.out:
        out = Path(args.out)
        if out.is_dir() or args.out.endswith(("/", os.sep)):  # a directory, or one to make: DIR/summary.md
            out = out / "summary.md"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
        except OSError as err:
            raise _Usage(f"cannot write {out}: {err.strerror or err}") from None
        print(f"wrote {out}", file=sys.stderr)
    print(text)
    return 0


# -- generate -------------------------------------------------------------------------------------------------------

def _check_generate(args) -> None:
    if args.prompt is not None and args.prompts_file is not None:
        raise _Usage("give --prompt or --prompts-file, not both")
    if args.seeds is not None and args.seed is not None:
        raise _Usage("give --seed (one sample) or --seeds (many), not both")
    if args.prompt is None and args.prompts_file is None and args.labels is None:
        raise _Usage("give --prompt (text pipelines) or --labels (class-conditional ones, e.g. --labels 3,1,4)")
    if (args.prompt is not None or args.prompts_file is not None) and args.labels is not None:
        raise _Usage("give prompts (--prompt, --prompts-file) or --labels, not both")
    if args.ray is not None:
        _need_ray()
    if args.device is not None:
        _check_device(args.device)


def _check_device(name: str) -> None:
    """``--device`` names a device this machine has, checked before anything loads."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise _Usage(f"--device {name!r}: {err}") from None
    backend = getattr(torch, device.type, None)
    if device.type != "cpu" and not (backend is not None and getattr(backend, "is_available", lambda: False)()):
        raise _Usage(f"--device {name!r}: this machine has no {device.type} device (torch {torch.__version__}); "
                     f"leave out --device to run on the CPU")


def _generate_one(args) -> int:
    from .generate import generate

    result = generate(
        args.pipeline, _config(args), prompt=args.prompt, negative_prompt=args.negative_prompt, labels=args.labels,
        steps=args.steps, seed=args.seed or 0, height=args.height, width=args.width, frames=args.frames,
        guidance_scale=args.guidance, out=args.out, compare=args.compare, device=args.device, progress=not args.no_progress,
    )
    print(result.summary())
    for path in result.files:
        print(f"wrote {path}")
    return 0


def _generate_many(args) -> int:
    from .files import check_output_dir
    from .generate import check_many, generate_many

    seeds = args.seeds if args.seeds is not None else (args.seed or 0,)
    prompts = _read_prompts(args.prompts_file) if args.prompts_file is not None else args.prompt
    cfg = _config(args)  # a bad config, an unusable --out, or what the pipeline cannot take fails before a cluster starts
    check_output_dir(args.out)
    check_many(args.pipeline, prompts=prompts, labels=args.labels, seeds=seeds, steps=args.steps,
               negative_prompt=args.negative_prompt, height=args.height, width=args.width, frames=args.frames,
               guidance_scale=args.guidance)
    with _cluster(args.ray, args.threads) as executor:
        result = generate_many(
            args.pipeline, cfg, prompts=prompts, labels=args.labels, seeds=seeds,
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


def cmd_generate(args) -> int:
    _check_generate(args)
    if args.ray is None:
        _set_threads(args.threads)
    many = args.seeds is not None or args.prompts_file is not None or args.ray is not None
    return _generate_many(args) if many else _generate_one(args)


def _read_prompts(path: str) -> list[str]:
    """One prompt per line of ``path``, blank lines skipped (a prompt's index counts prompts, not lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise _Usage(f"--prompts-file {path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise _Usage(f"--prompts-file {path}: not a UTF-8 text file (save it as UTF-8, one prompt per line)") from None
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
    except (ClusterError, ModuleNotFoundError, ConnectionError) as err:  # Ray broken or missing, or no cluster to join
        raise _Failed(str(err) if isinstance(err, ClusterError) else f"--ray: {err}") from None


# -- training -------------------------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from .references import find_model

    model = find_model(args.name)
    if model.train is None:
        raise _Usage(f"reference model {model.name!r} has no training recipe in its plugin")
    out = args.out or Path("trained") / model.name
    meta = model.function("train")(model.name, args.data, out, minutes=None if args.steps else args.minutes, steps=args.steps,
                                   seed=args.seed)
    facts = ", ".join(f"{k.replace('_', ' ')} {meta[k]}" for k in ("steps", "seconds", "final_loss") if k in meta)
    print(f"trained {model.name}" + (f": {facts}" if facts else "") + f"; wrote {out}")
    return 0


def _classifier_model(name: str | None):
    from .references import find_model, registered_models

    if name is not None:
        return find_model(name)
    models = [m for m, _, _ in registered_models() if m.train_classifier]
    if not models:
        find_model(None)  # says why there is no model at all
        raise _Usage("no reference model here has a classifier to train")
    if len({m.train_classifier for m in models}) > 1:
        raise _Usage("the reference models use different classifiers: give --model ("
                      + ", ".join(f"{m.name}: --data {m.train_data}" for m in models) + ")")
    return models[0]


def cmd_train_classifier(args) -> int:
    model = _classifier_model(args.model)
    meta = model.function("train_classifier")(args.data, args.out, epochs=args.epochs, seed=args.seed)
    accuracy = meta.get("held_out_accuracy")
    print((f"held-out accuracy {accuracy}; " if accuracy is not None else "") + f"wrote {meta.get('out', args.out)}")
    return 0


COMMANDS = {"list": cmd_list, "mask": cmd_mask, "config": cmd_config, "bench": cmd_bench, "generate": cmd_generate,
            "report": cmd_report, "train-reference": cmd_train, "train-classifier": cmd_train_classifier}


#: loggers of optional libraries that warn at import about kernels this machine lacks (torchao's GPU extensions,
#: its deprecated pytree registrations), which say nothing about padecache's run
_IMPORT_NOISE = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer")


def main(argv: list[str] | None = None) -> int:
    import logging

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in _IMPORT_NOISE:  # a command-line entry point may set this; the library never does
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except (_Usage, MissingModel, ValueError, TypeError, FileNotFoundError) as err:
        print(f"padecache {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (_Failed, PipelineError) as err:  # PipelineError: the pipeline refused the request it was given
        print(f"padecache {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: no traceback; a benchmark's finished runs are already in its results.json
        kept = f"; the finished runs are in {Path(args.out) / 'results.json'}" if args.command == "bench" else ""
        print(f"padecache {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `padecache list | head`: the reader stopped; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
