"""Rate budgets shared by every replica (connlog.store.budgets, migration
0011): the take statement on a real database (its arithmetic, concurrent
takers, the truth of its waits, the sweep), Meraki's per-organisation limit
across two query processes behind one gateway, write budgets across two
ingest processes, and the answer when the shared buckets are out of reach.

No timing: budgets refill at 0.001 per second (a token per 1000 s), so what
a run may take is its burst; waits are checked against the bucket's own row,
and "after waiting" is the row's clock moved back in SQL."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc
from connlog.core.budgets import (
    KEY_WRITES,
    Ask,
    Budget,
    WriteBudgets,
    granted,
    refill,
    retry_after,
    wait_for,
)
from connlog.core.database import create_pool
from connlog.devtools.ports import free_ports
from connlog.shapes.meraki.ratelimit import SCOPE as MERAKI_SCOPE
from connlog.store.budgets import SharedBuckets
from connlog.suite import wait_serving
from tests.support.db_proxy import DatabaseProxy
from tests.support.factories import now, simple_event
from tests.support.gateway import envoy_in_front
from tests.support.gateway_calls import MERAKI_PATH, ingest, key_headers, meraki_event
from tests.support.processes import rpc_calls, service_processes

RATE = 0.001  # a token per 1000 s: nothing refills within a test
BURST = 5
SERVED_EACH = 6  # requests each query process must answer: more than the burst, so per-process limits show


async def _bucket(pool: asyncpg.Pool, scope: str, key: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT tokens, updated_at FROM rate_buckets WHERE scope = $1 AND key = $2", scope, key)
    assert row is not None, (scope, key)
    return row


async def _move_back(pool: asyncpg.Pool, scope: str, key: str, seconds: float) -> None:
    """As if ``seconds`` had passed on the database's clock since the last take."""
    await pool.execute("UPDATE rate_buckets SET updated_at = updated_at - make_interval(secs => $3) "
                       "WHERE scope = $1 AND key = $2", scope, key, float(seconds))


# --- the statement -----------------------------------------------------------

# (tokens in the row, seconds since its last take, rate, burst, ask): the
# database must take what connlog.core.budgets.granted(refill(...)) takes
STATEMENT_CASES = [
    ("refilled, then one taken", (0.0, 0.5, 2.0, 10.0, Ask(1, 1, 1))),
    ("not yet refilled: refused", (0.0, 0.4, 2.0, 10.0, Ask(1, 1, 1))),
    ("capped at the burst", (9.0, 3600.0, 2.0, 10.0, Ask(10, 10, 10))),
    ("over the cap: refused", (9.0, 3600.0, 2.0, 10.0, Ask(11, 11, 11))),
    ("a lease of what is there", (2.5, 0.0, 2.0, 10.0, Ask(1, 1, 5))),
    ("a whole lease", (8.0, 0.0, 2.0, 10.0, Ask(1, 1, 5))),
    ("into debt when full", (10.0, 0.0, 2.0, 10.0, Ask(10, 25, 25))),
    ("out of debt by refill", (-13.0, 7.0, 2.0, 10.0, Ask(1, 1, 1))),
    ("still in debt", (-13.0, 6.0, 2.0, 10.0, Ask(1, 1, 1))),
    ("a tiny rate after 1000 s", (0.0, 1000.0, 0.001, 5.0, Ask(1, 1, 1))),
]


@pytest.mark.parametrize("case", [c[1] for c in STATEMENT_CASES], ids=[c[0] for c in STATEMENT_CASES])
async def test_the_take_statement_does_the_bucket_arithmetic(pool, case) -> None:
    tokens, elapsed, rate, burst, ask = case
    budget = Budget(rate, burst)
    async with pool.acquire() as conn, conn.transaction():  # one transaction: now() stands still
        await conn.execute("INSERT INTO rate_buckets (scope, key, tokens, taken, updated_at, full_at) "
                           "VALUES ('test', 'arith', $1, 0, now() - make_interval(secs => $2), now()) "
                           "ON CONFLICT (scope, key) DO UPDATE SET tokens = $1, "
                           "updated_at = now() - make_interval(secs => $2)", tokens, elapsed)
        took = await SharedBuckets(conn).take("test", "arith", budget, ask)
        available = refill(tokens, elapsed, budget)
        assert took.taken == pytest.approx(granted(available, ask))
        assert took.tokens == pytest.approx(available - took.taken)
        row = await conn.fetchrow("SELECT updated_at = now() AS at_now, "
                                  "extract(epoch FROM full_at - now())::float8 AS to_full "
                                  "FROM rate_buckets WHERE scope = 'test' AND key = 'arith'")
        assert row["at_now"]
        assert row["to_full"] == pytest.approx((burst - took.tokens) / rate)
        await conn.execute("DELETE FROM rate_buckets WHERE scope = 'test'")


