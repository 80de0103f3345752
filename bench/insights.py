"""The connection summary at scale: a one-week summary of one network by
access point, through the rollups (docs/insights.md, "How summaries stay
fast"), against the raw SQL of the same question, at each store size.

Measured once the rollup maintainer (in the query service) has caught up:
p50 / p99 of ``calls`` gRPC calls, one REST call through Envoy, and the raw
SQL (a GROUP BY over the week's events, as the summary computed before the
rollups) ``raw_calls`` times. Two networks: the bench's first network (the
same events at both store sizes) and the store's largest network (grown by
``bench.measure.grow``: its raw events grow with the store)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import aiohttp
import asyncpg
import grpc

from bench.data import network_id
from bench.harness import Suite, caught_up
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.api.v1 import insights_service_pb2_grpc

WEEK = dt.timedelta(days=7)

# The question without the rollups: the raw events of the week, grouped as
# the summary groups them (key, step, outcome, failure code).
RAW_SQL = """
SELECT e.ap_serial, CASE WHEN e.ap_serial IS NULL THEN e.ap_name END, e.step, e.outcome, e.failure_code,
       count(*), min(e.occurred_at), max(e.occurred_at)
FROM connection_events e
WHERE e.tenant_ref = $1 AND e.network_ref = $2 AND e.occurred_at >= $3 AND e.occurred_at < $4
GROUP BY 1, 2, 3, 4, 5
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def summaries(suite: Suite, token: str, calls: int, raw_calls: int, *, catch_up_timeout: float) -> dict:
    """The measurements at the store's current size (see the module docstring)."""
    waited = await caught_up(suite, catch_up_timeout)
    conn = await asyncpg.connect(suite.database_url)
    try:
        tenant_ref = await conn.fetchval("SELECT tenant_ref FROM tenants WHERE tenant_id = 'bench-0'")
        largest = await conn.fetchrow(
            """SELECT n.network_id, n.network_ref FROM connection_rollups r JOIN networks n USING (network_ref)
               WHERE r.tenant_ref = $1 GROUP BY 1, 2 ORDER BY sum(r.events) DESC, 1 LIMIT 1""", tenant_ref)
        first = network_id(0, 100)
        networks = {"first": (first, await conn.fetchval(
            "SELECT network_ref FROM networks WHERE tenant_ref = $1 AND network_id = $2", tenant_ref, first)),
            "largest": (largest["network_id"], largest["network_ref"])}
        end = dt.datetime.now(dt.UTC)
        start = end - WEEK
        out: dict = {"catch_up_seconds": waited, "calls": calls, "raw_calls": raw_calls}
        metadata = (("authorization", f"Bearer {token}"),)
        async with grpc.aio.insecure_channel(suite.query_address) as channel, aiohttp.ClientSession(
                base_url=suite.gateway_url, timeout=aiohttp.ClientTimeout(120)) as http:
            stub = insights_service_pb2_grpc.InsightsServiceStub(channel)
            background = asyncio.create_task(_background_work(suite, out.setdefault("background", {})))
            for name, (net, ref) in networks.items():
                request = ipb.SummarizeConnectionsRequest(parent=f"networks/{net}",
                                                          group_by=[ipb.GROUP_BY_ACCESS_POINT])
                request.start_time.FromDatetime(start)
                request.end_time.FromDatetime(end)
                timings = []
                for _ in range(calls):
                    began = time.perf_counter()
                    reply = await stub.SummarizeConnections(request, metadata=metadata)
                    timings.append(time.perf_counter() - began)
                events = sum(g.totals.event_count for g in reply.groups)
                began = time.perf_counter()
                async with http.get(f"/v1/networks/{net}/connectionEvents:summarize",
                                    params={"startTime": start.isoformat().replace("+00:00", "Z"),
                                            "endTime": end.isoformat().replace("+00:00", "Z"),
                                            "groupBy": "GROUP_BY_ACCESS_POINT"},
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                    body = await response.read()
                rest = time.perf_counter() - began
                assert response.status == 200, body[:200]
                raw = []
                for _ in range(raw_calls):
                    began = time.perf_counter()
                    await conn.fetch(RAW_SQL, tenant_ref, ref, start, end)
                    raw.append(time.perf_counter() - began)
                out[name] = {
                    "network": net, "events_in_week": events,
                    "rollup_rows": await conn.fetchval(
                        "SELECT count(*) FROM connection_rollups WHERE network_ref = $1 AND hour >= $2 AND hour < $3",
                        ref, start, end),
                    # (the whole days of the week are read from these, the hours at its edges from the hourly)
                    "daily_rollup_rows": await conn.fetchval(
                        """SELECT count(*) FROM connection_rollups_daily
                           WHERE network_ref = $1 AND day >= $2 AND day < $3""",
                        ref, start, end),
                    "grpc_p50_ms": percentile(timings, 50) * 1000, "grpc_p99_ms": percentile(timings, 99) * 1000,
                    "rest_ms": rest * 1000, "raw_sql_p50_ms": percentile(raw, 50) * 1000,
                }
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)
        return out
    finally:
        await conn.close()


