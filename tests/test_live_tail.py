"""The live tail (WatchConnectionEvents, connlog.query.tail) end to end: the
real query and ingest services on a real PostgreSQL, and a real Envoy for the
REST binding.

A query service of this module's own (small buffers, quick heartbeats and
polls, so that a stalled watch fills its buffer with few events) serves the
watches; events are stored through the shared ingest service."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import httpx
import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import query_service_pb2_grpc as qgrpc
from connlog.core.server import RunningService, start_service
from connlog.query.servicer import RESUME_TOKEN_TRAILER
from connlog.query.tail import TailHub
from connlog.store.feed import MAX_SQL_WATCH_FILTERS, FeedPosition
from tests.support.factories import now, simple_event
from tests.support.gateway_calls import ingest
from tests.support.services import Clients, Tenant
from tests.support.waiting import until

BUFFER_EVENTS = 300
MAX_WATCHERS = 150
_macs = itertools.count(1)


@dataclass
class Tail:
    service: RunningService
    stub: qgrpc.QueryServiceStub
    address: str

    @property
    def hub(self) -> TailHub:
        """The service's TailHub (its close is a stopping hook)."""
        return next(hook.__self__ for hook in self.service.ctx.on_stopping
                    if isinstance(getattr(hook, "__self__", None), TailHub))


