"""Bounded caches: every in-process cache of the services is one of these.

``BoundedCache`` is a named LRU map with a maximum number of entries and,
where entries vary in size, a maximum total of (approximate) bytes: adding
an entry evicts the least recently used ones until both bounds hold again.
An entry larger than the whole byte budget is not kept at all.

It is meant for one event loop (not thread-safe). Reads (``in``, ``get``,
``[]``) count as uses. ``sizeof(key, value)`` must give the same answer for
the same entry every time (sizes are not stored: they are computed again on
eviction), and should include the per-entry overhead (about 150 bytes for a
small key in CPython).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()


class BoundedCache(Generic[K, V]):
    """A named LRU cache bounded in entries and, optionally, bytes."""

    __slots__ = ("name", "max_entries", "max_bytes", "bytes", "evictions", "_sizeof", "_data")

    def __init__(
        self,
        name: str,
        max_entries: int,
        max_bytes: int | None = None,
        sizeof: Callable[[K, V], int] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"cache {name}: max_entries must be at least 1")
        if max_bytes is not None and (sizeof is None or max_bytes < 1):
            raise ValueError(f"cache {name}: max_bytes needs a positive bound and a sizeof")
        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0  # approximate bytes held (0 without a sizeof)
        self.evictions = 0
        self._sizeof = sizeof
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        try:
            self._data.move_to_end(key)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def get(self, key: K, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        sizeof = self._sizeof
        if sizeof is not None:
            old = data.pop(key, _MISSING)
            if old is not _MISSING:
                self.bytes -= sizeof(key, old)
            size = sizeof(key, value)
            if self.max_bytes is not None and size > self.max_bytes:
                return  # could never fit: not kept (and nothing evicted for it)
            self.bytes += size
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.max_entries or (self.max_bytes is not None and self.bytes > self.max_bytes):
            self._evict()

    def _evict(self) -> None:
        data, sizeof, max_bytes = self._data, self._sizeof, self.max_bytes
        while len(data) > self.max_entries or (max_bytes is not None and self.bytes > max_bytes):
            key, value = data.popitem(last=False)
            if sizeof is not None:
                self.bytes -= sizeof(key, value)
            self.evictions += 1

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        value = self._data.pop(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        if self._sizeof is not None:
            self.bytes -= self._sizeof(key, value)
        return value

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def keys(self) -> Iterator[K]:
        """The keys, least recently used first (not counted as uses)."""
        return iter(list(self._data))

    def __repr__(self) -> str:
        bound = f", {self.bytes}/{self.max_bytes} bytes" if self.max_bytes is not None else ""
        return f"BoundedCache({self.name!r}, {len(self)}/{self.max_entries} entries{bound})"
