"""The ``epochs`` family: one record per epoch, as Keras's CSVLogger writes
them (the mean training loss and accuracy of the epoch, the learning rate,
the validation values), 5 to 300 epochs, and nothing else: no task declared,
no model description, no gradients.

The faults are those seeded into such logs by people studying training
bugs: all-zero initialisation (at chance for the whole run), a learning
rate far too large (a jump, then a loss bouncing near chance; a loss growing without
bound but finite when the run ends, from 1e6 to 1e27; NaN), far too small
(a crawl from epoch 0), and overfitting on a few noisy samples. Some runs log
their validation accuracy alone, no validation loss (``SCORE_ONLY``).
"""
from __future__ import annotations

import zlib

from .classic import ce, mse
from .data import blobs, classification, mlp, regression, teacher
from .loops import Setup

__all__ = ["SETUPS"]

D, CLASSES = 16, 10


def _classify(name, seed, torch, *, n=1024, n_val=512, flip=0.0, classes=CLASSES):
    if name == "ep_lr_huge":  # a harder task (a random network's labels), where a huge step undoes everything
        label_of = teacher(torch, seed, D, classes)
        x, y = classification(torch, seed, n, label_of, D)
        xv, yv = classification(torch, seed + 500, n_val, label_of, D)
        return (x, y), {"val": (xv, yv)}
    x, y = blobs(torch, seed, n, D, classes, spread=1.6)
    xv, yv = blobs(torch, seed, n_val, D, classes, spread=1.6, draw=1)
    if flip:
        g = torch.Generator().manual_seed(seed + 1)
        for labels in (y, yv):
            idx = torch.randperm(len(labels), generator=g)[:int(len(labels) * flip)]
            labels[idx] = torch.randint(0, classes, (len(idx),), generator=g)
    return (x, y), {"val": (xv, yv)}


#: scenarios whose evaluations log their accuracy alone (no validation loss), and the scenario they copy
SCORE_ONLY = {"ep_healthy_acc": "ep_healthy", "ep_noisy_val_acc": "ep_noisy_val", "ep_overfit_acc": "ep_overfit",
              "ep_overfit_mild_acc": "ep_overfit_mild"}


def _setup(name: str, seed: int, torch, fold: int) -> Setup:
    if name in SCORE_ONLY:  # the same training, seeded as the copy, logging validation accuracy alone
        s = _setup(SCORE_ONLY[name], seed, torch, fold)
        s.held_loss = False
        return s
    nn = torch.nn
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)
    config = {"data": f"ep-{name}-{seed}"}
    per_epoch = dict(per_epoch=True, accuracy=True, watch_every=0, describe=False, eval_every=1)
    if name == "ep_regression":
        x, y = regression(torch, seed, 512)
        xv, yv = regression(torch, seed + 500, 256)
        model = mlp(torch, [4, 64, 64, 1], nn.Tanh)
        return Setup(model, torch.optim.Adam(model.parameters(), lr=2e-3), mse(torch), (x, y), {"val": (xv, yv)},
                     config, steps=120, batch=64, **{**per_epoch, "accuracy": False})
    if name in ("ep_explode_mild", "ep_explode_severe", "ep_nan"):
        return _growing(name, seed, torch, config, per_epoch)
    classes = 2 if name == "ep_binary" else CLASSES
    n, n_val, flip = 1024, 512, 0.0
    if name == "ep_noisy_val":
        n_val = 40
    elif name == "ep_overfit":
        n, flip = 128, 0.3
    elif name == "ep_overfit_mild":
        n, flip = 512, 0.1
    data, evals = _classify(name, seed, torch, n=n, n_val=n_val, flip=flip, classes=classes)
    hidden, act, epochs, batch, lr, opt_kind, scale, decay = [64], nn.ReLU, 40, 64, 1e-3, "adam", None, 0.1
    if name == "ep_short":
        epochs = 5
    elif name == "ep_long":
        hidden, epochs, batch, lr = [32], 300, 512, 1e-3
    elif name == "ep_binary":
        epochs, decay = 30, 0.5
    elif name == "ep_sgd":
        epochs, opt_kind, lr = 80, "sgd", 0.005
    elif name == "ep_noisy_val":
        epochs, decay = 40, 0.5
    elif name == "ep_wide":
        hidden, epochs = [256], 30
    elif name == "ep_overfit":
        hidden, epochs, batch, lr, decay = [256, 256], 150, 32, 1e-3, 0.0
    elif name == "ep_overfit_mild":
        hidden, epochs, batch, lr, decay = [64], 80, 32, 2e-3, 0.0
    elif name in ("ep_chance", "ep_chance_long"):  # all-zero initialisation: the hidden units never move
        hidden, act, scale = [64, 64], nn.Tanh, 0.0
        epochs = 100 if name == "ep_chance" else 250
        if name == "ep_chance_long":
            batch, opt_kind, lr = 256, "sgd", 0.05
    elif name == "ep_lr_huge":
        lr, epochs, decay = 1.0, 50, 0.0
    elif name == "ep_crawl":
        lr, epochs, decay = 1e-5, 60, 0.0
    model = mlp(torch, [D, *hidden, classes], act, weight_scale=scale)
    if opt_kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=decay / 10)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    return Setup(model, opt, ce(torch), data, evals, config, steps=epochs, batch=batch, **per_epoch)


def _growing(name: str, seed: int, torch, config, per_epoch) -> Setup:
    """A linear regression trained by full-batch gradient descent with a step
    beyond the stable one: the error grows by a set factor each epoch (to
    ~1e6 or ~1e27 after 60 epochs, finite; or past float32's range: NaN)."""
    g = torch.Generator().manual_seed(seed)
    d, n = 8, 256
    x = torch.randn(n, d, generator=g) * 3.0
    w = torch.randn(d, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(n, 1, generator=g)
    xv = torch.randn(128, d, generator=g) * 3.0
    yv = xv @ w + 0.1 * torch.randn(128, 1, generator=g)
    lam = float(torch.linalg.eigvalsh(2.0 * x.T @ x / n).max())  # the loss's largest curvature
    growth = {"ep_explode_mild": 10 ** (6 / 120), "ep_explode_severe": 10 ** (27 / 120), "ep_nan": 3.0}[name]
    model = torch.nn.Linear(d, 1)
    opt = torch.optim.SGD(model.parameters(), lr=(1.0 + growth) / lam)
    epochs = 60
    return Setup(model, opt, mse(torch), (x, y), {"val": (xv, yv)}, config, steps=epochs, batch=n,
                 **{**per_epoch, "accuracy": False})


SETUPS = {name: _setup for name in (
    "ep_short", "ep_healthy", "ep_long", "ep_binary", "ep_sgd", "ep_noisy_val", "ep_wide", "ep_regression",
    "ep_overfit", "ep_overfit_mild", "ep_chance", "ep_chance_long", "ep_explode_mild", "ep_explode_severe",
    "ep_nan", "ep_lr_huge", "ep_crawl", *SCORE_ONLY)}