@pytest.fixture(scope="module")
async def tail(suite) -> AsyncIterator[Tail]:
    from connlog.query.servicer import register

    settings = suite.settings.model_copy(update={
        "watch_buffer_events": BUFFER_EVENTS, "watch_max_watchers": MAX_WATCHERS,
        "watch_heartbeat_seconds": 2.0, "watch_poll_seconds": 1.0})
    service = await start_service("query-tail", settings, register, port=0)
    address = f"127.0.0.1:{service.port}"
    # no BDP probing: the flow-control window stays small, so a client that
    # does not read soon leaves the server with messages it cannot send
    async with grpc.aio.insecure_channel(address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
        yield Tail(service, qgrpc.QueryServiceStub(channel), address)
    await service.stop(1)


def _mac() -> str:
    n = next(_macs)
    return ":".join(f"{b:02x}" for b in (0x02, 0x11, (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255))


@dataclass
class Watch:
    """A WatchConnectionEvents call read by a task of its own into ``messages``."""

    call: grpc.aio.UnaryStreamCall
    messages: list[qpb.WatchConnectionEventsResponse] = field(default_factory=list)
    error: grpc.aio.AioRpcError | None = None
    task: asyncio.Task | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def events(self) -> list[pb.ConnectionEvent]:
        return [e for m in self.messages for e in m.connection_events]

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    async def read(self) -> None:
        try:
            async for message in self.call:
                self.messages.append(message)
                self.changed.set()
        except grpc.aio.AioRpcError as err:
            self.error = err
            self.changed.set()

    async def wait_for(self, count: int, what: str = "events") -> None:
        await until(self._has(count), f"{count} {what} (have {len(self.events)})")

    def _has(self, count: int) -> Callable:
        async def check() -> bool:
            return len(self.events) >= count or self.error is not None
        return check

    def cancel(self) -> None:
        self.call.cancel()
        if self.task is not None:
            self.task.cancel()

    def last_token(self) -> str:
        return self.messages[-1].resume_token


async def watch(tail: Tail, tenant: Tenant, *, read: bool = True, role: str = "viewer",
                **request: object) -> Watch:
    """Start a watch and wait until the server holds it (so that what is
    stored from now on reaches it)."""
    before = tail.hub.subscribed
    request.setdefault("parent", "networks/-")
    call = tail.stub.WatchConnectionEvents(qpb.WatchConnectionEventsRequest(**request), metadata=tenant.md(role))
    w = Watch(call)
    if read:
        w.task = asyncio.create_task(w.read())
    await until(_subscribed(tail, before, w), "the watch to be held by the server")
    return w


def _subscribed(tail: Tail, before: int, w: Watch) -> Callable:
    async def check() -> bool:
        return tail.hub.subscribed > before or w.error is not None or w.call.done()
    return check


def _events(network: str, count: int, *, mac: str | None = None, **fields: object) -> list[pb.ConnectionEvent]:
    start = now() - dt.timedelta(minutes=30)
    mac = mac or _mac()
    return [simple_event(network, mac=mac, when=start + dt.timedelta(milliseconds=i), **fields) for i in range(count)]


def _id(name: str) -> int:
    return int(name.rsplit("/", 1)[1])


def _ids(w: Watch) -> list[int]:
    return [_id(name) for name in w.names()]


async def _ingest(clients: Clients, tenant: Tenant, events: list[pb.ConnectionEvent]) -> list[str]:
    reply = await ingest(clients, tenant, events)
    assert reply.accepted_count == len(events)
    return [r.name for r in reply.results]


async def test_new_events_are_delivered_in_feed_order_and_filtered(tail, clients, tenant):
    w = watch_all = await watch(tail, tenant, steps=[pb.CONNECTION_STEP_AUTHENTICATION])
    unfiltered = await watch(tail, tenant)
    try:
        wanted: list[str] = []
        stored: list[str] = []
        for _ in range(3):
            auth = _events("N_tail_order", 4, step=pb.CONNECTION_STEP_AUTHENTICATION)
            assoc = _events("N_tail_order", 3, step=pb.CONNECTION_STEP_ASSOCIATION)
            names = await _ingest(clients, tenant, auth + assoc)
            wanted += names[:4]
            stored += names
        await w.wait_for(len(wanted))
        await unfiltered.wait_for(len(stored))
        # feed order: the calls one after the other, and within one the order
        # the store gave ids in (one transaction each)
        assert w.error is None and _ids(w) == sorted(_ids(w)) and set(w.names()) == set(wanted)
        assert len(w.names()) == len(wanted)
        assert unfiltered.names() == sorted(stored, key=_id) and len(stored) == len(set(stored))
        assert {e.tenant_id for e in w.events} == {tenant.tenant_id}
        assert all(e.step == pb.CONNECTION_STEP_AUTHENTICATION for e in w.events)
        # every message's token is a feed position, never going back
        positions = [FeedPosition.from_token(m.resume_token) for m in w.messages]
        assert positions == sorted(positions)
    finally:
        watch_all.cancel()
        unfiltered.cancel()



async def test_the_follower_reads_whole_events_only_for_those_a_watch_matched(tail, clients, tenant, make_tenant):
    async def no_watch_left() -> bool:
        return len(tail.hub) == 0
    await until(no_watch_left, "the earlier tests' watches to be gone")
    other = await make_tenant()
    mac = _mac()
    w = await watch(tail, tenant, client_mac_address=mac)
    try:
        before, facts_before = tail.hub.events_read, tail.hub.facts_read
        await _ingest(clients, other, _events("N_tail_cut", 5, mac=mac))  # another tenant's
        unwanted = await _ingest(clients, tenant, _events("N_tail_cut", 30))
        wanted = await _ingest(clients, tenant, _events("N_tail_cut", 3, mac=mac))
        await w.wait_for(3)
        assert w.names() == sorted(wanted, key=_id)
        assert tail.hub.events_read - before == 3, f"{len(unwanted)} unmatched events were read whole"
        # PostgreSQL checks the watches' filters: not even the facts of an
        # event no watch wants reach the follower
        assert tail.hub.facts_read - facts_before == 3, f"{len(unwanted)} unwanted events' facts were read"
    finally:
        w.cancel()


async def test_more_distinct_filters_than_the_sql_takes_are_matched_in_python(tail, clients, tenant):
    """Past MAX_SQL_WATCH_FILTERS distinct filters the follower reads every
    event of the tenant and matches in Python: each watch still receives
    exactly its own client's events."""
    async def no_watch_left() -> bool:
        return len(tail.hub) == 0
    await until(no_watch_left, "the earlier tests' watches to be gone")
    macs = [_mac() for _ in range(MAX_SQL_WATCH_FILTERS + 1)]
    watches = [await watch(tail, tenant, client_mac_address=mac) for mac in macs]
    try:
        facts_before = tail.hub.facts_read
        unwanted = await _ingest(clients, tenant, _events("N_tail_many", 10))
        wanted = {mac: await _ingest(clients, tenant, _events("N_tail_many", 2, mac=mac)) for mac in macs[::8]}
        # a last event for every watch: delivered in feed order, so anything
        # wrongly sent to a watch would come before it
        for mac in macs:
            wanted.setdefault(mac, []).extend(await _ingest(clients, tenant, _events("N_tail_many", 1, mac=mac)))
        for mac, w in zip(macs, watches, strict=True):
            await w.wait_for(len(wanted[mac]))
            assert w.error is None
            assert w.names() == sorted(wanted[mac], key=_id), mac
        # matched in Python: the unwanted events' facts were read as well
        assert tail.hub.facts_read - facts_before >= len(unwanted) + sum(map(len, wanted.values()))
    finally:
        for w in watches:
            w.cancel()


async def test_resume_from_a_token_mid_stream_without_a_gap_or_a_repeat(tail, clients, tenant):
    first = await watch(tail, tenant)
    stored: list[str] = []
    try:
        for _ in range(4):
            stored += await _ingest(clients, tenant, _events("N_tail_resume", 5))
            await first.wait_for(len(stored))
    finally:
        first.cancel()
    assert sorted(first.names(), key=_id) == sorted(stored, key=_id) and len(first.messages) >= 4
    middle = len(first.messages) // 2
    seen = [e.name for m in first.messages[:middle] for e in m.connection_events]
    token = first.messages[middle - 1].resume_token
    # stored while nobody watches
    later = await _ingest(clients, tenant, _events("N_tail_resume", 7))
    resumed = await watch(tail, tenant, resume_token=token)
    try:
        expected = sorted((set(stored) | set(later)) - set(seen), key=_id)
        await resumed.wait_for(len(expected))
        newest = await _ingest(clients, tenant, _events("N_tail_resume", 3))  # and live again after catching up
        await resumed.wait_for(len(expected) + 3)
        assert resumed.error is None
        assert resumed.names() == expected + sorted(newest, key=_id)
    finally:
        resumed.cancel()
    # from the very last token: only what comes after it
    again = await watch(tail, tenant, resume_token=resumed.last_token())
    try:
        last = await _ingest(clients, tenant, _events("N_tail_resume", 2))
        await again.wait_for(2)
        assert again.names() == sorted(last, key=_id)
    finally:
        again.cancel()


async def test_a_hundred_watchers_each_receive_every_matching_event(tail, clients, tenant):
    mac = _mac()
    watches = []
    try:
        for i in range(100):
            filters = {"client_mac_address": mac.upper().replace(":", "-")} if i % 2 else {}
            watches.append(await watch(tail, tenant, **filters))
        mine: list[str] = []
        others: list[str] = []
        for _ in range(3):
            mine += await _ingest(clients, tenant, _events("N_tail_many", 6, mac=mac))
            others += await _ingest(clients, tenant, _events("N_tail_many", 4))
        everything = sorted(mine + others, key=_id)
        for i, w in enumerate(watches):
            await w.wait_for(len(mine) if i % 2 else len(everything))
        for i, w in enumerate(watches):
            assert w.error is None, w.error
            assert w.names() == (sorted(mine, key=_id) if i % 2 else everything), i
    finally:
        for w in watches:
            w.cancel()


async def test_a_stalled_watcher_is_dropped_resumably_while_ingest_and_other_watchers_go_on(tail, clients, tenant):
    stalled = await watch(tail, tenant, read=False)
    reading = await watch(tail, tenant)
    dropped = tail.hub.dropped
    stored: list[str] = []
    try:
        # far more than the stalled watch's buffer and the little its
        # connection takes in, in calls of 10: each acknowledged
        for _ in range(120):
            stored += await _ingest(clients, tenant, _events("N_tail_stall", 10))
        assert len(stored) == 1200
        await reading.wait_for(len(stored))
        assert reading.error is None and reading.names() == sorted(stored, key=_id)
        assert tail.hub.dropped == dropped + 1
        # the stalled client reads at last: what was sent, then the resumable error
        await stalled.read()
        assert stalled.error is not None and stalled.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "resume" in stalled.error.details()
        trailer = dict(stalled.error.trailing_metadata() or ())[RESUME_TOKEN_TRAILER]
        assert len(stalled.events) < len(stored)
        if stalled.messages:
            assert trailer == stalled.last_token()
        # resumed from the trailer: exactly the rest
        resumed = await watch(tail, tenant, resume_token=trailer)
        try:
            rest = sorted(set(stored) - set(stalled.names()), key=_id)
            await resumed.wait_for(len(rest))
            assert stalled.names() + resumed.names() == sorted(stored, key=_id)
        finally:
            resumed.cancel()
    finally:
        stalled.cancel()
        reading.cancel()


async def test_another_tenants_events_never_reach_a_watcher(tail, clients, make_tenant):
    mine, other = await make_tenant(), await make_tenant()
    await _ingest(clients, other, _events("N_tail_other", 1))  # its network exists
    w = await watch(tail, mine)
    try:
        theirs = await _ingest(clients, other, _events("N_tail_other", 5))
        own = await _ingest(clients, mine, _events("N_tail_mine", 2))
        await w.wait_for(2)
        assert w.names() == sorted(own, key=_id)
        assert not set(theirs) & set(w.names())
        assert {e.tenant_id for e in w.events} == {mine.tenant_id}
    finally:
        w.cancel()
    # the other tenant's network is not found, whatever the token
    call = tail.stub.WatchConnectionEvents(qpb.WatchConnectionEventsRequest(parent="networks/N_tail_other"),
                                           metadata=mine.md("viewer"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("token", ["nonsense!", "AAAA", FeedPosition(2**62).token()])
async def test_a_bad_resume_token_is_invalid_argument_naming_it(tail, tenant, token):
    call = tail.stub.WatchConnectionEvents(
        qpb.WatchConnectionEventsRequest(parent="networks/-", resume_token=token), metadata=tenant.md("viewer"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("resume_token: ")


async def test_revoking_the_key_ends_the_stream_at_once(tail, clients, tenant, pool):
    from connlog.store.accounts import AccountStore

    w = await watch(tail, tenant)
    key_id = tenant.keys["viewer"].split("_")[1]
    changed = tail.service.ctx.auth.next_change(key_id)
    await AccountStore(pool).revoke_key(key_id)
    await asyncio.wait_for(changed, 30)
    await asyncio.wait_for(w.task, 30)
    assert w.error is not None and w.error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_too_many_watchers_is_resource_exhausted(tail, tenant):
    watches = []
    try:
        while len(tail.hub) < MAX_WATCHERS:
            watches.append(await watch(tail, tenant))
        call = tail.stub.WatchConnectionEvents(qpb.WatchConnectionEventsRequest(parent="networks/-"),
                                               metadata=tenant.md("viewer"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for w in watches:
            w.cancel()


async def test_the_follower_reconnects_and_loses_nothing(tail, clients, tenant, pool):
    w = await watch(tail, tenant)
    try:
        before = await _ingest(clients, tenant, _events("N_tail_lost", 3))
        await w.wait_for(3)
        connections = tail.hub.connections
        pid = tail.hub.follower_pid
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        during = await _ingest(clients, tenant, _events("N_tail_lost", 4))
        await until(_more(lambda: tail.hub.connections > connections), "the follower to reconnect")
        after = await _ingest(clients, tenant, _events("N_tail_lost", 2))
        await w.wait_for(9)
        assert w.error is None
        assert w.names() == sorted(before + during + after, key=_id)
    finally:
        w.cancel()


async def test_shutdown_ends_watches_resumably(suite, clients, tenant):
    from connlog.query.servicer import register

    service = await start_service("query-tail-stop", suite.settings, register, port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        own = Tail(service, qgrpc.QueryServiceStub(channel), "")
        w = await watch(own, tenant)
        names = await _ingest(clients, tenant, _events("N_tail_stop", 2))
        await w.wait_for(2)
        await service.stop(30)
        await asyncio.wait_for(w.task, 30)
    assert w.names() == sorted(names, key=_id)
    assert w.error is not None and w.error.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(w.error.trailing_metadata() or ())[RESUME_TOKEN_TRAILER]


def _more(predicate: Callable[[], bool]) -> Callable:
    async def check() -> bool:
        return predicate()
    return check


async def test_rest_through_the_gateway_streams_new_events_as_ndjson(suite, gateway, clients, tenant, pool):
    from connlog.store.accounts import AccountStore

    hub = Tail(suite.query, None, "").hub  # type: ignore[arg-type]
    before = hub.subscribed
    lines: list[dict] = []
    got = asyncio.Event()

    async def read(response: httpx.Response) -> None:
        async for line in response.aiter_lines():
            if line.strip():
                lines.append(json.loads(line))
                got.set()

    headers = {"authorization": f"Bearer {tenant.keys['viewer']}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        bad = await http.get("/v1/networks/-/connectionEvents:watch", params={"resumeToken": "x!"}, headers=headers)
        assert bad.status_code == 400
        assert bad.json()["code"] == 3 and bad.json()["message"].startswith("resume_token: ")
        async with http.stream("GET", "/v1/networks/-/connectionEvents:watch", headers=headers,
                               params={"steps": "CONNECTION_STEP_ASSOCIATION"}) as response:
            assert response.status_code == 200
            reader = asyncio.create_task(read(response))
            try:
                await until(_more(lambda: hub.subscribed > before), "the watch to be held by the server")
                names = await _ingest(clients, tenant, _events("N_tail_rest", 3))
                await _ingest(clients, tenant, _events("N_tail_rest", 2, step=pb.CONNECTION_STEP_DHCP))
                await until(_more(lambda: sum(len(m.get("connectionEvents", [])) for m in lines) >= 3),
                            "three events over REST")
                # the key revoked: the stream ends (its status cannot follow the 200 sent)
                key_id = tenant.keys["viewer"].split("_")[1]
                changed = suite.query.ctx.auth.next_change(key_id)
                await AccountStore(pool).revoke_key(key_id)
                await asyncio.wait_for(changed, 30)
                await asyncio.wait_for(reader, 30)
            finally:
                reader.cancel()
    received = [e["name"] for m in lines for e in m.get("connectionEvents", [])]
    assert received == sorted(names, key=_id)
    assert all(m["resumeToken"] for m in lines)


# Filters as List requests, each compared with the watch's matcher on the same stored events.
_SQL_CASES = {
    "everything": {},
    "one network": {"parent": "networks/N_tail_sql_b"},
    "client MAC (another form)": {"client_mac_address": "02-AA-00-00-00-01"},
    "client id": {"client_id": "k-2"},
    "steps": {"steps": [pb.CONNECTION_STEP_DHCP, pb.CONNECTION_STEP_AUTHENTICATION]},
    "outcomes": {"outcomes": [pb.OUTCOME_FAILURE]},
    "severities": {"severities": [pb.SEVERITY_BAD]},
    "bands": {"bands": [pb.BAND_5_GHZ]},
    "ssid": {"ssid": "Corp"},
    "ssid number 0": {"ssid_number": 0},
    "AP serial": {"access_point_serial": "Q2-AB"},
    "AP name": {"access_point_name": "Lobby"},
    "bssid": {"bssid": "0011.2233.4401"},
    "failure codes": {"failure_codes": [8, 9]},
    "vendor": {"vendor": pb.VENDOR_CONNLOG},
    "time window": {"start_time": "minute 2", "end_time": "minute 4"},
    "several at once": {"parent": "networks/N_tail_sql_a", "steps": [pb.CONNECTION_STEP_DHCP],
                        "outcomes": [pb.OUTCOME_SUCCESS]},
}


def _varied(i: int, base: dt.datetime) -> pb.ConnectionEvent:
    steps = [pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP]
    event = simple_event(f"N_tail_sql_{'ab'[i % 2]}", mac=f"02:aa:00:00:00:{i % 3:02x}", client_id=f"k-{i % 4}",
                         when=base + dt.timedelta(seconds=37 * i), step=steps[i % 3],
                         outcome=[pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE][i % 2],
                         severity=[pb.SEVERITY_GOOD, pb.SEVERITY_BAD, pb.SEVERITY_WARN][i % 3])
    if i % 4:
        event.radio.band = [pb.BAND_2_4_GHZ, pb.BAND_5_GHZ][i % 2]
    if i % 5:
        event.wlan.ssid = ["Corp", "Guest"][i % 2]
        event.wlan.ssid_number = i % 3
        event.wlan.bssid = f"00:11:22:33:44:{i % 3:02x}"
        event.access_point.serial = ["Q2-AB", "Q2-CD"][i % 2]
        event.access_point.name = ["Lobby", "Hall"][i % 3 == 0]
    if i % 2:
        event.failure.code = [8, 9, 10][i % 3]
    if i % 6 == 0:
        event.source.vendor = pb.VENDOR_MERAKI
    return event


async def test_the_watch_matcher_selects_what_list_selects(clients, tenant, pool):
    from connlog.query.event_match import matches
    from connlog.query.servicer import build_filter
    from connlog.store.accounts import AccountStore
    from connlog.store.feed import horizon, read_after, read_facts_after

    async with pool.acquire() as conn:
        start = await horizon(conn)
    base = now() - dt.timedelta(minutes=50)
    await _ingest(clients, tenant, [_varied(i, base) for i in range(40)])
    accounts = AccountStore(pool)
    tenant_ref = await accounts.tenant_ref(tenant.tenant_id)
    async with pool.acquire() as conn:
        page = await read_after(conn, start, 1000, tenant_ref=tenant_ref)  # (a catch-up's read)
        facts = await read_facts_after(conn, start, 1000, [tenant_ref])  # (the follower's)
    assert len(page.events) == 40 and [(r["stored_xid"], r["id"]) for r in facts.rows] == [
        (e.position.xid, e.position.event_id) for e in page.events]
    names = {e.position.event_id: f"networks/{e.event.event.network_id}/connectionEvents/{e.event.event_id}"
             for e in page.events}
    for what, fields in _SQL_CASES.items():
        fields = dict(fields)
        parent = fields.pop("parent", "networks/-")
        request = qpb.ListConnectionEventsRequest(parent=parent, page_size=1000, **{
            k: v for k, v in fields.items() if k not in ("start_time", "end_time")})
        if "start_time" in fields:
            request.start_time.FromDatetime(base + dt.timedelta(minutes=2))
            request.end_time.FromDatetime(base + dt.timedelta(minutes=4))
        listed = await clients.query.ListConnectionEvents(request, metadata=tenant.md("viewer"))
        flt = build_filter(qpb.WatchConnectionEventsRequest(parent=parent, **{
            k: getattr(request, k) for k in qpb.WatchConnectionEventsRequest.DESCRIPTOR.fields_by_name
            if k not in ("parent", "resume_token") and (k not in ("ssid_number", "start_time", "end_time")
                                                        or request.HasField(k))}))
        if parent != "networks/-":
            flt.network_ref = await accounts.network_ref(tenant_ref, parent.removeprefix("networks/"))
        matched = {names[e.position.event_id] for e in page.events if matches(flt, e.facts)}
        assert matched == {e.name for e in listed.connection_events}, what
        assert {names[row["id"]] for row in facts.rows if matches(flt, row)} == matched, what
        assert matched and len(matched) < 40 or what == "everything", f"{what}: the case selects some"
