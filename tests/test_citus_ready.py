"""Citus-ready: every SQL statement the code sends that touches the tables to
be distributed by tenant (connection_events, connection_rollups,
connection_rollups_daily, access_points, client_directory,
client_directory_days) is keyed by tenant_ref, and every unique key of theirs
includes it (docs/operations.md, "Moving to Citus").

What the code sends is read from PostgreSQL itself: a server of this
module's own with ``pg_stat_statements`` preloaded (``track = all``: nested
statements too) records every statement of a representative workload run
through the real services (migrations; ingest unary, stream and REST; every
query and insights RPC and the live tail; the vendor read shapes through
Envoy; vendor-sync against the fake vendors; rollup folds; retention). Each
recorded statement is parsed with pglast and checked by
``connlog.devtools.tenant_sql``; the statements that are multi-tenant by
design are the short ``ALLOWED`` list below, each with its reason, matched
by fingerprint to the code's own text. ``EXPECTED`` names the statement
kinds the workload must have produced, so that a workload that silently
misses a path fails instead of passing on less.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources

import asyncpg
import grpc
import httpx
import pytest
from pydantic import SecretStr

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc, insights_service_pb2_grpc, query_service_pb2_grpc
from connlog.api.v1 import insights_service_pb2 as inspb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as spb_grpc
from connlog.core.database import DatabaseServer, create_pool, migrate_database
from connlog.core.sealing import new_key
from connlog.core.server import start_service
from connlog.core.settings import Settings
from connlog.devtools import tenant_sql
from connlog.store import rollups
from connlog.store.accounts import AccountStore
from connlog.store.partitions import create_partitions
from connlog.store.retention import RetentionPolicy, apply_retention
from tests.support.factories import now, simple_event, ts
from tests.support.fake_vendors import FakeMeraki, FakeMojo, meraki_records, mojo_logs
from tests.support.gateway import envoy_in_front
from tests.support.gateway_calls import ZEQUENZE_SAMPLES, meraki_event, meraki_get
from tests.support.services import Clients, Suite, Tenant, new_tenant, vendor_sync_service
from tests.support.sync_calls import create, run
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(600)

DISTRIBUTED_KEYS = ("connection_events", "connection_rollups", "connection_rollups_daily", "access_points",
                    "client_directory", "client_directory_days")


def _migration_statement(file: str, pattern: str) -> str:
    """The one statement of a shipped migration whose text matches ``pattern``."""
    text = resources.files("connlog.store.migrations").joinpath(file).read_text()
    [statement] = [s for s in tenant_sql.split(text) if re.search(pattern, s)]
    return statement


@dataclass(frozen=True)
class Allowed:
    """A statement that is multi-tenant by design, and why."""

    name: str
    sql: Callable[[], str]
    reason: str


# The deliberately multi-tenant statements (docs/operations.md, "Moving to
# Citus", says what each becomes on Citus).
ALLOWED = (
    Allowed("rollups.FOLD", lambda: rollups.FOLD,
            "the rollup maintainer folds one feed range of every tenant under the one watermark "
            "(INSERT ... SELECT grouped by tenant_ref: pushed down shard by shard on Citus)"),
    Allowed("rollups.FOLD_LIMIT", lambda: rollups.FOLD_LIMIT,
            "where the next fold of the one watermark ends: the feed's (N+1)-th event of every tenant "
            "(on Citus: per worker, as the feed itself, docs/operations.md)"),
    Allowed("rollups.STATUS", lambda: rollups.STATUS,
            "health/lag of the one watermark: whether any tenant's final event waits to be rolled up"),
    Allowed("rollups.FORGET_HOURS", lambda: rollups.FORGET_HOURS,
            "retention drops a whole day of every tenant, and that day's rollups with it"),
    Allowed("rollups.FORGET_DAYS", lambda: rollups.FORGET_DAYS,
            "retention drops a whole day of every tenant, and that day's daily rollups with it"),
    Allowed("rollups.FORGET_CLIENTS", lambda: rollups.FORGET_CLIENTS,
            "retention drops a whole day of every tenant, and takes that day out of every tenant's client directory"),
    Allowed("migration 0001 CREATE TABLE connection_events",
            lambda: _migration_statement("0001_initial.sql", r"CREATE TABLE connection_events"),
            "history: its PRIMARY KEY (id, occurred_at) is replaced by 0012's (id, occurred_at, tenant_ref); "
            "the catalog check below proves the keys as they are now"),
    Allowed("migration 0009 backfill",
            lambda: _migration_statement("0009_connection_rollups.sql", r"WITH horizon AS"),
            "runs once, rolling up the events of every tenant stored before 0009"),
    Allowed("migration 0014 backfill",
            lambda: _migration_statement("0014_daily_rollups.sql", r"^\s*INSERT INTO connection_rollups_daily"),
            "runs once, rolling the hourly rollups of every tenant up to days"),
    Allowed("migration 0016 backfill, days",
            lambda: _migration_statement("0016_client_directory.sql", r"^\s*INSERT INTO client_directory_days"),
            "runs once, counting the clients of every tenant's events stored before 0016 per day"),
    Allowed("migration 0016 backfill, clients",
            lambda: _migration_statement("0016_client_directory.sql", r"^\s*INSERT INTO client_directory \("),
            "runs once, listing the clients of every tenant's events stored before 0016"),
)

# The statement kinds the workload must produce: (label, pattern over the
# statement's text with whitespace collapsed). At least one statement from
# each store function that touches a distributed table.
EXPECTED: tuple[tuple[str, str], ...] = (
    ("events.insert, small (unnest ... RETURNING)", r"^INSERT INTO connection_events .* FROM unnest\(.*RETURNING"),
    ("events.insert, staged (RETURNING)", r"^INSERT INTO connection_events .* FROM connlog_staged_events .*RETURNING"),
    ("events.insert_copied, staged (a copy refused)",
     r"^INSERT INTO connection_events .* FROM connlog_staged_events (?!.*RETURNING)"),
    ("events.insert_copied, straight into the table",
     r'^COPY "?connection_events"? ?\("?tenant_ref"?, "?network_ref"?, .* FROM STDIN'),
    ("events: duplicates' ids", r"^SELECT e\.id, e\.dedup_key, e\.occurred_at FROM connection_events e JOIN unnest"),
    ("events.get", r"FROM connection_events e JOIN networks n USING \(network_ref\) WHERE e\.id = \$1"),
    ("events.list, ascending", r"FROM connection_events e JOIN networks n .* ORDER BY e\.occurred_at ASC"),
    ("events.list, descending", r"FROM connection_events e JOIN networks n .* ORDER BY e\.occurred_at DESC"),
    ("events.list, after a position", r"\(e\.occurred_at, e\.id\) [<>] \(\$\d+, \$\d+\)"),
    ("events.any", r"^SELECT EXISTS \(SELECT \$?\d+ FROM connection_events e WHERE e\.tenant_ref"),
    ("events.client_exists",
     r"^SELECT EXISTS \(SELECT \$?\d+ FROM connection_events WHERE tenant_ref = \$1 AND client_"),
    ("feed.read_after, one tenant (a watch's catch-up)", r"AND e\.tenant_ref = \$5 ORDER BY e\.stored_xid"),
    ("feed.read_facts_after (the tail's follower)",
     r"AND \(e\.tenant_ref = ANY\(\$5::int\[\]\)\) IS TRUE ORDER BY e\.stored_xid"),
    ("feed.read_events", r"FROM unnest\(\$1::int\[\], \$2::bigint\[\], \$3::timestamptz\[\]\) AS k"),
    ("insights.cells, raw", r"^WITH e AS \(SELECT .* FROM connection_events e WHERE e\.tenant_ref = \$1"),
    ("insights.cells, rollups", r"FROM connection_rollups e WHERE e\.tenant_ref = \$1"),
    ("insights.cells, daily rollups", r"FROM connection_rollups_daily e WHERE e\.tenant_ref = \$1"),
    ("insights.payloads", r"^SELECT e\.id, e\.payload FROM connection_events e JOIN unnest"),
    ("insights.timeline", r"^SELECT e\.id, n\.network_id, e\.occurred_at, e\.step, e\.outcome, e\.band"),
    ("rollups.fold", r"^WITH batch AS .* INSERT INTO connection_rollups AS r .* INSERT INTO connection_rollups_daily"),
    ("rollups.status", r"EXISTS \(SELECT \$?\d+ FROM connection_events e WHERE e\.stored_xid >= w\.xid"),
    ("rollups.forget, hours", r"^DELETE FROM connection_rollups WHERE hour"),
    ("rollups.forget, days", r"^DELETE FROM connection_rollups_daily WHERE day"),
    ("rollups.fold, the client directory", r"^WITH batch AS .* INSERT INTO client_directory_days AS r .* "
                                           r"INSERT INTO client_directory AS r"),
    ("rollups.forget, clients", r"^WITH lost AS .* DELETE FROM client_directory_days WHERE day"),
    ("directory.networks", r"FROM client_directory d WHERE d\.tenant_ref = \$1 AND d\.network_ref = n\.network_ref"),
    ("directory.clients", r"FROM client_directory d WHERE d\.tenant_ref = \$1 AND d\.network_ref = \$2 ORDER BY"),
    ("directory.clients, a search after a position",
     r"FROM client_directory d WHERE d\.tenant_ref = \$1 .* < \(\$4, \$5\) AND .*mac_digits LIKE"),
    ("accounts.record_access_points", r"^INSERT INTO access_points"),
    ("accounts.access_points", r"FROM access_points a JOIN networks n"),
    ("migration 0012", r"^ALTER TABLE connection_events ADD CONSTRAINT connection_events_pkey PRIMARY KEY"),
    ("partitions: a day created", r"PARTITION OF connection_events"),
)


def _collapsed(sql: str) -> str:
    return " ".join(sql.split())


# ---------------------------------------------------------------- the server and the services


@dataclass
class Stack:
    database_url: str
    admin: asyncpg.Connection  # reads pg_stat_statements and the catalog; touches no distributed table
    settings: Settings
    pool: asyncpg.Pool
    suite: Suite
    clients: Clients
    accounts: AccountStore


@pytest.fixture(scope="module")
async def stack(tmp_path_factory) -> AsyncIterator[Stack]:
    server = DatabaseServer.start(prefix="connlog-citus-pg-")
    try:
        await server.configure(**{"shared_preload_libraries": "pg_stat_statements",
                                  "pg_stat_statements.track": "all", "pg_stat_statements.max": "10000"})
        url = await server.create_database("connlog_citus")
        admin = await asyncpg.connect(url)
        if "pg_stat_statements" not in await admin.fetchval("SELECT current_setting('shared_preload_libraries')"):
            await admin.close()
            pytest.skip("the server in DATABASE_URL does not preload pg_stat_statements")
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await admin.execute("SELECT pg_stat_statements_reset()")
        await migrate_database(url)  # the migrations are part of what is checked
        settings = Settings(
            database_url=url, data_dir=tmp_path_factory.mktemp("citus-data"), secret_keys=SecretStr(new_key()),
            auth_cache_seconds=0, sync_allow_http=True, sync_allowed_destinations=("127.0.0.1/32", "::1/128"),
            meraki_rate_limit_per_second=20, shutdown_grace_seconds=5, log_level="warning", log_format="console",
            rollup_period_seconds=0.2,
        )
        pool = await create_pool(settings, url, min_size=1, max_size=4)
        from connlog.ingest.servicer import register as register_ingest
        from connlog.query.servicer import register as register_query

        ingest = await start_service("ingest", settings, register_ingest, port=0, metrics_port=0)
        query = await start_service("query", settings, register_query, port=0, metrics_port=0)
        suite = Suite(ingest, query, settings)
        try:
            async with grpc.aio.insecure_channel(suite.ingest_address) as ic, grpc.aio.insecure_channel(
                    suite.query_address) as qc:
                clients = Clients(ingest_service_pb2_grpc.IngestServiceStub(ic),
                                  query_service_pb2_grpc.QueryServiceStub(qc),
                                  insights_service_pb2_grpc.InsightsServiceStub(qc))
                yield Stack(url, admin, settings, pool, suite, clients, AccountStore(pool))
        finally:
            await ingest.stop(1)
            await query.stop(1)
            await pool.close()
            await admin.close()
            await server.drop_databases()
    finally:
        server.stop(mode="immediate")


# ---------------------------------------------------------------- the workload


def _events(network: str, count: int, *, client: str = "k1", mac: str = "02:cc:00:00:00:01",
            start: dt.datetime | None = None, **fields: object) -> list[pb.ConnectionEvent]:
    start = start or now() - dt.timedelta(hours=3)
    return [simple_event(network, client_id=client, mac=mac, when=start + dt.timedelta(seconds=7 * i), **fields)
            for i in range(count)]


async def _ingest(stack: Stack, tenant: Tenant, events: list[pb.ConnectionEvent]) -> ipb.IngestConnectionEventsResponse:
    reply = await stack.clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events),
                                                              metadata=tenant.md())
    assert reply.rejected_count == 0, [r.reason for r in reply.results if r.reason]
    return reply


async def _stream(stack: Stack, tenant: Tenant, *batches: list[pb.ConnectionEvent]) -> None:
    async def requests():
        for batch in batches:
            yield ipb.StreamIngestConnectionEventsRequest(events=batch)
    reply = await stack.clients.ingest.StreamIngestConnectionEvents(requests(), metadata=tenant.md())
    assert reply.rejected_count == 0


async def _ingest_paths(stack: Stack, a: Tenant, b: Tenant, gateway_url: str) -> str:
    """Unary (small, staged, duplicates), stream (small, a copy refused, a worker's batch), REST
    (canonical and Zequenze), with access points; returns a stored event's name."""
    small = _events("N_1", 5, access_point=pb.AccessPoint(serial="Q2-AP-1", name="ap-1"))
    reply = await _ingest(stack, a, small)
    await _ingest(stack, a, _events("N_1", 100, client="k2", mac="02:cc:00:00:00:02"))  # staged (>= 64)
    await _ingest(stack, a, small)  # duplicates: their ids are looked up
    failed = _events("N_1", 4, client="k4", mac="02:cc:00:00:00:04", outcome=pb.OUTCOME_FAILURE,
                     failure=pb.Failure(code=8, reason="EAPOL Handshake Failure"))
    await _ingest(stack, a, failed)  # (a summary reads the latest failure's payload)
    await _stream(stack, b, _events("N_1", 3))
    again = _events("N_2", 80, client="k3", mac="02:cc:00:00:00:03")
    await _stream(stack, b, again)
    await _stream(stack, b, again)  # the copy is refused: the rows are staged and inserted
    # a worker's batch (WORKER_MIN_EVENTS or more): copied straight into the table
    await _stream(stack, b, _events("N_2", 300, client="k5", mac="02:cc:00:00:00:05"))
    meraki = [meraki_event("N_m", "km1", now() - dt.timedelta(minutes=50 - i), i) for i in range(6)]
    await _ingest(stack, a, meraki)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        body = {"events": [{"networkId": "N_rest", "occurTime": (now() - dt.timedelta(minutes=3)).isoformat(),
                            "step": "CONNECTION_STEP_ASSOCIATION", "outcome": "OUTCOME_SUCCESS",
                            "client": {"macAddress": "02:cc:00:00:00:09"}}]}
        response = await http.post("/v1/connectionEvents:ingest", json=body,
                                   headers={"Authorization": f"Bearer {a.keys['operator']}"})
        assert response.status_code == 200, response.text
        response = await http.post("/api/v1/device_app_connection_log/", json=ZEQUENZE_SAMPLES["wifi"],
                                   headers={"Authorization": f"Bearer {a.keys['device']}"})
        assert response.status_code == 201, response.text
    return reply.results[0].name


async def _query_paths(stack: Stack, a: Tenant, name: str) -> None:
    query, insights = stack.clients.query, stack.clients.insights
    assert insights is not None
    viewer = a.md("viewer")
    await query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=name), metadata=viewer)
    first = await query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/N_1", page_size=3),
                                             metadata=viewer)
    await query.ListConnectionEvents(qpb.ListConnectionEventsRequest(
        parent="networks/N_1", page_size=3, page_token=first.next_page_token), metadata=viewer)
    await query.ListConnectionEvents(qpb.ListConnectionEventsRequest(
        parent="networks/-", page_size=10, client_mac_address="02:cc:00:00:00:02",
        steps=[pb.CONNECTION_STEP_ASSOCIATION],
        sort_order=qpb.SORT_ORDER_DESCENDING, start_time=ts(now() - dt.timedelta(days=1))), metadata=viewer)
    await query.ListConnectionEvents(qpb.ListConnectionEventsRequest(
        parent="networks/N_1", page_size=10, client_id="nobody"), metadata=viewer)
    start, end = now() - dt.timedelta(hours=4, minutes=30), now() + dt.timedelta(minutes=5)
    summary = dict(parent="networks/N_1", start_time=ts(start), end_time=ts(end))
    await insights.SummarizeConnections(inspb.SummarizeConnectionsRequest(
        **summary, group_by=[inspb.GROUP_BY_ACCESS_POINT, inspb.GROUP_BY_STEP]), metadata=viewer)
    await insights.SummarizeConnections(inspb.SummarizeConnectionsRequest(
        **summary, group_by=[inspb.GROUP_BY_CLIENT]), metadata=viewer)
    await insights.SummarizeTimeToConnect(inspb.SummarizeTimeToConnectRequest(**summary), metadata=viewer)
    days = dict(parent="networks/N_1", start_time=ts(start - dt.timedelta(days=3)), end_time=ts(end))
    await insights.SummarizeConnections(inspb.SummarizeConnectionsRequest(  # whole days: the daily rollups
        **days, group_by=[inspb.GROUP_BY_ACCESS_POINT]), metadata=viewer)
    await insights.ListClientSessions(inspb.ListClientSessionsRequest(
        parent="networks/N_1/clients/k2", start_time=ts(start), end_time=ts(end)), metadata=viewer)
    # the client directory (folded by the query service's maintainer: waited for, so that the pages hold clients)
    async with stack.pool.acquire() as conn:
        async def folded() -> bool:
            return not (await rollups.status(conn)).pending
        await until(folded, "the rollups and the directory to catch up")
    await query.ListNetworks(qpb.ListNetworksRequest(), metadata=viewer)
    await query.ListClients(qpb.ListClientsRequest(parent="networks/N_1"), metadata=viewer)
    found = await query.ListClients(qpb.ListClientsRequest(parent="networks/N_1", query="02:cc", page_size=1),
                                    metadata=viewer)
    await query.ListClients(qpb.ListClientsRequest(parent="networks/N_1", query="02:cc", page_size=1,
                                                   page_token=found.next_page_token), metadata=viewer)


