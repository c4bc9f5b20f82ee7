"""Modal screens: help, metric picker, run filter, stream problems."""
from .help import HelpScreen
from .pickers import FilterScreen, MetricPicker
from .problems import ProblemsScreen

__all__ = ["HelpScreen", "MetricPicker", "FilterScreen", "ProblemsScreen"]
