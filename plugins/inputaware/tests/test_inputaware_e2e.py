"""End to end: every method through padecache.apply on the tiny DiT, FLUX and Wan pipelines (20 steps), the
presets, the entry point, TeaCache's calibration, and PSNR floors on the bundled dit-mnist model."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

import padecache
import padecache.interfaces
from padecache.testing import pipelines as tiny

pytestmark = pytest.mark.skipif(not hasattr(padecache.interfaces, "StepInputs"),
                                reason="this padecache engine has no input-aware policies (issue 18)")

STEPS = 20
RUN = {"dit": tiny.run_dit, "flux": tiny.run_flux, "wan": tiny.run_wan}
DICACHE = {"predictor": {"name": "dicache"}, "policy": {"name": "dicache", "threshold": 0.2},
           "engine": {"first_blocks": 1}}
METHODS = {
    "teacache": {"predictor": {"name": "noop"}, "policy": {"name": "teacache", "model": "identity", "threshold": 0.1}},
    "teacache-flux": {"predictor": {"name": "noop"}, "policy": {"name": "teacache", "model": "flux", "threshold": 0.6}},
    "easycache": {"predictor": {"name": "noop"}, "policy": {"name": "easycache", "threshold": 0.1, "warmup": 3}},
    "seacache": {"predictor": {"name": "noop"}, "policy": {"name": "seacache", "threshold": 0.2}},
    "seacache-latents": {"predictor": {"name": "noop"},
                         "policy": {"name": "seacache", "threshold": 0.2, "indicator": "model_input"}},
    "resilphase": "resilphase",
    "dicache": DICACHE,
}


@pytest.fixture(scope="module")
def pipes():
    built = {}

    def get(family):
        if family not in built:
            pipe = getattr(tiny, f"{family}_pipeline")()
            pipe.set_progress_bar_config(disable=True)
            built[family] = (pipe, RUN[family](pipe, steps=STEPS))
        return built[family]

    return get


@pytest.mark.parametrize("family", ["dit", "flux", "wan"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_a_20_step_loop(method, family, pipes):
    pipe, full = pipes(family)
    with tiny.applied(pipe, METHODS[method]):
        out = RUN[family](pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    assert torch.isfinite(out).all() and out.shape == full.shape
    assert stats.total_steps == STEPS and stats.records[0].computed
    assert stats.forecast_steps > 0 and stats.full_passes < STEPS, f"{method} on {family} never skipped"
    assert stats.fallbacks == 0


def test_dicache_pays_for_its_probe(pipes):
    """A skipped step still runs the probe block: passes are fractional, 1 / blocks per skipped step."""
    pipe, _ = pipes("dit")
    with tiny.applied(pipe, DICACHE):
        RUN["dit"](pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    blocks = len(pipe.transformer.transformer_blocks)
    # one branch (batched guidance); rows that went separate ways count by their share of the batch
    assert stats.forecast_steps > 0
    assert stats.full_passes == pytest.approx(stats.computed_steps + stats.forecast_steps / blocks)


@pytest.mark.parametrize("family", ["dit", "flux"])
def test_dicache_runs_the_codes_exact_form_and_delta_minus(family, pipes, monkeypatch):
    """The engine gives block 0's input, so the predictor moves the residual of the whole stack as the code does
    (probe residuals ``y - x``), and the policy's ``delta_minus`` error can be measured."""
    from padecache_inputaware.dicache import DiCachePredictor

    forms = []
    predict = DiCachePredictor.predict
    monkeypatch.setattr(DiCachePredictor, "predict", lambda self, ctx, x: (forms.append(
        (self.exact, self._probe(ctx, x)[1], len(self.probes))), predict(self, ctx, x))[1])
    pipe, _ = pipes(family)
    for error, threshold in (("delta_y", 0.2), ("delta_minus", 0.05)):
        cfg = {**DICACHE, "policy": {"name": "dicache", "threshold": threshold, "error": error}}
        with tiny.applied(pipe, cfg):
            assert pipe.transformer.__dict__["_padecache_engine"].engine.inputs == {"stack_input", "first_input"}
            out = RUN[family](pipe, steps=STEPS)
            stats = padecache.stats(pipe)
        assert torch.isfinite(out).all() and stats.forecast_steps > 0 and stats.fallbacks == 0
        assert any(float(r.indicators.get("dicache_acc", 0)) > 0 for r in stats.records)
    assert forms and all(exact and now for exact, now, _ in forms)  # every forecast in the code's exact form
    assert any(n == 2 for *_, n in forms)  # with two computed steps: the alignment factor gamma


