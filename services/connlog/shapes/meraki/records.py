"""Meraki connectivity event <-> canonical event: the tables, read both ways
(see docs/mapping.md), and the conversion of a record into an event."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.records import Table, VendorRecordError, integer

# ``type`` <-> step
TYPES = Table({
    "assoc": pb.CONNECTION_STEP_ASSOCIATION, "disassoc": pb.CONNECTION_STEP_DISASSOCIATION,
    "auth": pb.CONNECTION_STEP_AUTHENTICATION, "deauth": pb.CONNECTION_STEP_DEAUTHENTICATION,
    "dns": pb.CONNECTION_STEP_DNS, "dhcp": pb.CONNECTION_STEP_DHCP, "roam": pb.CONNECTION_STEP_ROAM,
    "connection": pb.CONNECTION_STEP_CONNECTION, "sticky": pb.CONNECTION_STEP_STICKY,
})
# ``band`` <-> radio band
BANDS = Table({"2.4": pb.BAND_2_4_GHZ, "5": pb.BAND_5_GHZ, "6": pb.BAND_6_GHZ})
# ``severity`` <-> severity
SEVERITIES = Table({"good": pb.SEVERITY_GOOD, "info": pb.SEVERITY_INFO, "warn": pb.SEVERITY_WARN,
                    "bad": pb.SEVERITY_BAD})
# The outcome a record's severity implies (into canonical only: every other
# severity is informational).
OUTCOMES: dict[str | None, pb.Outcome] = {"good": pb.OUTCOME_SUCCESS, "bad": pb.OUTCOME_FAILURE}


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
        when = when.replace(tzinfo=dt.UTC)
    severity_text = record.get("severity")
    event = pb.ConnectionEvent(
        network_id=network_id,
        client=pb.Client(client_id=client_id or "", mac_address=mac_address or ""),
        step=TYPES.to_canonical(record, "type"),
        subtype=record.get("subtype") or "",
        severity=SEVERITIES.to_canonical(record, "severity"),
        outcome=OUTCOMES.get(severity_text, pb.OUTCOME_INFORMATIONAL),
        source=pb.Source(vendor=pb.VENDOR_MERAKI),
        capture_id=str(record["captureId"]) if record.get("captureId") is not None else "",
        vendor_record=pb.VendorRecord(content_type="application/json", data=raw_text or json.dumps(record)),
    )
    event.occur_time.FromDatetime(when)
    event.radio.band = BANDS.to_canonical(record, "band")
    if (channel := integer(record, "channel")) is not None:
        event.radio.channel = channel
    if (rssi := integer(record, "rssi")) is not None:
        event.radio.quality_metric = pb.QUALITY_METRIC_RSSI
        event.radio.quality_value = rssi
    if (ssid_number := integer(record, "ssidNumber")) is not None:
        event.wlan.ssid_number = ssid_number
    if (duration := integer(record, "durationMs")) is not None:
        event.timing.duration.CopyFrom(
            duration_pb2.Duration(seconds=duration // 1000, nanos=duration % 1000 * 1_000_000))
    if record.get("deviceSerial") is not None:
        event.access_point.serial = str(record["deviceSerial"])
    data = record.get("eventData")
    if data is not None:
        if not isinstance(data, dict):
            raise VendorRecordError("eventData", "expected an object")
        event.event_data.CopyFrom(struct_pb2.Struct())
        event.event_data.update(data)
    return event
