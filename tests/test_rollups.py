"""Connection rollups (migrations 0009 and 0014, connlog.store.rollups,
connlog.query.rollups) on a real database: a summary read through the
hourly and daily rollups is exactly the raw computation's, before, during
and after the maintainer folds (late events, duplicates, partial hours and
days, time buckets, filters, an uncommitted earlier writer, two folders at
once, a property test over several days); events stored before the
migration are rolled up by it, and the hourly rollups to days by 0014;
retention takes a day's rollups (both levels) with its events; the maintainer catches up, retries
after a failure and never holds a summary up; the query service runs it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import secrets

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.core.database import create_pool
from connlog.core.settings import Settings
from connlog.query.insights import Insights
from connlog.query.rollups import RollupCollector, RollupMaintainer
from connlog.store import rollups
from connlog.store.events import EventFilter, listing_conditions
from connlog.store.insights import Grouping, RollupRange, SummaryReader, rollup_ranges
from connlog.store.migrate import migrate
from connlog.store.partitions import create_partitions, maintain_partitions
from tests.support import waiting
from tests.support.factories import simple_event, ts

S, F, I = pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_INFORMATIONAL  # noqa: E741
ASSOC, AUTH, DHCP = pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP
# a fixed past day (the store keeps it: partitions are made for it)
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
HOUR = dt.timedelta(hours=1)
GROUPINGS = [
    Grouping(()),
    Grouping(("access_point",)),
    Grouping(("network", "ssid", "band")),
    Grouping(("failure_category",)),
    Grouping(("step",)),
    Grouping(("access_point", "failure_category", "step")),
    Grouping(("client",)),  # (raw: the rollups have no client)
]
_keys = itertools.count(1)


def at(hours: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours)


class Store:
    """A database of its own (no service folds it but the test), one tenant
    with two networks."""

    def __init__(self, url: str, conn: asyncpg.Connection, pool: asyncpg.Pool) -> None:
        self.url, self.conn, self.pool = url, conn, pool
        self.insights = Insights(pool)

    async def insert(self, *events: dict, conn: asyncpg.Connection | None = None,
                     key: bytes | None = None) -> None:
        """Store events (dicts of columns); ``key``: the dedup key of all
        of them (a duplicate is not stored)."""
        for e in events:
            payload = pb.ConnectionEvent(subtype=e.get("subtype", ""))
            if e.get("reason"):
                payload.failure.reason = e["reason"]
                payload.failure.sub_reason = e.get("sub_reason", "")
            await (conn or self.conn).execute(
                """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome,
                       severity, band, vendor, client_mac, ssid, ap_serial, ap_name, failure_code, payload)
                   VALUES (1, $1, $2, $3, $4, $5, 0, $6, 1, $7::macaddr, $8, $9, $10, $11, $12)
                   ON CONFLICT DO NOTHING""",
                e.get("network", 1), e["at"], key or next(_keys).to_bytes(8, "big"), e.get("step", AUTH),
                e.get("outcome", S), e.get("band", pb.BAND_5_GHZ), e.get("mac", "02:00:00:00:00:01"),
                e.get("ssid", "corp"), e.get("ap"), e.get("ap_name"), e.get("code"), payload.SerializeToString())

    async def fold_all(self) -> None:
        while not (await rollups.fold(self.conn, 1 << 40)).caught_up:
            pass

    async def summary(self, flt: EventFilter, grouping: Grouping, *, use_rollups: bool = True) -> list:
        return list(await self.insights.summarize(1, flt, grouping, use_rollups=use_rollups))

    async def check(self, start: dt.datetime, end: dt.datetime, **filters) -> int:
        """Every grouping's summary through the rollups equals the raw
        computation's; returns how many events the range counts."""
        for grouping in [*GROUPINGS, Grouping(("ssid",), HOUR, start), Grouping((), 2 * HOUR, start),
                         Grouping(("access_point",), 24 * HOUR, DAY), Grouping(("step",), 48 * HOUR, at(-24))]:
            flt = EventFilter(start=start, end=end, **filters)
            assert await self.summary(flt, grouping) == await self.summary(flt, grouping, use_rollups=False), (
                grouping, start, end, filters)
        [whole] = await self.summary(EventFilter(start=start, end=end, **filters), Grouping(())) or [None]
        return whole.totals.event_count if whole else 0

    async def rollup_events(self) -> int:
        """The events the rollups count (the same in both levels)."""
        hourly = await self.conn.fetchval("SELECT coalesce(sum(events), 0) FROM connection_rollups")
        daily = await self.conn.fetchval("SELECT coalesce(sum(events), 0) FROM connection_rollups_daily")
        assert hourly == daily
        return hourly


