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
