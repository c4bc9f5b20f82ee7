"""Configs kept as YAML beside a log: Lightning's ``hparams.yaml``, MLflow's
``meta.yaml``. Read with ``yaml.safe_load`` when PyYAML is installed, else
with a small parser of the plain block mappings ``yaml.dump`` writes; never
``yaml.load``: a config file must not be able to run code.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..stream.files import open_regular

__all__ = ["INTEGER", "HparamsWatch", "parse_simple_yaml", "read_hparams", "read_yaml", "scalar"]

INTEGER = re.compile(r"[-+]?\d{1,640}\Z")  # longer: a float (int() may refuse them, sys.set_int_max_str_digits)


def scalar(text: str) -> Any:
    """A plain YAML scalar: null, a boolean, a quoted string, a number, a flow list, else the text."""
    return _scalar(text)


def _scalar(text: str) -> Any:
    s = text.strip()
    if not s or s in ("~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if INTEGER.match(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        pass
    if s.startswith("[") and s.endswith("]"):
        return [_scalar(x) for x in s[1:-1].split(",") if x.strip()]
    return s


def parse_simple_yaml(text: str) -> Dict[str, Any]:
    """The block mappings, ``- item`` lists and plain scalars that
    ``yaml.dump`` writes for a dict of hyperparameters. Tags, anchors and
    anything else are kept as strings: this never executes anything."""
    root: Dict[str, Any] = {}
    stack: List[Tuple[int, Any]] = [(-1, root)]
    pending: Optional[Tuple[int, Any, str]] = None  # (indent, parent dict, key) of a "key:" with no value yet
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#") or raw.strip() in ("---", "..."):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if pending is not None:
            p_indent, parent, key = pending
            pending = None
            if indent > p_indent or (line.startswith("- ") and indent == p_indent):
                container: Any = [] if line.startswith("- ") or line == "-" else {}
                parent[key] = container
                # the container holds lines indented at least as far as its first
                # (a "- item" list may sit at its key's own indent)
                stack.append((indent - 0.5, container))
        while len(stack) > 1:
            level, container = stack[-1]
            if indent <= level or (isinstance(container, list) and not line.startswith("-") and indent <= level + 0.5):
                stack.pop()
            else:
                break
        parent = stack[-1][1]
        if line.startswith("- ") or line == "-":
            if isinstance(parent, list):
                parent.append(_scalar(line[1:]))
            continue
        if ":" not in line or not isinstance(parent, dict):
            continue
        key, _, value = line.partition(":")
        key = key.strip().strip("'\"")
        if value.strip() and not value.strip().startswith("!"):
            parent[key] = _scalar(value)
        elif value.strip().startswith("!"):
            parent[key] = value.strip()
        else:
            parent[key] = None
            pending = (indent, parent, key)
    return root


def read_yaml(path: str) -> Dict[str, Any]:
    """A YAML mapping as a dict; empty when absent or unreadable. Never
    ``yaml.load``: a config file must not be able to run code."""
    try:
        with open(open_regular(path), encoding="utf-8", errors="replace") as f:  # a FIFO would block
            text = f.read(1 << 20)
    except OSError:
        return {}
    try:
        import yaml  # type: ignore
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            data = yaml.safe_load(text)
        except Exception:  # noqa: BLE001 - python/object tags and the like: keep what is plain
            data = parse_simple_yaml(text)
    else:
        data = parse_simple_yaml(text)
    if not isinstance(data, dict):
        return {} if data is None else {"value": data}
    return {str(k): _plain(v) for k, v in data.items()}


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return repr(v)


class HparamsWatch:
    """``hparams.yaml`` in a folder, read again when it changes."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, "hparams.yaml")
        self.stamp: Optional[Tuple[float, int]] = None
        self.config: Dict[str, Any] = {}

    def changed(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        stamp = (st.st_mtime, st.st_size)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        config = read_hparams(self.path)
        if config == self.config:
            return False
        self.config = config
        return True


read_hparams = read_yaml  #: Lightning's ``hparams.yaml``