@pytest.fixture
async def store(pg_server):
    url = await pg_server.create_database(migrated=True)
    conn = await asyncpg.connect(url)
    await create_partitions(conn, [(DAY + dt.timedelta(days=d)).date() for d in range(-1, 3)])
    await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1')")
    await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1'), (1, 'N2')")
    pool = await create_pool(Settings(database_url=url), url, min_size=1, max_size=3)
    yield Store(url, conn, pool)
    await pool.close()
    await conn.close()


def mixed_events() -> list[dict]:
    """Events over five hours, at hour edges and inside, of two networks,
    access points with and without serials, failures with and without codes."""
    return [
        {"at": at(0), "step": ASSOC, "ap": "Q-1"},
        {"at": at(0.5), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "first", "ap": "Q-1"},
        {"at": at(1), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "second", "ap": "Q-2"},
        {"at": at(1.25), "step": DHCP, "outcome": F, "subtype": "dhcp_no_offer", "ap_name": "mojo-ap"},
        {"at": at(1.25), "step": DHCP, "outcome": F, "subtype": "dhcp_nak", "ap_name": "mojo-ap"},
        {"at": at(2) - dt.timedelta(microseconds=1), "step": ASSOC, "outcome": I, "ap": "Q-1", "ssid": "guest",
         "band": pb.BAND_2_4_GHZ, "mac": "02:00:00:00:00:02"},
        {"at": at(2.5), "step": AUTH, "outcome": F, "code": 5, "reason": "timeout", "ap": "Q-1", "network": 2},
        {"at": at(3.75), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "latest", "ap": "Q-2",
         "mac": "02:00:00:00:00:03"},
        {"at": at(4.9), "step": DHCP, "ap": "Q-2", "ssid": None},
    ]


async def test_a_summary_through_the_rollups_is_the_raw_answer_before_and_after_folding(store):
    await store.insert(*mixed_events())
    ranges = [(at(0), at(5)), (at(0.25), at(4.5)), (at(1), at(2)), (at(0.5), at(1.5)), (at(-1), at(10))]
    before = [await store.check(a, b) for a, b in ranges]  # nothing rolled up yet: all raw
    assert await store.rollup_events() == 0
    await store.fold_all()
    assert await store.rollup_events() == len(mixed_events())  # every event counted once
    assert [await store.check(a, b) for a, b in ranges] == before == [9, 7, 4, 4, 9]
    for filters in ({"steps": [AUTH]}, {"bands": [pb.BAND_2_4_GHZ]}, {"ssid": "corp"}, {"ap_serial": "Q-2"},
                    {"network_ref": 2}, {"ap_name": "mojo-ap"}, {"client_mac": "02:00:00:00:00:03"}):
        await store.check(at(0), at(5), **filters)
    # known numbers, through the rollups: the failures by code, the latest reason's text
    [group] = await store.summary(EventFilter(start=at(0), end=at(5), network_ref=1), Grouping(()))
    assert (group.totals.event_count, group.totals.failure_count, group.totals.success_count) == (8, 5, 2)
    top = [(r.failure_code if r.HasField("failure_code") else None, r.count, r.reason, r.sub_reason)
           for r in group.top_failure_reasons]
    assert top == [(8, 3, "EAPOL", "latest"), (None, 2, "dhcp_nak", "")]  # the most recent one's text, by id


