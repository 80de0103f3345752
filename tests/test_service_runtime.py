"""Health, reflection, metrics and graceful shutdown of the services."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.server import start_service
from connlog.ingest.servicer import register as register_ingest
from tests.support.factories import now, simple_event


async def test_health_and_reflection(suite):
    for address, service in (
        (suite.ingest_address, "connlog.api.v1.IngestService"),
        (suite.query_address, "connlog.api.v1.QueryService"),
    ):
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", service):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask():
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            async for reply in reflection.ServerReflectionInfo(ask()):
                names = {s.name for s in reply.list_services_response.service}
                assert {service, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
                break


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + " ") or line.startswith(prefix + "{") and line.split(" ")[0] == prefix:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics(clients, tenant, suite):
    before = await asyncio.to_thread(_scrape, suite.ingest.metrics_port)
    events = [simple_event("N_metrics", mac="02:00:00:00:0a:01"), simple_event("N_metrics", mac="bad")]
    await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events),
                                                metadata=tenant.md())
    await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events[:1]),
                                                metadata=tenant.md())
    try:
        await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events))
    except grpc.aio.AioRpcError:
        pass
    after = await asyncio.to_thread(_scrape, suite.ingest.metrics_port)
    for result in ("accepted", "duplicate", "rejected"):
        key = f'connlog_events_total{{result="{result}"}}'
        assert _sample(after, key) - _sample(before, key) == 1, result
    ok = 'connlog_rpc_requests_total{code="OK",method="IngestConnectionEvents",service="ingest"}'
    unauth = 'connlog_rpc_requests_total{code="UNAUTHENTICATED",method="IngestConnectionEvents",service="ingest"}'
    assert _sample(after, ok) - _sample(before, ok) == 2
    assert _sample(after, unauth) - _sample(before, unauth) == 1
    assert 'connlog_rpc_latency_seconds_count{method="IngestConnectionEvents",service="ingest"}' in after
    assert _sample(after, "connlog_db_pool_max_connections") == suite.settings.db_pool_max_size
    query_metrics = await asyncio.to_thread(_scrape, suite.query.metrics_port)
    assert "connlog_db_pool_connections" in query_metrics


async def test_graceful_shutdown_finishes_in_flight_ingest(settings, pool, tenant):
    """Stopping the service while a bulk ingest is in flight: the call
    completes, and every event it acknowledged is stored."""
    service = await start_service("ingest", settings, register_ingest, port=0, pool=pool)
    base = now() - dt.timedelta(hours=3)
    batches = [
        [simple_event("N_shutdown", mac=f"02:00:{b:02x}:00:{i // 256:02x}:{i % 256:02x}",
                      when=base + dt.timedelta(milliseconds=i)) for i in range(1000)]
        for b in range(8)
    ]
    sent = asyncio.Event()

    async def requests():
        for n, batch in enumerate(batches):
            yield ipb.StreamIngestConnectionEventsRequest(events=batch)
            if n == 1:
                sent.set()
            await asyncio.sleep(0.05)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        call = asyncio.ensure_future(stub.StreamIngestConnectionEvents(requests(), metadata=tenant.md()))
        await sent.wait()
        await service.stop(grace=30)
        reply = await call
    assert reply.accepted_count == 8000
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            """SELECT count(*) FROM connection_events e JOIN networks n USING (network_ref)
               JOIN tenants t ON t.tenant_ref = n.tenant_ref WHERE t.tenant_id = $1 AND n.network_id = 'N_shutdown'""",
            tenant.tenant_id,
        )
    assert stored == 8000
