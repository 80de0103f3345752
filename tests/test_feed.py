"""The commit feed (migration 0008, connlog.store.feed) on a real database:
an event appears only once every transaction that began writing before it
has ended, so readers that follow positions see every event exactly once,
whatever order concurrent transactions commit in; every insert notifies."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import asyncpg
import pytest

from connlog.store.feed import CHANNEL, FOLDER_LOCK_ID, FeedPosition, horizon, read_after
from connlog.store.partitions import create_partitions
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import ingest

DAY = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
async def db(pg_server):
    url = await pg_server.create_database(migrated=True)
    conn = await asyncpg.connect(url)
    await create_partitions(conn, [DAY.date()])
    await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('t1'), ('t2')")
    await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES (1, 'N1'), (2, 'N2')")
    yield url, conn
    await conn.close()


async def _insert(conn: asyncpg.Connection, key: int, tenant_ref: int = 1) -> int:
    event_id: int = await conn.fetchval(
        """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome, severity,
                                          band, vendor, payload)
           VALUES ($1, $1, $2, $3, 1, 1, 0, 0, 1, '') RETURNING id""",
        tenant_ref, DAY + dt.timedelta(seconds=key), key.to_bytes(4, "big"))
    return event_id


async def _drain(conn: asyncpg.Connection, after: FeedPosition, limit: int = 1000) -> tuple[list[int], FeedPosition]:
    seen: list[int] = []
    while True:
        page = await read_after(conn, after, limit)
        seen += [e.event.event_id for e in page.events]
        after = page.last(after)
        if page.complete:
            return seen, after


async def test_an_event_waits_for_every_transaction_that_began_writing_before_it(db):
    url, conn = db
    start = await horizon(conn)
    early = await asyncpg.connect(url)
    try:
        async with early.transaction():
            first = await _insert(early, 1)  # written, not yet committed
            second = await _insert(conn, 2)  # committed, but after `early` began writing
            assert (await _drain(conn, start))[0] == []
        seen, after = await _drain(conn, start)
        assert seen == [first, second]  # commit order of xids, not of ids or commits
        assert (await _drain(conn, after))[0] == []  # resumed: no repeat
        third = await _insert(conn, 3)
        assert (await _drain(conn, after))[0] == [third]
    finally:
        await early.close()


async def test_a_fold_in_progress_holds_no_event_back_but_any_other_writer_does(db):
    """The rollup maintainer's fold (its session holds FOLDER_LOCK_ID) stores
    no event: readers pass its transaction at once. Any other transaction
    that began writing before an event still holds that event back."""
    url, conn = db
    start = await horizon(conn)
    folder, other = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        assert await folder.fetchval("SELECT pg_try_advisory_lock($1)", FOLDER_LOCK_ID)
        async with folder.transaction():
            await folder.execute("SELECT xid FROM connection_rollup_watermark FOR UPDATE")  # (as a fold: an xid)
            stored = await _insert(conn, 1)
            assert (await _drain(conn, start))[0] == [stored]
        async with other.transaction():
            await other.execute("SELECT xid FROM connection_rollup_watermark FOR UPDATE")  # the same, unlocked
            held = await _insert(conn, 2)
            assert (await _drain(conn, start))[0] == [stored]
        assert (await _drain(conn, start))[0] == [stored, held]
    finally:
        await folder.close()
        await other.close()


async def test_a_rolled_back_write_leaves_no_gap_and_a_page_limit_resumes_exactly(db):
    url, conn = db
    start = await horizon(conn)
    other = await asyncpg.connect(url)
    try:
        tr = other.transaction()
        await tr.start()
        await _insert(other, 1)
        kept = [await _insert(conn, k) for k in range(2, 7)]
        await tr.rollback()
    finally:
        await other.close()
    seen, _ = await _drain(conn, start, limit=2)
    assert seen == kept


async def test_one_tenant_only(db):
    url, conn = db
    start = await horizon(conn)
    mine = await _insert(conn, 1, tenant_ref=1)
    await _insert(conn, 2, tenant_ref=2)
    page = await read_after(conn, start, 10, tenant_ref=1)
    assert [e.event.event_id for e in page.events] == [mine]
    assert [(e.tenant_ref, e.event.event.network_id) for e in page.events] == [(1, "N1")]


async def test_concurrent_writers_committing_in_any_order_are_each_read_once(db):
    url, conn = db
    start = await horizon(conn)
    writers = [await asyncpg.connect(url) for _ in range(6)]
    rng = random.Random(7)
    written: list[int] = []
    read: list[int] = []
    done = asyncio.Event()

    async def write(writer: asyncpg.Connection, keys: range) -> None:
        for key in keys:
            async with writer.transaction():
                written.append(await _insert(writer, key))
                await writer.execute("SELECT pg_sleep($1)", rng.random() / 200)  # commit out of id order

    async def follow() -> None:
        after = start
        reader = await asyncpg.connect(url)
        try:
            while not done.is_set() or len(read) < len(written):
                page = await read_after(reader, after, 7)
                read.extend(e.event.event_id for e in page.events)
                after = page.last(after)
                await asyncio.sleep(0)
        finally:
            await reader.close()

    follower = asyncio.create_task(follow())
    try:
        await asyncio.gather(*(write(w, range(i * 40, i * 40 + 40)) for i, w in enumerate(writers)))
        done.set()
        await asyncio.wait_for(follower, 60)
    finally:
        follower.cancel()
        for w in writers:
            await w.close()
    assert len(written) == 240
    assert sorted(read) == sorted(written) and len(set(read)) == len(read)


async def test_the_ingest_service_notifies_the_channel_after_storing(clients, tenant, database_url):
    listener = await asyncpg.connect(database_url)
    woken: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: woken.put_nowait(args[2]))
    try:
        await ingest(clients, tenant, [simple_event("N_feed", when=now() - dt.timedelta(minutes=1))])
        assert await asyncio.wait_for(woken.get(), 30) == CHANNEL
    finally:
        await listener.close()


async def test_a_plain_insert_does_not_notify_in_its_transaction(db):
    """Storing does not NOTIFY inside its transaction (that would serialise
    every commit of the server): readers are woken by the ingest service."""
    url, conn = db
    listener = await asyncpg.connect(url)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[3]))
    try:
        await _insert(conn, 1)
        await conn.execute(f"NOTIFY {CHANNEL}, 'marker'")  # delivered after any notification the insert sent
        assert await asyncio.wait_for(payloads.get(), 30) == "marker"
    finally:
        await listener.close()


@pytest.mark.parametrize("position", [FeedPosition(0), FeedPosition(5, 9), FeedPosition(2**63 - 1, 2**63 - 1)])
def test_a_position_survives_its_token(position):
    assert FeedPosition.from_token(position.token()) == position


@pytest.mark.parametrize("token", ["", "abc", "!!!!", FeedPosition(1).token() + "AA", "_" * 22])
def test_a_bad_token_is_refused(token):
    with pytest.raises(ValueError):
        FeedPosition.from_token(token)
