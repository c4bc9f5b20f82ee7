"""The ``schedules`` family: learning-rate schedules, the rate logged at
every step (warm-up, cosine, step decay, one-cycle), and the faults that
live in schedules: a peak far too small (a crawl) or far too large (NaN
before the peak), a rate left at 0 by a bug, a constant rate that keeps the
loss bouncing above its start, one huge first step.

The ``finetune`` family: a model trained first (off the record, as a
pretrained checkpoint is), then fine-tuned on shifted data: a start that is
already good.
"""
from __future__ import annotations

import math
import zlib
from typing import Callable

from .classic import ce
from .data import blobs, classification, mlp, teacher
from .loops import Setup, train_steps

__all__ = ["SETUPS"]

D, CLASSES, STEPS = 16, 10, 500


def warmup_cosine(peak: float, warmup: int, total: int, floor: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up from 0 to ``peak``, then a cosine down to ``floor`` at ``total`` (and ``floor`` after)."""
    def lr(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return lr


def _blobs_data(torch, seed: int, n: int = 2048, n_val: int = 512, shift: float = 0.0):
    x, y = blobs(torch, seed, n, D, CLASSES, spread=1.6)
    xv, yv = blobs(torch, seed, n_val, D, CLASSES, spread=1.6, draw=1)
    return (x + shift, y), {"val": (xv + shift, yv)}


def _config(name: str, seed: int):
    return {"task": "classification", "num_classes": CLASSES, "data": f"{name}-{seed}"}


def _schedule(name: str, seed: int, torch, fold: int) -> Setup:
    nn = torch.nn
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    data, evals = _blobs_data(torch, seed)
    model = mlp(torch, [D, 64, CLASSES], nn.ReLU)
    adam = lambda lr: torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)  # noqa: E731
    steps, lr_at = STEPS, None
    if name == "sch_warmup_cosine":
        opt, lr_at = adam(3e-3), warmup_cosine(3e-3, 50, STEPS)
    elif name == "sch_step_decay":
        opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
        lr_at = lambda s: 0.02 * (0.1 ** ((s >= STEPS // 2) + (s >= 3 * STEPS // 4)))  # noqa: E731
    elif name == "sch_cosine_flat":
        opt, lr_at = adam(3e-3), warmup_cosine(3e-3, 1, 300)
    elif name == "sch_onecycle":
        up = int(0.3 * STEPS)
        opt = adam(5e-3)
        lr_at = lambda s: 2e-4 + (5e-3 - 2e-4) * (s / up if s < up else  # noqa: E731
                                                  0.5 * (1 + math.cos(math.pi * (s - up) / (STEPS - up))))
    elif name == "sch_crawl":
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        lr_at = warmup_cosine(3e-4, 50, STEPS)
    elif name == "sch_zero_lr":
        opt = adam(1e-3)
        lr_at = lambda s: 1e-3 * (s + 1) / 10 if s < 10 else 0.0  # noqa: E731 - the bug: no decay phase at all
    elif name == "sch_osc_high":
        label_of = teacher(torch, seed, D, CLASSES)
        data = classification(torch, seed, 2048, label_of, D)
        evals = {"val": classification(torch, seed + 500, 512, label_of, D)}
        opt = torch.optim.Adam(model.parameters(), lr=1.0)
    elif name == "sch_peak_nan":
        opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
        lr_at = warmup_cosine(20.0, 250, STEPS)
    elif name == "sch_blowup":
        opt = adam(1e-3)
        lr_at = lambda s: 5.0 if s < 3 else 1e-3  # noqa: E731 - a warm-up written the wrong way round
    else:
        raise KeyError(name)
    return Setup(model, opt, ce(torch), data, evals, _config(name, seed), steps=steps, batch=64, eval_every=25,
                 lr_at=lr_at, accuracy=True)


def _pretrained(torch, seed: int, d: int = D, classes: int = CLASSES, steps: int = 300):
    """A model trained on the original task (not logged): the fine-tuning's start."""
    data, _ = _blobs_data(torch, seed)
    model = mlp(torch, [d, 64, 64, classes], torch.nn.ReLU)
    s = Setup(model, torch.optim.Adam(model.parameters(), lr=3e-3), ce(torch), data, {}, {}, steps=steps,
              batch=64)

    class Quiet:  # the pretraining is off the record
        def log(self, *a, **k):
            pass
    train_steps(Quiet(), torch, s, seed)
    return model


def _warmup_rise(name: str, seed: int, torch, fold: int) -> Setup:
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    model = _pretrained(torch, seed)
    data, evals = _blobs_data(torch, seed, n=4096)  # more of the same data
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.1)
    return Setup(model, opt, ce(torch), data, evals, _config(name, seed), steps=600, batch=64, eval_every=25,
                 lr_at=warmup_cosine(1e-2, 100, 600), accuracy=True)


def _finetune(name: str, seed: int, torch, fold: int) -> Setup:
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    model = _pretrained(torch, seed)
    data, evals = _blobs_data(torch, seed, n=1024, shift=0.5)  # the new domain: shifted inputs
    steps, lr, batch = 400, 3e-4, 32
    params = list(model.parameters())
    if name == "ft_head":
        for p in params[:-2]:
            p.requires_grad_(False)
        params = params[-2:]
    elif name == "ft_short":
        steps = 100
    elif name == "ft_overfit":
        x, y = data
        g = torch.Generator().manual_seed(seed + 3)
        y = y.clone()
        y[torch.randperm(len(y), generator=g)[:len(y) // 4]] = torch.randint(0, CLASSES, (len(y) // 4,),
                                                                              generator=g)
        data = (x[:32], y[:32])
        steps, lr, batch = 600, 3e-3, 32
    elif name == "ft_lr_large":  # the pretraining's SGD rate, with momentum, kept for fine-tuning
        return Setup(model, torch.optim.SGD(params, lr=0.5, momentum=0.9), ce(torch), data, evals,
                     _config(name, seed), steps=steps, batch=batch, eval_every=20, accuracy=True)
    elif name == "ft_forget":  # new labels for the same inputs; the test split is the old task
        old = _blobs_data(torch, seed, n=16, n_val=512)[1]["val"]
        perm = torch.roll(torch.arange(CLASSES), 1)
        x, y = data
        data = (x, perm[y])
        xv, yv = evals["val"]
        evals = {"val": (xv, perm[yv]), "test": old}
        lr = 1e-3
    opt = torch.optim.Adam(params, lr=lr)
    return Setup(model, opt, ce(torch), data, evals, _config(name, seed), steps=steps, batch=batch,
                 eval_every=20, accuracy=True)


SETUPS = {
    **{name: _schedule for name in ("sch_warmup_cosine", "sch_step_decay", "sch_cosine_flat", "sch_onecycle",
                                    "sch_crawl", "sch_zero_lr", "sch_osc_high", "sch_peak_nan", "sch_blowup")},
    "sch_warmup_rise": _warmup_rise,
    **{name: _finetune for name in ("ft_healthy", "ft_head", "ft_short", "ft_overfit", "ft_lr_large", "ft_forget")},
}
