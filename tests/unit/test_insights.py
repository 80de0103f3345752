"""The insights' pure parts, case by case: sessions from events (order,
duplicates, late and roaming events, gaps and disconnects), time-to-connect
samples, percentiles, rates and failure-reason order, offset page tokens; and
InsightsService's argument checks (refused before the store is reached)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import insights_service_pb2 as ipb
from connlog.core.auth import KeyAuthenticator
from connlog.core.edge import InvalidArgument
from connlog.core.principal import Role
from connlog.core.server import ServiceContext
from connlog.core.settings import Settings
from connlog.query import page_token
from connlog.query.insights import SampleFilter, group_key, top_reasons
from connlog.query.insights_servicer import InsightsServicer, parse_client_parent, session_message
from connlog.query.sessions import (
    EVENT_SEQUENCE,
    MIXED,
    SESSION_GAP,
    TIMING_FACTS,
    Sample,
    SessionEvent,
    basis_of,
    connection_samples,
    percentile,
    sessions,
    split,
    success_rate,
)
from tests.support.fake_store import DatabaseReached, InMemoryAccounts, NoDatabase
from tests.support.servicer_context import Aborted, call
from tests.support.services import role_key

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
S, F, I = pb.OUTCOME_SUCCESS, pb.OUTCOME_FAILURE, pb.OUTCOME_INFORMATIONAL  # noqa: E741
ASSOC, AUTH, DHCP, DNS = (pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DHCP,
                          pb.CONNECTION_STEP_DNS)
ROAM, CONN = pb.CONNECTION_STEP_ROAM, pb.CONNECTION_STEP_CONNECTION
DISASSOC, DEAUTH = pb.CONNECTION_STEP_DISASSOCIATION, pb.CONNECTION_STEP_DEAUTHENTICATION
_ids = itertools.count(1)


def e(minutes: float, step: int = ASSOC, outcome: int = S, *, id: int | None = None, ap: str | None = None,
      name: str | None = None, timing: float | None = None, **fields: Any) -> SessionEvent:
    """An event ``minutes`` after T0; ``timing``: seconds its timing facts span."""
    when = T0 + dt.timedelta(minutes=minutes)
    if timing is not None:
        fields.update(association_time=when - dt.timedelta(seconds=timing), network_time=when)
    return SessionEvent(event_id=next(_ids) if id is None else id, occurred_at=when, step=step, outcome=outcome,
                        ap_serial=ap, ap_name=name, **fields)


def runs(events: list[SessionEvent]) -> list[list[int]]:
    """The sessions as lists of their events' minutes (offsets from T0)."""
    return [[round((x.occurred_at - T0).total_seconds() / 60, 4) for x in s.events] for s in sessions(events)]


GAP_MINUTES = SESSION_GAP.total_seconds() / 60

SPLITS = [
    ("one event", [e(0)], [[0]]),
    ("a gap of exactly 30 minutes does not split", [e(0), e(30)], [[0, 30]]),
    ("a microsecond more does", [e(0), e(0 + GAP_MINUTES + 1 / 60_000_000)], [[0], [30]]),
    ("a disconnect ends the session", [e(0), e(1, DISASSOC, I), e(2)], [[0, 1], [2]]),
    ("disconnects right after one belong to it", [e(0), e(1, DISASSOC, I), e(1.5, DEAUTH, I), e(2)],
     [[0, 1, 1.5], [2]]),
    ("a disconnect first, then a session", [e(0, DEAUTH, I), e(1)], [[0], [1]]),
    ("order of arrival does not matter", [e(40), e(2), e(0), e(41)], [[0, 2], [40, 41]]),
    ("a duplicate (same event id) counts once", [e(0, id=900), e(0, id=900), e(1, id=901)], [[0, 1]]),
    ("same time: ordered by id", [e(5, DISASSOC, I, id=911), e(5, ASSOC, id=910)], [[5, 5]]),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in SPLITS], ids=[c[0] for c in SPLITS])
def test_how_events_split_into_sessions(events: list[SessionEvent], expected: list[list[float]]) -> None:
    assert runs(events) == expected


