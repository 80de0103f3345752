"""Meraki connectivity event -> canonical event (see docs/mapping.md)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.vendors import VendorRecordError, integer

TYPES = {"assoc": pb.CONNECTION_STEP_ASSOCIATION, "disassoc": pb.CONNECTION_STEP_DISASSOCIATION,
         "auth": pb.CONNECTION_STEP_AUTHENTICATION, "deauth": pb.CONNECTION_STEP_DEAUTHENTICATION,
         "dns": pb.CONNECTION_STEP_DNS, "dhcp": pb.CONNECTION_STEP_DHCP, "roam": pb.CONNECTION_STEP_ROAM,
         "connection": pb.CONNECTION_STEP_CONNECTION, "sticky": pb.CONNECTION_STEP_STICKY}
BANDS = {"2.4": pb.BAND_2_4_GHZ, "5": pb.BAND_5_GHZ, "6": pb.BAND_6_GHZ}
SEVERITIES = {"good": pb.SEVERITY_GOOD, "info": pb.SEVERITY_INFO, "warn": pb.SEVERITY_WARN, "bad": pb.SEVERITY_BAD}
OUTCOMES = {"good": pb.OUTCOME_SUCCESS, "bad": pb.OUTCOME_FAILURE}


def _choice(record: dict, key: str, choices: dict) -> int:
    value = record.get(key)
    if value is None:
        return 0
    if value not in choices:
        raise VendorRecordError(key, f"unknown value {value!r}")
    return choices[value]


def to_event(
    record: dict[str, Any],
    *,
    network_id: str,
    client_id: str | None = None,
    mac_address: str | None = None,
    raw_text: str | None = None,
) -> pb.ConnectionEvent:
    """One element of Meraki's connectivityEvents array, for a client."""
    if not isinstance(record, dict):
        raise VendorRecordError("record", "expected a JSON object")
    occurred = record.get("occurredAt")
    try:
        when = dt.datetime.fromisoformat(str(occurred).replace("Z", "+00:00"))
    except ValueError:
        raise VendorRecordError("occurredAt", f"not an RFC 3339 time: {occurred!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    severity_text = record.get("severity")
    event = pb.ConnectionEvent(
        network_id=network_id,
        client=pb.Client(client_id=client_id or "", mac_address=mac_address or ""),
        step=_choice(record, "type", TYPES),
        subtype=record.get("subtype") or "",
        severity=_choice(record, "severity", SEVERITIES),
        outcome=OUTCOMES.get(severity_text, pb.OUTCOME_INFORMATIONAL),
        source=pb.Source(vendor=pb.VENDOR_MERAKI),
        capture_id=str(record["captureId"]) if record.get("captureId") is not None else "",
        vendor_record=pb.VendorRecord(content_type="application/json", data=raw_text or json.dumps(record)),
    )
    event.occur_time.FromDatetime(when)
    event.radio.band = _choice(record, "band", BANDS)
    if (channel := integer(record, "channel")) is not None:
        event.radio.channel = channel
    if (rssi := integer(record, "rssi")) is not None:
        event.radio.quality_metric = pb.QUALITY_METRIC_RSSI
        event.radio.quality_value = rssi
    if (ssid_number := integer(record, "ssidNumber")) is not None:
        event.wlan.ssid_number = ssid_number
    if (duration := integer(record, "durationMs")) is not None:
        event.timing.duration.CopyFrom(duration_pb2.Duration(seconds=duration // 1000, nanos=duration % 1000 * 1_000_000))
    if record.get("deviceSerial") is not None:
        event.access_point.serial = str(record["deviceSerial"])
    data = record.get("eventData")
    if data is not None:
        if not isinstance(data, dict):
            raise VendorRecordError("eventData", "expected an object")
        event.event_data.CopyFrom(struct_pb2.Struct())
        event.event_data.update(data)
    return event
