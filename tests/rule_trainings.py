"""Real small trainings for the diagnosis rules' tests: each reproduces one
failure (or its healthy counterpart) that a user reported from a real run,
with torch on the CPU in a second or two, logged through the hook, and is
replayed through the store and the engine at cuts of the run (25/50/75/100%).

Every training uses one thread and draws its data from a fixed seed, so a
test sees the same curves on every machine.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from tui_monitor import hook
from tui_monitor.diagnose import Diagnoser
from tui_monitor.scenarios import data as scenario_data
from tui_monitor.schema import split_metric
from tui_monitor.store import Store

CUTS = (0.25, 0.5, 0.75, 1.0)


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


# ---------------------------------------------------------------- data and models

def teacher_data(torch, seed: int, n: int, d: int = 8, classes: int = 10, shift: float = 0.0, task: int = 0,
                 balanced: bool = False):
    """Classification by a random tanh teacher (drawn from ``task``): inputs
    N(shift, 1) drawn from ``seed``. ``balanced``: the classes are the
    deciles of one teacher output, so each holds a tenth of the samples
    (chance accuracy is exactly 1/C)."""
    g = torch.Generator().manual_seed(1000 + task)
    w1 = torch.randn(d, 32, generator=g)
    w2 = torch.randn(32, classes, generator=g)
    g2 = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g2) + shift
    out = torch.tanh(x @ w1) @ w2
    if not balanced:
        return x, out.argmax(1)
    score = out[:, 0].contiguous()
    edges = torch.quantile(score, torch.linspace(0, 1, classes + 1)[1:-1])
    return x, torch.bucketize(score, edges)


def sine_data(torch, seed: int, n: int, d: int = 4, scale: float = 1.0):
    """Regression: y = sin(2 x0) cos(2 x1) + x2 x3 / 2 + noise, inputs times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.sin(2 * x[:, 0]) * torch.cos(2 * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3] + 0.1 * torch.randn(n, generator=g)
    return x * scale, y[:, None]


def mlp(torch, sizes, act=None, bias_init: Optional[float] = None):
    """The scenarios' MLP (ReLU unless ``act``; hidden biases at ``bias_init``)."""
    from tui_monitor.scenarios.data import mlp as scenario_mlp

    return scenario_mlp(torch, sizes, act or torch.nn.ReLU, bias_init)


# ---------------------------------------------------------------- logging and replay

class Logged(NamedTuple):
    path: str
    records: List[dict]


def log_run(directory, name: str, train: Callable[[Any, Any], None], config: Optional[Dict[str, Any]] = None,
            model=None) -> Logged:
    """Run ``train(run, torch)`` with a hook run writing under ``directory``;
    return the stream's path and records."""
    torch = _torch()
    run = hook.init(name, dir=str(directory), config=config or {}, model=model, watch_every=0,
                    heartbeat_every=3600, system_every=0)
    try:
        train(run, torch)
    finally:
        run.close()
    with open(run.path, "rb") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return Logged(run.path, records)


class Cut(NamedTuple):
    fraction: float
    findings: List[Any]  # at warning level or above
    path: Any  # the run's DecisionPath
    engine: Any


def replay(logged: Logged, cuts: Sequence[float] = CUTS, every: int = 50, **engine_kw) -> List[Cut]:
    """Feed the records into one store and engine as if live (an update
    every ``every`` records) and take what the engine says at each cut."""
    store = Store(splitter=split_metric)
    eng = Diagnoser(store, **engine_kw)
    recs = logged.records
    marks = {max(1, int(round(c * len(recs)))): c for c in cuts}
    out = []
    for i, r in enumerate(recs, 1):
        store.apply(r, stream=logged.path)
        if i % every == 0 or i in marks:
            eng.update()
        if i in marks:
            run_key = next(iter(store.runs))
            warn = [f for f in eng.findings if f.severity in ("warning", "critical")]
            out.append(Cut(marks[i], warn, eng.decision_path(run_key), eng))
    return out


def final(logged: Logged, **engine_kw) -> Cut:
    return replay(logged, cuts=(1.0,), **engine_kw)[-1]


def top(cut: Cut) -> Optional[str]:
    return cut.findings[0].kind if cut.findings else None


# ---------------------------------------------------------------- the loops

