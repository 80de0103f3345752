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
from connlog.core import event_loop

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

    return event_loop.run(run(), "auto")  # the loop connlog runs on (uvloop where installed)


def unary_load(kind: str, target: str, token: str, bodies: list[bytes], concurrency: int, start_at: float = 0.0,
               connections: int = 1) -> dict:
    """``concurrency`` clients sending one event per request, over
    ``connections`` connections (gRPC: channels of their own; REST: a pool of
    keep-alive connections), starting at ``start_at`` (epoch seconds: several
    processes start together). Kinds: ``rest`` (Zequenze POST via Envoy),
    ``probe`` (the same POSTs to a path Envoy answers 404 itself), ``grpc``
    (unary IngestConnectionEvents), ``grpc-probe`` (the same calls to a
    method Envoy answers itself). Latencies in s; ``cpu_seconds``: this
    process's CPU while it ran."""
    import aiohttp  # httpx's pool does not keep up with 64 concurrent clients

    from connlog.api.v1 import connection_event_pb2 as pb

    async def run() -> dict:
        latencies: list[float] = []
        errors = 0
        queue = list(range(len(bodies)))
        metadata = (("authorization", f"Bearer {token}"),)
        rest = kind in ("rest", "probe")
        if rest:
            client = aiohttp.ClientSession(target, connector=aiohttp.TCPConnector(limit=connections),
                                           headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/json"})
            path = "/api/v1/device_app_connection_log/" if kind == "rest" else "/nowhere"
            expect = 201 if kind == "rest" else 404
        else:
            # a channel of its own per connection (not one shared subchannel)
            channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in range(connections)]
            for channel in channels:
                await channel.channel_ready()
            method = ("/connlog.api.v1.IngestService/IngestConnectionEvents" if kind == "grpc"
                      else "/connlog.bench.v1.Nowhere/IngestConnectionEvents")
            calls = [channel.unary_unary(method, request_serializer=ipb.IngestConnectionEventsRequest.SerializeToString,
                                         response_deserializer=ipb.IngestConnectionEventsResponse.FromString)
                     for channel in channels]
            requests = [ipb.IngestConnectionEventsRequest(events=[pb.ConnectionEvent.FromString(b)]) for b in bodies]

        async def worker(n: int) -> None:
            nonlocal errors
            while queue:
                i = queue.pop()
                began = time.perf_counter()
                if rest:
                    async with client.post(path, data=bodies[i]) as response:
                        await response.read()
                        ok = response.status == expect
                else:
                    try:
                        reply = await calls[n % connections](requests[i], metadata=metadata)
                        ok = reply.accepted_count == 1
                    except grpc.aio.AioRpcError as exc:  # the probe's answer: Envoy's own not found
                        ok = kind == "grpc-probe" and exc.code() is grpc.StatusCode.UNIMPLEMENTED
                latencies.append(time.perf_counter() - began)
                errors += not ok

        while time.time() < start_at:  # start together with the other processes
            await asyncio.sleep(0.002)
        began, cpu = time.time(), time.process_time()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        ended, cpu = time.time(), time.process_time() - cpu
        if rest:
            await client.close()
        else:
            await asyncio.gather(*(channel.close() for channel in channels))
        return {"requests": len(bodies), "seconds": ended - began, "errors": errors, "latencies": latencies,
                "began": began, "ended": ended, "cpu_seconds": cpu}

    return event_loop.run(run(), "auto")  # the loop connlog runs on (uvloop where installed)


# wrk's Lua script for the REST load: POSTs of one JSON event each (the
# template's %d made distinct per request), counting answers other than the
# expected status; when its quota is answered the (single) thread stops and
# interrupts wrk's main thread, so the run lasts as long as its requests
# (``done`` runs in the main script, which reads the threads' counts).
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
int kill(int pid, int sig);
int getpid(void);
]]
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  quota = tonumber(args[1]); expect = tonumber(args[2]); template = args[3]; path = args[4]
  wrk.headers["Authorization"] = args[5]
  wrk.headers["Content-Type"] = "application/json"
  sent = 0; answered = 0; bad = 0
end
function request()
  sent = sent + 1
  return wrk.format("POST", path, nil, string.format(template, sent))
end
function response(status, headers, body)
  answered = answered + 1
  if status ~= expect then bad = bad + 1 end
  if answered == quota then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad") end
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests": %d, "seconds": %.6f, "errors": %d, "socket_errors": %d, '
    .. '"p50_ms": %.3f, "p99_ms": %.3f}\\n', summary.requests, summary.duration / 1e6, bad,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk_available() -> bool:
    import shutil

    return shutil.which("wrk") is not None


def wrk_load(kind: str, url: str, token: str, template: str, requests: int, concurrency: int) -> dict:
    """The REST load (``rest`` or ``probe``, as ``unary_load``) from wrk: one
    thread, ``concurrency`` keep-alive connections, ``requests`` requests
    whose bodies are ``template`` with its ``%d`` numbered 1, 2, …;
    percentiles from wrk's own histogram; ``cpu_seconds``: wrk's CPU."""
    import json
    import resource
    import subprocess
    import tempfile

    path = "/api/v1/device_app_connection_log/" if kind == "rest" else "/nowhere"
    expect = 201 if kind == "rest" else 404
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            ["wrk", "-t", "1", "-c", str(concurrency), "-d", "600s", "--timeout", "30s", "-s", script.name, url,
             "--", str(requests), str(expect), template, path, f"Bearer {token}"],
            capture_output=True, text=True, timeout=660, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT "))
    result = json.loads(line.removeprefix("WRK_RESULT "))
    result["errors"] += result.pop("socket_errors") + max(0, requests - result["requests"])
    result["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


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

        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(conn) for conn in connections))
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        await asyncio.gather(*(conn.close() for conn in connections))
        return {"requests": len(rows), "seconds": elapsed, "errors": 0, "latencies": latencies, "cpu_seconds": cpu}

    return event_loop.run(run(), "auto")  # the loop connlog runs on (uvloop where installed)
