"""Nothing from a stream is executed: no pickle, eval, exec or unsafe YAML in the code."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "tui_monitor"
FORBIDDEN = {
    r"\bimport pickle\b|\bpickle\.loads?\(": "pickle",
    r"(?<![\w.])eval\(": "eval",
    r"(?<![\w.])exec\(": "exec",
    r"yaml\.load\((?!.*SafeLoader)": "yaml.load without SafeLoader",
    r"yaml\.unsafe_load": "yaml.unsafe_load",
    r"\bmarshal\.loads\(": "marshal",
    r"shell=True": "a shell",
}


def test_no_code_path_interprets_stream_data():
    hits = []
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) >= 50 and ROOT / "hook.py" in files  # the scan sees the whole package
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN.items():
                if re.search(pattern, code):
                    hits.append(f"{path.relative_to(ROOT.parent)}:{n}: {what}: {line.strip()}")
    assert hits == []


def test_the_scan_would_catch_one():
    assert re.search(list(FORBIDDEN)[1], "x = eval(line)")
    assert not re.search(list(FORBIDDEN)[1], "self.evaluate(x)")
