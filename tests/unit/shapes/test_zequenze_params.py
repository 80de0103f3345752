"""Zequenze's body validation (no database, no Envoy): a bad body is the
error Zequenze's (Django REST framework) API answers, keyed by the field."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from connlog.shapes.rest import RestCall, RestError, parse_query
from connlog.shapes.zequenze.params import ZequenzeLog, check_query, parse_body, validate

SAMPLES = json.loads(resources.files("connlog.devtools").joinpath("samples", "zequenze_logs.json").read_text())
WIFI = SAMPLES["wifi"]
MINIMAL = {"network_name": "Office", "network_type": "wi"}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(WIFI).encode(),
        json.dumps({"data": json.dumps(WIFI)}).encode(),
        json.dumps({"data": WIFI}).encode(),
    ],
    ids=["object", "data-string", "data-object"],
)
def test_the_three_documented_forms(body):
    log = parse_body(body)
    assert log.values == WIFI
    assert json.loads(log.raw) == WIFI
    validate(log)


# body -> (status, the error body or, for a parser's message, its field and how the message starts)
BAD_BODIES = {
    "not UTF-8": (b'{"network_name": "\xff"}', 400, {"detail": "JSON parse error - the body is not UTF-8 text"}),
    "truncated": (b'{"network_name": "x', 400, ("detail", "JSON parse error - ")),
    "NaN": (b'{"frequency": NaN}', 400, ("detail", "JSON parse error - ")),
    "lone surrogate": (b'{"network_name": "\\ud800"}', 400, ("detail", "JSON parse error - ")),
    "too deep": (b"[" * 100_000, 400, ("detail", "JSON parse error - ")),
    "a list": (b"[]", 400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    "null": (b"null", 400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got null."]}),
    "a string": (b'"x"', 400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
    "data a number": (b'{"data": 5}', 400, {"data": ["Value must be a JSON object or a JSON string."]}),
    "data not JSON": (b'{"data": "{"}', 400, ("data", "Value must be valid JSON: ")),
    "data a JSON list": (b'{"data": "[1]"}', 400,
                         {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
}


@pytest.mark.parametrize(("body", "status", "expected"), BAD_BODIES.values(), ids=list(BAD_BODIES))
def test_bodies_that_are_no_log(body, status, expected):
    with pytest.raises(RestError) as caught:
        parse_body(body)
    assert caught.value.status == status
    if isinstance(expected, dict):
        assert caught.value.body == expected
    else:
        field, start = expected
        assert list(caught.value.body) == [field]
        message = caught.value.body[field]
        assert (message if isinstance(message, str) else message[0]).startswith(start)


def _many(name: str, message: str, count: int = 1) -> dict:
    return {name: [message] * count}


# values (on top of MINIMAL; None: the key left out) -> (status, the field-keyed errors)
BAD_LOGS = {
    "nothing": ({"network_name": None, "network_type": None}, 400,
                {"network_name": ["This field is required."], "network_type": ["This field is required."]}),
    "empty name": ({"network_name": ""}, 400, _many("network_name", "This field is required.")),
    "unknown key": ({"colour": "red"}, 400, _many("colour", "Unknown field.")),
    "unknown keys and a bad type": ({"colour": "red", "frequency": "5"}, 400,
                                    {"colour": ["Unknown field."], "frequency": ["A valid number is required."]}),
    "name not text": ({"network_name": 5}, 400, _many("network_name", "Not a valid string.")),
    "NUL": ({"authentication": "psk\x00"}, 400, _many("authentication", "Null characters are not allowed.")),
    "frequency text": ({"frequency": "5.2"}, 400, _many("frequency", "A valid number is required.")),
    "frequency a boolean": ({"frequency": True}, 400, _many("frequency", "A valid number is required.")),
    "frequency beyond any float": ({"frequency": 10**400}, 400, _many("frequency", "A valid number is required.")),
    "bytes a fraction": ({"inbytes": 1.5}, 400, _many("inbytes", "A valid integer is required.")),
    "roaming text": ({"roaming": "yes"}, 400, _many("roaming", "Must be a valid boolean.")),
    "latitude a number": ({"latitude": 40.1}, 400, _many("latitude", "Not a valid string.")),
    "latitude not a number": ({"latitude": "north"}, 400, _many("latitude", "A valid number is required.")),
    "latitude infinite": ({"latitude": "inf"}, 400, _many("latitude", "A valid number is required.")),
    # well-formed, unacceptable: 422
    "type not a choice": ({"network_type": "xx"}, 422, _many("network_type", '"xx" is not a valid choice.')),
    "security not a choice": ({"network_security": "wpa3"}, 422,
                              _many("network_security", '"wpa3" is not a valid choice.')),
    "metric not a choice": ({"quality_metric": "snr"}, 422, _many("quality_metric", '"snr" is not a valid choice.')),
    "mcc mnc": ({"network_mccmnc": "12"}, 422, _many("network_mccmnc", "Must be 5 or 6 digits (MCC + MNC).")),
    "bssid": ({"bssid": "zz"}, 422, _many("bssid", "Enter a valid MAC address.")),
    "latitude": ({"latitude": "91"}, 422, _many("latitude", "Ensure this value is between -90 and 90.")),
    "longitude": ({"longitude": "-180.5"}, 422, _many("longitude", "Ensure this value is between -180 and 180.")),
    "negative bytes": ({"outbytes": -1}, 422, _many("outbytes", "Ensure this value is greater than or equal to 0.")),
    "bytes beyond int64": ({"inbytes": 2**63}, 422,
                           _many("inbytes", "Ensure this value is less than or equal to 9223372036854775807.")),
    "link speed": ({"link_speed": 1_000_001}, 422,
                   _many("link_speed", "Ensure this value is less than or equal to 1000000.")),
    "long name": ({"network_name": "n" * 257}, 422,
                  _many("network_name", "Ensure this field has no more than 256 characters.")),
    "frequency 0": ({"frequency": 0}, 422,
                    _many("frequency", "Ensure this value is a frequency in GHz (greater than 0, at most 100).")),
    "quality": ({"quality_value": 1000.5}, 422, _many("quality_value", "Ensure this value is between -1000 and 1000.")),
    "two unacceptable": ({"bssid": "zz", "latitude": "-91"}, 422,
                         {"bssid": ["Enter a valid MAC address."],
                          "latitude": ["Ensure this value is between -90 and 90."]}),
}


@pytest.mark.parametrize(("values", "status", "errors"), BAD_LOGS.values(), ids=list(BAD_LOGS))
def test_bad_logs_name_their_fields(values, status, errors):
    log = {k: v for k, v in (MINIMAL | values).items() if v is not None}
    with pytest.raises(RestError) as caught:
        validate(ZequenzeLog(log, json.dumps(log)))
    assert (caught.value.status, caught.value.body) == (status, errors)
    first = next(iter(errors.values()))[0]
    assert caught.value.message == first or caught.value.message.startswith(first)


@pytest.mark.parametrize("example", ["wifi", "mobile"])
def test_documented_examples_are_valid(example):
    validate(ZequenzeLog(SAMPLES[example], json.dumps(SAMPLES[example])))


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("", None),
        ("netwrok=1", {"netwrok": ["Unknown query parameter."]}),
        ("b=1&a=2", {"a": ["Unknown query parameter."], "b": ["Unknown query parameter."]}),
    ],
)
def test_the_post_takes_no_query_parameters(query, errors):
    call = RestCall("/api/v1/device_app_connection_log/", parse_query(query), "", True)
    if errors is None:
        check_query(call)
    else:
        with pytest.raises(RestError) as caught:
            check_query(call)
        assert (caught.value.status, caught.value.body) == (400, errors)
