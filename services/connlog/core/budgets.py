"""Rate budgets shared by every replica: token buckets and write budgets.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second. The
buckets themselves live in the database (``connlog.store.budgets``: one
atomic statement refills a bucket by the time elapsed on the database's clock
and takes tokens, or takes none), so that N processes together keep to one
budget. The arithmetic of that statement is written out here too
(``refill``, ``granted``, ``wait_for``; ``MemoryBuckets`` applies it in one
process) for the unit case tables; the store's tests run the same tables
against the SQL.

Write budgets (``WriteBudgets``): every write path of a key draws on the same
bucket per key and tenant: a request costs the events it writes (at least 1).
A request is let through while the bucket holds its cost (or, for a request
costing more than the whole burst, while the bucket is full: it then goes
into debt), otherwise it is refused with the whole seconds after which it
would pass. Device keys have their own, smaller budget.

Writes are the ingest hot path, so a process does not ask the database on
every call: it takes a *lease*, up to ``floor(rate × write_budget_lease_seconds)``
whole tokens (at most the burst) beyond what the call needs, spends it on the
following calls of that key, and asks again when it runs out. A lease is
spent within ``LEASE_LIFETIME_SECONDS`` or its leftover expires unused. Every
token spent was taken from the shared bucket first, so from a full bucket the
processes together never write more than ``burst + rate × T`` in T seconds
(plus, as ever, the debt of one over-burst request); over an arbitrary window
the leases held at its start add at most one lease per process
(``processes × floor(rate × lease_seconds)``). Tokens in a lease that expires
are lost: the budget is at worst slightly under-used, never exceeded. A key
whose rate × lease time is under one token gets no lease: each of its writes
is one round trip (such a key writes under ten events a second by default).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from connlog.core.caches import BoundedCache
from connlog.core.settings import Settings

BUDGETS_MAX_ENTRIES = 100_000  # leases kept per process (keys × tenants written with recently): ~0.3 kB each
# A lease not spent within this long expires (its leftover is never spent).
LEASE_LIFETIME_SECONDS = 1.0

KEY_WRITES = "key_writes"
DEVICE_WRITES = "device_writes"


@dataclass(frozen=True)
class Budget:
    """A refill rate (tokens per second) and a bucket size."""

    rate: float
    burst: float

    def lease(self, lease_seconds: float) -> float:
        """The whole tokens a process takes beyond a call's cost: ``rate ×
        lease_seconds``, rounded down, at most the burst."""
        return float(min(math.floor(self.burst), math.floor(self.rate * lease_seconds)))


@dataclass(frozen=True)
class Ask:
    """What a take asks of a bucket: granted when it holds at least ``need``;
    then it takes ``most`` or what is there, but at least ``least`` (which may
    be more than is there: debt)."""

    need: float
    least: float
    most: float


@dataclass(frozen=True)
class Take:
    """What a take took (0: refused) and what the bucket holds after it."""

    taken: float
    tokens: float


def refill(tokens: float, elapsed: float, budget: Budget) -> float:
    """A bucket's tokens ``elapsed`` seconds after it held ``tokens``
    (time never runs backwards: a negative ``elapsed`` refills nothing)."""
    return min(budget.burst, tokens + max(0.0, elapsed) * budget.rate)


def granted(available: float, ask: Ask) -> float:
    """What a take of ``ask`` takes from a bucket holding ``available``."""
    if available >= ask.need:
        return max(ask.least, min(ask.most, available))
    return 0.0


def wait_for(available: float, ask: Ask, budget: Budget) -> float:
    """Seconds until a bucket holding ``available`` holds ``ask.need``."""
    return max(0.0, ask.need - available) / budget.rate


def retry_after(wait: float) -> int:
    """A wait as the whole seconds a caller is told (at least 1)."""
    return max(1, math.ceil(wait))


def write_ask(cost: float, held: float, budget: Budget, lease: float) -> Ask:
    """The take for a write of ``cost`` by a process holding ``held`` leased
    tokens (fewer than the cost): the bucket and the lease together must hold
    the cost (or the whole burst, for a cost above it); the take is the
    shortfall plus a new lease."""
    shortfall = cost - held
    return Ask(need=min(cost, budget.burst) - held, least=shortfall, most=shortfall + lease)


class BucketStore(Protocol):
    """Where buckets live (``connlog.store.budgets.SharedBuckets``; in tests
    ``MemoryBuckets``)."""

    async def take(self, scope: str, key: str, budget: Budget, ask: Ask) -> Take: ...


class MemoryBuckets:
    """Buckets in this process, by the same arithmetic as the database's
    (a unit-test double: every service keeps its buckets in the database)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = BUDGETS_MAX_ENTRIES) -> None:
        self._clock = clock
        self._buckets: BoundedCache[tuple[str, str], tuple[float, float]] = BoundedCache("budgets.memory", max_keys)

    async def take(self, scope: str, key: str, budget: Budget, ask: Ask) -> Take:
        now = self._clock()
        tokens, at = self._buckets.get((scope, key)) or (budget.burst, now)
        available = refill(tokens, now - at, budget)
        taken = granted(available, ask)
        self._buckets[(scope, key)] = (available - taken, max(at, now))
        return Take(taken, available - taken)


@dataclass
class _Lease:
    tokens: float = 0.0
    until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one take from the store at a time per key


class WriteBudgets:
    """Write budgets by key id and tenant reference, drawn from shared
    buckets in leases (see the module)."""

    def __init__(self, settings: Settings, buckets: BucketStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = Budget(settings.key_write_events_per_second, settings.key_write_burst)
        self.devices = Budget(settings.device_write_events_per_second, settings.device_write_burst)
        self._lease_seconds = settings.write_budget_lease_seconds
        self._buckets = buckets
        self._clock = clock
        self._leases: BoundedCache[tuple[str, int], _Lease] = BoundedCache("auth.write_budgets", BUDGETS_MAX_ENTRIES)

    def _spend(self, lease: _Lease, cost: float) -> bool:
        if lease.tokens >= cost and lease.until > self._clock():
            lease.tokens -= cost
            return True
        return False

    async def charge(self, key_id: str, tenant_ref: int, cost: int, *, device: bool = False) -> int | None:
        """Take ``cost`` (at least 1) from the key's bucket for this tenant:
        None if it was there, else the whole seconds after which the request
        would pass (nothing is taken then). Raises the store's error when
        the shared buckets cannot be reached (answered UNAVAILABLE)."""
        budget = self.devices if device else self.keys
        cost = max(cost, 1)
        lease = self._leases.get((key_id, tenant_ref))
        if lease is None:
            lease = self._leases[(key_id, tenant_ref)] = _Lease()
        if self._spend(lease, cost):
            return None
        async with lease.lock:
            if self._spend(lease, cost):  # another call of this key took a lease meanwhile
                return None
            held = lease.tokens if lease.until > self._clock() else 0.0
            lease.tokens = 0.0
            ask = write_ask(cost, held, budget, budget.lease(self._lease_seconds))
            try:
                took = await self._buckets.take(DEVICE_WRITES if device else KEY_WRITES, f"{key_id}/{tenant_ref}",
                                                budget, ask)
            finally:
                lease.tokens = held  # put back; replaced below when the take was granted
            if took.taken <= 0:
                return retry_after(wait_for(took.tokens, ask, budget))
            lease.tokens = held + took.taken - cost
            lease.until = self._clock() + LEASE_LIFETIME_SECONDS
            return None
