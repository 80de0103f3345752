"""The measurements: each connlog path next to its baseline, in one run."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import aiohttp
import asyncpg
import grpc
import orjson

from bench.data import Shape, all_events, client_mac, network_id
from bench.floor import noop_ingest
from bench.harness import Suite, caught_up
from bench.load import generate_only, single_row_load, stream_ingest, unary_load, wrk_available, wrk_load
from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import query_service_pb2_grpc
from connlog.core.principal import Principal, Role
from connlog.ingest.normalise import IngestWindow, normalise
from connlog.store import row
from connlog.store.events import READ_COLUMNS
from connlog.store.migrate import migrate
from connlog.store.partitions import maintain_partitions


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- bulk ingest

async def bulk_ingest(suite: Suite, shape: Shape, tokens: list[str], repeats: int) -> dict:
    """Client-streaming gRPC ingest (one generator process per tenant) against
    asyncpg COPY of the same rows + INSERT … ON CONFLICT DO NOTHING."""
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    loop = asyncio.get_running_loop()
    out = {"events_per_run": shape.total, "generator_events_per_s": [], "connlog_events_per_s": [],
           "baseline_rows_per_s": [], "ratio": [], "rollups_caught_up_s": []}
    with ProcessPoolExecutor(max_workers=shape.tenants) as pool:
        for run in range(repeats):
            generation = 100 + run
            # the load generator alone
            results = await asyncio.gather(*(loop.run_in_executor(pool, generate_only, shape, t, end.timestamp(),
                                                                  generation) for t in range(shape.tenants)))
            out["generator_events_per_s"].append(sum(c for c, _ in results) / max(s for _, s in results))
            # connlog
            start_at = time.time() + 3 + shape.total / 200_000  # after every generator has built its requests
            results = await asyncio.gather(*(loop.run_in_executor(
                pool, stream_ingest, suite.ingest_address, tokens[t], shape, t, end.timestamp(), generation, start_at)
                for t in range(shape.tenants)))
            accepted = sum(r[0] for r in results)
            assert accepted == shape.total, f"connlog accepted {accepted} of {shape.total}"
            began, finished = min(r[2] for r in results), max(r[3] for r in results)
            rate = accepted / (finished - began)
            out["connlog_events_per_s"].append(rate)
            # the rollup maintainer's fold of these events finishes before the
            # baseline starts (it would take the baseline's CPU), and is reported
            asked = time.time()
            out["rollups_caught_up_s"].append(asked + await caught_up(suite, timeout=600) - finished)
            # baseline: the same rows, hand-rolled, into a copy of the schema
            baseline = await baseline_copy(suite, shape, end, generation + 1000)
            out["baseline_rows_per_s"].append(baseline)
            out["ratio"].append(rate / baseline)
    for key in ("generator_events_per_s", "connlog_events_per_s", "baseline_rows_per_s", "ratio",
                "rollups_caught_up_s"):
        out[key] = spread(out[key])
    return out


# connection_events' columns as a hand-rolled loader fills them (the row's
# own, from connlog.store.row), and the casts from the text it sends.
_COPY_COLUMNS = ["tenant_ref", *row.TABLE_COLUMNS]
_CASTS = {name: column.cast for name, (_, column) in zip(row.TABLE_COLUMNS, row.COLUMNS, strict=True) if column.cast}
_STAGED = [f"{c}::{_CASTS[c]}" if c in _CASTS else c for c in _COPY_COLUMNS]
_STAGING_AS_SENT = ", ".join(f"ALTER {name} TYPE {row.COLUMNS[row.TABLE_COLUMNS.index(name)][1].pg_type}"
                             for name in _CASTS)


async def baseline_database(suite: Suite) -> str:
    """A second database with connlog's schema, for the hand-rolled baseline."""
    from urllib.parse import urlsplit, urlunsplit

    conn = await asyncpg.connect(suite.database_url)
    exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bench_baseline'")
    if not exists:
        await conn.execute("CREATE DATABASE bench_baseline")
    await conn.close()
    parts = urlsplit(suite.database_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/bench_baseline", parts.query, parts.fragment))
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await maintain_partitions(conn, retention_days=suite.settings.retention_days, ahead_days=7)
    await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('baseline') ON CONFLICT DO NOTHING")
    await conn.close()
    return url


def rows_of(events, tenant_ref: int, network_refs: dict[str, int]) -> list[tuple]:
    """What a hand-rolled loader would COPY: connlog's own normalised rows."""
    principal = Principal("bench", "baseline", tenant_ref, Role.OPERATOR, None)
    now = dt.datetime.now(dt.UTC)
    window = IngestWindow(now - dt.timedelta(days=31), now + dt.timedelta(days=1), 31)
    rows = []
    for event in events:
        s = normalise(event, principal, window)
        network_ref = network_refs.setdefault(s.network_id, len(network_refs) + 1)
        rows.append((tenant_ref, *row.table_row(s, network_ref)))
    return rows


async def baseline_copy(suite: Suite, shape: Shape, end: dt.datetime, generation: int) -> float:
    url = await baseline_database(suite)
    rows = rows_of(all_events(shape, end=end, generation=generation), 1, {})  # prepared before timing
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        for start in range(0, len(rows), 50_000):
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE staging (LIKE connection_events INCLUDING DEFAULTS) "
                                   f"ON COMMIT DROP; ALTER TABLE staging {_STAGING_AS_SENT}")
                await conn.copy_records_to_table("staging", records=rows[start:start + 50_000],
                                                 columns=_COPY_COLUMNS)
                await conn.execute(f"INSERT INTO connection_events ({', '.join(_COPY_COLUMNS)}) "
                                   f"SELECT {', '.join(_STAGED)} FROM staging "
                                   "ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING")
        return len(rows) / (time.perf_counter() - began)
    finally:
        await conn.close()


