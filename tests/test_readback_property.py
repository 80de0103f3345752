"""Whatever connlog accepts it can read back, through every shape.

Hypothesis generates batches of ConnectionEvents across all fields (a
strategy built from the message descriptors, biased to edge values: int32 and
int64 extremes, non-finite and extreme floats, long and odd unicode text with
NUL, extreme timestamps and durations, random JSON in ``event_data`` and
``vendor_record``, every vendor and unknown ones) and ingests each batch
through the real ingest gRPC service into a fresh tenant. Every rejected event
must name its field; every accepted one must read back, with a 200 that parses
as strict JSON (no NaN/Infinity, no lone surrogates, integers within int64)
and contains the event, through:

* gRPC ``GetConnectionEvent`` and ``ListConnectionEvents`` (its network, and
  tenant-wide ``networks/-``);
* canonical ``/v1`` REST through the Envoy gateway (get, and the tenant-wide list);
* Meraki's ``connectivityEvents`` through the gateway (by client MAC, or id);
* Mojo's ``connectionlogs`` through the gateway (by client MAC).

Explicit examples pin every known poison class (they must be refused) and the
largest printable values (they must read back), so a broken check fails the
run whatever the random examples are.

Examples: ``CONNLOG_FUZZ_EXAMPLES`` (default 50, derandomized so CI runs the
same examples every time). Setting it (e.g. ``CONNLOG_FUZZ_EXAMPLES=1000``)
also draws fresh random examples each run, unless ``CONNLOG_FUZZ_DERANDOMIZE=1``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
from urllib.parse import quote

import httpx
import orjson
import pytest
from google.protobuf import duration_pb2, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import ingest_service_pb2 as ipb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.core.identifiers import normalise_mac
from connlog.ingest import normalise as nm
from connlog.shapes.meraki.projection import STEP_TO_TYPE, occurred_at_text
from tests.support.factories import deep_json, deep_struct, simple_event

EXAMPLES = int(os.environ.get("CONNLOG_FUZZ_EXAMPLES", "50"))
DERANDOMIZE = "CONNLOG_FUZZ_EXAMPLES" not in os.environ or os.environ.get("CONNLOG_FUZZ_DERANDOMIZE") == "1"
MERAKI_PATH = "/api/v1/networks/{net}/wireless/clients/{client}/connectivityEvents"
MOJO_PATH = "/V5/devices/clients/connectionlogs"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_TYPE = FieldDescriptor

# ------------------------------------------------------------------ strategies
# Each field draws a typical valid value most of the time and an edge value
# (an extreme that is still valid, or one normalise must refuse) otherwise, so
# that a good share of events, each with several edges, are accepted.


RARE, OFTEN = 24, 3  # odds of a valid value: plain fields, and the fields this test is about


def _mostly(valid, edge, odds: int = RARE):
    """``valid`` about ``odds`` times in ``odds + 1``, else ``edge``."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda ok: valid if ok else edge)


TEXT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00") | st.sampled_from(
    ["\u2028", "\ufeff", "\ufffe", "\U0010ffff", "<", ">", '"', "\\", "/", "%", "é", "\u0663", "\u00b2"])
ODD_TEXT = st.text(TEXT_CHARS, max_size=24)  # any unicode protobuf holds (no surrogates), but NUL
NUL_TEXT = st.builds(lambda a, b: a + "\x00" + b, ODD_TEXT, ODD_TEXT)
NICE_TEXT = st.text("abcXYZ019 -_.:~", min_size=1, max_size=16)


def _text(path: str):
    limit = nm._TEXT_LIMITS.get(path, nm.MAX_TEXT)
    return _mostly(NICE_TEXT | ODD_TEXT,
                   st.sampled_from(["x" * limit, "\U0010ffff" * limit, "y" * (limit + 1)]) | NUL_TEXT)


def _integers(low: int, high: int, path: str):
    bounds = nm._RANGES.get(path)
    lo = low if not bounds or bounds[0] is None else max(low, math.ceil(bounds[0]))
    hi = high if not bounds or bounds[1] is None else min(high, math.floor(bounds[1]))
    edges = [v for v in {low, high, -1, 0, 1, lo, hi, lo - 1, hi + 1} if low <= v <= high]
    return _mostly(st.integers(lo, hi), st.sampled_from(sorted(edges)) | st.integers(low, high))


