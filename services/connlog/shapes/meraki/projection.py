"""Canonical event -> Meraki ``connectivityEvents`` element.

An event that came from Meraki is answered with its original record, byte
for byte; any other event is projected key by key (see docs/mapping.md), with
``null`` for what its source never had.
"""

from __future__ import annotations

import datetime as dt

import orjson
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.meraki.records import BANDS, SEVERITIES, TYPES
from connlog.shapes.records import verbatim_record
from connlog.store.events import ReadEvent

# The record tables read canonical -> Meraki (bound here for the hot path).
STEP_TO_TYPE = TYPES.vendor
BAND_TO_TEXT = BANDS.vendor
SEVERITY_TO_TEXT = SEVERITIES.vendor
_MERAKI = pb.VENDOR_MERAKI
_RSSI = pb.QUALITY_METRIC_RSSI
_UTC = dt.UTC
_INT64_MAX = 2**63 - 1
_MAX_DURATION_SECONDS = _INT64_MAX // 1000 - 1  # durationMs is an int64 of milliseconds


def _event_data(event_data: struct_pb2.Struct) -> dict[str, object] | None:
    """``eventData``, or null when it cannot be printed (a non-finite number
    stored before ingest refused them)."""
    try:
        return MessageToDict(event_data)
    except (ValueError, RecursionError):
        return None


def occurred_at_text(when: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds, as Meraki prints it."""
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _occurred_at(when: dt.datetime) -> dt.datetime | str:
    """What ``orjson.dumps(..., option=OPT_UTC_Z)`` prints as Meraki does
    (orjson formats a UTC datetime natively, several times faster than
    ``isoformat``, but leaves out a zero fraction, which Meraki prints)."""
    if when.microsecond and when.tzinfo is _UTC:
        return when
    return occurred_at_text(when)


def meraki_value(read: ReadEvent) -> dict[str, object] | orjson.Fragment:
    """One Meraki connectivity event, ready for ``orjson.dumps``: the original
    record's text if the event came from Meraki, else the projection (its
    time is the stored one, to the microsecond). Hot path: every field is
    read once, and the one column-held field printed is read from its column
    (the event's other column-held fields are never put back)."""
    event = read.stored
    if event.source.vendor == _MERAKI:
        verbatim = verbatim_record(event.vendor_record)
        if verbatim is not None:
            return verbatim
    radio, timing, wlan = event.radio, event.timing, event.wlan
    duration_ms = None
    if timing.HasField("duration"):
        duration = timing.duration
        if 0 <= duration.seconds <= _MAX_DURATION_SECONDS:  # else null: stored before ingest bounded it
            duration_ms = duration.seconds * 1000 + duration.nanos // 1_000_000
    rssi = None
    if radio.quality_metric == _RSSI and radio.HasField("quality_value"):
        rssi = round(radio.quality_value)
    return {
        "occurredAt": _occurred_at(read.occurred_at),
        "band": BAND_TO_TEXT.get(radio.band),
        "ssidNumber": wlan.ssid_number if wlan.HasField("ssid_number") else None,
        "type": STEP_TO_TYPE.get(event.step),
        "subtype": event.subtype or None,
        "severity": SEVERITY_TO_TEXT.get(event.severity),
        "durationMs": duration_ms,
        "channel": radio.channel if radio.HasField("channel") else None,
        "rssi": rssi,
        "eventData": _event_data(event.event_data) if event.HasField("event_data") else None,
        "deviceSerial": read.column("ap_serial"),
        "captureId": event.capture_id or None,
    }


def meraki_record(event: pb.ConnectionEvent) -> bytes:
    """The event as the JSON text of one Meraki connectivity event."""
    return orjson.dumps(meraki_value(ReadEvent.of(event)), option=orjson.OPT_UTC_Z)


def meraki_array(events: list[ReadEvent]) -> bytes:
    """A bare JSON array of stored events, each original record's text kept
    verbatim."""
    return orjson.dumps([meraki_value(read) for read in events], option=orjson.OPT_UTC_Z)
