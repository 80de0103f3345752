"""Validation and normalisation of one incoming ConnectionEvent.

``normalise`` either returns the event ready to store (a ``StoredEvent``) or
raises ``FieldError`` naming the offending field, so that one bad event never
stops the rest of its batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import math
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.identifiers import NETWORK_ID, normalise_mac
from connlog.core.principal import Principal, Role
from connlog.store.row import StoredEvent

MAX_TEXT = 256
MAX_VENDOR_RECORD = 64 * 1024
MAX_EVENT_DATA = 16 * 1024
# What every projection can print (gRPC, /v1 through Envoy's transcoder, the
# Meraki and Mojo shapes): google.protobuf.Duration's JSON range (also what
# Meraki's durationMs, an int64 of milliseconds, holds), int64 integers, and
# a nesting Envoy's transcoder renders even inside a tenant-wide list page.
MAX_DURATION_SECONDS = 315_576_000_000  # 10,000 years
INT64_MAX = 2**63 - 1
MAX_EVENT_DATA_DEPTH = 20
MAX_VENDOR_RECORD_DEPTH = 32
# Vendors whose shape returns vendor_record.data verbatim (or, Zequenze,
# whose record is a JSON object): it must be the JSON object of one record.
JSON_RECORD_VENDORS = {pb.VENDOR_MERAKI: "a Meraki connectivity event", pb.VENDOR_MOJO: "a Mojo connection log",
                       pb.VENDOR_ZEQUENZE: "a Zequenze device app connection log"}
JSON_CONTENT_TYPE = "application/json"
# The vendor of each shape a device key may write through (connlog.shapes.registry:
# a shape hosted by the ingest service; tests/unit holds the two together).
DEVICE_SHAPE_VENDORS = {"zequenze": pb.VENDOR_ZEQUENZE}


class FieldError(ValueError):
    """An event field that cannot be accepted."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class IngestWindow:
    """Occurrence times accepted now: inside the retention, not too far ahead."""

    earliest: dt.datetime
    latest: dt.datetime
    retention_days: int


_TEXT_LIMITS = {
    "client.client_id": 128, "client.reporting_device_id": 128, "subtype": 128, "radio.protocol": 16,
    "wlan.ssid": 64, "access_point.serial": 64, "failure.reason": 1024, "failure.sub_reason": 1024,
    "access_network.authentication": 64, "access_network.cell_id": 64,
}
_RANGES = {
    "radio.channel": (1, 233, "must be 1-233"),
    "radio.frequency_ghz": (0.001, 100, "must be at least 0.001 and at most 100"),
    "radio.quality_value": (-1000, 1000, "must be at least -1000 and at most 1000"),
    "radio.link_speed_mbps": (0, 1_000_000, "must be at least 0 and at most 1e+06"),
    "wlan.ssid_number": (0, 255, "must be 0-255"),
    "location.latitude": (-90, 90, "must be at least -90 and at most 90"),
    "location.longitude": (-180, 180, "must be at least -180 and at most 180"),
    "traffic.bytes_in": (0, None, "must not be negative"),
    "traffic.bytes_out": (0, None, "must not be negative"),
}
_STRING, _ENUM, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_MESSAGE
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_SPECIAL = {"vendor_record", "event_data", "timing", "occur_time", "receive_time"}  # checked on their own
_TEXT, _CHOICE, _NESTED, _NUMBER = range(4)


@dataclass(frozen=True)
class _Check:
    """What the generic checks check of one field, worked out from the
    schema (``check_fields`` is generated from them)."""

    kind: int
    path: str
    limit: int = 0
    choices: frozenset = frozenset()
    nested: dict | None = None
    finite: bool = False
    bounds: tuple | None = None


def _plan(message_type: Any, prefix: str = "") -> dict:  # a message Descriptor (upb or python)
    """Field descriptor -> _Check for every field of ``message_type``."""
    plan = {}
    for descriptor in message_type.fields:
        path = prefix + descriptor.name
        if descriptor.type == _STRING:
            plan[descriptor] = _Check(_TEXT, path, limit=_TEXT_LIMITS.get(path, MAX_TEXT))
        elif descriptor.type == _ENUM:
            plan[descriptor] = _Check(_CHOICE, path, choices=frozenset(descriptor.enum_type.values_by_number))
        elif descriptor.type == _MESSAGE:
            own = descriptor.message_type.file is pb.DESCRIPTOR and (prefix or descriptor.name not in _SPECIAL)
            plan[descriptor] = _Check(_NESTED, path, nested=_plan(descriptor.message_type, path + ".") if own else None)
        else:
            plan[descriptor] = _Check(_NUMBER, path, finite=descriptor.type in _FLOATS, bounds=_RANGES.get(path))
    return plan