def test_a_late_event_joins_or_moves_sessions_never_duplicates_them() -> None:
    base = [e(0, id=1), e(10, id=2), e(50, id=3), e(55, id=4)]
    before = sessions(base)
    assert [s.session_id for s in before] == [1, 3]
    filled = sessions([*base, e(30, id=5)])  # fills the gap: one session
    assert [(s.session_id, len(s.events)) for s in filled] == [(1, 5)]
    earlier = sessions([*base, e(-20, id=6)])  # before the first: its start and id move
    assert [(s.session_id, s.start_time) for s in earlier] == [(6, T0 - dt.timedelta(minutes=20)),
                                                              (3, T0 + dt.timedelta(minutes=50))]
    split_by_disconnect = sessions([*base, e(11, DISASSOC, I, id=7)])
    assert [[x.event_id for x in s.events] for s in split_by_disconnect] == [[1, 2, 7], [3, 4]]
    # whatever the order: a function of the set of events
    for permutation in itertools.permutations([*base, e(30, id=5)]):
        assert [len(s.events) for s in sessions(permutation)] == [5]


DESCRIBED = [
    ("connected by DHCP, with a roam and a failure", [
        e(0, ASSOC, ap="A"), e(0.1, AUTH, F, ap="A", failure=pb.Failure(code=8, reason="EAPOL")),
        e(0.2, AUTH, ap="A"), e(0.3, DHCP, ap="A"), e(5, ROAM, ap="B"), e(6, DNS, ap="B"),
        e(9, DISASSOC, I, ap="B", subtype="client_left"), e(9.1, DEAUTH, I, ap="B", subtype="x")],
     {"outcome": ipb.SESSION_OUTCOME_CONNECTED, "end": ipb.SESSION_END_DISCONNECT, "roam_count": 1,
      "steps_succeeded": [ASSOC, AUTH, DHCP, ROAM, DNS], "failed_step": AUTH, "failure_count": 1,
      "reason": "EAPOL", "disconnect_step": DISASSOC, "disconnect_reason": "client_left", "visits": ["A", "B"]}),
    ("failed: a failure and nothing connected", [e(0, ASSOC, ap="A"), e(1, AUTH, F, ap="A", subtype="auth_rejected")],
     {"outcome": ipb.SESSION_OUTCOME_FAILED, "end": ipb.SESSION_END_OPEN, "roam_count": 0,
      "steps_succeeded": [ASSOC], "failed_step": AUTH, "failure_count": 1, "reason": "auth_rejected",
      "disconnect_step": 0, "disconnect_reason": "", "visits": ["A"]}),
    ("incomplete: association and authentication only", [e(0, ASSOC), e(1, AUTH)],
     {"outcome": ipb.SESSION_OUTCOME_INCOMPLETE, "end": ipb.SESSION_END_OPEN, "roam_count": 0,
      "steps_succeeded": [ASSOC, AUTH], "failed_step": 0, "failure_count": 0, "reason": "",
      "disconnect_step": 0, "disconnect_reason": "", "visits": []}),
    ("back to an access point is another visit; one without a name or serial is none", [
        e(0, ASSOC, ap="A"), e(1, ROAM, ap="B"), e(2, DHCP), e(3, ROAM, ap="A")],
     {"outcome": ipb.SESSION_OUTCOME_CONNECTED, "end": ipb.SESSION_END_OPEN, "roam_count": 2,
      "steps_succeeded": [ASSOC, ROAM, DHCP], "failed_step": 0, "failure_count": 0, "reason": "",
      "disconnect_step": 0, "disconnect_reason": "", "visits": ["A", "B", "A"]}),
    ("a name-only record of another source is no roam", [
        e(0, ASSOC, ap="A"), e(0.5, CONN, name="Mojo_AP"), e(1, DHCP, ap="A")],
     {"outcome": ipb.SESSION_OUTCOME_CONNECTED, "end": ipb.SESSION_END_OPEN, "roam_count": 0,
      "steps_succeeded": [ASSOC, CONN, DHCP], "failed_step": 0, "failure_count": 0, "reason": "",
      "disconnect_step": 0, "disconnect_reason": "", "visits": ["A"]}),
    ("access points by name when no serial", [e(0, CONN, name="n1"), e(1, CONN, name="n2")],
     {"outcome": ipb.SESSION_OUTCOME_CONNECTED, "end": ipb.SESSION_END_OPEN, "roam_count": 1,
      "steps_succeeded": [CONN], "failed_step": 0, "failure_count": 0, "reason": "",
      "disconnect_step": 0, "disconnect_reason": "", "visits": ["n1", "n2"]}),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in DESCRIBED], ids=[c[0] for c in DESCRIBED])
