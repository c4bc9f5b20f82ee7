"""What the adapters share: which rank this is, and starting a run."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

from .. import hook


def global_rank() -> int:
    """This process's global rank: torch.distributed when it is up, else the
    launchers' environment (``RANK``, ``SLURM_PROCID``, ...), else 0."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:  # noqa: BLE001
        pass
    for var in ("RANK", "GLOBAL_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        v = os.environ.get(var)
        if v not in (None, ""):
            try:
                return int(v)
            except ValueError:
                pass
    return 0


def world_size() -> int:
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_world_size())
    except Exception:  # noqa: BLE001
        pass
    try:
        return int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1


def should_log(all_ranks: bool) -> bool:
    return all_ranks or global_rank() == 0


def start(name: Optional[str], config: Any, model: Any, options: dict) -> "hook.Run":
    """A hook run whose header carries this process's rank and world size
    (the hook alone reads RANK only with WORLD_SIZE; launchers set others)."""
    options = {"rank": global_rank(), "world_size": world_size(), **options}
    return hook.init(name=name, config=config, model=model, **options)


class NullRun:
    """What a rank that does not log gets: every call does nothing."""

    rank = 0
    path = None

    def log(self, *a: Any, **k: Any) -> None:
        pass

    __call__ = log

    def watch(self, *a: Any, **k: Any) -> None:
        pass

    def flush(self, *a: Any, **k: Any) -> None:
        pass

    def close(self, *a: Any, **k: Any) -> None:
        pass

    finish = close

    def __enter__(self) -> "NullRun":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False
