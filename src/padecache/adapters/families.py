"""The diffusers transformer families padecache supports out of the box: one :class:`Adapter` entry each.

Block inputs and outputs come from diffusers' block metadata wherever it has them; an entry spells out
:class:`BlockIO` only where diffusers has none.  Each family is tested with a tiny config through a 20-step
loop in ``tests/test_families.py`` (``padecache.testing.families`` builds the models).
"""

from __future__ import annotations

from . import Adapter, GenericAdapter, TimeSpec

__all__ = ["FAMILIES", "BUILTIN_ADAPTERS"]

FLUX_TIME = TimeSpec(scale=1e-3)  # FLUX-style pipelines pass t / 1000

FAMILIES: tuple[Adapter, ...] = (
    Adapter(
        name="dit",
        model_classes=("DiTTransformer2DModel", "PixArtTransformer2DModel"),
        block_lists=("transformer_blocks",),
        cfg="batched",
        always_run=("pos_embed", "adaln / time embedding", "norm_out", "proj_out"),
    ),
    Adapter(
        name="flux",
        model_classes=("FluxTransformer2DModel",),
        block_lists=("transformer_blocks", "single_transformer_blocks"),
        time=FLUX_TIME,
        cfg="distilled (true CFG: separate)",
        always_run=("x_embedder", "context_embedder", "time_text_embed", "pos_embed", "norm_out", "proj_out"),
    ),
    Adapter(
        name="wan",
        model_classes=("WanTransformer3DModel",),
        block_lists=("blocks",),
        cfg="separate (cache_context)",
        always_run=("patch_embedding", "condition_embedder", "rope", "norm_out", "proj_out"),
    ),
)

#: every built-in adapter, the generic one last (registry order decides who claims a model first)
BUILTIN_ADAPTERS: tuple[Adapter, ...] = (*FAMILIES, GenericAdapter())
