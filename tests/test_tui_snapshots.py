"""Snapshots of the main screens at 80×24 and 160×48 (pytest-textual-snapshot).

Deterministic: fixed synthetic runs, a fixed clock, and fixed findings (a
stand-in engine, so that a change of the engine's wording does not change
these frames; the Pilot tests use the real engine). Update with
``pytest --snapshot-update``.
"""
from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot", reason="pytest-textual-snapshot is in the test extra")

from tui_helpers import fixed_app  # noqa: E402




@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, size):
    assert snap_compare(fixed_app(), terminal_size=size, press=["down"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_help_screen(snap_compare, size):
    assert snap_compare(fixed_app(), terminal_size=size, press=["question_mark"])


def test_compare_all_log_y(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(160, 48), press=["a", "y"])


def test_finding_chosen(snap_compare):
    assert snap_compare(fixed_app(), terminal_size=(160, 48), press=["f", "enter"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gradient_view(snap_compare, size):
    assert snap_compare(fixed_app(), terminal_size=size, press=["down", "g"])


def test_fold_group(snap_compare):
    """A cross-validation group: its row with the folds' mean ± std, the folds
    under it, all of them drawn while the group row is highlighted."""
    from tui_helpers import fold_store

    assert snap_compare(fixed_app(fold_store(3)), terminal_size=(160, 48), press=["down", "down", "down"])


# -- issue 15's defects, each at both sizes ------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_finding_evidence_and_focus(snap_compare, size):
    """f then enter: at 80x24 the first finding's evidence and advice on their
    own screen; at 160x48 the finding chosen, its evidence in the list; the
    findings' title says they have the focus."""
    assert snap_compare(fixed_app(), terminal_size=size, press=["f", "enter"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_status_and_footer_whole_with_log_y_and_zoom(snap_compare, size):
    """The status line keeps the chart's smoothing, log y and zoom; the footer
    every key it lists."""
    assert snap_compare(fixed_app(), terminal_size=size, press=["y", "plus"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_missing_path_is_said(snap_compare, size, tmp_path, monkeypatch):
    """watch nosuchdir/: the empty screen names the missing path."""
    from tui_helpers import until, screen_text
    from tui_monitor.sources import open_ingest
    from tui_monitor.tui import MonitorApp

    monkeypatch.chdir(tmp_path)
    store, ingest = open_ingest(["nosuchdir/"])

    async def wait(pilot):
        await until(pilot, lambda: "does not exist" in screen_text(pilot.app), message="the missing path")

    try:
        assert snap_compare(MonitorApp(store, ingest, interval=0.05, diagnoser=None), terminal_size=size,
                            run_before=wait)
    finally:
        ingest.stop()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gradient_table_of_20_layers(snap_compare, size):
    """A 20-layer model's gradient table: scrollable, and it says which layers show."""
    from tui_helpers import deep_store

    assert snap_compare(fixed_app(deep_store(20)), terminal_size=size, press=["end", "g"])
