"""InsightsService against the real services and a real PostgreSQL (and, for
one call per RPC, through the real Envoy gateway): known events, exact
counts, rates, percentiles and sessions (late, duplicate, roaming and
overlapping events), tenant isolation."""

from __future__ import annotations

import datetime as dt
import secrets

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ingest_pb
from connlog.api.v1 import insights_service_pb2 as ipb
from tests.support.factories import now, simple_event, ts
from tests.support.gateway_calls import ingest

S = pb.OUTCOME_SUCCESS
F = pb.OUTCOME_FAILURE
I = pb.OUTCOME_INFORMATIONAL  # noqa: E741
ASSOC, AUTH, DHCP = pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP
ROAM, CONN = pb.CONNECTION_STEP_ROAM, pb.CONNECTION_STEP_CONNECTION
DISASSOC, DEAUTH = pb.CONNECTION_STEP_DISASSOCIATION, pb.CONNECTION_STEP_DEAUTHENTICATION
BASE = (now() - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def at(minutes: float = 0, seconds: float = 0) -> dt.datetime:
    return BASE + dt.timedelta(minutes=minutes, seconds=seconds)


def ev(when: dt.datetime, step: int, outcome: int = S, *, mac: str, network: str, ap: str = "", ap_name: str = "",
       ssid: str = "corp", band: int = pb.BAND_5_GHZ, code: int | None = None, reason: str = "", subtype: str = "",
       sub_reason: str = "", timing: tuple[float, float] | None = None,
       vendor: int = pb.VENDOR_MERAKI) -> pb.ConnectionEvent:
    """An event; ``timing``: (seconds from ``when`` to association, to network)."""
    event = simple_event(network, mac=mac, when=when, step=step, outcome=outcome, subtype=subtype,
                         radio=pb.Radio(band=band), wlan=pb.Wlan(ssid=ssid),
                         access_point=pb.AccessPoint(serial=ap, name=ap_name), source=pb.Source(vendor=vendor))
    if code is not None or reason:
        event.failure.reason = reason
        event.failure.sub_reason = sub_reason
        if code is not None:
            event.failure.code = code
    if timing is not None:
        event.timing.association_time.CopyFrom(ts(when + dt.timedelta(seconds=timing[0])))
        event.timing.network_time.CopyFrom(ts(when + dt.timedelta(seconds=timing[1])))
    return event


def mac(i: int) -> str:
    return f"02:00:00:00:{(i >> 8) & 255:02x}:{i & 255:02x}"


def network() -> str:
    return f"N_ins_{secrets.token_hex(3)}"


def summary_request(net: str, *group_by: int, **fields) -> ipb.SummarizeConnectionsRequest:
    return ipb.SummarizeConnectionsRequest(parent=f"networks/{net}", start_time=ts(at(-60)), end_time=ts(at(180)),
                                           group_by=group_by, **fields)


def counts(c: ipb.StepCounts) -> tuple:
    """(step, events, attempts, successes, failures, success rate or None)."""
    return (c.step, c.event_count, c.attempt_count, c.success_count, c.failure_count,
            c.success_rate if c.HasField("success_rate") else None)


def reasons(group: ipb.ConnectionGroup) -> list[tuple]:
    return [(r.step, r.failure_code if r.HasField("failure_code") else None, r.reason, r.count)
            for r in group.top_failure_reasons]


# --- connection summary ---------------------------------------------------------------------------------------

def summary_events(net: str) -> list[pb.ConnectionEvent]:
    a, b, c = mac(1), mac(2), mac(3)
    on_1 = {"network": net, "ap": "AP-1", "ssid": "corp", "band": pb.BAND_5_GHZ}
    on_2 = {"network": net, "ap": "AP-2", "ssid": "guest", "band": pb.BAND_2_4_GHZ}
    return [
        ev(at(0), ASSOC, S, mac=a, **on_1),
        ev(at(1), AUTH, F, mac=a, code=8, reason="EAPOL Handshake Failure", **on_1),
        ev(at(2), AUTH, S, mac=a, **on_1),
        ev(at(3), DHCP, S, mac=a, **on_1),
        ev(at(0), ASSOC, S, mac=b, **on_2),
        ev(at(1), AUTH, F, mac=b, code=8, reason="EAPOL Handshake Failure", sub_reason="4-way handshake timeout",
           **on_2),
        ev(at(2), AUTH, F, mac=b, code=5, reason="802.1X timeout", **on_2),
        ev(at(3), DHCP, F, mac=b, subtype="dhcp_no_offer", **on_2),
        ev(at(4), ASSOC, I, mac=b, **on_2),
        ev(at(70), AUTH, F, mac=c, code=8, reason="EAPOL Handshake Failure",  # in the second hour
           sub_reason="Maximum retries for 3/4 msg reached.", **on_2),
    ]


@pytest.fixture
async def summary_net(clients, tenant) -> str:
    net = network()
    await ingest(clients, tenant, summary_events(net))
    return net


async def test_summary_by_access_point_counts_rates_and_reasons(clients, tenant, summary_net):
    reply = await clients.insights.SummarizeConnections(
        summary_request(summary_net, ipb.GROUP_BY_ACCESS_POINT), metadata=tenant.md("viewer"))
    assert reply.total_size == 2 and not reply.next_page_token
    ap1, ap2 = reply.groups
    assert (ap1.key.access_point.serial, ap2.key.access_point.serial) == ("AP-1", "AP-2")
    assert not ap1.key.network_id and not ap1.key.ssid  # only the dimensions asked for
    assert [counts(c) for c in ap1.steps] == [
        (ASSOC, 1, 1, 1, 0, 1.0), (AUTH, 2, 2, 1, 1, 0.5), (DHCP, 1, 1, 1, 0, 1.0)]
    assert counts(ap1.totals) == (0, 4, 4, 3, 1, 0.75)
    assert reasons(ap1) == [(AUTH, 8, "EAPOL Handshake Failure", 1)]
    assert [counts(c) for c in ap2.steps] == [
        (ASSOC, 2, 1, 1, 0, 1.0), (AUTH, 3, 3, 0, 3, 0.0), (DHCP, 1, 1, 0, 1, 0.0)]
    assert counts(ap2.totals) == (0, 6, 5, 1, 4, 0.2)
    # most frequent first; ties by step, then code; a failure without a reason names its subtype
    assert reasons(ap2) == [(AUTH, 8, "EAPOL Handshake Failure", 2), (AUTH, 5, "802.1X timeout", 1),
                            (DHCP, None, "dhcp_no_offer", 1)]
    since = ap2.top_failure_reasons[0]
    assert (since.first_time.ToDatetime(dt.UTC), since.last_time.ToDatetime(dt.UTC)) == (at(1), at(70))
    assert since.sub_reason == "Maximum retries for 3/4 msg reached."  # the most recent one's


async def test_summary_by_failure_category_step_and_band_ssid(clients, tenant, summary_net):
    md = tenant.md("viewer")
    by_category = await clients.insights.SummarizeConnections(
        summary_request(summary_net, ipb.GROUP_BY_FAILURE_CATEGORY), metadata=md)
    table = {(g.key.failure_code if g.key.HasField("failure_code") else None): counts(g.totals)
             for g in by_category.groups}
    assert table == {None: (0, 6, 5, 4, 1, 0.8), 5: (0, 1, 1, 0, 1, 0.0), 8: (0, 3, 3, 0, 3, 0.0)}
    assert [g.key.failure_code if g.key.HasField("failure_code") else None for g in by_category.groups] == [None, 5, 8]

    by_step = await clients.insights.SummarizeConnections(
        summary_request(summary_net, ipb.GROUP_BY_STEP, steps=[AUTH, DHCP]), metadata=md)
    assert [(g.key.step, counts(g.totals)[1:]) for g in by_step.groups] == [
        (AUTH, (5, 5, 1, 4, 0.2)), (DHCP, (2, 2, 1, 1, 0.5))]

    # group_by order in the request does not matter: keys are in GroupBy order
    by_ssid_band = await clients.insights.SummarizeConnections(
        summary_request(summary_net, ipb.GROUP_BY_BAND, ipb.GROUP_BY_SSID), metadata=md)
    assert [(g.key.ssid, g.key.band, g.totals.event_count) for g in by_ssid_band.groups] == [
        ("corp", pb.BAND_5_GHZ, 4), ("guest", pb.BAND_2_4_GHZ, 6)]


async def test_summary_in_time_buckets_and_filters(clients, tenant, summary_net):
    md = tenant.md("viewer")
    request = summary_request(summary_net, ipb.GROUP_BY_SSID, bucket_duration=duration_pb2.Duration(seconds=3600))
    request.start_time.CopyFrom(ts(at(0)))
    request.end_time.CopyFrom(ts(at(120)))
    reply = await clients.insights.SummarizeConnections(request, metadata=md)
    assert [(g.key.ssid, g.key.bucket_start_time.ToDatetime(dt.UTC), g.totals.event_count, g.totals.failure_count)
            for g in reply.groups] == [("corp", at(0), 4, 1), ("guest", at(0), 5, 3), ("guest", at(60), 1, 1)]
    # filters narrow the events counted, like ListConnectionEvents'
    only_b = await clients.insights.SummarizeConnections(
        summary_request(summary_net, client_mac_address=mac(2).upper()), metadata=md)
    [everything] = only_b.groups
    assert counts(everything.totals) == (0, 5, 4, 1, 3, 0.25)
    none = await clients.insights.SummarizeConnections(summary_request(summary_net, ssid="nope"), metadata=md)
    assert list(none.groups) == [] and none.total_size == 0


async def test_summary_pages_through_groups(clients, tenant, summary_net):
    md = tenant.md("viewer")
    whole = await clients.insights.SummarizeConnections(summary_request(summary_net, ipb.GROUP_BY_CLIENT),
                                                        metadata=md)
    assert [g.key.client.mac_address for g in whole.groups] == [mac(1), mac(2), mac(3)]
    pages, token = [], ""
    while True:
        page = await clients.insights.SummarizeConnections(
            summary_request(summary_net, ipb.GROUP_BY_CLIENT, page_size=2, page_token=token), metadata=md)
        pages.append(list(page.groups))
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [2, 1]
    assert [g for p in pages for g in p] == list(whole.groups)
    token = pages and (await clients.insights.SummarizeConnections(
        summary_request(summary_net, ipb.GROUP_BY_CLIENT, page_size=1), metadata=md)).next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a token is bound to its request
        await clients.insights.SummarizeConnections(
            summary_request(summary_net, ipb.GROUP_BY_SSID, page_size=1, page_token=token), metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("page_token:")


# --- time to connect --------------------------------------------------------------------------------------------

def ttc_events(net: str) -> list[pb.ConnectionEvent]:
    events = []
    # timing facts (a Mojo-like whole connection) at the access point named AP-M: 1..10 s
    for i in range(1, 11):
        events.append(ev(at(i), CONN, S, mac=mac(100 + i), network=net, ap_name="AP-M", timing=(-i, 0),
                         vendor=pb.VENDOR_MOJO))
    # event sequences at AP-1: association -> first successful DHCP: 3 s, 5 s, 2 s; one that never gets an address
    for i, (auth_s, dhcp_s) in enumerate(((1, 3), (2, 5), (1, 2))):
        events += [ev(at(20 + i), ASSOC, S, mac=mac(200 + i), network=net, ap="AP-1"),
                   ev(at(20 + i, auth_s), AUTH, S, mac=mac(200 + i), network=net, ap="AP-1"),
                   ev(at(20 + i, dhcp_s), DHCP, S, mac=mac(200 + i), network=net, ap="AP-1"),
                   ev(at(20 + i, dhcp_s + 1), DHCP, S, mac=mac(200 + i), network=net, ap="AP-1")]  # (a renewal)
    events += [ev(at(30), ASSOC, S, mac=mac(210), network=net, ap="AP-1"),
               ev(at(30, 4), DHCP, F, mac=mac(210), network=net, ap="AP-1")]
    # a session with both: the timing facts (7 s) count, its event sequence (20 s) does not
    events += [ev(at(40), ASSOC, S, mac=mac(220), network=net, ap="AP-1"),
               ev(at(40, 20), DHCP, S, mac=mac(220), network=net, ap="AP-1"),
               ev(at(40, 21), CONN, S, mac=mac(220), network=net, ap="AP-1", timing=(-7, 0))]
    return events


def ttc_request(net: str, *group_by: int, **fields) -> ipb.SummarizeTimeToConnectRequest:
    return ipb.SummarizeTimeToConnectRequest(parent=f"networks/{net}", start_time=ts(at(-60)),
                                             end_time=ts(at(180)), group_by=group_by, **fields)


def ttc(group: ipb.TimeToConnectGroup) -> tuple:
    return (group.basis, group.sample_count, group.timing_fact_sample_count, group.event_sequence_sample_count,
            group.p50.ToTimedelta().total_seconds(), group.p90.ToTimedelta().total_seconds(),
            group.p99.ToTimedelta().total_seconds())


TIMING, SEQUENCE, MIXED = (ipb.TIME_TO_CONNECT_BASIS_TIMING_FACTS, ipb.TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE,
                           ipb.TIME_TO_CONNECT_BASIS_MIXED)


async def test_time_to_connect_percentiles_and_basis(clients, tenant):
    net = network()
    await ingest(clients, tenant, ttc_events(net))
    md = tenant.md("viewer")
    by_ap = await clients.insights.SummarizeTimeToConnect(ttc_request(net, ipb.GROUP_BY_ACCESS_POINT), metadata=md)
    assert [(g.key.access_point.serial, g.key.access_point.name, ttc(g)) for g in by_ap.groups] == [
        ("", "AP-M", (TIMING, 10, 10, 0, 5.0, 9.0, 10.0)),  # no serial sorts first
        ("AP-1", "", (MIXED, 4, 1, 3, 3.0, 7.0, 7.0)),  # 2, 3, 5 from sequences, 7 from facts
    ]
    [everything] = (await clients.insights.SummarizeTimeToConnect(ttc_request(net), metadata=md)).groups
    assert ttc(everything) == (MIXED, 14, 11, 3, 5.0, 9.0, 10.0)
    sequences = await clients.insights.SummarizeTimeToConnect(ttc_request(net, vendor=pb.VENDOR_MERAKI,
                                                                          access_point_serial="AP-1"), metadata=md)
    assert [ttc(g) for g in sequences.groups] == [(MIXED, 4, 1, 3, 3.0, 7.0, 7.0)]
    only_mojo = await clients.insights.SummarizeTimeToConnect(ttc_request(net, vendor=pb.VENDOR_MOJO), metadata=md)
    assert [ttc(g) for g in only_mojo.groups] == [(TIMING, 10, 10, 0, 5.0, 9.0, 10.0)]
    by_client = await clients.insights.SummarizeTimeToConnect(ttc_request(net, ipb.GROUP_BY_CLIENT, page_size=5),
                                                              metadata=md)
    assert by_client.total_size == 14 and len(by_client.groups) == 5 and by_client.next_page_token


# --- client sessions --------------------------------------------------------------------------------------------

CLIENT = mac(77)


def session_events(net: str) -> dict[str, pb.ConnectionEvent]:
    on = {"mac": CLIENT, "network": net}
    return {
        "assoc": ev(at(0), ASSOC, S, ap="AP-1", **on),
        "auth": ev(at(0, 1), AUTH, S, ap="AP-1", **on),
        "dhcp": ev(at(0, 3), DHCP, S, ap="AP-1", **on),
        # another source's record of the same connection, interleaved (overlapping): no second session, no roam
        "mojo": ev(at(0, 2), CONN, S, ap_name="Mojo_AP", vendor=pb.VENDOR_MOJO, **on),
        "roam": ev(at(10), ROAM, S, ap="AP-2", **on),
        "auth-fail": ev(at(12), AUTH, F, ap="AP-2", code=8, reason="EAPOL Handshake Failure", **on),
        "disassoc": ev(at(20), DISASSOC, I, ap="AP-2", subtype="client_left", **on),
        "deauth": ev(at(20, 1), DEAUTH, I, ap="AP-2", **on),
        "assoc-2": ev(at(25), ASSOC, S, ap="AP-1", **on),
        "auth-fail-2": ev(at(26), AUTH, F, ap="AP-1", code=5, reason="802.1X timeout", **on),
        "assoc-3": ev(at(60), ASSOC, S, ap="AP-1", **on),
        "dhcp-3": ev(at(61), DHCP, S, ap="AP-1", **on),
    }


async def list_sessions(clients, tenant, parent: str, **fields) -> list[ipb.ClientSession]:
    found, token = [], ""
    while True:
        page = await clients.insights.ListClientSessions(
            ipb.ListClientSessionsRequest(parent=parent, page_token=token, **fields), metadata=tenant.md("viewer"))
        found += page.client_sessions
        token = page.next_page_token
        if not token:
            return found


def seconds(duration) -> float:
    return duration.ToTimedelta().total_seconds()


@pytest.fixture
async def session_net(clients, tenant) -> tuple[str, dict[str, str]]:
    net = network()
    events = session_events(net)
    reply = await ingest(clients, tenant, list(events.values()))
    return net, dict(zip(events, (r.event_id for r in reply.results), strict=True))


async def test_sessions_of_a_client(clients, tenant, session_net):
    net, ids = session_net
    first, second, third = await list_sessions(clients, tenant, f"networks/{net}/clients/{CLIENT}")
    assert first.session_id == ids["assoc"] and first.network_id == net
    assert (first.start_time.ToDatetime(dt.UTC), first.end_time.ToDatetime(dt.UTC)) == (at(0), at(20, 1))
    assert seconds(first.duration) == 20 * 60 + 1 and first.event_count == 8
    assert [(v.access_point.serial, v.start_time.ToDatetime(dt.UTC), v.end_time.ToDatetime(dt.UTC))
            for v in first.access_points] == [("AP-1", at(0), at(0, 3)), ("AP-2", at(10), at(20, 1))]
    assert first.roam_count == 1
    assert list(first.steps_succeeded) == [ASSOC, AUTH, CONN, DHCP, ROAM]
    assert first.outcome == ipb.SESSION_OUTCOME_CONNECTED
    assert (first.failed_step, first.failure.code, first.failure.reason, first.failure_count) == (
        AUTH, 8, "EAPOL Handshake Failure", 1)
    assert (first.end, first.disconnect_step, first.disconnect_reason) == (
        ipb.SESSION_END_DISCONNECT, DISASSOC, "client_left")

    assert second.session_id == ids["assoc-2"] and second.event_count == 2
    assert (second.outcome, second.failed_step, second.failure.reason, second.end) == (
        ipb.SESSION_OUTCOME_FAILED, AUTH, "802.1X timeout", ipb.SESSION_END_INACTIVITY)
    assert third.session_id == ids["assoc-3"] and third.end == ipb.SESSION_END_OPEN
    assert (third.outcome, third.failure_count, third.disconnect_step) == (ipb.SESSION_OUTCOME_CONNECTED, 0, 0)

    # by any MAC form, across all networks, and one session per page
    assert await list_sessions(clients, tenant, f"networks/-/clients/{CLIENT.replace(':', '-').upper()}",
                               page_size=1) == [first, second, third]


async def test_sessions_in_a_time_range_are_whole(clients, tenant, session_net):
    net, ids = session_net
    parent = f"networks/{net}/clients/{CLIENT}"
    # a session that began before start_time but has events after it is returned whole
    assert [s.session_id for s in await list_sessions(clients, tenant, parent, start_time=ts(at(11)))] == [
        ids["assoc"], ids["assoc-2"], ids["assoc-3"]]
    assert [s.session_id for s in await list_sessions(clients, tenant, parent, start_time=ts(at(22)))] == [
        ids["assoc-2"], ids["assoc-3"]]
    # end_time: sessions that begin before it
    within = await list_sessions(clients, tenant, parent, start_time=ts(at(11)), end_time=ts(at(25)))
    assert [(s.session_id, s.event_count) for s in within] == [(ids["assoc"], 8)]
    assert [s.session_id for s in await list_sessions(clients, tenant, parent, end_time=ts(at(25, 0.001)),
                                                      page_size=1)] == [ids["assoc"], ids["assoc-2"]]
    assert await list_sessions(clients, tenant, parent, start_time=ts(at(62))) == []


async def test_late_and_duplicate_events_move_boundaries_never_duplicate_sessions(clients, tenant, session_net):
    net, ids = session_net
    parent = f"networks/{net}/clients/{CLIENT}"
    before = await list_sessions(clients, tenant, parent)
    # the same events again: stored once, the same sessions
    reply = await ingest(clients, tenant, list(session_events(net).values()))
    assert {r.status for r in reply.results} == {ingest_pb.INGEST_STATUS_DUPLICATE}
    assert await list_sessions(clients, tenant, parent) == before

    # a late event in the gap between the second and third sessions joins them
    on = {"mac": CLIENT, "network": net, "ap": "AP-1"}
    await ingest(clients, tenant, [ev(at(43), AUTH, S, **on)])
    first, joined = await list_sessions(clients, tenant, parent)
    assert first == before[0]
    assert joined.session_id == ids["assoc-2"] and joined.event_count == 5
    assert joined.end_time.ToDatetime(dt.UTC) == at(61) and joined.end == ipb.SESSION_END_OPEN
    assert joined.outcome == ipb.SESSION_OUTCOME_CONNECTED and joined.failure.reason == "802.1X timeout"

    # a late event before the first moves its start (and its id: the first event's)
    late = await ingest(clients, tenant, [ev(at(-5), ASSOC, F, **on)])
    moved, again = await list_sessions(clients, tenant, parent)
    assert moved.session_id == late.results[0].event_id and moved.start_time.ToDatetime(dt.UTC) == at(-5)
    assert moved.event_count == 9 and moved.failure_count == 2 and again == joined
    assert sum(s.event_count for s in (moved, again)) == len(session_events(net)) + 2


async def test_a_client_without_events_has_no_sessions(clients, tenant, session_net):
    net, _ = session_net
    assert await list_sessions(clients, tenant, f"networks/{net}/clients/{mac(999)}") == []
    assert await list_sessions(clients, tenant, f"networks/{net}/clients/k-unknown") == []


# --- tenant isolation, refusals --------------------------------------------------------------------------------

async def test_another_tenant_sees_nothing(clients, tenant, make_tenant, session_net, summary_net):
    net, _ = session_net
    other = await make_tenant()
    md = other.md("viewer")
    for call, request in (
        (clients.insights.SummarizeConnections, summary_request(summary_net)),
        (clients.insights.SummarizeTimeToConnect, ttc_request(net)),
        (clients.insights.ListClientSessions, ipb.ListClientSessionsRequest(parent=f"networks/{net}/clients/{CLIENT}")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=md)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, call
    # tenant-wide: the other tenant's own (empty) data
    assert not (await clients.insights.SummarizeConnections(summary_request("-"), metadata=md)).groups
    assert not (await clients.insights.SummarizeTimeToConnect(ttc_request("-"), metadata=md)).groups
    assert await list_sessions(clients, other, f"networks/-/clients/{CLIENT}") == []
    # ... while the owner sees its events tenant-wide
    assert (await clients.insights.SummarizeConnections(summary_request("-"), metadata=tenant.md("viewer"))).groups


@pytest.mark.parametrize(("call", "request_", "field"), [
    ("SummarizeConnections", ipb.SummarizeConnectionsRequest(parent="networks/N_1"), "start_time"),
    ("SummarizeConnections", ipb.SummarizeConnectionsRequest(
        parent="networks/N_1", start_time=ts(at(10)), end_time=ts(at(0))), "end_time"),
    ("SummarizeConnections", ipb.SummarizeConnectionsRequest(
        parent="networks/N_1", start_time=ts(at(0)), end_time=ts(at(60 * 24 * 2)),
        bucket_duration=duration_pb2.Duration(seconds=60)), "bucket_duration"),
    ("SummarizeConnections", ipb.SummarizeConnectionsRequest(
        parent="networks/N_1", start_time=ts(at(0)), end_time=ts(at(1)), group_by=[99]), "group_by"),
    ("SummarizeTimeToConnect", ipb.SummarizeTimeToConnectRequest(
        parent="networks/N_1", start_time=ts(at(0)), end_time=ts(at(1)), group_by=[ipb.GROUP_BY_STEP]), "group_by"),
    ("ListClientSessions", ipb.ListClientSessionsRequest(parent="networks/N_1"), "parent"),
    ("ListClientSessions", ipb.ListClientSessionsRequest(parent="networks/N_1/clients/x", page_token="zz"),
     "page_token"),
])
async def test_refusals_name_the_field(clients, tenant, call, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(clients.insights, call)(request_, metadata=tenant.md("viewer"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ")


async def test_a_device_key_may_not_read_insights(clients, tenant, summary_net):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await clients.insights.SummarizeConnections(summary_request(summary_net), metadata=tenant.md("device"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# --- through the gateway ------------------------------------------------------------------------------------------

def _rfc3339(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_rest_through_the_gateway(gateway, clients, tenant, summary_net, session_net):
    net, ids = session_net
    headers = {"Authorization": f"Bearer {tenant.keys['viewer']}"}
    window = {"startTime": _rfc3339(at(-60)), "endTime": _rfc3339(at(180))}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        summary = await http.get(f"/v1/networks/{summary_net}/connectionEvents:summarize",
                                 params={**window, "groupBy": "GROUP_BY_ACCESS_POINT"}, headers=headers)
        assert summary.status_code == 200, summary.text
        groups = summary.json()["groups"]
        assert [(g["key"]["accessPoint"]["serial"], g["totals"]["attemptCount"], g["totals"]["successRate"])
                for g in groups] == [("AP-1", "4", 0.75), ("AP-2", "5", 0.2)]
        assert groups[1]["topFailureReasons"][0] == {
            "step": "CONNECTION_STEP_AUTHENTICATION", "failureCode": 8, "reason": "EAPOL Handshake Failure",
            "subReason": "Maximum retries for 3/4 msg reached.", "count": "2", "firstTime": _rfc3339(at(1)),
            "lastTime": _rfc3339(at(70))}

        ttc_reply = await http.get(f"/v1/networks/{net}/connectionEvents:summarizeTimeToConnect", params=window,
                                   headers=headers)
        assert ttc_reply.status_code == 200, ttc_reply.text
        [group] = ttc_reply.json()["groups"]
        # the first and third sessions: association -> DHCP in 3 s and in 60 s
        assert (group["basis"], group["sampleCount"], group["p50"], group["p99"]) == (
            "TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE", "2", "3s", "60s")

        sessions = await http.get(f"/v1/networks/{net}/clients/{CLIENT}/sessions", params={"pageSize": 2},
                                  headers=headers)
        assert sessions.status_code == 200, sessions.text
        body = sessions.json()
        assert [s["sessionId"] for s in body["clientSessions"]] == [ids["assoc"], ids["assoc-2"]]
        assert body["nextPageToken"]

        refused = await http.get(f"/v1/networks/{summary_net}/connectionEvents:summarize", params={"startTime": "x"},
                                 headers=headers)
        assert refused.status_code == 400
        hidden = await http.get(f"/v1/networks/N_nope_{secrets.token_hex(3)}/connectionEvents:summarize",
                                params=window, headers=headers)
        assert hidden.status_code == 404
