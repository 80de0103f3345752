"""The write budgets of connlog.core.budgets, on a clock the test moves (their
buckets in memory by the database's arithmetic; no leases at these rates)."""

from __future__ import annotations

import pytest

from connlog.core.budgets import MemoryBuckets, WriteBudgets
from connlog.core.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budgets(clock: Clock) -> WriteBudgets:
    settings = Settings(key_write_events_per_second=2, key_write_burst=10,
                        device_write_events_per_second=1, device_write_burst=3)
    return WriteBudgets(settings, MemoryBuckets(clock), clock)


# (what is charged, in order: (cost, seconds passed before), device?) -> the answers
CASES = [
    ("within the burst", [(4, 0), (6, 0)], False, [None, None]),
    ("one over the burst", [(10, 0), (1, 0)], False, [None, 1]),
    ("refilled at the rate", [(10, 0), (1, 0.5)], False, [None, None]),
    ("partly refilled", [(10, 0), (3, 0.5)], False, [None, 1]),
    ("the wait is for the cost", [(10, 0), (7, 0)], False, [None, 4]),
    ("at least 1", [(10, 0), (0, 0)], False, [None, 1]),
    ("never above the burst", [(1, 0), (10, 3600), (1, 0)], False, [None, None, 1]),
    ("a cost above the burst: when full, into debt", [(25, 0), (1, 0)], False, [None, 8]),
    ("a cost above the burst: not when not full", [(1, 0), (25, 0)], False, [None, 1]),
    ("device keys: their own budget", [(3, 0), (1, 0)], True, [None, 1]),
]


@pytest.mark.parametrize(("charges", "device", "answers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_buckets(charges: list[tuple[int, float]], device: bool, answers: list[int | None]) -> None:
    clock = Clock()
    buckets = budgets(clock)
    got = []
    for cost, passed in charges:
        clock.now += passed
        got.append(await buckets.charge("k1", 1, cost, device=device))
    assert got == answers


async def test_a_bucket_per_key_and_tenant() -> None:
    buckets = budgets(Clock())
    assert await buckets.charge("k1", 1, 10) is None
    assert await buckets.charge("k1", 1, 1) == 1
    assert await buckets.charge("k2", 1, 10) is None  # another key
    assert await buckets.charge("k1", 2, 10) is None  # the same (sync service's) key for another tenant
