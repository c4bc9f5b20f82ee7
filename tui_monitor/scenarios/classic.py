"""The first scenarios: the two families the corpus started with.

``regression``: an MLP on a nonlinear regression task (noisy, spiking and
late-starting healthy runs, the model-bias pair, dead units, an oscillating
learning rate, NaN divergence, overfitting, a shifted test set).
``classification``: a teacher network's labels (a mild generalisation gap,
the optimization pair of a shallow and a 20-layer net, a learning rate far
too small, the folds of a cross-validation).
"""
from __future__ import annotations

import zlib
from typing import Any, Dict

from .data import classification, mlp, regression, teacher
from .loops import Setup

__all__ = ["SETUPS", "mse", "ce"]


def mse(torch):
    return torch.nn.functional.mse_loss


def ce(torch):
    return torch.nn.functional.cross_entropy


def setup(name: str, seed: int, torch, fold: int) -> Setup:
    """Model, optimiser, data and config of a scenario."""
    nn = torch.nn
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    steps, batch, eval_every = 400, 32, 20
    lr_at = corrupt = None
    tags: Dict[str, Any] = {}
    if name in ("healthy_noisy", "healthy_spike", "healthy_late", "healthy_sgd", "healthy_wide", "bias_linear",
                "bias_mlp", "dead_relu", "lr_oscillating", "overfit", "mismatch"):
        n = 64 if name == "overfit" else 1024
        x, y = regression(torch, seed, n, noise=0.5 if name == "overfit" else 0.1)
        xv, yv = regression(torch, seed + 500, 512, noise=0.5 if name == "overfit" else 0.1)
        config = {"task": "regression", "target_var": float(y.var()), "data": f"sine4-{seed}"}
        loss_fn = mse(torch)
        evals = {"val": (xv, yv)}
        if name == "mismatch":  # the test inputs come from elsewhere: x2, x3 shifted by 1.5
            xt, _ = regression(torch, seed + 900, 512)
            xt[:, 2:] += 1.5
            yt = torch.sin(2 * xt[:, 0]) * torch.cos(2 * xt[:, 1]) + 0.5 * xt[:, 2] * xt[:, 3]
            evals["test"] = (xt, yt[:, None] + 0.1 * torch.randn(512, 1))
        if name == "bias_linear":
            model = nn.Linear(4, 1)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        elif name == "dead_relu":
            model = mlp(torch, [4, 64, 64, 1], nn.ReLU, bias_init=-8.0)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        elif name == "lr_oscillating":
            model = mlp(torch, [4, 64, 64, 1], nn.Tanh)
            opt = torch.optim.Adam(model.parameters(), lr=0.003)
            lr_at = lambda s: 0.003 if (s // 10) % 2 == 0 else 0.2  # noqa: E731
        elif name == "healthy_sgd":
            model = mlp(torch, [4, 64, 64, 1], nn.Tanh)
            opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        elif name == "healthy_wide":
            model = mlp(torch, [4, 512, 1], nn.ReLU)
            opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
        elif name == "overfit":
            model = mlp(torch, [4, 256, 256, 1], nn.ReLU)
            opt = torch.optim.Adam(model.parameters(), lr=3e-4)
            steps, batch, eval_every = 600, 64, 10
            config["data"] = f"sine4-few-{seed}"
        else:
            model = mlp(torch, [4, 64, 64, 1], nn.Tanh)
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
        label_of = teacher(torch, seed, d, classes)
        n = 768 if name == "healthy_gap" else 2048
        x, y = classification(torch, seed, n, label_of, d)
        xv, yv = classification(torch, seed + 500, 512, label_of, d)
        config = {"task": "classification", "num_classes": classes, "data": f"teacher8-{seed}"}
        loss_fn = ce(torch)
        evals = {"val": (xv, yv)}
        if name == "healthy_gap":
            model = mlp(torch, [d, 64, classes], nn.ReLU)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.2)
            config["data"] += "-gap"
        elif name == "opt_shallow":
            model = mlp(torch, [d, 32, 32, classes], nn.Tanh)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        elif name == "opt_deep":
            model = mlp(torch, [d] + [32] * 19 + [classes], nn.Sigmoid)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        elif name == "lr_small":
            model = mlp(torch, [d, 64, 64, classes], nn.ReLU)
            opt = torch.optim.SGD(model.parameters(), lr=1e-6)
            config["data"] += "-lrsmall"
        else:  # cv_fold: fold k of 5 holds out the k-th fifth
            k, folds = fold % 5, 5
            pool_x, pool_y = classification(torch, seed, 1280, label_of, d)
            part = len(pool_x) // folds
            held = torch.zeros(len(pool_x), dtype=torch.bool)
            held[k * part:(k + 1) * part] = True
            x, y = pool_x[~held], pool_y[~held]
            evals = {"val": (pool_x[held], pool_y[held])}
            model = mlp(torch, [d, 64, classes], nn.Tanh)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            steps = 250
            config["data"] += "-cv"
            tags = {"fold": k, "group": f"cv5-mlp-{seed}"}
    else:
        raise KeyError(name)
    return Setup(model=model, opt=opt, loss_fn=loss_fn, data=(x, y), evals=evals, config=config,
                 steps=steps, batch=batch, eval_every=eval_every, lr_at=lr_at, corrupt=corrupt, tags=tags)


def setup_diverge(name: str, seed: int, torch, fold: int) -> Setup:
    nn = torch.nn
    torch.manual_seed(seed * 1000 + 1)
    x, y = regression(torch, seed, 1024)
    x = x * 6.0  # unnormalised inputs: curvature far beyond what lr 0.05 tolerates
    xv, yv = regression(torch, seed + 500, 512)
    xv = xv * 6.0
    model = mlp(torch, [4, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    lr_at = lambda s: 0.002 if s < 120 else 0.3  # noqa: E731  # a schedule bug at step 120
    config = {"task": "regression", "target_var": float(y.var()), "data": f"sine4-x6-{seed}"}
    return Setup(model=model, opt=opt, loss_fn=mse(torch), data=(x, y), evals={"val": (xv, yv)}, config=config,
                 steps=400, batch=32, eval_every=20, lr_at=lr_at)


#: scenario name -> setup(name, seed, torch, fold)
SETUPS = {**{name: setup for name in ("healthy_sgd", "healthy_wide", "healthy_noisy", "healthy_spike", "healthy_late", "bias_linear", "bias_mlp", "dead_relu", "lr_oscillating", "overfit", "mismatch", "healthy_gap", "opt_shallow", "opt_deep", "lr_small", "cv_fold")},
          "diverge_nan": setup_diverge}
