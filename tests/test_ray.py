"""Distributed ``generate`` and ``bench`` (:mod:`padecache.cluster`): the same files and records as one process.

The tests marked ``cluster`` run on one local Ray cluster of 2 CPUs, started once for the module (a few
seconds) and shut down at its end, when no process of it may be left; they are skipped when Ray is not
installed.  The others run the same distributed code paths in this process (:class:`InProcessExecutor`) or
against a stand-in for Ray.  Pipelines are tiny (2 images, 4-6 steps).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import types

import attrs
import numpy as np
import pytest
import torch
from PIL import Image

import padecache.bench as bench
from padecache.bench.methods import padecache_setting
from padecache.cli import main
from padecache.cluster import ClusterError, InProcessExecutor, RayExecutor, TaskFailed
from padecache.generate import load_pipeline
from padecache.testing.pipelines import tiny_pipeline

STEPS = 6
TIMINGS = {"wall_s", "reference_wall_s", "wall_speedup", "environment", "distributed", "status"}


def generate(pipe, seed):
    return pipe(class_labels=[1, 2], num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                generator=torch.Generator().manual_seed(seed)).images


def _ray_processes() -> list:
    """This process's Ray daemons (raylet, GCS server)."""
    psutil = pytest.importorskip("psutil")
    return [p for p in psutil.Process().children(recursive=True)
            if any(name in " ".join(p.cmdline()) for name in ("raylet", "gcs_server"))]


# -- without a cluster (these run first: they stand in for the ray module while no cluster runs) -------------

class _FakeRay(types.ModuleType):
    """Stands in for ``ray``: records init and shutdown; ``fail`` makes the cluster unusable after it starts."""

    def __init__(self, fail: bool = False, running: bool = False):
        super().__init__("ray")
        self.calls, self.fail, self.running, self.__version__ = [], fail, running, "0"

    def is_initialized(self):
        return self.running

    def init(self, address=None, **kw):
        self.calls.append(("init", address))
        self.running = True

    def shutdown(self):
        self.calls.append(("shutdown",))
        self.running = False

    def cluster_resources(self):
        if self.fail:
            raise ConnectionError("the head node went away")
        return {"CPU": 2.0}

    def nodes(self):
        return [{"Alive": True}]

    def remote(self, fn):
        return fn