def test_what_a_session_says(events: list[SessionEvent], expected: dict[str, Any]) -> None:
    [session] = sessions(events)
    message = session_message(session)
    assert {
        "outcome": message.outcome, "end": message.end, "roam_count": message.roam_count,
        "steps_succeeded": list(message.steps_succeeded), "failed_step": message.failed_step,
        "failure_count": message.failure_count, "reason": message.failure.reason,
        "disconnect_step": message.disconnect_step, "disconnect_reason": message.disconnect_reason,
        "visits": [v.access_point.serial or v.access_point.name for v in message.access_points],
    } == expected
    assert message.session_id == str(events[0].event_id) and message.event_count == len(events)
    assert message.duration.ToTimedelta() == events[-1].occurred_at - events[0].occurred_at


def test_how_a_session_ends() -> None:
    by_gap, by_disconnect, still_open = sessions([e(0), e(40), e(41, DEAUTH, I), e(45)])
    assert [by_gap.end, by_disconnect.end, still_open.end] == [
        ipb.SESSION_END_INACTIVITY, ipb.SESSION_END_DISCONNECT, ipb.SESSION_END_OPEN]
    [followed] = sessions([e(0)], followed=True)  # a later event exists beyond what was read
    assert followed.end == ipb.SESSION_END_INACTIVITY


SAMPLES = [
    ("timing facts of a successful event", [e(0, CONN, timing=4)], [(4, TIMING_FACTS)]),
    ("one per event with facts", [e(0, CONN, timing=4), e(1, CONN, timing=2)], [(4, TIMING_FACTS), (2, TIMING_FACTS)]),
    ("facts of a failed attempt are no sample", [e(0, CONN, F, timing=4)], []),
    ("facts going backwards are no sample", [e(0, CONN, timing=-1)], []),
    ("sequence: first association to first successful DHCP",
     [e(0, ASSOC), e(0.05, DHCP, F), e(0.1, DHCP), e(0.2, DHCP)], [(6, EVENT_SEQUENCE)]),
    ("sequence: from the first association, failed or not", [e(0, ASSOC, F), e(0.05, ASSOC), e(0.1, DHCP)],
     [(6, EVENT_SEQUENCE)]),
    ("sequence: a DHCP before any association is none", [e(0, DHCP), e(0.1, ASSOC)], []),
    ("sequence: never got an address", [e(0, ASSOC), e(0.1, AUTH)], []),
    ("a session with facts takes only the facts", [e(0, ASSOC), e(0.5, DHCP), e(0.6, CONN, timing=3)],
     [(3, TIMING_FACTS)]),
    ("facts of a failure still rule the sequence out", [e(0, ASSOC), e(0.5, DHCP), e(0.6, CONN, F, timing=3)], []),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in SAMPLES], ids=[c[0] for c in SAMPLES])
def test_time_to_connect_samples(events: list[SessionEvent], expected: list[tuple[float, int]]) -> None:
    [run] = split(events)
    assert [(s.duration.total_seconds(), s.basis) for s in connection_samples(run)] == expected


SECONDS = [dt.timedelta(seconds=s) for s in range(1, 11)]
PERCENTILES = [
    ("one sample", [SECONDS[4]], {50: 5, 90: 5, 99: 5, 100: 5, 1: 5}),
    ("two samples", SECONDS[:2], {50: 1, 51: 2, 90: 2, 99: 2}),
    ("ten samples", SECONDS, {1: 1, 10: 1, 11: 2, 50: 5, 90: 9, 91: 10, 99: 10, 100: 10}),
    ("a hundred", [dt.timedelta(seconds=s) for s in range(1, 101)], {50: 50, 90: 90, 99: 99, 100: 100}),
    ("repeated values", [SECONDS[1]] * 3 + [SECONDS[9]], {50: 2, 75: 2, 76: 10}),
]


@pytest.mark.parametrize(("samples", "expected"), [c[1:] for c in PERCENTILES], ids=[c[0] for c in PERCENTILES])
def test_nearest_rank_percentiles(samples: list[dt.timedelta], expected: dict[int, int]) -> None:
    assert {p: percentile(samples, p).total_seconds() for p in expected} == expected


@pytest.mark.parametrize(("samples", "p"), [([], 50), (SECONDS, 0), (SECONDS, 101)])
def test_percentile_refuses_nonsense(samples: list[dt.timedelta], p: int) -> None:
    with pytest.raises(ValueError):
        percentile(samples, p)