async def _live_tail(stack: Stack, a: Tenant) -> None:
    """A watch fed by the follower (every tenant's feed), then a second one
    resumed from the first one's first message (its tenant's catch-up)."""
    await _ingest(stack, a, [simple_event("N_tail", mac="02:cc:00:00:00:0a")])  # the network exists
    messages: list[qpb.WatchConnectionEventsResponse] = []
    call = stack.clients.query.WatchConnectionEvents(qpb.WatchConnectionEventsRequest(parent="networks/N_tail"),
                                                     metadata=a.md("viewer"))

    async def read(call, into) -> None:
        async for message in call:
            into.append(message)
    reader = asyncio.create_task(read(call, messages))
    sent = 0

    async def delivered(count: int) -> Callable:
        async def check() -> bool:
            nonlocal sent
            if sum(len(m.connection_events) for m in messages) >= count:
                return True
            assert not reader.done(), reader  # (the watch ended: its error shows)
            sent += 1  # (the watch may not be held yet: each try stores one more event)
            await _ingest(stack, a, [simple_event("N_tail", mac="02:cc:00:00:00:0a",
                                                  when=now() - dt.timedelta(seconds=sent))])
            return False
        return check

    await until(await delivered(1), "the live tail to deliver an event")
    token = messages[0].resume_token
    await until(await delivered(sum(len(m.connection_events) for m in messages) + 2), "two more events")
    resumed: list[qpb.WatchConnectionEventsResponse] = []
    call2 = stack.clients.query.WatchConnectionEvents(
        qpb.WatchConnectionEventsRequest(parent="networks/N_tail", resume_token=token), metadata=a.md("viewer"))
    reader2 = asyncio.create_task(read(call2, resumed))

    async def caught_up() -> bool:
        return sum(len(m.connection_events) for m in resumed) >= 2
    await until(caught_up, "the resumed watch to catch up")
    for c, task in ((call, reader), (call2, reader2)):
        c.cancel()
        task.cancel()