async def test_late_events_duplicates_and_a_partial_fold_still_give_the_raw_answer(store):
    await store.insert(*mixed_events())
    await store.fold_all()
    # late events (hours already rolled up), one stored twice: counted once, raw until folded
    late = [{"at": at(1.5), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "late"},
            {"at": at(0.1), "step": ASSOC}]
    await store.insert(*late)
    duplicate = {"at": at(3.2), "step": DHCP, "outcome": F, "code": 12, "reason": "dup"}
    await store.insert(duplicate, key=b"same")
    await store.insert(duplicate, key=b"same")
    assert await store.check(at(0), at(5)) == len(mixed_events()) + 3  # raw from the watermark on
    await store.fold_all()
    assert await store.rollup_events() == len(mixed_events()) + 3
    assert await store.check(at(0), at(5)) == len(mixed_events()) + 3
    # a fold that stops below an uncommitted earlier writer; a writer that commits after a later one
    early = await asyncpg.connect(store.url)
    try:
        async with early.transaction():
            await store.insert({"at": at(2.2), "step": AUTH}, conn=early)
            early_xid = await early.fetchval("SELECT pg_current_xact_id()::text::bigint")
            await store.insert({"at": at(2.3), "step": AUTH})
            done = await rollups.fold(store.conn, 1 << 40)
            assert done.caught_up and done.upper <= early_xid
            assert await store.rollup_events() == len(mixed_events()) + 3  # the later one waits for the earlier
            assert await store.check(at(0), at(5)) == len(mixed_events()) + 4
        assert await store.check(at(0), at(5)) == len(mixed_events()) + 5
        await store.fold_all()
        assert await store.rollup_events() == len(mixed_events()) + 5
        assert await store.check(at(0), at(5)) == len(mixed_events()) + 5
    finally:
        await early.close()


async def test_a_fold_takes_at_most_max_events_but_always_a_whole_transaction(store):
    """The maintainer's folds are bounded by events (a fold holds the feed's
    horizon until it commits): fewer transactions when they hold more than
    ``max_events``, but at least one, whole, however large."""
    await store.fold_all()  # (past the setup's transactions)
    async with store.conn.transaction():  # one transaction of 5 events
        await store.insert(*[{"at": at(0.1 * i)} for i in range(5)])
    await store.insert(*[{"at": at(1 + 0.1 * i)} for i in range(4)])  # four of one event each
    folded = []
    while not (await rollups.fold(store.conn, 1 << 40, max_events=3)).caught_up and len(folded) < 20:
        folded.append(await store.rollup_events())
    folded.append(await store.rollup_events())
    # (a fold past transactions without events, such as a fold's own, adds nothing)
    assert list(dict.fromkeys(n for n in folded if n)) == [5, 8, 9], folded
    assert await store.check(at(0), at(5)) == 9


async def test_the_partial_hours_at_the_edges_come_from_the_rollups_when_no_row_reaches_past_the_range(store):
    """A week ending now holds the current hour: read from the hourly
    rollups (not event by event) when none of that hour's rows has an
    event at or after the range's end, nor the start hour's one before its
    start; raw otherwise. The answer is the raw one either way."""
    flt = EventFilter(network_ref=1, start=at(1.5), end=at(3.75))
    where, args = listing_conditions(1, dataclasses.replace(flt, start=None, end=None), None, False)
    whole = rollup_ranges(flt, Grouping(()))
    assert whole == [RollupRange(rollups.HOURLY, at(2), at(3))]

    async def ranges() -> list[RollupRange]:
        return await SummaryReader(store.conn)._whole_edge_hours(whole, flt, where, list(args))

    await store.insert({"at": at(1.75)}, {"at": at(2.5)}, {"at": at(3.5)}, {"at": at(3.9), "network": 2})
    await store.fold_all()
    assert await ranges() == [RollupRange(rollups.HOURLY, at(1), at(4))]
    assert await store.check(flt.start, flt.end, network_ref=1) == 3
    await store.insert({"at": at(3.9)})  # after the end, in the end's hour: that hour is read raw
    await store.fold_all()
    assert await ranges() == [RollupRange(rollups.HOURLY, at(1), at(3))]
    await store.insert({"at": at(1.25)})  # before the start, in the start's hour: so is that one
    await store.fold_all()
    assert await ranges() == whole
    assert await store.check(flt.start, flt.end, network_ref=1) == 3


