"""The ingest pipeline's caches, declared in one place: name, bounds and how
an entry is sized. Each ``IngestPipeline`` creates its own from these
(``CacheSpec.create``); none is module state. The implementation is
``connlog.core.caches.BoundedCache`` (least recently used out first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from connlog.core.caches import BoundedCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_ENTRY_OVERHEAD = 200  # bytes CPython spends on a small cache entry besides its content


@dataclass(frozen=True)
class CacheSpec(Generic[K, V]):
    """A named bounded cache: at most ``max_entries`` entries and, with a
    ``sizeof``, at most ``max_bytes`` (approximate) bytes."""

    name: str
    max_entries: int
    max_bytes: int | None = None
    sizeof: Callable[[K, V], int] | None = None

    def create(self) -> BoundedCache[K, V]:
        return BoundedCache(self.name, self.max_entries, self.max_bytes, self.sizeof)


def _access_point_size(key: tuple[int, str], value: tuple[int, str, dt.datetime]) -> int:
    return len(key[1]) + 2 * len(value[1]) + _ENTRY_OVERHEAD + 100  # the value tuple and its datetime


# (tenant_ref, network id) -> network_ref
NETWORK_REFS: CacheSpec[tuple[int, str], int] = CacheSpec("ingest.network_refs", max_entries=50_000)
# (tenant_ref, AP serial) -> the last recorded (network_ref, name, time)
ACCESS_POINTS: CacheSpec[tuple[int, str], tuple[int, str, dt.datetime]] = CacheSpec(
    "ingest.access_points", max_entries=50_000, max_bytes=16 * 1024 * 1024, sizeof=_access_point_size)

INGEST_CACHES: tuple[CacheSpec, ...] = (NETWORK_REFS, ACCESS_POINTS)
