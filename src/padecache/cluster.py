"""Run padecache's work on a cluster (extra ``ray``): ``padecache generate --ray`` and ``padecache bench --ray``.

    from padecache.cluster import RayExecutor
    from padecache.generate import generate_many
    import padecache.bench as bench

    with RayExecutor() as cluster:            # a local cluster with this machine's CPUs and GPUs, shut down at the end
        generate_many("path/to/pipeline", "tc-pade-fast", prompts=["a cat"], seeds=range(32), out="out/",
                      executor=cluster)
        records = bench.compare("path/to/pipeline", generate, ["noop", "tc-pade"], seeds=range(8), executor=cluster)

    RayExecutor("auto"), RayExecutor("ray://head:10001")    # connect to a running cluster; never shut it down

An executor runs *tasks*: module-level functions and their arguments, pickled to the workers.  A task takes
one GPU, or one CPU on a cluster without GPUs; a task that raises, or whose worker dies, runs once more
(``retries``), then :meth:`Executor.get` raises :class:`TaskFailed` with its last error.  Pipelines are loaded
by the workers themselves from a :class:`PipelineSource` (a directory, a reference model name), so the driver
never needs to hold a model.  :class:`InProcessExecutor` runs the same tasks one after another in this process,
without Ray: the reference the distributed paths are tested against.

Ray is imported when a :class:`RayExecutor` starts, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Executor", "InProcessExecutor", "RayExecutor", "ClusterError", "TaskFailed", "PipelineSource",
           "pipeline_source", "describe_error", "MISSING_RAY"]

MISSING_RAY = "running on a Ray cluster needs Ray: pip install 'padecache[ray]' (or pip install ray)"


class ClusterError(RuntimeError):
    """Work on a cluster could not go on (a task every other one depends on failed)."""


class TaskFailed(ClusterError):
    """A task failed on every attempt; the message is its last error, ``"ExceptionType: message"``."""


def describe_error(err: BaseException) -> str:
    """``"ExceptionType: message"`` on one line (the remote cause of a Ray error, not Ray's wrapper)."""
    cause = getattr(err, "cause", None)  # ray.exceptions.RayTaskError keeps the exception the task raised
    if isinstance(cause, BaseException) and cause is not err:
        err = cause
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


@attrs.frozen
class PipelineSource:
    """How a worker gets the pipeline: ``load(*args)``, called on the worker.

    ``load`` must be importable on the workers (a module-level function such as
    :func:`padecache.loading.load_pipeline`, or a reference model's loader); ``args`` are
    plain values.  :meth:`key` names the pipeline in a worker's cache, where one pipeline is kept between the
    tasks of a benchmark.
    """

    load: Callable[..., Any]
    args: tuple = attrs.field(default=(), converter=tuple)

    def key(self) -> str:
        return f"{getattr(self.load, '__module__', '?')}.{getattr(self.load, '__qualname__', repr(self.load))}{self.args!r}"

    def __call__(self) -> Any:
        return self.load(*self.args)


def pipeline_source(pipe: Any, device: str | None = None) -> PipelineSource | None:
    """``pipe`` as a :class:`PipelineSource`, or ``None`` for a pipeline object (it is shipped to the workers as is).

    A directory becomes its absolute path (workers may not share the driver's working directory; on a remote
    cluster the path must exist on every node); any other string is a reference model name.
    """
    if isinstance(pipe, PipelineSource):
        return pipe
    if not isinstance(pipe, (str, Path)):
        return None
    from .loading import load_pipeline

    path = Path(pipe)
    name = str(path.resolve()) if path.exists() else str(pipe)
    return PipelineSource(load_pipeline, (name, device))


class Executor:
    """What padecache's distributed paths need from a cluster; subclass it for another backend.

    Attributes:
        label: how records and summaries name where the work ran (``"ray 2.60.0: 1 node, 2 CPUs, 0 GPUs"``, plus
            ``" at ADDRESS"`` for a cluster connected to by address).
        device: where tasks put their models (``"cuda"`` when each task holds a GPU; ``None``: the CPU).
        seeds_per_unit: how many seeds one benchmark unit generates (``None``: all of them, one unit per setting).
    """

    label: str = ""
    device: str | None = None
    seeds_per_unit: int | None = None

    def slots(self) -> int:
        """Tasks that can run at once (GPUs, or CPUs where there are none)."""
        raise NotImplementedError

    def put(self, value: Any) -> Any:
        """A handle to ``value``, stored once and passed to any number of tasks."""
        raise NotImplementedError

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "") -> Any:
        """Run ``fn(*args)`` as a task; handles among ``args`` (from :meth:`put` or :meth:`submit`) arrive as values."""
        raise NotImplementedError

    def wait(self, handles: Sequence[Any]) -> list[Any]:
        """The handles among ``handles`` whose tasks have finished (at least one; blocks until then)."""
        raise NotImplementedError

    def get(self, handle: Any) -> Any:
        """A finished task's value; :class:`TaskFailed` when it failed on every attempt."""
        raise NotImplementedError

    def cancel(self, handles: Iterable[Any]) -> None:
        """Give up on tasks not yet finished (best effort)."""

    def close(self) -> None:
        """Release the cluster (shut down what this executor started, nothing else)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Done:
    """An :class:`InProcessExecutor` handle: the value, or the error of the last attempt."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any = None, error: str | None = None):
        self.value, self.error = value, error