def test_the_executor_shuts_down_the_cluster_it_started_and_only_that_one(monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ZeroDivisionError), RayExecutor(num_cpus=2) as executor:
        assert executor.label == "ray 0: 1 node, 2 CPUs, 0 GPUs"
        1 / 0  # noqa: B018 - the run fails: the cluster goes down all the same
    assert fake.calls == [("init", "local"), ("shutdown",)]
    fake = _FakeRay(fail=True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ConnectionError):
        RayExecutor().start()  # started, then failed: shut down again
    assert fake.calls == [("init", "local"), ("shutdown",)]
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    with socket.create_server(("127.0.0.1", 0)) as head:  # something listens there, as a cluster's head would
        address = f"ray://127.0.0.1:{head.getsockname()[1]}"
        with RayExecutor(address):
            pass
    assert fake.calls == [("init", address)]  # someone else's cluster: disconnected, never shut down
    fake = _FakeRay(running=True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with RayExecutor():
        pass
    assert fake.calls == []  # Ray already running in this process: its owner shuts it down


def test_tasks_of_several_threads_reserve_as_many_cpus_and_a_cluster_too_small_is_refused(monkeypatch):
    fake = _FakeRay()  # 2 CPUs
    monkeypatch.setitem(sys.modules, "ray", fake)
    with RayExecutor(num_cpus=2, threads=2) as executor:
        assert executor.slots() == 1  # one task of two threads at a time, not two
    with pytest.raises(ClusterError, match="threads = 3 reserves 3 CPUs for each task, and the Ray cluster has 2 CPUs"):
        RayExecutor(num_cpus=2, threads=3).start()
    assert fake.calls[-2:] == [("init", "local"), ("shutdown",)]  # refused, and shut down again


def test_an_address_nothing_answers_at_fails_in_seconds_with_what_to_do(monkeypatch, capsys, tmp_path):
    """``ray.init`` would retry an unreachable address for minutes; the executor says so at once, before Ray starts."""
    fake = _FakeRay()
    fake.__spec__ = importlib.machinery.ModuleSpec("ray", None)  # the CLI looks Ray up before it starts anything
    monkeypatch.setitem(sys.modules, "ray", fake)
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(ClusterError, match=rf"no Ray cluster answers at '{address}'.*ray start --head --port={port}"):
                RayExecutor(address, connect_timeout=2).start()
        assert main(["generate", "--pipeline", "dit-mnist", "--labels", "1", "--ray", f"127.0.0.1:{port}",
                     "--out", str(tmp_path)]) == 1  # a failure to run, not a usage error
    assert f"no Ray cluster answers at '127.0.0.1:{port}'" in capsys.readouterr().err
    assert fake.calls == [] and not list(tmp_path.iterdir())  # Ray never started, nothing written
    with pytest.raises(ValueError, match="connect_timeout must be a number of seconds > 0, got 0"):
        RayExecutor("auto", connect_timeout=0)


def test_without_ray_the_error_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'padecache\[ray\]'"):
        RayExecutor().start()
    assert main(["generate", "--pipeline", "dit-mnist", "--labels", "1", "--ray", "--out", str(tmp_path)]) == 2
    assert "--ray: running on a Ray cluster needs Ray: pip install 'padecache[ray]'" in capsys.readouterr().err
    with pytest.raises(TaskFailed, match="ZeroDivisionError: division by zero"):
        executor = InProcessExecutor()
        executor.get(executor.submit(lambda: 1 / 0))


# -- on a local cluster -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A local 2-CPU Ray cluster for the module, started and shut down by :class:`RayExecutor`."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'padecache[ray]'): the tests on a cluster do not run")
    import psutil
    import ray.cloudpickle

    # the workers cannot import this test module: what it defines travels by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway local cluster: no token written to ~/.ray
    try:
        with RayExecutor(num_cpus=2) as executor:
            assert executor.owned and executor.slots() == 2
            daemons = _ray_processes()
            assert daemons, "the local cluster's raylet is not a child of this process"
            yield executor
        gone, alive = psutil.wait_procs(daemons, timeout=15)
        assert not alive, f"Ray processes left after shutdown: {[p.cmdline()[0] for p in alive]}"
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        if auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    dirs = {}
    for family in ("dit", "flux"):
        dirs[family] = tmp_path_factory.mktemp(f"pipe-{family}")
        tiny_pipeline(family).save_pretrained(dirs[family])
    return dirs


def _where(n: int) -> dict:
    import padecache
    import padecache_reference  # noqa: F401 - a plugin installed beside padecache must import on a worker
    import padecache_tcpade  # noqa: F401

    return {"python": sys.executable, "padecache": padecache.__file__, "threads": torch.get_num_threads(), "n": n}


def test_workers_run_this_interpreter_with_padecache_and_its_plugins_on_one_thread(cluster):
    import padecache

    got = [cluster.get(h) for h in [cluster.submit(_where, n) for n in range(2)]]
    assert [g["n"] for g in got] == [0, 1]
    assert all(g["python"] == sys.executable and g["padecache"] == padecache.__file__ and g["threads"] == 1 for g in got)


def _assigned() -> dict:
    import ray

    return {"threads": torch.get_num_threads(), "resources": ray.get_runtime_context().get_assigned_resources()}


def test_a_task_of_two_threads_holds_two_cpus_of_the_cluster(cluster):
    executor = RayExecutor(threads=2).start()  # Ray runs already: this executor uses the module's cluster
    try:
        assert not executor.owned and executor.slots() == 1
        got = executor.get(executor.submit(_assigned))
        assert got["threads"] == 2 and got["resources"].get("CPU") == 2.0, got
    finally:
        executor.close()  # not its cluster: left running for the other tests


def _images(folder) -> dict:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_generate_on_the_cluster_writes_the_files_of_one_process(cluster, saved, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\na dog on a hill\n")
    args = ["generate", "--pipeline", str(saved["flux"]), "--prompts-file", str(prompts), "--seeds", "3,7", "--steps", "4",
            "--height", "16", "--width", "16", "--compare", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--ray", "--out", str(tmp_path / "ray")]) == 0  # Ray runs here already: used, left running
    assert cluster.owned
    one, ray = _images(tmp_path / "one"), _images(tmp_path / "ray")
    assert list(one) == list(ray) == sorted(f"p00{p}-s000{s}{c}.png" for p in (0, 1) for s in (3, 7) for c in ("", "-compare"))
    assert all(np.array_equal(one[name], ray[name]) for name in one)
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["distributed"] and summary["cluster"] == cluster.label and summary["totals"]["tasks"] == 2
    assert {s["task"] for s in summary["samples"]} == {0, 1} and summary["totals"]["samples"] == 4
    local = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert [(s["prompt"], s["seed"], s["files"], s["full_passes"], s["psnr"]) for s in summary["samples"]] == \
           [(s["prompt"], s["seed"], s["files"], s["full_passes"], s["psnr"]) for s in local["samples"]]
    assert "4 of 4 samples on ray" in capsys.readouterr().out


def _same(records, others) -> None:
    """Records equal but for timings (and where they ran); scores, passes and masks exactly."""
    assert len(records) == len(others)
    for a, b in zip(records, others):
        da = {k: v for k, v in a.to_dict().items() if k not in TIMINGS}
        db = {k: v for k, v in b.to_dict().items() if k not in TIMINGS}
        assert da == db, a.method
        assert a.scored == b.scored and b.distributed and not a.distributed


def test_bench_on_the_cluster_gives_the_records_of_one_process(cluster, saved, tmp_path):
    methods = ["noop", "taylor-1 front-loaded", "diffusers-taylorseer"]
    pipe = load_pipeline(str(saved["dit"]))
    pipe.set_progress_bar_config(disable=True)
    one = bench.compare(pipe, generate, methods, targets=(2.0,), seeds=(0, 1), progress=False, name="tiny-dit")
    split = RayExecutor(seeds_per_unit=1)  # one unit per setting and seed
    records = bench.compare(str(saved["dit"]), generate, methods, targets=(2.0,), seeds=(0, 1), progress=False,
                            name="tiny-dit", executor=split, out=tmp_path)
    _same(one, records)
    assert all(r.environment.cluster == cluster.label and r.environment.threads == 1 for r in records)
    assert records[1].mask == "###..." and records[1].samples == 4
    assert f"† distributed run ({cluster.label})" in (tmp_path / "results.md").read_text()


class _Recording(InProcessExecutor):
    """Notes the name of every task it runs."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tasks = []

    def submit(self, fn, *args, name=""):
        self.tasks.append(fn.__name__)
        return super().submit(fn, *args, name=name)


def test_full_compute_runs_once_per_seed_chunk_and_every_setting_is_scored_against_it(dit_pipe):
    methods = ["noop", "taylor-1 front-loaded"]
    one = bench.compare(dit_pipe, generate, methods, targets=(2.0,), seeds=(0, 1, 2), progress=False)
    executor = _Recording(seeds_per_unit=2)
    records = bench.compare(dit_pipe, generate, methods, targets=(2.0,), seeds=(0, 1, 2), progress=False, executor=executor)
    _same(one, records)
    # one plan; full compute once per chunk ((0, 1) and (2,)); each setting per chunk; scores per setting and full
    assert sorted(executor.tasks) == sorted(["plan_task"] + ["full_task"] * 2 + ["unit_task"] * 4 + ["_score"] * 3)
    assert all(r.environment.cluster == "in-process" for r in records)


REUSE = {"predictor": {"name": "noop"}, "policy": {"name": "budget", "speedup": 2.0}}


def _failing(tmp_path, name: str, *, always: bool):
    """A setting whose unit raises on its first attempt (``always``: on every attempt); attempts are counted in a file."""
    setting = padecache_setting(name, REUSE, 2.0)
    attempts = tmp_path / f"{name}.attempts"
    attach = setting.attach

    def flaky(pipe):
        with open(attempts, "a") as f:
            f.write("x")
        if always or attempts.read_text() == "x":
            raise RuntimeError(f"{name}: the worker lost its GPU")
        return attach(pipe)

    return attrs.evolve(setting, attach=flaky), attempts


@pytest.mark.parametrize("where", ["in-process", "cluster"])
def test_a_failed_unit_is_retried_once_then_reported_and_the_run_goes_on(where, request, saved, tmp_path):
    executor = InProcessExecutor() if where == "in-process" else request.getfixturevalue("cluster")
    flaky, flaky_attempts = _failing(tmp_path, "flaky", always=False)
    broken, broken_attempts = _failing(tmp_path, "broken", always=True)
    steady = padecache_setting("steady", REUSE, 2.0)
    records = bench.compare(str(saved["dit"]), generate, [flaky, broken, steady], targets=(2.0,), seeds=(0,), progress=False,
                            executor=executor, out=tmp_path / "out")
    assert [r.method for r in records] == ["full", "flaky", "broken", "steady"]
    full, ok, failed, same = records
    assert ok.status in ("ok", "timing_suspect") and ok.scores == same.scores and ok.mask == same.mask
    assert failed.status == "failed: RuntimeError: broken: the worker lost its GPU" and failed.scores == {}
    assert flaky_attempts.read_text() == "xx" and broken_attempts.read_text() == "xx"  # each retried once
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["status"].split(":")[0] for r in stored] == [full.status, ok.status, "failed", same.status]


def test_bench_command_on_the_cluster_labels_its_records_as_distributed(cluster, tmp_path, capsys):
    args = ["bench", "--quick", "--model", "dit-mnist", "--methods", "noop", "--samples", "2", "--steps", "4", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--ray", "--out", str(tmp_path / "ray")]) == 0
    out = capsys.readouterr().out
    assert "| dit-mnist | 4 |" in out and "† distributed run (ray" in out
    one, ray = bench.load_records(tmp_path / "one"), bench.load_records(tmp_path / "ray")
    assert [r.method for r in ray] == ["full", "tc-pade", "noop"]
    _same(one, ray)
    stored = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert all(r["distributed"] is True and r["environment"]["cluster"] == cluster.label for r in stored)
