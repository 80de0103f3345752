"""Meraki's per-organisation rate limit (10 requests per second by default):
one token bucket per organisation, in the database (``connlog.store.budgets``),
so that every query process together keeps to it. Each request is one take
(a round trip); a refused one is told the whole seconds until the shared
bucket holds a token again (Meraki's ``Retry-After``)."""

from __future__ import annotations

from connlog.core.budgets import Ask, BucketStore, Budget, wait_for

SCOPE = "meraki_organization"
_ONE = Ask(need=1.0, least=1.0, most=1.0)


class RateLimiter:
    """Allows ``rate`` requests per second per key, with bursts of ``burst``
    (unset: the rate, at least 1), across every process sharing ``buckets``."""

    def __init__(self, buckets: BucketStore, rate: float, burst: float | None = None) -> None:
        self._buckets = buckets
        self.budget = Budget(rate, burst if burst is not None else max(rate, 1.0))

    async def try_acquire(self, key: str) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is
        free. Raises the store's error when the buckets are out of reach."""
        took = await self._buckets.take(SCOPE, key, self.budget, _ONE)
        return 0.0 if took.taken > 0 else max(wait_for(took.tokens, _ONE, self.budget), 1e-9)
