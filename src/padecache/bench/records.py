"""What the benchmark writes: one :class:`Record` per run, with the :class:`Environment` it ran in.

Records are plain attrs classes that round-trip through JSON (``results.json`` is a list of
:meth:`Record.to_dict`).  :func:`load_records` also reads the flat records of earlier padecache versions
(``full_passes``, ``psnr``, ``ssim`` ... at the top level), so ``padecache report`` keeps working on
stored results.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Record", "Environment", "environment", "load_records", "load_comparable", "dump_records", "STATUSES"]

#: ``status`` values: a run that counts, one whose timing was rejected, one that did not run
STATUSES = ("ok", "timing_suspect", "skipped: ...", "failed: ...")


@attrs.define
class Environment:
    """Where a run was measured.

    Attributes:
        torch, diffusers, padecache: package versions.
        device: the device the pipeline's transformer sits on (``"cpu"``, ``"cuda:0"``).
        device_name: the GPU's name on a GPU, else the CPU model.
        cpu: the CPU model; ``cpu_count``: logical CPUs; ``threads``: torch's intra-op threads.
        load_avg, load_avg_end: the 1-minute load average when the comparison started and when it ended (a busy
            machine shares caches and memory bandwidth; reports warn, :meth:`busy`).
        python, platform: interpreter version and OS.
        cluster: the cluster a distributed run used (``"ray 2.60.0: 2 nodes, 16 CPUs, 8 GPUs (...)"``), else empty.
    """

    torch: str = ""
    diffusers: str = ""
    padecache: str = ""
    device: str = "cpu"
    device_name: str = ""
    cpu: str = ""
    cpu_count: int | None = None
    threads: int | None = None
    load_avg: float | None = None
    load_avg_end: float | None = None
    python: str = ""
    platform: str = ""
    cluster: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Environment:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    def busy(self) -> bool:
        """Other work was running when it was measured (the load average, at start or end, says so)."""
        from ..timing import busy

        own = (self.threads or 1) if self.device == "cpu" else 1
        return any(busy(v, self.cpu_count, own) for v in (self.load_avg, self.load_avg_end))

    def describe(self) -> str:
        """One line for reports: device, threads, versions."""
        where = self.device_name or self.device
        if self.device == "cpu":
            where = f"{self.cpu or platform.machine()} ({self.threads} threads of {self.cpu_count} CPUs)"
        loads = [f"{v:.2f} at {when}" for v, when in ((self.load_avg, "start"), (self.load_avg_end, "end")) if v is not None]
        load = f", load {' and '.join(loads)}" if loads else ""
        cluster = f"; a worker of {self.cluster}" if self.cluster else ""
        return f"{where}{load}{cluster}; torch {self.torch}, diffusers {self.diffusers}, padecache {self.padecache}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any = None) -> Environment:
    """The :class:`Environment` of this process, for a model on ``device`` (a ``torch.device`` or string)."""
    import importlib.metadata

    import torch

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    dev = torch.device(device) if device is not None else torch.device("cpu")
    name = _cpu_model()
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    from ..timing import load_average

    load = load_average()
    return Environment(
        torch=torch.__version__, diffusers=version("diffusers"), padecache=version("padecache"), device=str(dev),
        device_name=name, cpu=_cpu_model(), cpu_count=os.cpu_count(), threads=torch.get_num_threads(), load_avg=load,
        python=platform.python_version(), platform=platform.platform(terse=True),
    )


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@attrs.define
class Record:
    """One run of one method (or of full compute) on one pipeline, step count and seed set.

    Attributes:
        model: the pipeline's name (``compare(name=...)``).
        method: the method's label (a family, preset, component or peer name).
        kind: ``"reference"`` (full compute), ``"padecache"`` or ``"peer"``.
        config: the settings that ran (a padecache config dict, or a peer's parameters).
        plugin, plugin_version: who provided the method (``"padecache"`` for built-ins, the plugin for its
            families and presets, ``"diffusers"`` or ``"cache-dit"`` for peers).
        components: per config section, ``{"name", "plugin", "version"}`` of the component that ran.
        group: the method family this run belongs to in the headline (e.g. ``"taylorseer"``, ``"reuse"``).
        published: this method is the published form of its group (reported next to "ours").
        ours: this is the method the comparison is about (``compare(ours=...)``).
        target: the pass speedup this sweep point aimed at (``None`` for a method run as given).
        steps: denoising steps the generation ran (``None`` if they could not be read from the pipeline): a pipeline that
            runs only the end of its schedule (img2img at strength < 1) counts the steps it ran, and passes, budgets
            and masks are over those steps.
        seeds: the seeds generated; ``samples``: images scored (all seeds).
        passes: block-stack passes per generation, counted by executions (full compute: ``steps``).
        pass_speedup: full compute's block executions / this run's.
        wall_s: median time of one run over all seeds; ``reference_wall_s``: median of the full-compute
            runs timed right before and after it; ``wall_speedup``: their ratio.  All three on ``clock``.
        summary: the settings in a few words (components and the options that differ from their defaults), written
            when the run was made: reports show it without asking the registry (records are facts).
        clock: what the times were read on: ``"cpu"`` (this process's CPU time: what the run cost, whatever else
            the machine ran), ``"cuda"`` (CUDA events) or ``"wall"`` (elapsed time, as padecache <= 0.1 measured).
        scores: scorer name -> value (``None`` where not computed or infinite, e.g. PSNR of identical images).
        status: ``"ok"``, ``"timing_suspect"`` (the wall speedup exceeded the pass speedup even when re-timed:
            its scores count, its timing does not), ``"skipped: why"`` or ``"failed: why"``.
        fallbacks, cache_bytes, mask: padecache's stats of the run (``None`` for peers).
        environment: where it ran.
        distributed: the run was one task of a comparison spread over a cluster (``compare(executor=...)``): its
            wall times come from a worker that may have shared its machine with other tasks, so they are not
            comparable with those of a run in one process (its wall × is still against full compute timed on
            the same worker); ``environment.cluster`` names the cluster.
    """

    model: str
    method: str
    kind: str = "padecache"
    config: dict = attrs.field(factory=dict)
    plugin: str = ""
    plugin_version: str = ""
    components: dict = attrs.field(factory=dict)
    group: str = ""
    published: bool = False
    ours: bool = False
    target: float | None = None
    steps: int | None = None
    seeds: list = attrs.field(factory=list)
    samples: int = 0
    passes: float | None = None
    pass_speedup: float | None = None
    wall_s: float | None = None
    reference_wall_s: float | None = None
    wall_speedup: float | None = None
    scores: dict = attrs.field(factory=dict)
    status: str = "ok"
    fallbacks: int | None = None
    cache_bytes: int | None = None
    mask: str | None = None
    environment: Environment = attrs.field(factory=Environment)
    distributed: bool = False
    clock: str = "wall"
    summary: str = ""

    @property
    def scored(self) -> bool:
        """The run finished and its quality counts (its timing may still be suspect)."""
        return self.status in ("ok", "timing_suspect")

    @property
    def timed(self) -> bool:
        """Its wall-clock figures count."""
        return self.status == "ok" and self.wall_speedup is not None

    def score(self, name: str) -> float | None:
        """``scores[name]``, with ``inf`` for full compute's PSNR-like scores stored as ``None``."""
        return self.scores.get(name)

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=False)
        d["environment"] = self.environment.to_dict()
        d["scores"] = {k: _finite(v) for k, v in self.scores.items()}
        return {k: _finite(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """A record from :meth:`to_dict` output, or from the flat records of padecache <= 0.1 bench runs."""
        if "scores" not in data:
            return _from_legacy(data)
        names = {f.name for f in attrs.fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["environment"] = Environment.from_dict(data.get("environment"))
        return cls(**kw)


_LEGACY_SCORES = ("psnr", "ssim", "rel_l2", "class_acc", "fid_cls", "fid", "fid_cls_full", "fid_full")


def _from_legacy(d: Mapping[str, Any]) -> Record:
    method = d.get("method", "?")
    kind = d.get("kind", "padecache")
    return Record(
        model=d.get("model", "?"), method=method, kind=kind, config=dict(d.get("config") or {}),
        plugin="", plugin_version="", group="", target=d.get("target_speedup"), steps=d.get("steps"),
        seeds=[d["seed"]] if d.get("seed") is not None else [], samples=d.get("samples") or 0,
        passes=d.get("full_passes"), pass_speedup=d.get("pass_speedup"), wall_s=d.get("wall_s"),
        wall_speedup=d.get("wall_speedup"), scores={k: d.get(k) for k in _LEGACY_SCORES if k in d},
        status=d.get("status", "ok"), fallbacks=d.get("fallbacks"), cache_bytes=d.get("cache_bytes"), mask=d.get("mask"),
    )


def dump_records(records: Iterable[Record], path: str | Path) -> None:
    """Write ``results.json`` atomically (a partial file never replaces a complete one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps([r.to_dict() for r in records], indent=1, default=str) + "\n")
    os.replace(tmp, path)


def load_records(paths: str | Path | Sequence[str | Path]) -> list[Record]:
    """Records from one or more ``results.json`` files (or directories holding one)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Record] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            p = p / "results.json"
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}: no such results file (padecache bench writes results.json)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{p}: not a results.json file ({err})") from None
        out.extend(Record.from_dict(r) for r in _record_dicts(p, data))
    return out


def load_comparable(paths: Sequence[str | Path]) -> list[Record]:
    """:func:`load_records` of every file, ``ValueError`` when two files hold runs of one model and step count on
    different images (samples or seeds): their scores are against different full computes and share no table."""
    records: list[Record] = []
    seen: dict[tuple, tuple] = {}
    for path in paths:
        for r in load_records([path]):
            records.append(r)
            if not r.samples:  # a run that failed before it drew an image
                continue
            images = (r.samples, tuple(r.seeds or ()))
            first = seen.setdefault((r.model, r.steps), (images, path))
            if first[0] != images:
                (n, seeds), (m, other) = first[0], images
                raise ValueError(f"{r.model} at {r.steps} steps: {first[1]} ran {n} images (seeds {list(seeds)}) and "
                                 f"{path} {m} (seeds {list(other)}); scores on different images do not compare: report "
                                 f"them separately")
    return records


def _record_dicts(path: Path, data: Any) -> list[Mapping[str, Any]]:
    """The record dicts of a parsed results file; ``ValueError`` naming the file when it is not one."""
    what = "padecache bench's results.json: a list of records, each with at least `model` and `method`"
    if isinstance(data, Mapping):
        if "records" not in data:
            keys = ", ".join(sorted(map(str, data))[:6]) or "none"
            raise ValueError(f"{path}: not a results file (a JSON object with keys {keys}); expected {what}")
        data = data["records"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: not a results file (a JSON {type(data).__name__}); expected {what}")
    if not data:
        raise ValueError(f"{path}: no records in it; expected {what}")
    for i, r in enumerate(data):
        if not isinstance(r, Mapping) or not isinstance(r.get("method"), str) or not isinstance(r.get("model"), str):
            raise ValueError(f"{path}: entry {i} is not a run record (no `model` and `method`); expected {what}")
    return data
