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
    monkeypatch.chdir(tmp_path)
    assert _waiting_snapshot(snap_compare, size, "does not exist", ["nosuchdir/"])


def _waiting_snapshot(snap_compare, size, shown: str, paths, listen=None) -> bool:
    """The empty monitor over ``paths`` (and ``listen``), snapped once its
    screen says ``shown``."""
    from tui_helpers import until, screen_text
    from tui_monitor.sources import open_ingest
    from tui_monitor.tui import MonitorApp

    store, ingest = open_ingest(paths, listen=listen)

    async def wait(pilot):
        await until(pilot, lambda: shown in screen_text(pilot.app), message=shown)

    try:
        return snap_compare(MonitorApp(store, ingest, interval=0.05, diagnoser=None), terminal_size=size,
                            run_before=wait)
    finally:
        ingest.stop()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gradient_table_of_20_layers(snap_compare, size):
    """A 20-layer model's gradient table: scrollable, and it says which layers show."""
    from tui_helpers import deep_store

    assert snap_compare(fixed_app(deep_store(20)), terminal_size=size, press=["end", "g"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_findings_focused(snap_compare, size):
    """f: the findings' frame is lit and its title says it has the focus and
    what the keys do; the runs' cursor is dimmed."""
    assert snap_compare(fixed_app(), terminal_size=size, press=["f"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_constant_learning_rate_is_flat(snap_compare, size):
    """M after loss: the learning rate, constant at 0.01, is one flat line on
    an axis labelled 0.005 0.010 0.015 (it was a wall of columns under five
    labels reading 0.01000)."""
    assert snap_compare(fixed_app(), terminal_size=size, press=["M"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_every_run_compared(snap_compare, size):
    """a: every run drawn in its own colour, the same as its selection mark
    and its swatch in a legend that names every run; the diverging run's
    values far above the others are off the scale (arrows, and the note says
    so) instead of flattening the other runs to a line at 0."""
    assert snap_compare(fixed_app(), terminal_size=size, press=["a"])


def _scored_store(first: float = 1.25, last: float = 0.25):
    """A run whose validation accuracy peaks at step 60 (0.9) and ends at
    0.8, and whose train loss falls from ``first`` to ``last`` in a straight
    line."""
    from tui_helpers import NOW, T0
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store

    store = Store(splitter=split_metric, clock=lambda: NOW)
    recs = [{"type": "run", "seq": 0, "v": 1, "run_id": "acc00001", "name": "classifier", "start": T0,
             "host": "test-host", "pid": 1, "rank": 0, "world_size": 1, "config": {}, "tags": {}}]
    for i in range(101):
        recs.append({"type": "metrics", "seq": len(recs), "step": i, "time": T0 + i,
                     "values": {"loss": first - (first - last) * i / 100}})
        if i % 10 == 0:
            acc = 0.5 + 0.4 * min(i, 60) / 60 - 0.1 * max(0, i - 60) / 40
            recs.append({"type": "metrics", "seq": len(recs), "step": i, "time": T0 + i + 0.5, "split": "val",
                         "values": {"accuracy": acc}})
    recs.append({"type": "end", "seq": len(recs), "time": T0 + 101, "status": "finished", "dropped": 0})
    store.apply_many(recs, stream="acc")
    return store


@pytest.mark.parametrize("size,loss", [((80, 24), (1.2, 0.3)), ((160, 48), (1.3, 0.1))], ids=["80x24", "160x48"])
def test_ticks_at_a_quarter(snap_compare, size, loss):
    """A straight train loss whose axis has a tick every 0.25 (three ticks
    fit at 80x24, five at 160x48), smoothing off: the labels read 1.00 0.75
    0.50 and 1.25 1.00 0.75 0.50 0.25 (they read 1.0 0.8 0.5, 1.2 1.0 0.8 0.5 0.2)."""
    assert snap_compare(fixed_app(_scored_store(*loss), engine=None), terminal_size=size,
                        press=["left_square_bracket"] * 2)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_best_accuracy_is_its_highest(snap_compare, size):
    """The ★ best val of an accuracy sits on its highest value (step 60),
    not its lowest."""
    assert snap_compare(fixed_app(_scored_store(), engine=None), terminal_size=size, press=["M"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_listening_says_where_and_how_to_connect(snap_compare, size, tmp_path, monkeypatch):
    """watch --listen: the empty screen names the address and the line that
    starts a job sending to it (a unix socket in the test's folder: the same
    text every run)."""
    monkeypatch.chdir(tmp_path)
    assert _waiting_snapshot(snap_compare, size, "listening on", [], listen="unix:monitor.sock")
