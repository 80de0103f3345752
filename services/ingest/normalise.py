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
from dataclasses import dataclass

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.auth import Principal, Role
from connlog.core.identifiers import NETWORK_ID, normalise_mac
from connlog.store.events import StoredEvent

MAX_TEXT = 256
MAX_VENDOR_RECORD = 64 * 1024
MAX_EVENT_DATA = 16 * 1024


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


def _check_set_fields(message, prefix: str = "") -> None:
    """Generic checks of every field that is set (only those: events are
    sparse): string lengths and NULs, known enum values, numeric ranges."""
    for descriptor, value in message.ListFields():
        kind = descriptor.type
        if kind == _STRING:
            path = prefix + descriptor.name
            if len(value) > _TEXT_LIMITS.get(path, MAX_TEXT):
                raise FieldError(path, f"longer than {_TEXT_LIMITS.get(path, MAX_TEXT)} characters")
            if "\x00" in value:
                raise FieldError(path, "contains a NUL character")
        elif kind == _ENUM:
            if value not in descriptor.enum_type.values_by_number:
                raise FieldError(prefix + descriptor.name, f"unknown value {value}")
        elif kind == _MESSAGE:
            if descriptor.name not in _SPECIAL or prefix:
                if descriptor.message_type.file is _OWN_FILE:
                    _check_set_fields(value, prefix + descriptor.name + ".")
        else:
            path = prefix + descriptor.name
            if kind in _FLOATS and not math.isfinite(value):
                raise FieldError(path, "must be a finite number")
            bounds = _RANGES.get(path)
            if bounds and ((bounds[0] is not None and value < bounds[0]) or (bounds[1] is not None and value > bounds[1])):
                raise FieldError(path, bounds[2])


_OWN_FILE = pb.DESCRIPTOR


def _mac(value: str, field: str) -> str:
    mac = normalise_mac(value)
    if mac is None:
        raise FieldError(field, f"{value!r} is not a MAC address")
    return mac


def _timestamp(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    if not 0 <= ts.nanos < 1_000_000_000:
        raise FieldError(field, "nanos out of range")
    if not -62135596800 <= ts.seconds <= 253402300799:
        raise FieldError(field, "out of range")
    ts.nanos = ts.nanos - ts.nanos % 1000  # microsecond precision
    return _EPOCH + dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def normalise(event: pb.ConnectionEvent, principal: Principal, window: IngestWindow) -> StoredEvent:
    """Validate ``event`` (modified in place) and return it ready to store."""
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

    _check_set_fields(event)

    client = event.client
    if client.mac_address:
        client.mac_address = _mac(client.mac_address, "client.mac_address")
    if not client.client_id and not client.mac_address:
        raise FieldError("client", "needs client_id or mac_address")
    if client.ip_address:
        try:
            client.ip_address = str(ipaddress.ip_address(client.ip_address.strip()))
        except ValueError:
            raise FieldError("client.ip_address", f"{client.ip_address!r} is not an IP address") from None
    if principal.role is Role.DEVICE:
        if client.reporting_device_id and client.reporting_device_id != principal.device_id:
            raise FieldError("client.reporting_device_id", "a device key may only push its own device's events")
        client.reporting_device_id = principal.device_id or ""

    if not event.HasField("occur_time"):
        raise FieldError("occur_time", "is required")
    occurred_at = _timestamp(event.occur_time, "occur_time")
    if occurred_at < window.earliest:
        raise FieldError("occur_time", f"is older than the {window.retention_days}-day retention")
    if occurred_at > window.latest:
        raise FieldError("occur_time", "is too far in the future")

    source = event.source
    if source.vendor == pb.VENDOR_UNSPECIFIED:
        source.vendor = pb.VENDOR_CONNLOG
    if not event.step:
        raise FieldError("step", "is required")

    radio, wlan = event.radio, event.wlan
    if radio.protocol:
        radio.protocol = radio.protocol.upper()
    if wlan.bssid:
        wlan.bssid = _mac(wlan.bssid, "wlan.bssid")
    mcc_mnc = event.access_network.mcc_mnc
    if mcc_mnc and not (mcc_mnc.isdigit() and 5 <= len(mcc_mnc) <= 6):
        raise FieldError("access_network.mcc_mnc", "must be 5 or 6 digits")

    if event.HasField("timing"):
        timing = event.timing
        for descriptor, value in timing.ListFields():
            path = "timing." + descriptor.name
            if descriptor.message_type.name == "Timestamp":
                _timestamp(value, path)
            elif value.seconds < 0 or value.nanos < 0:
                raise FieldError(path, "must not be negative")
    if event.HasField("event_data") and event.event_data.ByteSize() > MAX_EVENT_DATA:
        raise FieldError("event_data", f"larger than {MAX_EVENT_DATA} bytes")

    if event.HasField("vendor_record"):
        record = event.vendor_record
        if len(record.data) > MAX_VENDOR_RECORD:
            raise FieldError("vendor_record.data", f"larger than {MAX_VENDOR_RECORD} bytes")
        if record.data and not record.content_type:
            record.content_type = "application/json"
        if record.content_type == "application/json" and record.data:
            try:
                json.loads(record.data)
            except ValueError as exc:
                raise FieldError("vendor_record.data", f"is not valid JSON: {exc}") from None

    payload = event.SerializeToString(deterministic=True)
    failure = event.failure
    return StoredEvent(
        network_id=network_id,
        occurred_at=occurred_at,
        dedup_key=dedup_key(event, payload),
        step=event.step,
        outcome=event.outcome,
        severity=event.severity,
        band=radio.band,
        vendor=source.vendor,
        client_mac=client.mac_address or None,
        client_id=client.client_id or None,
        ssid=wlan.ssid or None,
        ssid_number=wlan.ssid_number if wlan.HasField("ssid_number") else None,
        ap_serial=event.access_point.serial or None,
        ap_name=event.access_point.name or None,
        bssid=wlan.bssid or None,
        failure_code=failure.code if failure.HasField("code") else None,
        payload=payload,
    )


def dedup_key(event: pb.ConnectionEvent, payload: bytes) -> bytes:
    """What makes two events the same (within a tenant and occurrence time):
    the vendor's own event id when it has one, otherwise the whole normalised
    content."""
    if event.source.vendor_event_id:
        basis = b"v1|%d|%s" % (event.source.vendor, event.source.vendor_event_id.encode())
    else:
        basis = b"c1|" + payload
    return hashlib.sha256(basis).digest()[:16]
