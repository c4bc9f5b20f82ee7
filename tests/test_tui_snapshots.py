"""Snapshots of the main screens at 80×24 and 160×48 (pytest-textual-snapshot).

Deterministic: fixed synthetic runs, a fixed clock, the diagnosis run on the
timer (not in a thread). Update with ``pytest --snapshot-update``.
"""
from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui_helpers import NOW, synthetic_store  # noqa: E402
from tui_monitor.tui import MonitorApp  # noqa: E402


def make_app(**kw):
    return MonitorApp(synthetic_store(), clock=lambda: NOW, threaded=False, interval=3600,
                      x_format=lambda t: "%d" % (t - NOW), **kw)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, press=["down"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_help_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, press=["question_mark"])


def test_compare_all_log_y(snap_compare):
    assert snap_compare(make_app(), terminal_size=(160, 48), press=["a", "y"])


def test_finding_chosen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(160, 48), press=["f", "enter"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gradient_view(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, press=["down", "g"])
