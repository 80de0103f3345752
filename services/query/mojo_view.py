"""Canonical event -> Mojo connection log entry.

An event that came from Mojo is answered with its original record, byte for
byte; any other event is projected key by key in Mojo's documented order, with
``null`` for what its source never had (see docs/mapping.md).
"""

from __future__ import annotations

import orjson

from google.protobuf import duration_pb2, timestamp_pb2

from connlog.api.v1 import connection_event_pb2 as pb


def is_failure(event: pb.ConnectionEvent) -> bool:
    """Failure logs hold failed steps; every other event is a success log."""
    return event.outcome == pb.OUTCOME_FAILURE


def _millis(ts: timestamp_pb2.Timestamp, present: bool) -> int | None:
    return ts.seconds * 1000 + ts.nanos // 1_000_000 if present else None


def _seconds(value: duration_pb2.Duration, present: bool) -> int | None:
    return value.seconds if present else None


def _location_id(location: pb.Location):
    if not location.location_id and not location.location_type:
        return None
    ident = location.location_id
    return {"type": location.location_type or None, "id": int(ident) if ident.isdigit() else (ident or None)}


def mojo_record(event: pb.ConnectionEvent) -> bytes:
    """The event as the JSON text of one Mojo connection log."""
    if event.source.vendor == pb.VENDOR_MOJO and event.vendor_record.data:
        return event.vendor_record.data.encode()
    timing, radio, auto = event.timing, event.radio, event.auto_test
    failure = is_failure(event)
    body = {
        "macAddress": event.client.mac_address or None,
        "protocol": radio.protocol or None,
        "locationId": _location_id(event.location),
        "eventType": "Failure" if failure else "Success",
        "bssid": event.wlan.bssid or None,
        "channel": radio.channel if radio.HasField("channel") else None,
        "timestamp": event.occur_time.seconds,
        "associatedAPName": event.access_point.name or None,
        "ssid": event.wlan.ssid or None,
        "associationTimestamp": _millis(timing.association_time, timing.HasField("association_time")),
        "authenticationTimestamp": _millis(timing.authentication_time, timing.HasField("authentication_time")),
        "networkTimestamp": _millis(timing.network_time, timing.HasField("network_time")),
        "autoTestSessionId": auto.session_id if auto.HasField("session_id") else None,
        "autoTestStatusCode": auto.status_code if auto.HasField("status_code") else None,
        "autoTestStatus": auto.status or None,
    }
    if failure:
        body |= {
            "failureCode": event.failure.code if event.failure.HasField("code") else None,
            "failure": event.failure.reason or None,
            "subFailureCode": event.failure.sub_code if event.failure.HasField("sub_code") else None,
            "subFailure": event.failure.sub_reason or None,
            "fileId": event.file_id or None,
        }
    else:
        body |= {
            "dhcpLatency": _seconds(timing.dhcp_latency, timing.HasField("dhcp_latency")),
            "aaaLatency": _seconds(timing.aaa_latency, timing.HasField("aaa_latency")),
            "dnsLatency": _seconds(timing.dns_latency, timing.HasField("dns_latency")),
        }
    return orjson.dumps(body)


def mojo_logs(events: list[pb.ConnectionEvent]) -> bytes:
    """``{"successLogs": [...], "failureLogs": [...]}`` in the given order,
    each record's text kept verbatim."""
    success = [mojo_record(e) for e in events if not is_failure(e)]
    failure = [mojo_record(e) for e in events if is_failure(e)]
    return b'{"successLogs":[' + b",".join(success) + b'],"failureLogs":[' + b",".join(failure) + b"]}"
