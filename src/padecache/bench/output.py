"""Where a comparison writes: a checked output directory, ``results.json`` after every run, the report at the end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import check_output_dir, make_output_dir
from .records import Record, dump_records

__all__ = ["ResultsDir", "check_output_dir", "FILES", "GALLERY"]

#: what a finished comparison leaves in its directory
FILES = ("results.json", "results.md", "pareto.png", "grid.png")
#: images per run kept for grid.png
GALLERY = 8


def _thumbnails(images: Any, side: int = 256) -> Any:
    """The grid's copy of a run's first images: on the CPU, at most ``side`` pixels a side, half precision."""
    import torch.nn.functional as F

    x = images.detach().cpu()
    if x.ndim >= 4 and max(x.shape[-2:]) > side:
        scale = side / max(x.shape[-2:])
        lead = x.shape[:-3]
        x = F.interpolate(x.reshape(-1, *x.shape[-3:]).float(), scale_factor=scale, mode="area")
        x = x.reshape(*lead, *x.shape[-3:])
    return x.half()


class ResultsDir:
    """An output directory that records are written to as they are made.

    ``results.json`` is rewritten (atomically) after every :meth:`add`, so an interrupted comparison keeps
    the runs it finished; :meth:`render` writes ``results.md``, ``pareto.png`` and ``grid.png`` from the
    records (nothing is rerun).  Pass one ``ResultsDir`` to several :func:`~padecache.bench.compare` calls
    (step counts, models) to collect them in one place.
    """

    def __init__(self, path: str | Path):
        self.path = check_output_dir(path)  # made at the first record: a comparison refused before it runs leaves nothing
        self.records: list[Record] = []
        self.gallery: dict[int, Any] = {}  # record index -> first images (CPU tensor)
        self.captions: tuple[str, ...] | None = None  # what each image of a run shows (a text model's prompts)
        self._started = False
        self.paths = {"json": self.path / "results.json", "md": self.path / "results.md",
                      "pareto": self.path / "pareto.png", "grid": self.path / "grid.png"}

    def _dump(self) -> None:
        if not self._started:  # a new comparison: an earlier run's report left in the directory would contradict it
            make_output_dir(self.path)
            for key in ("md", "pareto", "grid"):
                self.paths[key].unlink(missing_ok=True)
            self._started = True
        dump_records(self.records, self.paths["json"])

    def start(self, model: str, steps: int | None, captions: Sequence[str] | None = None) -> None:
        """A comparison begins; ``captions`` name its images in order (the grid writes them under full compute)."""
        if captions is not None:
            self.captions = tuple(str(c) for c in captions)

    def add(self, record: Record, images: Any = None) -> None:
        if images is not None:
            self.gallery[len(self.records)] = _thumbnails(images[:GALLERY])
        self.records.append(record)
        self._dump()

    def update(self, record: Record) -> None:
        """A record already added has changed (full compute's wall time is known at the end)."""
        self._dump()

    def render(self, ours: str | None = None, targets: Sequence[float] | None = None) -> dict[str, Path]:
        """Write ``results.md``, ``pareto.png`` and ``grid.png``; returns every file's path."""
        from .plots import grid_plot, pareto_plot
        from .report import markdown

        self._dump()
        self.paths["md"].write_text(markdown(self.records, ours=ours, targets=targets) + "\n")
        pareto_plot(self.records, self.paths["pareto"], ours=ours, targets=targets)
        grid_plot(self.records, self.gallery, self.paths["grid"], ours=ours, targets=targets, captions=self.captions)
        return dict(self.paths)