# ----------------------------------------------------------- single events

# PostgreSQL's own single-row path: one INSERT … ON CONFLICT DO NOTHING per
# row (the values as connlog's rows hold them, cast as connlog's insert casts).
_SINGLE_ROW = (
    f"INSERT INTO connection_events ({', '.join(_COPY_COLUMNS)}) VALUES ("
    + ", ".join(f"${i}::text::{_CASTS[c]}" if c in _CASTS else f"${i}" for i, c in enumerate(_COPY_COLUMNS, start=1))
    + ") ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING"
)


# The single-event loads: gRPC from LOAD_PROCESSES processes (each with its
# share of the callers, over LOAD_CONNECTIONS channels of its own); REST from
# wrk when installed (C, one thread: a small fraction of a core), else from
# LOAD_PROCESSES Python processes.
LOAD_PROCESSES = 2
LOAD_CONNECTIONS = 4
CALLERS = 64


def _zequenze_body(run: int) -> str:
    """A Zequenze POST body whose ``inbytes`` is ``%d`` (numbered per request)."""
    marker = 987654321987
    body = json.dumps({"network_name": "Office WiFi 5GHz", "network_type": "wi", "frequency": 5.2,
                       "bssid": "aa:bb:cc:dd:ee:ff", "inbytes": marker, "outbytes": run,
                       "quality_metric": "rssi", "quality_value": -45.0})
    return body.replace(str(marker), "%d")