def _doubles(path: str):
    bounds = nm._RANGES.get(path)
    lo, hi = (bounds[0], bounds[1]) if bounds else (-1.7976931348623157e308, 1.7976931348623157e308)
    edges = st.sampled_from([lo, hi, 0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1e19, 2.0**63,
                             float("nan"), float("inf"), float("-inf")])
    return _mostly(st.floats(lo, hi, allow_nan=False), edges | st.floats())


def _enum(descriptor: FieldDescriptor):
    values = [v.number for v in descriptor.enum_type.values]
    return _mostly(st.sampled_from(values), st.sampled_from([-1, max(values) + 1, INT32[1], INT32[0]]))


def _now() -> int:
    return int(time.time())


def _stamp(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


# Timestamps: recent (inside the retention; ingest refuses the rest, Meraki
# and Mojo read back 21 days), or an edge. Seconds are drawn as an age, so the
# clock is read when the example runs.
VALID_NANOS = st.integers(0, 999_999_999) | st.sampled_from([0, 999_999_999])
NANOS = _mostly(VALID_NANOS, st.sampled_from([0, 999_999_999, 1_000_000_000, -1, INT32[0], INT32[1]]), OFTEN)
RECENT = st.builds(lambda ago, nanos: _stamp(_now() - ago, nanos), st.integers(60, 20 * 86400), VALID_NANOS)
TIME_EDGES = st.builds(_stamp, st.sampled_from([0, -1, -62135596800, -62135596801, 253402300799, 253402300800,
                                                INT64[0], INT64[1]]), NANOS)
FAR_TIMES = st.builds(lambda ahead, nanos: _stamp(_now() + ahead, nanos),
                      st.sampled_from([2 * 86400, 10 * 365 * 86400, -40 * 86400]), NANOS)
OCCUR_TIMES = _mostly(RECENT, TIME_EDGES | FAR_TIMES)
TIMESTAMPS = _mostly(RECENT | st.builds(_stamp, st.sampled_from([-62135596800, 253402300799, 0, -1]), VALID_NANOS),
                     TIME_EDGES | FAR_TIMES, OFTEN)


def _duration(seconds: int, nanos: int) -> duration_pb2.Duration:
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):  # protobuf refuses mixed signs to set
        nanos = -nanos if abs(nanos) <= 999_999_999 else 0
    return duration_pb2.Duration(seconds=seconds, nanos=nanos)


