"""connlog.ingest.normalise, one event at a time (no database): bad events
are refused with ``FieldError(field, reason)`` naming the field, good ones
come back as the columns they are stored under."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.principal import Principal, Role
from connlog.ingest import normalise as nm
from connlog.ingest.normalise import FieldError, _ip
from tests.support.factories import deep_json, deep_struct, full_event, now, simple_event

Mutation = Callable[[pb.ConnectionEvent], object]  # changes an event in place


@pytest.mark.parametrize(("text", "canonical"), [
    ("10.0.0.17", "10.0.0.17"), (" 10.0.0.17 ", "10.0.0.17"), ("0.0.0.0", "0.0.0.0"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
])
def test_ip_addresses_are_canonical(text: str, canonical: str) -> None:
    assert _ip(text) == canonical


@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3", "256.1.1.1", "0x1.2.3.4", "1.2.3.4\x00", "١.2.3.4", "host", ""])
def test_bad_ip_addresses_name_the_field(text: str) -> None:
    with pytest.raises(FieldError) as err:
        _ip(text)
    assert err.value.field == "client.ip_address"


# --- values no shape could print: refused at ingest, the field named ---------------------------------------------

_PRINCIPAL = Principal("k", "t", 1, Role.OPERATOR, None)
_MERAKI_RECORD = {"occurredAt": "2018-02-11T00:00:00.090210Z", "band": "5", "ssidNumber": 1, "type": "auth",
                  "subtype": "success", "severity": "bad", "durationMs": 100, "channel": 44, "rssi": 80,
                  "deviceSerial": "Q234-ABCD-5678", "captureId": "123456"}
_VERBATIM_VENDORS = [pb.VENDOR_MERAKI, pb.VENDOR_MOJO, pb.VENDOR_ZEQUENZE]


def _normalise(event: pb.ConnectionEvent, principal: Principal = _PRINCIPAL) -> nm.StoredEvent:
    window = nm.IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    return nm.normalise(event, principal, window)


def _data(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def _record(vendor: pb.Vendor, data: str, content_type: str = "application/json") -> Mutation:
    def apply(e: pb.ConnectionEvent) -> None:
        e.source.vendor = vendor
        e.vendor_record.content_type = content_type
        e.vendor_record.data = data
    return apply


def _set(path: str, value: object) -> Mutation:
    """Set a dotted field of the event."""
    def apply(e: pb.ConnectionEvent) -> None:
        *parents, name = path.split(".")
        target: Any = e
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return apply


def _timing(name: str, seconds: int, nanos: int = 0) -> Mutation:
    """Set a timing Duration or Timestamp."""
    def apply(e: pb.ConnectionEvent) -> None:
        getattr(e.timing, name).seconds = seconds
        getattr(e.timing, name).nanos = nanos
    return apply


def _event_data(struct: struct_pb2.Struct) -> Mutation:
    return lambda e: e.event_data.CopyFrom(struct)


_DURATIONS = ["duration", "dhcp_latency", "aaa_latency", "dns_latency"]
_TIMES = ["association_time", "authentication_time", "network_time"]
_MAX_SECONDS = 315_576_000_000

POISON = [
    # event_data: protobuf's JSON has no NaN/Infinity (Envoy answers 503, json_format raises on Meraki pages)
    ("event_data nan", _event_data(_data(a=float("nan"))), "event_data", "non-finite number at 'a'"),
    ("event_data inf", _event_data(_data(a=float("inf"))), "event_data", "non-finite"),
    ("event_data -inf in list", _event_data(_data(a=[1, "x", float("-inf")])), "event_data",
     "non-finite number at 'a.2'"),
    ("event_data nan nested", _event_data(_data(a={"b": {"c": float("nan")}})), "event_data", "at 'a.b.c'"),
    # ...nor nesting Envoy's transcoder refuses in a list page (it breaks at 33 Structs)
    ("event_data 21 structs deep", _event_data(deep_struct(21)), "event_data", "nested deeper than 20 levels"),
    ("event_data 21 lists deep", _event_data(_data(a=deep_json(20, "[]"))), "event_data", "nested deeper than 20"),
    ("event_data too large", _event_data(_data(a="x" * 17000)), "event_data", "larger than 16384 bytes"),
] + [
    # durations: protobuf JSON holds +-315576000000 s and nanos < 1e9; Meraki prints int64 milliseconds
    (f"{name} too long", _timing(name, _MAX_SECONDS + 1), f"timing.{name}", "at most 315576000000 seconds")
    for name in _DURATIONS
] + [
    (f"{name} int64 seconds", _timing(name, 2**63 - 1), f"timing.{name}", "at most") for name in _DURATIONS
] + [
    (f"{name} nanos", _timing(name, 1, 1_000_000_000), f"timing.{name}", "nanos must be at most 999999999")
    for name in _DURATIONS
] + [
    (f"{name} negative", _timing(name, 0, -1), f"timing.{name}", "must not be negative") for name in _DURATIONS
] + [
    # timing timestamps: RFC 3339 years 1-9999 and nanos 0..999999999, as protobuf's JSON (and Mojo's ms) print
    (f"{name} after 9999", _timing(name, 253402300800), f"timing.{name}", "out of range") for name in _TIMES
] + [
    (f"{name} before year 1", _timing(name, -62135596801), f"timing.{name}", "out of range") for name in _TIMES
] + [
    (f"{name} nanos", _timing(name, 0, 1_000_000_000), f"timing.{name}", "nanos out of range") for name in _TIMES
] + [
    (f"{name} negative nanos", _timing(name, 0, -1), f"timing.{name}", "nanos out of range") for name in _TIMES
] + [
    # Mojo prints an all-digits location id as a number
    ("location_id 30 digits", _set("location.location_id", "1" * 30), "location.location_id",
     "a numeric id must be at most 9223372036854775807"),
    ("location_id int64+1", _set("location.location_id", str(2**63)), "location.location_id", "at most"),
] + [
    # vendor records answered verbatim must be strict JSON objects of their vendor's shape
    (f"{pb.Vendor.Name(v)} {label}", _record(v, data), "vendor_record.data", reason)
    for v in _VERBATIM_VENDORS
    for label, data, reason in [
        ("NaN", '{"a": NaN}', "is not valid JSON"),
        ("Infinity", '{"a": -Infinity}', "is not valid JSON"),
        ("1e400", '{"a": 1e400}', "is not valid JSON"),
        ("30-digit integer", '{"locationId": {"id": 123456789012345678901234567890}}', "outside the int64 range"),
        ("int64+1", '{"a": 9223372036854775808}', "outside the int64 range"),
        ("uint64 max", '{"a": [18446744073709551615]}', "outside the int64 range"),
        ("int64-1", '{"a": -9223372036854775809}', "outside the int64 range"),
        ("lone surrogate", '{"a": "\\ud800"}', "is not valid JSON"),
        ("markup", "<html><script>alert(1)</script></html>", "is not valid JSON"),
        ("trailing text", '{"a": 1} <b>', "is not valid JSON"),
        ("two objects", '{"a": 1}, {"b": 2}', "is not valid JSON"),
        ("BOM", '\ufeff{"a": 1}', "is not valid JSON"),
        ("array", json.dumps([_MERAKI_RECORD]), "must be a JSON object"),
        ("string", '"{}"', "must be a JSON object"),
        ("null", "null", "must be a JSON object"),
        ("33 deep", json.dumps({"a": deep_json(32, "{}")}), "nested deeper than 32 levels"),
    ]
] + [
    (f"{pb.Vendor.Name(v)} text/html", _record(v, "<b>hi</b>", "text/html"), "vendor_record.content_type",
     f"must be application/json for {pb.Vendor.Name(v)}") for v in _VERBATIM_VENDORS
] + [
    (f"{pb.Vendor.Name(v)} text/plain JSON", _record(v, "{}", "text/plain"), "vendor_record.content_type", "must be")
    for v in _VERBATIM_VENDORS
] + [
    # other sources' records are printed as a string, but JSON ones are still held to strict JSON
    ("CONNLOG NaN", _record(pb.VENDOR_CONNLOG, "[NaN]"), "vendor_record.data", "is not valid JSON"),
    ("CONNLOG big int", _record(pb.VENDOR_CONNLOG, "1" * 25), "vendor_record.data", "outside the int64 range"),
    ("UNSPECIFIED NaN", _record(pb.VENDOR_UNSPECIFIED, '{"a": NaN}', ""), "vendor_record.data", "is not valid JSON"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), [case[1:] for case in POISON], ids=[c[0] for c in POISON])
def test_values_no_shape_can_print_are_refused_naming_the_field(mutate: Mutation, field: str, reason: str) -> None:
    event = simple_event("N_1", when=now() - dt.timedelta(minutes=5))
    mutate(event)
    with pytest.raises(nm.FieldError) as err:
        _normalise(event)
    assert err.value.field == field
    assert reason in err.value.reason


FIT = [
    ("event_data finite extremes", _event_data(_data(a=1.7976931348623157e308, b=-5e-324, c=-0.0, d=2.0**70))),
    ("event_data 20 structs deep", _event_data(deep_struct(20))),
    ("event_data 20 lists deep", _event_data(_data(a=deep_json(19, "[]")))),
    ("event_data many '2' and '*' in text", _event_data(_data(**{f"k{i}": "2*2*2*" for i in range(30)}))),
    ("event_data odd keys", _event_data(_data(**{"\x00": "\x00", "\u2028\ufeff": "\U0010ffff", "": ""}))),
] + [
    (f"{name} longest", _timing(name, _MAX_SECONDS, 999_999_999)) for name in _DURATIONS
] + [
    (f"{name} zero", _timing(name, 0, 0)) for name in _DURATIONS
] + [
    (f"{name} 9999-12-31", _timing(name, 253402300799, 999_999_999)) for name in _TIMES
] + [
    (f"{name} year 1", _timing(name, -62135596800)) for name in _TIMES
] + [
    ("location_id int64 max", _set("location.location_id", str(2**63 - 1))),
    ("location_id zero-padded", _set("location.location_id", "0" * 29 + "1")),
    ("location_id other digits", _set("location.location_id", "١" * 30)),
    ("location_id text", _set("location.location_id", "x" * 30)),
] + [
    (f"{pb.Vendor.Name(v)} {label}", _record(v, data, content_type))
    for v in _VERBATIM_VENDORS
    for label, data, content_type in [
        ("record", json.dumps(_MERAKI_RECORD, indent=3), "application/json"),
        ("int64 bounds", '{"a": 9223372036854775807, "b": -9223372036854775808}', "application/json"),
        ("big floats", '{"a": 1e300, "b": -1.5e19, "c": 9.3e18}', "application/json"),
        ("32 deep", json.dumps(deep_json(32, "{}")), "application/json"),
        ("escaped pair and markup", '{"a": "\\ud83d\\ude00", "b": "<script>"}', "application/json"),
        ("charset", "{}", "application/json; charset=utf-8"),
        ("no content type", "{}", ""),
        ("whitespace", ' \n{"a": 1}\n', "application/json"),
    ]
] + [
    ("CONNLOG markup", _record(pb.VENDOR_CONNLOG, "<b>hi</b>", "text/html")),
    ("CONNLOG JSON array", _record(pb.VENDOR_CONNLOG, "[1, 2]")),
]


@pytest.mark.parametrize("mutate", [case[1] for case in FIT], ids=[c[0] for c in FIT])
def test_values_at_the_bounds_are_accepted(mutate: Mutation) -> None:
    event = simple_event("N_1", when=now() - dt.timedelta(minutes=5))
    mutate(event)
    _normalise(event)


def _json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.text(max_size=4) | st.integers(-(2**53), 2**53)
               | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["2", "*", "22**"]))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=max_leaves)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.text(max_size=3), _json_values(), max_size=4), depth=st.integers(0, 24))
def test_the_event_data_prefilter_agrees_with_the_walk(value: dict[str, Any], depth: int) -> None:
    """The byte-level shortcut never clears a Struct the exact walk refuses."""
    struct = _data(**value)
    if depth:
        struct.fields["deep"].struct_value.CopyFrom(deep_struct(depth))
    assert nm._event_data_problem(struct) == nm._struct_problem(struct)


# --- every other check of one event: the field and the reason ----------------------------------------------------

_DEVICE = Principal("k", "t", 1, Role.DEVICE, "dev-1", "zequenze")


def _clear(path: str) -> Mutation:
    """Clear a dotted field of the event."""
    def apply(e: pb.ConnectionEvent) -> None:
        *parents, name = path.split(".")
        target: Any = e
        for parent in parents:
            target = getattr(target, parent)
        target.ClearField(name)
    return apply


def _occur(delta: dt.timedelta, nanos: int | None = None) -> Mutation:
    def apply(e: pb.ConnectionEvent) -> None:
        e.occur_time.FromDatetime(now() + delta)
        if nanos is not None:
            e.occur_time.nanos = nanos
    return apply


BAD = [
    ("no network", _set("network_id", ""), "network_id", "is required"),
    ("network with a space", _set("network_id", "bad network"), "network_id",
     "must be 1-128 letters, digits or _.:~- starting with a letter or digit"),
    ("network starting with _", _set("network_id", "_N"), "network_id", "must be 1-128"),
    ("network of 129 characters", _set("network_id", "N" * 129), "network_id", "must be 1-128"),
    ("network with a final newline", _set("network_id", "N_1\n"), "network_id", "must be 1-128"),
    ("another tenant", _set("tenant_id", "t-other"), "tenant_id", "does not match the API key's tenant"),
    ("no client id or MAC", _set("client.mac_address", ""), "client", "needs client_id or mac_address"),
    ("MAC not a MAC", _set("client.mac_address", "nope"), "client.mac_address", "'nope' is not a MAC address"),
    ("MAC of five octets", _set("client.mac_address", "f0:d7:aa:df:59"), "client.mac_address", "is not a MAC"),
    ("IP not an IP", _set("client.ip_address", "host"), "client.ip_address", "'host' is not an IP address"),
    ("client id too long", _set("client.client_id", "k" * 129), "client.client_id", "longer than 128 characters"),
    ("client id with NUL", _set("client.client_id", "k\x00"), "client.client_id", "contains a NUL character"),
    ("no occur_time", _clear("occur_time"), "occur_time", "is required"),
    ("older than the retention", _occur(-dt.timedelta(days=32)), "occur_time", "is older than the 31-day retention"),
    ("too far ahead", _occur(dt.timedelta(days=2)), "occur_time", "is too far in the future"),
    ("occur_time nanos", _occur(dt.timedelta(0), nanos=1_000_000_000), "occur_time", "nanos out of range"),
    ("no step", _set("step", 0), "step", "is required"),
    ("unknown step", _set("step", 999), "step", "unknown value 999"),
    ("unknown outcome", _set("outcome", 99), "outcome", "unknown value 99"),
    ("negative severity", _set("severity", -1), "severity", "unknown value -1"),
    ("unknown band", _set("radio.band", 7), "radio.band", "unknown value 7"),
    ("subtype too long", _set("subtype", "s" * 129), "subtype", "longer than 128 characters"),
    ("failure reason with NUL", _set("failure.reason", "a\x00b"), "failure.reason", "contains a NUL character"),
    ("AP name too long", _set("access_point.name", "a" * 257), "access_point.name", "longer than 256 characters"),
    ("channel 0", _set("radio.channel", 0), "radio.channel", "must be 1-233"),
    ("channel 234", _set("radio.channel", 234), "radio.channel", "must be 1-233"),
    ("frequency NaN", _set("radio.frequency_ghz", float("nan")), "radio.frequency_ghz", "must be a finite number"),
    ("frequency 0", _set("radio.frequency_ghz", 0.0), "radio.frequency_ghz", "must be at least 0.001"),
    ("quality -inf", _set("radio.quality_value", float("-inf")), "radio.quality_value", "must be a finite number"),
    ("SSID number 256", _set("wlan.ssid_number", 256), "wlan.ssid_number", "must be 0-255"),
    ("SSID too long", _set("wlan.ssid", "s" * 65), "wlan.ssid", "longer than 64 characters"),
    ("BSSID not a MAC", _set("wlan.bssid", "zz"), "wlan.bssid", "'zz' is not a MAC address"),
    ("latitude 90.5", _set("location.latitude", 90.5), "location.latitude", "must be at least -90 and at most 90"),
    ("longitude -181", _set("location.longitude", -181.0), "location.longitude", "at most 180"),
    ("bytes in negative", _set("traffic.bytes_in", -1), "traffic.bytes_in", "must not be negative"),
    ("MCC-MNC of 2 digits", _set("access_network.mcc_mnc", "31"), "access_network.mcc_mnc", "must be 5 or 6 digits"),
    ("MCC-MNC of 7 digits", _set("access_network.mcc_mnc", "3100121"), "access_network.mcc_mnc", "5 or 6 digits"),
    ("MCC-MNC not digits", _set("access_network.mcc_mnc", "31001a"), "access_network.mcc_mnc", "5 or 6 digits"),
    ("vendor record too large", _record(pb.VENDOR_CONNLOG, "x" * (64 * 1024 + 1), "text/plain"),
     "vendor_record.data", "larger than 65536 bytes"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_events_are_refused_naming_the_field(mutate: Mutation, field: str, reason: str) -> None:
    event = simple_event("N_1", when=now() - dt.timedelta(minutes=5))
    mutate(event)
    with pytest.raises(FieldError) as err:
        _normalise(event)
    assert err.value.field == field
    assert reason in err.value.reason
    assert str(err.value) == f"{field}: {err.value.reason}"


def test_a_device_key_pushes_only_its_own_events() -> None:
    event = simple_event("devices", client_id="dev-1", when=now() - dt.timedelta(minutes=5),
                         source=pb.Source(vendor=pb.VENDOR_ZEQUENZE))
    event.client.reporting_device_id = "dev-2"
    with pytest.raises(FieldError) as err:
        _normalise(event, _DEVICE)
    assert (err.value.field, err.value.reason) == (
        "client.reporting_device_id", "a device key may only push its own device's events")


# --- good events: the columns they are stored under ---------------------------------------------------------------

_WHEN = (now() - dt.timedelta(hours=1)).replace(microsecond=0)
_BASE = {"network_id": "N_1", "occurred_at": _WHEN, "step": pb.CONNECTION_STEP_ASSOCIATION, "outcome": 0,
         "severity": 0, "band": 0, "vendor": pb.VENDOR_CONNLOG, "client_mac": "f0:d7:aa:df:59:a2", "client_id": None,
         "ssid": None, "ssid_number": None, "ap_serial": None, "ap_name": None, "bssid": None, "failure_code": None}


def _nanos(n: int) -> Mutation:
    return lambda e: setattr(e.occur_time, "nanos", n)


def _all(*mutations: Mutation) -> Mutation:
    def apply(e: pb.ConnectionEvent) -> None:
        for mutate in mutations:
            mutate(e)
    return apply


GOOD = [
    ("the simplest event", lambda e: None, {}),
    ("vendor unspecified is connlog", _set("source.vendor", pb.VENDOR_UNSPECIFIED), {}),
    ("a vendor kept", _set("source.vendor", pb.VENDOR_MERAKI), {"vendor": pb.VENDOR_MERAKI}),
    ("upper-case MAC", _set("client.mac_address", "F0-D7-AA-DF-59-A2"), {}),
    ("Cisco-dotted MAC", _set("client.mac_address", "f0d7.aadf.59a2"), {}),
    ("client id only", _all(_set("client.mac_address", ""), _set("client.client_id", "k1")),
     {"client_mac": None, "client_id": "k1"}),
    ("client id and MAC", _set("client.client_id", "k1"), {"client_id": "k1"}),
    ("nanoseconds cut to microseconds", _nanos(123_456_789), {"occurred_at": _WHEN.replace(microsecond=123456)}),
    ("microseconds kept", _nanos(999_999_000), {"occurred_at": _WHEN.replace(microsecond=999999)}),
    ("outcome, severity, band", _all(_set("outcome", pb.OUTCOME_FAILURE), _set("severity", pb.SEVERITY_BAD),
                                     _set("radio.band", pb.BAND_6_GHZ)),
     {"outcome": pb.OUTCOME_FAILURE, "severity": pb.SEVERITY_BAD, "band": pb.BAND_6_GHZ}),
    ("SSID and its number", _all(_set("wlan.ssid", "corp"), _set("wlan.ssid_number", 3)),
     {"ssid": "corp", "ssid_number": 3}),
    ("SSID number 0 is a value", _set("wlan.ssid_number", 0), {"ssid_number": 0}),
    ("BSSID normalised", _set("wlan.bssid", "00-11-74-88-AF-60"), {"bssid": "00:11:74:88:af:60"}),
    ("access point", _all(_set("access_point.serial", "Q2XX-1"), _set("access_point.name", "lobby")),
     {"ap_serial": "Q2XX-1", "ap_name": "lobby"}),
    ("failure code", _set("failure.code", 8), {"failure_code": 8}),
    ("failure code 0 is a value", _set("failure.code", 0), {"failure_code": 0}),
    ("failure without a code", _set("failure.reason", "timeout"), {}),
    ("network id at its longest", _set("network_id", "N" * 128), {"network_id": "N" * 128}),
]


@pytest.mark.parametrize(("mutate", "columns"), [case[1:] for case in GOOD], ids=[c[0] for c in GOOD])
def test_good_events_are_stored_under_normalised_columns(mutate: Mutation, columns: dict[str, Any]) -> None:
    event = simple_event("N_1", when=_WHEN)
    mutate(event)
    stored = _normalise(event)
    got = stored._asdict()
    del got["dedup_key"], got["payload"]
    assert got == _BASE | columns
    assert len(stored.dedup_key) == 16


def test_a_full_event_is_normalised() -> None:
    when = now() - dt.timedelta(hours=1)
    event = full_event(when)
    stored = _normalise(event)
    assert stored._asdict() | {"dedup_key": None, "payload": None} == {
        "network_id": "N_784752235069315754", "occurred_at": when.replace(microsecond=90210), "dedup_key": None,
        "step": pb.CONNECTION_STEP_AUTHENTICATION, "outcome": pb.OUTCOME_FAILURE, "severity": pb.SEVERITY_BAD,
        "band": pb.BAND_5_GHZ, "vendor": pb.VENDOR_MOJO, "client_mac": "f0:d7:aa:df:59:a2", "client_id": "k74272e",
        "ssid": "WebAppsDev", "ssid_number": 3, "ap_serial": "Q234-ABCD-5678", "ap_name": "Mojo_88:AF:8F",
        "bssid": "00:11:74:88:af:60", "failure_code": 8, "payload": None,
    }
    payload = pb.ConnectionEvent.FromString(stored.payload)
    # what the columns hold is left out of the payload, and so are the server's own fields
    for message, name in [(payload, "network_id"), (payload.client, "client_id"), (payload.client, "mac_address"),
                          (payload.wlan, "ssid"), (payload.wlan, "bssid"), (payload.access_point, "serial"),
                          (payload.access_point, "name"), (payload, "name"), (payload, "event_id"),
                          (payload, "tenant_id")]:
        assert getattr(message, name) == "", name
    assert not payload.HasField("receive_time")
    # the rest is kept, normalised
    assert payload.client.ip_address == "10.0.0.17"
    assert payload.radio.protocol == "AC"
    assert payload.source.vendor_event_id == "mojo-123"
    assert payload.failure.code == 8 and payload.wlan.ssid_number == 3
    assert payload.occur_time.ToDatetime(tzinfo=dt.UTC) == when.replace(microsecond=90210)


def test_a_device_key_stamps_its_device() -> None:
    event = simple_event("devices", client_id="dev-1", when=now() - dt.timedelta(minutes=5),
                         source=pb.Source(vendor=pb.VENDOR_ZEQUENZE))
    stored = _normalise(event, _DEVICE)
    assert pb.ConnectionEvent.FromString(stored.payload).client.reporting_device_id == "dev-1"


@pytest.mark.parametrize(("first", "second", "same"), [
    pytest.param({}, {}, True, id="same content"),
    pytest.param({}, {"subtype": "other"}, False, id="other content"),
    pytest.param({"source": pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="e1")},
                 {"source": pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="e1"), "subtype": "other"}, True,
                 id="same vendor event id, other content"),
    pytest.param({"source": pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="e1")},
                 {"source": pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="e2")}, False, id="other vendor event id"),
    pytest.param({"source": pb.Source(vendor=pb.VENDOR_MOJO, vendor_event_id="e1")},
                 {"source": pb.Source(vendor=pb.VENDOR_MERAKI, vendor_event_id="e1")}, False,
                 id="same id from another vendor"),
    pytest.param({"mac": "F0-D7-AA-DF-59-A2"}, {"mac": "f0:d7:aa:df:59:a2"}, True, id="MAC spelled differently"),
])
def test_duplicates_share_a_dedup_key(first: dict[str, Any], second: dict[str, Any], same: bool) -> None:
    a = _normalise(simple_event("N_1", when=_WHEN, **first))
    b = _normalise(simple_event("N_1", when=_WHEN, **second))
    assert (a.dedup_key == b.dedup_key) is same


# --- the generated field checks cover every field of the schema ---------------------------------------------------

def _checked_fields(plan: dict) -> list[tuple[str, Any]]:
    """(path, _Check) of every field the generic checks look at, at any depth."""
    fields = []
    for check in plan.values():
        if check.kind == nm._NESTED:
            fields += _checked_fields(check.nested) if check.nested is not None else []
        elif check.kind != nm._NUMBER or check.finite or check.bounds:
            fields.append((check.path, check))
    return fields


_CHECKED = _checked_fields(nm._plan(pb.ConnectionEvent.DESCRIPTOR))


def _failing_values(check) -> list[tuple[object, str]]:
    """Values ``check`` refuses, with the reason given."""
    if check.kind == nm._TEXT:
        return [("x" * (check.limit + 1), f"longer than {check.limit} characters"),
                ("a\x00b", "contains a NUL character")]
    if check.kind == nm._CHOICE:
        return [(999, "unknown value 999")]
    not_finite = "must be a finite number"
    values = [(float("nan"), not_finite), (float("inf"), not_finite)] if check.finite else []
    if check.bounds:
        low, high, reason = check.bounds
        values += ([(low - 1, reason)] if low is not None else []) + ([(high + 1, reason)] if high is not None else [])
    return values


def _set_path(event: pb.ConnectionEvent, path: str, value: object) -> None:
    *parents, name = path.split(".")
    message = event
    for part in parents:
        message = getattr(message, part)
    setattr(message, name, value)


@pytest.mark.parametrize(("path", "value", "reason"), [
    (path, value, reason) for path, check in _CHECKED for value, reason in _failing_values(check)],
    ids=lambda v: repr(v)[:30])
def test_every_checked_field_of_the_schema_refuses_what_it_must(path, value, reason):
    event = full_event()
    nm.check_fields(event)  # every field set, each valid
    _set_path(event, path, value)
    with pytest.raises(FieldError) as err:
        nm.check_fields(event)
    assert (err.value.field, err.value.reason) == (path, reason)


def test_the_checks_cover_every_string_enum_and_ranged_number_of_the_schema():
    paths = {path for path, _ in _CHECKED}
    assert {"client.client_id", "radio.band", "radio.channel", "location.latitude", "traffic.bytes_in",
            "access_network.cell_id", "auto_test.status"} <= paths
    assert len(paths) == len(_CHECKED) > 40