async def spread_load(pool: ProcessPoolExecutor, kind: str, target: str, token: str, bodies: list[bytes],
                      processes: int = LOAD_PROCESSES, connections: int = LOAD_CONNECTIONS) -> dict:
    """``load.unary_load`` from ``processes`` processes of ``pool`` at once,
    each with its share of the callers and the requests; merged: counts,
    every latency sample, the time from the first start to the last end, the
    processes' CPU."""
    loop = asyncio.get_running_loop()
    start_at = time.time() + 0.5  # every process ready (connected) by then
    results = await asyncio.gather(*(loop.run_in_executor(
        pool, unary_load, kind, target, token, bodies[p::processes],
        CALLERS // processes + (p < CALLERS % processes), start_at, connections) for p in range(processes)))
    return {"requests": sum(r["requests"] for r in results), "errors": sum(r["errors"] for r in results),
            "seconds": max(r["ended"] for r in results) - min(r["began"] for r in results),
            "latencies": [x for r in results for x in r["latencies"]],
            "cpu_seconds": sum(r["cpu_seconds"] for r in results), "processes": processes}


async def rest_load(pool: ProcessPoolExecutor, kind: str, url: str, token: str, run: int, requests: int) -> dict:
    """The REST load (``rest`` or ``probe``): wrk if installed, else Python."""
    template = _zequenze_body(run)
    if wrk_available():
        result = await asyncio.get_running_loop().run_in_executor(
            pool, wrk_load, kind, url, token, template, requests, CALLERS)
        return result | {"generator": "wrk"}
    bodies = [(template % i).encode() for i in range(1, requests + 1)]
    return await spread_load(pool, kind, url, token, bodies, connections=CALLERS // LOAD_PROCESSES) | {
        "generator": f"aiohttp x{LOAD_PROCESSES}"}


def _p(result: dict, p: float) -> float:
    """A load's p-th percentile latency in ms."""
    if "latencies" in result:
        return percentile(result["latencies"], p) * 1000
    return result[f"p{p:g}_ms"]


def _warm(seconds: float) -> None:
    time.sleep(seconds)


async def single_event_ingest(suite: Suite, device_token: str, operator_token: str, requests: int,
                              repeats: int, ingest_processes: tuple[int, ...] = (1,)) -> dict:
    """PostgreSQL's own single-row INSERT … ON CONFLICT DO NOTHING (64
    asyncpg connections, one row per statement, autocommit) against gRPC
    unary ingest and the Zequenze POST through Envoy, 64 concurrent callers
    each, one event per call, the same number of events, with each count of
    ingest processes in ``ingest_processes`` (sharing the port; the suite is
    scaled before each). Every load runs in processes of its own; each load
    generator is also measured alone (against Envoy's own answers) and by its
    CPU per request. The gRPC load is also sent to a no-op IngestService
    (bench.floor): the most a grpcio server serves here."""
    loop = asyncio.get_running_loop()
    keys = ("generator_rps", "grpc_generator_rps", "baseline_rps", "baseline_p50_ms", "baseline_p99_ms",
            "baseline_client_cpu_us", "rest_generator_cpu_us", "grpc_generator_cpu_us", "grpc_floor_rps",
            "grpc_floor_baseline_ratio", "grpc_floor_p99_ms")
    per_count = ("rest_rps", "grpc_rps", "ratio", "grpc_baseline_ratio", "rest_baseline_ratio", "rest_p50_ms",
                 "rest_p99_ms", "grpc_p50_ms", "grpc_p99_ms")
    out: dict = {k: [] for k in keys} | {"errors": 0, "callers": CALLERS, "events_per_run": requests}
    by_count: dict[int, dict] = {n: {k: [] for k in per_count} | {"rest_split": [], "grpc_split": []}
                                 for n in ingest_processes}
    baseline_url = await baseline_database(suite)
    with ProcessPoolExecutor(max_workers=LOAD_PROCESSES) as pool:
        # every worker started before the first timed load (a load split over
        # processes must run in all of them at once)
        await asyncio.gather(*(loop.run_in_executor(pool, _warm, 0.3) for _ in range(LOAD_PROCESSES)))
        for run in range(repeats):
            # the load generators alone: Envoy answers itself (404 / UNIMPLEMENTED)
            probe = await rest_load(pool, "probe", suite.gateway_url, device_token, run, requests)
            out["generator"] = probe["generator"]
            out["generator_rps"].append(probe["requests"] / probe["seconds"])
            events = []
            for i in range(requests):
                event = pb.ConnectionEvent(network_id="N_unary", client=pb.Client(client_id=f"u{run}-{i}"),
                                           step=pb.CONNECTION_STEP_CONNECTION)
                event.occur_time.GetCurrentTime()
                events.append(event)
            serialized = [e.SerializeToString() for e in events]
            probe_grpc = await spread_load(pool, "grpc-probe", suite.gateway_url.removeprefix("http://"),
                                           operator_token, serialized)
            if probe["errors"] or probe_grpc["errors"]:
                raise RuntimeError(f"probes: {probe['errors']} REST and {probe_grpc['errors']} gRPC requests not "
                                   "answered by Envoy itself")
            out["grpc_generator_rps"].append(probe_grpc["requests"] / probe_grpc["seconds"])
            # the baseline: the same events as connlog's rows, one INSERT each
            # (normalised copies: normalise works in place)
            rows = rows_of([pb.ConnectionEvent.FromString(b) for b in serialized], 1, {})
            baseline = await loop.run_in_executor(pool, single_row_load, baseline_url, _SINGLE_ROW, rows, CALLERS)
            base_rps = requests / baseline["seconds"]
            out["baseline_rps"].append(base_rps)
            out["baseline_client_cpu_us"].append(baseline["cpu_seconds"] / requests * 1e6)
            for name, result in (("baseline", baseline),):
                out[f"{name}_p50_ms"].append(_p(result, 50))
                out[f"{name}_p99_ms"].append(_p(result, 99))
            # the ceiling: the same unary load against a server that does nothing
            async with noop_ingest() as floor_address:
                floor = await spread_load(pool, "grpc", floor_address, operator_token,
                                          [e.SerializeToString() for e in _fresh(serialized, f"floor-{run}")])
            if floor["errors"]:
                raise RuntimeError(f"{floor['errors']} calls to the no-op IngestService failed")
            out["grpc_floor_rps"].append(floor["requests"] / floor["seconds"])
            out["grpc_floor_baseline_ratio"].append(out["grpc_floor_rps"][-1] / base_rps)
            out["grpc_floor_p99_ms"].append(_p(floor, 99))
            for n in ingest_processes:
                await suite.scale_ingest(n)
                this = by_count[n]
                calls = await suite.ingest_calls()
                rest = await rest_load(pool, "rest", suite.gateway_url, device_token, 100 * run + n, requests)
                after = await suite.ingest_calls()
                this["rest_split"].append([b - a for a, b in zip(calls, after, strict=True)])
                unary = await spread_load(pool, "grpc", suite.ingest_address, operator_token,
                                          [e.SerializeToString() for e in _fresh(serialized, f"{run}-{n}")])
                calls = await suite.ingest_calls()
                this["grpc_split"].append([b - a for a, b in zip(after, calls, strict=True)])
                # every event must be stored (an error means the figure measures something else)
                if rest["errors"] or unary["errors"]:
                    raise RuntimeError(f"single-event loads with {n} ingest process(es): {rest['errors']} REST and "
                                       f"{unary['errors']} gRPC requests not answered as stored")
                out["errors"] += rest["errors"] + unary["errors"]
                out["rest_generator_cpu_us"].append(rest["cpu_seconds"] / requests * 1e6)
                out["grpc_generator_cpu_us"].append(unary["cpu_seconds"] / requests * 1e6)
                rest_rps, grpc_rps = rest["requests"] / rest["seconds"], unary["requests"] / unary["seconds"]
                this["rest_rps"].append(rest_rps)
                this["grpc_rps"].append(grpc_rps)
                this["ratio"].append(rest_rps / grpc_rps)
                this["grpc_baseline_ratio"].append(grpc_rps / base_rps)
                this["rest_baseline_ratio"].append(rest_rps / base_rps)
                for name, result in (("rest", rest), ("grpc", unary)):
                    this[f"{name}_p50_ms"].append(_p(result, 50))
                    this[f"{name}_p99_ms"].append(_p(result, 99))
    await suite.scale_ingest(1)
    summary = {k: spread(v) if isinstance(v, list) else v for k, v in out.items()}
    summary["ingest_processes"] = {
        n: {k: v if k.endswith("split") else spread(v) for k, v in this.items()} for n, this in by_count.items()}
    first = summary["ingest_processes"][ingest_processes[0]]
    return summary | {k: first[k] for k in per_count}  # the first count's figures, as before


def _fresh(serialized: list[bytes], tag: str) -> list[pb.ConnectionEvent]:
    """The events with client ids of their own (new events, not duplicates
    of an earlier load's)."""
    copies = []
    for data in serialized:
        copy = pb.ConnectionEvent.FromString(data)
        copy.client.client_id = f"{copy.client.client_id}-{tag}"
        copies.append(copy)
    return copies


# ---------------------------------------------------------------- reads

async def reads(suite: Suite, shape: Shape, token: str, samples: int, repeats: int) -> dict:
    """Per-client timelines: Meraki page of 1000 (Envoy), canonical gRPC list,
    Mojo limit=1000 (Envoy), each against the same SQL run with asyncpg."""
    rng = random.Random(5)
    span = dt.timedelta(days=min(shape.days, 30.9))
    conn = await asyncpg.connect(suite.database_url)
    tenant_ref = await conn.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = 'bench-0'")
    refs = {r["network_id"]: r["network_ref"] for r in await conn.fetch(
        "SELECT network_id, network_ref FROM networks WHERE tenant_ref = $1", tenant_ref)}
    meraki_sql = await conn.prepare(
        f"""SELECT {READ_COLUMNS}
           FROM connection_events e JOIN networks n USING (network_ref)
           WHERE e.tenant_ref = $1 AND e.network_ref = $2 AND e.client_id = $3 AND e.occurred_at >= $4
             AND e.occurred_at < $5 ORDER BY e.occurred_at ASC, e.id ASC LIMIT 1001""")
    mojo_sql = await conn.prepare(
        f"""SELECT {READ_COLUMNS}
           FROM connection_events e JOIN networks n USING (network_ref)
           WHERE e.tenant_ref = $1 AND e.client_mac = $2::macaddr ORDER BY e.occurred_at DESC, e.id DESC
           LIMIT 1000""")
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, list[float]] = {k: [] for k in (
        "meraki_p50_ms", "meraki_p99_ms", "grpc_p50_ms", "grpc_p99_ms", "sql_meraki_p50_ms", "sql_meraki_p99_ms",
        "mojo_p50_ms", "mojo_p99_ms", "sql_mojo_p50_ms", "sql_mojo_p99_ms", "meraki_ratio", "grpc_ratio",
        "mojo_ratio")}
    sizes = []
    # aiohttp, not httpx: reading a 230 kB page costs httpx ~3 ms more (the
    # client must not be what is measured)
    async with aiohttp.ClientSession(base_url=suite.gateway_url, timeout=aiohttp.ClientTimeout(60)) as http, \
            grpc.aio.insecure_channel(suite.query_address, options=[
                ("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = query_service_pb2_grpc.QueryServiceStub(channel)
        for _ in range(repeats):
            timings = {k: [] for k in ("meraki", "grpc", "sql_meraki", "mojo", "sql_mojo")}
            for _ in range(samples):
                network, client = rng.randrange(shape.networks_per_tenant), rng.randrange(shape.clients_per_network)
                net, client_id = network_id(network, 100), f"k00{network:02x}{client:04x}"
                mac = client_mac(0, network, client)
                now = dt.datetime.now(dt.UTC)
                t0 = now - span
                began = time.perf_counter()
                async with http.get(
                    f"/api/v1/networks/{net}/wireless/clients/{client_id}/connectivityEvents",
                    params={"perPage": "1000", "t0": f"{t0.timestamp():.6f}", "t1": f"{now.timestamp():.6f}"},
                    headers=headers) as response:
                    body = await response.read()
                timings["meraki"].append(time.perf_counter() - began)
                assert response.status == 200, body[:200]
                sizes.append(len(orjson.loads(body)))
                request = qpb.ListConnectionEventsRequest(parent=f"networks/{net}", client_id=client_id,
                                                          page_size=1000)
                request.start_time.FromDatetime(t0)
                began = time.perf_counter()
                await stub.ListConnectionEvents(request, metadata=(("authorization", f"Bearer {token}"),))
                timings["grpc"].append(time.perf_counter() - began)
                began = time.perf_counter()
                await meraki_sql.fetch(tenant_ref, refs[net], client_id, t0, now)
                timings["sql_meraki"].append(time.perf_counter() - began)
                began = time.perf_counter()
                async with http.get("/V5/devices/clients/connectionlogs",
                                    params={"clientmacaddress": mac, "limit": "1000"}, headers=headers) as response:
                    body = await response.read()
                timings["mojo"].append(time.perf_counter() - began)
                assert response.status == 200, body[:200]
                began = time.perf_counter()
                await mojo_sql.fetch(tenant_ref, mac)
                timings["sql_mojo"].append(time.perf_counter() - began)
            for name, values in timings.items():
                results[f"{name}_p50_ms"].append(percentile(values, 50) * 1000)
                results[f"{name}_p99_ms"].append(percentile(values, 99) * 1000)
            results["meraki_ratio"].append(results["meraki_p50_ms"][-1] / results["sql_meraki_p50_ms"][-1])
            results["grpc_ratio"].append(results["grpc_p50_ms"][-1] / results["sql_meraki_p50_ms"][-1])
            results["mojo_ratio"].append(results["mojo_p50_ms"][-1] / results["sql_mojo_p50_ms"][-1])
    await conn.close()
    out = {k: spread(v) for k, v in results.items()}
    out["events_per_page"] = statistics.median(sizes)
    out["samples_per_run"] = samples
    return out


async def read_capacity(suite: Suite, shape: Shape, token: str, requests: int, concurrency: int = 32,
                        page_size: int = 100) -> dict:
    """Reads per second one query process serves, and per second of its CPU:
    ``requests`` canonical gRPC lists (a client's latest ``page_size``
    events, random clients) from ``concurrency`` callers at once (two
    channels), the query process's CPU time read from /proc before and
    after (the capacity guide's reads/s per query replica and per core)."""
    import psutil

    rng = random.Random(11)
    query = psutil.Process(suite.processes["query"].pid)
    md = (("authorization", f"Bearer {token}"),)
    queue: asyncio.Queue[qpb.ListConnectionEventsRequest] = asyncio.Queue()
    for _ in range(requests):
        network, client = rng.randrange(shape.networks_per_tenant), rng.randrange(shape.clients_per_network)
        queue.put_nowait(qpb.ListConnectionEventsRequest(
            parent=f"networks/{network_id(network, 100)}", client_id=f"k00{network:02x}{client:04x}",
            page_size=page_size, sort_order=qpb.SORT_ORDER_DESCENDING))
    events = 0
    async with grpc.aio.insecure_channel(suite.query_address) as first, \
            grpc.aio.insecure_channel(suite.query_address, options=[("grpc.use_local_subchannel_pool", 1)]) as second:
        stubs = [query_service_pb2_grpc.QueryServiceStub(c) for c in (first, second)]

        async def caller(stub: query_service_pb2_grpc.QueryServiceStub) -> None:
            nonlocal events
            while not queue.empty():
                reply = await stub.ListConnectionEvents(queue.get_nowait(), metadata=md)
                events += len(reply.connection_events)

        cpu_before = sum(query.cpu_times()[:2])
        began = time.perf_counter()
        await asyncio.gather(*(caller(stubs[i % 2]) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu = sum(query.cpu_times()[:2]) - cpu_before
    return {"requests": requests, "concurrency": concurrency, "page_size": page_size,
            "reads_per_s": requests / elapsed, "events_per_s": events / elapsed,
            "query_cpu_s": cpu, "reads_per_cpu_s": requests / cpu if cpu else 0.0,
            "events_per_read": events / requests}


# ---------------------------------------------------------------- storage

async def stored(suite: Suite) -> dict:
    conn = await asyncpg.connect(suite.database_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM connection_events")
        size = await conn.fetchval(
            """SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
               WHERE inhparent = 'connection_events'::regclass""")
        size = int(size)  # numeric (Decimal) in PostgreSQL
        return {"events": count, "bytes": size, "bytes_per_event": size / max(count, 1)}
    finally:
        await conn.close()


async def analyze(suite: Suite) -> None:
    """Vacuum and refresh the planner's statistics after a bulk load, as
    autovacuum soon would: reads are measured in that steady state, not
    while autovacuum works through millions of new rows beside them."""
    conn = await asyncpg.connect(suite.database_url)
    try:
        await conn.execute("VACUUM (ANALYZE) connection_events")
    finally:
        await conn.close()


# How ``grow`` makes a copy of a stored event ($1 the new network, $2 and $3
# the copy's number): new key, client MAC and id; every other column as is.
_GROWN = {
    "network_ref": "$1",
    "dedup_key": "substr(sha224(dedup_key || $2::bytea), 1, 16)",
    "client_mac": "('1' || to_hex(($3 % 16)::int) || substr(client_mac::text, 3))::macaddr",
    "client_id": "client_id || '-' || $3",
}


async def grow(suite: Suite, target: int) -> int:
    """Add stored events by copying existing ones under new networks and
    clients in SQL (fast), until about ``target`` events are stored."""
    conn = await asyncpg.connect(suite.database_url)
    try:
        current = await conn.fetchval("SELECT count(*) FROM connection_events")
        base = current
        copy = 0
        while current < target:
            copy += 1
            take = min(base, target - current)
            tenant_ref, network = await conn.fetchrow(
                """INSERT INTO networks (tenant_ref, network_id) SELECT tenant_ref, 'N_growth_' || $1
                   FROM tenants WHERE tenant_id = 'bench-0' RETURNING tenant_ref, network_ref""", str(copy))
            await conn.execute(
                f"""INSERT INTO connection_events ({', '.join(_COPY_COLUMNS)})
                    SELECT {tenant_ref}, {', '.join(_GROWN.get(c, c) for c in row.TABLE_COLUMNS)}
                    FROM connection_events WHERE id IN (SELECT id FROM connection_events ORDER BY id LIMIT $4)""",
                network, str(copy).encode(), copy, take)
            current += take
        await conn.execute("VACUUM (ANALYZE) connection_events")
        return current
    finally:
        await conn.close()
