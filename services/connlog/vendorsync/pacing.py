"""Request pacing per vendor organisation: the one object every vendor
request of vendor-sync waits on, ``await pacer.acquire(budget, rate)``.

``budget`` names the organisation's budget (``budget_key``: vendor, API and
organisation, else the source itself), ``rate`` its requests per second.
Every source of one organisation draws on the one budget, whatever its
clients, listed or discovered.

vendor-sync uses ``SharedPacer``: the budget is a token bucket in the
database (``connlog.store.budgets``, the same buckets as the query
service's Meraki limit and the write budgets), so every vendor-sync
replica together keeps to it. ``LocalPacer`` keeps the buckets in the
process (tests of one worker, tools).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from connlog.core.budgets import Ask, BucketStore, Budget, wait_for
from connlog.store.sync import SourceRecord
from connlog.vendorsync.vendor_http import AsyncRateLimiter

SCOPE = "vendor_organization"  # the rate_buckets scope of vendor-sync's budgets
_ONE = Ask(need=1.0, least=1.0, most=1.0)


class Pacer(Protocol):
    async def acquire(self, budget: str, rate: float) -> None:
        """Return when one more request of ``budget`` (at ``rate`` per
        second, bursts of ``max(rate, 1)``) may be sent."""


class LocalPacer(AsyncRateLimiter):
    """A pacer kept in this process: a token bucket per budget key."""


class SharedPacer:
    """A pacer whose buckets are shared by every replica: one take (a round
    trip) per request; refused, it waits as long as the shared bucket needs
    to hold a token, then takes again (another replica may have taken it
    meanwhile). The store's errors (the database out of reach) are raised:
    the poll fails and the source is polled again after its interval."""

    def __init__(self, buckets: BucketStore) -> None:
        self._buckets = buckets

    async def acquire(self, budget: str, rate: float) -> None:
        bucket = Budget(rate, max(rate, 1.0))
        while True:
            took = await self._buckets.take(SCOPE, budget, bucket, _ONE)
            if took.taken > 0:
                return
            await asyncio.sleep(wait_for(took.tokens, _ONE, bucket))  # the pace itself


def budget_key(source: SourceRecord) -> str:
    """The budget a source's requests draw on: its organisation's at its
    vendor's API, else its own."""
    return f"{source.vendor}|{source.base_url}|{source.organization_id or source.source_id}"
