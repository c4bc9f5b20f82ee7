"""Families whose healthy runs look unlike a textbook curve.

``label_noise``: part of the labels replaced by random ones, in training and
held-out data alike: the training loss levels off well above 0 and no model
can do better. ``imbalance``: one class far more frequent than the others: the
loss starts below ln C and the accuracy is high from the first step.
``saddle``: deep linear nets from a small initialisation sit on a plateau
before the loss drops (a saddle point), and from too small a one never leave
it.
"""
from __future__ import annotations

import functools
import zlib

from .classic import ce, mse
from .data import blobs, linear_teacher, mlp
from .loops import Setup

__all__ = ["SETUPS"]


def _seeded(torch, name: str, seed: int) -> None:
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)


def _rings(torch, seed: int, n: int, d: int, classes: int):
    """The label is which of ``classes`` equally likely shells around the
    origin a point falls in (chi-square quantiles of its squared norm)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    edges = torch.quantile(torch.randn(20_000, d, generator=torch.Generator().manual_seed(5)).pow(2).sum(1),
                           torch.linspace(0, 1, classes + 1)[1:-1])
    return x, torch.bucketize(x.pow(2).sum(1), edges)


def _flipped(torch, seed: int, data, flip: float, classes: int):
    x, y = data
    g = torch.Generator().manual_seed(seed + 77)
    idx = torch.randperm(len(y), generator=g)[:int(len(y) * flip)]
    y = y.clone()
    y[idx] = torch.randint(0, classes, (len(idx),), generator=g)
    return x, y


def _label_noise(name: str, seed: int, torch, fold: int) -> Setup:
    nn = torch.nn
    _seeded(torch, name, seed)
    d, classes = 8, 4
    flip = {"ln_noise20": 0.2, "ln_bias_linear": 0.1, "ln_bias_mlp": 0.1}.get(name, 0.35)
    n = 256 if name == "ln_overfit" else 2048
    if name.startswith("ln_bias"):  # rings: a boundary no line can draw
        x, y = _flipped(torch, seed, _rings(torch, seed, n, d, classes), flip, classes)
        xv, yv = _flipped(torch, seed + 1, _rings(torch, seed + 500, 512, d, classes), flip, classes)
    else:  # separable clusters: the random labels are the only thing no model can fit
        x, y = _flipped(torch, seed, blobs(torch, seed, n, d, classes, spread=0.6), flip, classes)
        xv, yv = _flipped(torch, seed + 1, blobs(torch, seed, 512, d, classes, spread=0.6, draw=1), flip, classes)
    config = {"task": "classification", "num_classes": classes, "data": f"{name}-{seed}"}
    steps, lr, decay = 500, 3e-3, 0.05
    if name == "ln_bias_linear":
        config["data"] = f"ln-bias-{seed}"
        model = nn.Linear(d, classes)
        lr = 1e-2
    elif name == "ln_bias_mlp":
        config["data"] = f"ln-bias-{seed}"
        model = mlp(torch, [d, 128, 128, classes], nn.ReLU)
    elif name == "ln_regularised":
        model = mlp(torch, [d, 256, 256, classes], nn.ReLU)
        lr, decay = 1e-3, 0.5
    elif name == "ln_overfit":
        model = mlp(torch, [d, 256, 256, classes], nn.ReLU)
        steps, lr, decay = 600, 1e-3, 0.0
    else:
        model = mlp(torch, [d, 64, classes], nn.ReLU)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    return Setup(model, opt, ce(torch), (x, y), {"val": (xv, yv)}, config, steps=steps, batch=64, eval_every=25,
                 accuracy=True)


PRIOR = (0.85, 0.10, 0.03, 0.02)


def _imbalance(name: str, seed: int, torch, fold: int) -> Setup:
    nn = torch.nn
    _seeded(torch, name, seed)
    d, classes = 8, 4
    x, y = blobs(torch, seed, 2048, d, classes, spread=1.2, prior=PRIOR)
    evals = {"val": blobs(torch, seed, 512, d, classes, spread=1.2, draw=1, prior=PRIOR)}
    config = {"task": "classification", "num_classes": classes, "data": f"{name}-{seed}"}
    loss_fn = ce(torch)
    steps, batch, eval_every = 500, 64, 25
    model = mlp(torch, [d, 64, classes], nn.ReLU)
    if name == "im_weighted":
        weight = 1.0 / torch.tensor(PRIOR)
        loss_fn = functools.partial(torch.nn.functional.cross_entropy, weight=weight / weight.sum() * classes)
    elif name == "im_collapsed":  # every hidden unit dead: only the output bias learns, the prior
        model = mlp(torch, [d, 64, 64, classes], nn.ReLU, bias_init=-10.0)
        x, y = x[:512], y[:512]
        steps, batch, eval_every = 1000, 512, 50
    elif name == "im_label_shift":  # deployed where every class is as frequent
        evals["test"] = blobs(torch, seed, 512, d, classes, spread=1.2, draw=2)
    lr, decay = {"im_collapsed": (0.05, 0.0), "im_weighted": (1e-3, 0.3)}.get(name, (3e-3, 0.05))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    return Setup(model, opt, loss_fn, (x, y), evals, config, steps=steps, batch=batch, eval_every=eval_every,
                 accuracy=True)


def _saddle(name: str, seed: int, torch, fold: int) -> Setup:
    _seeded(torch, name, seed)
    d, width = 8, 16
    scales = {"sd_two_stages": (3.0, 1.0), "sd_never": (2.0, 2.0)}.get(name, (3.0, 2.0, 1.0))
    x, y = linear_teacher(torch, seed, 512, d, scales)
    xv, yv = linear_teacher(torch, seed, 256, d, scales, draw=1)
    depth, scale, steps = {"sd_break_early": (4, 0.15, 500), "sd_break_late": (4, 0.09, 500),
                           "sd_two_stages": (4, 0.1, 600), "sd_pair_shallow": (2, None, 500),
                           "sd_pair_deep": (8, 0.1, 500), "sd_never": (6, 0.05, 500)}[name]
    model = mlp(torch, [d] + [width] * (depth - 1) + [d], None, weight_scale=scale)
    config = {"task": "regression", "target_var": float(y.var()),
              "data": f"sd-pair-{seed}" if name.startswith("sd_pair") else f"{name}-{seed}"}
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return Setup(model, opt, mse(torch), (x, y), {"val": (xv, yv)}, config, steps=steps, batch=128, eval_every=25)


SETUPS = {
    **{name: _label_noise for name in ("ln_noise20", "ln_noise35", "ln_regularised", "ln_bias_linear",
                                       "ln_bias_mlp", "ln_overfit")},
    **{name: _imbalance for name in ("im_healthy", "im_weighted", "im_collapsed", "im_label_shift")},
    **{name: _saddle for name in ("sd_break_early", "sd_break_late", "sd_two_stages", "sd_pair_shallow",
                                  "sd_pair_deep", "sd_never")},
}
