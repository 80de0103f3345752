"""Meraki's connectivityEvents parameters (no database, no Envoy): a query
as the gateway hands it on (the raw query, decoded by ``parse_query``) ->
``MerakiQuery``, or the exact 400 Meraki's clients get."""

from __future__ import annotations

import datetime as dt

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki import params
from connlog.shapes.meraki.params import LAST, ClientFilter, encode_position
from connlog.shapes.rest import RestCall, RestError, parse_query, query_string

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
POSITION = (dt.datetime(2026, 3, 1, 11, 0, 0, 123456, tzinfo=dt.UTC), 42)
TOKEN = encode_position(*POSITION)


def _epoch(when: dt.datetime) -> str:
    return str(int(when.timestamp()))


def parse(query: str) -> params.MerakiQuery:
    return params.parse(RestCall("/api/v1/networks/N/wireless/clients/C/connectivityEvents", parse_query(query),
                                 "http://gateway", True), NOW)


# query -> the MerakiQuery fields it sets (every other one as by default)
DEFAULTS = {"per_page": 1000, "descending": False, "t0": NOW - DAY, "t1": NOW, "steps": [], "bands": [],
            "ssid_number": None, "severities": [], "device_serial": None, "starting_after": None,
            "ending_before": None}
GOOD = {
    "": {},
    "perPage=3": {"per_page": 3},
    "perPage=1000": {"per_page": 1000},
    "sortOrder=descending": {"descending": True},
    "sortOrder=ascending": {},
    "timespan=3600": {"t0": NOW - HOUR},
    "timespan=2678400": {"t0": NOW - dt.timedelta(seconds=2678400)},
    "timespan=0.5": {"t0": NOW - dt.timedelta(seconds=0.5)},
    f"t0={_epoch(NOW - HOUR)}": {"t0": NOW - HOUR},
    f"t0={_epoch(NOW - HOUR)}.250000": {"t0": NOW - HOUR + dt.timedelta(milliseconds=250)},
    f"t0={_epoch(NOW - 2 * DAY)}&t1={_epoch(NOW - DAY)}": {"t0": NOW - 2 * DAY, "t1": NOW - DAY},
    "t0=2026-02-28T12:00:00Z&t1=2026-03-01T00:00:00%2B00:00": {"t0": NOW - DAY, "t1": NOW - 12 * HOUR},
    "t0=2026-03-01T10:00:00": {"t0": NOW - 2 * HOUR},  # no offset: UTC
    f"t1={_epoch(NOW - HOUR)}": {"t0": NOW - HOUR - DAY, "t1": NOW - HOUR},
    "types[]=assoc&types[]=roam": {"steps": [pb.CONNECTION_STEP_ASSOCIATION, pb.CONNECTION_STEP_ROAM]},
    "types%5B%5D=auth&types%5b%5d=dns": {"steps": [pb.CONNECTION_STEP_AUTHENTICATION, pb.CONNECTION_STEP_DNS]},
    "types=sticky&types[]=connection": {"steps": [pb.CONNECTION_STEP_STICKY, pb.CONNECTION_STEP_CONNECTION]},
    "includedSeverities[]=bad&includedSeverities[]=warn": {"severities": [pb.SEVERITY_BAD, pb.SEVERITY_WARN]},
    "band=2.4": {"bands": [pb.BAND_2_4_GHZ]},
    "band=6": {"bands": [pb.BAND_6_GHZ]},
    "ssidNumber=0": {"ssid_number": 0},
    "ssidNumber=14": {"ssid_number": 14},
    "deviceSerial=Q234-ABCD-5678": {"device_serial": "Q234-ABCD-5678"},
    "deviceSerial=" + "s" * 64: {"device_serial": "s" * 64},
    f"startingAfter={TOKEN}": {"starting_after": POSITION},
    f"endingBefore={TOKEN}": {"ending_before": POSITION},
    "endingBefore=last": {"ending_before": LAST},
    "startingAfter=": {},  # empty: the first page
}


@pytest.mark.parametrize(("query", "fields"), GOOD.items(), ids=[q or "(none)" for q in GOOD])
def test_good_queries(query, fields):
    parsed = parse(query)
    assert {name: getattr(parsed, name) for name in DEFAULTS} == DEFAULTS | fields


