"""Normalisation helpers (no database)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.auth import Principal, Role
from connlog.ingest import normalise as nm
from connlog.ingest.normalise import FieldError, _ip
from tests.factories import deep_json, deep_struct, now, simple_event


@pytest.mark.parametrize(("text", "canonical"), [
    ("10.0.0.17", "10.0.0.17"), (" 10.0.0.17 ", "10.0.0.17"), ("0.0.0.0", "0.0.0.0"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
])
def test_ip_addresses_are_canonical(text, canonical):
    assert _ip(text) == canonical


@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3", "256.1.1.1", "0x1.2.3.4", "1.2.3.4\x00", "١.2.3.4", "host", ""])
def test_bad_ip_addresses_name_the_field(text):
    with pytest.raises(FieldError) as err:
        _ip(text)
    assert err.value.field == "client.ip_address"


async def test_worker_processes_normalise_like_the_service_process():
    """The worker path (spawned processes, serialized batches) gives the
    same stored rows and rejections as normalising in-process."""
    import datetime as dt

    from connlog.core.auth import Principal, Role
    from connlog.ingest.normalise import IngestWindow
    from connlog.ingest.workers import NormaliserPool, normalise_events
    from tests.factories import now, simple_event

    events = [simple_event("N_w", mac=f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}", when=now() - dt.timedelta(seconds=i))
              for i in range(300)]
    events[7].client.mac_address = "nope"
    events[200].network_id = "bad network"
    principal = Principal("k", "t", 1, Role.OPERATOR, None)
    window = IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    pool = NormaliserPool(1)
    try:
        await pool.start()
        remote = await pool.normalise(events, principal, window)
    finally:
        pool.close()
    local = normalise_events(events, principal, window, {})
    assert remote == local
    assert [(p, f) for p, f, _ in remote[1]] == [(7, "client.mac_address"), (200, "network_id")]
    assert len(remote[0]) == 298


# --- values no shape could print: refused at ingest, the field named ---------------------------------------------

_PRINCIPAL = Principal("k", "t", 1, Role.OPERATOR, None)
_MERAKI_RECORD = {"occurredAt": "2018-02-11T00:00:00.090210Z", "band": "5", "ssidNumber": 1, "type": "auth",
                  "subtype": "success", "severity": "bad", "durationMs": 100, "channel": 44, "rssi": 80,
                  "deviceSerial": "Q234-ABCD-5678", "captureId": "123456"}
_VERBATIM_VENDORS = [pb.VENDOR_MERAKI, pb.VENDOR_MOJO, pb.VENDOR_ZEQUENZE]


def _normalise(event: pb.ConnectionEvent):
    window = nm.IngestWindow(now() - dt.timedelta(days=31), now() + dt.timedelta(days=1), 31)
    return nm.normalise(event, _PRINCIPAL, window, {})


def _data(**values) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def _record(vendor: int, data: str, content_type: str = "application/json"):
    def apply(e):
        e.source.vendor = vendor
        e.vendor_record.content_type = content_type
        e.vendor_record.data = data
    return apply


def _set(path: str, value):
    """Set a dotted field of the event."""
    def apply(e):
        *parents, name = path.split(".")
        target = e
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return apply


def _timing(name: str, seconds: int, nanos: int = 0):
    """Set a timing Duration or Timestamp."""
    def apply(e):
        getattr(e.timing, name).seconds = seconds
        getattr(e.timing, name).nanos = nanos
    return apply


def _event_data(struct: struct_pb2.Struct):
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
def test_values_no_shape_can_print_are_refused_naming_the_field(mutate, field, reason):
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
def test_values_at_the_bounds_are_accepted(mutate):
    event = simple_event("N_1", when=now() - dt.timedelta(minutes=5))
    mutate(event)
    _normalise(event)


def _json_values(max_leaves: int = 12):
    scalars = (st.none() | st.booleans() | st.text(max_size=4) | st.integers(-(2**53), 2**53)
               | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["2", "*", "22**"]))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=max_leaves)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.text(max_size=3), _json_values(), max_size=4), depth=st.integers(0, 24))
def test_the_event_data_prefilter_agrees_with_the_walk(value, depth):
    """The byte-level shortcut never clears a Struct the exact walk refuses."""
    struct = _data(**value)
    if depth:
        struct.fields["deep"].struct_value.CopyFrom(deep_struct(depth))
    assert nm._event_data_problem(struct) == nm._struct_problem(struct)