def minibatch_loop(run, torch, model, opt, loss_fn, data, evals: Dict[str, Any], *, steps: int, batch: int = 32,
                   eval_every: int = 20, lr_at: Optional[Callable[[int], float]] = None, seed: int = 0,
                   clip: Optional[float] = None, log_lr: bool = True) -> None:
    """A loss per step, held-out losses every ``eval_every`` steps."""
    x, y = data
    g = torch.Generator().manual_seed(seed + 7)
    for step in range(steps):
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
        if step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                for split, (xe, ye) in evals.items():
                    run.log({"loss": float(loss_fn(model(xe), ye))}, step=step, split=split)
            model.train()
        idx = torch.randint(0, len(x), (batch,), generator=g)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        values = {"loss": float(loss.detach())}
        if log_lr:
            values["lr"] = opt.param_groups[0]["lr"]
        run.log(values, step=step)


def macro_f1(torch, out, y, classes: int) -> float:
    """The mean over classes of each class's F1 (scikit-learn's macro F1,
    0 for a class never predicted nor present)."""
    pred = out.argmax(1)
    f1 = []
    for c in range(classes):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1) / classes


def epoch_loop(run, torch, model, opt, loss_fn, data, val, *, epochs: int, batch: int = 64, seed: int = 0,
               accuracy: bool = True, score: str = "accuracy", held_loss: bool = True) -> None:
    """Keras-CSV-like: one line per epoch, the epoch's mean training loss
    (and ``score``: ``accuracy``, ``error`` (1 - accuracy) or ``f1`` the
    macro F1 over the epoch's predictions) and the validation loss (unless ``held_loss`` is False:
    a log of the validation score alone) and score after it, at
    ``step = epoch``."""
    x, y = data
    xv, yv = val
    classes = int(max(int(y.max()), int(yv.max()))) + 1
    g = torch.Generator().manual_seed(seed + 11)

    def scored(out, target) -> float:
        if score == "f1":
            return macro_f1(torch, out, target, classes)
        acc = scenario_data.accuracy(torch, out, target)
        return 1.0 - acc if score == "error" else acc

    for epoch in range(epochs):
        tot = 0.0
        outs, targets = [], []
        for idx in scenario_data.shuffled_batches(torch, len(x), batch, g):
            opt.zero_grad(set_to_none=True)
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            if accuracy:
                outs.append(out.detach())
                targets.append(y[idx])
        train = {"loss": tot / len(x)}
        if accuracy:
            train[score] = scored(torch.cat(outs), torch.cat(targets))
        run.log(train, step=epoch)
        with torch.no_grad():
            out = model(xv)
            held = {"loss": float(loss_fn(out, yv))} if held_loss else {}
            if accuracy:
                held[score] = scored(out, yv)
        run.log(held, step=epoch, split="val")


# ---------------------------------------------------------------- the trainings

CE10 = {"task": "classification", "num_classes": 10}


def classifier_steps(directory, name: str, *, lr: float, steps: int, opt: str = "sgd", clip: Optional[float] = None,
                     seed: int = 0, declare: bool = True, eval_every: int = 25, momentum: float = 0.0,
                     lr_at=None) -> Logged:
    """A ReLU MLP on 10 teacher classes, a loss a step, validation every
    ``eval_every`` steps."""
    def train(run, torch):
        torch.manual_seed(seed)
        data = teacher_data(torch, seed, 2048)
        val = teacher_data(torch, seed + 500, 512)
        model = mlp(torch, [8, 64, 64, 10])
        o = (torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=lr))
        minibatch_loop(run, torch, model, o, torch.nn.functional.cross_entropy, data, {"val": val}, steps=steps,
                       eval_every=eval_every, clip=clip, seed=seed, lr_at=lr_at)
    return log_run(directory, name, train, CE10 if declare else {})


def regression_steps(directory, name: str, *, lr: float, steps: int, opt: str = "adam", seed: int = 0,
                     scale: float = 1.0, eval_every: int = 25, lr_at=None) -> Logged:
    """A tanh MLP regressing the sine target, a loss a step."""
    def train(run, torch):
        torch.manual_seed(seed)
        data = sine_data(torch, seed, 2048, scale=scale)
        val = sine_data(torch, seed + 500, 512, scale=scale)
        model = mlp(torch, [4, 64, 64, 1], torch.nn.Tanh)
        o = (torch.optim.SGD(model.parameters(), lr=lr) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=lr))
        minibatch_loop(run, torch, model, o, torch.nn.functional.mse_loss, data, {"val": val}, steps=steps,
                       eval_every=eval_every, seed=seed, lr_at=lr_at)
    _, y = sine_data(_torch(), seed, 2048)
    return log_run(directory, name, train, {"task": "regression", "target_var": float(y.var())})