# query -> Meraki's 400 message
BAD = {
    "perPage=2": "'perPage' must be between 3 and 1000",
    "perPage=1001": "'perPage' must be between 3 and 1000",
    "perPage=-5": "'perPage' must be between 3 and 1000",
    "perPage=-0": "'perPage' must be between 3 and 1000",
    "perPage=ten": "'perPage' must be an integer",
    "perPage=5.0": "'perPage' must be an integer",
    "perPage=+5": "'perPage' must be an integer",
    "perPage=%D9%A3": "'perPage' must be an integer",  # ARABIC-INDIC DIGIT THREE: not an ASCII digit
    "perPage=%EF%BC%95": "'perPage' must be an integer",  # FULLWIDTH DIGIT FIVE
    "perPage=5&perPage=6": "'perPage' must be given once",
    "band=5&band=6": "'band' must be given once",
    "perpage=10": "Unknown parameter 'perpage'",
    "foo=bar&aaa=1": "Unknown parameter 'aaa'",
    "type[]=auth": "Unknown parameter 'type'",
    "sortOrder=up": "'sortOrder' must be one of: ascending, descending",
    "timespan=2678401": "'timespan' must be less than or equal to 2678400 seconds (31 days)",
    "timespan=-5": "'timespan' must be a positive number of seconds",
    "timespan=0": "'timespan' must be a positive number of seconds",
    "timespan=abc": "'timespan' must be a number of seconds",
    "timespan=%D9%A3": "'timespan' must be a number of seconds",
    f"timespan=3600&t0={_epoch(NOW - HOUR)}": "'timespan' cannot be used with 't0' or 't1'",
    f"timespan=3600&t1={_epoch(NOW)}": "'timespan' cannot be used with 't0' or 't1'",
    f"t0={_epoch(NOW - 32 * DAY)}": "'t0' must be within the last 31 days",
    f"t0={_epoch(NOW - HOUR)}&t1={_epoch(NOW - 2 * HOUR)}": "'t1' must be after 't0'",
    f"t0={_epoch(NOW - 30 * DAY)}&t1={_epoch(NOW + 2 * DAY)}": "'t1' can be a maximum of 31 days after 't0'",
    "t0=yesterday": "'t0' must be an ISO 8601 time or epoch seconds",
    "t1=2026-13-01": "'t1' must be an ISO 8601 time or epoch seconds",
    "t0=99999999999999": "'t0' is out of range",
    "t1=-1": "'t1' is out of range",
    "types[]=boot": "'types' must be an array of: assoc, auth, connection, deauth, dhcp, disassoc, dns, roam, sticky;"
                    " got 'boot'",
    "types[]=assoc&types[]=ASSOC": "'types' must be an array of: assoc, auth, connection, deauth, dhcp, disassoc, dns,"
                                   " roam, sticky; got 'ASSOC'",
    "includedSeverities[]=fatal": "'includedSeverities' must be an array of: bad, good, info, warn; got 'fatal'",
    "band=3": "'band' must be one of: 2.4, 5, 6",
    "band=2.40": "'band' must be one of: 2.4, 5, 6",
    "ssidNumber=15": "'ssidNumber' must be an integer from 0 to 14",
    "ssidNumber=-1": "'ssidNumber' must be an integer from 0 to 14",
    "ssidNumber=x": "'ssidNumber' must be an integer from 0 to 14",
    "deviceSerial=" + "s" * 65: "'deviceSerial' must be at most 64 characters",
    "startingAfter=garbage!": "'startingAfter' is not a valid pagination token",
    "endingBefore=W10": "'endingBefore' is not a valid pagination token",  # "[]"
    f"startingAfter={TOKEN}&endingBefore=last": "'startingAfter' cannot be used with 'endingBefore'",
    # the raw query itself: decoded strictly, the parameter named
    "deviceSerial=%ff": "'deviceSerial' is not valid UTF-8 text",
    "t0=a%00b": "'t0' contains a NUL character",
    "x%ff=1": "query parameter 'x%ff' is not valid UTF-8 text",
}


@pytest.mark.parametrize(("query", "message"), BAD.items(), ids=list(BAD))
def test_bad_queries_are_400_in_merakis_words(query, message):
    with pytest.raises(RestError) as caught:
        parse(query)
    assert (caught.value.status, caught.value.message) == (400, message)


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [
        ("k74272e", ClientFilter("k74272e", None)),
        ("F0-D7-AA-DF-59-A2", ClientFilter(None, "f0:d7:aa:df:59:a2")),
        ("f0d7.aadf.59a2", ClientFilter(None, "f0:d7:aa:df:59:a2")),
        ("c" * 128, ClientFilter("c" * 128, None)),
        ("", 404),
        ("c" * 129, 404),
        ("a\x00b", 404),
    ],
)
def test_the_paths_client(client_id, expected):
    if expected == 404:
        with pytest.raises(RestError) as caught:
            params.client_filter(client_id)
        assert (caught.value.status, caught.value.message) == (404, "Client not found")
    else:
        assert params.client_filter(client_id) == expected


def test_link_queries_read_back_as_sent():
    """Link URLs write the array parameters as types[]= (how Meraki's
    clients send them), which parse_query reads back."""
    sent = [("types", "assoc"), ("types", "roam"), ("includedSeverities", "bad"), ("band", "5"), ("t0", "1.000000")]
    text = query_string(sent, params.ARRAYS)
    assert text.startswith("types%5B%5D=assoc&types%5B%5D=roam&includedSeverities%5B%5D=bad&band=5")
    assert parse_query(text) == sent


def test_every_known_parameter_is_a_field_of_the_request():
    """A direct gRPC caller sets the same parameters as request fields."""
    from connlog.api.v1 import meraki_service_pb2

    request = meraki_service_pb2.GetNetworkWirelessClientConnectivityEventsRequest
    fields = {f.json_name for f in request.DESCRIPTOR.fields}
    assert params.KNOWN == fields - {"networkId", "clientId"}
