"""Modal screens: help, metric picker, run filter, stream problems."""
from .finding import FindingScreen
from .help import HelpScreen
from .pickers import FilterScreen, MetricPicker
from .problems import ProblemsScreen

__all__ = ["FindingScreen", "HelpScreen", "MetricPicker", "FilterScreen", "ProblemsScreen"]