def days_events() -> list[dict]:
    """Events over three UTC days (DAY - 1 to DAY + 1), at and around the
    midnights, of two networks: whole days in the middle, partial days and
    hours at the edges."""
    return [
        {"at": at(-23.5), "step": ASSOC, "ap": "Q-1"},
        {"at": at(-1), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "eve", "ap": "Q-1"},
        {"at": at(0) - dt.timedelta(microseconds=1), "step": DHCP, "outcome": F, "ap_name": "mojo-ap"},
        *mixed_events(),
        {"at": at(12), "step": AUTH, "outcome": F, "code": 5, "reason": "timeout", "ap": "Q-2", "network": 2},
        {"at": at(23.99), "step": ASSOC, "outcome": I, "ap": "Q-2", "ssid": "guest", "band": pb.BAND_2_4_GHZ},
        {"at": at(24), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "midnight", "ap": "Q-2"},
        {"at": at(24.5), "step": DHCP, "ap": "Q-1"},
        {"at": at(47.75), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "last", "ap": "Q-1"},
    ]


DAY_RANGES = [
    (at(-24), at(48)),  # three whole days
    (at(-23.5), at(47.5)),  # partial hours, whole hours, a whole day, whole hours, partial hours
    (at(-0.5), at(24.5)),  # a whole day, partial hours at both edges
    (at(-1), at(25)),  # a whole day, whole hours at both edges
    (at(0), at(24)),  # one whole day
    (at(12), at(36)),  # across a midnight, no whole day
]


async def test_whole_days_and_edge_hours_give_the_raw_answer_with_late_events_and_duplicates(store):
    events = days_events()
    await store.insert(*events)
    before = [await store.check(a, b) for a, b in DAY_RANGES]  # all raw
    await store.fold_all()
    assert await store.rollup_events() == len(events)
    assert [await store.check(a, b) for a, b in DAY_RANGES] == before == [17, 16, 13, 15, 11, 4]
    for filters in ({"steps": [AUTH]}, {"ssid": "corp"}, {"ap_serial": "Q-2"}, {"network_ref": 2},
                    {"ap_name": "mojo-ap"}):
        await store.check(at(-23.5), at(47.5), **filters)
    # late events in days already rolled up, one of them stored twice: raw until folded, then counted once
    late = [{"at": at(6), "step": AUTH, "outcome": F, "code": 8, "reason": "EAPOL", "sub_reason": "late"},
            {"at": at(-12), "step": ASSOC}, {"at": at(47.99), "step": DHCP, "outcome": F, "code": 12}]
    await store.insert(*late)
    await store.insert({"at": at(23.5), "step": DHCP, "outcome": F, "code": 12, "reason": "dup"}, key=b"day-dup")
    await store.insert({"at": at(23.5), "step": DHCP, "outcome": F, "code": 12, "reason": "dup"}, key=b"day-dup")
    assert await store.check(at(-24), at(48)) == len(events) + 4
    await store.fold_all()
    assert await store.rollup_events() == len(events) + 4
    assert await store.check(at(-24), at(48)) == len(events) + 4
    for a, b in DAY_RANGES:
        await store.check(a, b)
    # the whole days are read from the daily rows: with DAY's hourly rows gone, a summary of DAY is unchanged,
    # and a summary of DAY's hours (no whole day) is not
    flt = EventFilter(start=at(-0.5), end=at(24.5))
    exact = await store.summary(flt, Grouping(("access_point",)))
    await store.conn.execute("DELETE FROM connection_rollups WHERE hour >= $1 AND hour < $2", at(0), at(24))
    assert await store.summary(flt, Grouping(("access_point",))) == exact
    assert (await store.summary(EventFilter(start=at(1), end=at(23)), Grouping(()))
            != await store.summary(EventFilter(start=at(1), end=at(23)), Grouping(()), use_rollups=False))


