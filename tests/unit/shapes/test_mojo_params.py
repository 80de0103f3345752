"""Mojo's parameters (no database, no Envoy): the connection-log query as
the gateway hands it on -> ``MojoQuery``, and the API-key login, or the
exact 400 Mojo's clients get."""

from __future__ import annotations

import datetime as dt

import pytest

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.mojo import params
from connlog.shapes.mojo.params import Login
from connlog.shapes.rest import RestCall, RestError, parse_query

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=dt.UTC)
MAC = "clientmacaddress=F0:D7:AA:DF:59:A2"
# "now" to the second, and the second after it: totime's bound is exclusive
END = dt.datetime(2026, 3, 1, 12, 0, 1, tzinfo=dt.UTC)
SUCCESS = [pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_SUCCESS, pb.OUTCOME_INFORMATIONAL]
FAILURE = [pb.OUTCOME_FAILURE]


def _at(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def parse(query: str) -> params.MojoQuery:
    return params.parse(RestCall("/V5/devices/clients/connectionlogs", parse_query(query), "http://gateway", True),
                        NOW)


DEFAULTS = {"mac": "f0:d7:aa:df:59:a2", "start": None, "end": END, "outcomes": [], "failure_codes": [],
            "limit": 1000}
GOOD = {
    MAC: {},
    "clientmacaddress=f0d7.aadf.59a2": {},
    MAC + "&logtype=all": {},
    MAC + "&logtype=": {},
    MAC + "&logtype=success": {"outcomes": SUCCESS},
    MAC + "&logtype=failure": {"outcomes": FAILURE},
    MAC + "&failuretype=8": {"outcomes": FAILURE, "failure_codes": [8]},
    MAC + "&logtype=failure&failuretype=-2147483648": {"outcomes": FAILURE, "failure_codes": [-2147483648]},
    MAC + "&logtype=success&failuretype=8": {"outcomes": [-1], "failure_codes": [8]},  # nothing can match
    MAC + "&failuretype=": {},
    MAC + "&fromtime=1495008800&totime=1495008900": {"start": _at(1495008800), "end": _at(1495008901)},
    MAC + "&fromtime=-1&totime=-1": {},
    MAC + "&fromtime=0": {"start": _at(0)},
    MAC + "&totime=253402300799": {"end": _at(253402300799)},  # the last second there is: kept
    MAC + "&limit=1": {"limit": 1},
    MAC + "&limit=10000": {"limit": 10000},
    MAC + "&limit=": {},
}


@pytest.mark.parametrize(("query", "fields"), GOOD.items(), ids=list(GOOD))
def test_good_queries(query, fields):
    parsed = parse(query)
    assert {name: getattr(parsed, name) for name in DEFAULTS} == DEFAULTS | fields


BAD = {
    "": "clientmacaddress is mandatory",
    "clientmacaddress=": "clientmacaddress is mandatory",
    "clientmacaddress=nope": "clientmacaddress 'nope' is not a MAC address",
    MAC + "&bogus=1": "unknown parameter bogus",
    MAC + "&clientMacAddress=x": "unknown parameter clientMacAddress",
    MAC + "&limit=1&limit=2": "limit must be given once",
    MAC + "&" + MAC: "clientmacaddress must be given once",
    MAC + "&limit=0": "limit must be an integer from 1 to 10000",
    MAC + "&limit=10001": "limit must be an integer from 1 to 10000",
    MAC + "&limit=%D9%A3": "limit must be an integer from 1 to 10000",  # not an ASCII digit
    MAC + "&limit=1e3": "limit must be an integer from 1 to 10000",
    MAC + "&fromtime=abc": "fromtime must be epoch seconds or -1",
    MAC + "&fromtime=-2": "fromtime must be epoch seconds or -1",
    MAC + "&totime=253402300800": "totime must be epoch seconds or -1",
    MAC + "&logtype=some": "logtype must be success, failure or all",
    MAC + "&failuretype=x": "failuretype must be a failure code (a 32-bit integer)",
    MAC + "&failuretype=2147483648": "failuretype must be a failure code (a 32-bit integer)",
    MAC + "&fromtime=200&totime=100": "totime must not be before fromtime",
    MAC + "&fromtime=200&totime=199": "totime must not be before fromtime",
    "clientmacaddress=%ff": "'clientmacaddress' is not valid UTF-8 text",
}


@pytest.mark.parametrize(("query", "message"), BAD.items(), ids=[q or "(none)" for q in BAD])
def test_bad_queries_are_400_in_mojos_words(query, message):
    with pytest.raises(RestError) as caught:
        parse(query)
    assert (caught.value.status, caught.value.message) == (400, message)


GOOD_LOGIN = b'{"type": "apikeycredentials", "keyId": "k1", "keyValue": "secret"}'


@pytest.mark.parametrize(
    ("body", "timeout", "expected"),
    [
        (GOOD_LOGIN, "60", Login("k1", "secret", 60)),
        (GOOD_LOGIN, "1", Login("k1", "secret", 1)),
        (GOOD_LOGIN, "1440", Login("k1", "secret", 1440)),
        (b"{", "60", "request body is not valid JSON"),
        (b"", "60", "request body must be a JSON object"),
        (b"[]", "60", "request body must be a JSON object"),
        (b'{"keyId": "k1", "keyValue": "v"}', "60", "type must be 'apikeycredentials'"),
        (b'{"type": "apikeycredentials", "keyId": "k1"}', "60", "keyId and keyValue are required strings"),
        (b'{"type": "apikeycredentials", "keyId": "", "keyValue": "v"}', "60",
         "keyId and keyValue are required strings"),
        (b'{"type": "apikeycredentials", "keyId": 1, "keyValue": "v"}', "60",
         "keyId and keyValue are required strings"),
        (GOOD_LOGIN, "x", "timeout must be an integer number of minutes"),
        (GOOD_LOGIN, "\u0663", "timeout must be an integer number of minutes"),  # ARABIC-INDIC DIGIT THREE
        (GOOD_LOGIN, "0", "timeout must be 1-1440 minutes"),
        (GOOD_LOGIN, "1441", "timeout must be 1-1440 minutes"),
    ],
)
def test_login(body, timeout, expected):
    if isinstance(expected, Login):
        assert params.parse_login(body, timeout, 1440) == expected
    else:
        with pytest.raises(RestError) as caught:
            params.parse_login(body, timeout, 1440)
        assert (caught.value.status, caught.value.message) == (400, expected)


def test_every_known_parameter_is_a_field_of_the_request():
    """A direct gRPC caller sets the same parameters as request fields."""
    from connlog.api.v1 import mojo_service_pb2

    fields = {f.json_name for f in mojo_service_pb2.ListClientConnectionLogsRequest.DESCRIPTOR.fields}
    assert params.KNOWN == fields