def _check_retries(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"retries must be a whole number >= 0, got {value!r}")
    return value


def _check_seeds_per_unit(value: int | None) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"seeds_per_unit must be a whole number >= 1 or None, got {value!r}")
    return value


class InProcessExecutor(Executor):
    """Runs every task at once, in this process, one after another (no Ray, no copies of the arguments).

    The distributed code paths with nothing distributed: same units, same retries, same gathering.
    """

    label = "in-process"

    def __init__(self, *, retries: int = 1, seeds_per_unit: int | None = None):
        self.retries = _check_retries(retries)
        self.seeds_per_unit = _check_seeds_per_unit(seeds_per_unit)

    def slots(self) -> int:
        return 1

    def put(self, value: Any) -> _Done:
        return _Done(value)

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "") -> _Done:
        failed = next((a for a in args if isinstance(a, _Done) and a.error is not None), None)
        if failed is not None:  # as on Ray: a task whose input failed fails with the same error
            return _Done(error=failed.error)
        values = [a.value if isinstance(a, _Done) else a for a in args]
        error = None
        for _ in range(self.retries + 1):
            try:
                return _Done(fn(*values))
            except Exception as err:  # noqa: BLE001 - reported through get(), like a remote failure
                error = describe_error(err)
        return _Done(error=error)

    def wait(self, handles: Sequence[_Done]) -> list[_Done]:
        return list(handles)

    def get(self, handle: _Done) -> Any:
        if handle.error is not None:
            raise TaskFailed(handle.error)
        return handle.value


def _ray():
    try:
        import ray
    except ImportError:
        raise ModuleNotFoundError(MISSING_RAY) from None
    return ray


def _endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``"host:port"``, ``"ray://host:port"`` or ``"[v6]:port"``; ``None`` for ``"auto"`` and the like."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_reachable(address: str, timeout: float) -> None:
    """Raise :class:`ClusterError` at once when nothing listens at ``address``.

    ``ray.init`` retries an address that does not answer for minutes before it fails; a TCP connection with a
    short timeout says the same in seconds.
    """
    import socket

    endpoint = _endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as err:
        raise ClusterError(f"no Ray cluster answers at {address!r} ({err or type(err).__name__}, waited {timeout:g} s): "
                           f"start one there (ray start --head --port={endpoint[1]}), check the host and port, "
                           "or leave the address out to start a local cluster") from None


