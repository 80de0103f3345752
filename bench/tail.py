"""``python -m bench.tail [--watchers N]``: the live tail (WatchConnectionEvents).

Measures, on a started suite (``bench.harness.running_suite``: the query and
ingest services as their own processes, as in a deployment):

* **delivery latency**: with ``watchers`` gRPC watches of one tenant open
  (each following one client, ``WATCHED_CLIENT``), single-event ingest calls
  of that client one after another at a modest pace; for every event and every watch, the time from the ingest
  call's acknowledgement to the watch receiving it. p50, p99 and max over
  all (event, watch) pairs.
* **ingest rate without watches and with ``watchers`` watches**: the same
  load each time (calls of 100 events, 4 at a time, of the tenant the watches
  follow), in events per second: without watches (before they open and after
  they close: the median), with the watches open but none of the load theirs
  (what open watches cost: the follower still reads and matches every event),
  and with one event in ``WATCHED_EVERY`` theirs (what delivering to them
  costs), ``RATE_ROUNDS`` rounds each (medians); and how many watches
  received every watched event of the last loaded run, and how many were
  dropped as too slow.

The watches are read by a process of their own (as clients would run
elsewhere), so that reading 100 streams does not slow this process's ingest
load; on a small machine they still share its cores with the services and
the load generator, which the rate with watches includes. ``measure`` is what ``python -m bench`` calls.

``python -m bench.tail --follower`` measures the follower's reads alone, on
an embedded PostgreSQL of its own: ``FOLLOWER_EVENTS`` stored events (one in
``WATCHED_EVERY`` of the watched client) read once as whole rows
(``read_after``, what the follower read before it matched on columns) and
once as the follower reads them now (``read_facts_after``, matched, then
``read_events`` for the matched ones): CPU of this process and wall time per
event, best of three.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import asyncpg
import grpc

from bench.harness import Suite, running_suite
from bench.measure import percentile
from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import ingest_service_pb2_grpc as igrpc
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import query_service_pb2_grpc as qgrpc
from connlog.core.auth import create_key
from connlog.core.database import DatabaseServer, create_pool
from connlog.core.principal import Role
from connlog.query.event_match import matches
from connlog.store.accounts import AccountStore
from connlog.store.events import EventFilter
from connlog.store.feed import FeedPosition, read_after, read_events, read_facts_after
from connlog.store.partitions import create_partitions

LATENCY_EVENTS = 200  # single-event calls of the latency run
LATENCY_PACE_S = 0.02  # between them (a steady trickle, not a load)
RATE_EVENTS = 20_000  # events of each rate run
RATE_CALL_EVENTS = 100
RATE_CONCURRENCY = 4
RATE_ROUNDS = 5  # rounds of the rate runs with watches open
DEADLINE_S = 120.0
# The client the watches follow: every event of the latency run, one in
# WATCHED_EVERY of the rate runs (every event is still matched against every
# watch; the watches' reader, this process, is not what is measured).
WATCHED_CLIENT = "bench-tail-watched"
WATCHED_EVERY = 100


def _event(i: int, network: str, watched: bool = False) -> pb.ConnectionEvent:
    event = pb.ConnectionEvent(network_id=network, step=pb.CONNECTION_STEP_ASSOCIATION,
                               client=pb.Client(mac_address=f"02:be:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:"
                                                f"{(i >> 8) & 255:02x}:{i & 255:02x}",
                                                client_id=WATCHED_CLIENT if watched else ""))
    event.occur_time.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5, microseconds=i))
    return event


@dataclass
class _Watch:
    call: grpc.aio.UnaryStreamCall
    received: dict[str, float] = field(default_factory=dict)  # event name -> perf_counter at receipt
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: grpc.StatusCode | None = None  # how the server ended it (RESOURCE_EXHAUSTED: dropped as too slow)

    async def read(self) -> None:
        try:
            async for message in self.call:
                now = time.perf_counter()
                self.started.set()
                for event in message.connection_events:
                    self.received[event.name] = now
        except grpc.aio.AioRpcError as err:
            self.ended = err.code()


async def _until(condition: Callable[[], bool], deadline: float = DEADLINE_S) -> bool:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.05)
    return True


Metadata = tuple[tuple[str, str], ...]


async def _rate(ingest: igrpc.IngestServiceStub, md: Metadata, network: str, offset: int,
                watched_every: int | None = WATCHED_EVERY) -> tuple[float, list[str]]:
    """Ingest RATE_EVENTS events (calls of RATE_CALL_EVENTS, RATE_CONCURRENCY
    at a time), one in ``watched_every`` of the watched client (None: none):
    events per second, and the names of the watched ones."""
    names: list[str] = []
    calls = iter(range(0, RATE_EVENTS, RATE_CALL_EVENTS))

    async def worker() -> None:
        for start in calls:
            events = [_event(offset + start + i, network,
                             watched_every is not None and (start + i) % watched_every == 0)
                      for i in range(RATE_CALL_EVENTS)]
            reply = await ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events), metadata=md)
            if reply.accepted_count != len(events):
                raise RuntimeError(f"ingest refused events: {reply.rejected_count} rejected")
            names.extend(r.name for r, e in zip(reply.results, events, strict=True) if e.client.client_id)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(RATE_CONCURRENCY)))
    return RATE_EVENTS / (time.perf_counter() - began), names


def _watch_process(query_address: str, token: str, watchers: int, pipe: Connection) -> None:
    """The watches' client, in a process of its own (as clients would run
    elsewhere; reading 100 streams must not slow the ingest load generator):
    opens ``watchers`` watches, says when each has its first message, then
    answers the measuring process's questions over ``pipe``."""
    asyncio.run(_watch_client(query_address, token, watchers, pipe))