@pytest.mark.parametrize("model, module", [("wan2.1-t2v-1.3b", "condition_embedder"), ("wan2.1-t2v-1.3b-ret", None)])
def test_teacache_on_wan_measures_the_embedding_the_code_measures(model, module, pipes):
    """Wan's polynomials were fitted on the timestep embedding ``e`` (the condition embedder's ``temb``), or with
    ``--use_ret_steps`` on its projection ``e0`` (what the blocks receive): the policy measures exactly that, with
    no fallback (oracle: the relative L1 change of the hooked tensor between the first two steps of a branch)."""
    pipe, _ = pipes("wan")
    transformer = pipe.transformer
    seen = []
    if module:
        handle = transformer.get_submodule(module).register_forward_hook(lambda m, a, out: seen.append(out[0].detach()))
    else:
        handle = transformer.blocks[0].register_forward_pre_hook(lambda m, a: seen.append(a[2].detach()))
    try:
        with tiny.applied(pipe, {"predictor": "noop", "policy": {"name": "teacache", "model": model, "warmup": 1}}):
            RUN["wan"](pipe, steps=STEPS)
            stats = padecache.stats(pipe)
    finally:
        handle.remove()
    records = [r for r in stats.records if "tea_fallback" in r.indicators]
    assert records and all(float(r.indicators["tea_fallback"]) == 0.0 for r in records)
    first = next(r for r in stats.records if "tea_rel_l1" in r.indicators)
    calls = [k for k, r in enumerate(stats.records) if r.branch == first.branch]
    e0, e1 = seen[calls[0]].double(), seen[calls[1]].double()
    want = ((e1 - e0).abs().mean() / e0.abs().mean()).item()
    assert float(first.indicators["tea_rel_l1"]) == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("preset", ["teacache", "easycache", "seacache", "resilphase", "resilphase-dit", "dicache"])
def test_presets_load_and_run(preset, pipes):
    pipe, _ = pipes("flux")
    with tiny.applied(pipe, preset):
        out = RUN["flux"](pipe, steps=STEPS)
    assert torch.isfinite(out).all()


def test_plugin_is_found_through_its_entry_point():
    registry = padecache.get_registry()
    for kind, name in [("policy", "teacache"), ("policy", "easycache"), ("policy", "seacache"),
                       ("policy", "dicache"), ("policy", "teacache-probe"), ("predictor", "dicache"),
                       ("predictor", "resilphase")]:
        entry = registry.get(kind, name)
        assert "padecache-inputaware" in (entry.plugin, getattr(entry, "package", None)) and entry.version == "0.1.0"
    from padecache.bench.families import registered_families

    names = {f.name for f, plugin, _ in registered_families() if "inputaware" in plugin}
    assert {"teacache", "teacache-raw", "easycache", "seacache", "resilphase"} <= names


def test_calibrate_teacache_fits_the_authors_columns(pipes):
    from padecache_inputaware import calibrate_teacache

    pipe, _ = pipes("flux")
    adapter, _ = padecache.get_registry().adapter_for(pipe.transformer)
    indicator = "modulated" if getattr(adapter, "modulated", None) is not None else "stack_input"
    fit = calibrate_teacache(pipe, lambda p, seed: RUN["flux"](p, steps=8, seed=seed), seeds=range(2), degree=2,
                             indicator=indicator)
    assert not padecache.is_applied(pipe)
    assert len(fit.coefficients) == 3 and len(fit.x) == 2 * 7  # one pair per consecutive step, per seed
    assert all(v >= 0 for v in fit.x + fit.y) and fit.r2 <= 1.0
    residual = calibrate_teacache(pipe, lambda p, seed: RUN["flux"](p, steps=8, seed=seed), seeds=[0], degree=1,
                                  target="residual", indicator="stack_input")
    assert len(residual.x) == 7 and residual.target == "residual"
    with tiny.applied(pipe, {"predictor": {"name": "noop"}, "policy": fit.config(threshold=0.2)}):
        out = RUN["flux"](pipe, steps=STEPS)
    assert torch.isfinite(out).all()
    runs = []  # an indicator this family does not give fails at the first step, naming the one it does give
    with pytest.raises(Exception, match="step 0 .*calibrate with indicator='modulated'"):
        calibrate_teacache(pipe, lambda p, seed: runs.append(seed) or RUN["flux"](p, steps=8, seed=seed), seeds=range(3),
                           indicator="time_embedding")
    assert runs == [0] and not padecache.is_applied(pipe)