def _run_task(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """What a Ray worker runs: torch's thread count for this task's CPUs, then the task."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # a worker process is ours; tiny models run several times faster on one thread
    return fn(*args)


class RayExecutor(Executor):
    """A Ray cluster: started here (``address=None``) or connected to (an address).

    Args:
        address: ``None`` starts a local cluster with this machine's CPUs and GPUs (or ``num_cpus`` /
            ``num_gpus``) and shuts it down on :meth:`close`; ``"auto"``, ``"host:port"`` or ``"ray://host:port"``
            connects to a running one, which :meth:`close` only disconnects from.  When Ray is already
            initialised in this process, that cluster is used and left running.
        num_cpus, num_gpus: resources of a local cluster (default: what the machine has).
        threads: torch threads in each task, and the CPUs each task reserves (default 1: one task per CPU, or per
            GPU with one CPU beside it); a cluster with fewer CPUs than that is refused when it starts.
        retries: how often a failed task runs again before it is reported (default once).
        seeds_per_unit: seeds per benchmark unit (default: all, one unit per method setting).
        connect_timeout: seconds to wait for a ``host:port`` address to accept a connection before
            :meth:`start` raises :class:`ClusterError` (Ray itself would keep retrying for minutes).
        init_options: more keyword arguments for ``ray.init`` (``runtime_env``, ``namespace``...).

    Workers of a local cluster run this interpreter (same virtual environment, so padecache and its plugins,
    installed editable or not, import there) in this working directory.  On a remote cluster, padecache, its
    plugins and the pipelines must be installed and reachable on every node.

    Example::

        with RayExecutor() as cluster:
            records = padecache.bench.compare("saved-pipeline/", generate, ["noop", "tc-pade"], executor=cluster)
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
                 threads: int | None = None, retries: int = 1, seeds_per_unit: int | None = None,
                 connect_timeout: float = 10.0, **init_options: Any):
        if address is not None and (num_cpus is not None or num_gpus is not None):
            raise ValueError("num_cpus and num_gpus size a local cluster; a running cluster at an address has its own")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) or not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be a number of seconds > 0, got {connect_timeout!r}")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.connect_timeout = float(connect_timeout)
        self.threads = threads or 1
        self.retries = _check_retries(retries)
        self.seeds_per_unit = _check_seeds_per_unit(seeds_per_unit)
        self.init_options = init_options
        self.owned = False  # this executor started the cluster and shuts it down
        self.gpus = self.cpus = 0
        self._remote = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> RayExecutor:
        """Start or connect (idempotent); on any error, what was started is shut down again."""
        if self._remote is not None:
            return self
        ray = _ray()
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning", **self.init_options}
        if ray.is_initialized():
            self.owned = False
        elif self.address is None:
            ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus, **options)
            self.owned = True
        else:
            _check_reachable(self.address, self.connect_timeout)
            options.pop("include_dashboard")  # a setting of the cluster's head, not of a driver
            ray.init(address=self.address, **options)
            self.owned = False
        try:
            resources = ray.cluster_resources()
            self.gpus = int(resources.get("GPU", 0))
            self.cpus = int(resources.get("CPU", 0))
            nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
            if not self.gpus and not self.cpus:
                raise RuntimeError(f"the Ray cluster has neither CPUs nor GPUs to run tasks on ({resources})")
            if self.threads > self.cpus:  # no task could ever be placed: it would wait for ever
                raise ClusterError(f"threads = {self.threads} reserves {self.threads} CPUs for each task, and the Ray "
                                   f"cluster has {self.cpus} CPUs: lower threads, or give the cluster more CPUs")
            self.device = "cuda" if self.gpus else None
            self.label = (f"ray {ray.__version__}: {nodes} node{'s' if nodes != 1 else ''}, {self.cpus} CPUs, {self.gpus} GPUs"
                          + (f" at {self.address}" if self.address is not None else ""))
            self._remote = ray.remote(_run_task)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Shut the cluster down if this executor started it; otherwise leave it running."""
        self._remote = None
        if self.owned:
            self.owned = False
            _ray().shutdown()

    def __enter__(self) -> RayExecutor:
        return self.start()

    # -- tasks ----------------------------------------------------------------------------------------------
    def slots(self) -> int:
        self.start()
        return self.gpus or max(1, self.cpus // self.threads)

    def put(self, value: Any) -> Any:
        self.start()
        return _ray().put(value)

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "") -> Any:
        self.start()
        resources = {"num_cpus": self.threads, "num_gpus": 1} if self.gpus else {"num_cpus": self.threads}
        task = self._remote.options(**resources, max_retries=self.retries, retry_exceptions=True,
                                    name=name or getattr(fn, "__name__", "task"))
        return task.remote(self.threads, fn, *args)

    def wait(self, handles: Sequence[Any]) -> list[Any]:
        ray = _ray()
        handles = list(handles)
        if not handles:
            return []
        done, rest = ray.wait(handles, num_returns=1)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        return done

    def get(self, handle: Any) -> Any:
        ray = _ray()
        try:
            return ray.get(handle)
        except ray.exceptions.RayError as err:  # the task's own exception, a dead worker, a lost object
            raise TaskFailed(describe_error(err)) from None

    def cancel(self, handles: Iterable[Any]) -> None:
        ray = _ray()
        for h in handles:
            try:
                ray.cancel(h)
            except Exception:  # noqa: BLE001,S110 - already finished, or not cancellable: nothing to do
                pass
