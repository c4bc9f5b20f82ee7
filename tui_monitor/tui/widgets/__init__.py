"""Thin Textual widgets over the pure renderables and view models; the
three panels (runs, chart, findings) own their state and actions."""
from .chart import ChartView
from .chart_panel import ChartPanel, ChartSubject
from .findings import DecisionPathView, FindingsList, FindingsPanel
from .gradients import GradientsView
from .runs_panel import RunsPanel
from .runs_table import RunsTable

__all__ = ["ChartView", "ChartPanel", "ChartSubject", "FindingsList", "FindingsPanel", "DecisionPathView",
           "GradientsView", "RunsPanel", "RunsTable"]
