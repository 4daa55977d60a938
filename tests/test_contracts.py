"""The built-in components through padecache.testing's contract suites, exactly as a plugin author runs them."""

from __future__ import annotations

from padecache.testing import PolicyContract, PredictorContract, StageDetectorContract


class TestNoop(PredictorContract):
    component = "noop"


class TestLinear(PredictorContract):
    component = "linear"
    configs = [{}, {"grid": "sigma"}]
    families = ("dit", "flux", "wan")


class TestTaylor(PredictorContract):
    component = "taylor"
    configs = [{}, {"order": 2}, {"order": 3, "mode": "taylorseer"}, {"order": 0, "grid": "timestep"}]


class TestAlways(PolicyContract):
    component = "always"


class TestFixed(PolicyContract):
    component = "fixed"
    configs = [{}, {"interval": 5, "warmup": 3, "last": True}]


class TestBudget(PolicyContract):
    component = "budget"
    configs = [{}, {"speedup": 6.0, "spacing": 1.0}, {"full_passes": 3, "last": True}]


class TestMask(PolicyContract):
    component = "mask"
    configs = [{"mask": "##.#..#.", "scale": True}, {"steps": [0, 1, 5], "num_steps": 8, "scale": True}]


class TestFraction(StageDetectorContract):
    component = "fraction"
    configs = [{}, {"early": 0.1, "late": 0.5}]


# -- a third-party predictor through the kit: a correct one passes, broken ones fail by name ---------------------

from typing import ClassVar  # noqa: E402

import attrs  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import padecache  # noqa: E402
from padecache import CachePolicy, Predictor, option  # noqa: E402
from padecache.testing import ComponentFailed  # noqa: E402


class AdamsBashforth2(Predictor):
    """Variable-step Adams-Bashforth 2 on the residual (backward-difference slopes of the last three computed ones)."""

    name = "ab2"
    min_history = 3

    @attrs.frozen
    class Config:
        grid: str = option("step", "str", choices=("step", "sigma", "timestep"), doc="abscissa")

    def __init__(self, config=None):
        super().__init__(config)
        self.points = []

    def update(self, ctx, residual, block_input, computed):
        if computed:
            self.points = (self.points + [(ctx.position(self.config.grid), residual)])[-3:]

    def predict(self, ctx, block_input):
        (x0, r0), (x1, r1), (x2, r2) = self.points
        h, h_prev = ctx.position(self.config.grid) - x2, x2 - x1
        w = h / h_prev
        return r2 + h * ((1 + w / 2) * (r2 - r1) / h_prev - (w / 2) * (r1 - r0) / (x1 - x0))

    def reset(self):
        self.points = []

    def state_tensors(self):
        return [r for _, r in self.points]


class SignFlipped(AdamsBashforth2):
    """A bug: the forecast's sign is wrong (its norm is fine, so the guard lets it through)."""

    name = "ab2-sign-flipped"

    def predict(self, ctx, block_input):
        return -super().predict(ctx, block_input)


class Exploding(AdamsBashforth2):
    """A bug: the step size is applied twice over."""

    name = "ab2-exploding"

    def predict(self, ctx, block_input):
        return 50 * super().predict(ctx, block_input)


class Raising(AdamsBashforth2):
    """A bug: fails once it forecasts past step 4."""

    name = "ab2-raising"

    def predict(self, ctx, block_input):
        if ctx.step > 4:
            raise ValueError("history index out of range")
        return super().predict(ctx, block_input)


class RowList(AdamsBashforth2):
    """A bug: keeps a per-row weight in a Python list, which the default select() cannot cut to the chosen rows."""

    name = "ab2-row-list"

    def update(self, ctx, residual, block_input, computed):
        super().update(ctx, residual, block_input, computed)
        self.weights = [1.0] * residual.shape[0]

    def predict(self, ctx, block_input):
        return super().predict(ctx, block_input) * torch.tensor(self.weights)[:, None, None]


class EveryOtherPerRow(CachePolicy):
    """Static (every other step and the last), answering with one bool per row, as the interface allows: a tensor
    whose rows agree is one decision to the engine, and the kit once compared it with the mask as a list."""

    name = "every-other-per-row"
    inputs: ClassVar[frozenset[str]] = frozenset({"stack_input"})

    def mask(self, num_steps):
        return [i % 2 == 0 or i == num_steps - 1 for i in range(num_steps)]

    def should_compute(self, ctx):
        want = self.mask(ctx.span_steps)[ctx.step - ctx.first_step]
        return torch.full((ctx.inputs.stack_input.shape[0],), want, dtype=torch.bool)


class BatchMean(CachePolicy):
    """A bug: decides once from the whole batch's relative change, so one sample's decision depends on the others'."""

    name = "batch-mean"

    def __init__(self, config=None):
        super().__init__(config)
        self.reset()

    def should_compute(self, ctx):
        return bool(self.change > 0.08)

    def observe(self, ctx, residual, computed):
        if self.previous is not None and self.previous.shape == residual.shape:
            self.change = float((residual - self.previous).norm() / self.previous.norm())
        self.previous = residual.clone()

    def reset(self):
        self.previous, self.change = None, 1.0


