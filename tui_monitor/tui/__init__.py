"""The Textual app (``tui-monitor watch``).

Layout: pure renderables and view models (:mod:`.chart`, :mod:`.canvas`,
:mod:`.ticks`, :mod:`.chartdata`, :mod:`.findings`, :mod:`.gradpanel`,
:mod:`.export`) apart from thin widgets (:mod:`.widgets`) and screens
(:mod:`.screens`); :mod:`.app` puts them together.
"""
from .app import KEYS, MonitorApp, run_app

__all__ = ["MonitorApp", "run_app", "KEYS"]
