"""Plain PyTorch: one call before the loop.

    from tui_monitor.integrations.torch import monitor
    run = monitor(model, name="resnet20", config=cfg)
    for step, (x, y) in enumerate(loader):
        ...
        run.log({"loss": loss}, step=step)       # a tensor is fine: no sync here
    run.log({"loss": val_loss}, step=step, split="val")

The model's flexibility is recorded and its gradients read every
``watch_every`` backward passes. Under ``torch.distributed`` (or a launcher
that sets ``RANK``) only global rank 0 writes; the other ranks get a run whose
calls do nothing, so the same script runs everywhere. ``all_ranks=True``
makes every rank write its own stream.
"""
from __future__ import annotations

from typing import Any, Optional

from ._common import NullRun, should_log, start

__all__ = ["monitor", "NullRun"]


def monitor(model: Any = None, name: Optional[str] = None, config: Any = None, all_ranks: bool = False,
            watch_every: int = 50, **options: Any) -> Any:
    """A :class:`tui_monitor.hook.Run` for this process, or a do-nothing run
    on ranks that do not log. Other options go to :func:`tui_monitor.hook.init`."""
    if not should_log(all_ranks):
        return NullRun()
    return start(name or (type(model).__name__ if model is not None else None), config, model,
                 {"watch_every": watch_every, **options})
