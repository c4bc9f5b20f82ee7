"""Synthetic data and small models for the scenarios (torch is passed in:
this module imports nothing heavy).

Every generator draws from its own ``torch.Generator`` seeded by the
caller, so a scenario's data depends on its seed only.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

__all__ = ["regression", "regression_targets", "teacher", "classification", "blobs", "linear_teacher", "mlp",
           "accuracy", "shuffled_batches"]


def regression_targets(torch, x):
    """y = sin(2 x0) * cos(2 x1) + x2 * x3 / 2: nothing a line can fit."""
    return torch.sin(2 * x[:, 0]) * torch.cos(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3]


def regression(torch, seed: int, n: int, d: int = 4, noise: float = 0.1, shift: float = 0.0):
    """Inputs and ``(n, 1)`` targets of :func:`regression_targets` plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + shift
    y = regression_targets(torch, x) + noise * torch.randn(n, generator=g)
    return x, y[:, None]


def teacher(torch, seed: int, d: int, classes: int, prior: Optional[Sequence[float]] = None,
            sharpness: float = 1.0):
    """A random tanh network whose argmax is the label; a lower
    ``sharpness`` (scale of its first layer) makes it smoother, easier to
    learn. With ``prior`` the logits are offset so that the classes come in
    about those proportions (a class imbalance)."""
    g = torch.Generator().manual_seed(10_000 + seed)
    w1 = torch.randn(d, 32, generator=g) * sharpness
    w2 = torch.randn(32, classes, generator=g)
    offset = torch.zeros(classes)
    if prior is not None:
        # fit the offsets on a sample so that the label frequencies match the prior
        x = torch.randn(4096, d, generator=g)
        logits = torch.tanh(x @ w1) @ w2
        target = torch.tensor(list(prior), dtype=torch.float32)
        for _ in range(200):
            freq = torch.bincount((logits + offset).argmax(1), minlength=classes).float() / len(x)
            offset = offset + 2.0 * (target - freq)
    return lambda x: (torch.tanh(x @ w1) @ w2 + offset).argmax(1)


def classification(torch, seed: int, n: int, label_of: Callable[[Any], Any], d: int = 8, shift: float = 0.0,
                   flip: float = 0.0, classes: Optional[int] = None):
    """Inputs and the teacher's labels; ``flip`` of them replaced by a label
    drawn uniformly (label noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + shift
    y = label_of(x)
    if flip:
        k = int(n * flip)
        idx = torch.randperm(n, generator=g)[:k]
        c = classes if classes is not None else int(y.max()) + 1
        y[idx] = torch.randint(0, c, (k,), generator=g)
    return x, y


def blobs(torch, seed: int, n: int, d: int, classes: int, spread: float = 1.0, draw: int = 0,
          prior: Optional[Sequence[float]] = None):
    """Gaussian clusters, one per class (centres from ``seed``, points from
    ``seed`` and ``draw``): a boundary a small MLP learns, with overlap (and
    so a Bayes error) set by ``spread``; ``prior``: class proportions."""
    g = torch.Generator().manual_seed(30_000 + seed)
    centres = torch.randn(classes, d, generator=g) * 1.5
    gx = torch.Generator().manual_seed(40_000 + seed * 101 + draw)
    if prior is None:
        y = torch.randint(0, classes, (n,), generator=gx)
    else:
        y = torch.multinomial(torch.tensor(list(prior), dtype=torch.float32), n, replacement=True, generator=gx)
    x = centres[y] + spread * torch.randn(n, d, generator=gx)
    return x, y


def linear_teacher(torch, seed: int, n: int, d: int, scales: Sequence[float], noise: float = 0.01, draw: int = 0):
    """A linear regression task whose map (from ``seed``) has the given
    singular values (a deep linear net learns each mode after a plateau:
    saddle points); ``draw`` picks another sample of the same task."""
    g = torch.Generator().manual_seed(20_000 + seed)
    u, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    v, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    s = torch.zeros(d)
    s[:len(scales)] = torch.tensor(list(scales), dtype=torch.float32)
    w = u @ torch.diag(s) @ v.T
    gx = torch.Generator().manual_seed(seed * 101 + draw)
    x = torch.randn(n, d, generator=gx)
    y = x @ w.T + noise * torch.randn(n, d, generator=gx)
    return x, y


def mlp(torch, sizes: Sequence[int], act, bias_init: Optional[float] = None, weight_scale: Optional[float] = None):
    """A plain MLP; ``bias_init`` sets the hidden biases, ``weight_scale``
    draws every weight from N(0, scale^2) (0: all zero)."""
    nn = torch.nn
    layers = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1], bias=act is not None)
        if weight_scale is not None:
            with torch.no_grad():
                lin.weight.normal_(0.0, weight_scale) if weight_scale else lin.weight.zero_()
                if lin.bias is not None:
                    lin.bias.zero_()
        if bias_init is not None and i < len(sizes) - 2:
            nn.init.constant_(lin.bias, bias_init)
        layers.append(lin)
        if i < len(sizes) - 2 and act is not None:
            layers.append(act())
    return nn.Sequential(*layers)


def accuracy(torch, logits, y) -> float:
    return float((logits.argmax(1) == y).float().mean())


def shuffled_batches(torch, n: int, batch: int, g) -> Tuple[Any, ...]:
    """One epoch's minibatch indices (the last one may be short)."""
    perm = torch.randperm(n, generator=g)
    return tuple(perm[i:i + batch] for i in range(0, n, batch))
