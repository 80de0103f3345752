"""The parameters of Meraki's aggregate endpoints (connectionStats ×3,
failedConnections; no database, no Envoy): a query as the gateway hands it
on -> ``StatsQuery``, or the exact 400 Meraki's clients get."""

from __future__ import annotations

import datetime as dt

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki import stats_params
from connlog.shapes.meraki.stats_params import FAILED_KNOWN, STATS_KNOWN, StatsQuery
from connlog.shapes.rest import RestCall, RestError, parse_query

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def _epoch(when: dt.datetime) -> str:
    return str(int(when.timestamp()))


def parse(query: str, known: frozenset[str] = FAILED_KNOWN) -> StatsQuery:
    return stats_params.parse(RestCall("/api/v1/networks/N/wireless/failedConnections", parse_query(query),
                                       "http://gateway", True), NOW, known)


DEFAULTS = StatsQuery(t0=NOW - DAY, t1=NOW)
# query -> the StatsQuery fields it sets (every other one as by default)
GOOD = {
    "": {},
    "timespan=3600": {"t0": NOW - HOUR},
    "timespan=604800": {"t0": NOW - 7 * DAY},
    "timespan=0.5": {"t0": NOW - dt.timedelta(seconds=0.5)},
    f"t0={_epoch(NOW - HOUR)}": {"t0": NOW - HOUR},
    f"t0={_epoch(NOW - 30 * DAY)}": {"t0": NOW - 30 * DAY, "t1": NOW - 23 * DAY},  # t0 alone: 7 days
    f"t0={_epoch(NOW - 180 * DAY)}&t1={_epoch(NOW - 173 * DAY)}": {"t0": NOW - 180 * DAY, "t1": NOW - 173 * DAY},
    "t0=2026-02-22T12:00:00Z&t1=2026-03-01T12:00:00%2B00:00": {"t0": NOW - 7 * DAY},
    "t0=2026-03-01T10:00:00": {"t0": NOW - 2 * HOUR},  # no offset: UTC
    f"t1={_epoch(NOW - HOUR)}": {"t0": NOW - HOUR - DAY, "t1": NOW - HOUR},
    f"t0={_epoch(NOW - HOUR)}&t1={_epoch(NOW - HOUR)}": {"t0": NOW - HOUR, "t1": NOW - HOUR},
    "band=2.4": {"bands": (pb.BAND_2_4_GHZ,)},
    "band=5": {"bands": (pb.BAND_5_GHZ,)},
    "band=6": {"bands": (pb.BAND_6_GHZ,)},
    "ssid=0": {"ssid_number": 0},
    "ssid=14": {"ssid_number": 14},
    "serial=Q234-ABCD-5678": {"serial": "Q234-ABCD-5678"},
    "serial=" + "s" * 64: {"serial": "s" * 64},
    "clientId=F0-D7-AA-DF-59-A2": {"client_mac": "f0:d7:aa:df:59:a2"},
    "clientId=f0d7.aadf.59a2": {"client_mac": "f0:d7:aa:df:59:a2"},
    "clientId=k74272e": {"client_id": "k74272e"},
    "clientId=" + "c" * 128: {"client_id": "c" * 128},
}


@pytest.mark.parametrize(("query", "fields"), GOOD.items(), ids=[q or "(none)" for q in GOOD])
def test_good_queries(query, fields):
    assert parse(query) == StatsQuery(**(vars(DEFAULTS) | fields))


# query -> Meraki's 400 message
BAD = {
    "foo=bar": "Unknown parameter 'foo'",
    "perPage=10": "Unknown parameter 'perPage'",
    "ssidNumber=1": "Unknown parameter 'ssidNumber'",  # connectivityEvents' name, not these endpoints'
    "vlan=10": "'vlan' is not supported: connlog's events carry no VLAN",
    "vlan=": "'vlan' is not supported: connlog's events carry no VLAN",
    "apTag=lobby": "'apTag' is not supported: connlog's events carry no AP tags",
    "timespan=604801": "'timespan' must be less than or equal to 604800 seconds (7 days)",
    "timespan=0": "'timespan' must be a positive number of seconds",
    "timespan=-5": "'timespan' must be a positive number of seconds",
    "timespan=abc": "'timespan' must be a number of seconds",
    "timespan=1&timespan=2": "'timespan' must be given once",
    f"timespan=3600&t0={_epoch(NOW - HOUR)}": "'timespan' cannot be used with 't0' or 't1'",
    f"timespan=3600&t1={_epoch(NOW)}": "'timespan' cannot be used with 't0' or 't1'",
    f"t0={_epoch(NOW - 181 * DAY)}": "'t0' must be within the last 180 days",
    f"t1={_epoch(NOW - 180 * DAY)}": "'t1' must be within the last 180 days",  # so its default t0 is not
    f"t0={_epoch(NOW - HOUR)}&t1={_epoch(NOW - 2 * HOUR)}": "'t1' must be after 't0'",
    f"t0={_epoch(NOW - 8 * DAY)}&t1={_epoch(NOW)}": "'t1' can be a maximum of 7 days after 't0'",
    "t0=yesterday": "'t0' must be an ISO 8601 time or epoch seconds",
    "t1=-1": "'t1' is out of range",
    "band=3": "'band' must be one of: 2.4, 5, 6",
    "band=5&band=6": "'band' must be given once",
    "ssid=15": "'ssid' must be an integer from 0 to 14",
    "ssid=-1": "'ssid' must be an integer from 0 to 14",
    "ssid=x": "'ssid' must be an integer from 0 to 14",
    "serial=": "'serial' must be 1 to 64 characters",
    "serial=" + "s" * 65: "'serial' must be 1 to 64 characters",
    "clientId=": "'clientId' must be a client MAC address (or id) of 1 to 128 characters",
    "clientId=" + "c" * 129: "'clientId' must be a client MAC address (or id) of 1 to 128 characters",
    "serial=a%00b": "'serial' contains a NUL character",
}


@pytest.mark.parametrize(("query", "message"), BAD.items(), ids=list(BAD))
def test_bad_queries_are_400_in_merakis_words(query, message):
    with pytest.raises(RestError) as caught:
        parse(query)
    assert (caught.value.status, caught.value.message) == (400, message)


@pytest.mark.parametrize("query", ["serial=Q2", "clientId=k1"])
def test_connection_stats_take_no_serial_or_client(query):
    """Only failedConnections filters by AP and client (as Meraki's SDK)."""
    with pytest.raises(RestError) as caught:
        parse(query, STATS_KNOWN)
    assert caught.value.message == f"Unknown parameter '{query.split('=')[0]}'"


def test_a_direct_grpc_callers_nul_is_a_400():
    """A gRPC caller's fields are not decoded by the gateway: a NUL in one
    is refused here (it would otherwise reach PostgreSQL)."""
    call = RestCall("", [("clientId", "k\x00")], "", False)
    with pytest.raises(RestError) as caught:
        stats_params.parse(call, NOW, FAILED_KNOWN)
    assert caught.value.message == "'clientId' contains a NUL character"