async def test_a_new_bucket_starts_full(pool) -> None:
    buckets = SharedBuckets(pool)
    took = await buckets.take("test", "new-bucket", Budget(RATE, BURST), Ask(1, 1, 3))
    assert (took.taken, took.tokens) == (3.0, 2.0)
    await pool.execute("DELETE FROM rate_buckets WHERE scope = 'test'")


async def test_concurrent_takers_on_many_connections_never_exceed_the_burst(settings) -> None:
    burst = 50
    connections = [await asyncpg.connect(settings.database_url) for _ in range(8)]
    try:
        async def taker(conn: asyncpg.Connection, most: float) -> float:
            total = 0.0
            for _ in range(15):
                total += (await SharedBuckets(conn).take("test", "concurrent", Budget(RATE, burst),
                                                         Ask(1, 1, most))).taken
            return total

        for most in (1.0, 4.0):  # one token a take (Meraki); leases of up to 4
            await connections[0].execute("DELETE FROM rate_buckets WHERE scope = 'test'")
            started = await connections[0].fetchval("SELECT now()")
            taken = await asyncio.gather(*(taker(conn, most) for conn in connections))  # 120 takes at once
            elapsed = await connections[0].fetchval("SELECT extract(epoch FROM clock_timestamp() - $1)::float8",
                                                    started)
            assert burst <= sum(taken) <= burst + RATE * elapsed, (most, taken)
            assert sum(1 for t in taken if t > 0) > 1  # several connections took some
    finally:
        await connections[0].execute("DELETE FROM rate_buckets WHERE scope = 'test'")
        for conn in connections:
            await conn.close()


async def test_the_wait_is_exactly_what_the_bucket_needs(pool) -> None:
    budget, one = Budget(RATE, BURST), Ask(1, 1, 1)
    async with pool.acquire() as conn, conn.transaction():  # one transaction: now() stands still
        buckets = SharedBuckets(conn)
        for _ in range(BURST):
            assert (await buckets.take("test", "wait", budget, one)).taken == 1
        await conn.execute("UPDATE rate_buckets SET tokens = 0.25 WHERE scope = 'test'")
        refused = await buckets.take("test", "wait", budget, one)
        seconds = retry_after(wait_for(refused.tokens, one, budget))
        assert (refused.taken, seconds) == (0, 750)
        await conn.execute("UPDATE rate_buckets SET updated_at = updated_at - make_interval(secs => $1) "
                           "WHERE scope = 'test'", seconds - 1.0)
        assert (await buckets.take("test", "wait", budget, one)).taken == 0  # a second short: still refused
        await conn.execute("UPDATE rate_buckets SET updated_at = updated_at - make_interval(secs => 1) "
                           "WHERE scope = 'test'")
        assert (await buckets.take("test", "wait", budget, one)).taken == 1  # after the whole wait: allowed
        await conn.execute("DELETE FROM rate_buckets WHERE scope = 'test'")


async def test_full_buckets_are_swept(pool) -> None:
    buckets = SharedBuckets(pool)
    await pool.execute("DELETE FROM rate_buckets WHERE scope = 'test'")
    for n in range(3):
        await buckets.take("test", f"sweep-{n}", Budget(RATE, BURST), Ask(1, 1, 1))
    await _move_back(pool, "test", "sweep-0", 1 / RATE)  # refilled by now: the same as no row
    await pool.execute("UPDATE rate_buckets SET full_at = updated_at + interval '1000 seconds' "
                       "WHERE scope = 'test' AND key = 'sweep-0'")
    await pool.execute("UPDATE rate_buckets SET full_at = full_at - interval '1001 seconds' "
                       "WHERE scope = 'test' AND key = 'sweep-1'")
    assert await buckets.sweep() >= 2
    left = await pool.fetch("SELECT key FROM rate_buckets WHERE scope = 'test'")
    assert [r["key"] for r in left] == ["sweep-2"]  # in use: kept
    await pool.execute("DELETE FROM rate_buckets WHERE scope = 'test'")


