"""What an input-aware component reads: :class:`StepInputs`, and the names a component declares in ``inputs``
(:data:`INPUTS`, :func:`declared_inputs`).  :class:`StepInputs` is re-exported by :mod:`padecache.interfaces`."""

from __future__ import annotations

import attrs
import torch

__all__ = ["INPUTS", "StepInputs", "declared_inputs", "inputs_problem"]


def _rows_of(t: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor | None:
    return t if t is None or rows is None else t.index_select(0, rows.to(t.device))


@attrs.frozen
class StepInputs:
    """What an input-aware component reads (those named in its ``inputs``; the others are ``None``), restricted to
    the rows of the decision, batch first.

    Attributes:
        stack_input: the input of the cached block range (after the always-run ``engine.first_blocks``), in the
            history dtype: what the residual is added to.
        modulated: the first block's timestep-modulated input as the family's adapter computes it
            (:attr:`padecache.adapters.Adapter.modulated`); ``None`` where the family has no such entry: the policy
            must then fall back (to ``stack_input``, say) and say so in its indicators.
        model_input: the transformer call's hidden-state argument (the latents), these rows.
        first_input: the input of block 0, packed as ``stack_input`` is (several streams side by side per row), in
            the history dtype: with ``engine.first_blocks`` > 0, ``stack_input - first_input`` is what those
            always-run blocks added (DiCache's probe residual); equal to ``stack_input`` without them.  ``None``
            where block 0's streams do not have the cached range's shapes.
        time_embedding: the family's timestep embedding, before any per-block projection, where the family's
            adapter says where to read it (:attr:`padecache.adapters.Adapter.time_embedding`; Wan: the condition
            embedder's ``temb``, TeaCache's ``e``; CogVideoX and ConsisID: ``emb``; HiDream: the timestep
            embedder's output); ``None`` elsewhere.
        time_projection: the timestep conditioning the first block receives, its ``temb`` argument (Wan: the
            projected ``timestep_proj``, TeaCache's ``e0``); ``None`` where the first block takes no ``temb``.
    """

    stack_input: torch.Tensor | None = None
    modulated: torch.Tensor | None = None
    model_input: torch.Tensor | None = None
    first_input: torch.Tensor | None = None
    time_embedding: torch.Tensor | None = None
    time_projection: torch.Tensor | None = None

    def select(self, rows: torch.Tensor | None) -> StepInputs:
        """These inputs for batch ``rows`` only (``None``: all of them)."""
        if rows is None:
            return self
        return StepInputs(**{f.name: _rows_of(getattr(self, f.name), rows) for f in attrs.fields(StepInputs)})

    def __getitem__(self, name: str) -> torch.Tensor | None:
        """``inputs["modulated"]`` is ``inputs.modulated``: read by name as from a dict."""
        if name not in INPUTS:
            raise KeyError(f"{name!r} is not a step input; the inputs are {', '.join(sorted(INPUTS))}")
        return getattr(self, name)

    def get(self, name: str, default: torch.Tensor | None = None) -> torch.Tensor | None:
        """The input ``name``, or ``default`` where the model cannot give it (``None``)."""
        value = self[name]
        return default if value is None else value


#: the inputs a component may declare in ``CachePolicy.inputs`` / ``Predictor.inputs``
INPUTS = frozenset(f.name for f in attrs.fields(StepInputs))


def declared_inputs(inputs: object) -> frozenset[str]:
    """A component's ``inputs`` declaration as a frozenset: one name, or any collection of names (a tuple, list,
    set or frozenset of :data:`INPUTS`); :class:`ValueError` names what is wrong with anything else."""
    names = (inputs,) if isinstance(inputs, str) else inputs
    if isinstance(names, (tuple, list, set, frozenset)) and all(isinstance(n, str) for n in names):
        unknown = sorted(set(names) - INPUTS)
        if not unknown:
            return frozenset(names)
        raise ValueError(f"`inputs` names {', '.join(map(repr, unknown))}, which the engine does not give; "
                         f"the inputs are {', '.join(sorted(INPUTS))}")
    raise ValueError(f"`inputs` must be names of {sorted(INPUTS)} (a frozenset, tuple or list of them), got {inputs!r}")


def inputs_problem(inputs: object) -> str | None:
    """What is wrong with a component's ``inputs`` declaration, or ``None``."""
    try:
        declared_inputs(inputs)
    except ValueError as err:
        return str(err)
    return None
