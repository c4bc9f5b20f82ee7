"""Running a scenario: real (tiny) PyTorch training through the hook.

torch is imported by :func:`run_scenario`, never at import time of the
package. Every run uses one CPU thread, synthetic data drawn from the seed,
and a few hundred steps, so a run takes about a second.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Dict, Optional

from . import SCENARIOS

__all__ = ["run_scenario", "blind_name"]


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _setups() -> Dict[str, Callable]:
    from . import classic, epochs, hard, nontrend, schedules

    out: Dict[str, Callable] = {}
    for module in (classic, epochs, schedules, hard, nontrend):
        out.update(module.SETUPS)
    return out


def _digest(text: str, n: int = 10) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def blind_name(name: str, seed: int, fold: int = 0) -> str:
    """The run name of a scenario in the corpus: says nothing of its label."""
    return f"run-{_digest(f'{name}/{seed}/{fold}', 8)}"


def run_scenario(name: str, directory: str, seed: int = 0, *, fold: int = 0, delay: float = 0.0,
                 steps: Optional[int] = None, blind: bool = False) -> str:
    """Train scenario ``name`` and write its stream under ``directory``;
    return the stream's path. ``delay`` sleeps that many seconds after each
    step (to watch it live); ``steps`` overrides the scenario's length.
    ``blind``: nothing in the stream names the scenario (the run is called
    :func:`blind_name`, its data key is a digest, no ``scenario`` tag), as
    the corpus wants: the engine is not told the answer."""
    if name not in SCENARIOS:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    torch = _torch()
    from .. import hook
    from .loops import train

    s = _setups()[name](name, seed, torch, fold)
    if steps is not None:
        s.steps = int(steps)
    tags = {"seed": seed, **s.tags}
    if blind:
        run_name = blind_name(name, seed, fold)
        if "data" in s.config:  # runs of one experiment keep sharing a key, which no longer tells their story
            s.config = {**s.config, "data": f"data-{_digest(str(s.config['data']))}"}
        if "group" in tags:
            tags["group"] = f"group-{_digest(str(tags['group']))}"
    else:
        run_name = f"{name}-s{seed}" + (f"-f{fold}" if name == "cv_fold" else "")
        tags["scenario"] = name
    run = hook.init(run_name, dir=directory, config=s.config, model=s.model if s.describe else None, tags=tags,
                    watch_every=s.watch_every, heartbeat_every=3600)
    try:
        train(run, torch, s, seed, delay)
    except FloatingPointError as e:
        run.close(status="crashed", error=e)
    else:
        run.close()
    return run.path
