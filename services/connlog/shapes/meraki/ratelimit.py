"""Token-bucket rate limits, one bucket per key (e.g. per organisation)."""

from __future__ import annotations

import time
from collections.abc import Callable

from connlog.core.caches import BoundedCache

# Buckets kept, least recently used out first. Dropping an idle bucket loses
# nothing (an idle bucket refills to a full one, which is what a new key
# gets); only more than this many keys all active within one refill period
# (burst / rate seconds) could see a dropped bucket start full again early.
MAX_BUCKETS = 100_000


class RateLimiter:
    """Allows ``rate`` requests per second per key, with bursts of ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_BUCKETS,
    ) -> None:
        self._rate = rate
        self._burst = burst if burst is not None else max(rate, 1.0)
        self._clock = clock
        self._buckets: BoundedCache[str, tuple[float, float]] = BoundedCache("ratelimit.buckets", max_keys)

    def try_acquire(self, key: str) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is free."""
        now = self._clock()
        tokens, last = self._buckets.get(key) or (self._burst, now)
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self._rate
