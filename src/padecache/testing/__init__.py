"""``padecache.testing``: what plugin authors and researchers test with.

* contract suites, as pytest mixins: :class:`PredictorContract`, :class:`PolicyContract`,
  :class:`StageDetectorContract` (:mod:`padecache.testing.contracts`), :class:`AdapterContract`
  (:mod:`padecache.testing.adapter_contract`), judged in :func:`sampling_loop` on tiny models whose residuals move as
  a trained model's do (:mod:`padecache.testing.loops`);
* tiny, offline, seeded models: :func:`tiny_pipeline` (DiT, PixArt, FLUX, Wan, SD3 pipelines with text encoders
  built in memory) and :func:`tiny_transformer` (every supported transformer family).

    from padecache.testing import PredictorContract

    class TestMine(PredictorContract):
        component = "my-predictor"
        configs = [{}, {"order": 2}]

Importing the contracts needs pytest; the pipelines need ``transformers``.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_exports

_EXPORTS = {
    "PredictorContract": "contracts",
    "PolicyContract": "contracts",
    "StageDetectorContract": "contracts",
    "AdapterContract": "adapter_contract",
    "ComponentFailed": "loops",
    "sampling_loop": "loops",
    "trajectory": "histories",
    "context": "histories",
    "step_inputs": "histories",
    "tiny_pipeline": "pipelines",
    "run": "pipelines",
    "applied": "pipelines",
    "tiny_transformer": "families",
    "run_loop": "families",
    "FAMILIES": "families",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
