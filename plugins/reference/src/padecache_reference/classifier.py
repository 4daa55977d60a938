"""A small MNIST classifier, bundled so the benchmark can score class accuracy and a feature FID offline.

Trained by :func:`train_classifier` on 9,000 of the npm digits (the other 1,000 are held out); its
128-d penultimate features give ``fid_cls``, the usual "MNIST FID" of the literature.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DigitClassifier", "train_classifier", "load_classifier"]


class DigitClassifier(nn.Module):
    """conv(32)-pool-conv(64)-pool-fc(128)-fc(10) on 28x28 digits in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random translations by up to 2 pixels (cheap augmentation)."""
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_classifier(images: np.ndarray, labels: np.ndarray, out: str | Path, *, epochs: int = 8, seed: int = 0) -> dict:
    """Train on all but every 10th digit, report held-out accuracy, save ``out`` (safetensors) and ``.json``."""
    with torch.random.fork_rng(devices=[]):  # seeded here, restored for the caller
        return _train_classifier(images, labels, out, epochs=epochs, seed=seed)


def _train_classifier(images: np.ndarray, labels: np.ndarray, out: str | Path, *, epochs: int, seed: int) -> dict:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    y = torch.as_tensor(labels)
    test = torch.arange(len(x)) % 10 == 0
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            loss = F.cross_entropy(model(_shift(xtr[idx], gen)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    out = Path(out)
    save_file(model.state_dict(), out)
    meta = {"held_out_accuracy": round(acc, 4), "train": int((~test).sum()), "test": int(test.sum()), "epochs": epochs, "seed": seed}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def load_classifier(path: str | Path | None = None) -> DigitClassifier:
    """The bundled classifier (or the one at ``path``), in eval mode."""
    from importlib import resources

    from safetensors.torch import load_file

    if path is None:
        path = Path(str(resources.files("padecache_reference") / "weights" / "mnist-classifier.safetensors"))
    model = DigitClassifier()
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise ValueError(f"{path}: the classifier weights are missing or corrupt ({err}); reinstall padecache-reference") from err
    return model.eval()
