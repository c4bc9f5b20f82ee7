"""Thin Textual widgets over the pure renderables and view models."""
from .chart import ChartView
from .findings import DecisionPathView, FindingsList
from .gradients import GradientsView
from .runs_table import RunsTable

__all__ = ["ChartView", "FindingsList", "DecisionPathView", "GradientsView", "RunsTable"]