def classifier_epochs(directory, name: str, *, epochs: int, lr: float, opt: str = "adam", seed: int = 0,
                      bias_init: Optional[float] = None, declare: bool = True, n: int = 1024,
                      balanced: bool = False) -> Logged:
    """Keras-CSV-like per-epoch log of a ReLU MLP on 10 teacher classes."""
    def train(run, torch):
        torch.manual_seed(seed)
        data = teacher_data(torch, seed, n, balanced=balanced)
        val = teacher_data(torch, seed + 500, 512, balanced=balanced)
        model = mlp(torch, [8, 64, 64, 10], bias_init=bias_init)
        o = (torch.optim.SGD(model.parameters(), lr=lr) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=lr))
        epoch_loop(run, torch, model, o, torch.nn.functional.cross_entropy, data, val, epochs=epochs, seed=seed)
    return log_run(directory, name, train, CE10 if declare else {})


def score_epochs(directory, name: str, *, epochs: int, n: int = 1024, flip: float = 0.0, hidden=(64,),
                 lr: float = 1e-3, bias_init: Optional[float] = None, prior=None, score: str = "accuracy",
                 held_loss: bool = False, batch: int = 64, seed: int = 0) -> Logged:
    """A per-epoch log of a classifier on Gaussian blobs (10 classes, or
    ``len(prior)`` in those proportions; ``flip`` of the labels random) that
    logs a score (``accuracy``, ``error`` or the macro ``f1``), and no validation loss
    unless ``held_loss``: a Keras or Hugging Face log whose held-out split
    says only its score. No task declared."""
    from tui_monitor.scenarios.data import blobs

    classes = len(prior) if prior is not None else 10

    def train(run, torch):
        torch.manual_seed(seed)
        x, y = blobs(torch, seed, n, 16, classes, spread=1.6, prior=prior)
        xv, yv = blobs(torch, seed, 512, 16, classes, spread=1.6, draw=1, prior=prior)
        if flip:
            g = torch.Generator().manual_seed(seed + 1)
            for labels in (y, yv):
                idx = torch.randperm(len(labels), generator=g)[:int(len(labels) * flip)]
                labels[idx] = torch.randint(0, classes, (len(idx),), generator=g)
        model = mlp(torch, [16, *hidden, classes], bias_init=bias_init)
        o = torch.optim.Adam(model.parameters(), lr=lr)
        epoch_loop(run, torch, model, o, torch.nn.functional.cross_entropy, (x, y), (xv, yv), epochs=epochs,
                   batch=batch, seed=seed, score=score, held_loss=held_loss)
    return log_run(directory, name, train, {})


def regression_epochs(directory, name: str, *, epochs: int, lr: float, scale: float = 1.0, seed: int = 0,
                      dtype: str = "float32", hidden: int = 32) -> Logged:
    """A per-epoch log of a regressor (a one-hidden-layer ReLU net, or a
    linear model with ``hidden=0``) trained with plain SGD (float64 when
    asked, so a divergence stays finite longer)."""
    def train(run, torch):
        torch.manual_seed(seed)
        dt = getattr(torch, dtype)
        x, y = sine_data(torch, seed, 1024, scale=scale)
        xv, yv = sine_data(torch, seed + 500, 256, scale=scale)
        model = (mlp(torch, [4, hidden, 1], torch.nn.ReLU) if hidden else torch.nn.Linear(4, 1)).to(dt)
        o = torch.optim.SGD(model.parameters(), lr=lr)
        epoch_loop(run, torch, model, o, torch.nn.functional.mse_loss, (x.to(dt), y.to(dt)), (xv.to(dt), yv.to(dt)),
                   epochs=epochs, seed=seed, accuracy=False)
    _, y = sine_data(_torch(), seed, 1024)
    return log_run(directory, name, train, {"task": "regression", "target_var": float(y.var())})


