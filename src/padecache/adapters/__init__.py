"""Where padecache hooks a model: one :class:`Adapter` per diffusers transformer family.

An adapter says

* which ``nn.ModuleList`` s form the block stack, in execution order (``block_lists``);
* what each block of a list takes and returns (:class:`BlockIO`): the argument carrying the hidden (image)
  stream, the one carrying the encoder (text) stream if the block updates it, and where each sits in the
  returned tuple.  By default this comes from the block metadata diffusers keeps for its own cache hooks
  (``TransformerBlockRegistry``, read through :mod:`padecache.compat`); an adapter only spells it out where
  diffusers has none or where it is wrong;
* the head module whose first input is the block-stack output (``head``);
* how the family's pipelines pass time (:class:`TimeSpec`: argument name, scale, offset/reversal);
* which modules always run (embeddings, refiners, head) and how its pipelines run guidance, for the docs.

The engine captures the stack input at the first block, lets a skipped block return its inputs in the
block's own output format, and at the head replaces the block-stack output by ``input + predicted residual``.
Adding a family is one :class:`Adapter` returned from a plugin's ``padecache_adapters`` hook; the built-in
families are in :mod:`padecache.adapters.families`, and :class:`GenericAdapter` handles a ``ModelMixin`` with a
recognisable block list that no adapter claims.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch.nn as nn

from .embedding import TimeEmbedding
from .head_input import HeadInput, ModelCall, control_state

__all__ = [
    "Adapter",
    "BlockIO",
    "TimeSpec",
    "TimeEmbedding",
    "Stream",
    "HeadInput",
    "ModelCall",
    "control_state",
    "GenericAdapter",
    "argument",
    "position_of",
    "replace_argument",
    "hidden_passthrough",
    "dual_stream_passthrough",
    "unsupported_message",
    "TIME_CANDIDATES",
]


# -- arguments ---------------------------------------------------------------------------------------------------

_POSITIONS: dict[tuple[type, str], int | None] = {}


def position_of(fn: Callable, name: str) -> int | None:
    """Position of parameter ``name`` among ``fn``'s positional parameters (``self`` excluded), cached per class."""
    owner = getattr(fn, "__self__", None)
    key = (type(owner) if owner is not None else fn, name)
    if key not in _POSITIONS:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        pos = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        _POSITIONS[key] = pos.index(name) if name in pos else None
    return _POSITIONS[key]


def argument(args: tuple, kwargs: dict, name: str, position: int | None) -> Any:
    """Argument ``name`` of a call, given by keyword or at ``position``; ``TypeError`` if absent."""
    if name in kwargs:
        return kwargs[name]
    if position is not None and len(args) > position:
        return args[position]
    raise TypeError(f"block called without `{name}`")


