"""Where a family's timestep embedding is read: the ``time_embedding`` entry of an :class:`~padecache.adapters.Adapter`
(what TeaCache's official code measures on Wan, CogVideoX, ConsisID and HiDream)."""

from __future__ import annotations

import attrs

__all__ = ["TimeEmbedding"]


@attrs.frozen
class TimeEmbedding:
    """Where a family's timestep embedding is read, for :attr:`padecache.interfaces.StepInputs.time_embedding`: the
    output of a submodule that runs before the blocks (``module``, with ``output`` the index into a tuple it
    returns), or an argument of the first block (``argument``).  Wan: ``TimeEmbedding(module="condition_embedder",
    output=0)`` (its ``temb``); CogVideoX: ``TimeEmbedding(argument="temb")`` (the blocks receive ``emb`` itself).
    """

    module: str | None = None
    output: int | None = None
    argument: str | None = None

    def __attrs_post_init__(self):
        if (self.module is None) == (self.argument is None):
            raise ValueError("TimeEmbedding: give either `module` (a submodule's output) or `argument` (the first "
                             "block's argument)")
        if self.output is not None and self.module is None:
            raise ValueError("TimeEmbedding: `output` indexes a module's output; give `module` too")

    def describe(self) -> str:
        if self.module is not None:
            return f"`{self.module}` output" + ("" if self.output is None else f"[{self.output}]")
        return f"first block's `{self.argument}`"
