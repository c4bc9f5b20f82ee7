"""The scenario trainers: real (tiny) PyTorch training through the hook.

torch is imported by :func:`run_scenario`, never at import time of the
package. Every run uses one CPU thread, synthetic data drawn from the seed,
and a few hundred steps, so a run takes about a second.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Any, Callable, Dict, Optional

from . import SCENARIOS

__all__ = ["run_scenario"]


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


# ---------------------------------------------------------------- data

def _regression(torch, seed: int, n: int, d: int = 4, noise: float = 0.1, shift: float = 0.0):
    """y = sin(2 x0) * cos(2 x1) + x2 * x3 / 2 + noise: nothing a line can fit."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + shift
    y = torch.sin(2 * x[:, 0]) * torch.cos(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3]
    y = y + noise * torch.randn(n, generator=g)
    return x, y[:, None]


def _teacher(torch, seed: int, d: int, classes: int):
    g = torch.Generator().manual_seed(10_000 + seed)
    w1 = torch.randn(d, 32, generator=g)
    w2 = torch.randn(32, classes, generator=g)
    return lambda x: (torch.tanh(x @ w1) @ w2).argmax(1)


def _classification(torch, seed: int, n: int, teacher, d: int = 8, shift: float = 0.0, flip: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + shift
    y = teacher(x)
    if flip:
        k = int(n * flip)
        idx = torch.randperm(n, generator=g)[:k]
        y[idx] = torch.randint(0, int(y.max()) + 1, (k,), generator=g)
    return x, y


def _mlp(torch, sizes, act, bias_init: Optional[float] = None):
    nn = torch.nn
    layers = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        if bias_init is not None and i < len(sizes) - 2:
            nn.init.constant_(lin.bias, bias_init)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- the loop

def _train(tm_run, torch, model, opt, loss_fn, data, *, steps: int, batch: int, seed: int,
           evals: Dict[str, Any], eval_every: int, lr_at: Optional[Callable[[int], float]] = None,
           corrupt: Optional[Callable[[int, Any], Any]] = None, delay: float = 0.0, stop_after_nonfinite: int = 5):
    """Minibatch training with a train loss per step and held-out losses
    every ``eval_every`` steps; stops a few steps after a non-finite loss."""
    x, y = data
    n = len(x)
    g = torch.Generator().manual_seed(seed + 7)
    bad = 0
    for step in range(steps):
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
        idx = torch.randint(0, n, (min(batch, n),), generator=g) if batch < n else torch.arange(n)
        xb, yb = x[idx], y[idx]
        if corrupt is not None:
            xb, yb = corrupt(step, (xb, yb))
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        tm_run.log({"loss": value, "lr": opt.param_groups[0]["lr"]}, step=step)
        if step % eval_every == 0 or step == steps - 1:
            with torch.no_grad():
                for split, (xe, ye) in evals.items():
                    tm_run.log({"loss": float(loss_fn(model(xe), ye))}, step=step, split=split)
        if not math.isfinite(value):
            bad += 1
            if bad >= stop_after_nonfinite:
                raise FloatingPointError(f"loss is {value} at step {step}")
        if delay:
            time.sleep(delay)


def _mse(torch):
    return torch.nn.functional.mse_loss


def _ce(torch):
    return torch.nn.functional.cross_entropy


# ---------------------------------------------------------------- scenarios

def _setup(name: str, seed: int, torch, fold: int) -> Dict[str, Any]:
    """Model, optimiser, data and config of a scenario."""
    nn = torch.nn
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    steps, batch, eval_every = 400, 32, 20
    lr_at = corrupt = None
    tags: Dict[str, Any] = {}
    if name in ("healthy_noisy", "healthy_spike", "healthy_late", "bias_linear", "bias_mlp", "dead_relu",
                "lr_oscillating", "overfit", "mismatch"):
        n = 64 if name == "overfit" else 1024
        x, y = _regression(torch, seed, n, noise=0.5 if name == "overfit" else 0.1)
        xv, yv = _regression(torch, seed + 500, 512, noise=0.5 if name == "overfit" else 0.1)
        config = {"task": "regression", "target_var": float(y.var()), "data": f"sine4-{seed}"}
        loss_fn = _mse(torch)
        evals = {"val": (xv, yv)}
        if name == "mismatch":  # the test inputs come from elsewhere: x2, x3 shifted by 1.5
            xt, _ = _regression(torch, seed + 900, 512)
            xt[:, 2:] += 1.5
            yt = torch.sin(2 * xt[:, 0]) * torch.cos(2 * xt[:, 1]) + 0.5 * xt[:, 2] * xt[:, 3]
            evals["test"] = (xt, yt[:, None] + 0.1 * torch.randn(512, 1))
        if name == "bias_linear":
            model = nn.Linear(4, 1)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        elif name == "dead_relu":
            model = _mlp(torch, [4, 64, 64, 1], nn.ReLU, bias_init=-8.0)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        elif name == "lr_oscillating":
            model = _mlp(torch, [4, 64, 64, 1], nn.Tanh)
            opt = torch.optim.Adam(model.parameters(), lr=0.003)
            lr_at = lambda s: 0.003 if (s // 10) % 2 == 0 else 0.2  # noqa: E731
        elif name == "overfit":
            model = _mlp(torch, [4, 256, 256, 1], nn.ReLU)
            opt = torch.optim.Adam(model.parameters(), lr=3e-4)
            steps, batch, eval_every = 600, 64, 10
            config["data"] = f"sine4-few-{seed}"
        else:
            model = _mlp(torch, [4, 64, 64, 1], nn.Tanh)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            if name == "healthy_noisy":
                batch = 8
                config["data"] = f"sine4-noisy-{seed}"
            elif name == "healthy_spike":
                config["data"] = f"sine4-spike-{seed}"

                def corrupt(step, b):
                    xb, yb = b
                    return (xb, yb * 8.0) if 180 <= step < 183 else (xb, yb)
            elif name == "healthy_late":
                config["data"] = f"sine4-late-{seed}"
                steps = 500
                lr_at = lambda s: 1e-7 if s < 80 else 3e-3  # noqa: E731
        if name not in ("bias_linear", "bias_mlp"):
            config["data"] += "-" + name
    elif name in ("healthy_gap", "opt_shallow", "opt_deep", "lr_small", "cv_fold"):
        d, classes = 8, 4
        teacher = _teacher(torch, seed, d, classes)
        n = 768 if name == "healthy_gap" else 2048
        x, y = _classification(torch, seed, n, teacher, d)
        xv, yv = _classification(torch, seed + 500, 512, teacher, d)
        config = {"task": "classification", "num_classes": classes, "data": f"teacher8-{seed}"}
        loss_fn = _ce(torch)
        evals = {"val": (xv, yv)}
        if name == "healthy_gap":
            model = _mlp(torch, [d, 64, classes], nn.ReLU)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.2)
            config["data"] += "-gap"
        elif name == "opt_shallow":
            model = _mlp(torch, [d, 32, 32, classes], nn.Tanh)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        elif name == "opt_deep":
            model = _mlp(torch, [d] + [32] * 19 + [classes], nn.Sigmoid)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        elif name == "lr_small":
            model = _mlp(torch, [d, 64, 64, classes], nn.ReLU)
            opt = torch.optim.SGD(model.parameters(), lr=1e-6)
            config["data"] += "-lrsmall"
        else:  # cv_fold: fold k of 5 holds out the k-th fifth
            k, folds = fold % 5, 5
            pool_x, pool_y = _classification(torch, seed, 1280, teacher, d)
            part = len(pool_x) // folds
            held = torch.zeros(len(pool_x), dtype=torch.bool)
            held[k * part:(k + 1) * part] = True
            x, y = pool_x[~held], pool_y[~held]
            evals = {"val": (pool_x[held], pool_y[held])}
            model = _mlp(torch, [d, 64, classes], nn.Tanh)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            steps = 250
            config["data"] += "-cv"
            tags = {"fold": k, "group": f"cv5-mlp-{seed}"}
    else:
        raise KeyError(name)
    return dict(model=model, opt=opt, loss_fn=loss_fn, data=(x, y), evals=evals, config=config,
                steps=steps, batch=batch, eval_every=eval_every, lr_at=lr_at, corrupt=corrupt, tags=tags)


def _setup_diverge(seed: int, torch) -> Dict[str, Any]:
    nn = torch.nn
    torch.manual_seed(seed * 1000 + 1)
    x, y = _regression(torch, seed, 1024)
    x = x * 6.0  # unnormalised inputs: curvature far beyond what lr 0.05 tolerates
    xv, yv = _regression(torch, seed + 500, 512)
    xv = xv * 6.0
    model = _mlp(torch, [4, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    lr_at = lambda s: 0.002 if s < 120 else 0.3  # noqa: E731  # a schedule bug at step 120
    config = {"task": "regression", "target_var": float(y.var()), "data": f"sine4-x6-{seed}"}
    return dict(model=model, opt=opt, loss_fn=_mse(torch), data=(x, y), evals={"val": (xv, yv)}, config=config,
                steps=400, batch=32, eval_every=20, lr_at=lr_at, corrupt=None, tags={})


def run_scenario(name: str, directory: str, seed: int = 0, *, fold: int = 0, delay: float = 0.0,
                 steps: Optional[int] = None, watch_every: int = 10) -> str:
    """Train scenario ``name`` and write its stream under ``directory``;
    return the stream's path. ``delay`` sleeps that many seconds after each
    step (to watch it live); ``steps`` overrides the scenario's length."""
    if name not in SCENARIOS:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    torch = _torch()
    from .. import hook

    s = _setup_diverge(seed, torch) if name == "diverge_nan" else _setup(name, seed, torch, fold)
    if steps is not None:
        s["steps"] = int(steps)
    tags = {"scenario": name, "seed": seed, **s["tags"]}
    run_name = f"{name}-s{seed}" + (f"-f{fold}" if name == "cv_fold" else "")
    run = hook.init(run_name, dir=directory, config=s["config"], model=s["model"], tags=tags,
                    watch_every=watch_every, heartbeat_every=3600)
    try:
        _train(run, torch, s["model"], s["opt"], s["loss_fn"], s["data"], steps=s["steps"], batch=s["batch"],
               seed=seed, evals=s["evals"], eval_every=s["eval_every"], lr_at=s["lr_at"], corrupt=s["corrupt"],
               delay=delay)
    except FloatingPointError as e:
        run.close(status="crashed", error=e)
    else:
        run.close()
    return run.path
