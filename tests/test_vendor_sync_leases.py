"""Vendor-sync by replicas: sources shared out by leases in the database.

Store level (a case table on a real database): a claim skips a live lease
and takes a lapsed one, a renewal or a checkpoint write by anyone but the
live holder is refused, a claim never waits for a row another claimer has
locked. Process level: three ``connlog serve vendor-sync`` processes over
six sources of a counted workload against a fake Meraki cloud poll every
source once, store every event once, never two at once on one source; one of
them killed with -9 while a page is held at the fake, its sources taken over
by the others once its lease lapses, every event stored once and no cursor
moved back.

This module has a database of its own (and an ingest service on it): the
replicas claim every due source of their database, and nothing of the other
modules' may be among them. Waiting is on conditions, never on time."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from aiohttp import web

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.core.auth import create_service_key
from connlog.core.database import DatabaseServer, create_pool
from connlog.core.server import RunningService, start_service
from connlog.core.settings import Settings
from connlog.devtools.ports import free_port
from connlog.store.accounts import AccountStore
from connlog.store.sync import SyncStore
from tests.support.factories import now
from tests.support.fake_vendors import FakeMeraki, meraki_records
from tests.support.processes import start_process, stop_processes
from tests.support.services import Tenant, new_tenant
from tests.support.sync_calls import create
from tests.support.waiting import until

A, B = "host-a:101:aaaa", "host-b:202:bbbb"  # two replicas, as lease holders
LEASE = 30.0


@dataclass
class LeaseDb:
    url: str
    pool: asyncpg.Pool
    ingest: RunningService
    tenant: Tenant
    settings: Settings

    @property
    def store(self) -> SyncStore:
        return SyncStore(self.pool)


@pytest.fixture(scope="module")
async def lease_db(pg_server: DatabaseServer, settings: Settings) -> AsyncIterator[LeaseDb]:
    from connlog.ingest.servicer import register as register_ingest

    url = await pg_server.create_database("connlog_leases", migrated=True)
    own = settings.model_copy(update={"database_url": url})
    pool = await create_pool(own, url, min_size=1, max_size=6)
    ingest = await start_service("ingest", own, register_ingest, port=0, metrics_port=0)
    try:
        tenant = await new_tenant(AccountStore(pool))
        yield LeaseDb(url, pool, ingest, tenant, own)
    finally:
        await ingest.stop(1)
        await pool.close()


async def _tenant_ref(db: LeaseDb) -> int:
    async with db.pool.acquire() as conn:
        return await conn.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = $1", db.tenant.tenant_id)


async def _new_source(db: LeaseDb, source_id: str, **values) -> None:
    await db.store.create({"source_id": source_id, "tenant_ref": await _tenant_ref(db), "vendor": pb.VENDOR_MERAKI,
                           "base_url": "https://api.meraki.example/api/v1", "network_id": "N_lease",
                           "clients": ["k1"], "poll_interval_s": 600.0} | values)


async def _sql(db: LeaseDb, query: str, *args):
    async with db.pool.acquire() as conn:
        return await conn.fetchrow(query, *args)


# --- store level -------------------------------------------------------------

async def _held_by_a(db: LeaseDb, sid: str) -> None:
    assert await db.store.claim(sid, A, LEASE) is not None


async def _lapsed_a(db: LeaseDb, sid: str) -> None:
    await _held_by_a(db, sid)
    await _sql(db, "UPDATE sync_sources SET lease_until = now() - interval '1 second' WHERE source_id = $1", sid)


async def _not_due(db: LeaseDb, sid: str) -> None:
    await _sql(db, "UPDATE sync_sources SET next_poll_at = now() + interval '1 hour' WHERE source_id = $1", sid)


async def _disabled(db: LeaseDb, sid: str) -> None:
    await db.store.update(sid, {"enabled": False})


async def _rejected(db: LeaseDb, sid: str) -> None:
    await db.store.set_state(sid, spb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED, "no")


async def _free(db: LeaseDb, sid: str) -> None:
    return None


SETUPS: dict[str, Callable[[LeaseDb, str], Awaitable[None]]] = {
    "free": _free, "held by A": _held_by_a, "A's lease lapsed": _lapsed_a, "not due": _not_due,
    "disabled": _disabled, "credential rejected": _rejected,
}
MARK = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


async def _act(db: LeaseDb, sid: str, action: str) -> bool:
    """Do ``action``; whether it took (a claim got the source, a renewal or
    write was accepted, ...), checked against what the database holds."""
    who = A if action.endswith(" A") else B
    store = db.store
    if action.startswith("claim_due"):
        got = sid in [s.source_id for s in await store.claim_due(who, LEASE, 100)]
    elif action.startswith("claim"):
        got = await store.claim(sid, who, LEASE) is not None
    elif action.startswith("renew"):
        got = await store.renew(sid, who, LEASE)
    elif action.startswith("release"):
        got = await store.release(sid, who, polled=True)
        row = await _sql(db, "SELECT lease_holder, next_poll_at > now() + interval '500 seconds' AS later "
                             "FROM sync_sources WHERE source_id = $1", sid)
        assert (row["lease_holder"] is None and row["later"]) == got  # freed, next due one interval on
        return got
    elif action.startswith("advance"):
        got = await store.advance(sid, "k1", holder=who, checkpoint_at=MARK, fetched=7, success=True)
        stored = (await store.checkpoints(sid)).get("k1")
        assert (stored is not None and stored.checkpoint_at == MARK and stored.fetched == 7) == got
        return got
    elif action.startswith("client_error"):
        got = await store.client_error(sid, "k1", "boom", holder=who)
        stored = (await store.checkpoints(sid)).get("k1")
        assert (stored is not None and stored.last_error == "boom") == got
        return got
    elif action.startswith("set_state"):
        await store.set_state(sid, spb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED, "rejected", holder=who)
        record = await store.get(sid)
        assert record is not None
        return record.state == spb.SYNC_SOURCE_STATE_CREDENTIAL_REJECTED
    else:
        raise AssertionError(action)
    if action.startswith(("claim", "renew")):
        lease = await store.lease(sid)
        assert lease is not None
        if got:
            assert lease == (who, True) or lease.holder == who and lease.live
    return got


CASES = [
    # (state before, action, whether it takes)
    ("free", "claim_due B", True),
    ("held by A", "claim_due B", False),
    ("held by A", "claim B", False),
    ("held by A", "claim_due A", False),  # not even its own holder: a live lease is no due source
    ("A's lease lapsed", "claim_due B", True),
    ("A's lease lapsed", "claim B", True),
    ("not due", "claim_due B", False),
    ("not due", "claim B", True),  # a poll asked for (RunSyncSource)
    ("disabled", "claim_due B", False),
    ("disabled", "claim B", False),
    ("credential rejected", "claim_due B", False),
    ("credential rejected", "claim B", False),
    ("held by A", "renew A", True),
    ("held by A", "renew B", False),
    ("A's lease lapsed", "renew A", False),  # lapsed is lost: its poll stops
    ("free", "renew A", False),
    ("held by A", "advance A", True),
    ("held by A", "advance B", False),
    ("A's lease lapsed", "advance A", False),
    ("free", "advance A", False),
    ("held by A", "client_error A", True),
    ("held by A", "client_error B", False),
    ("held by A", "set_state A", True),
    ("held by A", "set_state B", False),
    ("held by A", "release B", False),
    ("held by A", "release A", True),
]


@pytest.mark.parametrize(("state", "action", "takes"), CASES, ids=[f"{s}-{a}" for s, a, _ in CASES])
async def test_lease_rules(lease_db: LeaseDb, state: str, action: str, takes: bool):
    sid = f"case-{abs(hash((state, action))):x}"
    await _new_source(lease_db, sid)
    try:
        await SETUPS[state](lease_db, sid)
        assert await _act(lease_db, sid, action) is takes
    finally:
        await lease_db.store.delete(sid)


async def test_a_claim_skips_rows_another_claimer_has_locked(lease_db: LeaseDb):
    """FOR UPDATE SKIP LOCKED: a claim passes over a row another transaction
    holds locked (another replica claiming it this instant) and takes the
    rest, instead of waiting for it."""
    ids = ["skip-1", "skip-2"]
    for sid in ids:
        await _new_source(lease_db, sid)
    try:
        async with lease_db.pool.acquire() as other, other.transaction():
            await other.execute("SELECT 1 FROM sync_sources WHERE source_id = 'skip-1' FOR UPDATE")
            # (waiting for the lock instead would only end when this transaction does: the deadline fails it)
            claimed = await asyncio.wait_for(lease_db.store.claim_due(B, LEASE, 10), 30)
            assert [s.source_id for s in claimed] == ["skip-2"]
        assert [s.source_id for s in await lease_db.store.claim_due(A, LEASE, 10)] == ["skip-1"]
    finally:
        for sid in ids:
            await lease_db.store.delete(sid)


async def test_concurrent_claims_share_sources_out_once(lease_db: LeaseDb):
    ids = [f"share-{i:02d}" for i in range(24)]
    for sid in ids:
        await _new_source(lease_db, sid)
    holders = [f"host:{n}:cccc" for n in range(3)]
    try:
        rounds = await asyncio.gather(*(lease_db.store.claim_due(h, LEASE, 5) for h in holders for _ in range(2)))
        claimed = [s.source_id for r in rounds for s in r]
        assert len(claimed) == len(set(claimed)) == 24  # each once, by one holder
        async with lease_db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT source_id, lease_holder FROM sync_sources WHERE source_id = ANY($1)", ids)
        assert {r["lease_holder"] for r in rows} <= set(holders) and all(r["lease_holder"] for r in rows)
    finally:
        for sid in ids:
            await lease_db.store.delete(sid)


# --- processes ---------------------------------------------------------------

SOURCES = 6
EVENTS = 150  # per source: 3 pages of 50


class CountingMeraki(FakeMeraki):
    """The fake Meraki cloud, also noting how many requests for one client are
    in flight at once (more than one: two pollers of one source), and able to
    hold requests: until ``barrier`` distinct clients have one in flight, or
    the first request for a second page (``hold_next_page``) until the test
    sets ``release``."""

    def __init__(self) -> None:
        super().__init__("meraki-key", per_page_cap=50)
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []
        self.barrier = 0
        self.waiting: set[str] = set()
        self.all_waiting = asyncio.Event()
        self.hold_next_page = False
        self.held_client = ""
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["client"]
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        if self.in_flight[name] > 1:
            self.overlaps.append(name)
        try:
            if self.barrier and not self.all_waiting.is_set():
                self.waiting.add(name)
                if len(self.waiting) >= self.barrier:
                    self.all_waiting.set()
                await self.all_waiting.wait()
            if self.hold_next_page and "startingAfter" in request.query and not self.held.is_set():
                self.held_client = name
                self.held.set()
                await self.release.wait()  # the asker is killed meanwhile
            return await super().handle(request)
        finally:
            self.in_flight[name] -= 1


@dataclass
class Replicas:
    procs: list[subprocess.Popen]
    ports: list[int]


@contextmanager
def _replicas(db: LeaseDb, service_key: str, logs: Path, *, lease: float, n: int = 3) -> Iterator[Replicas]:
    procs, ports = [], []
    try:
        for i in range(n):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
            env.update(DATABASE_URL=db.url, CONNLOG_VENDOR_SYNC_PORT=str(port),
                       CONNLOG_VENDOR_SYNC_METRICS_PORT=str(free_port()),
                       CONNLOG_SYNC_INGEST_ADDRESS=f"127.0.0.1:{db.ingest.port}",
                       CONNLOG_SYNC_SCHEDULE_SECONDS="0.2", CONNLOG_SYNC_INITIAL_LOOKBACK_SECONDS="21600",
                       CONNLOG_SYNC_HTTP_TIMEOUT_SECONDS="120", CONNLOG_SYNC_LEASE_SECONDS=str(lease),
                       CONNLOG_SYNC_CLAIM_BATCH="2", CONNLOG_SYNC_OVERLAP_SECONDS="60",
                       CONNLOG_LOG_FORMAT="console", CONNLOG_LOG_LEVEL="info", CONNLOG_DATA_DIR=str(logs),
                       CONNLOG_SYNC_ALLOW_HTTP="true", CONNLOG_SYNC_ALLOWED_DESTINATIONS="127.0.0.1/32,::1/128",
                       CONNLOG_SYNC_SERVICE_KEY=service_key,
                       CONNLOG_SECRET_KEYS=db.settings.secret_keys.get_secret_value())
            procs.append(start_process("vendor-sync", env, logs / f"vendor-sync-{i}.log"))
            ports.append(port)
        yield Replicas(procs, ports)
    finally:
        stop_processes(procs)


@pytest.fixture
async def workload(lease_db: LeaseDb, tmp_path: Path) -> AsyncIterator[tuple[CountingMeraki, list[list[dict]], str]]:
    """The fake Meraki cloud with ``EVENTS`` records for each of ``SOURCES``
    clients; a service key for the replicas; a checkpoint history (a
    trigger noting every checkpoint write: before and after, and the
    source's lease holder then). Every source is deleted after."""
    fake = CountingMeraki()
    start = now() - dt.timedelta(hours=2)
    records = [meraki_records(EVENTS, start, 2.0, tag=f"w{i}-") for i in range(SOURCES)]
    for i, recs in enumerate(records):
        fake.add(f"N_w{i}", f"c{i}", recs)
    await fake.start()
    key = await create_service_key(AccountStore(lease_db.pool), description="tests: vendor-sync replicas")
    async with lease_db.pool.acquire() as conn:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS test_checkpoint_writes (
                source_id text, client text, before timestamptz, after timestamptz, holder text);
            TRUNCATE test_checkpoint_writes;
            CREATE OR REPLACE FUNCTION test_note_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO test_checkpoint_writes VALUES (
                    NEW.source_id, NEW.client, CASE WHEN TG_OP = 'UPDATE' THEN OLD.checkpoint_at END,
                    NEW.checkpoint_at,
                    (SELECT lease_holder FROM sync_sources WHERE source_id = NEW.source_id));
                RETURN NEW;
            END $$;
            CREATE OR REPLACE TRIGGER test_note_checkpoint AFTER INSERT OR UPDATE ON sync_checkpoints
                FOR EACH ROW EXECUTE FUNCTION test_note_checkpoint();""")
    try:
        yield fake, records, key.token
    finally:
        fake.release.set()
        fake.all_waiting.set()
        await fake.stop()
        async with lease_db.pool.acquire() as conn:
            await conn.execute("DROP TRIGGER test_note_checkpoint ON sync_checkpoints")
            await conn.execute("DELETE FROM sync_sources")
        await AccountStore(lease_db.pool).revoke_key(key.key_id)


async def _create_sources(db: LeaseDb, fake: CountingMeraki, port: int) -> list[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 60)
        stub = sgrpc.VendorSyncServiceStub(channel)
        ids = []
        for i in range(SOURCES):
            source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{fake.url}/api/v1", credential="meraki-key",
                                    network_id=f"N_w{i}", clients=[f"c{i}"])
            source.poll_interval.FromSeconds(3600)  # polled once in these tests
            ids.append((await create(stub, db.tenant, source)).name.removeprefix("syncSources/"))
        return ids


async def _stored(db: LeaseDb) -> dict[str, list[str]]:
    """The capture ids stored, per network."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("""SELECT n.network_id, e.payload FROM connection_events e
                                   JOIN networks n USING (network_ref)""")
    out: dict[str, list[str]] = {}
    for row in rows:
        event = pb.ConnectionEvent.FromString(row["payload"])
        out.setdefault(row["network_id"], []).append(json.loads(event.vendor_record.data)["captureId"])
    return out


async def _clear_events(db: LeaseDb) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute("DELETE FROM connection_events")


async def _checkpoints(db: LeaseDb) -> dict[str, asyncpg.Record]:
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM sync_checkpoints")
    return {r["source_id"]: r for r in rows}


async def _all_done(db: LeaseDb, ids: list[str], records: list[list[dict]]) -> bool:
    """Every source polled to its last record and its lease released."""
    cps = await _checkpoints(db)
    async with db.pool.acquire() as conn:
        held = await conn.fetchval("SELECT count(*) FROM sync_sources WHERE lease_holder IS NOT NULL")
    last = {sid: dt.datetime.fromisoformat(recs[-1]["occurredAt"].replace("Z", "+00:00"))
            for sid, recs in zip(ids, records, strict=True)}
    return held == 0 and all(
        sid in cps and cps[sid]["checkpoint_at"] is not None and cps[sid]["checkpoint_at"] >= last[sid]
        for sid in ids)


async def _assert_exactly_once(db: LeaseDb, records: list[list[dict]]) -> None:
    stored = await _stored(db)
    for i, recs in enumerate(records):
        assert sorted(stored.get(f"N_w{i}", [])) == sorted(r["captureId"] for r in recs), f"source {i}"
    async with db.pool.acquire() as conn:
        writes = await conn.fetch("SELECT * FROM test_checkpoint_writes")
    assert writes
    assert [w for w in writes if w["before"] is not None and w["after"] < w["before"]] == []  # never back
    assert [w for w in writes if w["holder"] is None] == []  # only ever under a lease


async def test_three_replicas_share_sources_each_polled_once(lease_db: LeaseDb, workload, tmp_path: Path):
    fake, records, key = workload
    await _clear_events(lease_db)
    # Each replica holds 2 sources at most: the first request of all 6 is held
    # until 6 are in flight, which takes all three replicas at once.
    fake.barrier = SOURCES
    with _replicas(lease_db, key, tmp_path, lease=LEASE) as replicas:
        ids = await _create_sources(lease_db, fake, replicas.ports[0])
        await until(lambda: _is_set(fake.all_waiting), "every source's first page asked for", 120)
        async with lease_db.pool.acquire() as conn:
            holders = await conn.fetch("SELECT lease_holder, count(*) FROM sync_sources GROUP BY 1")
        assert sorted(r["count"] for r in holders) == [2, 2, 2]  # three replicas, two sources each
        assert {int(r["lease_holder"].split(":")[1]) for r in holders} == {p.pid for p in replicas.procs}
        await until(lambda: _all_done(lease_db, ids, records), "every source polled to its end", 180)
        assert all(p.poll() is None for p in replicas.procs)
    await _assert_exactly_once(lease_db, records)
    assert fake.overlaps == []  # never two requests for one client at once
    cps = await _checkpoints(lease_db)
    # each source polled by one replica, once: every record fetched once, ingested once, never found again
    assert [(cps[s]["fetched"], cps[s]["ingested"], cps[s]["duplicate"]) for s in ids] == [(EVENTS, EVENTS, 0)] * 6


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()


async def test_replica_killed_mid_page_is_taken_over_exactly_once(lease_db: LeaseDb, workload, tmp_path: Path):
    fake, records, key = workload
    await _clear_events(lease_db)
    fake.hold_next_page = True  # the first second-page request waits until its asker is dead
    with _replicas(lease_db, key, tmp_path, lease=3.0) as replicas:
        ids = await _create_sources(lease_db, fake, replicas.ports[0])
        await until(lambda: _is_set(fake.held), "a second page asked for", 120)
        source = ids[int(fake.held_client.removeprefix("c"))]
        lease = await lease_db.store.lease(source)
        assert lease is not None and lease.holder is not None
        victim = next(p for p in replicas.procs if p.pid == int(lease.holder.split(":")[1]))
        before = (await _checkpoints(lease_db))[source]["checkpoint_at"]
        assert before is not None  # its first page is in, the second under way
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        fake.release.set()
        # its lease lapses (3 s), another replica claims the source and resumes it
        await until(lambda: _all_done(lease_db, ids, records), "every source polled to its end", 180)
        survivors = [p for p in replicas.procs if p is not victim]
        assert all(p.poll() is None for p in survivors)
        async with lease_db.pool.acquire() as conn:
            takers = await conn.fetch("SELECT DISTINCT holder FROM test_checkpoint_writes WHERE source_id = $1",
                                      source)
        pids = {int(r["holder"].split(":")[1]) for r in takers}
        assert victim.pid in pids and pids - {victim.pid} <= {p.pid for p in survivors} and len(pids) >= 2
    await _assert_exactly_once(lease_db, records)
    cps = await _checkpoints(lease_db)
    assert cps[source]["checkpoint_at"] > before
    # nothing counted twice: what the dead replica ingested and checkpointed comes back as duplicates
    # (a source it was between ingesting and checkpointing counts fewer: those came back as duplicates too)
    assert cps[source]["ingested"] == EVENTS and cps[source]["duplicate"] > 0
    assert all(cps[s]["ingested"] <= EVENTS <= cps[s]["fetched"] for s in ids)