async def _watch_client(query_address: str, token: str, watchers: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(query_address) as channel:
        query = qgrpc.QueryServiceStub(channel)
        request = qpb.WatchConnectionEventsRequest(parent="networks/-", client_id=WATCHED_CLIENT)
        watches = [_Watch(query.WatchConnectionEvents(request, metadata=md)) for _ in range(watchers)]
        readers = [asyncio.create_task(w.read()) for w in watches]
        try:
            # each watch's first message: the server holds it
            await asyncio.wait_for(asyncio.gather(*(w.started.wait() for w in watches)), DEADLINE_S)
            pipe.send("started")
            while True:
                command, argument = await loop.run_in_executor(None, pipe.recv)
                if command == "latency":  # argument: event name -> acknowledgement time
                    acknowledged: dict[str, float] = argument
                    complete = await _until(lambda acknowledged=acknowledged: all(
                        all(name in w.received for name in acknowledged) for w in watches))
                    pipe.send(([w.received[name] - at for w in watches for name, at in acknowledged.items()
                                if name in w.received], complete))
                elif command == "rate":  # argument: the watched events' names
                    names: list[str] = argument
                    await _until(lambda names=names: all(
                        w.ended is not None or names[-1] in w.received for w in watches))
                    pipe.send((sum(1 for w in watches if w.ended is None and all(n in w.received for n in names)),
                               sum(1 for w in watches if w.ended == grpc.StatusCode.RESOURCE_EXHAUSTED)))
                else:
                    return
        finally:
            for w in watches:
                w.call.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def _ask(pipe: Connection, command: str, argument: object) -> Any:
    pipe.send((command, argument))
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def measure(suite: Suite, watchers: int = 100) -> dict[str, object]:
    pool = await create_pool(suite.settings, suite.database_url, min_size=1, max_size=2)
    key = await create_key(AccountStore(pool), tenant_id="bench-tail", role=Role.OPERATOR)
    await pool.close()
    md = (("authorization", f"Bearer {key.token}"),)
    network = "N_bench_tail"
    async with grpc.aio.insecure_channel(suite.ingest_address) as ingest_channel:
        ingest = igrpc.IngestServiceStub(ingest_channel)
        # the rate without watches: before they open and after they close
        without = [(await _rate(ingest, md, network, 0))[0]]

        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        client = multiprocessing.get_context("spawn").Process(
            target=_watch_process, args=(suite.query_address, key.token, watchers, theirs), daemon=True)
        client.start()
        try:
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(None, ours.poll, DEADLINE_S):
                raise RuntimeError("the watches did not start")
            ours.recv()
            acknowledged: dict[str, float] = {}
            for i in range(LATENCY_EVENTS):
                reply = await ingest.IngestConnectionEvents(
                    ipb.IngestConnectionEventsRequest(events=[_event(10_000_000 + i, network, True)]), metadata=md)
                # perf_counter is the machine's monotonic clock: the watch process reads the same one
                acknowledged[reply.results[0].name] = time.perf_counter()
                await asyncio.sleep(LATENCY_PACE_S)  # the pace of the trickle, not a wait for anything
            latencies, complete = await _ask(ours, "latency", acknowledged)

            # rounds of: the watches receiving none of the load (what watches
            # cost when nothing they follow is stored), and one event in
            # WATCHED_EVERY (what delivering costs); medians of each
            idle: list[float] = []
            delivering: list[float] = []
            names: list[str] = []
            for round_ in range(RATE_ROUNDS):
                idle.append((await _rate(ingest, md, network, 30_000_000 + round_ * RATE_EVENTS, None))[0])
                rate, names = await _rate(ingest, md, network, 20_000_000 + round_ * RATE_EVENTS)
                delivering.append(rate)
            every, dropped = await _ask(ours, "rate", names)
            ours.send(("stop", None))
        finally:
            client.join(30)
            if client.is_alive():
                client.kill()
        without.append((await _rate(ingest, md, network, 40_000_000))[0])
    rate_without = statistics.median(without)
    rate_idle, rate_with = statistics.median(idle), statistics.median(delivering)
    return {
        "watchers": watchers,
        "delivery_latency_ms": {"p50": round(percentile(latencies, 50) * 1000, 1),
                                "p99": round(percentile(latencies, 99) * 1000, 1),
                                "max": round(max(latencies) * 1000, 1), "pairs": len(latencies),
                                "every_event_delivered": complete},
        "ingest_events_per_s": {"without_watchers": round(rate_without),
                                f"with_{watchers}_idle_watchers": round(rate_idle),
                                "idle_ratio": round(rate_idle / rate_without, 2),
                                f"with_{watchers}_watchers": round(rate_with),
                                "ratio": round(rate_with / rate_without, 2),
                                # watches that got every event of the loaded run, and those
                                # dropped as too slow (resumable)
                                "watchers_with_every_event": every, "watchers_dropped": dropped},
    }


FOLLOWER_EVENTS = 20_000


async def follower_cost() -> dict[str, object]:
    """The follower's reads per event: whole rows, or facts and the matched
    events' payloads (see the module's docstring)."""
    server = DatabaseServer.start(prefix="connlog-bench-follower-")
    try:
        conn = await asyncpg.connect(await server.create_database("follower", migrated=True))
        now = dt.datetime.now(dt.UTC)
        await create_partitions(conn, [(now + dt.timedelta(days=i)).date() for i in (-1, 0, 1)])
        await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('bench-follower')")
        tenant_ref = await conn.fetchval("SELECT tenant_ref FROM tenants")
        await conn.execute("INSERT INTO networks (tenant_ref, network_id) VALUES ($1, 'N_1')", tenant_ref)
        # a payload as ingest stores it: without the column-held fields
        payload = _event(0, "N_1")
        payload.ClearField("network_id")
        payload.ClearField("client")
        payload.source.CopyFrom(pb.Source(vendor=pb.VENDOR_MERAKI, vendor_event_id="0123456789abcdef"))
        payload.vendor_record.CopyFrom(pb.VendorRecord(content_type="application/json",
                                                       data='{"type": "association", "vap": 1, "channel": 36}'))
        start = FeedPosition(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
        for call in range(FOLLOWER_EVENTS // RATE_CALL_EVENTS):  # a transaction per call, as ingest's
            await conn.execute(
                """INSERT INTO connection_events (tenant_ref, network_ref, occurred_at, dedup_key, step, outcome,
                       severity, band, vendor, client_mac, client_id, ssid, ap_serial, ap_name, bssid, payload)
                   SELECT $1, n.network_ref, $2::timestamptz - g * interval '1 ms', int8send(g + $3::bigint),
                          1, 1, 1, 2, 1, '02:be:00:00:00:01', CASE WHEN g % $5 = 0 THEN $6 ELSE 'c' || g END,
                          'Corp', 'Q2-AB', 'Lobby', '00:11:22:33:44:55', $4
                   FROM networks n, generate_series(1, $7) g WHERE n.tenant_ref = $1""",
                tenant_ref, now, call * RATE_CALL_EVENTS, payload.SerializeToString(), WATCHED_EVERY, WATCHED_CLIENT,
                RATE_CALL_EVENTS)
        await conn.execute("VACUUM ANALYZE connection_events")
        flt = EventFilter(client_id=WATCHED_CLIENT)

        async def whole_rows() -> int:
            position, matched = start, 0
            while True:
                page = await read_after(conn, position, 1000)
                matched += sum(1 for e in page.events if matches(flt, e.facts))
                position = page.last(position)
                if page.complete:
                    return matched

        async def facts_then_matched() -> int:
            position, matched = start, 0
            while True:
                facts = await read_facts_after(conn, position, 1000, [tenant_ref])
                keys = [(r["tenant_ref"], r["id"], r["occurred_at"]) for r in facts.rows if matches(flt, r)]
                matched += len(await read_events(conn, keys))
                position = facts.last(position)
                if facts.complete:
                    return matched

        figures: dict[str, object] = {"events": FOLLOWER_EVENTS, "matched": FOLLOWER_EVENTS // WATCHED_EVERY}
        for name, read in (("whole_rows", whole_rows), ("facts_then_matched", facts_then_matched)):
            best: tuple[float, float] | None = None
            for _ in range(3):
                cpu, wall = time.process_time(), time.perf_counter()
                if await read() != FOLLOWER_EVENTS // WATCHED_EVERY:
                    raise RuntimeError(f"{name}: not every watched event was matched")
                took = ((time.process_time() - cpu) / FOLLOWER_EVENTS, (time.perf_counter() - wall) / FOLLOWER_EVENTS)
                best = took if best is None or took[0] < best[0] else best
            assert best is not None
            figures[name] = {"cpu_us_per_event": round(best[0] * 1e6, 1), "wall_us_per_event": round(best[1] * 1e6, 1)}
        await conn.close()
        return figures
    finally:
        server.stop()


async def main(watchers: int) -> None:
    async with running_suite() as suite:
        print(json.dumps(await measure(suite, watchers), indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--follower", action="store_true", help="measure the follower's reads alone")
    args = parser.parse_args()
    if args.follower:
        print(json.dumps(asyncio.run(follower_cost()), indent=2))
    else:
        asyncio.run(main(args.watchers))
