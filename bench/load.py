"""Load generators, run in their own processes so that the client is not
the bottleneck (and is measured alone)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import grpc

from bench.data import Shape, events_for
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc

BATCH = 5000


def _tenant_events(shape: Shape, tenant: int, end: dt.datetime, generation: int):
    for network in range(shape.networks_per_tenant):
        for client in range(shape.clients_per_network):
            yield from events_for(shape, tenant, network, client, end=end, generation=generation)


def _batches(shape, tenant, end, generation):
    batch = []
    for event in _tenant_events(shape, tenant, end, generation):
        batch.append(event)
        if len(batch) == BATCH:
            yield ipb.StreamIngestConnectionEventsRequest(events=batch)
            batch = []
    if batch:
        yield ipb.StreamIngestConnectionEventsRequest(events=batch)


def generate_only(shape: Shape, tenant: int, end_ts: float, generation: int) -> tuple[int, float]:
    """Build and serialize the requests without sending: the generator's own rate."""
    end = dt.datetime.fromtimestamp(end_ts, dt.UTC)
    start, count = time.perf_counter(), 0
    for request in _batches(shape, tenant, end, generation):
        request.SerializeToString()
        count += len(request.events)
    return count, time.perf_counter() - start


def stream_ingest(address: str, token: str, shape: Shape, tenant: int, end_ts: float, generation: int,
                  start_at: float) -> tuple[int, int, float, float]:
    """Stream a tenant's events; returns (accepted, rejected, start, end)."""
    end = dt.datetime.fromtimestamp(end_ts, dt.UTC)
    requests = list(_batches(shape, tenant, end, generation))  # built before the clock starts

    async def run():
        async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
            stub = ingest_service_pb2_grpc.IngestServiceStub(ch)
            while time.time() < start_at:  # start together with the other generators
                await asyncio.sleep(0.005)
            began = time.time()
            reply = await stub.StreamIngestConnectionEvents(iter(requests), metadata=(
                ("authorization", f"Bearer {token}"),), timeout=3600)
            return reply.accepted_count, reply.rejected_count, began, time.time()

    return asyncio.run(run())


def unary_load(kind: str, target: str, token: str, bodies: list, concurrency: int) -> dict:
    """``concurrency`` clients sending one event per request; latencies in s."""
    import aiohttp  # httpx's pool does not keep up with 64 concurrent clients

    from connlog.api.v1 import connection_event_pb2 as pb

    async def run():
        latencies: list[float] = []
        errors = 0
        queue = list(range(len(bodies)))
        if kind in ("rest", "probe"):
            client = aiohttp.ClientSession(target, connector=aiohttp.TCPConnector(limit=concurrency),
                                           headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/json"})
        else:
            channel = grpc.aio.insecure_channel(target)
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            events = [pb.ConnectionEvent.FromString(b) for b in bodies]

        async def worker():
            nonlocal errors
            while queue:
                i = queue.pop()
                began = time.perf_counter()
                if kind == "rest":
                    async with client.post("/api/v1/device_app_connection_log/", data=bodies[i]) as response:
                        await response.read()
                        ok = response.status == 201
                elif kind == "probe":  # the generator alone: Envoy answers 404 itself
                    async with client.post("/nowhere", data=bodies[i]) as response:
                        await response.read()
                        ok = response.status == 404
                else:
                    try:
                        reply = await stub.IngestConnectionEvents(
                            ipb.IngestConnectionEventsRequest(events=[events[i]]),
                            metadata=(("authorization", f"Bearer {token}"),))
                        ok = reply.accepted_count == 1
                    except grpc.aio.AioRpcError:
                        ok = False
                latencies.append(time.perf_counter() - began)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        if kind in ("rest", "probe"):
            await client.close()
        else:
            await channel.close()
        return {"requests": len(bodies), "seconds": elapsed, "errors": errors, "latencies": latencies}

    return asyncio.run(run())


def single_row_load(url: str, sql: str, rows: list[tuple], concurrency: int) -> dict:
    """PostgreSQL's own row-at-a-time path: ``concurrency`` asyncpg
    connections, each inserting one row per statement (autocommit: one
    commit per row); latencies in s."""
    import asyncpg

    async def run():
        latencies: list[float] = []
        queue = list(range(len(rows)))
        connections = await asyncio.gather(*(asyncpg.connect(url) for _ in range(concurrency)))
        for conn in connections:  # prepared before the clock starts, as a loader's statement would be
            await conn.prepare(sql)

        async def worker(conn):
            while queue:
                i = queue.pop()
                began = time.perf_counter()
                await conn.execute(sql, *rows[i])
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in connections))
        elapsed = time.perf_counter() - began
        await asyncio.gather(*(conn.close() for conn in connections))
        return {"requests": len(rows), "seconds": elapsed, "errors": 0, "latencies": latencies}

    return asyncio.run(run())
