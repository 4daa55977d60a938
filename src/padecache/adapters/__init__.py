"""Where padecache hooks a model: one :class:`Adapter` per diffusers transformer family.

An adapter names the block lists (in execution order), the head module whose first input is the
block-stack output, and what a skipped block returns.  The engine captures the stack input at the first
block, skips every block on a predicted step (each returns its inputs unchanged), and at the head
replaces the block-stack output by ``input + predicted residual``.  Embeddings and the head always run.

Adding a family is one :class:`Adapter` returned from a plugin's ``padecache_adapters`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch.nn as nn

__all__ = ["Adapter", "hidden_passthrough", "dual_stream_passthrough", "BUILTIN_ADAPTERS", "argument"]


def argument(args: tuple, kwargs: dict, name: str, position: int) -> Any:
    """Argument ``name`` of a call, given by keyword or at ``position``."""
    if name in kwargs:
        return kwargs[name]
    if len(args) > position:
        return args[position]
    raise TypeError(f"block called without `{name}`")


def hidden_passthrough(args: tuple, kwargs: dict) -> Any:
    """A skipped block that returns ``hidden_states`` (DiT, PixArt, Wan, HunyuanDiT ...)."""
    return argument(args, kwargs, "hidden_states", 0)


def dual_stream_passthrough(args: tuple, kwargs: dict) -> Any:
    """A skipped block that returns ``(encoder_hidden_states, hidden_states)`` (Flux double and single blocks)."""
    return argument(args, kwargs, "encoder_hidden_states", 1), argument(args, kwargs, "hidden_states", 0)


@attrs.frozen
class Adapter:
    """How to hook one family of transformers.

    Attributes:
        name: short name shown by ``padecache list``.
        model_classes: class names this adapter supports (matched against the model's MRO).
        block_lists: attribute names of the ``nn.ModuleList`` s that form the block stack, in order.
        head: attribute name of the module whose first positional input is the block-stack output.
        passthrough: per block list, what a skipped block returns given its ``(args, kwargs)``.
        stack_input: how to read the image hidden states from the first block's ``(args, kwargs)``.
        timestep_scale: what the family's pipelines pass as ``timestep``, relative to the scheduler's
            timesteps (FLUX pipelines pass ``t / 1000``).  The step is found by matching
            ``scheduler.timesteps * timestep_scale``.
    """

    name: str
    model_classes: tuple[str, ...]
    block_lists: tuple[str, ...]
    head: str = "norm_out"
    passthrough: dict[str, Callable[[tuple, dict], Any]] = attrs.field(factory=dict)
    stack_input: Callable[[tuple, dict], Any] = hidden_passthrough
    timestep_scale: float = 1.0

    def supports(self, model: nn.Module) -> bool:
        names = {cls.__name__ for cls in type(model).__mro__}
        return any(name in names for name in self.model_classes)

    def blocks(self, model: nn.Module) -> list[tuple[str, int, nn.Module]]:
        """``(list name, index, block)`` for every block of the stack, in execution order."""
        out = []
        for list_name in self.block_lists:
            blocks: Sequence[nn.Module] = getattr(model, list_name, None) or ()
            out.extend((list_name, i, block) for i, block in enumerate(blocks))
        if not out:
            raise TypeError(f"{type(model).__name__} has no blocks in {self.block_lists}; nothing to cache")
        return out

    def head_module(self, model: nn.Module) -> nn.Module:
        head = getattr(model, self.head, None)
        if not isinstance(head, nn.Module):
            raise TypeError(f"{type(model).__name__} has no head module `{self.head}`")
        return head

    def skip_output(self, list_name: str, args: tuple, kwargs: dict) -> Any:
        return self.passthrough.get(list_name, hidden_passthrough)(args, kwargs)


BUILTIN_ADAPTERS = (
    Adapter(
        name="dit",
        model_classes=("DiTTransformer2DModel", "PixArtTransformer2DModel"),
        block_lists=("transformer_blocks",),
    ),
    Adapter(
        name="flux",
        model_classes=("FluxTransformer2DModel",),
        block_lists=("transformer_blocks", "single_transformer_blocks"),
        passthrough={
            "transformer_blocks": dual_stream_passthrough,
            "single_transformer_blocks": dual_stream_passthrough,
        },
        timestep_scale=1e-3,
    ),
    Adapter(
        name="wan",
        model_classes=("WanTransformer3DModel",),
        block_lists=("blocks",),
    ),
)
