"""tui-monitor: watch PyTorch training runs live and be told why one is not working.

``import tui_monitor`` is what a training script does, so it loads the
standard-library hook only; the monitor's own modules (store, diagnosis, TUI)
load their dependencies when they are used.
"""
from ._version import __version__
from .hook import FORMAT_VERSION, Run, describe_model, init

__all__ = ["__version__", "FORMAT_VERSION", "Run", "describe_model", "init"]
