"""Snapshots of the main screens at 80×24 and 160×48 (pytest-textual-snapshot).

Deterministic: fixed synthetic runs, a fixed clock, and fixed findings (a
stand-in engine, so that a change of the engine's wording does not change
these frames; the Pilot tests use the real engine). Update with
``pytest --snapshot-update``.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui_helpers import NOW, synthetic_store  # noqa: E402
from tui_monitor.tui import MonitorApp  # noqa: E402


class FixedFindings:
    """A stand-in for the diagnosis engine: always the same findings."""

    baseline = None

    def __init__(self, store, baseline=None):
        self.store = store
        f = SimpleNamespace
        self.findings = [
            f(kind="divergence", symptom="non_finite", runs=[("cccc3333", 0)], run_names=["diverging"], step=240,
              severity="critical", confidence=1.0, evidence={}, explanation="the train loss became NaN at step 240",
              advice="restart from the last good checkpoint with a smaller learning rate",
              guidance_step="1. Training loss large -> optimization", id="div"),
            f(kind="overfitting", symptom="validation_turned", runs=[("bbbb2222", 0)], run_names=["mlp-wide"],
              step=130, severity="warning", confidence=0.9, evidence={},
              explanation="the val loss rose from its best 0.2461 at step 130 while the train loss fell",
              advice="early stopping, more data, less flexibility, regularisation",
              guidance_step="2. Training loss small, held-out loss large -> overfitting", id="ovf"),
        ]

    def update(self):
        return []


def make_app(**kw):
    store = synthetic_store()
    return MonitorApp(store, diagnoser=FixedFindings(store), clock=lambda: NOW, threaded=False, interval=3600,
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