def test_calibrate_teacache_on_wans_time_embedding(pipes):
    """For a family whose published polynomial rescales the timestep embedding, calibration measures that too (the
    x column is the embedding's relative L1 change, the same for every row of a step), and the fit runs."""
    from padecache_inputaware import calibrate_teacache

    pipe, _ = pipes("wan")
    fit = calibrate_teacache(pipe, lambda p, seed: RUN["wan"](p, steps=8, seed=seed), seeds=range(2), degree=2,
                             indicator="time_embedding")
    assert fit.indicator == "time_embedding" and len(fit.coefficients) == 3 and fit.x
    assert all(x > 0 for x in fit.x)
    by_seed = [fit.x[: len(fit.x) // 2], fit.x[len(fit.x) // 2:]]
    assert by_seed[0] == pytest.approx(by_seed[1], rel=1e-5)  # the timestep embedding does not depend on the seed
    with tiny.applied(pipe, {"predictor": {"name": "noop"}, "policy": fit.config(threshold=0.2)}):
        out = RUN["wan"](pipe, steps=STEPS)
        stats = padecache.stats(pipe)
    assert torch.isfinite(out).all()
    assert all(float(r.indicators["tea_fallback"]) == 0.0 for r in stats.records if "tea_fallback" in r.indicators)


# -- the trained reference model -----------------------------------------------------------------------------------
def _load_reference():
    monorepo = Path(__file__).resolve().parents[2] / "reference" / "src"
    if monorepo.is_dir() and str(monorepo) not in sys.path:
        sys.path.append(str(monorepo))
    try:
        return importlib.import_module("padecache_reference").load_reference("dit-mnist")
    except (ImportError, AttributeError):
        pytest.skip("the dit-mnist reference model is not installed")


@pytest.fixture(scope="module")
def mnist():
    pipe = _load_reference()
    labels = [3, 8]
    return pipe, labels, pipe(labels, num_inference_steps=20, seed=0)


def psnr(x, ref, data_range=2.0):
    mse = ((x.float() - ref.float()) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(data_range**2 / mse)).min())


# 20 steps, labels 3 and 8: (config, passes measured, floor 2.5 dB under the PSNR measured); a wrong distance, a
# wrong sign or a residual from the wrong range lands far below.  TeaCache and SeaCache measured on DiT's modulated
# input (7 passes 26.76 dB, 10 passes 32.62 dB) and on the stack-input fallback (6 passes 27.39, 9 passes 30.10):
# the floors hold for both
FLOORS = {
    "teacache": ("teacache", 7.0, 24.2),
    "seacache": ("seacache", 10.0, 27.6),
    "resilphase": ("resilphase", 5.0, 24.4),
    "easycache": ({"predictor": {"name": "noop"}, "policy": {"name": "easycache", "threshold": 0.1, "warmup": 4}},
                  13.0, 36.9),
    "dicache": ({"predictor": {"name": "dicache"}, "policy": {"name": "dicache", "threshold": 0.1, "ret_ratio": 0.0},
                 "engine": {"first_blocks": 1}}, 11.67, 36.5),
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_psnr_floor_on_the_reference_model(name, mnist):
    pipe, labels, ref = mnist
    config, passes, floor = FLOORS[name]
    padecache.apply(pipe, config)
    try:
        out = pipe(labels, num_inference_steps=20, seed=0)
        stats = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    assert stats.full_passes == pytest.approx(passes, abs=1.01)
    assert psnr(out, ref) > floor


def test_bench_families_expand_to_valid_threshold_ladders():
    """Each family runs one ladder whatever the target (the benchmark runs a setting once and counts it at every
    budget it meets); every setting is a valid config."""
    from padecache_inputaware import bench

    from padecache.bench.methods import resolve

    sizes = {"teacache": len(bench.TEACACHE_FLUX), "teacache-raw": len(bench.TEACACHE_RAW),
             "easycache": 2 * len(bench.EASYCACHE), "seacache": len(bench.SEACACHE)}
    for method in resolve(list(sizes)):
        settings = method.settings(20, (2.5, 10 / 3, 4, 5, 6))
        assert len(settings) == sizes[method.label], method.label
        thresholds = sorted({s.config["policy"]["threshold"] for s in settings})
        assert len(thresholds) == 9 and thresholds[-1] / thresholds[0] >= 20
    combos = {m.label: m for m in resolve(["teacache+tc-pade", "easycache+tc-pade"])}  # TC-Padé is installed here
    for label, schedule in (("teacache+tc-pade", "teacache"), ("easycache+tc-pade", "easycache")):
        settings = combos[label].settings(20, (2.5, 4))
        assert len(settings) == sizes[schedule], label  # the schedule's own ladder ...
        assert {s.config["predictor"]["name"] for s in settings} == {"tc-pade"}  # ... with TC-Padé's forecast
        assert {s.config["policy"]["name"] for s in settings} == {schedule}
    from padecache.bench.families import find_family

    assert find_family("teacache+tc-pade")[0].group == "teacache"  # an "other" method in the headline, not ours
    (resil,) = resolve(["resilphase"])
    assert all(s.config["policy"]["name"] == "fixed" for s in resil.settings(20, (2.5, 4)))