async def test_leases_of_two_processes_spend_exactly_the_burst(pool) -> None:
    """Two processes' write budgets (leases of 10) on one shared bucket of 20:
    every token taken is spent, none twice."""
    from connlog.core.settings import Settings

    clock = [0.0]
    settings = Settings(key_write_events_per_second=10.0, key_write_burst=20.0, write_budget_lease_seconds=1.0)
    async with pool.acquire() as conn, conn.transaction():  # the database's clock stands still: no refill
        first, second = (WriteBudgets(settings, SharedBuckets(conn), lambda: clock[0]) for _ in range(2))
        answers = []
        for _ in range(30):
            answers += [await first.charge("lease-key", 1, 1), await second.charge("lease-key", 1, 1)]
        assert answers.count(None) == 20
        assert {a for a in answers if a is not None} == {1}
        row = await conn.fetchrow("SELECT tokens FROM rate_buckets WHERE scope = $1 AND key = 'lease-key/1'",
                                  KEY_WRITES)
        assert row["tokens"] == 0


# --- across processes --------------------------------------------------------


def _env(database_url: str, data_dir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env.update(DATABASE_URL=database_url, CONNLOG_DATA_DIR=str(data_dir), CONNLOG_LOG_FORMAT="console",
               CONNLOG_LOG_LEVEL="warning", CONNLOG_AUTH_CACHE_SECONDS="0")
    env.update({f"CONNLOG_{name.upper()}": str(value) for name, value in settings.items()})
    return env


async def test_two_query_processes_behind_one_gateway_keep_one_meraki_budget(
        database_url, pool, suite, clients, make_tenant, tmp_path) -> None:
    tenant = await make_tenant()
    await ingest(clients, tenant, [meraki_event("N_shared", "ks", now())])
    ports = free_ports(4)
    envs = [_env(database_url, tmp_path, query_port=ports[i], query_metrics_port=ports[2 + i],
                 meraki_rate_limit_per_second=RATE, meraki_rate_limit_burst=BURST, rollup_maintainer="false")
            for i in range(2)]
    with service_processes("query", envs, tmp_path) as procs:
        for proc, port in zip(procs, ports[:2], strict=True):
            await wait_serving(f"127.0.0.1:{port}", proc=proc)
        async with envoy_in_front(suite.settings, tmp_path / "envoy", ingest=suite.ingest_address,
                                  query=f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}") as gateway, \
                httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            url = MERAKI_PATH.format(net="N_shared", client="ks")
            method = "GetNetworkWirelessClientConnectivityEvents"
            responses: list[httpx.Response] = []
            served = [0.0, 0.0]
            for _ in range(20):  # rounds of 20 at once, until each process has answered more than the burst
                responses += await asyncio.gather(*(http.get(url, headers=key_headers(tenant)) for _ in range(20)))
                served = [rpc_calls(port, method) for port in ports[2:]]
                if min(served) >= SERVED_EACH:
                    break
            assert min(served) >= SERVED_EACH, f"requests answered by each query process: {served}"
            assert sum(served) == len(responses)
            statuses = [r.status_code for r in responses]
            assert set(statuses) == {200, 429}
            assert statuses.count(200) == BURST  # across both processes: the burst, no more (refill: 0.001/s)
            bucket = await _bucket(pool, MERAKI_SCOPE, tenant.tenant_id)
            true_wait = (1 - bucket["tokens"]) / RATE
            for response in responses:
                if response.status_code == 429:
                    assert response.json() == {"errors": ["API rate limit exceeded for organization"]}
                    assert math.ceil(true_wait) <= int(response.headers["retry-after"]) <= 1 / RATE

            # the Retry-After of a refusal is the wait of the bucket it left
            refused = await http.get(url, headers=key_headers(tenant))
            assert refused.status_code == 429
            bucket = await _bucket(pool, MERAKI_SCOPE, tenant.tenant_id)
            assert int(refused.headers["retry-after"]) == retry_after((1 - bucket["tokens"]) / RATE)
            # ... and after waiting that long (on the database's clock) a request is allowed
            await _move_back(pool, MERAKI_SCOPE, tenant.tenant_id, int(refused.headers["retry-after"]))
            assert (await http.get(url, headers=key_headers(tenant))).status_code == 200
            assert (await http.get(url, headers=key_headers(tenant))).status_code == 429


async def _write(stub: ingest_service_pb2_grpc.IngestServiceStub, md, n: int) -> tuple[grpc.StatusCode, str | None]:
    try:
        reply = await stub.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(
            events=[simple_event("N_shared_w", client_id=f"w{n}")]), metadata=md)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), dict(exc.trailing_metadata() or ()).get("retry-after")
    assert reply.accepted_count == 1
    return grpc.StatusCode.OK, None