class ListAnswer(EveryOtherPerRow):
    """A bug: answers per row with a Python list, which is always true."""

    name = "list-answer"

    def should_compute(self, ctx):
        return super().should_compute(ctx).tolist()


class ThirdParty:
    __version__ = "1.0"

    @padecache.hookimpl
    def padecache_predictors(self):
        return [AdamsBashforth2, SignFlipped, Exploding, Raising, RowList]

    @padecache.hookimpl
    def padecache_policies(self):
        return [EveryOtherPerRow, BatchMean, ListAnswer]


@pytest.fixture(autouse=True)
def _third_party():
    plugin = ThirdParty()
    padecache.register_plugin(plugin, name="third-party")
    yield
    padecache.unregister_plugin(plugin)


class TestEveryOtherPerRow(PolicyContract):
    """A correct static policy that answers per row passes the kit."""

    component = "every-other-per-row"


class TestAdamsBashforth2(PredictorContract):
    """A correct second-order predictor passes every check, the real loops included (issue 16: it failed on random
    weights, whose residuals jump from step to step)."""

    component = "ab2"
    configs = [{}, {"grid": "timestep"}]


def test_the_kit_judges_on_models_whose_residuals_move_like_a_trained_model_s():
    """Second differences of the residual over first differences: random weights 1.2-1.6, trained dit-mnist 0.6."""
    from padecache.testing.loops import roughness

    for family in ("dit", "flux", "wan"):
        assert roughness(family) < 0.5, family


@pytest.mark.parametrize("broken, family, message", [
    ("ab2-sign-flipped", "flux", "predictor 'ab2-sign-flipped' (plugin third-party 1.0)'s forecasts in a 20-step loop on "
                                 "a tiny flux at 2.5x fewer passes are further from full compute than a zero residual"),
    ("ab2-sign-flipped", "wan", "are further from full compute than a zero residual"),
    ("ab2-exploding", "dit", "most of predictor 'ab2-exploding' (plugin third-party 1.0)'s forecasts were rejected by the guard"),
    ("ab2-raising", "dit", "predictor 'ab2-raising' (plugin third-party 1.0) failed in a 20-step sampling loop on a tiny dit"),
])
def test_broken_predictors_fail_the_real_loop_by_name(broken, family, message):
    contract = type("TestBroken", (PredictorContract,), {"component": broken})()
    with pytest.raises(AssertionError) as failure:
        contract.test_runs_inside_a_real_sampling_loop({}, family)
    assert message in str(failure.value)


def test_an_exception_in_plugin_code_is_named_with_plugin_component_step_and_branch():
    contract = type("TestBroken", (PredictorContract,), {"component": "ab2-raising"})()
    with pytest.raises(ComponentFailed) as failure:
        contract.test_batch_rows_are_independent({})
    assert str(failure.value).startswith("predictor 'ab2-raising' (plugin third-party 1.0) raised ValueError in predict() "
                                         "at step 5, branch 'main': history index out of range")
    assert isinstance(failure.value.__cause__, ValueError)
    assert torch.isfinite(contract.run_history(contract.make({}), until=4)[0]).all()  # before step 5 it works


def test_state_that_select_cannot_cut_fails_the_kit_saying_what_to_do():
    """It failed with the size mismatch alone, from predict(), with nothing about select()."""
    contract = type("TestRowList", (PredictorContract,), {"component": "ab2-row-list"})()
    with pytest.raises(AssertionError) as failure:
        contract.test_select_keeps_the_state_of_the_chosen_rows({})
    text = str(failure.value)
    assert "after select(rows=[0, 2]) of a batch of 3, predict() on those two rows raised" in text
    assert "override select() for state it cannot slice" in text


def test_a_policy_that_mixes_the_rows_of_a_batch_fails_the_kit():
    """The kit's rows move at different paces (as samples do), and rows that disagree split the policy as in the
    engine, so a decision from the batch as a whole differs from a row's alone."""
    contract = type("TestBatchMean", (PolicyContract,), {"component": "batch-mean"})()
    with pytest.raises(AssertionError, match="one sample's decision depends on the others'"):
        contract.test_batch_rows_are_independent({})


def test_a_list_for_an_answer_is_refused_by_name():
    contract = type("TestListAnswer", (PolicyContract,), {"component": "list-answer"})()
    with pytest.raises(TypeError, match="'list-answer' returned a list at step 0; return a bool, or a bool tensor"):
        contract.decide(contract.make({}))


def test_a_stage_given_as_its_value_is_read_as_the_stage_and_a_wrong_one_is_named():
    from padecache.answers import as_stage
    from padecache.interfaces import Stage

    assert as_stage("late") is Stage.LATE and as_stage(Stage.MID) is Stage.MID
    with pytest.raises(ValueError, match="detector 'x' returned 'final'; return a padecache.Stage \\(early, mid, late\\)"):
        as_stage("final", "detector 'x'")
