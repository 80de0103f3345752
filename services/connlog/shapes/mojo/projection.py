"""Canonical event -> Mojo connection log entry.

An event that came from Mojo is answered with its original record, byte for
byte; any other event is projected key by key in Mojo's documented order, with
``null`` for what its source never had (see docs/mapping.md).
"""

from __future__ import annotations

import orjson

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.shapes.mojo.records import EVENT_TYPES, FAILURE
from connlog.shapes.records import verbatim_record
from connlog.store.events import ReadEvent

_MOJO = pb.VENDOR_MOJO
_FAILURE = FAILURE
# The table read canonical -> Mojo (bound here for the hot path).
_FAILURE_TYPE = EVENT_TYPES.vendor[FAILURE]
_SUCCESS_TYPE = EVENT_TYPES.vendor[pb.OUTCOME_SUCCESS]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def is_failure(event: pb.ConnectionEvent) -> bool:
    """Failure logs hold failed steps; every other event is a success log."""
    return event.outcome == _FAILURE


def _millis(timing: pb.ConnectionTiming, name: str) -> int | None:
    if not timing.HasField(name):
        return None
    ts = getattr(timing, name)
    millis = ts.seconds * 1000 + ts.nanos // 1_000_000
    return millis if _INT64_MIN <= millis <= _INT64_MAX else None  # null: stored before ingest bounded it


def _seconds(timing: pb.ConnectionTiming, name: str) -> int | None:
    return getattr(timing, name).seconds if timing.HasField(name) else None


def _location_id(location: pb.Location) -> dict[str, object] | None:
    ident, kind = location.location_id, location.location_type
    if not ident and not kind:
        return None
    if ident.isdigit() and ident.isascii():  # Mojo's id is a number: printed as one when it fits an int64
        number = int(ident)
        if number <= _INT64_MAX:
            return {"type": kind or None, "id": number}
    return {"type": kind or None, "id": ident or None}


def mojo_value(read: ReadEvent, failure: bool) -> dict[str, object] | orjson.Fragment:
    """One Mojo connection log, ready for ``orjson.dumps``: the original
    record's text if the event came from Mojo, else the projection. Hot
    path: every field is read once, the column-held ones from their columns
    (the event's other column-held fields are never put back)."""
    event = read.stored
    if event.source.vendor == _MOJO:
        verbatim = verbatim_record(event.vendor_record)
        if verbatim is not None:
            return verbatim
    timing, radio, auto = event.timing, event.radio, event.auto_test
    body: dict[str, object] = {
        "macAddress": read.column("client_mac"),
        "protocol": radio.protocol or None,
        "locationId": _location_id(event.location) if event.HasField("location") else None,
        "eventType": _FAILURE_TYPE if failure else _SUCCESS_TYPE,
        "bssid": read.column("bssid"),
        "channel": radio.channel if radio.HasField("channel") else None,
        "timestamp": event.occur_time.seconds,
        "associatedAPName": read.column("ap_name"),
        "ssid": read.column("ssid"),
        "associationTimestamp": _millis(timing, "association_time"),
        "authenticationTimestamp": _millis(timing, "authentication_time"),
        "networkTimestamp": _millis(timing, "network_time"),
        "autoTestSessionId": auto.session_id if auto.HasField("session_id") else None,
        "autoTestStatusCode": auto.status_code if auto.HasField("status_code") else None,
        "autoTestStatus": auto.status or None,
    }
    if failure:
        detail = event.failure
        body["failureCode"] = detail.code if detail.HasField("code") else None
        body["failure"] = detail.reason or None
        body["subFailureCode"] = detail.sub_code if detail.HasField("sub_code") else None
        body["subFailure"] = detail.sub_reason or None
        body["fileId"] = event.file_id or None
    else:
        body["dhcpLatency"] = _seconds(timing, "dhcp_latency")
        body["aaaLatency"] = _seconds(timing, "aaa_latency")
        body["dnsLatency"] = _seconds(timing, "dns_latency")
    return body


def mojo_record(event: pb.ConnectionEvent) -> bytes:
    """The event as the JSON text of one Mojo connection log."""
    return orjson.dumps(mojo_value(ReadEvent.of(event), is_failure(event)))


def mojo_logs(events: list[ReadEvent]) -> bytes:
    """``{"successLogs": [...], "failureLogs": [...]}`` in the given order,
    each original record's text kept verbatim."""
    success, failure = [], []
    for read in events:
        if read.stored.outcome == _FAILURE:
            failure.append(mojo_value(read, True))
        else:
            success.append(mojo_value(read, False))
    return orjson.dumps({"successLogs": success, "failureLogs": failure})