def _sample(basis: int) -> Sample:
    return Sample(dt.timedelta(seconds=1), basis, e(0))  # type: ignore[arg-type]


@pytest.mark.parametrize(("bases", "expected"), [
    ([TIMING_FACTS], TIMING_FACTS), ([EVENT_SEQUENCE, EVENT_SEQUENCE], EVENT_SEQUENCE),
    ([TIMING_FACTS, EVENT_SEQUENCE], MIXED)])
def test_basis(bases: list[int], expected: int) -> None:
    assert basis_of(_sample(b) for b in bases) == expected


@pytest.mark.parametrize(("successes", "attempts", "rate"), [(0, 0, None), (0, 3, 0.0), (3, 4, 0.75), (5, 5, 1.0)])
def test_success_rate(successes: int, attempts: int, rate: float | None) -> None:
    assert success_rate(successes, attempts) == rate


def test_failure_reasons_most_frequent_first_then_step_then_code() -> None:
    def reason(step: int, count: int, code: int | None = None) -> ipb.FailureReason:
        found = ipb.FailureReason(step=step, count=count)
        if code is not None:
            found.failure_code = code
        return found

    given = [reason(DHCP, 1), reason(AUTH, 1, 8), reason(AUTH, 1, 5), reason(AUTH, 1), reason(ASSOC, 3),
             reason(DNS, 1), reason(ROAM, 1)]
    assert [(r.step, r.failure_code if r.HasField("failure_code") else None, r.count) for r in top_reasons(given)] == [
        (ASSOC, None, 3), (AUTH, None, 1), (AUTH, 5, 1), (AUTH, 8, 1), (DHCP, None, 1)]


def test_group_keys_set_only_their_dimensions() -> None:
    key = group_key(("access_point", "band", "client", "failure_category"),
                    (None, "lobby", pb.BAND_5_GHZ, "aa:bb:cc:dd:ee:ff", None, None, T0), bucketed=True)
    assert key == ipb.ConnectionGroupKey(access_point=pb.AccessPoint(name="lobby"), band=pb.BAND_5_GHZ,
                                         client=pb.Client(mac_address="aa:bb:cc:dd:ee:ff"),
                                         bucket_start_time=timestamp_pb2.Timestamp(seconds=int(T0.timestamp())))
    assert not key.HasField("failure_code") and not key.network_id


def test_sample_filter_matches_the_starting_event() -> None:
    event = e(0, band=pb.BAND_5_GHZ, ssid="corp", ap="A", vendor=pb.VENDOR_MERAKI)
    assert SampleFilter().matches(event)
    assert SampleFilter(bands=(pb.BAND_5_GHZ,), ssid="corp", ap_serial="A", vendor=pb.VENDOR_MERAKI).matches(event)
    for other in (SampleFilter(bands=(pb.BAND_6_GHZ,)), SampleFilter(ssid="guest"), SampleFilter(ap_serial="B"),
                  SampleFilter(vendor=pb.VENDOR_MOJO)):
        assert not other.matches(event)


# --- page tokens of computed results -----------------------------------------------------------------------------

def test_offset_tokens_round_trip_and_are_bound_to_their_request() -> None:
    token = page_token.encode_offset(200, "d1")
    assert page_token.decode_offset(token, "d1", 10_000) == 200
    with pytest.raises(page_token.BadPageToken, match="other parameters"):
        page_token.decode_offset(token, "d2", 10_000)
    for bad in (page_token.encode_offset(-1, "d1"), page_token.encode_offset(10_001, "d1"), "x",
                page_token.encode(T0, 5, "d1"), "A" * 600):
        with pytest.raises(page_token.BadPageToken, match="malformed"):
            page_token.decode_offset(bad, "d1", 10_000)
    with pytest.raises(page_token.BadPageToken, match="malformed"):  # and a position token is no offset one
        page_token.decode(token, "d1")


# --- argument checks ---------------------------------------------------------------------------------------------

@pytest.fixture
async def servicer() -> tuple[InsightsServicer, dict[Role, str]]:
    accounts = InMemoryAccounts()
    keys = {role: (await role_key(accounts, "t-unit", role)).token for role in Role}
    ctx = ServiceContext(Settings(), NoDatabase(), KeyAuthenticator(accounts, 0), metrics=None)
    return InsightsServicer(ctx), keys


