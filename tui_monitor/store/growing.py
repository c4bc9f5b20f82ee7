"""A map that one thread grows while others read it, each addition O(1).

The store's containers (``Store.runs``, ``Run.series``, ``Run.grads``,
``Run.text``) used to be plain dicts replaced by a copy at every new entry, so
that a reader iterating the dict it fetched was never disturbed. That made
adding the n-th entry cost n: 200,000 metric names (``loss_{step}``, a common
accident) took 271 s to read. :class:`GrowingMap` keeps the readers' promise
at O(1) an addition:

- lookups go to a dict, updated in place (one dict operation is atomic under
  the GIL, so a reader's ``get`` sees the entry or not, never half of it);
- iteration goes over a list of keys that is only appended to (a list
  iterator reads its length at each step: an entry added meanwhile may be
  seen, nothing raises) and is replaced, not changed, when removals are
  compacted away;
- an entry is put in the dict before its key is appended, so every key a
  reader meets can be looked up; a key removed meanwhile is skipped.

Removal (a run renamed when its header comes late) takes the key out of the
dict and leaves it in the list, skipped; the list is rebuilt when the dead
outnumber the living, so it stays
amortised O(1) too. Insertion order is kept, as a dict's. One writer thread.
"""

from __future__ import annotations

from collections.abc import ItemsView, Mapping, ValuesView
from typing import Any, Dict, Iterator, List, Tuple

__all__ = ["GrowingMap"]


class _Items(ItemsView):
    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        return self._mapping._iter_items()  # type: ignore[attr-defined]


class _Values(ValuesView):
    def __iter__(self) -> Iterator[Any]:
        return (v for _, v in self._mapping._iter_items())  # type: ignore[attr-defined]


class GrowingMap(Mapping):
    """A read-only :class:`~collections.abc.Mapping` to its readers; the
    writer adds with ``m[key] = value`` (a new key, or a new value for one
    there) and removes with :meth:`discard`."""

    __slots__ = ("_entries", "_keys", "_dead")

    def __init__(self, items: Any = ()) -> None:
        self._entries: Dict[Any, Any] = {}
        self._keys: List[Any] = []
        self._dead: set = set()  # keys in _keys no longer in _entries
        for k, v in (items.items() if isinstance(items, Mapping) else items):
            self[k] = v

    # -- reading (any thread) ---------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        return self._entries[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Any]:
        entries = self._entries  # a key removed while a reader iterates is skipped
        return (k for k in self._keys if k in entries)

    def _iter_items(self) -> Iterator[Tuple[Any, Any]]:
        entries = self._entries
        missing = _MISSING
        for k in self._keys:
            v = entries.get(k, missing)
            if v is not missing:
                yield k, v

    def items(self) -> ItemsView:  # type: ignore[override]
        return _Items(self)

    def values(self) -> ValuesView:  # type: ignore[override]
        return _Values(self)

    def __repr__(self) -> str:
        return "GrowingMap(%r)" % dict(self._iter_items())

    # -- writing (one thread) ---------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        entries = self._entries
        if key in entries:
            entries[key] = value
            return
        if key in self._dead:  # removed and added again: it must not be listed twice
            self._compact()
        entries[key] = value  # first where readers look it up, then where they iterate
        self._keys.append(key)

    def discard(self, key: Any) -> None:
        """Remove ``key`` if present."""
        if self._entries.pop(key, _MISSING) is _MISSING:
            return
        self._dead.add(key)
        if len(self._dead) > len(self._entries):
            self._compact()

    def _compact(self) -> None:
        entries = self._entries
        self._keys = [k for k in self._keys if k in entries]  # a new list: readers keep the old one
        self._dead = set()


_MISSING = object()
