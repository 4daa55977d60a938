"""The first block's timestep-modulated input, per family: what TeaCache-style policies measure.

Each function has the signature of :attr:`padecache.adapters.Adapter.modulated`: ``(first block, its forward,
args, kwargs) -> tensor``, batch first, and repeats what the block itself computes before its attention (its first
norm, scaled and shifted by the block's timestep modulation), read from diffusers 0.42's blocks.  They call the
block's own public submodules (``norm1``, ``img_mod`` ...) and nothing else; the engine calls them under
``torch.no_grad`` and only when a policy declares ``"modulated"`` in its ``inputs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import position_of

__all__ = ["ada_norm_zero", "dit", "flux2", "wan", "qwenimage", "chroma", "ltx", "cogvideox"]

_MISSING = object()


def _arg(forward: Callable, args: tuple, kwargs: dict, name: str, default: Any = _MISSING) -> Any:
    if name in kwargs:
        return kwargs[name]
    pos = position_of(forward, name)
    if pos is not None and len(args) > pos:
        return args[pos]
    if default is _MISSING:
        raise TypeError(f"the first block was called without `{name}`: cannot compute its modulated input")
    return default


def ada_norm_zero(block, forward, args, kwargs):
    """``norm1(hidden_states, emb=temb)[0]``: FLUX, SD3, HunyuanVideo (AdaLayerNormZero and its variants)."""
    hidden, temb = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb")
    return block.norm1(hidden, emb=temb)[0]




def dit(block, forward, args, kwargs):
    """DiT's ``BasicTransformerBlock`` (``ada_norm_zero``): ``norm1(hidden_states, timestep, class_labels)[0]``."""
    hidden = _arg(forward, args, kwargs, "hidden_states")
    timestep, labels = _arg(forward, args, kwargs, "timestep", None), _arg(forward, args, kwargs, "class_labels", None)
    return block.norm1(hidden, timestep, labels, hidden_dtype=hidden.dtype)[0]


def flux2(block, forward, args, kwargs):
    """FLUX.2: ``(1 + scale) * norm1(hidden_states) + shift`` with the block's image modulation ``temb_mod_img``."""
    hidden, mod = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb_mod_img")
    if mod.ndim == 2:
        mod = mod.unsqueeze(1)
    shift, scale = mod.chunk(6, dim=-1)[:2]
    return (1 + scale) * block.norm1(hidden) + shift


def wan(block, forward, args, kwargs):
    """Wan: ``norm1(hidden_states) * (1 + scale_msa) + shift_msa`` from ``scale_shift_table + temb`` (per token for
    Wan 2.2 TI2V's 4-d ``temb``)."""
    hidden, temb = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb")
    if temb.ndim == 4:  # batch, tokens, 6, dim
        mods = (block.scale_shift_table.unsqueeze(0) + temb.float()).chunk(6, dim=2)
        shift, scale = mods[0].squeeze(2), mods[1].squeeze(2)
    else:
        shift, scale = (block.scale_shift_table + temb.float()).chunk(6, dim=1)[:2]
    return (block.norm1(hidden.float()) * (1 + scale) + shift).type_as(hidden)


def qwenimage(block, forward, args, kwargs):
    """Qwen-Image: ``img_norm1(hidden_states) * (1 + scale) + shift`` from ``img_mod(temb)`` (per token where the
    call gives ``modulate_index``: edit models' conditioning tokens take the second half of the modulation)."""
    import torch

    hidden, temb = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb")
    index = _arg(forward, args, kwargs, "modulate_index", None)
    shift, scale, _ = block.img_mod(temb).chunk(2, dim=-1)[0].chunk(3, dim=-1)
    if index is None:
        shift, scale = shift.unsqueeze(1), scale.unsqueeze(1)
    else:
        half = shift.size(0) // 2
        where = torch.as_tensor(index, device=hidden.device).unsqueeze(-1) == 0
        shift = torch.where(where, shift[:half].unsqueeze(1), shift[half:].unsqueeze(1))
        scale = torch.where(where, scale[:half].unsqueeze(1), scale[half:].unsqueeze(1))
    return block.img_norm1(hidden) * (1 + scale) + shift


def chroma(block, forward, args, kwargs):
    """Chroma: ``norm1(hidden_states, emb=temb[:, :6])[0]`` (the image half of the pruned modulation)."""
    hidden, temb = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb")
    return block.norm1(hidden, emb=temb[:, :6])[0]


def ltx(block, forward, args, kwargs):
    """LTX-Video: ``norm1(hidden_states) * (1 + scale_msa) + shift_msa`` from ``scale_shift_table + temb``."""
    hidden, temb = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "temb")
    table = block.scale_shift_table
    ada = table[None, None].to(temb.device) + temb.reshape(hidden.size(0), temb.size(1), table.shape[0], -1)
    shift, scale = ada.unbind(dim=2)[:2]
    return block.norm1(hidden) * (1 + scale) + shift


def cogvideox(block, forward, args, kwargs):
    """CogVideoX: the hidden half of ``norm1(hidden_states, encoder_hidden_states, temb)``."""
    hidden, encoder = _arg(forward, args, kwargs, "hidden_states"), _arg(forward, args, kwargs, "encoder_hidden_states")
    return block.norm1(hidden, encoder, _arg(forward, args, kwargs, "temb"))[0]
