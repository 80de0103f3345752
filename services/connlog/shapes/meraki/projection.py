"""Canonical event -> Meraki ``connectivityEvents`` element.

An event that came from Meraki is answered with its original record, byte
for byte; any other event is projected key by key (see docs/mapping.md), with
``null`` for what its source never had.
"""

from __future__ import annotations

import datetime as dt

import orjson
from google.protobuf.json_format import MessageToDict

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.store.events import ReadEvent

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
_MERAKI = pb.VENDOR_MERAKI
_RSSI = pb.QUALITY_METRIC_RSSI
_UTC = dt.timezone.utc
_INT64_MAX = 2**63 - 1
_MAX_DURATION_SECONDS = _INT64_MAX // 1000 - 1  # durationMs is an int64 of milliseconds
_JSON = "application/json"


def verbatim_record(record: pb.VendorRecord) -> orjson.Fragment | None:
    """A vendor record's text to answer verbatim, or None to project the
    event instead. Ingest accepts only strict JSON objects for the vendors
    answered verbatim; this cheap look (~0.5 µs) keeps an unfit record stored
    before it did so (not JSON, not an object, markup, NaN, Infinity, a lone
    surrogate) from breaking the whole page. The full parse runs only for a
    text holding a word strict JSON lacks, or a \\u escape."""
    data = record.data
    if not data:
        return None
    content_type = record.content_type
    if content_type != _JSON and content_type.partition(";")[0].strip().lower() != _JSON:
        return None
    if data[0] != "{" or data[-1] != "}":
        text = data.strip()
        if text[:1] != "{" or text[-1:] != "}":
            return None
    if "NaN" in data or "Infinity" in data or "\\u" in data:
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    return orjson.Fragment(data)


def _event_data(event_data) -> dict | None:
    """``eventData``, or null when it cannot be printed (a non-finite number
    stored before ingest refused them)."""
    try:
        return MessageToDict(event_data)
    except (ValueError, RecursionError):
        return None


def occurred_at_text(when: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds, as Meraki prints it."""
    return when.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


def _occurred_at(when: dt.datetime) -> dt.datetime | str:
    """What ``orjson.dumps(..., option=OPT_UTC_Z)`` prints as Meraki does
    (orjson formats a UTC datetime natively, several times faster than
    ``isoformat``, but leaves out a zero fraction, which Meraki prints)."""
    if when.microsecond and when.tzinfo is _UTC:
        return when
    return occurred_at_text(when)


def meraki_value(event: pb.ConnectionEvent, occurred_at: dt.datetime) -> dict | orjson.Fragment:
    """One Meraki connectivity event, ready for ``orjson.dumps``: the original
    record's text if the event came from Meraki, else the projection.
    ``occurred_at`` is the event's time to the microsecond (as stored). Hot
    path: every field is read once."""
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
        "occurredAt": _occurred_at(occurred_at),
        "band": BAND_TO_TEXT.get(radio.band),
        "ssidNumber": wlan.ssid_number if wlan.HasField("ssid_number") else None,
        "type": STEP_TO_TYPE.get(event.step),
        "subtype": event.subtype or None,
        "severity": SEVERITY_TO_TEXT.get(event.severity),
        "durationMs": duration_ms,
        "channel": radio.channel if radio.HasField("channel") else None,
        "rssi": rssi,
        "eventData": _event_data(event.event_data) if event.HasField("event_data") else None,
        "deviceSerial": event.access_point.serial or None,
        "captureId": event.capture_id or None,
    }


def meraki_record(event: pb.ConnectionEvent) -> bytes:
    """The event as the JSON text of one Meraki connectivity event."""
    when = event.occur_time.ToDatetime(tzinfo=dt.timezone.utc)
    return orjson.dumps(meraki_value(event, when), option=orjson.OPT_UTC_Z)


def meraki_array(events: list[ReadEvent]) -> bytes:
    """A bare JSON array of stored events, each original record's text kept
    verbatim."""
    return orjson.dumps([meraki_value(read.event, read.occurred_at) for read in events], option=orjson.OPT_UTC_Z)