DURATIONS = _mostly(
    st.builds(_duration, st.integers(0, 3600) | st.just(nm.MAX_DURATION_SECONDS), st.integers(0, 999_999_999)),
    st.builds(_duration, st.sampled_from([0, 1, nm.MAX_DURATION_SECONDS, nm.MAX_DURATION_SECONDS + 1,
                                          INT64[1] // 1000, INT64[1], -1, INT64[0]]), NANOS), OFTEN)

FINITE_SCALARS = st.one_of(st.none(), st.booleans(), NICE_TEXT, ODD_TEXT, st.integers(-(2**53), 2**53),
                           st.floats(allow_nan=False, allow_infinity=False))
ANY_SCALARS = FINITE_SCALARS | NUL_TEXT | st.sampled_from(
    [INT64[0], INT64[1], 2**63, 2**64, -(2**63) - 1, 10**30, float("nan"), float("inf"), -0.0, 1e300, 5e-324])


def _json(scalars):
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(NICE_TEXT | ODD_TEXT, inner, max_size=3), max_leaves=10)


FINITE_JSON, ANY_JSON = _json(FINITE_SCALARS), _json(ANY_SCALARS)


def _struct_of(values: dict, extra: str | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    try:
        out.update(values)
    except (ValueError, TypeError, OverflowError):  # what a Struct cannot hold at all
        out = struct_pb2.Struct()
    if extra == "deep":
        out.fields["deep"].struct_value.CopyFrom(deep_struct(19))
    elif extra == "deeper":
        out.fields["deep"].struct_value.CopyFrom(deep_struct(21))
    elif extra == "empty":  # a Value with no kind: Envoy leaves the key out, Meraki prints null
        out.fields["empty"].SetInParent()
    return out


# event_data: random JSON; the edges have non-finite numbers, deep nesting, a Value of no kind
STRUCTS = _mostly(
    st.builds(_struct_of, st.dictionaries(NICE_TEXT | ODD_TEXT, FINITE_JSON, max_size=4), st.none()),
    st.builds(_struct_of, st.dictionaries(NICE_TEXT | ODD_TEXT, ANY_JSON, max_size=4),
              st.sampled_from([None, "deep", "deeper", "empty"])), OFTEN)

MERAKI_RECORD = {"occurredAt": "2018-02-11T00:00:00.090210Z", "band": "5", "ssidNumber": 1, "type": "auth",
                 "subtype": "success", "severity": "bad", "durationMs": 100, "channel": 44, "rssi": 80,
                 "deviceSerial": "Q234-ABCD-5678", "captureId": "123456", "eventData": {"aid": "2104009183"}}
MOJO_RECORD = {"macAddress": "f0:d7:aa:df:59:a2", "protocol": "A", "locationId": {"type": "locallocationid", "id": 95},
               "eventType": "Success", "bssid": "00:11:74:88:af:60", "channel": 157, "timestamp": 1495010943,
               "autoTestSessionId": None, "dhcpLatency": 22}


def _dumps(value, indent, ascii_only: bool = True) -> str:
    try:  # allow_nan: NaN, Infinity; ensure_ascii: lone surrogates as \udxxx escapes
        return json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    except (ValueError, TypeError):
        return "{}"


def _vendor_record(base: dict, extra: dict, indent, ascii_only: bool) -> str:
    return _dumps(dict(base, **extra), indent, ascii_only)


# vendor_record.data: a vendor's record (with random extra keys), or an edge:
# any JSON (NaN, Infinity, big integers, lone surrogates), markup, garbage, nesting
RECORD_TEXTS = _mostly(
    st.just("") | st.builds(_vendor_record, st.sampled_from([MERAKI_RECORD, MOJO_RECORD, {}]),
              st.dictionaries(NICE_TEXT | ODD_TEXT, FINITE_JSON, max_size=2), st.sampled_from([None, 3]),
              st.booleans()),
    st.builds(_vendor_record, st.sampled_from([MERAKI_RECORD, MOJO_RECORD]),
              st.dictionaries(NICE_TEXT, ANY_JSON, max_size=2), st.sampled_from([None, 1]), st.just(True))
    | st.builds(_dumps, ANY_JSON, st.sampled_from([None, 1]))
    | st.sampled_from([
        "", "<html><script>alert(1)</script></html>", '{"a": 1} <b>', '{"a": 1}, {"b": 2}', '\ufeff{}',
        '{"a": "\\ud800"}', '{"id": 123456789012345678901234567890}', '{"a": 9223372036854775807}', " {} ",
        json.dumps(deep_json(32, "{}")), json.dumps(deep_json(33, "{}")), "[" * 1100 + "]" * 1100, "null",
        '{"a": NaN}', '{"a": 1e400}', "\x00", '{"a": -9223372036854775809}']), OFTEN)
VENDOR_RECORDS = st.builds(
    lambda content_type, data: pb.VendorRecord(content_type=content_type, data=data),
    _mostly(st.sampled_from(["application/json", ""]),
            st.sampled_from(["application/json; charset=utf-8", "APPLICATION/JSON", "text/html", "text/plain"]), OFTEN),
    RECORD_TEXTS)

VALID_MACS = st.sampled_from(["f0:d7:aa:df:59:a2", "F0-D7-AA-DF-59-A2", "f0d7.aadf.59a2", "02:00:00:00:00:01",
                              "02:AA:BB:CC:DD:0E"])
OVERRIDES = {
    "name": st.sampled_from(["", "networks/x/connectionEvents/1"]),
    "event_id": st.sampled_from(["", "999"]),
    "tenant_id": _mostly(st.just(""), st.just("someone-else")),
    "network_id": _mostly(st.sampled_from(["N_1", "N_784752235069315754", "net.a:b~c-d", "L_9"]),
                          st.sampled_from(["", "-x", "a/b", "x" * 129]) | ODD_TEXT),
    "client.mac_address": _mostly(VALID_MACS, st.sampled_from(["", "", "nope", "02:00:00:00:00"])),
    "client.client_id": _mostly(st.sampled_from(["k74272e", "client-7", "02:00:00:00:00:01"]),
                                _text("client.client_id")),
    "client.ip_address": _mostly(st.sampled_from(["10.0.0.17", "2001:DB8::1", "::ffff:10.0.0.1"]),
                                 st.sampled_from(["010.0.0.1", "host", "1.2.3.4\x00"])),
    "client.reporting_device_id": st.sampled_from(["", "DEV-1"]),
    "wlan.bssid": _mostly(st.sampled_from(["00:11:74:88:AF:60", "001174.88af60"]), st.just("bad")),
    "access_network.mcc_mnc": _mostly(st.sampled_from(["310012", "31001"]), st.sampled_from(["3100", "abcdef"])),
    "location.location_id": _mostly(st.sampled_from(["95", "loc-1", str(INT64[1]), "0" * 29 + "1", "-5"]) | NICE_TEXT,
                                    st.sampled_from([str(2**63), "1" * 30, "\u0663" * 25, "\u00b2"]), OFTEN),
    "occur_time": OCCUR_TIMES,
    "step": _mostly(st.sampled_from([s for s in pb.ConnectionStep.values() if s]), st.sampled_from([0, 10, -1])),
    "event_data": STRUCTS,
    "vendor_record": VENDOR_RECORDS,
    "source.vendor": _mostly(st.sampled_from([pb.VENDOR_UNSPECIFIED, pb.VENDOR_CONNLOG, pb.VENDOR_ZEQUENZE,
                                              pb.VENDOR_MERAKI, pb.VENDOR_MOJO]), st.just(77)),
}
# always set: what ingest requires, and the source and record the vendor shapes turn on
REQUIRED = {"network_id", "client", "occur_time", "step", "client.mac_address", "source", "source.vendor",
            "vendor_record"}


def _field(descriptor: FieldDescriptor, path: str):
    if path in OVERRIDES:
        return OVERRIDES[path]
    kind = descriptor.type
    if kind == _TYPE.TYPE_STRING:
        return _text(path)
    if kind == _TYPE.TYPE_ENUM:
        return _enum(descriptor)
    if kind == _TYPE.TYPE_INT32:
        return _integers(*INT32, path)
    if kind == _TYPE.TYPE_INT64:
        return _integers(*INT64, path)
    if kind in (_TYPE.TYPE_DOUBLE, _TYPE.TYPE_FLOAT):
        return _doubles(path)
    if kind == _TYPE.TYPE_BOOL:
        return st.booleans()
    if kind == _TYPE.TYPE_MESSAGE:
        full_name = descriptor.message_type.full_name
        if full_name == "google.protobuf.Timestamp":
            return TIMESTAMPS
        if full_name == "google.protobuf.Duration":
            return DURATIONS
        return messages(descriptor.message_type, path + ".")
    raise AssertionError(f"no strategy for {path}")


def messages(descriptor, prefix: str = ""):
    """Messages of ``descriptor`` with any of its fields set (the event's
    required ones always), each drawn from its field's strategy."""
    cls = message_factory.GetMessageClass(descriptor)
    strategies = {d.name: _field(d, prefix + d.name) for d in descriptor.fields}
    required = {name: s for name, s in strategies.items() if prefix + name in REQUIRED}
    optional = {name: s for name, s in strategies.items() if prefix + name not in REQUIRED}
    kinds = {d.name: d.type for d in descriptor.fields}

    def build(values: dict):
        message = cls()
        for name, value in values.items():
            if kinds[name] == _TYPE.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries(required, optional=optional).map(build)


EVENTS = messages(pb.ConnectionEvent.DESCRIPTOR)
BATCHES = st.lists(EVENTS, min_size=1, max_size=6)

# ------------------------------------------------------------- explicit examples


def _recent(**fields) -> pb.ConnectionEvent:
    """An event of client 02:00:00:00:00:01 in N_1 an hour ago, with ``fields``."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return simple_event("N_1", mac="02:00:00:00:00:01", when=when, **fields)


def _struct(**values) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def _record(vendor: int, data: str, content_type: str = "application/json") -> dict:
    return {"source": pb.Source(vendor=vendor), "vendor_record": pb.VendorRecord(content_type=content_type, data=data)}


def _timing(**fields) -> dict:
    return {"timing": pb.ConnectionTiming(**fields)}


FAR = nm.MAX_DURATION_SECONDS
POISONS = [  # each must be refused: accepted, it makes reads of its client (or the tenant) fail
    _recent(event_data=_struct(a=float("nan"))),
    _recent(event_data=_struct(a=[float("-inf")])),
    _recent(event_data=deep_struct(21)),
    _recent(event_data=deep_struct(33)),  # Envoy's transcoder refuses a list page holding it
    _recent(**_timing(duration=duration_pb2.Duration(seconds=FAR + 1))),
    _recent(**_timing(dns_latency=duration_pb2.Duration(seconds=INT64[1]))),
    _recent(**_timing(aaa_latency=duration_pb2.Duration(seconds=1, nanos=1_500_000_000))),
    _recent(**_timing(network_time=timestamp_pb2.Timestamp(seconds=253402300800))),
    _recent(location=pb.Location(location_id="1" * 30, location_type="locallocationid")),
    _recent(**_record(pb.VENDOR_MERAKI, '{"type": "auth", "rssi": NaN}')),
    _recent(**_record(pb.VENDOR_MERAKI, "<html><script>alert(1)</script></html>", "text/html")),
    _recent(**_record(pb.VENDOR_MERAKI, '[{"type": "auth"}]')),
    _recent(**_record(pb.VENDOR_MOJO, '{"locationId": {"id": 123456789012345678901234567890}}')),
    _recent(**_record(pb.VENDOR_MOJO, '{"ssid": "\\udc00"}')),
    _recent(**_record(pb.VENDOR_MOJO, '{"a": 1}, {"b": 2}')),
    _recent(**_record(pb.VENDOR_MOJO, '{"autoTestSessionId": 9223372036854775808}')),  # orjson reads it as an int
    _recent(**_record(pb.VENDOR_MOJO, '{"k":' * 1023 + "1" + "}" * 1023)),  # a page of it is too deep for orjson
    _recent(**_record(pb.VENDOR_MERAKI, '{"type": "auth"}', "text/plain")),
]
EXTREMES = [  # the largest printable values: each must be accepted and read back
    _recent(**_timing(duration=duration_pb2.Duration(seconds=FAR, nanos=999_999_999),
                      dhcp_latency=duration_pb2.Duration(seconds=FAR),
                      association_time=timestamp_pb2.Timestamp(seconds=253402300799, nanos=999_999_000),
                      network_time=timestamp_pb2.Timestamp(seconds=-62135596800)),
            outcome=pb.OUTCOME_SUCCESS),
    _recent(location=pb.Location(location_id=str(INT64[1])), auto_test=pb.AutoTest(session_id=INT64[0],
                                                                                   status_code=INT32[1]),
            failure=pb.Failure(code=INT32[0], sub_code=INT32[1]), outcome=pb.OUTCOME_FAILURE,
            traffic=pb.Traffic(bytes_in=INT64[1])),
    _recent(event_data=_struct(a=1.7976931348623157e308, b=-5e-324, deep=deep_json(18, "[]")),
            step=pb.CONNECTION_STEP_AUTHENTICATION),
    _recent(**_record(pb.VENDOR_MERAKI, json.dumps(dict(MERAKI_RECORD, big=INT64[1], small=INT64[0]), indent=2))),
    _recent(**_record(pb.VENDOR_MOJO, json.dumps(dict(MOJO_RECORD, ssid="\U0001f600<script>"), ensure_ascii=True))),
    _recent(**_record(pb.VENDOR_ZEQUENZE, '{"network_name": "x", "network_type": "wi"}')),
]

# ------------------------------------------------------------- reading back


def _refuse(constant: str):
    raise ValueError(f"not strict JSON: {constant}")


def _int64(text: str) -> int:
    value = int(text)
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"integer outside int64: {text}")
    return value


def strict_json(response: httpx.Response):
    """The body as strict JSON: a 200, UTF-8, no NaN/Infinity, no lone
    surrogates (orjson refuses them), integers within int64."""
    assert response.status_code == 200, (response.request.url, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    orjson.loads(response.content)
    return json.loads(response.content, parse_constant=_refuse, parse_int=_int64)


async def _all_pages(call, request) -> list[pb.ConnectionEvent]:
    events = []
    while True:
        reply = await call(request)
        events.extend(reply.connection_events)
        if not reply.next_page_token:
            return events
        request.page_token = reply.next_page_token


def _expected_meraki(event: pb.ConnectionEvent) -> dict:
    timing = event.timing
    duration = timing.duration
    return {
        "occurredAt": occurred_at_text(event.occur_time.ToDatetime(tzinfo=dt.UTC)),
        "type": STEP_TO_TYPE.get(event.step),
        "durationMs": duration.seconds * 1000 + duration.nanos // 1_000_000 if timing.HasField("duration") else None,
        "eventData": MessageToDict(event.event_data) if event.HasField("event_data") else None,
    }


def _expected_mojo(event: pb.ConnectionEvent) -> dict:
    timing, location = event.timing, event.location
    ident = location.location_id
    location_id = None
    if event.HasField("location") and (ident or location.location_type):
        location_id = {"type": location.location_type or None,
                       "id": int(ident) if ident.isdigit() and ident.isascii() else (ident or None)}
    ms = timing.association_time
    return {
        "timestamp": event.occur_time.seconds,
        "eventType": "Failure" if event.outcome == pb.OUTCOME_FAILURE else "Success",
        "locationId": location_id,
        "associationTimestamp": ms.seconds * 1000 + ms.nanos // 1_000_000 if timing.HasField("association_time")
        else None,
        "autoTestSessionId": event.auto_test.session_id if event.auto_test.HasField("session_id") else None,
    }


def _contains(body: list, content: bytes, event: pb.ConnectionEvent, vendor: int, expected: dict) -> bool:
    """The event is in a vendor page: its record verbatim if it came from
    that vendor with one, else an element projecting its fields."""
    if event.source.vendor == vendor and event.vendor_record.data:
        return event.vendor_record.data.encode() in content
    return any(isinstance(item, dict) and all(item.get(k) == v for k, v in expected.items()) for item in body)


_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def check_readback(clients, http: httpx.AsyncClient, tenant, events: list[pb.ConnectionEvent],
                         note=lambda text: None) -> int:
    """Ingest ``events``; every rejected one names its field, every accepted
    one reads back through every shape. Returns how many were accepted."""
    sent = [pb.ConnectionEvent.FromString(e.SerializeToString()) for e in events]  # the server gets its own copies
    reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=events),
                                                        metadata=tenant.md())
    assert len(reply.results) == len(sent)
    accepted: dict[str, pb.ConnectionEvent] = {}
    for sent_event, result in zip(sent, reply.results, strict=True):
        if result.status == ipb.INGEST_STATUS_REJECTED:
            assert result.field and result.reason, result
            note(f"rejected: {result.field}")  # (--hypothesis-show-statistics)
        else:
            assert result.name, result
            if result.status == ipb.INGEST_STATUS_ACCEPTED:
                accepted[result.name] = sent_event
                vendor = sent_event.source.vendor
                note(f"accepted: {pb.Vendor.Name(vendor) if vendor in (2, 3, 4) else 'other'}"
                     f"{' with record' if sent_event.vendor_record.data else ''}")
    if not accepted:
        return 0
    md = tenant.md("viewer")
    bearer = {"Authorization": f"Bearer {tenant.keys['viewer']}"}

    # gRPC: get each, list its network by client, list the tenant
    for name, event in accepted.items():
        got = await clients.query.GetConnectionEvent(qpb.GetConnectionEventRequest(name=name), metadata=md)
        assert got.name == name
        assert got.event_data == event.event_data and got.vendor_record.data == event.vendor_record.data
        assert got.step == event.step and got.occur_time.seconds == event.occur_time.seconds
    tenant_wide = await _all_pages(lambda r: clients.query.ListConnectionEvents(r, metadata=md),
                                   qpb.ListConnectionEventsRequest(parent="networks/-", page_size=1000))
    assert set(accepted) <= {e.name for e in tenant_wide}
    for network in {e.network_id for e in accepted.values()}:
        listed = await _all_pages(lambda r: clients.query.ListConnectionEvents(r, metadata=md),
                                  qpb.ListConnectionEventsRequest(parent=f"networks/{network}", page_size=1000))
        assert {n for n, e in accepted.items() if e.network_id == network} <= {e.name for e in listed}

    # canonical /v1 through Envoy's transcoder
    for name in accepted:
        assert strict_json(await http.get(f"/v1/{quote(name, safe='/:')}", headers=bearer))["name"] == name
    body = strict_json(await http.get("/v1/networks/-/connectionEvents", params={"pageSize": 1000}, headers=bearer))
    assert set(accepted) <= {e["name"] for e in body.get("connectionEvents", [])}

    # Meraki connectivityEvents by (network, client MAC or id); Mojo connection logs by client MAC
    t0 = str(_now() - 21 * 86400)
    by_client: dict[tuple[str, str], list[pb.ConnectionEvent]] = {}
    by_mac: dict[str, list[pb.ConnectionEvent]] = {}
    for event in accepted.values():
        mac = normalise_mac(event.client.mac_address) if event.client.mac_address else None
        client = mac or event.client.client_id
        if mac or (_SAFE_ID.fullmatch(client) and normalise_mac(client) is None):
            by_client.setdefault((event.network_id, client), []).append(event)
        if mac:
            by_mac.setdefault(mac, []).append(event)
    for (network, client), group in by_client.items():
        response = await http.get(MERAKI_PATH.format(net=quote(network, safe=":"), client=quote(client, safe=":")),
                                  params={"t0": t0, "perPage": 1000}, headers=bearer)
        body = strict_json(response)
        for event in group:
            assert _contains(body, response.content, event, pb.VENDOR_MERAKI, _expected_meraki(event)), (event, body)
    for mac, group in by_mac.items():
        response = await http.get(MOJO_PATH, params={"clientmacaddress": mac, "limit": 10000, "fromtime": t0},
                                  headers=bearer)
        body = strict_json(response)
        logs = body["successLogs"] + body["failureLogs"]
        for event in group:
            assert _contains(logs, response.content, event, pb.VENDOR_MOJO, _expected_mojo(event)), (event, body)
    return len(accepted)


@pytest.fixture(scope="module")
async def http(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@example(events=POISONS)
@example(events=EXTREMES)
@given(events=BATCHES)
async def test_whatever_is_accepted_reads_back_through_every_shape(clients, http, make_tenant, events):
    tenant = await make_tenant()  # a fresh tenant per example: its own Meraki rate budget, only its events
    await check_readback(clients, http, tenant, events, note_event)


async def test_poisons_are_refused_and_extremes_read_back(clients, http, make_tenant):
    """The explicit examples above, pinned: every poison is refused naming its
    field, every extreme is accepted and reads back."""
    tenant = await make_tenant()
    poisons = [pb.ConnectionEvent.FromString(e.SerializeToString()) for e in POISONS]
    reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=poisons),
                                                        metadata=tenant.md())
    assert [(r.status, r.field) for r in reply.results] == [(ipb.INGEST_STATUS_REJECTED, field) for field in [
        "event_data", "event_data", "event_data", "event_data", "timing.duration", "timing.dns_latency",
        "timing.aaa_latency",
        "timing.network_time", "location.location_id", "vendor_record.data", "vendor_record.content_type",
        "vendor_record.data", "vendor_record.data", "vendor_record.data", "vendor_record.data", "vendor_record.data",
        "vendor_record.data", "vendor_record.content_type"]]
    extremes = [pb.ConnectionEvent.FromString(e.SerializeToString()) for e in EXTREMES]
    assert await check_readback(clients, http, tenant, extremes) == len(EXTREMES)


# ------------------------------------------------- rows stored before the checks


async def test_rows_stored_before_the_checks_still_read_back(clients, http, make_tenant, monkeypatch):
    """Events an older ingest accepted (the checks switched off here) do not
    break Meraki or Mojo pages: what cannot be printed is null, a record that
    is not a strict JSON object is projected instead of returned verbatim."""
    monkeypatch.setattr(nm, "_event_data_problem", lambda data: None)
    monkeypatch.setattr(nm, "_duration", lambda value, path: None)
    monkeypatch.setattr(nm, "_check_json", lambda data, field, depth: {})
    monkeypatch.setattr(nm, "_is_json_type", lambda content_type: True)
    monkeypatch.setattr(nm, "INT64_MAX", 10**100)
    tenant = await make_tenant()
    legacy = [
        _recent(event_data=_struct(a=float("nan"), b="kept?"), step=pb.CONNECTION_STEP_DNS),
        _recent(**_timing(duration=duration_pb2.Duration(seconds=INT64[1]), dhcp_latency=duration_pb2.Duration(
            seconds=INT64[1])), step=pb.CONNECTION_STEP_DHCP),
        _recent(location=pb.Location(location_id="1" * 30, location_type="t"), step=pb.CONNECTION_STEP_ROAM),
        _recent(location=pb.Location(location_id="\u00b2"), step=pb.CONNECTION_STEP_STICKY),
        _recent(**_record(pb.VENDOR_MERAKI, '{"type": "auth", "rssi": NaN}'), step=pb.CONNECTION_STEP_AUTHENTICATION),
        _recent(**_record(pb.VENDOR_MERAKI, "<html><script>alert(1)</script></html>", "text/html"),
                step=pb.CONNECTION_STEP_DEAUTHENTICATION),
        _recent(**_record(pb.VENDOR_MERAKI, '{"a": 1}, {"b": 2}', "text/plain"),  # (JSON ones were parsed)
                step=pb.CONNECTION_STEP_DISASSOCIATION),
        _recent(**_record(pb.VENDOR_MOJO, '{"ssid": "\\udc00"}'), step=pb.CONNECTION_STEP_CONNECTION),
        _recent(**_record(pb.VENDOR_MOJO, '[1, 2]'), step=pb.CONNECTION_STEP_ASSOCIATION),
    ]
    for i, event in enumerate(legacy):
        event.occur_time.seconds -= i  # one time each, to tell them apart
    reply = await clients.ingest.IngestConnectionEvents(ipb.IngestConnectionEventsRequest(events=legacy),
                                                        metadata=tenant.md())
    assert reply.accepted_count == len(legacy), reply
    bearer = {"Authorization": f"Bearer {tenant.keys['viewer']}"}
    response = await http.get(MERAKI_PATH.format(net="N_1", client="02:00:00:00:00:01"), headers=bearer,
                              params={"t0": str(_now() - 86400)})
    meraki = {item["occurredAt"]: item for item in strict_json(response)}
    assert len(meraki) == len(legacy)
    at = [occurred_at_text(e.occur_time.ToDatetime(tzinfo=dt.UTC)) for e in legacy]
    assert meraki[at[0]]["eventData"] is None and meraki[at[0]]["type"] == "dns"
    assert meraki[at[1]]["durationMs"] is None and meraki[at[1]]["type"] == "dhcp"
    for i, kind in ((4, "auth"), (5, "deauth"), (6, "disassoc")):
        assert meraki[at[i]]["type"] == kind and "subtype" in meraki[at[i]]  # projected, not the record
    response = await http.get(MOJO_PATH, params={"clientmacaddress": "02:00:00:00:00:01"}, headers=bearer)
    logs = {log["timestamp"]: log for log in strict_json(response)["successLogs"]}
    assert len(logs) == len(legacy)
    seconds = [e.occur_time.seconds for e in legacy]
    assert logs[seconds[1]]["dhcpLatency"] == INT64[1]
    assert logs[seconds[2]]["locationId"] == {"type": "t", "id": "1" * 30}
    assert logs[seconds[3]]["locationId"] == {"type": None, "id": "\u00b2"}
    for i in (7, 8):
        assert logs[seconds[i]]["eventType"] == "Success" and "macAddress" in logs[seconds[i]]
