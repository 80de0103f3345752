"""The arithmetic of the shared token buckets (connlog.core.budgets): refill,
the cap, grants, waits, lease sizes, and the write budgets' leases and
Meraki's limiter over buckets in memory, on a clock the test moves. The same
refill/grant table runs against the database's statement in
tests/test_shared_budgets.py."""

from __future__ import annotations

import pytest

from connlog.core.budgets import (
    Ask,
    Budget,
    MemoryBuckets,
    Take,
    WriteBudgets,
    granted,
    refill,
    retry_after,
    wait_for,
    write_ask,
)
from connlog.core.settings import Settings
from connlog.shapes.meraki.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counted(MemoryBuckets):
    """Buckets in memory that count their takes (round trips, for the store)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.takes = 0

    async def take(self, scope: str, key: str, budget: Budget, ask: Ask) -> Take:
        self.takes += 1
        return await super().take(scope, key, budget, ask)


# (tokens before, seconds elapsed, rate, burst) -> tokens after the refill
REFILL_CASES = [
    ("refilled at the rate", (0.0, 0.5, 2.0, 10.0), 1.0),
    ("nothing elapsed", (3.0, 0.0, 2.0, 10.0), 3.0),
    ("capped at the burst", (9.0, 5.0, 2.0, 10.0), 10.0),
    ("a full bucket stays full", (10.0, 3600.0, 2.0, 10.0), 10.0),
    ("debt refills too", (-15.0, 1.0, 2.0, 10.0), -13.0),
    ("a clock behind refills nothing", (3.0, -1.0, 2.0, 10.0), 3.0),
    ("a tiny rate", (0.0, 1000.0, 0.001, 5.0), 1.0),
]


@pytest.mark.parametrize(("before", "after"), [c[1:] for c in REFILL_CASES], ids=[c[0] for c in REFILL_CASES])
def test_refill(before: tuple[float, float, float, float], after: float) -> None:
    tokens, elapsed, rate, burst = before
    assert refill(tokens, elapsed, Budget(rate, burst)) == pytest.approx(after)


# (tokens in the bucket, the ask) -> tokens taken (0: refused)
GRANT_CASES = [
    ("one token there: taken", (1.0, Ask(1, 1, 1)), 1.0),
    ("under one token: refused", (0.999, Ask(1, 1, 1)), 0.0),
    ("a lease: the most asked", (10.0, Ask(1, 1, 3)), 3.0),
    ("a lease: what is there beyond the need", (2.5, Ask(1, 1, 3)), 2.5),
    ("a lease: at least the need's cost", (1.0, Ask(1, 1, 3)), 1.0),
    ("a lease: refused below the need", (0.5, Ask(1, 1, 3)), 0.0),
    ("over the burst when full: into debt", (10.0, Ask(10, 25, 25)), 25.0),
    ("over the burst when not full: refused", (9.0, Ask(10, 25, 25)), 0.0),
    ("in debt: refused", (-3.0, Ask(1, 1, 1)), 0.0),
]


@pytest.mark.parametrize(("state", "taken"), [c[1:] for c in GRANT_CASES], ids=[c[0] for c in GRANT_CASES])
def test_granted(state: tuple[float, Ask], taken: float) -> None:
    assert granted(*state) == taken


# (tokens in the bucket, need, rate) -> Retry-After (whole seconds, at least 1)
WAIT_CASES = [
    ("a tenth of a second: 1", (0.0, 1.0, 10.0), 1),
    ("exactly 1000 s", (0.0, 1.0, 0.001), 1000),
    ("just under 1000 s: rounded up", (0.00002, 1.0, 0.001), 1000),
    ("half a token at 0.001/s", (0.5, 1.0, 0.001), 500),
    ("out of debt first", (-13.0, 1.0, 2.0), 7),
    ("a cost of several tokens", (0.0, 7.0, 2.0), 4),
]


@pytest.mark.parametrize(("state", "seconds"), [c[1:] for c in WAIT_CASES], ids=[c[0] for c in WAIT_CASES])
def test_retry_after_is_the_wait_rounded_up(state: tuple[float, float, float], seconds: int) -> None:
    tokens, need, rate = state
    budget = Budget(rate, 10.0)
    wait = wait_for(tokens, Ask(need, need, need), budget)
    assert retry_after(wait) == seconds
    # truthful: after that long the bucket holds the need, a second less it does not (unless 1 s is all)
    assert refill(tokens, seconds, Budget(rate, 1e9)) >= need
    if seconds > 1:
        assert refill(tokens, seconds - 1, Budget(rate, 1e9)) < need


# (rate, burst, lease seconds) -> whole tokens leased beyond a call's cost
LEASE_CASES = [
    ("default key budget: a tenth of a second", (100_000.0, 200_000.0, 0.1), 10_000.0),
    ("default device budget", (20.0, 100.0, 0.1), 2.0),
    ("rounded down", (15.0, 100.0, 0.1), 1.0),
    ("under one token: no lease", (2.0, 10.0, 0.1), 0.0),
    ("a tiny rate: no lease", (0.001, 5.0, 1.0), 0.0),
    ("at most the burst", (1000.0, 50.0, 1.0), 50.0),
    ("leases off", (100_000.0, 200_000.0, 0.0), 0.0),
]


@pytest.mark.parametrize(("budget", "lease"), [c[1:] for c in LEASE_CASES], ids=[c[0] for c in LEASE_CASES])
def test_lease_size(budget: tuple[float, float, float], lease: float) -> None:
    rate, burst, seconds = budget
    assert Budget(rate, burst).lease(seconds) == lease


# (cost, leased tokens held, burst, lease) -> the ask
ASK_CASES = [
    ("nothing held: the cost plus a lease", (1, 0.0, 10.0, 2.0), Ask(1, 1, 3)),
    ("part held: the shortfall plus a lease", (5, 2.0, 10.0, 2.0), Ask(3, 3, 5)),
    ("over the burst: the bucket must be full", (25, 0.0, 10.0, 0.0), Ask(10, 25, 25)),
]


@pytest.mark.parametrize(("call", "ask"), [c[1:] for c in ASK_CASES], ids=[c[0] for c in ASK_CASES])
def test_write_ask(call: tuple[int, float, float, float], ask: Ask) -> None:
    cost, held, burst, lease = call
    assert write_ask(cost, held, Budget(1.0, burst), lease) == ask


def _budgets(clock: Clock, buckets: MemoryBuckets, rate: float, burst: float, lease_seconds: float) -> WriteBudgets:
    settings = Settings(key_write_events_per_second=rate, key_write_burst=burst,
                        write_budget_lease_seconds=lease_seconds)
    return WriteBudgets(settings, buckets, clock)


async def test_a_lease_serves_the_next_calls_without_a_round_trip() -> None:
    clock = Clock()
    store = Counted(clock)
    budgets = _budgets(clock, store, rate=100.0, burst=50.0, lease_seconds=0.1)  # leases of 10
    assert [await budgets.charge("k", 1, 1) for _ in range(11)] == [None] * 11
    assert store.takes == 1  # the first took 1 + 10
    assert await budgets.charge("k", 1, 1) is None
    assert store.takes == 2


async def test_leases_never_spend_more_than_the_bucket_held() -> None:
    clock = Clock()
    budgets = _budgets(clock, MemoryBuckets(clock), rate=100.0, burst=50.0, lease_seconds=0.1)
    answers = [await budgets.charge("k", 1, 1) for _ in range(60)]
    assert answers.count(None) == 50
    assert set(answers[50:]) == {1}


async def test_two_processes_on_one_bucket_spend_exactly_the_burst() -> None:
    clock = Clock()  # frozen: no refill
    shared = MemoryBuckets(clock)
    first, second = (_budgets(clock, shared, rate=10.0, burst=20.0, lease_seconds=1.0) for _ in range(2))
    answers = []
    for _ in range(30):
        answers += [await first.charge("k", 1, 1), await second.charge("k", 1, 1)]
    assert answers.count(None) == 20


async def test_an_expired_lease_is_not_spent() -> None:
    clock = Clock()
    budgets = _budgets(clock, MemoryBuckets(clock), rate=10.0, burst=5.0, lease_seconds=1.0)  # leases of 5
    assert await budgets.charge("k", 1, 1) is None  # took all 5: holds 4, the bucket 0
    clock.now += 1.01  # the bucket refills to its burst; the lease has expired
    answers = [await budgets.charge("k", 1, 1) for _ in range(10)]
    assert answers.count(None) == 5  # not 4 + 5


async def test_a_refused_call_keeps_the_lease_it_held() -> None:
    clock = Clock()
    budgets = _budgets(clock, MemoryBuckets(clock), rate=10.0, burst=5.0, lease_seconds=1.0)
    assert await budgets.charge("k", 1, 1) is None  # holds 4, the bucket 0
    assert await budgets.charge("k", 1, 5) == 1  # needs 1 more than held: refused
    assert [await budgets.charge("k", 1, 1) for _ in range(5)] == [None] * 4 + [1]


async def test_a_store_failure_is_raised_and_loses_no_lease() -> None:
    clock = Clock()

    class Failing(MemoryBuckets):
        failing = False

        async def take(self, scope: str, key: str, budget: Budget, ask: Ask) -> Take:
            if self.failing:
                raise OSError("connection refused")
            return await super().take(scope, key, budget, ask)

    store = Failing(clock)
    budgets = _budgets(clock, store, rate=10.0, burst=5.0, lease_seconds=1.0)
    assert await budgets.charge("k", 1, 1) is None  # holds 4
    store.failing = True
    with pytest.raises(OSError):
        await budgets.charge("k", 1, 5)  # never "unlimited"
    assert [await budgets.charge("k", 1, 1) for _ in range(4)] == [None] * 4  # the lease, still


async def test_meraki_limiter_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(MemoryBuckets(clock), 10.0)
    assert [await limiter.try_acquire("org") for _ in range(10)] == [0.0] * 10
    wait = await limiter.try_acquire("org")
    assert wait == pytest.approx(0.1)
    assert await limiter.try_acquire("other") == 0.0  # an organisation of its own
    clock.now += wait
    assert await limiter.try_acquire("org") == 0.0


async def test_meraki_limiter_burst_setting() -> None:
    clock = Clock()
    limiter = RateLimiter(MemoryBuckets(clock), 0.001, 5.0)
    answers = [await limiter.try_acquire("org") for _ in range(7)]
    assert answers[:5] == [0.0] * 5
    assert [retry_after(wait) for wait in answers[5:]] == [1000, 1000]
