"""Canonical event -> Meraki ``connectivityEvents`` element.

An event that came from Meraki is answered with its original record, byte
for byte; any other event is projected key by key (see docs/mapping.md), with
``null`` for what its source never had.
"""

from __future__ import annotations

import time

import orjson
from google.protobuf.json_format import MessageToDict

from connlog.api.v1 import connection_event_pb2 as pb

STEP_TO_TYPE = {
    pb.CONNECTION_STEP_ASSOCIATION: "assoc",
    pb.CONNECTION_STEP_DISASSOCIATION: "disassoc",
    pb.CONNECTION_STEP_AUTHENTICATION: "auth",
    pb.CONNECTION_STEP_DEAUTHENTICATION: "deauth",
    pb.CONNECTION_STEP_DNS: "dns",
    pb.CONNECTION_STEP_DHCP: "dhcp",
    pb.CONNECTION_STEP_ROAM: "roam",
    pb.CONNECTION_STEP_CONNECTION: "connection",
    pb.CONNECTION_STEP_STICKY: "sticky",
}
TYPE_TO_STEP = {value: key for key, value in STEP_TO_TYPE.items()}
BAND_TO_TEXT = {pb.BAND_2_4_GHZ: "2.4", pb.BAND_5_GHZ: "5", pb.BAND_6_GHZ: "6"}
TEXT_TO_BAND = {value: key for key, value in BAND_TO_TEXT.items()}
SEVERITY_TO_TEXT = {pb.SEVERITY_GOOD: "good", pb.SEVERITY_INFO: "info", pb.SEVERITY_WARN: "warn", pb.SEVERITY_BAD: "bad"}
TEXT_TO_SEVERITY = {value: key for key, value in SEVERITY_TO_TEXT.items()}


def occurred_at_text(event: pb.ConnectionEvent) -> str:
    """RFC 3339 with microseconds, as Meraki prints it."""
    ts = event.occur_time
    t = time.gmtime(ts.seconds)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], ts.nanos // 1000)


def meraki_record(event: pb.ConnectionEvent) -> bytes:
    """The event as the JSON text of one Meraki connectivity event."""
    record = event.vendor_record
    if event.source.vendor == pb.VENDOR_MERAKI and record.data:
        return record.data.encode()
    radio, timing = event.radio, event.timing
    duration_ms = None
    if timing.HasField("duration"):
        duration_ms = timing.duration.seconds * 1000 + timing.duration.nanos // 1_000_000
    rssi = None
    if radio.quality_metric == pb.QUALITY_METRIC_RSSI and radio.HasField("quality_value"):
        rssi = round(radio.quality_value)
    event_data = None
    if event.HasField("event_data"):
        event_data = MessageToDict(event.event_data)
    body = {
        "occurredAt": occurred_at_text(event),
        "band": BAND_TO_TEXT.get(radio.band),
        "ssidNumber": event.wlan.ssid_number if event.wlan.HasField("ssid_number") else None,
        "type": STEP_TO_TYPE.get(event.step),
        "subtype": event.subtype or None,
        "severity": SEVERITY_TO_TEXT.get(event.severity),
        "durationMs": duration_ms,
        "channel": radio.channel if radio.HasField("channel") else None,
        "rssi": rssi,
        "eventData": event_data,
        "deviceSerial": event.access_point.serial or None,
        "captureId": event.capture_id or None,
    }
    return orjson.dumps(body)


def meraki_array(events: list[pb.ConnectionEvent]) -> bytes:
    """A bare JSON array of events, each record's text kept verbatim."""
    return b"[" + b",".join(meraki_record(e) for e in events) + b"]"
