"""Mojo connection log entry <-> canonical event: the table, read both ways
(see docs/mapping.md), and the conversion of a log into an event."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import duration_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.records import Table, VendorRecordError, integer

# ``eventType`` <-> outcome. Every outcome but a failure is a success log
# (``successLogs``); failures are ``failureLogs``.
EVENT_TYPES = Table({"Success": pb.OUTCOME_SUCCESS, "Failure": pb.OUTCOME_FAILURE})
FAILURE = pb.OUTCOME_FAILURE
SUCCESS_OUTCOMES = [outcome for outcome in pb.Outcome.values() if outcome != FAILURE]
# The severity an event type implies (into canonical only).
SEVERITIES = {pb.OUTCOME_SUCCESS: pb.SEVERITY_GOOD, pb.OUTCOME_FAILURE: pb.SEVERITY_BAD}


def _str(record: Mapping[str, object], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise VendorRecordError(key, f"expected a string, got {value!r}")
    return value


def band_of_channel(channel: int) -> pb.Band:
    if 1 <= channel <= 14:
        return pb.BAND_2_4_GHZ
    if 32 <= channel <= 177:
        return pb.BAND_5_GHZ
    return pb.BAND_UNSPECIFIED


def to_event(record: dict[str, Any], *, network_id: str, raw_text: str | None = None) -> pb.ConnectionEvent:
    """One entry of Mojo's ``successLogs`` or ``failureLogs``."""
    if not isinstance(record, dict):
        raise VendorRecordError("record", "expected a JSON object")
    event_type = record.get("eventType")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES.canonical:
        raise VendorRecordError("eventType", f"expected {' or '.join(EVENT_TYPES.canonical)}, got {event_type!r}")
    timestamp = integer(record, "timestamp")
    if timestamp is None:
        raise VendorRecordError("timestamp", "is required")
    outcome = EVENT_TYPES.canonical[event_type]
    event = pb.ConnectionEvent(
        network_id=network_id,
        client=pb.Client(mac_address=_str(record, "macAddress")),
        step=pb.CONNECTION_STEP_CONNECTION,
        outcome=outcome,
        severity=SEVERITIES[outcome],
        source=pb.Source(vendor=pb.VENDOR_MOJO),
        vendor_record=pb.VendorRecord(content_type="application/json", data=raw_text or json.dumps(record)),
    )
    event.occur_time.seconds = timestamp
    if protocol := _str(record, "protocol"):
        event.radio.protocol = protocol
    if (channel := integer(record, "channel")) is not None:
        event.radio.channel = channel
        event.radio.band = band_of_channel(channel)
    event.wlan.bssid = _str(record, "bssid")
    event.wlan.ssid = _str(record, "ssid")
    event.access_point.name = _str(record, "associatedAPName")
    location = record.get("locationId")
    if location is not None:
        if not isinstance(location, dict):
            raise VendorRecordError("locationId", "expected an object")
        event.location.location_type = _str(location, "type")
        if location.get("id") is not None:
            event.location.location_id = str(location["id"])
    for key, name in (("associationTimestamp", "association_time"), ("authenticationTimestamp", "authentication_time"),
                      ("networkTimestamp", "network_time")):
        if (millis := integer(record, key)) is not None:
            getattr(event.timing, name).FromMilliseconds(millis)
    for key, name in (("dhcpLatency", "dhcp_latency"), ("aaaLatency", "aaa_latency"), ("dnsLatency", "dns_latency")):
        if (seconds := integer(record, key)) is not None:
            getattr(event.timing, name).CopyFrom(duration_pb2.Duration(seconds=seconds))
    if (code := integer(record, "failureCode")) is not None:
        event.failure.code = code
    event.failure.reason = _str(record, "failure")
    if (sub_code := integer(record, "subFailureCode")) is not None:
        event.failure.sub_code = sub_code
    event.failure.sub_reason = _str(record, "subFailure")
    event.file_id = _str(record, "fileId")
    if (session := integer(record, "autoTestSessionId")) is not None:
        event.auto_test.session_id = session
    if (status_code := integer(record, "autoTestStatusCode")) is not None:
        event.auto_test.status_code = status_code
    event.auto_test.status = _str(record, "autoTestStatus")
    return event
