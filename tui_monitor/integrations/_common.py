"""What the adapters share: which rank this is, and starting a run."""
from __future__ import annotations

from typing import Any, Optional

from .. import hook


def global_rank() -> int:
    """This process's global rank, as the hook sees it
    (:func:`tui_monitor.hook.distributed_info`): torch.distributed when it is
    up, else the launchers' environment (``RANK``, ``SLURM_PROCID``, ...), else 0."""
    return hook.distributed_info()[0]


def should_log(all_ranks: bool) -> bool:
    return all_ranks or global_rank() == 0


def start(name: Optional[str], config: Any, model: Any, options: dict) -> "hook.Run":
    """A hook run; its rank, world size and job id are the hook's own
    (``rank=``/``world_size=`` in ``options`` still override them)."""
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