async def test_two_folders_at_once_count_each_event_once(store):
    await store.insert(*mixed_events())
    other = await asyncpg.connect(store.url)
    try:
        for _ in range(3):
            await store.insert({"at": at(1.5), "step": DHCP}, {"at": at(3.5), "step": ASSOC})
            await asyncio.gather(rollups.fold(store.conn, 1 << 40), rollups.fold(other, 1 << 40))
    finally:
        await other.close()
    await store.fold_all()
    assert await store.rollup_events() == len(mixed_events()) + 6
    assert await store.check(at(0), at(5)) == len(mixed_events()) + 6


async def test_a_summary_never_waits_for_a_fold_in_progress(store):
    await store.insert(*mixed_events())
    await store.fold_all()
    await store.insert({"at": at(1.5), "step": DHCP})
    stuck = await asyncpg.connect(store.url)
    try:
        async with stuck.transaction():  # a fold that has locked the watermark and written rollups, not committed
            await stuck.execute("SELECT xid FROM connection_rollup_watermark FOR UPDATE")
            await stuck.execute("UPDATE connection_rollups SET events = events + 100")
            await stuck.execute("UPDATE connection_rollup_watermark SET xid = xid + 1000000")
            answer = await asyncio.wait_for(store.check(at(0), at(5)), 60)  # a deadlock guard, not a timing
            assert answer == len(mixed_events()) + 1
    finally:
        await stuck.close()


async def test_retention_drops_a_days_rollups_with_its_events(store):
    await store.insert(*mixed_events(), {"at": at(26), "step": ASSOC})
    await store.fold_all()
    assert await store.conn.fetchval("SELECT count(*) FROM connection_rollups WHERE hour < $1", at(24)) > 0
    # the first day expires (retention of 1 day, two days later)
    assert await store.conn.fetchval("SELECT count(*) FROM connection_rollups_daily WHERE day < $1", at(24)) > 0
    await maintain_partitions(store.conn, retention_days=1, ahead_days=1, now=at(48) + dt.timedelta(minutes=1))
    assert await store.conn.fetchval("SELECT count(*) FROM connection_rollups WHERE hour < $1", at(24)) == 0
    assert await store.conn.fetchval("SELECT count(*) FROM connection_rollups_daily WHERE day < $1", at(24)) == 0
    assert await store.conn.fetchval("SELECT sum(events) FROM connection_rollups_daily") == 1  # the next day kept
    assert await store.rollup_events() == 1
    assert await store.check(at(0), at(30)) == 1


async def test_the_migration_rolls_up_events_stored_before_it(pg_server):
    url = await pg_server.create_database()
    conn = await asyncpg.connect(url)
    try:
        # the schema as it was before 0009
        await migrate(conn, up_to=8)
        await create_partitions(conn, [DAY.date()])
        await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1')")
        await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1'), (1, 'N2')")
        pool = await create_pool(Settings(database_url=url), url, min_size=1, max_size=2)
        store = Store(url, conn, pool)
        try:
            await store.insert(*mixed_events())
            # events stored before 0008 have no stored_xid
            await conn.execute("UPDATE connection_events SET stored_xid = NULL WHERE network_ref = 2")
            assert 9 in [m.version for m in await migrate(conn)]
            assert await store.rollup_events() == len(mixed_events())
            assert await store.check(at(0), at(5)) == len(mixed_events())
            await store.insert({"at": at(1.5), "step": DHCP})
            assert await store.check(at(0), at(5)) == len(mixed_events()) + 1
            await store.fold_all()
            assert await store.rollup_events() == len(mixed_events()) + 1
        finally:
            await pool.close()
    finally:
        await conn.close()


