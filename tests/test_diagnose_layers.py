"""The diagnosis layer stays headless: no textual, rich or torch."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {m.split(".")[0] for m in out.stdout.split()}


def test_diagnose_imports_neither_ui_nor_torch():
    mods = _modules_after("""
        import tui_monitor.diagnose
        from tui_monitor.diagnose import Diagnoser
        from tui_monitor.store import Store
        Diagnoser(Store()).update()
    """)
    assert "tui_monitor" in mods and "numpy" in mods
    assert not mods & {"textual", "rich", "torch", "pydantic"}


def test_scenarios_package_does_not_load_torch_until_run():
    mods = _modules_after("import tui_monitor.scenarios, tui_monitor.scenarios.corpus")
    assert "torch" not in mods and "numpy" not in mods