async def _background_work(suite: Suite, seen: dict[str, int]) -> None:
    """What else the database was doing while the summaries were measured
    (they share its cores): every half second, each autovacuum worker's
    and other active backend's query, counted by the samples it was seen in."""
    conn = await asyncpg.connect(suite.database_url)
    try:
        while True:
            for row in await conn.fetch(
                    """SELECT backend_type, left(query, 80) AS query FROM pg_stat_activity
                       WHERE state = 'active' AND pid <> pg_backend_pid()
                         AND (backend_type = 'autovacuum worker' OR query NOT LIKE '%connection_rollups%')"""):
                key = f"{row['backend_type']}: {row['query']}"
                seen[key] = seen.get(key, 0) + 1
            await asyncio.sleep(0.5)  # a sampling interval, not a wait for anything
    finally:
        await conn.close()


def growth(small: dict, large: dict) -> dict:
    """p50 large / small per network (the time must not grow with the raw
    event count), and the raw SQL's, for comparison."""
    return {name: {"grpc_p50": large[name]["grpc_p50_ms"] / small[name]["grpc_p50_ms"],
                   "raw_sql_p50": large[name]["raw_sql_p50_ms"] / small[name]["raw_sql_p50_ms"]}
            for name in ("first", "largest")}


def markdown_rows(r: dict) -> list[str]:
    """The report's table rows (``bench.report``)."""
    small, large = r.get("insights_small"), r.get("insights_large")
    if not small or not large:
        return []
    rows = []
    for data, size in ((small, r["storage"]["events"]), (large, r["storage_large"]["events"])):
        for name in ("first", "largest"):
            d = data[name]
            ok = d["grpc_p50_ms"] < 300 and d["grpc_p99_ms"] < 1000
            rows.append(
                f"| one-week summary by access point of {d['network']} ({d['events_in_week']:,} events, "
                f"{d['rollup_rows']:,} rollup rows) at {size:,} stored events, gRPC p50 / p99 ms (REST via Envoy) | "
                f"{d['grpc_p50_ms']:,.1f} / {d['grpc_p99_ms']:,.1f} ({d['rest_ms']:,.1f}) | "
                f"{d['raw_sql_p50_ms']:,.1f} (raw SQL GROUP BY) | {d['grpc_p50_ms'] / d['raw_sql_p50_ms']:,.2f} | "
                f"p50 < 300, p99 < 1000 | {'met' if ok else '**not met**'} |")
    g = growth(small, large)
    # the verdict: the same question (the first network's week) as the store grows; the largest network's
    # time follows its rollup rows (hours × distinct dimension values), listed for comparison
    flat = g["first"]["grpc_p50"] < 1.5
    rows.append(
        f"| summary p50 growth, small → large store | first network {g['first']['grpc_p50']:,.2f}× (raw SQL "
        f"{g['first']['raw_sql_p50']:,.2f}×); largest network {g['largest']['grpc_p50']:,.2f}× for "
        f"{large['largest']['events_in_week'] / small['largest']['events_in_week']:,.1f}× its events, "
        f"{large['largest']['rollup_rows'] / small['largest']['rollup_rows']:,.1f}× its rollup rows (raw SQL "
        f"{g['largest']['raw_sql_p50']:,.2f}×) | | | < 1.5× (first network) | {'met' if flat else '**not met**'} |")
    return rows
