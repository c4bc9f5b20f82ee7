"""Modal screens: help, metric picker, run filter."""
from .help import HelpScreen
from .pickers import FilterScreen, MetricPicker

__all__ = ["HelpScreen", "MetricPicker", "FilterScreen"]