async def test_the_daily_migration_rolls_the_hourly_rollups_up_to_days(pg_server):
    url = await pg_server.create_database()
    conn = await asyncpg.connect(url)
    try:
        # the schema as it was before 0014, with events rolled up by 0009 and events above its watermark
        await migrate(conn, up_to=8)
        await create_partitions(conn, [(DAY + dt.timedelta(days=d)).date() for d in range(-1, 2)])
        await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1')")
        await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1'), (1, 'N2')")
        pool = await create_pool(Settings(database_url=url), url, min_size=1, max_size=2)
        store = Store(url, conn, pool)
        try:
            await store.insert(*days_events())
            await migrate(conn, up_to=13)
            pending = [{"at": at(3.5), "step": DHCP}, {"at": at(30), "step": AUTH, "outcome": F, "code": 8}]
            await store.insert(*pending)
            hourly = await conn.fetchval("SELECT sum(events) FROM connection_rollups")
            assert hourly == len(days_events())
            assert 14 in [m.version for m in await migrate(conn)]
            assert await store.rollup_events() == len(days_events())  # the days hold exactly the hours
            days = await conn.fetch("SELECT day, sum(events) AS n FROM connection_rollups_daily GROUP BY 1 ORDER BY 1")
            assert [(r["day"], r["n"]) for r in days] == [(at(-24), 3), (at(0), 11), (at(24), 3)]
            for a, b in DAY_RANGES:
                await store.check(a, b)  # the pending events raw
            # a fold of a version before 0014 (hourly only, by the key's old name) now fails
            old_fold = rollups.FOLD[:rollups.FOLD.index("), hourly AS (")].replace("hours AS MATERIALIZED", "x AS")
            with pytest.raises(asyncpg.UndefinedObjectError):
                await conn.execute(
                    old_fold + ") INSERT INTO connection_rollups AS r (tenant_ref) SELECT 1 FROM x "
                    "ON CONFLICT ON CONSTRAINT connection_rollups_key DO NOTHING", 0, 1 << 40)
            await store.fold_all()
            assert await store.rollup_events() == len(days_events()) + 2
            for a, b in DAY_RANGES:
                await store.check(a, b)
        finally:
            await pool.close()
    finally:
        await conn.close()


async def test_the_maintainer_catches_up_and_retries_after_a_failure(store):
    attempts = 0

    async def connect() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("the database is away")
        return await asyncpg.connect(store.url)

    maintainer = RollupMaintainer(Settings(rollup_period_seconds=0.2, rollup_retry_seconds=0.1), connect)
    task = asyncio.create_task(maintainer.run())
    try:
        await store.insert(*mixed_events())

        async def caught_up() -> bool:
            return await store.rollup_events() == len(mixed_events())

        await waiting.until(caught_up, "the maintainer to fold every event")
        assert maintainer.failures == 1 and attempts == 2 and maintainer.holder
        await waiting.until(lambda: _true(maintainer.lag_seconds == 0), "no lag")
        metrics = {m.name: m.samples[0].value for m in RollupCollector(maintainer).collect()}
        assert metrics["connlog_rollup_failures"] == 1 and metrics["connlog_rollup_maintaining"] == 1
        assert metrics["connlog_rollup_lag_seconds"] == 0
        # a second process stands by, reads the lag, and takes over when the first stops
        standby = RollupMaintainer(Settings(rollup_period_seconds=0.2), lambda: asyncpg.connect(store.url))
        second = asyncio.create_task(standby.run())
        try:
            await standby.passed.wait()
            assert not standby.holder
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.insert({"at": at(1.5), "step": DHCP})

            async def taken_over() -> bool:
                return standby.holder and await store.rollup_events() == len(mixed_events()) + 1

            await waiting.until(taken_over, "the standby to take over")
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