def ts(when: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def summary(**fields: Any) -> ipb.SummarizeConnectionsRequest:
    fields = {"parent": "networks/N_1", "start_time": ts(T0), "end_time": ts(T0 + dt.timedelta(days=1)), **fields}
    return ipb.SummarizeConnectionsRequest(**fields)


def ttc(**fields: Any) -> ipb.SummarizeTimeToConnectRequest:
    fields = {"parent": "networks/N_1", "start_time": ts(T0), "end_time": ts(T0 + dt.timedelta(days=1)), **fields}
    return ipb.SummarizeTimeToConnectRequest(**fields)


def sessions_of(parent: str = "networks/N_1/clients/aa:bb:cc:dd:ee:ff", **fields: Any) -> ipb.ListClientSessionsRequest:
    return ipb.ListClientSessionsRequest(parent=parent, **fields)


def hour(seconds: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds)


REFUSED = [
    ("summary: no parent", summary(parent=""), "parent: must be networks/{network} or networks/-"),
    ("summary: parent of a client", summary(parent="networks/N_1/clients/x"), "parent: must be networks/"),
    ("summary: no start", summary(start_time=None), "start_time: is required"),
    ("summary: no end", summary(end_time=None), "end_time: is required"),
    ("summary: end at start", summary(end_time=ts(T0)), "end_time: must be after start_time"),
    ("summary: start beyond 9999", summary(start_time=timestamp_pb2.Timestamp(seconds=253402300800)),
     "start_time: must be from"),
    ("summary: group_by unspecified", summary(group_by=[0]), "group_by: invalid value 0"),
    ("summary: unknown group_by", summary(group_by=[42]), "group_by: invalid value 42"),
    ("summary: group_by twice", summary(group_by=[ipb.GROUP_BY_SSID, ipb.GROUP_BY_SSID]),
     "group_by: names a dimension more than once"),
    ("summary: bucket under a minute", summary(bucket_duration=hour(59)), "bucket_duration: must be at least 60s"),
    ("summary: bucket of zero", summary(bucket_duration=hour(0)), "bucket_duration: must be at least 60s"),
    ("summary: negative bucket", summary(bucket_duration=hour(-3600)), "bucket_duration: must be at least"),
    ("summary: too many buckets", summary(bucket_duration=hour(60)),
     "bucket_duration: makes 1440 buckets of the time range; at most 1000"),
    ("summary: page size", summary(page_size=1001), "page_size: must be 0-1000"),
    ("summary: page token", summary(page_token="nope"), "page_token: malformed"),
    ("summary: token of another request", summary(page_token=page_token.encode_offset(
        100, page_token.request_digest(summary(ssid="x")))), "page_token: was issued for a request with other"),
    ("summary: unknown step", summary(steps=[99]), "steps: invalid value 99"),
    ("summary: unknown band", summary(bands=[9]), "bands: invalid value 9"),
    ("summary: SSID number", summary(ssid_number=256), "ssid_number: must be 0-255"),
    ("summary: client MAC", summary(client_mac_address="zz"), "client_mac_address: 'zz' is not a MAC address"),
    ("summary: bssid", summary(bssid="zz"), "bssid: 'zz' is not a MAC address"),
    ("summary: client id with NUL", summary(client_id="a\x00"), "client_id: must not contain NUL characters"),
    ("summary: vendor", summary(vendor=99), "vendor: invalid value 99"),
    ("ttc: no start", ttc(start_time=None), "start_time: is required"),
    ("ttc: by failure category", ttc(group_by=[ipb.GROUP_BY_FAILURE_CATEGORY]),
     "group_by: GROUP_BY_FAILURE_CATEGORY is not a dimension of this insight"),
    ("ttc: by step", ttc(group_by=[ipb.GROUP_BY_STEP]), "group_by: GROUP_BY_STEP is not a dimension"),
    ("ttc: page size", ttc(page_size=-1), "page_size: must be 0-1000"),
    ("ttc: AP serial too long", ttc(access_point_serial="s" * 1025), "access_point_serial: must be at most 1024"),
    ("sessions: a network, no client", sessions_of("networks/N_1"), "parent: must be networks/{network}/clients/"),
    ("sessions: no client", sessions_of("networks/N_1/clients/"), "parent: must be"),
    ("sessions: bad network", sessions_of("networks/_x/clients/k1"), "parent: must be"),
    ("sessions: a client with a slash", sessions_of("networks/N_1/clients/a/b"), "parent: must be"),
    ("sessions: a client id with NUL", sessions_of("networks/N_1/clients/a\x00"), "parent: must not contain NUL"),
    ("sessions: end before start", sessions_of(start_time=ts(T0), end_time=ts(T0 - dt.timedelta(seconds=1))),
     "end_time: must be after start_time"),
    ("sessions: page size", sessions_of(page_size=501), "page_size: must be 0-500"),
    ("sessions: offset token", sessions_of(page_token=page_token.encode_offset(1, "x")), "page_token: malformed"),
]


@pytest.mark.parametrize(("request_", "details"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_arguments_are_refused_naming_the_field(servicer, request_: Any, details: str) -> None:
    service, keys = servicer
    method = {ipb.SummarizeConnectionsRequest: service.SummarizeConnections,
              ipb.SummarizeTimeToConnectRequest: service.SummarizeTimeToConnect,
              ipb.ListClientSessionsRequest: service.ListClientSessions}[type(request_)]
    with pytest.raises(InvalidArgument) as err:
        await call(method, request_, (("authorization", f"Bearer {keys[Role.VIEWER]}"),))
    assert str(err.value).startswith(details), str(err.value)


ACCEPTED = [
    ("summary: every dimension, buckets and filter", summary(
        parent="networks/-", group_by=sorted(ipb.GroupBy.values())[1:], bucket_duration=hour(86400 // 1000 + 1),
        client_id="k1", client_mac_address="AA-BB-CC-DD-EE-FF", steps=[DHCP], bands=[pb.BAND_5_GHZ], ssid="corp",
        ssid_number=0, access_point_serial="Q2", access_point_name="lobby", bssid="aabb.ccdd.eeff",
        vendor=pb.VENDOR_MOJO, page_size=1000)),
    ("summary: exactly 1000 buckets", summary(bucket_duration=duration_pb2.Duration(seconds=86, nanos=400_000_000))),
    ("ttc: every dimension it has", ttc(group_by=[1, 2, 3, 4, 5], bands=[pb.BAND_2_4_GHZ], vendor=pb.VENDOR_MERAKI)),
    ("sessions: by client id, every network, a range", sessions_of("networks/-/clients/k74272e", start_time=ts(T0),
                                                                   end_time=ts(T0 + dt.timedelta(hours=1)))),
    ("sessions: a token of this request", sessions_of(page_size=5, page_token=page_token.encode(
        T0, 5, page_token.request_digest(sessions_of())))),
]


@pytest.mark.parametrize("request_", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
async def test_valid_arguments_go_on_to_the_store(servicer, request_: Any) -> None:
    service, keys = servicer
    method = {ipb.SummarizeConnectionsRequest: service.SummarizeConnections,
              ipb.SummarizeTimeToConnectRequest: service.SummarizeTimeToConnect,
              ipb.ListClientSessionsRequest: service.ListClientSessions}[type(request_)]
    with pytest.raises(DatabaseReached):
        await call(method, request_, (("authorization", f"Bearer {keys[Role.VIEWER]}"),))


@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, True), (Role.OPERATOR, True), (Role.ADMINISTRATOR, True),
                                               (Role.SUPER_USER, True), (Role.DEVICE, False),
                                               (Role.SYNC_SERVICE, False)])
async def test_which_roles_may_read_insights(servicer, role: Role, allowed: bool) -> None:
    service, keys = servicer
    md = (("authorization", f"Bearer {keys[role]}"),)
    for method, request in ((service.SummarizeConnections, summary(parent="bad")),
                            (service.SummarizeTimeToConnect, ttc(parent="bad")),
                            (service.ListClientSessions, sessions_of("bad"))):
        if allowed:
            with pytest.raises(InvalidArgument):
                await call(method, request, md)
        else:
            result = await call(method, request, md)
            assert isinstance(result, Aborted) and result.details == f"a {role.value} key may not read events"


@pytest.mark.parametrize(("parent", "expected"), [
    ("networks/N_1/clients/F0-D7-AA-DF-59-A2", ("N_1", "f0:d7:aa:df:59:a2", None)),
    ("networks/-/clients/f0d7.aadf.59a2", ("-", "f0:d7:aa:df:59:a2", None)),
    ("networks/N_1/clients/k74272e", ("N_1", None, "k74272e")),
    ("networks/N_1/clients/f0:d7:aa:df:59", ("N_1", None, "f0:d7:aa:df:59")),  # not a MAC: a client id
])
def test_a_client_is_named_by_mac_or_id(parent: str, expected: tuple) -> None:
    assert parse_client_parent(parent) == expected


# --- which days and hours of a summary the rollups answer ------------------------------------------------------

_H = dt.datetime(2026, 3, 10, 8, tzinfo=dt.UTC)  # 16 hours before a UTC midnight (h 16, 40, 64, ...)
_HOUR = dt.timedelta(hours=1)
_DAY = 24 * _HOUR


def _ranges(start: float, end: float, dimensions: tuple[str, ...] = (), bucket: dt.timedelta | None = None,
            origin: float | None = None, **filters: Any) -> list[tuple[str, float, float]] | None:
    from connlog.store.events import EventFilter
    from connlog.store.insights import Grouping, rollup_ranges

    flt = EventFilter(start=_H + start * _HOUR, end=_H + end * _HOUR, **filters)
    at = None if origin is None else _H + origin * _HOUR
    found = rollup_ranges(flt, Grouping(dimensions, bucket, at or (flt.start if bucket else None)))
    return [(r.level.column, (r.start - _H) / _HOUR, (r.end - _H) / _HOUR) for r in found] or None


@pytest.mark.parametrize(("case", "expected"), [
    # a week from 08:00: hours to the first midnight, six whole days, hours after the last
    (dict(start=0, end=168), [("hour", 0, 16), ("day", 16, 160), ("hour", 160, 168)]),
    (dict(start=16, end=16 + 7 * 24), [("day", 16, 184)]),  # a week of whole days
    (dict(start=0.5, end=167.25), [("hour", 1, 16), ("day", 16, 160), ("hour", 160, 167)]),  # partial hours raw
    (dict(start=15.5, end=40.5), [("day", 16, 40)]),  # a day, partial hours at both edges
    (dict(start=16, end=39), [("hour", 16, 39)]),  # no whole day: hours
    (dict(start=0, end=24), [("hour", 0, 24)]),  # across a midnight, no whole day
    (dict(start=0.25, end=1.75), None),  # no whole hour
    (dict(start=0.25, end=2), [("hour", 1, 2)]),
    (dict(start=0, end=24, dimensions=("access_point", "ssid", "band", "failure_category", "step", "network")),
     [("hour", 0, 24)]),
    (dict(start=0, end=72, dimensions=("access_point", "ssid", "band", "failure_category", "step", "network")),
     [("hour", 0, 16), ("day", 16, 64), ("hour", 64, 72)]),
    (dict(start=0, end=72, dimensions=("client",)), None),  # the rollups have no client
    (dict(start=0, end=72, client_mac="02:00:00:00:00:01"), None),
    (dict(start=0, end=24, client_id="k1"), None),
    (dict(start=0, end=72, ap_name="AP-1"), None),  # a name is kept only for access points without a serial
    (dict(start=0, end=24, bssid="00:11:22:33:44:55"), None),
    (dict(start=0, end=24, ssid_number=1), None),
    (dict(start=0, end=72, vendor=pb.VENDOR_MERAKI), None),
    (dict(start=0, end=72, steps=[1], bands=[2], ssid="corp", ap_serial="Q", network_ref=3),
     [("hour", 0, 16), ("day", 16, 64), ("hour", 64, 72)]),
    (dict(start=0, end=24, bucket=2 * _HOUR), [("hour", 0, 24)]),
    (dict(start=0, end=72, bucket=2 * _HOUR), [("hour", 0, 72)]),  # hour buckets: no days (a day spans two)
    (dict(start=0, end=72, bucket=_DAY), [("hour", 0, 72)]),  # day buckets from 08:00: not days
    (dict(start=16, end=88, bucket=_DAY), [("day", 16, 88)]),  # day buckets from a midnight
    (dict(start=0, end=72, bucket=_DAY, origin=-8), [("hour", 0, 16), ("day", 16, 64), ("hour", 64, 72)]),
    (dict(start=16, end=88, bucket=2 * _DAY), [("day", 16, 88)]),
    (dict(start=16, end=88, bucket=36 * _HOUR), [("hour", 16, 88)]),  # not whole days
    (dict(start=0, end=24, bucket=dt.timedelta(minutes=90)), None),  # buckets not of whole hours
    (dict(start=0.5, end=24, bucket=_HOUR), None),  # buckets not from a whole hour
])
def test_the_rollups_answer_the_whole_days_and_hours_of_what_they_can_filter(case: dict, expected: Any) -> None:
    assert _ranges(**case) == expected
