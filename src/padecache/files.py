"""What the commands write: a checked output directory, images, videos, and a worker's files.

:func:`check_output_dir` uses the standard library only, so a command line can check its ``--out`` before
importing torch; the writers import torch and PIL when called.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_output_dir", "make_output_dir", "save_images", "save_sample", "save_video", "to_pil", "difference", "write_payload"]


def check_output_dir(path: str | Path) -> Path:
    """Check that files can be written at ``path``; ``ValueError`` saying why not.  Creates nothing.

    A missing ``path`` is checked through its nearest existing parent.  The directory itself is made by
    :func:`make_output_dir` when the first file is written, so input found bad after this check (an unknown
    model, a prompt the pipeline cannot take) leaves no empty directory behind.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path}: exists and is not a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {path}: {existing} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".padecache-write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"--out {path}: cannot write there ({err.strerror or err})") from None
    return path


def make_output_dir(path: str | Path) -> Path:
    """``path`` (and its missing parents) made if needed: what writers call just before their first file."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {path}: cannot create it ({err.strerror or err})") from None
    return path


def to_pil(img: Any):
    """A ``(C, H, W)`` tensor in [0, 1] as a PIL image (grey for one channel)."""
    import torch
    from PIL import Image

    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), mode="L")
    return Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy())


def difference(x: Any, ref: Any) -> Any:
    """``|x - ref| * 10``, clipped to [0, 1]: what the side-by-side images show."""
    return ((x - ref).abs() * 10).clamp(0, 1)


def _side_by_side(full: Any, image: Any) -> Any:
    import torch

    return torch.cat([full, image, difference(image, full)], dim=-1)  # full compute | padecache | |difference| x 10


def save_video(outdir: Path, stem: str, video: Any) -> list[str]:
    """An MP4 when an encoder is installed (imageio with ffmpeg), otherwise one PNG per frame."""
    with contextlib.suppress(Exception):
        from diffusers.utils import export_to_video

        path = outdir / f"{stem}.mp4"
        export_to_video([f.permute(1, 2, 0).numpy() for f in video], str(path), fps=8)
        if path.is_file() and path.stat().st_size > 0:
            return [str(path)]
    folder = outdir / stem
    folder.mkdir(exist_ok=True)
    files = []
    for i, frame in enumerate(video):
        p = folder / f"frame-{i:03d}.png"
        to_pil(frame).save(p)
        files.append(str(p))
    return files


def save_images(outdir: Path, images: Any, full: Any = None) -> tuple[str, ...]:
    """``image-{b}.png`` (``video-{b}``) per batch row, and ``compare-{b}`` beside full compute when given."""
    make_output_dir(outdir)
    files: list[str] = []
    for b in range(len(images)):
        if images.dim() == 5:  # video: (B, F, C, H, W)
            files += save_video(outdir, f"video-{b}", images[b])
            continue
        to_pil(images[b]).save(outdir / f"image-{b}.png")
        files.append(str(outdir / f"image-{b}.png"))
        if full is not None:
            to_pil(_side_by_side(full[b], images[b])).save(outdir / f"compare-{b}.png")
            files.append(str(outdir / f"compare-{b}.png"))
    if images.dim() == 5 and full is not None:
        for b in range(len(images)):
            files += save_video(outdir, f"compare-{b}", _side_by_side(full[b], images[b]))
    return tuple(files)


def save_sample(folder: Path, stem: str, images: Any, full: Any = None) -> tuple[str, ...]:
    """``{stem}.png`` (a batch of several: ``{stem}-{b}.png``), ``{stem}-compare.png``; video as :func:`save_video`.

    Returns the names relative to ``folder``.
    """
    make_output_dir(folder)
    files: list[str] = []
    for b in range(len(images)):
        name = stem if len(images) == 1 else f"{stem}-{b}"
        if images.dim() == 5:
            files += save_video(folder, name, images[b])
            if full is not None:
                files += save_video(folder, f"{name}-compare", _side_by_side(full[b], images[b]))
            continue
        to_pil(images[b]).save(folder / f"{name}.png")
        files.append(str(folder / f"{name}.png"))
        if full is not None:
            to_pil(_side_by_side(full[b], images[b])).save(folder / f"{name}-compare.png")
            files.append(str(folder / f"{name}-compare.png"))
    return tuple(Path(f).relative_to(folder).as_posix() for f in files)


def write_payload(outdir: Path, payload: Mapping[str, bytes] | None) -> None:
    """Write a worker's files (relative name -> bytes) under ``outdir``; a name outside it is an error."""
    for name, data in (payload or {}).items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"a worker returned a file outside the output directory: {name!r}")
        dest = outdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