def replace_argument(args: tuple, kwargs: dict, name: str, position: int | None, value: Any) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of a call with argument ``name`` (given by keyword or at ``position``) set to ``value``."""
    if name in kwargs or position is None or len(args) <= position:
        return args, {**kwargs, name: value}
    return (*args[:position], value, *args[position + 1:]), kwargs


def hidden_passthrough(args: tuple, kwargs: dict) -> Any:
    """A skipped block that returns ``hidden_states`` (DiT, PixArt, Wan, ...): kept for hand-written adapters."""
    return argument(args, kwargs, "hidden_states", 0)


def dual_stream_passthrough(args: tuple, kwargs: dict) -> Any:
    """A skipped block that returns ``(encoder_hidden_states, hidden_states)`` (FLUX): kept for hand-written adapters."""
    return argument(args, kwargs, "encoder_hidden_states", 1), argument(args, kwargs, "hidden_states", 0)


@attrs.frozen
class BlockIO:
    """What a block takes and returns.

    Attributes:
        hidden: name of the argument carrying the hidden (image/video) stream.
        encoder: name of the argument carrying the encoder (text) stream the block updates, or ``None``.
        hidden_index: position of the hidden stream in the returned tuple, or ``None`` when the block returns
            the hidden tensor alone.
        encoder_index: position of the encoder stream in the returned tuple (``None``: not returned).
        size: length of the returned tuple when it holds more than these two (extra entries are ``None``
            when the block is skipped).
        returns: the general form, overriding the indices: what a skipped block returns, as the argument each
            output position hands back -- a name for a bare tensor, or a tuple of names for a tuple, where
            ``"zeros:<arg>"`` is a zero tensor shaped like ``<arg>`` (a hint added to the main stream) and
            ``None`` is ``None``.  E.g. LTX-2's blocks: ``("hidden_states", "audio_hidden_states")``.
    """

    hidden: str = "hidden_states"
    encoder: str | None = None
    hidden_index: int | None = None
    encoder_index: int | None = None
    size: int | None = None
    returns: str | tuple[str | None, ...] | None = None

    @classmethod
    def from_diffusers(cls, block_cls: type) -> BlockIO | None:
        """The block metadata diffusers keeps for its cache hooks, or ``None`` if it has none for ``block_cls``."""
        from ..compat import block_metadata

        meta = block_metadata(block_cls)
        if meta is None:
            return None
        hidden, encoder, hidden_index, encoder_index = meta
        if encoder_index is None:  # diffusers' own hooks return the bare hidden tensor then
            return cls(hidden=hidden)
        return cls(hidden=hidden, encoder=encoder, hidden_index=hidden_index, encoder_index=encoder_index)

    def hidden_of(self, block_forward: Callable, args: tuple, kwargs: dict) -> Any:
        return self.argument(block_forward, args, kwargs, self.hidden)

    def argument(self, block_forward: Callable, args: tuple, kwargs: dict, name: str) -> Any:
        try:
            return argument(args, kwargs, name, position_of(block_forward, name))
        except TypeError:  # the adapter's stream name is not this block's: say which block, what it takes, what to set
            owner = getattr(block_forward, "__self__", None)
            who = type(owner).__name__ if owner is not None else getattr(block_forward, "__qualname__", "a block")
            try:
                takes = ", ".join(inspect.signature(block_forward).parameters)
            except (TypeError, ValueError):
                takes = "arguments padecache cannot read"
            raise TypeError(f"{who} was called without `{name}` (it takes {takes}): give its block list a BlockIO "
                            f"naming its stream argument, e.g. io={{'blocks': BlockIO(hidden='x')}} (docs/adapters.md)") from None

    def _returned(self, block_forward: Callable, args: tuple, kwargs: dict, spec: str | None) -> Any:
        if spec is None:
            return None
        if spec.startswith("zeros:"):
            import torch

            return torch.zeros_like(self.argument(block_forward, args, kwargs, spec[6:]))
        return self.argument(block_forward, args, kwargs, spec)

    def passthrough(self, block_forward: Callable, args: tuple, kwargs: dict) -> Any:
        """What the block returns when it is skipped: its inputs, in its own output format."""
        if self.returns is not None:
            if isinstance(self.returns, str):
                return self._returned(block_forward, args, kwargs, self.returns)
            return tuple(self._returned(block_forward, args, kwargs, r) for r in self.returns)
        hidden = self.hidden_of(block_forward, args, kwargs)
        if self.hidden_index is None:
            return hidden
        n = self.size or 1 + max(self.hidden_index, self.encoder_index if self.encoder_index is not None else 0)
        out: list[Any] = [None] * n
        out[self.hidden_index] = hidden
        if self.encoder_index is not None and self.encoder is not None:
            out[self.encoder_index] = argument(args, kwargs, self.encoder, position_of(block_forward, self.encoder))
        return tuple(out)


@attrs.frozen
class TimeSpec:
    """How a family's pipelines pass time: ``value = offset + scale * t`` with ``t`` from ``scheduler.timesteps``.

    FLUX pipelines pass ``t / 1000`` (``scale=1e-3``); Lumina2 and Z-Image pass ``1 - t / 1000``
    (``scale=-1e-3, offset=1``); Mochi ``1000 - t`` (``scale=-1, offset=1000``).
    """

    argument: str = "timestep"
    scale: float = 1.0
    offset: float = 0.0

    def to_model(self, t: float) -> float:
        return self.offset + self.scale * t

    def describe(self) -> str:
        term = {1.0: "t", 1e-3: "t/1000", -1e-3: "-t/1000", -1.0: "-t"}.get(self.scale, f"{self.scale:g}·t")
        if not self.offset:
            return f"`{self.argument}` = {term}"
        if term.startswith("-"):
            return f"`{self.argument}` = {self.offset:g} - {term[1:]}"
        return f"`{self.argument}` = {term} {'+' if self.offset > 0 else '-'} {abs(self.offset):g}"


@attrs.frozen
class Stream:
    """A hidden stream the block stack carries to a head of its own (LTX-2: video and audio).

    ``argument`` names it among the first block's arguments, ``head`` is the module that takes it after the stack,
    ``head_input`` how that head receives it when not as it is (:class:`~padecache.adapters.head_input.HeadInput`).
    """

    argument: str
    head: str
    head_input: HeadInput | None = None  # (reach) None: the head receives the stream as the stack leaves it


#: the time conventions of diffusers' pipelines, tried in order when an adapter does not know its own
TIME_CANDIDATES = ((1.0, 0.0), (1e-3, 0.0), (-1e-3, 1.0), (-1.0, 1000.0))


@attrs.frozen
class Adapter:
    """How to hook one family of transformers.

    Attributes:
        name: short name shown by ``padecache list``.
        model_classes: class names this adapter supports (matched against the model's MRO).
        block_lists: paths of the ``nn.ModuleList`` s that form the block stack, in execution order
            (attribute names, or dotted paths into submodules).
        head: path of the module whose first input (or ``hidden_states``) is the block-stack output, or a
            function of the model giving it (Z-Image names its head after its patch size).
        streams: for stacks that carry several hidden streams to heads of their own (LTX-2's video and audio),
            one :class:`Stream` each; they are cached together (one residual per row, all streams packed).
        head_input: how the head receives the single stream when the model changes it between the stack and the
            head (a token slice, an unflattened grid, a sequence-first layout): a :class:`HeadInput`.
        control_inputs: forward arguments that bring inputs computed anew every step into the block stack (ControlNet
            residuals added between blocks).  A forecast step does not use them: the forecast extrapolates their
            effect from the computed steps, as it does the stack's.  A call where one of them starts or stops acting
            (given and not all zero: ControlNet on for part of the run) restarts the history, so that step computes.
        time: how the family's pipelines pass time (:class:`TimeSpec`), several candidates (resolved per
            generation to the one that matches the scheduler), or a function of the model giving either
            (Sana scales time by its config's ``timestep_scale``).
        rows_split: whether a block can run on some rows of the batch alone (every batch-first argument sliced);
            ``False`` makes every row compute when rows disagree: where an argument mixes the batch with another
            axis (PriorTransformer's ``(batch * heads, N, N)`` attention mask, Latte's temporal blocks whose rows
            are ``(sample, token)`` pairs).
        shared_arguments: block arguments that hold no batch axis and are never sliced by row (rotary embeddings,
            whose first size can equal the batch by coincidence).
        modulated: ``(first block, its forward, args, kwargs) -> tensor``: the first block's timestep-modulated
            input (FLUX: ``block.norm1(hidden, emb=temb)[0]``), what input-aware policies such as TeaCache read
            (:class:`~padecache.interfaces.StepInputs`); computed only when a policy asks for it.  ``None``: the
            family has none (such policies fall back to the stack input).
        time_embedding: where the family's timestep embedding is read (:class:`TimeEmbedding`), for components that
            declare ``"time_embedding"`` (TeaCache's indicator on Wan, CogVideoX, ConsisID and HiDream, as its
            official code measures it); ``None``: not given.
        io: per block list, a :class:`BlockIO` where diffusers' block metadata is missing or wrong.
        passthrough: per block list, a function ``(args, kwargs) -> output`` for a skipped block, for
            adapters written before :class:`BlockIO` (``hidden_passthrough``, ``dual_stream_passthrough``).
        timestep_scale: shorthand for ``time=TimeSpec(scale=...)`` (older adapters).
        cfg: how the family's pipelines run guidance ("batched", "separate", "distilled", "none"); documentation.
        always_run: modules outside the block stack that run on every step; documentation.
        notes: anything a user of this family should know.
    """

    name: str
    model_classes: tuple[str, ...]
    block_lists: tuple[str, ...]
    head: str | Callable[[nn.Module], str] = "norm_out"
    time: TimeSpec | tuple[TimeSpec, ...] | Callable[[nn.Module], TimeSpec | tuple[TimeSpec, ...]] | None = None
    streams: tuple[Stream, ...] = ()
    head_input: HeadInput | None = None  # (reach) how the head of the single stream receives it, when not as it is
    control_inputs: tuple[str, ...] = ()  # (reach) arguments bringing per-step inputs into the stack (ControlNet)
    rows_split: bool = True
    shared_arguments: tuple[str, ...] = ()
    modulated: Callable[[nn.Module, Callable, tuple, dict], Any] | None = None
    time_embedding: TimeEmbedding | None = None
    io: Mapping[str, BlockIO] = attrs.field(factory=dict)
    passthrough: Mapping[str, Callable[[tuple, dict], Any]] = attrs.field(factory=dict)
    timestep_scale: float | None = None
    cfg: str = ""
    always_run: tuple[str, ...] = ()
    notes: str = ""

    def time_specs(self, model: nn.Module | None = None) -> tuple[TimeSpec, ...]:
        time = self.time(model) if callable(self.time) and model is not None else self.time
        if isinstance(time, TimeSpec):
            return (time,)
        if time and not callable(time):
            return tuple(time)
        return (TimeSpec(scale=self.timestep_scale if self.timestep_scale is not None else 1.0),)

    def supports(self, model: nn.Module) -> bool:
        names = {cls.__name__ for cls in type(model).__mro__}
        return any(name in names for name in self.model_classes)

    def blocks(self, model: nn.Module) -> list[tuple[str, int, nn.Module]]:
        """``(list name, index, block)`` for every block of the stack, in execution order."""
        out = []
        for list_name in self.block_lists:
            blocks: Sequence[nn.Module] = _submodule(model, list_name) or ()
            out.extend((list_name, i, block) for i, block in enumerate(blocks))
        if not out:
            raise TypeError(f"{type(model).__name__} has no blocks in {self.block_lists}; nothing to cache")
        return out

    def stream_specs(self, model: nn.Module) -> tuple[Stream, ...]:
        """The streams the stack carries to their heads (one, unless the adapter names several)."""
        if self.streams:
            return self.streams
        _, _, first = self.blocks(model)[0]
        head = self.head(model) if callable(self.head) else self.head
        return (Stream(self.block_io(self.block_lists[0], first).hidden, head, self.head_input),)

    def head_modules(self, model: nn.Module) -> list[nn.Module]:
        out = []
        for stream in self.stream_specs(model):
            head = _submodule(model, stream.head)
            if not isinstance(head, nn.Module):
                raise TypeError(f"{type(model).__name__} has no head module `{stream.head}` (adapter {self.name!r})")
            out.append(head)
        return out

    def head_module(self, model: nn.Module) -> nn.Module:
        return self.head_modules(model)[0]

    def block_io(self, list_name: str, block: nn.Module) -> BlockIO:
        """The :class:`BlockIO` of a block of ``list_name``: the adapter's, else diffusers', else hidden-only."""
        if list_name in self.io:
            return self.io[list_name]
        return BlockIO.from_diffusers(type(block)) or BlockIO()

    def skip_output(self, list_name: str, block: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        """What a skipped block of ``list_name`` returns."""
        if list_name in self.passthrough:
            return self.passthrough[list_name](args, kwargs)
        return self.block_io(list_name, block).passthrough(forward, args, kwargs)

    def stack_input(self, list_name: str, block: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        """The (first) hidden stream entering the first block of the stack."""
        return self.stack_inputs(list_name, block, forward, args, kwargs)[0]

    def stack_inputs(self, list_name: str, block: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> list:
        """The hidden stream(s) entering the first block of the stack."""
        io = self.block_io(list_name, block)
        if not self.streams:
            return [io.hidden_of(forward, args, kwargs)]
        return [io.argument(forward, args, kwargs, s.argument) for s in self.streams]

    def describe(self) -> dict[str, str]:
        """One row of the supported-models table."""
        if callable(self.time) and not isinstance(self.time, TimeSpec):
            specs = (TimeSpec(),)
            time = "`timestep` = t × the model's `timestep_scale`"
        else:
            specs = self.time_specs()
            time = " or ".join(s.describe() for s in specs)
        return {
            "family": self.name,
            "classes": ", ".join(self.model_classes),
            "blocks": " + ".join(self.block_lists),
            "head": self.head if isinstance(self.head, str) else "(from the config)",
            "time": time,
            "cfg": self.cfg,
            "always_run": ", ".join(self.always_run),
        }


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


# -- the generic adapter -----------------------------------------------------------------------------------------

_HEADS = ("norm_out", "final_layer", "norm_final", "final_norm", "out_norm", "norm_f", "proj_out")
_TIME_ARGS = ("timestep", "timesteps", "t", "time", "sigma", "sigmas")


def _is_block(module: nn.Module) -> bool:
    if BlockIO.from_diffusers(type(module)) is not None:
        return True
    name = type(module).__name__
    has_attention = any("Attention" in type(m).__name__ for m in module.modules())
    return has_attention and (name.endswith("Block") or name.endswith("Layer"))


def _block_lists(model: nn.Module) -> list[str]:
    out = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList) and len(child) and "refiner" not in name and all(_is_block(b) for b in child):
            out.append(name)
    return out


@attrs.frozen
class GenericAdapter(Adapter):
    """Any diffusers ``ModelMixin`` whose direct children include ``nn.ModuleList`` s of transformer blocks.

    Block lists are its ``ModuleList`` children of attention blocks in definition order (refiners excluded),
    the head is the first of ``norm_out``, ``final_layer``, ``norm_final`` ... it has, time is the first of
    ``timestep``, ``timesteps``, ``t`` ... in its ``forward``, and the time convention is found from the
    scheduler.  The engine checks at the first computed step that the head receives a tensor of the block
    stack's shape, and raises if not: a wrong guess fails loudly rather than corrupting images.
    """

    name: str = "generic"
    model_classes: tuple[str, ...] = ("ModelMixin",)
    block_lists: tuple[str, ...] = ()
    notes: str = "found from the model's structure; prefer a family adapter"

    def supports(self, model: nn.Module) -> bool:
        if not any(c.__name__ == "ModelMixin" for c in type(model).__mro__):
            return False
        return bool(_block_lists(model)) and any(isinstance(getattr(model, h, None), nn.Module) for h in _HEADS)

    def resolve(self, model: nn.Module) -> Adapter:
        """A concrete adapter for ``model``."""
        head = next(h for h in _HEADS if isinstance(getattr(model, h, None), nn.Module))
        params = inspect.signature(type(model).forward).parameters
        time_arg = next((a for a in _TIME_ARGS if a in params), "timestep")
        return Adapter(
            name=f"generic:{type(model).__name__}",
            model_classes=(type(model).__name__,),
            block_lists=tuple(_block_lists(model)),
            head=head,
            time=tuple(TimeSpec(time_arg, s, o) for s, o in TIME_CANDIDATES),
            notes=self.notes,
        )


def unsupported_message(model: nn.Module, supported: Sequence[str]) -> str:
    name = type(model).__name__
    return (
        f"padecache does not support {name}: no adapter claims it, and it has no list of transformer blocks the "
        f"generic adapter recognises ({len(supported)} transformer classes are supported; `padecache list` shows "
        f"them). To add {name}, return an adapter from a plugin:\n\n"
        f"    from padecache.adapters import Adapter, TimeSpec\n\n"
        f"    @padecache.hookimpl\n"
        f"    def padecache_adapters():\n"
        f"        return [Adapter(name=\"my-family\", model_classes=(\"{name}\",), block_lists=(\"transformer_blocks\",),\n"
        f"                        head=\"norm_out\", time=TimeSpec(\"timestep\"))]\n\n"
        f"and register the plugin (padecache.register_plugin(module) or a `padecache` entry point); "
        f"see docs/adapters.md."
    )
