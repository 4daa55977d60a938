"""padecache-reference: the reference models of padecache's benchmark, and ``padecache bench`` on them.

* :func:`load_reference` / :func:`reference_names`: ``emoji-t2i``, a FLUX-style text-to-image model in colour
  with a pretrained MiniLM text encoder, trained on registry emoji (:mod:`padecache_reference.t2i`), and
  ``dit-mnist`` / ``flux-mnist``, small class-conditional rectified-flow transformers trained on real MNIST
  digits (weights bundled, see ``weights/README.md``);
* :mod:`padecache_reference.scorers`: class accuracy with the bundled classifier, classifier-feature FID
  and Inception FID (extra ``fid``), against real digits and against the full-compute set;
* :mod:`padecache_reference.bench`: :func:`~padecache_reference.bench.run_bench`, what ``padecache bench``
  runs: :func:`padecache.bench.compare` on a reference model with those scorers;
* :mod:`padecache_reference.train` / :mod:`padecache_reference.classifier`: the training recipes
  (``padecache train-reference``, ``padecache train-classifier``).

Names resolve on first use, so importing the package imports neither torch nor diffusers.
"""

from __future__ import annotations

from typing import Any

from padecache._lazy import lazy_exports

__version__ = "0.1.0"

#: the bundled models (kept here, torch-free, for command-line choices)
MODEL_NAMES = ("emoji-t2i", "dit-mnist", "flux-mnist")

_EXPORTS = {
    "load_reference": "reference",
    "build_reference": "reference",
    "reference_names": "reference",
    "ReferencePipeline": "reference",
    "REFERENCE_MODELS": "reference",
    "load_classifier": "classifier",
    "train_reference": "train",
    "run_bench": "bench",
    "BenchOptions": "bench",
}

__all__ = ["MODEL_NAMES", *list(_EXPORTS)]  # noqa: PLE0604


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