def _bad_text(path: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise FieldError(path, f"longer than {limit} characters")
    raise FieldError(path, "contains a NUL character")


def _checks_source(plan: dict, name: str, functions: list[str], constants: dict[str, Any]) -> None:
    """Add to ``functions`` the source of ``name(message)``: the generic
    checks of every field of ``plan`` (string lengths and NULs, known enum
    values, finite numbers within their ranges) as straight-line code, in
    field number order (the order ``ListFields`` gives), reading only what
    can fail: a sub-message or a number with presence is looked at only when
    set, a number without a check not at all."""
    lines = [f"def {name}(_m):"]
    for descriptor, check in sorted(plan.items(), key=lambda item: item[0].number):
        field, path = descriptor.name, check.path
        if descriptor.is_repeated:
            raise TypeError(f"{path}: repeated fields have no generated check")
        if check.kind == _TEXT:
            lines += [f"    _v = _m.{field}",
                      f"    if _v and (len(_v) > {check.limit} or '\\x00' in _v):",
                      f"        _bad_text({path!r}, _v, {check.limit})"]
        elif check.kind == _CHOICE:
            choices = f"_CHOICES_{len(constants)}"
            constants[choices] = check.choices
            lines += [f"    _v = _m.{field}", f"    if _v not in {choices}:",
                      f"        raise FieldError({path!r}, f'unknown value {{_v}}')"]
        elif check.kind == _NESTED:
            if check.nested is not None:
                nested = f"_check_{path.replace('.', '_')}"
                _checks_source(check.nested, nested, functions, constants)
                lines += [f"    if _m.HasField({field!r}):", f"        {nested}(_m.{field})"]
        elif check.finite or check.bounds:
            if not descriptor.has_presence:  # (-0.0 would be set, yet falsy)
                raise TypeError(f"{path}: a checked number needs presence")
            lines += [f"    if _m.HasField({field!r}):", f"        _v = _m.{field}"]
            if check.finite:
                lines += ["        if not _isfinite(_v):",
                          f"            raise FieldError({path!r}, 'must be a finite number')"]
            if check.bounds:
                low, high, reason = check.bounds
                tests = [f"_v < {low!r}"] if low is not None else []
                tests += [f"_v > {high!r}"] if high is not None else []
                lines += [f"        if {' or '.join(tests)}:", f"            raise FieldError({path!r}, {reason!r})"]
    if len(lines) == 1:
        lines.append("    pass")
    functions.append("\n".join(lines))


def _event_checks_source() -> tuple[str, dict[str, Any]]:
    functions: list[str] = []
    constants: dict[str, Any] = {}
    _checks_source(_plan(pb.ConnectionEvent.DESCRIPTOR), "check_fields", functions, constants)
    return "\n\n\n".join(functions) + "\n", constants


CHECKS_SOURCE, _CHECK_CONSTANTS = _event_checks_source()


def _compile_checks() -> Callable[[pb.ConnectionEvent], None]:
    namespace: dict[str, Any] = {"FieldError": FieldError, "_bad_text": _bad_text, "_isfinite": math.isfinite,
                                 **_CHECK_CONSTANTS}
    exec(compile(CHECKS_SOURCE, f"<{__name__}.check_fields>", "exec"), namespace)
    function = namespace["check_fields"]
    function.__doc__ = """The generic checks of every set field of an event (``CHECKS_SOURCE``,
    generated from the schema): string lengths and NULs, known enum values,
    finite numbers within their ranges; raises FieldError naming the first
    field (in field number order, depth first) that fails."""
    function.__module__ = __name__
    return function


check_fields: Callable[[pb.ConnectionEvent], None] = _compile_checks()

_TIMING_PATHS = {d: "timing." + d.name for d in pb.ConnectionTiming.DESCRIPTOR.fields}
_TIMING_TIMESTAMPS = frozenset(
    d for d in pb.ConnectionTiming.DESCRIPTOR.fields
    if d.message_type is not None and d.message_type.full_name == "google.protobuf.Timestamp")


def _mac(value: str, field: str) -> str:
    mac = normalise_mac(value)
    if mac is None:
        raise FieldError(field, f"{value!r} is not a MAC address")
    return mac


def _timestamp(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    seconds, nanos = ts.seconds, ts.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise FieldError(field, "nanos out of range")
    if not -62135596800 <= seconds <= 253402300799:
        raise FieldError(field, "out of range")
    if nanos % 1000:
        ts.nanos = nanos = nanos - nanos % 1000  # microsecond precision
    return _EPOCH + _timedelta(0, seconds, nanos // 1000)  # positional: twice as fast as keywords


_timedelta = dt.timedelta
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _duration(value: duration_pb2.Duration, path: str) -> None:
    """A Duration every shape prints: Meraki's durationMs (an int64 of
    milliseconds), Mojo's latencies (seconds) and protobuf's JSON
    (0 <= seconds <= MAX_DURATION_SECONDS, 0 <= nanos < 1e9)."""
    seconds, nanos = value.seconds, value.nanos
    if seconds < 0 or nanos < 0:
        raise FieldError(path, "must not be negative")
    if nanos > 999_999_999:
        raise FieldError(path, "nanos must be at most 999999999")
    if seconds > MAX_DURATION_SECONDS:
        raise FieldError(path, f"must be at most {MAX_DURATION_SECONDS} seconds")


# In a serialized Struct a number is tag 0x11 + 8 little-endian bytes; a
# non-finite double has all exponent bits set (last two bytes 0x?f 0xf?),
# which valid UTF-8 text never holds.
_NON_FINITE_DOUBLE = re.compile(rb"\x11[\x00-\xff]{6}[\xf0-\xff][\x7f\xff]")


def _event_data_problem(event_data: struct_pb2.Struct) -> str | None:
    """Why ``event_data`` (a google.protobuf.Struct) cannot be printed by
    every shape, or None: larger than MAX_EVENT_DATA, a non-finite number
    (protobuf's JSON has none: Envoy's transcoder fails, json_format raises),
    or nesting deeper than MAX_EVENT_DATA_DEPTH (Envoy's transcoder refuses a
    list page holding it). The serialized bytes clear nearly every Struct at
    C speed; only one they cannot clear is walked (a Python walk costs
    ~0.7 µs a value)."""
    data = event_data.SerializeToString()
    if len(data) > MAX_EVENT_DATA:
        return f"larger than {MAX_EVENT_DATA} bytes"
    # every nested Struct or ListValue is introduced by a tag byte 0x2a ("*") or 0x32 ("2")
    if _NON_FINITE_DOUBLE.search(data) is None and data.count(b"*") + data.count(b"2") < MAX_EVENT_DATA_DEPTH:
        return None
    return _struct_problem(event_data)


def _struct_problem(struct: struct_pb2.Struct) -> str | None:
    """The exact check behind ``_event_data_problem``: a walk of the Struct."""
    pending: list[tuple[Any, int, tuple]] = [(struct.fields.items(), 1, ())]
    while pending:
        items, depth, at = pending.pop()
        if depth > MAX_EVENT_DATA_DEPTH:
            return f"nested deeper than {MAX_EVENT_DATA_DEPTH} levels at {_key_path(at)!r}"
        for key, value in items:
            kind = value.WhichOneof("kind")
            if kind == "number_value":
                if not math.isfinite(value.number_value):
                    return f"holds a non-finite number at {_key_path(at + (key,))!r}"
            elif kind == "struct_value":
                pending.append((value.struct_value.fields.items(), depth + 1, at + (key,)))
            elif kind == "list_value":
                pending.append((enumerate(value.list_value.values), depth + 1, at + (key,)))
    return None


def _key_path(keys: tuple) -> str:
    return ".".join(str(key) for key in keys)


_BIG_FLOAT = 2.0**63
_MAYBE_BIG_INTEGER = "may hold an integer beyond int64"  # orjson reads one as a float: the text tells


def _json_problem(root: Any, max_depth: int) -> str | None:
    """Why parsed JSON cannot be printed verbatim inside a response every
    client parses, or None: an integer beyond int64 or nesting deeper than
    ``max_depth`` (orjson already refused NaN, Infinity, lone surrogates and
    numbers that overflow a double)."""
    pending = [((root,), 0)]
    big_float = False
    while pending:
        values, depth = pending.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        for value in values:
            kind = type(value)
            if kind is int:
                if value > INT64_MAX:  # orjson reads -2**63 .. 2**64-1 as int, the rest as float
                    return "holds an integer outside the int64 range"
            elif kind is float:
                if not -_BIG_FLOAT < value < _BIG_FLOAT:
                    big_float = True
            elif kind is dict:
                if value:
                    pending.append((value.values(), depth + 1))
            elif kind is list:
                if value:
                    pending.append((value, depth + 1))
    return _MAYBE_BIG_INTEGER if big_float else None


def _int64_literal(text: str) -> int:
    """``parse_int`` of json.loads: an integer literal within int64."""
    if len(text) > 20:  # int64 has at most 19 digits (JSON has no leading zeros)
        raise OverflowError
    number = int(text)
    if not -INT64_MAX - 1 <= number <= INT64_MAX:
        raise OverflowError
    return number


def _check_json(data: str, field: str, max_depth: int) -> object:
    """Strictly parsed JSON text (``field`` named when it is not): no NaN or
    Infinity, no lone surrogates, finite numbers, integers within int64."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FieldError(field, f"is not valid JSON: {exc}") from None
    problem = _json_problem(value, max_depth)
    if problem is _MAYBE_BIG_INTEGER:  # a float beyond +-2**63, or an integer literal orjson read as one
        try:
            json.loads(data, parse_int=_int64_literal)
            problem = None
        except OverflowError:
            problem = "holds an integer outside the int64 range"
        except (ValueError, RecursionError):  # orjson accepted it; cannot happen
            problem = "is not valid JSON"
    if problem:
        raise FieldError(field, problem)
    return value


def _is_json_type(content_type: str) -> bool:
    if content_type == JSON_CONTENT_TYPE:
        return True
    return content_type.partition(";")[0].strip().lower() == JSON_CONTENT_TYPE


def _ip(value: str) -> str:
    """The canonical text of an IPv4 or IPv6 address."""
    text = value.strip()
    try:  # the common case, ~30x cheaper than ipaddress: a dotted quad is its own canonical form
        socket.inet_pton(socket.AF_INET, text)
        return text
    except (OSError, ValueError):
        pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise FieldError("client.ip_address", f"{value!r} is not an IP address") from None


def normalise(
    event: pb.ConnectionEvent, principal: Principal, window: IngestWindow
) -> StoredEvent:
    """Validate ``event`` (modified in place, and left without the fields the
    row's columns hold) and return it ready to store.
"""
    # Output-only fields are the server's to set.
    event.ClearField("name")
    event.ClearField("event_id")
    event.ClearField("receive_time")
    if event.tenant_id and event.tenant_id != principal.tenant_id:
        raise FieldError("tenant_id", "does not match the API key's tenant")
    event.ClearField("tenant_id")  # implied by the stored row

    network_id = event.network_id
    if not network_id:
        raise FieldError("network_id", "is required")
    if not NETWORK_ID.match(network_id):
        raise FieldError("network_id", "must be 1-128 letters, digits or _.:~- starting with a letter or digit")

    check_fields(event)

    # (writes only what changed: a protobuf write costs more than a compare)
    client = event.client
    client_mac = client.mac_address
    if client_mac:
        mac = _mac(client_mac, "client.mac_address")
        if mac != client_mac:
            client.mac_address = client_mac = mac
    client_id = client.client_id
    if not client_id and not client_mac:
        raise FieldError("client", "needs client_id or mac_address")
    ip_text = client.ip_address
    if ip_text:
        ip = _ip(ip_text)
        if ip != ip_text:
            client.ip_address = ip
    device = principal.role is Role.DEVICE
    if device:  # its own device is the client (checked again here whatever path the event came by)
        device_id = principal.device_id or ""
        if client_id != device_id:
            raise FieldError("client.client_id", "a device key may only push its own device's events")
        if client.reporting_device_id and client.reporting_device_id != device_id:
            raise FieldError("client.reporting_device_id", "a device key may only push its own device's events")
        client.reporting_device_id = device_id
    elif principal.role is Role.SYNC_SERVICE:
        scope = principal.source
        if scope is None:
            raise FieldError("tenant_id", "the sync service's key writes only for a named sync source")
        if network_id != scope.network_id:
            raise FieldError("network_id", "is not the network of the sync source the call names")

    if not event.HasField("occur_time"):
        raise FieldError("occur_time", "is required")
    occurred_at = _timestamp(event.occur_time, "occur_time")
    if occurred_at < window.earliest:
        raise FieldError("occur_time", f"is older than the {window.retention_days}-day retention")
    if occurred_at > window.latest:
        raise FieldError("occur_time", "is too far in the future")

    source = event.source
    vendor = source.vendor
    if vendor == pb.VENDOR_UNSPECIFIED:
        source.vendor = vendor = pb.VENDOR_CONNLOG
    if device and vendor != DEVICE_SHAPE_VENDORS.get(principal.shape or ""):
        # (so its vendor_record is never another vendor's)
        raise FieldError("source.vendor", f"a {principal.shape} device key writes only its shape's vendor's events")
    if principal.source is not None and vendor != principal.source.vendor:
        raise FieldError("source.vendor", "is not the vendor of the sync source the call names")
    step = event.step
    if not step:
        raise FieldError("step", "is required")

    radio, wlan = event.radio, event.wlan
    protocol = radio.protocol
    if protocol and not protocol.isupper():
        radio.protocol = protocol.upper()
    bssid = wlan.bssid
    if bssid:
        mac = _mac(bssid, "wlan.bssid")
        if mac != bssid:
            wlan.bssid = bssid = mac
    if event.HasField("access_network"):
        mcc_mnc = event.access_network.mcc_mnc
        if mcc_mnc and not (mcc_mnc.isdigit() and 5 <= len(mcc_mnc) <= 6):
            raise FieldError("access_network.mcc_mnc", "must be 5 or 6 digits")
    if event.HasField("location"):
        location_id = event.location.location_id
        # Mojo prints an all-digits id as a number (its locationId.id is one)
        if len(location_id) > 18 and location_id.isdigit() and location_id.isascii() and int(location_id) > INT64_MAX:
            raise FieldError("location.location_id", f"a numeric id must be at most {INT64_MAX}")

    if event.HasField("timing"):
        timing = event.timing
        for descriptor, value in timing.ListFields():
            path = _TIMING_PATHS[descriptor]
            if descriptor in _TIMING_TIMESTAMPS:
                _timestamp(value, path)
            elif not (0 <= value.seconds <= MAX_DURATION_SECONDS and 0 <= value.nanos <= 999_999_999):
                _duration(value, path)  # raises, saying why
    if event.HasField("event_data"):
        problem = _event_data_problem(event.event_data)
        if problem:
            raise FieldError("event_data", problem)

    if event.HasField("vendor_record"):
        record = event.vendor_record
        data, content_type = record.data, record.content_type
        if len(data) > MAX_VENDOR_RECORD:
            raise FieldError("vendor_record.data", f"larger than {MAX_VENDOR_RECORD} bytes")
        if data and not content_type:
            record.content_type = content_type = JSON_CONTENT_TYPE
        shape = JSON_RECORD_VENDORS.get(vendor)
        if shape is not None and (data or content_type):
            if not _is_json_type(content_type):
                raise FieldError("vendor_record.content_type",
                                 f"must be {JSON_CONTENT_TYPE} for {pb.Vendor.Name(vendor)}")
            if data and type(_check_json(data, "vendor_record.data", MAX_VENDOR_RECORD_DEPTH)) is not dict:
                raise FieldError("vendor_record.data", f"must be a JSON object ({shape})")
        elif data and _is_json_type(content_type):
            _check_json(data, "vendor_record.data", MAX_VENDOR_RECORD_DEPTH)

    payload = event.SerializeToString(deterministic=True)
    dedup = _dedup_key(vendor, source.vendor_event_id, payload)
    access_point = event.access_point
    ssid, ap_serial, ap_name = wlan.ssid, access_point.serial, access_point.name
    failure_code = None
    if event.HasField("failure"):
        failure = event.failure
        if failure.HasField("code"):
            failure_code = failure.code
    # The stored payload leaves out what the row's columns already hold (the
    # store puts it back on read): a quarter of an event's bytes.
    event.ClearField("network_id")
    if client_id:
        client.ClearField("client_id")
    if client_mac:
        client.ClearField("mac_address")
    if ssid:
        wlan.ClearField("ssid")
    if bssid:
        wlan.ClearField("bssid")
    if ap_serial:
        access_point.ClearField("serial")
    if ap_name:
        access_point.ClearField("name")
    return StoredEvent(
        network_id,
        occurred_at,
        dedup,
        step,
        event.outcome,
        event.severity,
        radio.band,
        vendor,
        client_mac or None,
        client_id or None,
        ssid or None,
        wlan.ssid_number if wlan.HasField("ssid_number") else None,
        ap_serial or None,
        ap_name or None,
        bssid or None,
        failure_code,
        event.SerializeToString(deterministic=True),
    )


def _dedup_key(vendor: int, vendor_event_id: str, payload: bytes) -> bytes:
    """What makes two events the same (within a tenant and occurrence time):
    the vendor's own event id when it has one, otherwise the whole normalised
    content."""
    if vendor_event_id:
        basis = b"v1|%d|%s" % (vendor, vendor_event_id.encode())
    else:
        basis = b"c1|" + payload
    return hashlib.sha256(basis).digest()[:16]