async def test_two_ingest_processes_keep_one_write_budget(database_url, pool, make_tenant, tmp_path) -> None:
    tenant = await make_tenant()
    md = tenant.md("operator")
    ports = free_ports(4)
    envs = [_env(database_url, tmp_path, ingest_port=ports[i], ingest_metrics_port=ports[2 + i], ingest_workers=0,
                 key_write_events_per_second=RATE, key_write_burst=BURST) for i in range(2)]
    with service_processes("ingest", envs, tmp_path) as procs:
        for proc, port in zip(procs, ports[:2], strict=True):
            await wait_serving(f"127.0.0.1:{port}", proc=proc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as a, \
                grpc.aio.insecure_channel(f"127.0.0.1:{ports[1]}") as b:
            stubs = [ingest_service_pb2_grpc.IngestServiceStub(channel) for channel in (a, b)]
            outcomes = await asyncio.gather(*(_write(stubs[n % 2], md, n) for n in range(24)))
        codes = [code for code, _ in outcomes]
        assert codes.count(grpc.StatusCode.OK) == BURST  # across both processes
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert [rpc_calls(port, "IngestConnectionEvents") for port in ports[2:]] == [12, 12]
        key_id = tenant.keys["operator"].split("_")[1]  # clk_<key_id>_<secret>
        tenant_ref = await pool.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = $1", tenant.tenant_id)
        bucket = await _bucket(pool, KEY_WRITES, f"{key_id}/{tenant_ref}")
        for code, seconds in outcomes:
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert seconds is not None and math.ceil((1 - bucket["tokens"]) / RATE) <= int(seconds) <= 1 / RATE
        stored = await pool.fetchval(
            "SELECT count(*) FROM connection_events WHERE tenant_ref = $1", tenant_ref)
        assert stored == BURST


# --- the shared buckets out of reach -------------------------------------------


async def test_buckets_out_of_reach_answer_unavailable_with_retry_after(
        suite, clients, make_tenant, tmp_path, monkeypatch) -> None:
    """Write budgets and Meraki's limit through a database connection that
    is then cut (everything else stays up): UNAVAILABLE / 503 with
    Retry-After, never unlimited, never an internal error."""
    from connlog.core import server
    from connlog.core.server import start_service
    from connlog.ingest.servicer import register as register_ingest
    from connlog.query.servicer import register as register_query
    from connlog.shapes.meraki import servicer as meraki_servicer

    proxy = DatabaseProxy(suite.settings.database_url)
    await proxy.start()
    cut_pool = await create_pool(suite.settings, proxy.url, min_size=0, max_size=2)
    monkeypatch.setattr(server, "SharedBuckets", lambda pool: SharedBuckets(cut_pool))
    monkeypatch.setattr(meraki_servicer, "SharedBuckets", lambda pool: SharedBuckets(cut_pool))
    settings = suite.settings.model_copy(update={"write_budget_lease_seconds": 0.0})
    ingest_service = await start_service("ingest", settings, register_ingest, port=0)
    query_service = await start_service("query", settings, register_query, port=0)
    tenant = await make_tenant()
    await ingest(clients, tenant, [meraki_event("N_cut", "kc", now())])
    url = MERAKI_PATH.format(net="N_cut", client="kc")
    try:
        async with envoy_in_front(settings, tmp_path / "envoy", ingest=f"127.0.0.1:{ingest_service.port}",
                                  query=f"127.0.0.1:{query_service.port}") as gateway, \
                httpx.AsyncClient(base_url=gateway.url, timeout=30) as http, \
                grpc.aio.insecure_channel(f"127.0.0.1:{ingest_service.port}") as channel:
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            assert (await _write(stub, tenant.md("operator"), 0))[0] is grpc.StatusCode.OK
            assert (await http.get(url, headers=key_headers(tenant))).status_code == 200
            await proxy.cut()
            code, seconds = await _write(stub, tenant.md("operator"), 1)
            assert (code, seconds) == (grpc.StatusCode.UNAVAILABLE, str(settings.retry_after_seconds))
            response = await http.get(url, headers=key_headers(tenant))
            assert response.status_code == 503
            assert response.headers["retry-after"] == str(settings.retry_after_seconds)
            assert response.json() == {"errors": ["the database is unavailable; retry later"]}
            await proxy.start()  # back: allowed again
            assert (await http.get(url, headers=key_headers(tenant))).status_code == 200
    finally:
        await ingest_service.stop(1)
        await query_service.stop(1)
        await cut_pool.close()
        await proxy.stop()