EVENT = st.fixed_dictionaries({
    # four UTC days (DAY - 1 to DAY + 2), half of the events within 90 minutes of a midnight
    "at": st.one_of(st.integers(-24 * 60, 3 * 24 * 60 - 1),
                    st.builds(lambda day, m: day * 24 * 60 + m, st.sampled_from([0, 1, 2]), st.integers(-90, 89)))
          .map(lambda m: at(m / 60)),
    "step": st.sampled_from([ASSOC, AUTH, DHCP]),
    "outcome": st.sampled_from([S, F, I]),
    "code": st.sampled_from([None, 5, 8]),
    "ap": st.sampled_from([None, "Q-1", "Q-2"]),
    "ap_name": st.sampled_from([None, "a"]),
    "ssid": st.sampled_from([None, "corp"]),
    "network": st.sampled_from([1, 2]),
    "reason": st.sampled_from(["", "r1", "r2"]),
})


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                               HealthCheck.too_slow])
@given(batches=st.lists(st.lists(EVENT, max_size=8), min_size=1, max_size=4),
       folds=st.lists(st.booleans(), min_size=4, max_size=4),
       start=st.integers(-24 * 60, 2 * 24 * 60), length=st.integers(1, 4 * 24 * 60))
async def test_property_rollups_answer_as_raw_whatever_is_folded(store, batches, folds, start, length):
    await store.conn.execute("TRUNCATE connection_events, connection_rollups, connection_rollups_daily")
    await store.conn.execute("UPDATE connection_rollup_watermark SET xid = pg_current_xact_id()::text::bigint")
    for batch, fold_now in zip(batches, folds, strict=False):
        await store.insert(*batch)
        if fold_now:
            await rollups.fold(store.conn, 1 << 40)
    begin = at(start / 60)
    await store.check(begin, begin + dt.timedelta(minutes=length))
    await store.check(at(-23.5), at(71.25))  # partial hours, whole hours, two whole days, whole hours, partial
    await store.check(at(0), at(48))  # two whole days
    await store.check(at(1), at(24))  # hours only


async def test_the_query_service_maintains_the_rollups(clients, tenant, pool, suite):
    net = f"N_roll_{secrets.token_hex(3)}"
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    events = [simple_event(net, mac="02:00:00:00:00:07", when=when + dt.timedelta(minutes=m), step=AUTH,
                           outcome=F if m % 20 else S) for m in range(0, 120, 10)]
    from connlog.api.v1 import ingest_service_pb2 as ingest_pb

    await clients.ingest.IngestConnectionEvents(ingest_pb.IngestConnectionEventsRequest(events=events),
                                                metadata=tenant.md())

    async def rolled_up() -> bool:
        async with pool.acquire() as conn:
            return await conn.fetchval(
                """SELECT coalesce(sum(r.events), 0) FROM connection_rollups r JOIN networks n USING (network_ref)
                   WHERE n.network_id = $1""", net) == len(events)

    await waiting.until(rolled_up, "the query service's maintainer to fold the events")
    request = ipb.SummarizeConnectionsRequest(parent=f"networks/{net}", start_time=ts(when),
                                              end_time=ts(when + dt.timedelta(hours=3)))
    reply = await clients.insights.SummarizeConnections(request, metadata=tenant.md("viewer"))
    assert (reply.groups[0].totals.event_count, reply.groups[0].totals.failure_count) == (12, 6)
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{suite.query.metrics_port}/metrics")).text
    assert "connlog_rollup_lag_seconds" in text and "connlog_rollup_maintaining" in text
