"""A hooked model used from several threads: one generation at a time, never a silently wrong image.

A call from a second thread while another thread's generation runs is refused before it changes anything
(``ThreadConflictError`` naming both threads), and the interrupted generation stops at its next call: the other
thread may already have changed the scheduler it shares.  Sequential use from several threads is fine.  Real
threads, synchronised with events so the interleaving is the same on every run.
"""

from __future__ import annotations

import threading

import pytest
import torch

import padecache
import tiny
from padecache import ThreadConflictError

STEPS = 6
WAIT = 60.0  # seconds: an event that never comes fails the test instead of hanging it


def flux(pipe, seed=0, callback=None):
    kw = {"callback_on_step_end": callback} if callback else {}
    return pipe("a squirrel", num_inference_steps=STEPS, guidance_scale=3.5, height=16, width=16, max_sequence_length=48,
                output_type="latent", generator=torch.Generator().manual_seed(seed), **kw).images


class Runner(threading.Thread):
    """Runs ``fn`` in a named thread, keeping its result or exception."""

    def __init__(self, name, fn):
        super().__init__(name=name, daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as err:  # noqa: BLE001 - the test reads it
            self.error = err


def test_a_second_thread_is_refused_and_the_interrupted_generation_stops(flux_pipe):
    a_paused, b_tried = threading.Event(), threading.Event()

    def pause_once(pipe, step, t, kwargs):
        if step == 2 and not a_paused.is_set():
            a_paused.set()
            assert b_tried.wait(WAIT)
        return kwargs

    with tiny.applied(flux_pipe, "default"):
        a = Runner("worker-a", lambda: flux(flux_pipe, 0, pause_once))
        a.start()
        assert a_paused.wait(WAIT)
        b = Runner("worker-b", lambda: flux(flux_pipe, 1))
        b.start()
        b.join(WAIT)
        b_tried.set()
        a.join(WAIT)
        assert isinstance(b.error, ThreadConflictError), b.error
        assert "thread 'worker-b' called this FluxTransformer2DModel while thread 'worker-a' is generating" in str(b.error)
        assert isinstance(a.error, ThreadConflictError), a.error
        assert "thread 'worker-b' called this FluxTransformer2DModel while this thread ('worker-a')" in str(a.error)
        # both refused; the pipeline is free again, and gives what it gives alone
        alone = flux(flux_pipe, 0)
    with tiny.applied(flux_pipe, "default"):
        fresh = flux(flux_pipe, 0)
    assert torch.equal(alone, fresh)


def test_sequential_use_from_several_threads_is_fine(flux_pipe):
    with tiny.applied(flux_pipe, "default"):
        expected = flux(flux_pipe, 3)
        results = []
        for name in ("pool-1", "pool-2", "pool-3"):  # a thread pool handing requests to its workers in turn
            r = Runner(name, lambda: flux(flux_pipe, 3))
            r.start()
            r.join(WAIT)
            assert r.error is None, r.error
            results.append(r.result)
    assert all(torch.equal(r, expected) for r in results)


def _loop(t, sched, x, kw, steps=None, pause=None):
    out = None
    for i, ts in enumerate(sched.timesteps[:steps]):
        if pause is not None and i == pause[0]:
            pause[1].set()
            assert pause[2].wait(WAIT)
        out = t(x, timestep=(ts / 1000).expand(len(x)), **kw).sample
    return out


def test_a_bare_transformer_abandoned_by_a_live_thread_is_freed_by_reset(flux_pipe):
    from diffusers import FlowMatchEulerDiscreteScheduler

    t = flux_pipe.transformer
    sched = FlowMatchEulerDiscreteScheduler()
    sched.set_timesteps(STEPS)
    x = torch.randn(1, 64, 16)
    kw = dict(encoder_hidden_states=torch.randn(1, 7, 32), pooled_projections=torch.randn(1, 32), txt_ids=torch.zeros(7, 3),
              img_ids=torch.zeros(64, 3))
    with tiny.applied(t, "default"):
        padecache.set_schedule(t, sched.timesteps)
        stopped, release = threading.Event(), threading.Event()
        a = Runner("loop-a", lambda: _loop(t, sched, x, kw, steps=4, pause=(3, stopped, release)))
        a.start()  # runs steps 0-2, then waits alive without finishing its generation
        assert stopped.wait(WAIT)
        with pytest.raises(ThreadConflictError, match=r"while thread 'loop-a' is generating with it \(step 2 of 6.*"
                                                      r"padecache.reset\(pipe\) ends it"):
            _loop(t, sched, x, kw)
        padecache.reset(t)  # thread loop-a abandoned its generation: end it
        full = _loop(t, sched, x, kw)
        release.set()
        a.join(WAIT)
        dead = Runner("loop-b", lambda: _loop(t, sched, x, kw, steps=3))
        dead.start()
        dead.join(WAIT)  # stops midway and ends: a finished thread holds nothing
        assert dead.error is None
        again = _loop(t, sched, x, kw)
    assert torch.isfinite(full).all() and torch.equal(full, again)


def test_a_run_stopped_early_ends_with_its_pipeline_call_and_says_so():
    """SD3's transformer has no diffusers cache hooks to be reset by, so the end of the pipeline's call is caught
    where every pipeline frees its hooks: a run stopped by ``pipe._interrupt`` no longer keeps its generation (the
    next call from a pool thread was refused), its stats count the steps that ran, and ``remove`` undoes it all."""
    from padecache.testing.pipelines import sd3_pipeline

    pipe = sd3_pipeline()
    pipe.set_progress_bar_config(disable=True)

    def stop_after_3(p, i, t, kwargs):
        p._interrupt = i >= 3
        return {}

    def run(**kw):
        return pipe("a squirrel", num_inference_steps=10, guidance_scale=4.0, height=16, width=16,
                    max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(0), **kw)

    outcome = []

    def pool_worker():
        try:
            run()
            outcome.append("ran")
        except ThreadConflictError as err:
            outcome.append(str(err))

    padecache.apply(pipe, "none")
    try:
        assert "maybe_free_model_hooks" in vars(pipe)
        run(callback_on_step_end=stop_after_3)
        stats = padecache.stats(pipe)
        worker = threading.Thread(target=pool_worker, name="pool-worker")
        worker.start()
        worker.join()
        after_worker = padecache.stats(pipe)
    finally:
        padecache.remove(pipe)
    assert stats.total_steps == stats.full_passes == 4 and stats.planned_steps == 10 and stats.pass_speedup == 1.0
    assert "stopped after 4 of 10 steps" in stats.summary()
    assert outcome == ["ran"] and after_worker.total_steps == 10  # the pool thread ran its whole generation
    assert "maybe_free_model_hooks" not in vars(pipe)  # remove undid the end-of-call hook


def test_a_call_cancelled_by_its_callback_frees_the_pipeline_for_other_threads():
    """Servers cancel a request by raising from ``callback_on_step_end``: the pipeline's own end
    (``maybe_free_model_hooks``) never runs then, and the idle thread kept the generation, so the next calls from
    the pool were refused ("'MainThread' is generating with it").  The exception leaving the pipeline's progress bar
    ends the generation; ``remove`` undoes that wrapper too."""
    from padecache.testing.pipelines import sd3_pipeline

    pipe = sd3_pipeline()
    pipe.set_progress_bar_config(disable=True)

    def cancel(p, i, t, kwargs):
        if i == 3:
            raise RuntimeError("client disconnected")
        return {}

    def run(**kw):
        return pipe("a squirrel", num_inference_steps=8, guidance_scale=4.0, height=16, width=16,
                    max_sequence_length=48, output_type="pt", generator=torch.Generator().manual_seed(0), **kw).images

    reference = run()
    outcome = []
    padecache.apply(pipe, "none")
    try:
        with pytest.raises(RuntimeError, match="client disconnected"):
            run(callback_on_step_end=cancel)
        worker = threading.Thread(target=lambda: outcome.append(run()), name="pool-worker")
        worker.start()
        worker.join()
        again = run()  # and the cancelling thread itself
    finally:
        padecache.remove(pipe)
    assert len(outcome) == 1 and torch.equal(outcome[0], reference) and torch.equal(again, reference)
    assert "progress_bar" not in vars(pipe) and "maybe_free_model_hooks" not in vars(pipe)


def test_remove_after_the_transformer_was_swapped_out_detaches_the_one_applied_to(dit_pipe):
    """``pipe.transformer = other`` after ``apply``: ``remove(pipe)`` once said "not applied" and left the old
    transformer hooked and the pipeline's call wrapped; applying again to the new one ends its generations too."""
    import copy

    old = dit_pipe.transformer
    spare = copy.deepcopy(old)
    padecache.apply(dit_pipe, "none")
    dit_pipe.transformer = spare
    try:
        padecache.apply(dit_pipe, "none")  # the new transformer: the pipeline's wrappers now end both
        padecache.remove(dit_pipe)
        assert not padecache.is_applied(old) and not padecache.is_applied(spare)
        assert "progress_bar" not in vars(dit_pipe) and "maybe_free_model_hooks" not in vars(dit_pipe)
    finally:
        dit_pipe.transformer = old
    assert "forward" not in vars(old)


def test_the_method_a_benchmark_names_in_warnings_stays_in_its_own_thread():
    """The benchmark prefixes padecache's warnings with the method it measures through a context variable, not by
    catching warnings process-wide: a warning said meanwhile on another thread keeps its own words."""
    import warnings

    from padecache.errors import speaking_for, warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with speaking_for("tc-pade at 4x"):
            other = threading.Thread(target=warn, args=("padecache: said by another thread",))
            other.start()
            other.join()
            warn("padecache: said while measuring")
        warn("padecache: said afterwards")
    assert sorted(str(w.message) for w in caught) == [
        "padecache: said afterwards", "padecache: said by another thread", "tc-pade at 4x: padecache: said while measuring"]
    assert all(w.filename == __file__ for w in caught[1:])  # stacklevel counts from the caller, as warnings.warn's does
