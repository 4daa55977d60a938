"""``padecache bench``: :func:`padecache.bench.compare` on a bundled reference model, with its scorers.

Three scopes (``padecache bench``, ``--quick``, ``--full``):

* ``"key"`` (the default): the headline comparison for ``ours`` (ours, its published form, TaylorSeer as diffusers
  implements it, reuse) at 2.5x and 3.33x, 20 steps, 8 prompts of emoji-t2i (32 digits of the MNIST models);
* ``"quick"``: ours, its published form, first-order TaylorSeer and reuse at 2.5x, 20 steps, 4 prompts (8 digits);
* ``"full"``: every registered family, peer and caching preset at 2.5x, 3.33x, 4x, 5x and 6x, 20, 28 and 50
  steps, the 64 benchmark prompts (32 digits; Inception FID when the ``fid`` extra is installed).

Example::

    from padecache_reference.bench import BenchOptions, run_bench
    records = run_bench(BenchOptions.for_scope("quick", ours="tc-pade"), out="bench-out")

    from padecache.cluster import RayExecutor       # the same on a Ray cluster (padecache bench --ray)
    with RayExecutor() as cluster:
        records = run_bench(BenchOptions.for_scope("quick", ours="tc-pade"), out="bench-out", executor=cluster)

The digits of a run are one batch of one seed (sample ``i`` draws its noise from ``seed + i``), so on a cluster a
unit is one method setting at one step count, over all digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

__all__ = ["BenchOptions", "DigitGenerator", "PromptGenerator", "run_bench", "SCOPES"]

SCOPES = ("quick", "key", "full")

_SCOPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"samples": 8, "targets": (2.5,), "steps": (20,)},
    "key": {"samples": 32, "targets": (2.5, 10 / 3), "steps": (20,)},
    "full": {"samples": 32, "targets": (2.5, 10 / 3, 4.0, 5.0, 6.0), "steps": (20, 28, 50)},
}
#: emoji-t2i runs two transformer calls per step on longer sequences: prompts per run by scope (the full sweep
#: takes all 64 benchmark prompts; the key comparison eight, one image-grid row)
_EMOJI_SAMPLES = {"quick": 4, "key": 8, "full": 64}


def _positive(name):
    def check(_, attribute, value):
        values = value if isinstance(value, tuple) else (value,)
        if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise ValueError(f"{name} must be whole numbers >= 1, got {value!r}")

    return check


def _targets(_, attribute, value):
    if not value or any(not t >= 1.0 for t in value):
        raise ValueError(f"targets are pass speedups >= 1 (e.g. 2.5,10/3), got {value!r}")


def _model(_, attribute, value):
    from . import MODEL_NAMES

    if value not in MODEL_NAMES:
        raise ValueError(f"unknown reference model {value!r}; choose one of {', '.join(MODEL_NAMES)}")


@attrs.frozen
class BenchOptions:
    """What ``padecache bench`` runs.

    Attributes:
        model: ``"emoji-t2i"`` (default), ``"dit-mnist"`` or ``"flux-mnist"``; ``weights``: a directory written by ``train-reference``
            (default: the bundled weights).
        scope: ``"quick"``, ``"key"`` or ``"full"``: which methods run when ``methods`` is ``None``.
        ours: the method the comparison is about (``None``: no "ours"; the ``key``/``quick`` scopes need one).
        methods: explicit methods (names as :func:`padecache.bench.compare` takes them); ``ours`` is added.
        steps, targets, samples, seed, repeats: as in :func:`padecache.bench.compare` (digits 0-9 cycled).
        fid: Inception FID (``None``: in the ``full`` scope when the extra is installed); ``fid_targets``: where.
        peers: include other tools (diffusers' hooks, cache-dit) in the scope's method list.
    """

    model: str = attrs.field(default="emoji-t2i", validator=_model)
    weights: str | None = None
    scope: str = attrs.field(default="key", validator=attrs.validators.in_(SCOPES))
    ours: str | None = None
    methods: tuple[str, ...] | None = attrs.field(default=None, converter=lambda v: None if v is None else tuple(v))
    steps: tuple[int, ...] = attrs.field(default=(20,), converter=tuple, validator=_positive("steps"))
    targets: tuple[float, ...] = attrs.field(default=(2.5, 10 / 3), converter=lambda v: tuple(float(t) for t in v), validator=_targets)
    samples: int = attrs.field(default=32, validator=_positive("samples"))
    seed: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    repeats: int = attrs.field(default=1, validator=attrs.validators.ge(0))  # 0: scores only, no timing
    fid: bool | None = None
    fid_targets: tuple[float, ...] = (2.5, 10 / 3)
    peers: bool = True

    @classmethod
    def for_scope(cls, scope: str = "key", **overrides: Any) -> BenchOptions:
        """The options of a scope, with ``overrides`` (``None`` values keep the scope's default)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
        kw = {**_SCOPE_DEFAULTS[scope], "scope": scope}
        if (overrides.get("model") or attrs.fields(cls).model.default) == "emoji-t2i":
            kw["samples"] = _EMOJI_SAMPLES[scope]
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    def method_list(self) -> list[str]:
        """The methods to compare (resolved against the registry: plugins' families included)."""
        from padecache.bench.selection import all_methods, key_methods, method_for

        if self.methods is not None:
            methods = list(self.methods)
        elif self.scope == "full":
            methods = all_methods(peers=self.peers)
        else:
            if self.ours is None:
                raise ValueError(f"the {self.scope!r} scope compares against ours: give ours= (the CLI's --ours)")
            methods = key_methods(self.ours, peers=self.peers, quick=self.scope == "quick")
        if self.ours is not None and method_for(self.ours) not in methods:
            methods.insert(0, method_for(self.ours))
        return methods

    def use_fid(self) -> bool:
        from .scorers import inception_available

        if self.model == "emoji-t2i":  # scored in its own classifier's feature space
            return bool(self.fid)
        return self.fid if self.fid is not None else (self.scope == "full" and inception_available())


@attrs.frozen
class PromptGenerator:
    """``generate(pipe, seed)`` for :func:`padecache.bench.compare` on ``emoji-t2i``: ``prompts`` at ``steps`` steps.

    ``captions`` are what the benchmark's image grid writes under each column (the prompts).
    """

    prompts: tuple[str, ...] = attrs.field(converter=tuple)
    steps: int = 20
    guidance_scale: float | None = None

    @property
    def captions(self) -> tuple[str, ...]:
        return self.prompts

    def __call__(self, pipe, seed: int):
        return pipe(list(self.prompts), num_inference_steps=self.steps, seed=seed, guidance_scale=self.guidance_scale)


@attrs.frozen
class DigitGenerator:
    """``generate(pipe, seed)`` for :func:`padecache.bench.compare`: the digits ``labels`` at ``steps`` steps."""

    labels: tuple[int, ...] = attrs.field(converter=tuple)
    steps: int = 20

    def __call__(self, pipe, seed: int):
        return pipe(list(self.labels), num_inference_steps=self.steps, seed=seed)


#: the most digits one benchmark run generates (one batch; the 400-digit runs of docs/results fit on 2 CPU cores)
MAX_DIGITS = 1024


def _workload(options: BenchOptions):
    """What a run generates and how it is scored: digits for the MNIST models, prompts for emoji-t2i."""
    if options.model == "emoji-t2i":
        from .emoji import benchmark_prompts
        from .scorers import emoji_scorers

        prompts = benchmark_prompts(options.samples)
        if options.use_fid():
            raise ValueError("Inception FID is for the digit models; emoji-t2i is scored in its classifier's feature "
                             "space (fid_cls, fid_cls_full): drop --fid")
        return (lambda steps: PromptGenerator([p.text for p in prompts], steps),
                emoji_scorers([p.category_index for p in prompts]))
    from .scorers import mnist_scorers

    if options.samples > MAX_DIGITS:  # one batch per run: 100 000 digits fill the memory before any is scored
        raise ValueError(f"{options.model}'s benchmark generates its digits as one batch per run; ask for 1 to "
                         f"{MAX_DIGITS} samples, got {options.samples}")
    labels = [i % 10 for i in range(options.samples)]
    scorers = mnist_scorers(labels, fid=options.use_fid(), fid_targets=options.fid_targets)
    return (lambda steps: DigitGenerator(labels, steps)), scorers


def run_bench(options: BenchOptions, out: str | Path | None = None, progress: bool = True, executor: Any = None) -> list:
    """Run ``options`` (each step count is one :func:`padecache.bench.compare`); records go to ``out`` as they come.

    ``out`` is checked before the model loads.  With an ``executor`` (:class:`padecache.cluster.RayExecutor`, the
    CLI's ``--ray``) every method setting runs as a task; the workers load the model themselves (the weights
    directory must then exist on every node) and the records say ``distributed: true``.  Returns every
    :class:`~padecache.bench.records.Record`.
    """
    from padecache.bench import ResultsDir, compare
    from padecache.bench.methods import resolve

    from .reference import load_reference

    writer = ResultsDir(out) if out is not None else None
    methods = options.method_list()
    resolve(methods)  # unknown names fail here, before the model loads
    make_generator, scorers = _workload(options)
    if executor is None:
        pipe = load_reference(options.model, options.weights)
    else:
        from padecache.cluster import PipelineSource

        weights = None if options.weights is None else str(Path(options.weights).resolve())
        pipe = PipelineSource(load_reference, (options.model, weights))  # loaded by each worker
    records = []
    for steps in dict.fromkeys(options.steps):  # a step count given twice runs once
        records += compare(pipe, make_generator(steps), methods, targets=options.targets, seeds=(options.seed,),
                           scorers=scorers, repeats=options.repeats, ours=options.ours, out=writer, progress=progress,
                           name=options.model, executor=executor)
    return records
