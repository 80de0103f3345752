"""Per-key write budgets: a token bucket per key (and tenant).

Every write path of a key draws on the same bucket: a request costs the
events it writes (at least 1). A bucket holds ``burst`` tokens and refills at
``rate`` per second; a request is let through while the bucket holds its cost
(or, for a request costing more than the whole burst, while the bucket is
full: it then goes into debt), otherwise it is refused with the seconds after
which it would pass. Device keys have their own, smaller budget.

Buckets live in one bounded LRU map per process (a forgotten bucket starts
full again); each process of a deployment keeps its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from connlog.core.caches import BoundedCache
from connlog.core.settings import Settings

BUDGETS_MAX_ENTRIES = 100_000  # keys (times tenants, for the sync service) written with recently: ~0.2 kB each


@dataclass(frozen=True)
class Budget:
    """A refill rate (tokens per second) and a bucket size."""

    rate: float
    burst: float


@dataclass
class _Bucket:
    tokens: float
    at: float


class WriteBudgets:
    """Token buckets by key id and tenant reference."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = Budget(settings.key_write_events_per_second, settings.key_write_burst)
        self.devices = Budget(settings.device_write_events_per_second, settings.device_write_burst)
        self._clock = clock
        self._buckets: BoundedCache[tuple[str, int], _Bucket] = BoundedCache("auth.write_budgets",
                                                                             BUDGETS_MAX_ENTRIES)

    def charge(self, key_id: str, tenant_ref: int, cost: int, *, device: bool = False) -> int | None:
        """Take ``cost`` (at least 1) from the key's bucket for this tenant:
        None if it was there, else the whole seconds after which the request
        would pass (nothing is taken then)."""
        budget = self.devices if device else self.keys
        cost = max(cost, 1)
        now = self._clock()
        bucket = self._buckets.get((key_id, tenant_ref))
        if bucket is None:
            bucket = self._buckets[(key_id, tenant_ref)] = _Bucket(budget.burst, now)
        else:
            bucket.tokens = min(budget.burst, bucket.tokens + (now - bucket.at) * budget.rate)
            bucket.at = now
        needed = min(cost, budget.burst)
        if bucket.tokens >= needed:
            bucket.tokens -= cost
            return None
        return max(1, math.ceil((needed - bucket.tokens) / budget.rate))
