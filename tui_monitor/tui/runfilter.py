"""The runs panel's filter: a regex on the run's name (or id) and conditions
on its config, in one line.

``lr>1e-3``, ``batch=64``, ``optim!=sgd``, ``model.depth>=20``: a word made
of a config key (dots reach into nested dicts), an operator (``= == != < <=
> >=``) and a value; numbers compare as numbers, anything else as text.
Every other word is a regex on the name. All of them must hold. Pure: no
Textual.
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, List, NamedTuple, Optional

__all__ = ["RunFilter", "parse_filter", "FilterError"]

_CONDITION = re.compile(r"^([A-Za-z_][\w.\-/]*)(==|!=|<=|>=|=|<|>)(.+)$")
_OPS: dict = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
              ">": operator.gt, ">=": operator.ge}


class FilterError(ValueError):
    """A filter that cannot be read (a bad regex); the message says why."""


class Condition(NamedTuple):
    key: str
    op: str
    value: str

    def holds(self, config: Any) -> bool:
        v = _lookup(config, self.key)
        if v is None:
            return False
        cmp: Callable[[Any, Any], bool] = _OPS[self.op]
        want = _number(self.value)
        have = _number(v) if not isinstance(v, bool) else None
        if want is not None and have is not None:
            return cmp(have, want)
        if self.op in ("=", "==", "!="):
            return cmp(str(v).lower(), self.value.lower())
        return False  # an order on text: nothing matches rather than a surprise


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return None


def _lookup(config: Any, key: str) -> Any:
    if not isinstance(config, dict):
        return None
    if key in config:
        return config[key]
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class RunFilter(NamedTuple):
    """A parsed filter: ``text`` as typed, the name ``patterns`` and the
    config ``conditions``."""

    text: str = ""
    patterns: tuple = ()
    conditions: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.patterns or self.conditions)

    def matches(self, run: Any) -> bool:
        for rx in self.patterns:
            if not (rx.search(run.name) or rx.search(run.run_id)):
                return False
        config = run.config if isinstance(getattr(run, "config", None), dict) else {}
        return all(c.holds(config) for c in self.conditions)


def parse_filter(text: str) -> RunFilter:
    """``text`` as a :class:`RunFilter`; raises :class:`FilterError` for a
    bad regex."""
    patterns: List[Any] = []
    conditions: List[Condition] = []
    for word in text.split():
        m = _CONDITION.match(word)
        if m:
            conditions.append(Condition(m.group(1), m.group(2), m.group(3)))
            continue
        try:
            patterns.append(re.compile(word))
        except re.error as e:
            raise FilterError("bad regex %r: %s" % (word, e)) from None
    return RunFilter(text, tuple(patterns), tuple(conditions))