def spurious_data(torch, seed: int, n: int, flip: bool = False):
    """Two classes: 8 weak core features and one spurious feature that
    gives the label away (``flip``: gives the opposite label, as in a test
    set drawn elsewhere)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    sign = (2 * y - 1).float()
    core = 0.3 * sign[:, None] + torch.randn(n, 8, generator=g)
    spur = (-sign if flip else sign) * 2.0 + 0.5 * torch.randn(n, generator=g)
    return torch.cat([core, spur[:, None]], 1), y


def spurious_steps(directory, name: str, *, steps: int = 600, lr: float = 1e-3, flip: bool = True,
                   seed: int = 0) -> Logged:
    """A classifier that learns the spurious feature: validation (drawn like
    training) falls while the test split (the feature flipped when ``flip``)
    rises from its first evaluation."""
    def train(run, torch):
        torch.manual_seed(seed)
        data = spurious_data(torch, seed, 2048)
        evals = {"val": spurious_data(torch, seed + 500, 512), "test": spurious_data(torch, seed + 900, 512, flip)}
        model = mlp(torch, [9, 32, 2])
        o = torch.optim.Adam(model.parameters(), lr=lr)
        minibatch_loop(run, torch, model, o, torch.nn.functional.cross_entropy, data, evals, steps=steps,
                       eval_every=20, seed=seed)
    return log_run(directory, name, train, {"task": "classification", "num_classes": 2})


def finetune_warmup(directory, name: str, *, peak: float, steps: int = 800, pretrain: int = 300, seed: int = 0,
                    eval_every: int = 100, declare: bool = False) -> Logged:
    """A model pretrained on one teacher, fine-tuned on another with a
    linear learning-rate warm-up over the whole logged run to ``peak``
    (Adam): with a peak too high, training and validation losses rise
    together as the rate grows."""
    def train(run, torch):
        torch.manual_seed(seed)
        model = mlp(torch, [8, 64, 64, 10])
        o = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = teacher_data(torch, seed, 2048, task=0)
        g = torch.Generator().manual_seed(seed)
        for _ in range(pretrain):
            idx = torch.randint(0, len(x), (64,), generator=g)
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            o.step()
        data = teacher_data(torch, seed + 1, 2048, task=0, shift=0.5)
        val = teacher_data(torch, seed + 501, 512, task=0, shift=0.5)
        o = torch.optim.Adam(model.parameters(), lr=0.0)
        minibatch_loop(run, torch, model, o, torch.nn.functional.cross_entropy, data, {"val": val}, steps=steps,
                       eval_every=eval_every, seed=seed, lr_at=lambda s: peak * (s + 1) / steps)
    return log_run(directory, name, train, CE10 if declare else {})


def ema_eval(directory, name: str, *, steps: int = 1500, decay: float = 0.998, seed: int = 0,
             eval_every: int = 50) -> Logged:
    """A classifier evaluated on an exponential moving average of its
    weights (as timm, YOLO and diffusion trainers do), once per "epoch" of
    ``eval_every`` steps: the average lags the trained weights, so the
    validation loss starts far above the training loss and the gap then
    shrinks as the average catches up."""
    def train(run, torch):
        import copy

        torch.manual_seed(seed)
        x, y = teacher_data(torch, seed, 4096)
        xv, yv = teacher_data(torch, seed + 500, 512)
        model = mlp(torch, [8, 64, 64, 10])
        ema = copy.deepcopy(model)
        o = torch.optim.Adam(model.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(seed + 7)
        ce = torch.nn.functional.cross_entropy
        for step in range(1, steps + 1):
            idx = torch.randint(0, len(x), (32,), generator=g)
            o.zero_grad(set_to_none=True)
            loss = ce(model(x[idx]), y[idx])
            loss.backward()
            o.step()
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(decay).add_(pm, alpha=1 - decay)
            run.log({"loss": float(loss.detach()), "lr": 3e-3}, step=step)
            if step % eval_every == 0:
                with torch.no_grad():
                    run.log({"loss": float(ce(ema(xv), yv))}, step=step, split="val")
    return log_run(directory, name, train, {})


def shifted_test(directory, name: str, *, steps: int = 800, shift: float = 1.5, n_held: int = 512,
                 seed: int = 0) -> Logged:
    """Regression whose test split comes from elsewhere (two inputs shifted
    by ``shift``) while the validation split is drawn like the training
    data, both of ``n_held`` samples (a small split makes noisy
    evaluations): a test loss high from the first evaluations."""
    def train(run, torch):
        torch.manual_seed(seed)
        x, y = sine_data(torch, seed, 2048)
        xv, yv = sine_data(torch, seed + 500, n_held)
        xt, _ = sine_data(torch, seed + 900, n_held)
        xt[:, 2:] += shift
        yt = torch.sin(2 * xt[:, 0]) * torch.cos(2 * xt[:, 1]) + 0.5 * xt[:, 2] * xt[:, 3]
        model = mlp(torch, [4, 64, 64, 1], torch.nn.Tanh)
        o = torch.optim.Adam(model.parameters(), lr=3e-3)
        minibatch_loop(run, torch, model, o, torch.nn.functional.mse_loss, (x, y),
                       {"val": (xv, yv), "test": (xt, yt[:, None])}, steps=steps, eval_every=20, seed=seed)
    _, y = sine_data(_torch(), seed, 2048)
    return log_run(directory, name, train, {"task": "regression", "target_var": float(y.var())})


def in_a_sweep(logged: Logged, runs: int = 1024) -> Logged:
    """The run's records among those of ``runs - 1`` other runs of a sweep
    (a header and one validation evaluation each): what the engine sees
    when a sweep is in view."""
    recs = list(logged.records)
    for k in range(1, runs):
        rid = f"sweep-{k}"
        recs.append({"type": "run", "seq": 0, "v": 1, "run_id": rid, "name": rid, "start": 1.7e9, "config": {}})
        recs.append({"type": "metrics", "seq": 1, "run_id": rid, "step": 0, "time": 1.7e9, "split": "val",
                     "values": {"loss": 1.0}})
    return Logged(logged.path, recs)


def shifted_val(directory, name: str, *, steps: int = 800, shift: float = 1.5, seed: int = 0,
                n_held: int = 512) -> Logged:
    """Regression whose only held-out split comes from elsewhere (two inputs
    shifted by ``shift``), of ``n_held`` samples: a gap that is there from
    the first evaluations and stays."""
    def train(run, torch):
        torch.manual_seed(seed)
        x, y = sine_data(torch, seed, 2048)
        xv, _ = sine_data(torch, seed + 500, n_held)
        xv[:, 2:] += shift
        yv = torch.sin(2 * xv[:, 0]) * torch.cos(2 * xv[:, 1]) + 0.5 * xv[:, 2] * xv[:, 3]
        model = mlp(torch, [4, 64, 64, 1], torch.nn.Tanh)
        o = torch.optim.Adam(model.parameters(), lr=3e-3)
        minibatch_loop(run, torch, model, o, torch.nn.functional.mse_loss, (x, y), {"val": (xv, yv[:, None])},
                       steps=steps, eval_every=20, seed=seed)
    _, y = sine_data(_torch(), seed, 2048)
    return log_run(directory, name, train, {"task": "regression", "target_var": float(y.var())})


def full_batch(directory, name: str, *, steps: int = 3000, frozen: bool = False, seed: int = 0,
               corrupt_at: Optional[int] = None, factor: float = 10.0, noise: float = 0.1) -> Logged:
    """Full-batch regression (the whole training set every step, as for small
    tabular problems), a loss a step. ``frozen``: the optimizer was built
    over a copy of the model (a classic bug), so the trained model never
    changes and its loss is identical at every step. ``corrupt_at``: one
    step whose targets are scaled up (a spike)."""
    def train(run, torch):
        import copy

        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(256, 4, generator=g)
        y = (x[:, :1] * 0.5 - x[:, 1:2] * 0.3) + noise * torch.randn(256, 1, generator=g)
        model = mlp(torch, [4, 32, 1], torch.nn.Tanh)
        params = copy.deepcopy(model).parameters() if frozen else model.parameters()
        o = torch.optim.Adam(params, lr=1e-2)
        for step in range(steps):
            yb = y * factor if step == corrupt_at else y
            o.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x), yb)
            loss.backward()
            o.step()
            run.log({"loss": float(loss.detach()), "lr": 1e-2}, step=step)
    return log_run(directory, name, train, {"task": "regression", "target_var": 0.34 + noise ** 2})


def gan_steps(directory, name: str, *, lr_d: float, lr_g: float = 1e-3, steps: int = 600, seed: int = 0) -> Logged:
    """A GAN on a 1-D mixture of two Gaussians at -1.5 and 1.5 (its generator from 4-D noise), logging
    the discriminator's and the generator's losses: losses that need not fall
    (no task, no held-out split), which swing around their equilibrium while
    the two play against each other."""
    def train(run, torch):
        torch.manual_seed(seed)
        nn = torch.nn
        gen, disc = mlp(torch, [4, 16, 1], nn.Tanh), mlp(torch, [1, 16, 1], nn.LeakyReLU)
        opt_g = torch.optim.Adam(gen.parameters(), lr=lr_g, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=(0.5, 0.999))
        bce = nn.functional.binary_cross_entropy_with_logits
        g = torch.Generator().manual_seed(seed + 1)
        ones, zeros = torch.ones(32, 1), torch.zeros(32, 1)
        for step in range(steps):
            centre = torch.where(torch.rand(32, 1, generator=g) < 0.5, -1.5, 1.5)
            real = centre + 0.3 * torch.randn(32, 1, generator=g)
            fake = gen(torch.randn(32, 4, generator=g))
            d_loss = bce(disc(real), ones) + bce(disc(fake.detach()), zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = bce(disc(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            run.log({"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach())}, step=step)

    return log_run(directory, name, train, config={"task": "gan", "data": f"mixture2-{seed}"})
