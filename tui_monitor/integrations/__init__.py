"""Framework adapters: thin layers over the hook (:mod:`tui_monitor.hook`).

- :mod:`.lightning`: ``TuiMonitorLogger`` (a Lightning ``Logger``: pass it as
  ``Trainer(logger=...)``) and ``TuiMonitorCallback`` (for a run that keeps
  another logger);
- :mod:`.transformers`: ``TuiMonitorCallback`` for ``transformers.Trainer``;
- :mod:`.torch`: ``monitor(model, ...)`` for a plain PyTorch loop.

Each imports its framework only when imported itself, records the model's
flexibility (parameter count, depth, width) when the model is known, and logs
only on global rank 0 unless ``all_ranks=True``. Options not named here go to
:func:`tui_monitor.hook.init` (``dir``, ``to``, ``tags``, ...).
"""
