"""A small classifier of emoji category and drawing style, so the benchmark can tell what ``emoji-t2i`` drew.

Trained by :func:`train_emoji_classifier` on the real registry emoji (:mod:`padecache_reference.emoji`), with
one concept in ten held out (every style of it), so its recorded held-out accuracy is on emoji it never saw.
Its 128-d penultimate features give ``fid_cls`` (the Fréchet distance to the real emoji, whose feature mean and
covariance ship beside the weights, so the figure does not depend on which data packages are installed) and
``fid_cls_full`` (to full compute of the same prompts and seeds).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["EmojiClassifier", "train_emoji_classifier", "load_emoji_classifier", "real_feature_stats", "FILE"]

FILE = "emoji-classifier.safetensors"
STATS_FILE = "emoji-real-features.npz"
TEST_EVERY = 10  # one concept in ten is the classifier's test set


class EmojiClassifier(nn.Module):
    """conv(32)-conv(64)-conv(128), each with a 2x2 pool, then fc(128): category (9) and style (2) heads.

    Images: ``(N, 3, 32, 32)`` in [-1, 1].
    """

    def __init__(self, categories: int = 9, styles: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128 * 4 * 4, 128)
        self.category = nn.Linear(128, categories)
        self.style = nn.Linear(128, styles)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Category logits (the scorers' class accuracy)."""
        return self.category(self.features(x))

    def style_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.style(self.features(x))


def _test_concept(unified: str) -> bool:
    return int(hashlib.sha1(f"classifier:{unified}".encode()).hexdigest(), 16) % TEST_EVERY == 0


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shifts by up to 2 pixels and, for half the batch, a blur: generated emoji are softer than the real ones."""
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    blur = torch.rand(len(x), generator=gen) < 0.5
    if blur.any():
        kernel = torch.tensor([1.0, 2.0, 1.0])
        kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
        x = x.clone()
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    return x


def train_emoji_classifier(out_dir: str | Path, *, noto=None, epochs: int = 30, seed: int = 0) -> dict:
    """Train on the real emoji (test concepts held out), save weights, metadata and the real-feature statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train(Path(out_dir), noto=noto, epochs=epochs, seed=seed)


def _train(out: Path, *, noto, epochs: int, seed: int) -> dict:
    from safetensors.torch import save_file

    from .emoji import load_emoji

    data = load_emoji(noto=noto)
    x = data.to_model_space()
    cat = torch.as_tensor(data.category())
    sty = torch.as_tensor(data.style)
    test = torch.tensor([_test_concept(data.concepts[c].unified) for c in data.concept])
    gen = torch.Generator().manual_seed(seed)
    model = EmojiClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    train_idx = torch.nonzero(~test).flatten()
    for _ in range(epochs):
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        model.train()
        for i in range(0, len(perm), 128):
            idx = perm[i : i + 128]
            feats = model.features(_augment(x[idx], gen))
            loss = F.cross_entropy(model.category(feats), cat[idx]) + 0.5 * F.cross_entropy(model.style(feats), sty[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        feats = model.features(x)
        cat_acc = (model.category(feats[test]).argmax(1) == cat[test]).float().mean().item()
        sty_acc = (model.style(feats[test]).argmax(1) == sty[test]).float().mean().item()
        train_acc = (model.category(feats[~test]).argmax(1) == cat[~test]).float().mean().item()
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), out / FILE)
    f = feats.double().numpy()
    np.savez_compressed(out / STATS_FILE, mean=f.mean(0), cov=np.cov(f, rowvar=False), count=len(f))
    counts = np.bincount(data.category()[test.numpy()], minlength=9)
    meta = {
        "held_out_category_accuracy": round(cat_acc, 4),
        "held_out_style_accuracy": round(sty_acc, 4),
        "train_category_accuracy": round(train_acc, 4),
        "chance_category_accuracy": round(float(counts.max() / counts.sum()), 4),
        "train_images": int((~test).sum()),
        "test_images": int(test.sum()),
        "test_split": f"concepts with sha1('classifier:' + code points) % {TEST_EVERY} == 0, every style",
        "sources": data.sources,
        "real_feature_stats": f"{STATS_FILE}: mean and covariance of the 128-d features of all {len(f)} real images",
        "epochs": epochs,
        "seed": seed,
    }
    (out / FILE).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _weights(path: str | Path | None, name: str) -> Path:
    from importlib import resources

    if path is not None:
        return Path(path) / name
    return Path(str(resources.files("padecache_reference") / "weights" / "emoji-t2i" / name))


def load_emoji_classifier(path: str | Path | None = None) -> EmojiClassifier:
    """The bundled classifier (or the one in directory ``path``), in eval mode."""
    from safetensors.torch import load_file

    file = _weights(path, FILE)
    model = EmojiClassifier()
    try:
        model.load_state_dict(load_file(str(file)))
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise ValueError(f"{file}: the emoji classifier weights are missing or corrupt ({err}); reinstall "
                         f"padecache-reference or retrain with `padecache train-classifier --model emoji-t2i`") from err
    return model.eval()


def real_feature_stats(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the classifier's features over the real emoji (shipped with the weights)."""
    with np.load(_weights(path, STATS_FILE)) as stats:
        return stats["mean"], stats["cov"]
