"""Migrations, partitions and retention on a real, empty database; ingest
creating (only creating) the partitions of the days it writes."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from connlog.core.database import create_pool
from connlog.core.metrics import ServiceMetrics
from connlog.core.principal import Principal, Role
from connlog.ingest.normalise import IngestWindow, normalise
from connlog.ingest.pipeline import WORKER_MIN_EVENTS, IngestPipeline
from connlog.ingest.workers import NormaliserPool
from connlog.store import row
from connlog.store.accounts import AccountStore
from connlog.store.events import COPY_THRESHOLD, EventStore, TenantBatch
from connlog.store.migrate import available_migrations, current_version, migrate
from connlog.store.partitions import create_partitions, existing_partitions, maintain_partitions, partition_name
from connlog.store.retention import retention_loop, run_once
from connlog.store.row import StoredEvent
from tests.support.factories import now, simple_event


@pytest.fixture
async def empty_db(pg_server):
    url = await pg_server.create_database()
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


async def test_migrations_from_empty_and_rerun(empty_db):
    assert await current_version(empty_db) == 0
    applied = await migrate(empty_db)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    assert await current_version(empty_db) == available_migrations()[-1].version
    tables = {r["tablename"] for r in await empty_db.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"tenants", "networks", "api_keys", "connection_events", "schema_migrations"} <= tables
    assert await migrate(empty_db) == []  # idempotent
    assert await empty_db.fetchval("SELECT count(*) FROM schema_migrations") == len(available_migrations())


async def test_changed_migration_is_refused(empty_db):
    await migrate(empty_db)
    await empty_db.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        await migrate(empty_db)


async def test_partitions_created_ahead_and_dropped_behind(empty_db):
    await migrate(empty_db)
    day0 = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    changes = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=day0)
    assert len(changes.created) == 31 + 1 + 7 and changes.dropped == []
    names = await existing_partitions(empty_db)
    assert partition_name(dt.date(2026, 2, 7)) in names  # cutoff day (10 Mar minus 31 days)
    assert partition_name(dt.date(2026, 3, 17)) in names  # 7 days ahead

    # Rows land in their day's partition; a row older than retention is gone
    # once its partition is dropped.
    await empty_db.execute("INSERT INTO tenants (tenant_id) VALUES ('t')")
    await empty_db.execute(
        """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome, severity,
                                          band, vendor, payload)
           VALUES (1, 1, $1, '\\x01', 1, 0, 0, 0, 1, ''), (1, 1, $2, '\\x02', 1, 0, 0, 0, 1, '')""",
        dt.datetime(2026, 2, 8, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 9, 1, tzinfo=dt.UTC),
    )
    later = day0 + dt.timedelta(days=3)
    changes = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=later)
    assert changes.dropped == [partition_name(dt.date(2026, 2, d)) for d in (7, 8, 9)]
    assert changes.created == [partition_name(dt.date(2026, 3, d)) for d in (18, 19, 20)]
    assert await empty_db.fetchval("SELECT count(*) FROM connection_events") == 1
    again = await maintain_partitions(empty_db, retention_days=31, ahead_days=7, now=later)
    assert again.created == [] and again.dropped == []



# --- retention ---------------------------------------------------------------------------------------------------

@pytest.fixture
async def own_settings(pg_server, settings):
    """The test settings, on a migrated database of their own without any
    partition (retention drops days: not on the shared one)."""
    return settings.model_copy(update={"database_url": await pg_server.create_database(migrated=True),
                                       "retention_days": 31, "partitions_ahead_days": 7})


def _day(day: int) -> str:
    return partition_name(dt.date(2026, 3, 1) + dt.timedelta(days=day - 1))


DAY0 = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


# (now, created, dropped): the window is 31 days back to 7 ahead
RETENTION_RUNS = [
    (DAY0, [partition_name(dt.date(2026, 2, 7) + dt.timedelta(days=d)) for d in range(39)], ["stale"]),
    (DAY0, [], []),  # idempotent
    (DAY0 + dt.timedelta(hours=6), [], []),  # the same day
    (DAY0 + dt.timedelta(days=2), [_day(18), _day(19)], [partition_name(dt.date(2026, 2, d)) for d in (7, 8)]),
    (DAY0 + dt.timedelta(days=2), [], []),
]


async def test_a_retention_run_creates_ahead_drops_behind_and_is_idempotent(own_settings):
    url = own_settings.database_url
    conn = await asyncpg.connect(url)
    try:
        stale = (await create_partitions(conn, [dt.date(2025, 12, 1)]))[0]  # e.g. written by ingest long ago
        for at, created, dropped in RETENTION_RUNS:
            changes = await run_once(own_settings, url, now=at)
            assert changes.created == created, at
            assert changes.dropped == [stale if name == "stale" else name for name in dropped], at
        names = await existing_partitions(conn)
        assert sorted(names) == [partition_name(dt.date(2026, 2, 9) + dt.timedelta(days=d)) for d in range(39)]
    finally:
        await conn.close()


async def test_connlog_retention_run_once(own_settings, capsys):
    from connlog.cli import _dispatch, _parser

    assert await _dispatch(_parser().parse_args(["retention", "run", "--once"]), own_settings) == 0
    assert capsys.readouterr().out.strip() == "partitions created: 39, dropped: 0"
    assert await _dispatch(_parser().parse_args(["retention", "run", "--once"]), own_settings) == 0
    assert capsys.readouterr().out.strip() == "partitions created: 0, dropped: 0"


async def test_the_retention_loop_runs_at_once_and_stops_when_told(own_settings):
    stop, ran = asyncio.Event(), asyncio.Event()
    loop = asyncio.create_task(retention_loop(own_settings, own_settings.database_url, stop, ran))
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        await ran.wait()  # the first run, at once (the period is an hour)
        assert len(await existing_partitions(conn)) == 39
        stop.set()
        await asyncio.wait_for(loop, 5)
    finally:
        loop.cancel()
        await conn.close()


# --- ingest creates the days it writes, and drops nothing --------------------------------------------------------

async def test_ingest_creates_a_missing_partition_and_drops_none(own_settings):
    pool = await create_pool(own_settings, own_settings.database_url, min_size=1, max_size=1)
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        today = now().date()
        expired = today - dt.timedelta(days=90)  # behind the retention: retention's to drop, not ingest's
        assert await create_partitions(conn, [expired]) == [partition_name(expired)]
        tenant_ref = await AccountStore(pool).ensure_tenant("t-partitions")
        principal = Principal("k", "t-partitions", tenant_ref, Role.OPERATOR, None)
        pipeline = IngestPipeline(own_settings, pool, ServiceMetrics("ingest"))

        # unary, today: no partition yet
        reply = await pipeline.ingest_batch(principal, [simple_event("N_p", client_id="one")])
        assert reply.accepted == 1
        assert set(await existing_partitions(conn)) == {partition_name(expired), partition_name(today)}

        # a large stream batch (the staging table's path) into yesterday and today
        yesterday = now() - dt.timedelta(days=1)
        events = [simple_event("N_p", client_id=f"s{i}", when=yesterday if i % 2 else None)
                  for i in range(COPY_THRESHOLD * 2)]
        outcome = await pipeline.ingest_stream_batch(principal, events)
        assert (outcome.accepted, outcome.rejected) == (len(events), 0)
        assert set(await existing_partitions(conn)) == {
            partition_name(expired), partition_name(today), partition_name(yesterday.date())}

        # a new connection (a new session): its staging table is created again
        await pool.expire_connections()
        more = [simple_event("N_p", client_id=f"m{i}") for i in range(COPY_THRESHOLD)]
        assert (await pipeline.ingest_stream_batch(principal, more)).accepted == COPY_THRESHOLD
        assert await conn.fetchval("SELECT count(*) FROM connection_events") == 1 + len(events) + len(more)
    finally:
        await conn.close()
        await pool.close()


async def test_ingest_through_the_workers_creates_a_missing_partition(own_settings):
    """The worker path (COPY rows prepared in a worker process) creates the
    days it writes too, from the days the prepared rows name."""
    pool = await create_pool(own_settings, own_settings.database_url, min_size=1, max_size=1)
    workers = NormaliserPool(1)
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        await workers.start()
        tenant_ref = await AccountStore(pool).ensure_tenant("t-worker-partitions")
        principal = Principal("k", "t-worker-partitions", tenant_ref, Role.OPERATOR, None)
        pipeline = IngestPipeline(own_settings, pool, ServiceMetrics("ingest"), workers)
        days_ago = [now() - dt.timedelta(days=d) for d in (2, 3)]
        events = [simple_event("N_w", client_id=f"w{i}", when=days_ago[i % 2]) for i in range(WORKER_MIN_EVENTS)]
        events.append(simple_event("N_w", client_id="w0", when=days_ago[0]))  # the first again
        assert not await existing_partitions(conn)
        outcome = await pipeline.ingest_stream_batch(principal, events)
        assert (outcome.accepted, outcome.duplicate, outcome.rejected) == (WORKER_MIN_EVENTS, 1, 0)
        assert set(await existing_partitions(conn)) == {partition_name(d.date()) for d in days_ago}
        assert await conn.fetchval("SELECT count(*) FROM connection_events") == WORKER_MIN_EVENTS
    finally:
        workers.close()
        await conn.close()
        await pool.close()


# --- the binary COPY rows are what PostgreSQL reads -------------------------------------------------------------

_UTC = dt.UTC
EDGE_ROWS = [
    StoredEvent("N_a", dt.datetime(2026, 3, 10, 23, 59, 59, 999999, tzinfo=_UTC), b"\x00" * 16, 1, 2, 3, 4, 5,
                "02:00:00:00:00:01", "client ünïcødé 🙂", "SSID \\ \t \n", 0, "Q2AB-0000", "AP 'quoted'",
                "00:11:22:33:44:55", 2**31 - 1, b"\x00\xff payload"),
    StoredEvent("N_b", dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=_UTC), b"", -(2**15), 2**15 - 1, 0, 0, 0,
                None, None, None, None, None, None, None, None, b""),
    StoredEvent("N_c", dt.datetime(2000, 1, 1, tzinfo=_UTC), b"k" * 16, 0, 0, 0, 0, 0,
                None, "", "", 255, "", "", None, -(2**31), b"p"),
]


async def test_copy_rows_are_read_by_postgresql_as_asyncpg_would_send_them(empty_db):
    """The rows connlog encodes itself (row.copy_rows, bound to the network
    refs) and asyncpg's own COPY of the same records give the same rows:
    NULLs, text with every kind of character, the extremes of each integer,
    times on both sides of PostgreSQL's epoch and of midnight, empty and
    binary bytea, MAC addresses."""
    conn = empty_db
    await conn.execute(row.CREATE_STAGING.replace("TEMP TABLE", "TABLE").replace(" ON COMMIT DELETE ROWS", ""))
    # (asyncpg sends a MAC address as text only: theirs takes it so, and reads both as text)
    await conn.execute(f"CREATE TABLE theirs (LIKE {row.STAGING_TABLE}); "
                       "ALTER TABLE theirs ALTER client_mac TYPE text, ALTER bssid TYPE text")
    refs = {"N_a": 1, "N_b": 2**31 - 1, "N_c": 3}
    copied = row.copy_rows(EDGE_ROWS, 42)
    assert copied.days == {dt.date(2026, 3, 10), dt.date(1999, 12, 31), dt.date(2000, 1, 1)}

    async def chunks():
        yield copied.bound(refs)

    records = [(42, *row.table_row(e, refs[e.network_id])) for e in EDGE_ROWS]
    await conn.copy_to_table(row.STAGING_TABLE, source=chunks(), columns=row.COPY_COLUMNS, format="binary")
    await conn.copy_records_to_table("theirs", records=records, columns=row.COPY_COLUMNS)
    ours = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {row.STAGING_TABLE} ORDER BY occurred_at")]
    theirs = [tuple(r) for r in await conn.fetch("SELECT * FROM theirs ORDER BY occurred_at")]
    assert ours == theirs == sorted(records, key=lambda r: r[2])


# --- rows copied straight into the table, or inserted around those stored already -------------------------------

async def _copy_setup(own_settings, tenant_id: str, max_size: int = 1):
    pool = await create_pool(own_settings, own_settings.database_url, min_size=1, max_size=max_size)
    accounts = AccountStore(pool)
    tenant_ref = await accounts.ensure_tenant(tenant_id)
    refs = await accounts.ensure_networks(tenant_ref, ["N_c1", "N_c2"])
    principal = Principal("k", tenant_id, tenant_ref, Role.OPERATOR, None)
    window = IngestWindow(now() - dt.timedelta(days=30), now() + dt.timedelta(days=1), 31)
    return pool, tenant_ref, refs, principal, window


def _rows(principal, window, clients, when: dt.datetime) -> list[StoredEvent]:
    """One event per client id at ``when`` (or a day before), over two
    networks and two days: the same client id, the same event."""
    events = [normalise(simple_event(f"N_c{1 + i % 2}", client_id=c, when=when - dt.timedelta(days=i % 2)),
                        principal, window) for i, c in enumerate(clients)]
    return sorted(events, key=row.insert_order)


async def _stored_clients(conn, tenant_ref) -> list[tuple[str, str]]:
    return [tuple(r) for r in await conn.fetch(
        "SELECT n.network_id, e.client_id FROM connection_events e JOIN networks n USING (network_ref) "
        "WHERE e.tenant_ref = $1 ORDER BY 2", tenant_ref)]


@pytest.mark.parametrize("copy_first", [True, False])
async def test_copied_rows_are_stored_once_each_whether_or_not_some_are_stored_already(own_settings, copy_first):
    pool, tenant_ref, refs, principal, window = await _copy_setup(own_settings, f"t-copy-{copy_first}")
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        store = EventStore(pool)
        when = now().replace(microsecond=0)
        first = _rows(principal, window, [f"c{i:03}" for i in range(100)], when)
        copied = await store.insert_copied(row.copy_rows(first, tenant_ref), tenant_ref, refs, copy_first=copy_first)
        assert copied == (100, False)  # all new: copied straight in (with copy_first), nothing refused
        # half of them again, with 50 new ones: the COPY is refused and stores nothing; the insert skips the 50
        again = _rows(principal, window, [f"c{i:03}" for i in range(50, 150)], when)
        copied = await store.insert_copied(row.copy_rows(again, tenant_ref), tenant_ref, refs, copy_first=copy_first)
        assert copied == (50, copy_first)
        stored = await _stored_clients(conn, tenant_ref)
        assert stored == [(f"N_c{1 + i % 2}", f"c{i:03}") for i in range(150)]  # each once, in its own network
        assert await conn.fetchval("SELECT count(*) FROM connection_events WHERE tenant_ref = $1", tenant_ref) == 150
        # the columns a copy leaves out take their defaults: an id, and the writer's transaction (the commit feed's)
        assert await conn.fetchval("SELECT count(*) FROM connection_events WHERE tenant_ref = $1 AND id IS NOT NULL "
                                   "AND stored_xid IS NOT NULL AND received_at IS NOT NULL", tenant_ref) == 150
    finally:
        await conn.close()
        await pool.close()


async def test_concurrent_copies_of_overlapping_rows_store_each_event_once_and_count_it_once(own_settings):
    """Four batches at once, each sharing half its events with the next:
    whichever COPY commits first, the others are refused (or wait on it and
    are refused) and insert around its rows; the new counts add up to the
    distinct events, whatever the interleaving."""
    pool, tenant_ref, refs, principal, window = await _copy_setup(own_settings, "t-copy-race", max_size=4)
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        store = EventStore(pool)
        when = now().replace(microsecond=0)
        batches = [_rows(principal, window, [f"r{i:04}" for i in range(200 * b, 200 * b + 400)], when)
                   for b in range(4)]
        results = await asyncio.gather(*(store.insert_copied(row.copy_rows(events, tenant_ref), tenant_ref, refs)
                                         for events in batches))
        assert sum(r.new for r in results) == 200 * 3 + 400
        assert await conn.fetchval("SELECT count(*) FROM connection_events WHERE tenant_ref = $1", tenant_ref) == 1000
        assert await conn.fetchval("SELECT count(DISTINCT client_id) FROM connection_events WHERE tenant_ref = $1",
                                   tenant_ref) == 1000
    finally:
        await conn.close()
        await pool.close()


# --- a group of several tenants' large batches -------------------------------------------------------------------

async def test_a_group_of_two_tenants_large_batches_stores_each_only_under_its_own_tenant(own_settings):
    """Group commit writes every tenant's batch in one transaction; batches
    of COPY_THRESHOLD events or more go through the staging table, whose rows
    live until the commit. The second tenant's INSERT must not take the
    first tenant's staged rows, even where both name the same network id."""
    pool = await create_pool(own_settings, own_settings.database_url, min_size=1, max_size=1)
    conn = await asyncpg.connect(own_settings.database_url)
    try:
        accounts = AccountStore(pool)
        store = EventStore(pool)
        window = IngestWindow(now() - dt.timedelta(days=30), now() + dt.timedelta(days=1), 31)
        batches = []
        for name in ("t-group-a", "t-group-b"):
            tenant_ref = await accounts.ensure_tenant(name)
            principal = Principal("k", name, tenant_ref, Role.OPERATOR, None)
            events = [normalise(simple_event("N_shared", client_id=f"{name}-{i}"), principal, window)
                      for i in range(COPY_THRESHOLD)]
            refs = await accounts.ensure_networks(tenant_ref, ["N_shared"])
            batches.append(TenantBatch(tenant_ref, events, refs))
        found = await store.insert_group(batches)
        assert [sum(o.new for o in outcomes.values()) for outcomes in found] == [COPY_THRESHOLD, COPY_THRESHOLD]
        stored = await conn.fetch("SELECT t.tenant_id, count(*) AS n, count(DISTINCT e.client_id) AS clients, "
                                  "bool_and(e.client_id LIKE t.tenant_id || '-%') AS own "
                                  "FROM connection_events e JOIN tenants t USING (tenant_ref) "
                                  "WHERE t.tenant_id LIKE 't-group-%' GROUP BY t.tenant_id ORDER BY 1")
        assert [tuple(r) for r in stored] == [("t-group-a", COPY_THRESHOLD, COPY_THRESHOLD, True),
                                              ("t-group-b", COPY_THRESHOLD, COPY_THRESHOLD, True)]
    finally:
        await conn.close()
        await pool.close()
