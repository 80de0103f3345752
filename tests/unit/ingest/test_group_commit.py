"""connlog.ingest.group_commit with an in-memory store whose writes a test
holds and releases: what callers are told, and when.

No test waits on time: a held write is an ``asyncio.Event``, and "the
callers have queued" is checked after letting the loop run (``_settle``)."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from connlog.core.edge import is_transient
from connlog.core.settings import Settings
from connlog.ingest.group_commit import GroupCommit, ShuttingDown
from connlog.store.events import InsertOutcome, StoredEvent, TenantBatch

WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def row(key: str, tenant_network: str = "N_1") -> StoredEvent:
    return StoredEvent(tenant_network, WHEN, key.encode(), 1, 1, 1, 0, 0, None, None, None, None, None, None, None,
                       None, b"")


class HeldStore:
    """Stores groups in memory; each write waits until the test releases it
    (``hold`` False: writes go through at once)."""

    def __init__(self, hold: bool = True) -> None:
        self.ids: dict[tuple[int, bytes, dt.datetime], int] = {}
        self.groups: list[list[TenantBatch]] = []  # every write, as asked
        self.hold = hold
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_with: BaseException | None = None

    async def insert_group(self, batches):
        self.groups.append(list(batches))
        self.entered.set()
        if self.hold:
            await self.release.wait()
            self.release.clear()
        self.entered.clear()
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc  # the transaction failed: nothing of the group is kept
        found = []
        for tenant_ref, events, _ in batches:
            keys = [(e.dedup_key, e.occurred_at) for e in events]
            assert len(set(keys)) == len(keys), "a group's batch holds each event once"
            outcomes = {}
            for key in keys:
                new = (tenant_ref, *key) not in self.ids
                if new:
                    self.ids[(tenant_ref, *key)] = len(self.ids) + 1
                outcomes[key] = InsertOutcome(self.ids[(tenant_ref, *key)], new)
            found.append(outcomes)
        return found


def group_commit(store: HeldStore, **settings) -> GroupCommit:
    """One lane, no linger unless asked for."""
    return GroupCommit(store, Settings(**({"group_commit_lanes": 1, "group_commit_linger_ms": 0} | settings)))


async def _idle(rounds: int = 50) -> None:
    """Let every ready task run ``rounds`` times over (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _settle(condition, rounds: int = 200) -> None:
    """Let every ready task run (no time passes): until ``condition``."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition(), "the tasks did not get there"


def _call(gc: GroupCommit, *keys: str, tenant: int = 1) -> asyncio.Task[list[InsertOutcome]]:
    return asyncio.ensure_future(gc.insert(tenant, [row(k) for k in keys], {"N_1": 7}))


async def _hold_first_group(gc: GroupCommit, store: HeldStore) -> asyncio.Task:
    """A first call whose write is held: the one lane is busy."""
    first = _call(gc, "first")
    await store.entered.wait()
    return first


async def test_callers_are_answered_only_after_their_group_is_stored():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, f"e{i}") for i in range(5)]
    await _settle(lambda: gc.queued == 5)
    assert not first.done() and not any(c.done() for c in callers)  # the write has not returned: no answer
    store.release.set()
    assert [o.new for o in await first] == [True]
    await store.entered.wait()  # the queued five: one group, held in its turn
    assert not any(c.done() for c in callers)
    store.release.set()
    answers = await asyncio.gather(*callers)
    assert all(a[0].new for a in answers)
    assert [sum(len(b.events) for b in g) for g in store.groups] == [1, 5]  # one write for the five


async def test_the_same_event_from_callers_of_one_group_is_accepted_once():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    # a, b, a, c+a, b (and "first", stored before) from six callers queued for the same group
    callers = [_call(gc, "a"), _call(gc, "b"), _call(gc, "a"), _call(gc, "c", "a"), _call(gc, "b"),
               _call(gc, "first")]
    await _settle(lambda: gc.queued == 6)
    store.release.set()
    await first
    await store.entered.wait()
    store.release.set()
    answers = [[o.new for o in a] for a in await asyncio.gather(*callers)]
    assert answers == [[True], [True], [False], [True, False], [False], [False]]
    ids = [[o.event_id for o in a] for a in [c.result() for c in callers]]
    assert ids[0] == ids[2] == [ids[3][1]] and ids[1] == ids[4] and ids[5] == [first.result()[0].event_id]
    [group] = store.groups[1:]
    assert sorted(e.dedup_key for b in group for e in b.events) == [b"a", b"b", b"c", b"first"]  # each once


async def test_tenants_of_one_group_are_kept_apart():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, "a", tenant=1), _call(gc, "a", tenant=2), _call(gc, "a", tenant=1)]
    await _settle(lambda: gc.queued == 3)
    store.release.set()
    await first
    await store.entered.wait()
    store.release.set()
    answers = [[o.new for o in a] for a in await asyncio.gather(*callers)]
    assert answers == [[True], [True], [False]]
    assert sorted(b.tenant_ref for b in store.groups[1]) == [1, 2]


async def test_a_failed_group_fails_every_caller_of_it_and_no_other():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, f"e{i}") for i in range(4)]
    await _settle(lambda: gc.queued == 4)
    store.fail_with = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")
    store.release.set()
    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await first
    await store.entered.wait()
    store.release.set()
    answers = await asyncio.gather(*callers)  # the next group: unaffected
    assert all(a[0].new for a in answers)
    assert (1, b"first", WHEN) not in store.ids  # the failed group stored nothing


async def test_every_caller_of_a_failed_group_gets_its_own_transient_error():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, f"e{i}") for i in range(4)]
    await _settle(lambda: gc.queued == 4)
    store.release.set()
    await first
    await store.entered.wait()
    store.fail_with = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")
    store.release.set()
    errors = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(e, asyncpg.exceptions.ConnectionDoesNotExistError) and is_transient(e) for e in errors)
    assert len({id(e) for e in errors}) == 4  # one each: no shared traceback
    assert not any((1, f"e{i}".encode(), WHEN) in store.ids for i in range(4))
    again = await asyncio.gather(*(_call(gc, f"e{i}") for i in range(4)), _release(store))
    assert all(a[0].new for a in again[:4])  # sent again once the database is back: stored now


async def _release(store: HeldStore) -> None:
    await store.entered.wait()
    store.release.set()


async def test_a_caller_cancelled_while_queued_is_left_out_and_the_others_answered():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, f"e{i}") for i in range(3)]
    await _settle(lambda: gc.queued == 3)
    callers[1].cancel()
    store.release.set()
    await first
    await store.entered.wait()
    store.release.set()
    assert [o.new for o in await callers[0]] == [True] and [o.new for o in await callers[2]] == [True]
    assert callers[1].cancelled()
    assert [e.dedup_key for b in store.groups[1] for e in b.events] == [b"e0", b"e2"]


async def test_a_caller_cancelled_while_its_group_is_written_leaves_the_others_results():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, "a"), _call(gc, "a"), _call(gc, "b")]
    await _settle(lambda: gc.queued == 3)
    store.release.set()
    await first
    await store.entered.wait()
    callers[0].cancel()  # its group is being written
    await _settle(callers[0].done)
    store.release.set()
    # the event was stored by the cancelled caller's group: the other sender is told it is a duplicate
    assert [o.new for o in await callers[1]] == [False] and [o.new for o in await callers[2]] == [True]


async def test_a_full_queue_makes_callers_wait_and_drops_nothing():
    store = HeldStore()
    gc = group_commit(store, group_commit_queue_calls=2, group_commit_max_events=2)
    first = await _hold_first_group(gc, store)
    callers = [_call(gc, f"e{i}") for i in range(5)]
    await _settle(lambda: gc.queued == 2)
    await _idle()
    assert gc.queued == 2 and not any(c.done() for c in callers)  # three wait for room, none refused
    for _ in range(4):  # first, then groups of at most two events
        store.release.set()
        await _settle(lambda: not store.release.is_set())
    answers = await asyncio.gather(*callers)
    assert all(a[0].new for a in answers)
    assert sorted(e.dedup_key for g in store.groups for b in g for e in b.events) == sorted(
        [b"first", *(f"e{i}".encode() for i in range(5))])
    assert max(sum(len(b.events) for b in g) for g in store.groups) <= 2
    await first


async def test_a_further_lane_starts_only_while_more_is_queued_than_a_group_takes():
    store = HeldStore()
    gc = group_commit(store, group_commit_lanes=2, group_commit_max_events=2)
    a = _call(gc, "a")
    await _settle(lambda: len(store.groups) == 1)
    queued = [_call(gc, "b"), _call(gc, "c")]
    await _idle()
    assert len(store.groups) == 1 and gc.queued == 2  # one group's worth queued: the one lane takes it next
    more = _call(gc, "d")
    await _settle(lambda: len(store.groups) == 2)  # more than a group queued: a second lane writes at once
    assert [e.dedup_key for b in store.groups[1] for e in b.events] == [b"b", b"c"]
    while not more.done():
        store.release.set()
        await _idle()
    answers = await asyncio.gather(a, *queued, more)
    assert all(answer[0].new for answer in answers)
    assert sorted(e.dedup_key for g in store.groups for b in g for e in b.events) == [b"a", b"b", b"c", b"d"]


async def test_lanes_write_groups_at_once_up_to_their_number():
    store = HeldStore()
    gc = group_commit(store, group_commit_lanes=2, group_commit_max_events=1)  # every call a full group
    a = _call(gc, "a")
    await _settle(lambda: len(store.groups) == 1)
    b = _call(gc, "b")
    await _idle()
    assert len(store.groups) == 1  # a group's worth queued: no second lane yet
    c = _call(gc, "c")
    await _settle(lambda: len(store.groups) == 2)  # two lanes: two writes held at once
    d = _call(gc, "d")
    await _idle()
    assert len(store.groups) == 2 and gc.queued == 2
    while not d.done():
        store.release.set()
        await _idle()
    answers = await asyncio.gather(a, b, c, d)
    assert all(answer[0].new for answer in answers)


async def test_close_answers_queued_callers_unavailable():
    store = HeldStore()
    gc = group_commit(store)
    first = await _hold_first_group(gc, store)
    queued = _call(gc, "q")
    await _settle(lambda: gc.queued == 1)
    gc.close()
    for task in (first, queued):
        with pytest.raises(ShuttingDown) as caught:
            await task
        assert is_transient(caught.value)
    with pytest.raises(ShuttingDown):
        await gc.insert(1, [row("late")], {"N_1": 7})


def _sizes(store: HeldStore) -> list[int]:
    return [sum(len(b.events) for b in g) for g in store.groups]


def lingering(store: HeldStore, **settings) -> GroupCommit:
    """Group commit whose lanes linger without a deadline (only calls end a
    linger here: no test waits on time)."""
    gc = group_commit(store, group_commit_linger_ms=100, **settings)
    gc._linger = 3600.0
    return gc


async def test_after_a_group_of_several_calls_the_lane_lingers_for_as_many_again():
    store = HeldStore(hold=False)
    gc = lingering(store)
    await asyncio.gather(*[_call(gc, f"a{i}") for i in range(4)])  # queued in one step: one group of four
    second = []
    for i in range(4):  # they come one by one, the loop running between them
        second.append(_call(gc, f"b{i}"))
        await _idle()
        assert _sizes(store) == ([4] if i < 3 else [4, 4])  # the lane waits for the fourth
    assert all(a[0].new for a in await asyncio.gather(*second))


async def test_after_a_round_with_a_single_caller_the_lane_stops_at_once():
    store = HeldStore(hold=False)
    gc = lingering(store)
    await asyncio.wait_for(_call(gc, "a"), 60)  # (a guard against a hang, not a timing)
    await _idle()
    assert gc._active == 0  # no lane lingers: the next lone call starts one and is taken at once
    await asyncio.wait_for(_call(gc, "b"), 60)
    assert _sizes(store) == [1, 1]


async def test_a_group_worth_of_events_ends_a_linger():
    store = HeldStore(hold=False)
    gc = lingering(store, group_commit_max_events=3)
    await asyncio.gather(*[_call(gc, f"a{i}") for i in range(3)])
    big = _call(gc, "b0", "b1", "b2")  # one call, a whole group's events
    await asyncio.wait_for(big, 60)
    assert _sizes(store) == [3, 3]


async def test_a_linger_ends_at_its_deadline_with_the_calls_that_came():
    store = HeldStore(hold=False)
    gc = group_commit(store, group_commit_linger_ms=1)
    await asyncio.gather(*[_call(gc, f"a{i}") for i in range(4)])
    fewer = [_call(gc, "b0"), _call(gc, "b1")]  # two of four: stored when the linger runs out
    await asyncio.wait_for(asyncio.gather(*fewer), 60)
    assert _sizes(store) == [4, 2]
    await asyncio.wait_for(asyncio.gather(*gc._running), 60)  # nothing more came: the lane stops
    assert gc._active == 0 and _sizes(store) == [4, 2]


async def test_close_ends_a_lingering_lane():
    store = HeldStore(hold=False)
    gc = lingering(store)
    await asyncio.gather(*[_call(gc, f"a{i}") for i in range(2)])
    queued = _call(gc, "q")  # one of the two the lane waits for
    await _idle()
    assert gc._active == 1 and gc.queued == 1
    gc.close()
    with pytest.raises(ShuttingDown):
        await queued
    await _settle(lambda: gc._active == 0)