async def _vendor_reads(stack: Stack, a: Tenant, gateway_url: str) -> None:
    key = {"X-Cisco-Meraki-API-Key": a.keys["viewer"]}
    since = {"t0": (now() - dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        for path, params in (
            ("/api/v1/networks/N_m/wireless/clients/km1/connectivityEvents", {"perPage": 3}),
            ("/api/v1/networks/N_m/wireless/clients/02:aa:00:00:00:01/connectivityEvents", {}),
            ("/api/v1/networks/N_m/wireless/connectionStats", since),
            ("/api/v1/networks/N_m/wireless/devices/connectionStats", since),
            ("/api/v1/networks/N_m/wireless/clients/connectionStats", since),
            ("/api/v1/networks/N_m/wireless/failedConnections", since),
            ("/api/v1/networks/N_m", {}),
            ("/api/v1/organizations", {}),
        ):
            response = await meraki_get(http, path, params=params, headers=key)
            assert response.status_code == 200, (path, response.text)
        # the next page (after a position, looking back for a previous one), and a client with no events
        first = await meraki_get(http, "/api/v1/networks/N_m/wireless/clients/km1/connectivityEvents",
                                 params={"perPage": 3}, headers=key)
        assert "next" in first.links, (first.headers.get("link"), first.text)
        following = httpx.URL(first.links["next"]["url"])
        response = await meraki_get(http, following.raw_path.decode(), headers=key)
        assert response.status_code == 200, response.text
        response = await meraki_get(http, "/api/v1/networks/N_m/wireless/clients/nobody/connectivityEvents",
                                    headers=key)
        assert response.status_code == 404, response.text
        [organization] = (await meraki_get(http, "/api/v1/organizations", headers=key)).json()
        response = await meraki_get(http, f"/api/v1/organizations/{organization['id']}/inventoryDevices",
                                    headers=key)
        assert response.status_code == 200, response.text
        response = await http.get("/V5/devices/clients/connectionlogs",
                                  params={"clientmacaddress": "02:cc:00:00:00:02"},
                                  headers={"Authorization": f"Bearer {a.keys['viewer']}"})
        assert response.status_code == 200, response.text


async def _vendor_sync(stack: Stack, a: Tenant) -> None:
    meraki, mojo = FakeMeraki("meraki-key"), FakeMojo("kid", "kvalue")
    await meraki.start()
    await mojo.start()
    try:
        meraki.add("N_sync", "k1", meraki_records(120, now() - dt.timedelta(hours=1), 2.0))
        mac = "f0:d7:aa:df:59:a2"
        mojo.add(mac, mojo_logs(90, now() - dt.timedelta(hours=1), mac))
        async with vendor_sync_service(
            stack.settings, stack.pool, sync_ingest_address=stack.suite.ingest_address, sync_schedule_seconds=0.2,
            sync_http_timeout_seconds=2.0, sync_backoff_base_seconds=0.05, sync_overlap_seconds=60.0,
            sync_initial_lookback_seconds=6 * 3600.0,
        ) as service, grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            sync = spb_grpc.VendorSyncServiceStub(channel)
            source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{meraki.url}/api/v1", credential="meraki-key",
                                    network_id="N_sync", clients=["k1"])
            source.poll_interval.FromSeconds(3600)
            status = await run(sync, a, await create(sync, a, source))
            assert status.clients[0].ingested_count == 120, status
            source = spb.SyncSource(vendor=pb.VENDOR_MOJO, base_url=f"{mojo.url}/new/webservice",
                                    credential="kid:kvalue", network_id="N_mojo_sync", clients=[mac],
                                    client_identifier="acme")
            source.poll_interval.FromSeconds(3600)
            status = await run(sync, a, await create(sync, a, source))
            assert status.clients[0].ingested_count == 90, status
    finally:
        await meraki.stop()
        await mojo.stop()


async def _rollups_and_retention(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        async def caught_up() -> bool:
            return not (await rollups.status(conn)).pending  # the query service's maintainer folds
        await until(caught_up, "the rollups to catch up")
        await rollups.fold(conn, 1 << 30)
        old = (now() - dt.timedelta(days=stack.settings.retention_days + 3)).date()
        await create_partitions(conn, [old])
        changes = await apply_retention(conn, RetentionPolicy.of(stack.settings))
        assert changes.dropped, changes


async def _recorded(stack: Stack) -> list[str]:
    rows = await stack.admin.fetch(
        """SELECT s.query FROM pg_stat_statements s
           WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())""")
    return [row["query"] for row in rows]


# ---------------------------------------------------------------- the test


async def test_every_statement_sent_is_keyed_by_tenant(stack: Stack, tmp_path_factory):
    a = await new_tenant(stack.accounts)
    b = await new_tenant(stack.accounts)
    async with envoy_in_front(stack.settings, tmp_path_factory.mktemp("citus-envoy"),
                              ingest=stack.suite.ingest_address, query=stack.suite.query_address) as gateway:
        name = await _ingest_paths(stack, a, b, gateway.url)
        await _query_paths(stack, a, name)
        await _live_tail(stack, a)
        await _vendor_reads(stack, a, gateway.url)
    await _vendor_sync(stack, a)
    await _rollups_and_retention(stack)

    statements = await _recorded(stack)
    constraints = {row["conname"]: list(row["columns"]) for row in await stack.admin.fetch(
        """SELECT c.conname, array_agg(a.attname::text) AS columns FROM pg_constraint c
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
           WHERE c.contype IN ('p', 'u') GROUP BY c.conname""")}
    allowed = {tenant_sql.fingerprint(entry.sql()): entry for entry in ALLOWED}
    problems, seen_allowed, touching = [], set(), []
    for sql in statements:
        if not tenant_sql.touches_distributed(sql):
            continue
        touching.append(_collapsed(sql))
        findings = tenant_sql.check_sql(sql, constraints=constraints)
        if not findings:
            continue
        entry = allowed.get(tenant_sql.fingerprint(sql))
        if entry is not None:
            seen_allowed.add(entry.name)
            continue
        problems.append(f"{_collapsed(sql)}\n    -> " + "; ".join(map(str, findings)))
    assert not problems, "statements not keyed by tenant_ref:\n" + "\n".join(problems)

    missing = [label for label, pattern in EXPECTED if not any(re.search(pattern, s) for s in touching)]
    assert not missing, f"the workload sent no statement of: {missing}"
    # every allow-list entry is still needed (an entry that no longer matches is stale)
    assert seen_allowed == {entry.name for entry in ALLOWED}, set(e.name for e in ALLOWED) - seen_allowed


async def test_every_unique_key_of_a_distributed_table_includes_the_tenant(stack: Stack):
    rows = await stack.admin.fetch(
        """WITH tables AS (
               SELECT c.oid FROM pg_class c WHERE c.relname = ANY($1::text[])
               UNION SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
               WHERE p.relname = ANY($1::text[]))
           SELECT x.indexrelid::regclass::text AS index, x.indrelid::regclass::text AS tbl,
                  EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid
                          AND a.attnum = ANY(x.indkey[0:x.indnkeyatts - 1]) AND a.attname = 'tenant_ref') AS keyed
           FROM pg_index x WHERE x.indisunique AND x.indrelid IN (SELECT oid FROM tables)""",
        list(DISTRIBUTED_KEYS))
    tables = {re.sub(r"_p\d{8}$", "", row["tbl"]) for row in rows}
    assert set(DISTRIBUTED_KEYS) <= tables, tables  # each table, and its partitions, seen
    unkeyed = [f"{row['index']} on {row['tbl']}" for row in rows if not row["keyed"]]
    assert not unkeyed, f"unique indexes without tenant_ref: {unkeyed}"
    assert set(DISTRIBUTED_KEYS) == set(tenant_sql.DISTRIBUTED)
