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


def _text(value: str, field: str, limit: int = MAX_TEXT) -> str:
    if len(value) > limit:
        raise FieldError(field, f"longer than {limit} characters")
    if "\x00" in value:
        raise FieldError(field, "contains a NUL character")
    return value


_ENUM_VALUES = {
    enum.DESCRIPTOR.full_name: frozenset(enum.values())
    for enum in (pb.Vendor, pb.ConnectionStep, pb.Outcome, pb.Severity, pb.Band, pb.QualityMetric, pb.NetworkType,
                 pb.NetworkSecurity)
}


def _enum(value: int, enum_type, field: str, *, required: bool = False) -> int:
    if value not in _ENUM_VALUES[enum_type.DESCRIPTOR.full_name]:
        raise FieldError(field, f"unknown value {value}")
    if required and value == 0:
        raise FieldError(field, "is required")
    return value


def _mac(value: str, field: str) -> str:
    mac = normalise_mac(value)
    if mac is None:
        raise FieldError(field, f"{value!r} is not a MAC address")
    return mac


def _finite(value: float, field: str, low: float | None = None, high: float | None = None) -> None:
    if not math.isfinite(value):
        raise FieldError(field, "must be a finite number")
    if low is not None and value < low:
        raise FieldError(field, f"must be at least {low:g}")
    if high is not None and value > high:
        raise FieldError(field, f"must be at most {high:g}")


def _timestamp(ts: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    if not 0 <= ts.nanos < 1_000_000_000:
        raise FieldError(field, "nanos out of range")
    if not -62135596800 <= ts.seconds <= 253402300799:
        raise FieldError(field, "out of range")
    ts.nanos = ts.nanos - ts.nanos % 1000  # microsecond precision
    return dt.datetime.fromtimestamp(ts.seconds, dt.timezone.utc) + dt.timedelta(microseconds=ts.nanos // 1000)


def _duration(event: pb.ConnectionEvent, name: str) -> None:
    if event.timing.HasField(name):
        value = getattr(event.timing, name)
        if value.seconds < 0 or value.nanos < 0:
            raise FieldError(f"timing.{name}", "must not be negative")


def normalise(event: pb.ConnectionEvent, principal: Principal, window: IngestWindow) -> StoredEvent:
    """Validate ``event`` (modified in place) and return it ready to store."""
    # Output-only fields are the server's to set.
    event.ClearField("name")
    event.ClearField("event_id")
    event.ClearField("receive_time")
    if event.tenant_id and event.tenant_id != principal.tenant_id:
        raise FieldError("tenant_id", "does not match the API key's tenant")
    event.ClearField("tenant_id")  # implied by the stored row

    if not event.network_id:
        raise FieldError("network_id", "is required")
    if not NETWORK_ID.match(event.network_id):
        raise FieldError("network_id", "must be 1-128 letters, digits or _.:~- starting with a letter or digit")

    client = event.client
    _text(client.client_id, "client.client_id", 128)
    if client.mac_address:
        client.mac_address = _mac(client.mac_address, "client.mac_address")
    if not client.client_id and not client.mac_address:
        raise FieldError("client", "needs client_id or mac_address")
    if client.ip_address:
        try:
            client.ip_address = str(ipaddress.ip_address(client.ip_address.strip()))
        except ValueError:
            raise FieldError("client.ip_address", f"{client.ip_address!r} is not an IP address") from None
    _text(client.reporting_device_id, "client.reporting_device_id", 128)
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

    vendor = _enum(event.source.vendor, pb.Vendor, "source.vendor")
    if vendor == pb.VENDOR_UNSPECIFIED:
        event.source.vendor = vendor = pb.VENDOR_CONNLOG
    _text(event.source.vendor_event_id, "source.vendor_event_id")

    step = _enum(event.step, pb.ConnectionStep, "step", required=True)
    _text(event.subtype, "subtype", 128)
    outcome = _enum(event.outcome, pb.Outcome, "outcome")
    severity = _enum(event.severity, pb.Severity, "severity")

    radio = event.radio
    band = _enum(radio.band, pb.Band, "radio.band")
    if radio.HasField("channel") and not 1 <= radio.channel <= 233:
        raise FieldError("radio.channel", "must be 1-233")
    if radio.HasField("frequency_ghz"):
        _finite(radio.frequency_ghz, "radio.frequency_ghz", 0.001, 100)
    if radio.protocol:
        radio.protocol = _text(radio.protocol, "radio.protocol", 16).upper()
    _enum(radio.quality_metric, pb.QualityMetric, "radio.quality_metric")
    if radio.HasField("quality_value"):
        _finite(radio.quality_value, "radio.quality_value", -1000, 1000)
    if radio.HasField("link_speed_mbps"):
        _finite(radio.link_speed_mbps, "radio.link_speed_mbps", 0, 1_000_000)

    wlan = event.wlan
    _text(wlan.ssid, "wlan.ssid", 64)
    if wlan.HasField("ssid_number") and not 0 <= wlan.ssid_number <= 255:
        raise FieldError("wlan.ssid_number", "must be 0-255")
    if wlan.bssid:
        wlan.bssid = _mac(wlan.bssid, "wlan.bssid")

    _text(event.access_point.name, "access_point.name")
    _text(event.access_point.serial, "access_point.serial", 64)

    location = event.location
    for name in ("location_id", "location_type", "name"):
        _text(getattr(location, name), f"location.{name}")
    if location.HasField("latitude"):
        _finite(location.latitude, "location.latitude", -90, 90)
    if location.HasField("longitude"):
        _finite(location.longitude, "location.longitude", -180, 180)

    failure = event.failure
    _text(failure.reason, "failure.reason", 1024)
    _text(failure.sub_reason, "failure.sub_reason", 1024)

    for name in ("association_time", "authentication_time", "network_time"):
        if event.timing.HasField(name):
            _timestamp(getattr(event.timing, name), f"timing.{name}")
    for name in ("dhcp_latency", "aaa_latency", "dns_latency", "duration"):
        _duration(event, name)

    access = event.access_network
    _text(access.name, "access_network.name")
    _enum(access.type, pb.NetworkType, "access_network.type")
    _enum(access.security, pb.NetworkSecurity, "access_network.security")
    _text(access.authentication, "access_network.authentication", 64)
    if access.mcc_mnc and not (access.mcc_mnc.isdigit() and 5 <= len(access.mcc_mnc) <= 6):
        raise FieldError("access_network.mcc_mnc", "must be 5 or 6 digits")
    _text(access.cell_id, "access_network.cell_id", 64)

    for name in ("bytes_in", "bytes_out"):
        if event.traffic.HasField(name) and getattr(event.traffic, name) < 0:
            raise FieldError(f"traffic.{name}", "must not be negative")

    _text(event.capture_id, "capture_id")
    _text(event.file_id, "file_id")
    _text(event.auto_test.status, "auto_test.status")
    if event.HasField("event_data") and event.event_data.ByteSize() > MAX_EVENT_DATA:
        raise FieldError("event_data", f"larger than {MAX_EVENT_DATA} bytes")

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
    return StoredEvent(
        network_id=event.network_id,
        occurred_at=occurred_at,
        dedup_key=dedup_key(event, payload),
        step=step,
        outcome=outcome,
        severity=severity,
        band=band,
        vendor=vendor,
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
