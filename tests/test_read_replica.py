"""Reads off the primary (``database_read_url``) with a real streaming
replica of the embedded PostgreSQL (tests/support/replica.py).

The proof that a read is served by the replica: with its replay paused, an
event acknowledged by ingest (stored on the primary) is not read, and it is
once replay resumes. What must stay on the primary (keys, revocation) is
current while replay is paused. A replica that is down, or further behind
than its bound, makes the query service NOT_SERVING and its reads
UNAVAILABLE (503 with Retry-After over REST), and it serves again when the
replica is back."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2_grpc, insights_service_pb2_grpc, query_service_pb2_grpc
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.database import create_pool
from connlog.core.sealing import new_key
from connlog.core.server import LIVENESS, RunningService, start_service
from connlog.core.settings import Settings
from connlog.store.accounts import AccountStore
from tests.support.factories import now, simple_event, ts
from tests.support.gateway import Gateway, envoy_in_front
from tests.support.gateway_calls import MERAKI_PATH, ingest, key_headers, meraki_event, meraki_get
from tests.support.replica import Replica, streaming_replica
from tests.support.services import Clients, Tenant, new_tenant
from tests.support.waiting import until

DEADLINE = 60.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Stack:
    """A primary and its replica; ingest, a query service reading from the
    replica (``clients``, ``query``) and one reading from the primary
    (``primary_query``); Envoy in front of ingest and the replica's query
    service; a pool on the primary."""

    replica: Replica
    settings: Settings
    query: RunningService
    clients: Clients
    primary_query: query_service_pb2_grpc.QueryServiceStub
    gateway: Gateway
    pool: asyncpg.Pool

    async def tenant(self) -> Tenant:
        return await new_tenant(AccountStore(self.pool))


@pytest.fixture(scope="module")
async def stack(tmp_path_factory) -> AsyncIterator[Stack]:
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query

    async with streaming_replica() as replica:
        url = await replica.primary.create_database("connlog_replica", migrated=True)
        settings = Settings(
            database_url=url, database_read_url=replica.url_of(url), data_dir=tmp_path_factory.mktemp("data"),
            secret_keys=SecretStr(new_key()), auth_cache_seconds=0, meraki_rate_limit_per_second=50,
            database_check_seconds=0.2, shutdown_grace_seconds=1, log_level="warning", log_format="console",
        )
        pool = await create_pool(settings, url, min_size=1, max_size=2)
        services = [await start_service("ingest", settings, register_ingest, port=0)]
        try:
            services.append(query := await start_service("query", settings, register_query, port=0, metrics_port=0,
                                                         read_url=settings.database_read_url))
            services.append(primary := await start_service("query", settings, register_query, port=0))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{services[0].port}") as ingest_channel, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{query.port}") as query_channel, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{primary.port}") as primary_channel, \
                    envoy_in_front(settings, Path(tmp_path_factory.mktemp("envoy")),
                                   ingest=f"127.0.0.1:{services[0].port}",
                                   query=f"127.0.0.1:{query.port}") as gateway:
                yield Stack(replica, settings, query, Clients(
                    ingest_service_pb2_grpc.IngestServiceStub(ingest_channel),
                    query_service_pb2_grpc.QueryServiceStub(query_channel),
                    insights_service_pb2_grpc.InsightsServiceStub(query_channel),
                ), query_service_pb2_grpc.QueryServiceStub(primary_channel), gateway, pool)
        finally:
            for service in services:
                await service.stop(1)
            await pool.close()


def _list(network: str, **fields: object) -> qpb.ListConnectionEventsRequest:
    return qpb.ListConnectionEventsRequest(parent=f"networks/{network}", **fields)


async def _names(stub: query_service_pb2_grpc.QueryServiceStub, tenant: Tenant, network: str,
                 **fields: object) -> list[str]:
    reply = await stub.ListConnectionEvents(_list(network, **fields), metadata=tenant.md())
    return [e.name for e in reply.connection_events]


async def _ingest(stack: Stack, tenant: Tenant, events: list[pb.ConnectionEvent]) -> list[str]:
    reply = await ingest(stack.clients, tenant, events)
    return [r.name for r in reply.results]


async def _health(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
        return reply.status


async def _wait_health(stack: Stack, status: int, what: str) -> None:
    async def reached() -> bool:
        return await _health(stack.query.port) == status

    await until(reached, what, DEADLINE)


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# -- the reads that may be stale go to the replica --------------------------------------


async def test_event_reads_are_served_by_the_replica(stack: Stack):
    tenant = await stack.tenant()
    [first] = await _ingest(stack, tenant, [simple_event("N_r1", when=now() - dt.timedelta(minutes=2))])
    await stack.replica.wait_replayed()
    assert await _names(stack.clients.query, tenant, "N_r1") == [first]
    async with stack.replica.paused():
        [second] = await _ingest(stack, tenant, [simple_event("N_r1")])  # acknowledged: stored on the primary
        assert await _names(stack.primary_query, tenant, "N_r1") == [first, second]
        # the replica has not replayed it: not listed, not found, whoever asks
        assert await _names(stack.clients.query, tenant, "N_r1") == [first]
        assert await _names(stack.clients.query, tenant, "-") == [first]
        err = await _error(stack.clients.query.GetConnectionEvent(
            qpb.GetConnectionEventRequest(name=second), metadata=tenant.md()))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    await stack.replica.wait_replayed()
    assert await _names(stack.clients.query, tenant, "N_r1") == [first, second]
    got = await stack.clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=second),
                                                       metadata=tenant.md())
    assert got.name == second


async def test_insights_are_read_from_the_replica(stack: Stack):
    tenant = await stack.tenant()
    base = now() - dt.timedelta(minutes=30)
    mac = "02:bb:00:00:00:01"
    steps = (pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP)
    await _ingest(stack, tenant, [simple_event("N_r2", mac=mac, when=base + dt.timedelta(seconds=i), step=step,
                                               outcome=pb.OUTCOME_SUCCESS) for i, step in enumerate(steps)])
    await stack.replica.wait_replayed()
    window = {"start_time": ts(base - dt.timedelta(minutes=1)), "end_time": ts(now() + dt.timedelta(minutes=1))}

    async def totals() -> tuple[int, int, int]:
        insights = stack.clients.insights
        assert insights is not None
        summary = await insights.SummarizeConnections(
            ipb.SummarizeConnectionsRequest(parent="networks/N_r2", **window), metadata=tenant.md())
        ttc = await insights.SummarizeTimeToConnect(
            ipb.SummarizeTimeToConnectRequest(parent="networks/N_r2", **window), metadata=tenant.md())
        sessions = await insights.ListClientSessions(
            ipb.ListClientSessionsRequest(parent=f"networks/N_r2/clients/{mac}"), metadata=tenant.md())
        return (sum(g.totals.event_count for g in summary.groups), sum(g.sample_count for g in ttc.groups),
                sum(s.event_count for s in sessions.client_sessions))

    before = await totals()
    assert before[0] == 3 and before[2] == 3
    async with stack.replica.paused():
        await _ingest(stack, tenant, [simple_event("N_r2", mac=mac, when=base + dt.timedelta(seconds=10),
                                                   step=pb.CONNECTION_STEP_DNS, outcome=pb.OUTCOME_SUCCESS)])
        assert await totals() == before  # the replica's view: without the new event
    await stack.replica.wait_replayed()
    after = await totals()
    assert after[0] == 4 and after[2] == 4


def _failure(when: dt.datetime, type_: str, i: int) -> pb.ConnectionEvent:
    """A failed Meraki event (connectionStats counts it at its step)."""
    event = meraki_event("N_r3", "k1", when, i, type=type_, severity="bad")
    event.outcome = pb.OUTCOME_FAILURE
    return event


async def test_meraki_reads_are_served_by_the_replica(stack: Stack):
    tenant = await stack.tenant()
    base = now() - dt.timedelta(hours=1)
    path = MERAKI_PATH.format(net="N_r3", client="k1")
    stats = "/api/v1/networks/N_r3/wireless/connectionStats"
    await _ingest(stack, tenant, [_failure(base, "assoc", 0)])
    await stack.replica.wait_replayed()
    async with httpx.AsyncClient(base_url=stack.gateway.url) as http:
        async def read() -> tuple[list[str], int]:
            events = await meraki_get(http, path, headers=key_headers(tenant))
            assert events.status_code == 200, events.text
            connection = await meraki_get(http, stats, params={"timespan": "86400"}, headers=key_headers(tenant))
            assert connection.status_code == 200, connection.text
            return [e["type"] for e in events.json()], sum(connection.json().values())

        assert await read() == (["assoc"], 1)
        async with stack.replica.paused():
            await _ingest(stack, tenant, [_failure(base + dt.timedelta(minutes=1), "auth", 1)])
            assert await read() == (["assoc"], 1)
        await stack.replica.wait_replayed()
        assert await read() == (["assoc", "auth"], 2)


async def test_a_page_token_of_a_current_server_on_a_lagging_replica_never_goes_back(stack: Stack):
    """A keyset token names a position: a replica that is behind gives what
    it has after it (fewer events), never earlier ones, never an error."""
    tenant = await stack.tenant()
    base = now() - dt.timedelta(minutes=10)
    older = await _ingest(stack, tenant, [simple_event("N_r4", when=base + dt.timedelta(seconds=i)) for i in (0, 1)])
    await stack.replica.wait_replayed()
    async with stack.replica.paused():
        newer = await _ingest(stack, tenant, [simple_event("N_r4", when=base + dt.timedelta(seconds=i))
                                              for i in (2, 3, 4)])
        # the primary's reader pages on: its token points past events the replica lacks
        page = await stack.primary_query.ListConnectionEvents(_list("N_r4", page_size=3), metadata=tenant.md())
        assert [e.name for e in page.connection_events] == [*older, newer[0]]
        assert await _names(stack.clients.query, tenant, "N_r4", page_size=3, page_token=page.next_page_token) == []
        first = await stack.primary_query.ListConnectionEvents(_list("N_r4", page_size=1), metadata=tenant.md())
        assert await _names(stack.clients.query, tenant, "N_r4", page_size=3,
                            page_token=first.next_page_token) == older[1:]
    await stack.replica.wait_replayed()
    assert await _names(stack.clients.query, tenant, "N_r4", page_size=3,
                        page_token=page.next_page_token) == newer[1:]


# -- what must be current stays on the primary ---------------------------------------------


async def test_keys_and_revocation_are_current_while_replay_is_paused(stack: Stack):
    tenant = await stack.tenant()
    await stack.replica.wait_replayed()
    async with stack.replica.paused():
        # a tenant and keys made now exist only on the primary: they work at once
        fresh = await stack.tenant()
        assert await _names(stack.clients.query, fresh, "-") == []
        assert await _names(stack.clients.query, tenant, "-") == []
        key_id = tenant.keys["operator"].split("_")[1]
        assert await AccountStore(stack.pool).revoke_key(key_id)
        err = await _error(stack.clients.query.ListConnectionEvents(_list("-"), metadata=tenant.md()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        async with httpx.AsyncClient(base_url=stack.gateway.url) as http:
            refused = await meraki_get(http, MERAKI_PATH.format(net="N_r5", client="k1"),
                                       headers={"Authorization": f"Bearer {tenant.keys['operator']}"})
            assert refused.status_code == 401, refused.text


# -- a replica that cannot serve ---------------------------------------------------------------


async def test_a_replica_further_behind_than_its_bound_is_refused(stack: Stack):
    from connlog.query.servicer import register as register_query

    bounded = stack.settings.model_copy(update={"database_read_max_lag_seconds": 0.5})
    query = await start_service("query", bounded, register_query, port=0, read_url=bounded.database_read_url)
    tenant = await stack.tenant()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{query.port}") as channel:
            stub = query_service_pb2_grpc.QueryServiceStub(channel)
            await stack.replica.wait_replayed()
            assert await _names(stub, tenant, "-") == []

            async def health() -> int:
                return await _health(query.port)

            async with stack.replica.paused():
                await _ingest(stack, tenant, [simple_event("N_r6")])  # WAL the replica receives, not replays

                async def refused() -> bool:
                    return await health() == NOT_SERVING

                await until(refused, "the lagging replica to make the service NOT_SERVING", DEADLINE)
                err = await _error(stub.ListConnectionEvents(_list("-"), metadata=tenant.md()))
                assert err.code() == grpc.StatusCode.UNAVAILABLE
                assert dict(err.trailing_metadata())["retry-after"] == str(bounded.retry_after_seconds)
                assert await _health(query.port, LIVENESS) == SERVING

            async def serving() -> bool:
                return await health() == SERVING

            await until(serving, "the caught-up replica to make the service SERVING", DEADLINE)
            assert len(await _names(stub, tenant, "-")) == 1
    finally:
        await query.stop(1)


async def test_a_replica_that_is_down_makes_reads_unavailable_until_it_is_back(stack: Stack):
    tenant = await stack.tenant()
    await _ingest(stack, tenant, [meraki_event("N_r7", "k1", now() - dt.timedelta(minutes=5))])
    await stack.replica.wait_replayed()
    assert len(await _names(stack.clients.query, tenant, "N_r7")) == 1
    stack.replica.stop()
    try:
        await _wait_health(stack, NOT_SERVING, "the query service to see its replica gone")
        assert await _health(stack.query.port, LIVENESS) == SERVING
        err = await _error(stack.clients.query.ListConnectionEvents(_list("N_r7"), metadata=tenant.md()))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert dict(err.trailing_metadata())["retry-after"] == str(stack.settings.retry_after_seconds)
        assert "replica" not in err.details() and "Error" not in err.details()
        async with httpx.AsyncClient(base_url=stack.gateway.url) as http:
            response = await http.get(MERAKI_PATH.format(net="N_r7", client="k1"), headers=key_headers(tenant))
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
            assert set(response.json()) == {"errors"}
        # ingest does not read from the replica: it goes on
        await _ingest(stack, tenant, [simple_event("N_r7")])
    finally:
        await stack.replica.start()
    await _wait_health(stack, SERVING, "the query service to serve again")
    await stack.replica.wait_replayed()
    assert len(await _names(stack.clients.query, tenant, "N_r7")) == 2
