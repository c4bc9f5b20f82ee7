"""The ``nontrend`` family: losses that are not meant to go down.

A policy gradient (REINFORCE on a contextual bandit) logs a surrogate loss
with advantages normalised per batch: it swings around 0 with no trend while the
reward rises. A GAN logs a discriminator and a generator loss that swing
around their equilibrium (2 ln 2 and ln 2) as the two play against each
other. Healthy runs of both look like a stall or an oscillation to a rule
written for supervised losses; the faults are a rate so large the logits
overflow (NaN) and a discriminator whose loss explodes.
"""
from __future__ import annotations

import math
import time
import zlib

from .data import mlp
from .loops import Setup

__all__ = ["SETUPS"]


def _seeded(torch, name: str, seed: int) -> None:
    torch.manual_seed(seed * 1000 + zlib.crc32(name.encode()) % 997)


def _check(value: float, step: int, bad: list) -> None:
    if not math.isfinite(value):
        bad.append(step)
        if len(bad) >= 5:
            raise FloatingPointError(f"loss is {value} at step {step}")


def _bandit(name: str, seed: int, torch, fold: int) -> Setup:
    """REINFORCE: 4 arms, the best one a function of the context."""
    _seeded(torch, name, seed)
    d, arms = 6, 4
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, arms, generator=g)
    policy = mlp(torch, [d, 32, arms], torch.nn.Tanh)
    critic = torch.nn.Linear(d, 1)
    lr = {"rl_bandit": 0.05, "rl_entropy": 0.03, "rl_diverge": 0.05}[name]
    params = list(policy.parameters()) + (list(critic.parameters()) if name == "rl_entropy" else [])
    opt = torch.optim.SGD(params, lr=lr)
    steps = 500

    def trainer(run, torch, s: Setup, delay: float) -> None:
        gs = torch.Generator().manual_seed(seed + 7)
        bad = []
        for step in range(steps):
            if name == "rl_diverge" and step == 200:  # a restart of the schedule at a rate 2000x too large
                for group in opt.param_groups:
                    group["lr"] = 100.0
            x = torch.randn(64, d, generator=gs)
            logits = policy(x)
            if name == "rl_diverge":  # log(softmax): -inf once a probability underflows
                logp = torch.log(torch.softmax(logits, 1))
            else:
                logp = torch.log_softmax(logits, 1)
            with torch.no_grad():
                probs = logp.exp()
                probs = torch.where(torch.isfinite(probs), probs, torch.full_like(probs, 1.0 / arms))
                a = torch.multinomial(probs.clamp_min(0) + 1e-12, 1, generator=gs)[:, 0]
                best = (x @ w).argmax(1)
                reward = (a == best).float() + 0.3 * torch.randn(64, generator=gs)
            chosen = logp.gather(1, a[:, None])[:, 0]
            entropy = -(logp.exp() * logp).sum(1).mean()
            if name == "rl_entropy":
                value = critic(x)[:, 0]
                adv = reward - value.detach()
                loss = -(chosen * adv).mean() - 0.01 * entropy + 0.5 * ((value - reward) ** 2).mean()
            else:  # advantages normalised per batch, as PPO-style code does
                adv = (reward - reward.mean()) / (reward.std() + 1e-8)
                loss = -(chosen * adv).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value_ = float(loss.detach())
            run.log({"loss": value_, "reward": float(reward.mean()), "entropy": float(entropy.detach()),
                     "lr": opt.param_groups[0]["lr"]}, step=step)
            _check(value_, step, bad)
            if delay:
                time.sleep(delay)

    config = {"task": "reinforcement_learning", "env": "contextual-bandit-4", "data": f"{name}-{seed}"}
    return Setup(policy, opt, None, (None, None), {}, config, steps=steps, trainer=trainer)


def _gan(name: str, seed: int, torch, fold: int) -> Setup:
    """A GAN on a 1-D mixture of two Gaussians."""
    _seeded(torch, name, seed)
    nn = torch.nn
    gen = mlp(torch, [4, 32, 1], nn.Tanh)
    disc = mlp(torch, [1, 32, 1], nn.LeakyReLU)
    lr_g, lr_d, steps = {"gan_mixture": (1e-3, 1e-3, 600), "gan_slow": (3e-4, 3e-4, 800),
                         "gan_diverge": (1e-3, 5.0, 600)}[name]
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits

    def trainer(run, torch, s: Setup, delay: float) -> None:
        g = torch.Generator().manual_seed(seed + 7)
        bad = []
        for step in range(steps):
            centre = torch.where(torch.rand(64, 1, generator=g) < 0.5, -2.0, 2.0)
            real = centre + 0.5 * torch.randn(64, 1, generator=g)
            fake = gen(torch.randn(64, 4, generator=g))
            d_loss = bce(disc(real), torch.ones(64, 1)) + bce(disc(fake.detach()), torch.zeros(64, 1))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = bce(disc(fake), torch.ones(64, 1))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            d_value = float(d_loss.detach())
            run.log({"d_loss": d_value, "g_loss": float(g_loss.detach()), "fake_mean": float(fake.detach().mean()),
                     "fake_std": float(fake.detach().std())}, step=step)
            _check(d_value, step, bad)
            if delay:
                time.sleep(delay)

    config = {"task": "gan", "data": f"{name}-{seed}"}
    return Setup(nn.ModuleDict({"generator": gen, "discriminator": disc}), opt_d, None, (None, None), {}, config,
                 steps=steps, trainer=trainer)


SETUPS = {
    **{name: _bandit for name in ("rl_bandit", "rl_entropy", "rl_diverge")},
    **{name: _gan for name in ("gan_mixture", "gan_slow", "gan_diverge")},
}
